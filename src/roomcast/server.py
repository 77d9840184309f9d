"""Builds the ASGI application and runs it under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roomcast import __version__
from roomcast.api.jocloud import recording as jocloud_recording
from roomcast.api.jocloud.gateway import build_router as jocloud_router
from roomcast.api.jocloud.gateway import default_gateway as jocloud_default_gateway
from roomcast.api.native import docs, v1, web
from roomcast.api.native.media import build_router as media_router
from roomcast.api.sparkrtc import auto_record as sparkrtc_auto
from roomcast.api.sparkrtc import jobs as sparkrtc_jobs
from roomcast.api.sparkrtc import stats as sparkrtc_stats
from roomcast.api.sparkrtc.apps import build_fallback_router as sparkrtc_fallback_router
from roomcast.api.sparkrtc.apps import build_router as sparkrtc_apps_router
from roomcast.api.sparkrtc.record_rules import build_router as sparkrtc_rules_router
from roomcast.api.sparkrtc.rooms import build_router as sparkrtc_rooms_router
from roomcast.api.tiw import online_record as tiw_online_record
from roomcast.api.trtc import recording as trtc_recording
from roomcast.api.trtc.actions import register as register_trtc_actions
from roomcast.api.trtc.gateway import ActionRegistry, Tc3Gateway
from roomcast.api.trtc.gateway import build_router as trtc_router
from roomcast.cluster.node import Cluster
from roomcast.config import Settings
from roomcast.domain.ai import AsrConfig, AsrEngine
from roomcast.domain.tenancy import App
from roomcast.events.outbox import CallbackOutbox
from roomcast.log import event, register_secret, request_id_var
from roomcast.media.engine import RecordingEngine
from roomcast.media.images import ImageFetcher
from roomcast.media.mixed_job import register_mixed_mode
from roomcast.rtc.auth import Identity
from roomcast.rtc.events import RoomDismissed, RoomEvent
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.signalling import create_signalling_router
from roomcast.rtc.whip import create_whip_router
from roomcast.runtime import Runtime
from roomcast.services.activity import ActivityRecorder
from roomcast.services.ai import AiService
from roomcast.services.ingests import IngestService
from roomcast.services.join_tokens import JoinAuthenticator, issue_usersig
from roomcast.services.nodes import NodeRegistry
from roomcast.services.ratelimit import RateLimiter, Throttle
from roomcast.services.recordings import LIBRARY_BUCKET, RecordingService
from roomcast.services.relays import RelayService
from roomcast.services.retention import RetentionJob
from roomcast.services.rooms import RoomService
from roomcast.services.tasks import TaskService
from roomcast.services.whiteboard import SignallingBoards
from roomcast.stats.ledger import UsageLedger
from roomcast.stats.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from roomcast.stats.metrics import NodeMetrics
from roomcast.stats.recorder import StatsRecorder
from roomcast.storage.queue import UploadQueue, UploadQueueConfig, queue_from_runtime
from roomcast.storage.target import StorageTarget

log = logging.getLogger("roomcast.http")


class RequestLogMiddleware:
    """Gives every request an id (``X-Request-Id``) and logs one line when it ends.

    Pure ASGI (not BaseHTTPMiddleware) so WebSockets and streaming bodies pass untouched. Only
    the path is logged: query strings can carry signatures and tokens.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = str(uuid.uuid4())
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status: dict[str, int] = {"code": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("request.failed", extra={"fields": {"path": scope.get("path")}})
            raise
        finally:
            client = scope.get("client")
            event(
                log,
                "request",
                method=scope.get("method", "WS"),
                path=scope.get("path"),
                status=status["code"],
                ms=round((time.perf_counter() - started) * 1000, 1),
                client=client[0] if client else None,
            )
            request_id_var.reset(token)


class RecordingStack:
    """The recording engine with its upload queue and callback outbox, started and stopped together."""

    def __init__(
        self,
        engine: RecordingEngine,
        uploads: UploadQueue,
        outbox: CallbackOutbox,
        service: RecordingService,
        relays: RelayService,
    ):
        self.relays = relays
        self.engine = engine
        self.uploads = uploads
        self.outbox = outbox
        self.service = service

    async def close(self, grace_s: float) -> None:
        """Stop within ``grace_s``: files are finalized, unfinished uploads stay queued (durable)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s

        def left() -> float:
            return max(0.0, deadline - loop.time())

        await self.relays.close(min(5.0, left()))
        await self.service.close(left())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.1, left())):
                await self.engine.close()
        await self.uploads.stop(grace_s=left())
        await self.outbox.stop()


def _local_url(settings: Settings) -> str:
    """This node's own HTTP address, for its robots (relay feedback) to join its rooms."""
    host = settings.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


async def _start_recording_stack(
    rt: Runtime, sfu: RoomManager, nodes: NodeRegistry, cluster: Cluster | None
) -> RecordingStack:
    settings = rt.settings
    engine = RecordingEngine(
        sfu, settings.data_dir.resolve() / "recordings", capacity=settings.recording_capacity
    )
    register_mixed_mode(engine, ImageFetcher.from_settings(settings))
    uploads = queue_from_runtime(
        rt,
        UploadQueueConfig(max_attempts=settings.upload_max_attempts),
        node_id=nodes.node_id,
        backup_target=StorageTarget(kind="local", bucket=LIBRARY_BUCKET),
    )
    outbox = CallbackOutbox(rt.db.sessions, node_id=nodes.node_id, url_policy=rt.url_policy)
    rooms = RoomService(sfu)

    async def app_by_sdk_id(sdk_app_id: int) -> App:
        return await rt.tenancy.get_app(sdk_app_id)

    def room_users(app_key: str, room_id: str) -> list[str]:
        return rooms.users(app_key, room_id) if rooms.exists(app_key, room_id) else []

    service = RecordingService(
        tasks=TaskService(rt.db.sessions, rt.box),
        engine=engine,
        uploads=uploads,
        outbox=outbox,
        apps=app_by_sdk_id,
        public_url=settings.resolved_public_url,
        node_id=nodes.node_id,
        max_tasks=settings.max_recordings,
        room_exists=rooms.exists,
        room_users=room_users,
        nodes=cluster,
    )
    if cluster is not None:
        for method, handler in service.calls().items():
            cluster.handle(method, handler)
        cluster.pin_rooms(service.records_room)
    trtc_recording.register_dialect(service)
    tiw_online_record.register_dialect(service, rt)
    jocloud_recording.register_dialect(service)
    sparkrtc_auto.register(service, rt, sfu.events)

    def on_room_event(ev: RoomEvent) -> Awaitable[None] | None:
        if isinstance(ev, RoomDismissed):
            return service.room_dismissed(ev.app_key, ev.room_id)
        return None

    sfu.events.add_handler(on_room_event, types=(RoomDismissed,))
    await uploads.start()
    await outbox.start()
    rt.recordings = service
    # Uploads first: a taken-over task then finds its queued files owned by this node.
    nodes.on_take_over("uploads", uploads.take_over)
    nodes.on_take_over("recordings", service.take_over)
    nodes.on_lease_lost("recordings", service.let_go)
    service.start_janitor(settings.library_janitor_interval_s)

    async def robot_token(sdk_app_id: int, user_id: str) -> str:
        return issue_usersig(await rt.tenancy.get_app(sdk_app_id), user_id, expire_s=3600)

    relays = RelayService(
        tasks=TaskService(rt.db.sessions, rt.box),
        source=sfu,
        node_id=nodes.node_id,
        images=ImageFetcher.from_settings(settings),
        room_users=room_users,
        url_policy=rt.url_policy,
        base_url=_local_url(settings),
        token_for=robot_token,
        nodes=cluster,
        apps=rt.tenancy.get_app,
    )
    if cluster is not None:
        for method, handler in relays.calls().items():
            cluster.handle(method, handler)
    rt.relays = relays

    def on_dismissed(ev: RoomEvent) -> Awaitable[None] | None:
        return relays.room_dismissed(ev.app_key, ev.room_id) if isinstance(ev, RoomDismissed) else None

    sfu.events.add_handler(on_dismissed, types=(RoomDismissed,))
    nodes.on_take_over("relays", relays.take_over)
    nodes.on_lease_lost("relays", relays.let_go)
    return RecordingStack(engine, uploads, outbox, service, relays)


async def _start_ai(rt: Runtime, sfu: RoomManager, nodes: NodeRegistry, cluster: Cluster | None) -> AiService:
    settings = rt.settings

    async def app_by_sdk_id(sdk_app_id: int) -> App:
        return await rt.tenancy.get_app(sdk_app_id)

    asr = (
        AsrConfig(
            engine=AsrEngine.OPENAI,
            url=settings.asr_url,
            model=settings.asr_model,
            api_key=settings.asr_api_key,
        )
        if settings.asr_url
        else AsrConfig()
    )
    if settings.asr_api_key:
        register_secret(settings.asr_api_key)
    service = AiService(
        tasks=TaskService(rt.db.sessions, rt.box),
        box=rt.box,
        sfu=sfu,
        apps=app_by_sdk_id,
        node_id=nodes.node_id,
        url_policy=rt.url_policy,
        default_asr=asr,
        max_tasks=settings.max_ai_robots,
        nodes=cluster,
    )
    if cluster is not None:
        for method, handler in service.calls().items():
            cluster.handle(method, handler)

    def on_room_event(ev: RoomEvent) -> Awaitable[None] | None:
        if isinstance(ev, RoomDismissed):
            return service.room_dismissed(ev.app_key, ev.room_id)
        return None

    sfu.events.add_handler(on_room_event, types=(RoomDismissed,))
    rt.ai = service
    nodes.on_take_over("ai", service.take_over)
    nodes.on_lease_lost("ai", service.let_go)
    return service


class _RuntimeJoinAuthenticator:
    """Checks join tokens with the running server's tenancy (available once the lifespan started)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    async def authenticate(self, token: str, *, app_id: str, room_id: str, user_id: str) -> Identity:
        rt: Runtime = self._app.state.runtime
        return await JoinAuthenticator(rt.tenancy).authenticate(
            token, app_id=app_id, room_id=room_id, user_id=user_id
        )


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The ASGI app. With ``runtime`` given (tests), the caller owns its lifecycle."""

    sfu = RoomManager(
        SfuConfig(
            max_participants_per_room=settings.max_participants_per_room,
            max_rooms=settings.max_rooms,
            empty_room_grace=settings.empty_room_grace_s,
            stats_interval=settings.stats_interval_s,
            ice_host_addresses=tuple(settings.ice_host_addresses) if settings.ice_host_addresses else None,
        )
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or await Runtime.open(settings)
        rt.sfu = sfu
        app.state.runtime = rt
        nodes = NodeRegistry(
            rt.db.sessions, lease_s=settings.node_lease_s, public_url=settings.resolved_public_url
        )
        await nodes.register()
        app.state.nodes = nodes
        if cluster is not None:
            await cluster.start(nodes.node_id, sfu)
            rt.cluster = cluster
        activity = ActivityRecorder(rt.db.sessions, sfu.events, node_id=nodes.node_id)
        app.state.activity = activity
        await activity.start()
        nodes.on_take_over("sessions", activity.take_over)
        rt.usage = UsageLedger(rt.db.sessions)
        stats = StatsRecorder(
            rt.db.sessions,
            sfu.events,
            rt.usage,
            node_id=nodes.node_id,
            stats_interval_s=settings.stats_interval_s,
            flush_s=settings.stats_flush_s,
        )
        app.state.stats = stats
        await stats.start()
        metrics = NodeMetrics(rt.db.sessions, sfu, stats)
        app.state.metrics = metrics
        metrics.start()
        retention = RetentionJob.from_settings(rt.db.sessions, settings)
        app.state.retention = retention
        retention.start()
        await sfu.start()
        recording = await _start_recording_stack(rt, sfu, nodes, cluster)
        app.state.recording = recording
        ingests = IngestService(
            TaskService(rt.db.sessions, rt.box),
            sfu,
            rt.url_policy,
            node_id=nodes.node_id,
            max_tasks=settings.max_ingests,
            retries=settings.ingest_retries,
            nodes=cluster,
            apps=rt.tenancy.get_app,
        )
        if cluster is not None:
            for method, handler in ingests.calls().items():
                cluster.handle(method, handler)
        rt.ingests = ingests
        nodes.on_take_over("ingests", ingests.take_over)
        nodes.on_lease_lost("ingests", ingests.let_go)
        ai_robots = await _start_ai(rt, sfu, nodes, cluster)
        await nodes.reap()  # what a previous process on this host, or a dead node, left unfinished
        nodes.start()
        event(log, "server.started", version=__version__, node_id=nodes.node_id)
        try:
            yield
        finally:
            # What is left of the grace time since the stop signal (connections drained first).
            grace = _SHUTDOWN.remaining(settings.shutdown_grace_s)
            event(log, "server.stopping", grace_s=round(grace, 1))
            await ingests.close()  # the ingest users leave; their tasks resume at the next start
            # Finalizes files within the grace time; their uploads stay queued in the database.
            await ai_robots.close()  # robots leave; their tasks resume at the next start
            await recording.close(grace)
            await sfu.close()  # everyone leaves with reason server_shutdown
            if cluster is not None:
                await cluster.stop()  # after the rooms closed: nobody joins them here any more
                rt.cluster = None
            await activity.stop()
            await stats.stop()
            await metrics.stop()
            await nodes.stop()  # from here on, another node may take over what is unfinished
            await retention.stop()
            if runtime is None:
                await rt.close()
            event(log, "server.stopped")

    app = FastAPI(title="roomcast", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(RequestLogMiddleware)
    # Several nodes (redis_url): throttling and nonces shared in Redis, rooms placed across nodes.
    cluster = Cluster(settings) if settings.redis_url else None
    app.state.cluster = cluster
    limiter: Throttle = cluster.limiter if cluster is not None else RateLimiter()
    app.state.limiter = limiter

    # Dialects. TRTC and TIW share API 3.0's "/" endpoint and its signing.
    registry = ActionRegistry()
    register_trtc_actions(registry)
    app.state.trtc_registry = registry
    app.include_router(
        trtc_router(Tc3Gateway(registry, limiter, nonces=cluster.nonces if cluster is not None else None))
    )
    app.include_router(sparkrtc_apps_router())
    joy = jocloud_default_gateway()
    joy.limiter = limiter
    app.state.jocloud = joy
    app.include_router(jocloud_router(joy))
    app.include_router(sparkrtc_rooms_router())
    app.include_router(sparkrtc_rules_router())
    app.include_router(sparkrtc_jobs.build_router())
    app.include_router(sparkrtc_auto.build_router())
    app.include_router(sparkrtc_stats.build_router())
    app.include_router(sparkrtc_fallback_router())  # last: served SparkRTC routes win

    # Media plane: WebSocket signalling, WHIP and WHEP, all behind join tokens.
    app.state.sfu = sfu
    join_auth = _RuntimeJoinAuthenticator(app)
    boards = SignallingBoards(lambda: app.state.runtime.whiteboard)
    app.include_router(create_signalling_router(sfu, join_auth, whiteboard=boards))
    app.include_router(create_whip_router(sfu, join_auth))
    v1.mount(app)  # the native API, /api/v1
    docs.mount(app)  # /docs, offline
    web.mount(app)
    app.include_router(media_router())

    @app.get("/metrics", tags=["native"], response_class=Response)
    async def prometheus(request: Request) -> Response:
        """The node's gauges in the Prometheus text format (no tenant data: counts only)."""
        body = await request.app.state.metrics.render()
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    @app.get("/healthz", tags=["native"])
    async def healthz(request: Request) -> JSONResponse:
        rt: Runtime = request.app.state.runtime
        db_ok = await rt.db.ping()
        body: dict[str, Any] = {
            "status": "ok" if db_ok else "degraded",
            "version": __version__,
            "database": db_ok,
        }
        if cluster is not None:
            # Informational: a node keeps serving its rooms while Redis is down.
            body["redis"] = cluster.reachable
        return JSONResponse(body, status_code=200 if db_ok else 503)

    return app


def address_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (another server has it), or None.

    Checked before anything touches the database: a second ``serve`` on a busy port must not run
    migrations or task recovery against the live node's data. SO_REUSEADDR as uvicorn sets it,
    so connections of a recently stopped server (TIME_WAIT) do not count as busy.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; uvicorn drains connections and runs the lifespan shutdown."""
    import uvicorn

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # Open connections (WebSockets) may take half the grace time; the lifespan gets the rest.
        timeout_graceful_shutdown=max(1, int(min(10.0, settings.shutdown_grace_s / 2))),
        ws="auto",
    )

    # uvicorn drains and shuts down on SIGTERM, then re-raises the signal against the handler that
    # was installed before it started; make that handler a clean exit so supervisors see status 0.
    def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _exit_cleanly)
    server = uvicorn.Server(config)
    _bound_shutdown(server, settings.shutdown_grace_s)
    server.run()


class _ShutdownClock:
    """When the stop signal came: the lifespan's share of the grace time is what is left of it."""

    def __init__(self) -> None:
        self.signalled_at: float | None = None

    def remaining(self, grace_s: float) -> float:
        if self.signalled_at is None:
            return grace_s
        return max(1.0, grace_s - (time.monotonic() - self.signalled_at) - 1.0)


_SHUTDOWN = _ShutdownClock()


def _bound_shutdown(server: Any, grace_s: float) -> None:
    """Make sure a stop signal ends the process within the grace time: a thread stuck in a store
    call must not keep it alive. Everything durable is in the database by then; what is unfinished
    is taken over at the next start (or by another node)."""
    original = server.handle_exit
    margin = 2.0

    def watchdog() -> None:
        time.sleep(grace_s + margin)
        event(log, "server.forced_exit", level=logging.ERROR, after_s=grace_s + margin)
        os._exit(0)

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        if _SHUTDOWN.signalled_at is None:
            _SHUTDOWN.signalled_at = time.monotonic()
            threading.Thread(target=watchdog, name="shutdown-watchdog", daemon=True).start()
        original(sig, frame)

    setattr(server, "handle_exit", handle_exit)  # noqa: B010 - uvicorn installs it as the handler
