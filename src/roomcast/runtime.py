"""The node's long-lived objects, built once and shared by the server, the CLI and the tests."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from roomcast.config import Settings
from roomcast.crypto import SecretBox
from roomcast.domain.errors import Unavailable
from roomcast.domain.tenancy import App, Credentials
from roomcast.log import event, register_secret
from roomcast.net.urls import UrlPolicy
from roomcast.rtc.room import RoomManager
from roomcast.services.reservations import ReservationService
from roomcast.services.rooms import RoomService
from roomcast.services.tenancy import TenancyService
from roomcast.store.db import Database

if TYPE_CHECKING:
    from roomcast.cluster.node import Cluster
    from roomcast.services.ai import AiService
    from roomcast.services.ingests import IngestService
    from roomcast.services.recordings import RecordingService
    from roomcast.services.relays import RelayService
    from roomcast.services.whiteboard import WhiteboardService
    from roomcast.stats.ledger import UsageLedger

log = logging.getLogger("roomcast.runtime")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    box: SecretBox
    tenancy: TenancyService
    reservations: ReservationService
    sfu: RoomManager | None = None
    """Set by the server: the CLI has a runtime but no media plane."""
    recordings: RecordingService | None = None
    """Set by the server: recording tasks (engine, uploads, callbacks)."""
    ingests: IngestService | None = None
    """Set by the server: stream ingest tasks."""
    _whiteboard: WhiteboardService | None = None

    @property
    def whiteboard(self) -> WhiteboardService:
        """The rooms' whiteboards (one per process: it orders operations and caches boards)."""
        if self._whiteboard is None:
            from roomcast.services.whiteboard import WhiteboardService

            self._whiteboard = WhiteboardService(self.db.sessions)
        return self._whiteboard

    cluster: Cluster | None = None
    """Set by the server with ``redis_url``: rooms on other nodes are reached through it."""
    ai: AiService | None = None
    """Set by the server: AI transcription and conversation robots."""
    relays: RelayService | None = None
    """Set by the server: relay-to-CDN tasks."""
    usage: UsageLedger | None = None
    """Set by the server: where metered work (relay, ingest, transcoding) adds its minutes."""

    @property
    def url_policy(self) -> UrlPolicy:
        """Which tenant-supplied URLs (images, callbacks) may be fetched or posted to."""
        return UrlPolicy.from_settings(self.settings)

    @property
    def rooms(self) -> RoomService:
        if self.sfu is None:
            raise Unavailable("the media plane runs only in the server", subject="sfu")
        return RoomService(self.sfu, self.cluster)

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        """Create the data directory, load (or create) the secret key and migrate the database."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.resolved_storage_dir.mkdir(parents=True, exist_ok=True)
        box = SecretBox.from_file(settings.secret_key_file)
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
        except Exception:
            await db.close()
            raise
        return cls(
            settings=settings,
            db=db,
            box=box,
            tenancy=TenancyService(db.sessions, box, url_policy=UrlPolicy.from_settings(settings)),
            reservations=ReservationService(db.sessions),
        )

    async def close(self) -> None:
        await self.db.close()

    async def bootstrap(self) -> tuple[Credentials, App] | None:
        """On an empty database, create a default account and app so a new user can start at once."""
        if await self.tenancy.count_accounts() > 0:
            return None
        creds = await self.tenancy.create_account("default")
        app = await self.tenancy.create_app(creds.account_id, "default")
        register_secret(creds.secret_key)
        register_secret(app.app_key)
        event(
            log,
            "bootstrap.created",
            account_id=creds.account_id,
            app_id=app.app_id,
            sdk_app_id=app.sdk_app_id,
        )
        return creds, app
