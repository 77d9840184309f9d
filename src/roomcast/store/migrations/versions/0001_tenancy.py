"""Accounts, API keys and apps.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_pk", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("secret_id", sa.String(64), nullable=False, unique=True),
        sa.Column("secret_key_sealed", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_api_keys_account", "api_keys", ["account_pk"])
    op.create_table(
        "apps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_pk", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False, unique=True),
        sa.Column("sdk_app_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("app_key_sealed", sa.Text, nullable=False),
        sa.Column("auth_enabled", sa.Boolean, nullable=False),
        sa.Column("auth_expire_s", sa.Integer, nullable=False),
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("callback_key_sealed", sa.Text, nullable=True),
        sa.Column("callback_events", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("state_updated_at", TS, nullable=False),
        sa.Column("auth_updated_at", TS, nullable=True),
        sa.Column("callback_updated_at", TS, nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
    )
    op.create_index("ix_apps_account", "apps", ["account_pk"])


def downgrade() -> None:
    op.drop_index("ix_apps_account", "apps")
    op.drop_table("apps")
    op.drop_index("ix_api_keys_account", "api_keys")
    op.drop_table("api_keys")
    op.drop_table("accounts")
