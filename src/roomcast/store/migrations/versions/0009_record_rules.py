"""Recording rules: per app and location, a storage target and format settings; per app, the
automatic recording switch.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "record_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(64), nullable=False, unique=True),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ux_record_rules_location", "record_rules", ["app_pk", "location"], unique=True)
    op.create_table(
        "auto_record_modes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "app_pk", sa.Integer, sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False, unique=True
        ),
        sa.Column("rule_id", sa.String(64), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auto_record_modes")
    op.drop_index("ux_record_rules_location", table_name="record_rules")
    op.drop_table("record_rules")
