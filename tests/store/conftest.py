"""Fixtures of the store tests: a migrated database (SQLite and PostgreSQL) and a secret box."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roomcast.crypto import SecretBox
from roomcast.store.db import Database


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    d = Database(db_url)
    await d.migrate()
    try:
        yield d
    finally:
        await d.close()


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_file(tmp_path / "secret.key")
