"""Calls between nodes over Redis: a request is published on the target node's channel, the
answer is pushed on a list named after the call and popped by the caller with a timeout.

``PUBLISH`` tells how many nodes listen on the channel: none means the node is gone, answered at
once instead of after the timeout. A handler's domain error (``RoomcastError``: kind, subject,
message) travels back and is raised again at the caller, so each dialect answers its own error
for a room on another node exactly as for a room here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from roomcast.background import Background
from roomcast.domain import errors as domain
from roomcast.log import event

from .redis import Keys, RedisError, unreachable

log = logging.getLogger("roomcast.cluster.rpc")

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

_ERRORS: dict[domain.ErrorKind, type[domain.RoomcastError]] = {
    domain.ErrorKind.NOT_FOUND: domain.NotFound,
    domain.ErrorKind.ALREADY_EXISTS: domain.AlreadyExists,
    domain.ErrorKind.INVALID_ARGUMENT: domain.InvalidArgument,
    domain.ErrorKind.PERMISSION_DENIED: domain.PermissionDenied,
    domain.ErrorKind.UNAUTHENTICATED: domain.Unauthenticated,
    domain.ErrorKind.FAILED_PRECONDITION: domain.FailedPrecondition,
    domain.ErrorKind.LIMIT_EXCEEDED: domain.LimitExceeded,
    domain.ErrorKind.UNAVAILABLE: domain.Unavailable,
}

REPLY_TTL_S = 60


class NodeGone(domain.Unavailable):
    """No process listens on the node's channel: it stopped or died."""


class NodeRpc:
    """Serves this node's methods and calls other nodes'."""

    def __init__(self, redis: Redis, blocking: Redis, keys: Keys, *, node_id: str, timeout_s: float) -> None:
        self._redis = redis
        self._blocking = blocking  # its socket timeout is longer than a call's
        self._keys = keys
        self.node_id = node_id
        self.timeout_s = timeout_s
        self._handlers: dict[str, Handler] = {}
        self._bg = Background("rpc")
        self._started = False
        self.listening = asyncio.Event()

    def handle(self, method: str, handler: Handler) -> None:
        self._handlers[method] = handler

    # -- serving ------------------------------------------------------------------------------------
    def start(self) -> None:
        if not self._started:
            self._started = True
            self._bg.spawn("listener", self._listen())

    async def stop(self) -> None:
        """Stop listening and cancel the calls being served."""
        await self._bg.close()
        self._started = False

    async def _listen(self) -> None:
        """Subscribe to this node's channel; resubscribe after Redis comes back."""
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._keys.rpc(self.node_id))
                self.listening.set()
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        self._bg.spawn("rpc-call", self._serve(str(msg["data"])))
            except asyncio.CancelledError:
                raise
            except RedisError as exc:
                if not unreachable(exc):
                    log.exception("rpc.listener_failed")
                self.listening.clear()
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _serve(self, raw: str) -> None:
        try:
            call = json.loads(raw)
            reply_key = str(call["reply"])
            method = str(call["method"])
            params = dict(call.get("params") or {})
        except (ValueError, KeyError, TypeError):
            log.warning("rpc.bad_request")
            return
        handler = self._handlers.get(method)
        answer: dict[str, Any]
        if handler is None:
            answer = {"error": {"kind": "internal", "subject": "rpc", "message": f"no method {method}"}}
        else:
            try:
                answer = {"result": await handler(params)}
            except domain.RoomcastError as exc:
                answer = {"error": {"kind": str(exc.kind), "subject": exc.subject, "message": exc.message}}
            except Exception:
                log.exception("rpc.handler_failed", extra={"fields": {"method": method}})
                answer = {"error": {"kind": "internal", "subject": "rpc", "message": "the call failed"}}
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(reply_key, json.dumps(answer))
                pipe.expire(reply_key, REPLY_TTL_S)
                await pipe.execute()
        except RedisError:
            log.warning("rpc.reply_lost", extra={"fields": {"method": method}})

    # -- calling ------------------------------------------------------------------------------------
    async def call(self, node_id: str, method: str, params: dict[str, Any]) -> Any:
        """Run ``method`` on ``node_id``. Raises the handler's domain error, or ``Unavailable``
        (subject ``node``) if the node is gone, does not answer in time, or Redis is unreachable."""
        call_id = uuid.uuid4().hex
        reply_key = self._keys.reply(call_id)
        request = json.dumps({"method": method, "params": params, "reply": reply_key, "from": self.node_id})
        try:
            receivers = await self._redis.publish(self._keys.rpc(node_id), request)
            if not receivers:
                raise NodeGone(f"node {node_id} is gone", subject="node")
            popped = await self._blocking.blpop([reply_key], timeout=self.timeout_s)
        except RedisError as exc:
            raise domain.Unavailable("the cluster's Redis cannot be reached", subject="node") from exc
        if popped is None:
            event(log, "rpc.timeout", level=logging.WARNING, node_id=node_id, method=method)
            raise domain.Unavailable(f"node {node_id} did not answer in {self.timeout_s:g} s", subject="node")
        answer = json.loads(popped[1])
        if "error" in answer:
            err = answer["error"]
            kind = domain.ErrorKind(err.get("kind", "internal"))
            cls = _ERRORS.get(kind, domain.RoomcastError)
            raise cls(str(err.get("message", "")), subject=str(err.get("subject", "")), kind=kind)
        return answer.get("result")
