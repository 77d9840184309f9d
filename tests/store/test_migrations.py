"""Migrations from an empty database, on SQLite and PostgreSQL."""

from pathlib import Path

import sqlalchemy as sa

from roomcast.store.db import Database


async def test_migrate_from_empty_and_idempotent(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert await db.current_revision() is None
        await db.migrate()
        head = await db.current_revision()
        assert head is not None
        await db.migrate()
        assert await db.current_revision() == head
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert {"accounts", "api_keys", "apps", "alembic_version"} <= names
    finally:
        await db.close()


async def test_models_match_migrations(db_url: str) -> None:
    """The ORM tables and the migrated schema agree (no autogenerate diff)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from roomcast.store.tables import Base

    db = Database(db_url)
    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": False}), Base.metadata
                )
            )
        assert diff == []
    finally:
        await db.close()


def test_sqlite_file_in_data_dir(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'x.db'}"
    Database(url)
    assert (tmp_path / "sub").is_dir()
