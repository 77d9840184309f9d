"""Statistics: scale marks (users and calls present per app, room and hour).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scale_marks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_key", sa.String(64), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("app_key", "start", "kind", "room_id", "subject", name="uq_scale_marks"),
    )
    op.create_index("ix_scale_marks_start", "scale_marks", ["start"])


def downgrade() -> None:
    op.drop_table("scale_marks")
