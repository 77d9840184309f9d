"""Accounts, API keys and apps: the base of every dialect's authentication."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.crypto import (
    SecretBox,
    new_app_id,
    new_app_key,
    new_hex_id,
    new_secret_id,
    new_secret_key,
)
from roomcast.domain.errors import AlreadyExists, FailedPrecondition, InvalidArgument, LimitExceeded, NotFound
from roomcast.domain.tenancy import (
    MAX_APPS_PER_ACCOUNT,
    Account,
    ApiKey,
    App,
    AppState,
    Credentials,
    KeyStatus,
)
from roomcast.net.urls import UrlPolicy
from roomcast.store.tables import AccountRow, ApiKeyRow, AppRow, TaskRow, utcnow

SDK_APP_ID_MIN = 1_400_000_000
SDK_APP_ID_MAX = 1_499_999_999
NAME_MAX = 64


def _check_name(name: str, what: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument(f"{what} name must not be empty", subject=f"{what}_name")
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"{what} name is longer than {NAME_MAX} characters", subject=f"{what}_name")
    if any(ord(c) < 32 for c in name):
        raise InvalidArgument(f"{what} name contains control characters", subject=f"{what}_name")
    return name


class TenancyService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        *,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._url_policy = url_policy or UrlPolicy()

    # -- conversions -------------------------------------------------------------------------
    @staticmethod
    def _account(row: AccountRow) -> Account:
        return Account(row.account_id, row.project_id, row.name, row.created_at)

    @staticmethod
    def _key(row: ApiKeyRow, account_id: str) -> ApiKey:
        return ApiKey(row.secret_id, account_id, KeyStatus(row.status), row.created_at, row.revoked_at)

    def _app(self, row: AppRow, account_id: str) -> App:
        return App(
            app_id=row.app_id,
            sdk_app_id=row.sdk_app_id,
            account_id=account_id,
            name=row.name,
            state=AppState(row.state),
            app_key=self._box.open(row.app_key_sealed),
            created_at=row.created_at,
            updated_at=row.updated_at,
            state_updated_at=row.state_updated_at,
            auth_enabled=row.auth_enabled,
            auth_expire_s=row.auth_expire_s,
            auth_updated_at=row.auth_updated_at,
            callback_url=row.callback_url,
            callback_key=self._box.open(row.callback_key_sealed) if row.callback_key_sealed else None,
            callback_events=tuple(e for e in row.callback_events.split(",") if e),
            callback_updated_at=row.callback_updated_at,
        )

    @staticmethod
    async def _account_row(s: AsyncSession, account_id: str) -> AccountRow:
        row = (
            await s.execute(select(AccountRow).where(AccountRow.account_id == account_id))
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"account {account_id} does not exist", subject="account")
        return row

    # -- accounts ----------------------------------------------------------------------------
    async def create_account(self, name: str) -> Credentials:
        """Create a tenant with its first API key; the secret key is returned only here."""
        name = _check_name(name, "account")
        async with self._sessions.begin() as s:
            acc = AccountRow(account_id=new_hex_id(), project_id=new_hex_id(), name=name, created_at=utcnow())
            s.add(acc)
            await s.flush()
            secret_key = new_secret_key()
            key = ApiKeyRow(
                account_pk=acc.id,
                secret_id=new_secret_id(),
                secret_key_sealed=self._box.seal(secret_key),
                status=KeyStatus.ACTIVE.value,
                created_at=utcnow(),
            )
            s.add(key)
            return Credentials(acc.account_id, acc.project_id, key.secret_id, secret_key)

    async def list_accounts(self) -> list[Account]:
        async with self._sessions() as s:
            rows = (await s.execute(select(AccountRow).order_by(AccountRow.id))).scalars().all()
            return [self._account(r) for r in rows]

    async def get_account(self, account_id: str) -> Account:
        async with self._sessions() as s:
            return self._account(await self._account_row(s, account_id))

    async def count_accounts(self) -> int:
        async with self._sessions() as s:
            return int((await s.execute(select(func.count(AccountRow.id)))).scalar_one())

    # -- keys --------------------------------------------------------------------------------
    async def create_key(self, account_id: str) -> Credentials:
        async with self._sessions.begin() as s:
            acc = await self._account_row(s, account_id)
            secret_key = new_secret_key()
            key = ApiKeyRow(
                account_pk=acc.id,
                secret_id=new_secret_id(),
                secret_key_sealed=self._box.seal(secret_key),
                status=KeyStatus.ACTIVE.value,
                created_at=utcnow(),
            )
            s.add(key)
            return Credentials(acc.account_id, acc.project_id, key.secret_id, secret_key)

    async def list_keys(self, account_id: str | None = None) -> list[ApiKey]:
        async with self._sessions() as s:
            q = select(ApiKeyRow, AccountRow.account_id).join(
                AccountRow, ApiKeyRow.account_pk == AccountRow.id
            )
            if account_id is not None:
                await self._account_row(s, account_id)
                q = q.where(AccountRow.account_id == account_id)
            rows = (await s.execute(q.order_by(ApiKeyRow.id))).all()
            return [self._key(k, acc_id) for k, acc_id in rows]

    async def revoke_key(self, secret_id: str) -> ApiKey:
        async with self._sessions.begin() as s:
            row = (
                await s.execute(
                    select(ApiKeyRow, AccountRow.account_id)
                    .join(AccountRow, ApiKeyRow.account_pk == AccountRow.id)
                    .where(ApiKeyRow.secret_id == secret_id)
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"key {secret_id} does not exist", subject="key")
            key, acc_id = row
            if key.status != KeyStatus.REVOKED.value:
                key.status = KeyStatus.REVOKED.value
                key.revoked_at = utcnow()
            return self._key(key, acc_id)

    async def lookup_credentials(self, secret_id: str) -> Credentials | None:
        """The key pair behind a SecretId/AK, revoked or not (the caller decides), or None."""
        async with self._sessions() as s:
            row = (
                await s.execute(
                    select(ApiKeyRow, AccountRow)
                    .join(AccountRow, ApiKeyRow.account_pk == AccountRow.id)
                    .where(ApiKeyRow.secret_id == secret_id)
                )
            ).one_or_none()
            if row is None:
                return None
            key, acc = row
            return Credentials(
                acc.account_id,
                acc.project_id,
                key.secret_id,
                self._box.open(key.secret_key_sealed),
                KeyStatus(key.status),
            )

    async def account_by_project(self, project_id: str) -> Account | None:
        async with self._sessions() as s:
            row = (
                await s.execute(select(AccountRow).where(AccountRow.project_id == project_id))
            ).scalar_one_or_none()
            return self._account(row) if row else None

    # -- apps --------------------------------------------------------------------------------
    async def create_app(self, account_id: str, name: str) -> App:
        name = _check_name(name, "app")
        for _ in range(8):
            try:
                async with self._sessions.begin() as s:
                    acc = await self._account_row(s, account_id)
                    live = (
                        select(AppRow)
                        .where(AppRow.account_pk == acc.id, AppRow.state != AppState.DELETED.value)
                        .subquery()
                    )
                    count = (await s.execute(select(func.count()).select_from(live))).scalar_one()
                    if count >= MAX_APPS_PER_ACCOUNT:
                        raise LimitExceeded(
                            f"an account may have at most {MAX_APPS_PER_ACCOUNT} apps", subject="app_quota"
                        )
                    dup = await s.execute(
                        select(AppRow.id).where(
                            AppRow.account_pk == acc.id,
                            AppRow.name == name,
                            AppRow.state != AppState.DELETED.value,
                        )
                    )
                    if dup.first() is not None:
                        raise AlreadyExists(f"an app named {name!r} already exists", subject="app_name")
                    now = utcnow()
                    row = AppRow(
                        account_pk=acc.id,
                        app_id=new_app_id(),
                        sdk_app_id=secrets.randbelow(SDK_APP_ID_MAX - SDK_APP_ID_MIN) + SDK_APP_ID_MIN,
                        name=name,
                        state=AppState.ENABLED.value,
                        app_key_sealed=self._box.seal(new_app_key()),
                        auth_enabled=True,
                        auth_expire_s=300,
                        callback_events="",
                        created_at=now,
                        updated_at=now,
                        state_updated_at=now,
                        auth_updated_at=now,
                    )
                    s.add(row)
                    await s.flush()
                    return self._app(row, acc.account_id)
            except IntegrityError:
                continue  # random ids collided; draw again
        raise FailedPrecondition("could not allocate unique app ids", subject="app")

    async def list_apps(
        self,
        account_id: str | None = None,
        *,
        state: AppState | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, list[App]]:
        """Apps (never deleted ones), oldest first, with the total count before paging."""
        async with self._sessions() as s:
            q = (
                select(AppRow, AccountRow.account_id)
                .join(AccountRow, AppRow.account_pk == AccountRow.id)
                .where(AppRow.state != AppState.DELETED.value)
            )
            if account_id is not None:
                await self._account_row(s, account_id)
                q = q.where(AccountRow.account_id == account_id)
            if state is not None:
                q = q.where(AppRow.state == state.value)
            total = (await s.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
            q = q.order_by(AppRow.id).offset(offset)
            if limit is not None:
                q = q.limit(limit)
            rows = (await s.execute(q)).all()
            return int(total), [self._app(r, acc_id) for r, acc_id in rows]

    async def _app_row(self, s: AsyncSession, ref: str | int, account_id: str | None) -> tuple[AppRow, str]:
        q = select(AppRow, AccountRow.account_id).join(AccountRow, AppRow.account_pk == AccountRow.id)
        q = q.where(AppRow.sdk_app_id == ref) if isinstance(ref, int) else q.where(AppRow.app_id == ref)
        row = (await s.execute(q.where(AppRow.state != AppState.DELETED.value))).one_or_none()
        # Another tenant's app is reported exactly like a missing one: no existence oracle.
        if row is None or (account_id is not None and row[1] != account_id):
            raise NotFound(f"app {ref} does not exist", subject="app")
        return row[0], row[1]

    async def get_app(self, ref: str | int, account_id: str | None = None) -> App:
        """An app by ``app_id`` (str) or ``sdk_app_id`` (int); with ``account_id``, only that tenant's."""
        async with self._sessions() as s:
            row, acc_id = await self._app_row(s, ref, account_id)
            return self._app(row, acc_id)

    async def set_app_state(self, ref: str | int, state: AppState, account_id: str | None = None) -> App:
        if state is AppState.DELETED:
            raise InvalidArgument("use delete_app", subject="state")
        async with self._sessions.begin() as s:
            row, acc_id = await self._app_row(s, ref, account_id)
            if row.state != state.value:
                now = utcnow()
                row.state = state.value
                row.state_updated_at = now
                row.updated_at = now
            return self._app(row, acc_id)

    async def delete_app(self, ref: str | int, account_id: str | None = None) -> None:
        """Soft delete: the ids stay reserved so old tokens and callbacks can never hit a new app."""
        async with self._sessions.begin() as s:
            row, _ = await self._app_row(s, ref, account_id)
            busy = await s.execute(
                select(TaskRow.id).where(TaskRow.app_pk == row.id, TaskRow.state != "exited").limit(1)
            )
            if busy.first() is not None:
                raise FailedPrecondition(
                    "the app has unfinished tasks (recordings); stop them first", subject="app_busy"
                )
            now = utcnow()
            row.state = AppState.DELETED.value
            row.deleted_at = now
            row.updated_at = now
            row.state_updated_at = now

    async def set_callback(
        self,
        ref: str | int,
        url: str | None,
        key: str | None,
        events: Sequence[str] = (),
        account_id: str | None = None,
    ) -> App:
        """Set (or with an empty ``url`` remove) the app's callback URL.

        The URL passes the node's URL policy (http(s), a public address unless the operator
        allows private ones); a refused one raises ``InvalidArgument(subject="callback_url")``.
        The CLI goes through here too: an operator who wants a private callback URL sets
        ``allow_private_urls``, which delivery also needs."""
        if url:
            await self._url_policy.check(url, field="callback_url")
        async with self._sessions.begin() as s:
            row, acc_id = await self._app_row(s, ref, account_id)
            now: datetime = utcnow()
            row.callback_url = url or None
            row.callback_key_sealed = self._box.seal(key) if key else None
            row.callback_events = ",".join(events)
            row.callback_updated_at = now
            row.updated_at = now
            return self._app(row, acc_id)
