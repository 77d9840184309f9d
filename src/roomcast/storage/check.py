"""Pre-flight check of a storage target: does it exist and accept a write with these credentials?

Run before a task is accepted, so that a missing bucket or a wrong key is answered to the caller
at once instead of surfacing as uploads that fail later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from roomcast.log import event
from roomcast.storage.base import ObjectStore, StorageError, StorageErrorKind
from roomcast.storage.target import StorageOptions, StorageTarget, open_store

log = logging.getLogger(__name__)

PROBE_PREFIX = ".roomcast-probe-"
"""Name of the probe objects (``<target prefix>/.roomcast-probe-<random hex>``)."""

PROBE_BODY = b"roomcast storage check: this object is deleted right after it is written\n"

DEFAULT_CHECK_TIMEOUT_S = 10.0


def probe_key() -> str:
    """A fresh probe object key (relative to the target's prefix)."""
    return f"{PROBE_PREFIX}{secrets.token_hex(8)}"


def _write_probe_file() -> Path:
    fd, name = tempfile.mkstemp(prefix="roomcast-probe-")
    with os.fdopen(fd, "wb") as f:
        f.write(PROBE_BODY)
    return Path(name)


def _where(target: StorageTarget, key: str) -> str:
    prefix = target.prefix.strip("/")
    full = f"{prefix}/{key}" if prefix else key
    if target.kind == "local":
        return f"local:{target.bucket.strip('/')}/{full}"
    return f"s3://{target.bucket}/{full}"


async def check_target(
    target: StorageTarget,
    options: StorageOptions,
    *,
    timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
    store_factory: Callable[[StorageTarget, StorageOptions], ObjectStore] = open_store,
) -> None:
    """Raise :class:`StorageError` unless ``target`` exists and accepts a write with its credentials.

    Writes a small probe object ``<prefix>/.roomcast-probe-<random>`` and deletes it. A store that
    accepts the write but refuses the delete (a write-only key, a bucket with object lock) passes:
    recordings only need to write, and the probe is then left behind (logged as
    ``storage.probe_left``). For a local target this checks that the folder can be created and
    written to.

    Bounded by ``timeout_s`` as a whole (the S3 client's own connect/read timeouts are lowered to
    fit); a store that does not answer in time fails with kind ``unreachable`` (retryable). Every
    failure carries :attr:`StorageError.kind` and :attr:`StorageError.retryable` as the stores
    classify them (``no_such_bucket``, ``access_denied``, ``bad_credentials``, ``wrong_endpoint``,
    ``invalid_request`` are permanent).
    """
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    key = probe_key()
    where = _where(target, key)
    # Let the client give up on its own within the budget, so its thread does not linger long.
    budget = max(0.5, timeout_s)
    opts = replace(
        options,
        s3_connect_timeout_s=min(options.s3_connect_timeout_s, budget / 2),
        s3_read_timeout_s=min(options.s3_read_timeout_s, budget),
        s3_client_retries=min(options.s3_client_retries, 2),
    )
    deadline = asyncio.get_running_loop().time() + timeout_s
    started = time.monotonic()
    probe = await asyncio.to_thread(_write_probe_file)
    store: ObjectStore | None = None
    try:
        try:
            async with asyncio.timeout_at(deadline):
                # Building a store may touch the file system (the local store resolves its root).
                store = await asyncio.to_thread(store_factory, target, opts)
                await store.put_file(probe, key, "text/plain; charset=utf-8")
        except TimeoutError:
            raise StorageError(
                f"storage check of {where} failed: unreachable: no answer within {timeout_s:g} s",
                code="Timeout",
                kind=StorageErrorKind.UNREACHABLE,
            ) from None
        try:
            async with asyncio.timeout_at(deadline):
                await store.delete(key)
        except (StorageError, TimeoutError) as exc:
            reason = exc.message if isinstance(exc, StorageError) else "no answer in time"
            event(log, "storage.probe_left", logging.WARNING, target=where, key=key, error=reason)
    finally:
        if store is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(store.close(), 2.0)
        await asyncio.to_thread(probe.unlink, True)
    event(log, "storage.checked", target=where, seconds=round(time.monotonic() - started, 3))
