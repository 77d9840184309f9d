"""Recording reservations.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reservation_id", sa.String(128), nullable=False, unique=True),
        sa.Column("room_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=True),
    )
    op.create_index("ix_reservations_app", "reservations", ["app_pk"])


def downgrade() -> None:
    op.drop_index("ix_reservations_app", "reservations")
    op.drop_table("reservations")
