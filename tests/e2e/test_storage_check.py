"""The pre-flight storage check against a real S3 protocol server (moto) and local folders."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomcast.log import JsonFormatter
from roomcast.storage import StorageError, StorageOptions, StorageTarget, check_target
from roomcast.storage.check import PROBE_PREFIX
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, free_port


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _target(
    bucket: str, prefix: str = "", access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> StorageTarget:
    return StorageTarget(
        kind="s3",
        vendor="tencent",
        region=REGION,
        bucket=bucket,
        prefix=prefix,
        access_key=access_key,
        secret_key=secret_key,
    )


def _opts(endpoint: str) -> StorageOptions:
    return StorageOptions(local_root=Path("/nonexistent"), s3_endpoint_override=endpoint)


def _keys(moto: MotoS3, bucket: str) -> list[str]:
    return [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def _no_secrets(exc: StorageError, *secrets: str) -> None:
    for s in (ACCESS_KEY, SECRET_KEY, *secrets):
        assert s not in str(exc) and s not in exc.message


async def test_good_bucket_and_prefix(moto: MotoS3) -> None:
    bucket = moto.make_bucket()
    started = time.monotonic()
    await check_target(_target(bucket, "app1/rec"), _opts(moto.endpoint))
    assert time.monotonic() - started < 10  # the default bound
    assert _keys(moto, bucket) == []  # the probe was deleted


async def test_missing_bucket_is_permanent(moto: MotoS3) -> None:
    bucket = "rc-missing-" + os.urandom(4).hex()
    with pytest.raises(StorageError) as ei:
        await check_target(_target(bucket, "app1/rec"), _opts(moto.endpoint))
    err = ei.value
    assert err.kind == "no_such_bucket" and not err.retryable and err.code == "NoSuchBucket"
    assert f"s3://{bucket}/app1/rec/{PROBE_PREFIX}" in err.message
    _no_secrets(err)


async def test_invalid_bucket_name_is_permanent(moto: MotoS3) -> None:
    with pytest.raises(StorageError) as ei:
        await check_target(_target("Not A Bucket!"), _opts(moto.endpoint))
    assert ei.value.kind == "invalid_request" and not ei.value.retryable


async def test_credentials_and_permissions(moto: MotoS3, caplog: pytest.LogCaptureFixture) -> None:
    """moto checks signatures and IAM policies only when asked to (:meth:`MotoS3.enforce_auth`)."""
    bucket = moto.make_bucket()
    full = moto.iam_user(["s3:*"])
    read_only = moto.iam_user(["s3:GetObject", "s3:ListBucket"])
    write_only = moto.iam_user(["s3:PutObject"])
    opts = _opts(moto.endpoint)
    with moto.enforce_auth():
        await check_target(_target(bucket, "p", *full), opts)

        for ak, sk in [
            ("AKIAUNKNOWN000000000", "whatever-secret-value"),
            (full[0], "wrong-secret-value-123"),
        ]:
            with pytest.raises(StorageError) as ei:
                await check_target(_target(bucket, "p", ak, sk), opts)
            assert ei.value.kind == "bad_credentials" and not ei.value.retryable
            assert ei.value.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch")
            _no_secrets(ei.value, ak, sk)

        with pytest.raises(StorageError) as ei:
            await check_target(_target(bucket, "p", *read_only), opts)
        assert ei.value.kind == "access_denied" and not ei.value.retryable and ei.value.code == "AccessDenied"
        assert f"s3://{bucket}/p/{PROBE_PREFIX}" in ei.value.message
        _no_secrets(ei.value, *read_only)

        # Allowed to write but not to delete: accepted, the probe stays and the log says where.
        with caplog.at_level(logging.INFO, logger="roomcast.storage.check"):
            await check_target(_target(bucket, "p", *write_only), opts)
    left = _keys(moto, bucket)
    assert len(left) == 1 and left[0].startswith(f"p/{PROBE_PREFIX}")
    record = next(r for r in caplog.records if r.getMessage() == "storage.probe_left")
    line = json.loads(JsonFormatter().format(record))
    assert line["key"] == left[0].removeprefix("p/") and "AccessDenied" in line["error"]


async def test_closed_port_is_unreachable_and_bounded() -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as ei:
        await check_target(_target("b"), _opts(f"http://127.0.0.1:{free_port()}"), timeout_s=5)
    elapsed = time.monotonic() - started
    assert ei.value.kind == "unreachable" and ei.value.retryable
    assert elapsed < 5
    _no_secrets(ei.value)


async def test_silent_endpoint_times_out_as_unreachable() -> None:
    """A listener that never answers (a black hole behind a load balancer): the check's own bound."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StorageError) as ei:
            await check_target(_target("b"), _opts(f"http://127.0.0.1:{port}"), timeout_s=1.0)
        elapsed = time.monotonic() - started
    assert ei.value.kind == "unreachable" and ei.value.retryable and ei.value.code == "Timeout"
    assert 0.9 < elapsed < 3.0
    # The event loop was never blocked while the client waited.
    assert await asyncio.wait_for(asyncio.sleep(0, result=True), 0.5)


async def test_local_target(tmp_path: Path) -> None:
    root = tmp_path / "media"
    opts = StorageOptions(local_root=root)
    await check_target(StorageTarget(kind="local", bucket="tenant-a", prefix="app/rec"), opts)
    assert [p for p in root.rglob("*") if p.is_file()] == []

    # The folder cannot be created: a file is in the way.
    (tmp_path / "blocked").write_bytes(b"")
    with pytest.raises(StorageError) as ei:
        await check_target(
            StorageTarget(kind="local", prefix="rec"), StorageOptions(local_root=tmp_path / "blocked")
        )
    assert ei.value.kind == "invalid_request" and not ei.value.retryable
    assert f"local:/rec/{PROBE_PREFIX}" in ei.value.message and str(tmp_path) not in ei.value.message
