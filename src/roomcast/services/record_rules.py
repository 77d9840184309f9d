"""Recording rules: per app and location, where recordings go (a storage target) and how they are
cut (settings the dialect owns, stored as JSON). One rule per (app, location): saving a rule for a
location that has one replaces it, keeping its id."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from roomcast.domain.task import TaskState
from roomcast.storage.target import StorageTarget
from roomcast.store.tables import AppRow, AutoRecordRow, RecordRuleRow, TaskRow, utcnow


@dataclass(frozen=True)
class AutoRecord:
    """Automatic per-user recording: on with ``rule_id``, off with None, switched at ``updated_at``."""

    rule_id: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class RecordRule:
    rule_id: str
    app_id: str
    location: str
    target: StorageTarget
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _rule(row: RecordRuleRow, app_id: str) -> RecordRule:
    return RecordRule(
        rule_id=row.rule_id,
        app_id=app_id,
        location=row.location,
        target=StorageTarget.from_parts(json.loads(row.target)),
        settings=json.loads(row.settings),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class RecordRuleService:
    """Rules hold no credentials: the node writes with its own (``target.secrets()`` is dropped)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _app_pk(self, s: AsyncSession, app_id: str) -> int:
        pk = (
            await s.execute(select(AppRow.id).where(AppRow.app_id == app_id, AppRow.deleted_at.is_(None)))
        ).scalar_one_or_none()
        if pk is None:
            raise NotFound(f"app {app_id} does not exist", subject="app")
        return int(pk)

    async def save(
        self, app_id: str, location: str, target: StorageTarget, settings: dict[str, Any]
    ) -> tuple[RecordRule, bool]:
        """Create the rule of ``location``, or replace the one there. Returns (rule, created)."""
        for _ in range(3):  # a concurrent save of the same location wins the insert: replace it
            try:
                async with self._sessions.begin() as s:
                    app_pk = await self._app_pk(s, app_id)
                    now = utcnow()
                    row = (
                        await s.execute(
                            select(RecordRuleRow).where(
                                RecordRuleRow.app_pk == app_pk, RecordRuleRow.location == location
                            )
                        )
                    ).scalar_one_or_none()
                    created = row is None
                    if row is None:
                        row = RecordRuleRow(
                            rule_id=secrets.token_hex(16), app_pk=app_pk, location=location, created_at=now
                        )
                        s.add(row)
                    row.target = _dump(target.public())
                    row.settings = _dump(settings)
                    row.updated_at = now
                    await s.flush()
                    return _rule(row, app_id), created
            except IntegrityError:
                continue
        raise AlreadyExists(f"a rule for {location} is being saved concurrently", subject="record_rule")

    async def list(self, app_id: str, offset: int = 0, limit: int = 100) -> list[RecordRule]:
        async with self._sessions() as s:
            app_pk = await self._app_pk(s, app_id)
            rows = (
                await s.execute(
                    select(RecordRuleRow)
                    .where(RecordRuleRow.app_pk == app_pk)
                    .order_by(RecordRuleRow.id)
                    .offset(offset)
                    .limit(limit)
                )
            ).scalars()
            return [_rule(r, app_id) for r in rows]

    async def _row(self, s: AsyncSession, app_id: str, rule_id: str) -> RecordRuleRow:
        app_pk = await self._app_pk(s, app_id)
        row = (
            await s.execute(
                select(RecordRuleRow).where(RecordRuleRow.app_pk == app_pk, RecordRuleRow.rule_id == rule_id)
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"record rule {rule_id} does not exist", subject="record_rule")
        return row

    async def get(self, app_id: str, rule_id: str) -> RecordRule:
        async with self._sessions() as s:
            return _rule(await self._row(s, app_id, rule_id), app_id)

    async def update(
        self, app_id: str, rule_id: str, location: str, target: StorageTarget, settings: dict[str, Any]
    ) -> RecordRule:
        """Replace a rule. Moving it to a location another rule holds is refused (AlreadyExists)."""
        try:
            async with self._sessions.begin() as s:
                row = await self._row(s, app_id, rule_id)
                clash = (
                    await s.execute(
                        select(func.count())
                        .select_from(RecordRuleRow)
                        .where(
                            RecordRuleRow.app_pk == row.app_pk,
                            RecordRuleRow.location == location,
                            RecordRuleRow.id != row.id,
                        )
                    )
                ).scalar_one()
                if clash:
                    raise AlreadyExists(f"the app has a rule for {location}", subject="record_rule")
                row.location = location
                row.target = _dump(target.public())
                row.settings = _dump(settings)
                row.updated_at = utcnow()
                await s.flush()
                return _rule(row, app_id)
        except IntegrityError:
            raise AlreadyExists(f"the app has a rule for {location}", subject="record_rule") from None

    async def in_use(self, app_id: str, rule_id: str) -> bool:
        """Whether an unfinished task of the app names the rule in its request.

        Dialects store ``"record_rule_id": "<id>"`` in the task request (rule ids are 32 hex, so a
        substring match cannot hit another value)."""
        async with self._sessions() as s:
            row = await self._row(s, app_id, rule_id)
            n = (
                await s.execute(
                    select(func.count())
                    .select_from(TaskRow)
                    .where(
                        TaskRow.app_pk == row.app_pk,
                        TaskRow.state != TaskState.EXITED.value,
                        TaskRow.request.contains(rule_id),
                    )
                )
            ).scalar_one()
            return bool(n)

    async def delete(self, app_id: str, rule_id: str) -> None:
        auto = await self.auto_record(app_id)
        if auto.rule_id == rule_id or await self.in_use(app_id, rule_id):
            raise FailedPrecondition(f"record rule {rule_id} is used by a running job", subject="record_rule")
        async with self._sessions.begin() as s:
            await s.delete(await self._row(s, app_id, rule_id))

    async def auto_record(self, app_id: str) -> AutoRecord:
        async with self._sessions() as s:
            app_pk = await self._app_pk(s, app_id)
            row = (
                await s.execute(select(AutoRecordRow).where(AutoRecordRow.app_pk == app_pk))
            ).scalar_one_or_none()
            return AutoRecord(row.rule_id, row.updated_at) if row is not None else AutoRecord(None, None)

    async def set_auto_record(self, app_id: str, rule_id: str | None) -> AutoRecord:
        """Switch automatic recording on (with an existing rule) or off (None)."""
        for _ in range(3):
            try:
                async with self._sessions.begin() as s:
                    if rule_id is not None:
                        await self._row(s, app_id, rule_id)
                    app_pk = await self._app_pk(s, app_id)
                    row = (
                        await s.execute(select(AutoRecordRow).where(AutoRecordRow.app_pk == app_pk))
                    ).scalar_one_or_none()
                    if row is None:
                        row = AutoRecordRow(app_pk=app_pk)
                        s.add(row)
                    row.rule_id = rule_id
                    row.updated_at = utcnow()
                    await s.flush()
                    return AutoRecord(row.rule_id, row.updated_at)
            except IntegrityError:
                continue
        raise AlreadyExists(
            "the automatic recording mode is being changed concurrently", subject="auto_record"
        )
