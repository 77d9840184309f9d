"""S3Store against a real S3 protocol server on loopback (moto in server mode)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roomcast.storage import S3Store, StorageError, StorageOptions, StorageTarget, open_store
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, free_port

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _store(moto: MotoS3, bucket: str, **kw: object) -> S3Store:
    target = StorageTarget(
        kind="s3",
        vendor="tencent",  # any vendor: the override sends it to moto
        region=REGION,
        bucket=bucket,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        prefix=str(kw.pop("prefix", "")),
    )
    opts = StorageOptions(
        local_root=Path("/nonexistent"),
        s3_endpoint_override=moto.endpoint,
        s3_part_size=5 * MiB,
        s3_multipart_threshold=5 * MiB,
        s3_client_retries=1,
    )
    store = open_store(target, opts)
    assert isinstance(store, S3Store)
    return store


async def test_small_and_multipart_uploads(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.make_bucket()
    store = _store(moto, bucket, prefix="app1/rec")
    small = tmp_path / "seg.ts"
    small.write_bytes(os.urandom(64 * 1024))
    big = tmp_path / "full.mp4"
    big.write_bytes(os.urandom(12 * MiB + 123))
    try:
        info = await store.put_file(small, "task-1/seg00001.ts")
        assert info.size == 64 * 1024
        info = await store.put_file(big, "task-1/full.mp4")
        assert info.size == 12 * MiB + 123
        assert info.etag is not None and info.etag.endswith("-3")  # 5 + 5 + 2 MiB parts

        c = moto.client()
        for key, src, ctype in [
            ("task-1/seg00001.ts", small, "video/mp2t"),
            ("task-1/full.mp4", big, "video/mp4"),
        ]:
            obj = c.get_object(Bucket=bucket, Key=f"app1/rec/{key}")
            assert obj["Body"].read() == src.read_bytes()
            assert obj["ContentType"] == ctype
        assert c.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

        head = await store.head("task-1/full.mp4")
        assert head is not None and head.size == big.stat().st_size and head.content_type == "video/mp4"
        assert await store.head("task-1/none.mp4") is None
        assert [i.key for i in await store.list("task-1/")] == ["task-1/full.mp4", "task-1/seg00001.ts"]

        url = await store.url("task-1/seg00001.ts", expires_s=600)
        assert "X-Amz-Signature" in url and SECRET_KEY not in url
        async with httpx.AsyncClient() as http:
            r = await http.get(url)
        assert r.status_code == 200 and r.content == small.read_bytes()

        out = tmp_path / "down" / "full.mp4"
        await store.get_file("task-1/full.mp4", out)
        assert out.read_bytes() == big.read_bytes()

        await store.delete("task-1/seg00001.ts")
        assert not await store.exists("task-1/seg00001.ts")
        await store.delete("task-1/seg00001.ts")
        with pytest.raises(StorageError) as ei:
            await store.get_file("task-1/seg00001.ts", out)
        assert not ei.value.retryable
    finally:
        await store.close()


async def test_explicit_content_type(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.make_bucket()
    store = _store(moto, bucket)
    src = tmp_path / "x.bin"
    src.write_bytes(b"hello")
    try:
        await store.put_file(src, "x.bin", "application/x-roomcast")
        assert (
            moto.client().head_object(Bucket=bucket, Key="x.bin")["ContentType"] == "application/x-roomcast"
        )
    finally:
        await store.close()


async def test_errors_carry_no_secrets(moto: MotoS3, tmp_path: Path) -> None:
    src = tmp_path / "x.ts"
    src.write_bytes(b"x")
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(6 * MiB))
    bucket = "no-such-bucket-" + os.urandom(4).hex()
    store = _store(moto, bucket, prefix="app1")
    try:
        # A missing bucket is permanent, for a single PUT and for a multipart upload alike.
        for path, key in [(src, "a/x.ts"), (big, "a/big.mp4")]:
            with pytest.raises(StorageError) as ei:
                await store.put_file(path, key)
            err = ei.value
            assert err.kind == "no_such_bucket" and not err.retryable and err.code == "NoSuchBucket"
            assert f"s3://{bucket}/app1/{key}" in str(err)
            assert SECRET_KEY not in str(err) and ACCESS_KEY not in str(err)
    finally:
        await store.close()

    # A store nobody listens for: a connection error, retryable, still without secrets.
    dead = S3Store(
        bucket="b",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        client_retries=1,
    )
    try:
        with pytest.raises(StorageError) as ei:
            await dead.put_file(src, "a/x.ts")
        assert ei.value.retryable and ei.value.kind == "unreachable"
        assert "s3://b/a/x.ts" in str(ei.value)
        assert SECRET_KEY not in str(ei.value) and ACCESS_KEY not in str(ei.value)
    finally:
        await dead.close()


async def test_missing_source_file_is_permanent(moto: MotoS3, tmp_path: Path) -> None:
    store = _store(moto, moto.make_bucket())
    try:
        with pytest.raises(StorageError) as ei:
            await store.put_file(tmp_path / "gone.ts", "a/gone.ts")
        assert ei.value.kind == "source_missing" and not ei.value.retryable
    finally:
        await store.close()
