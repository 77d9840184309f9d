"""Whiteboard operations, per room, in order.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "whiteboard_ops",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_key", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("op_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ux_whiteboard_ops_seq", "whiteboard_ops", ["app_key", "room_id", "seq"], unique=True)
    op.create_index("ux_whiteboard_ops_op_id", "whiteboard_ops", ["app_key", "room_id", "op_id"], unique=True)


def downgrade() -> None:
    op.drop_table("whiteboard_ops")
