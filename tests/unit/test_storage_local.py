"""The local directory store: round trips, atomic writes, keys that cannot escape the root."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from roomcast.storage import InvalidKey, LocalStore, StorageError, check_key, guess_content_type
from roomcast.storage.base import TMP_MARKER, os_error_kind


def _file(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / "src" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


async def test_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "a.ts", b"\x47" * 1000)
    info = await store.put_file(src, "task-1/seg00001.ts")
    assert info.size == 1000
    assert info.content_type == "video/mp2t"
    head = await store.head("task-1/seg00001.ts")
    assert head is not None and head.size == 1000
    assert await store.exists("task-1/seg00001.ts")
    assert not await store.exists("task-1/nope.ts")
    assert await store.head("task-1/nope.ts") is None

    out = tmp_path / "out" / "copy.ts"
    got = await store.get_file("task-1/seg00001.ts", out)
    assert got.size == 1000 and out.read_bytes() == src.read_bytes()

    url = await store.url("task-1/seg00001.ts")
    assert url.startswith("file://") and url.endswith("/store/task-1/seg00001.ts")

    await store.delete("task-1/seg00001.ts")
    assert not await store.exists("task-1/seg00001.ts")
    assert not (tmp_path / "store" / "task-1").exists()  # emptied folders go too
    await store.delete("task-1/seg00001.ts")  # deleting a missing object is fine
    with pytest.raises(StorageError):
        await store.get_file("task-1/seg00001.ts", out)


async def test_explicit_content_type_and_overwrite(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    await store.put_file(_file(tmp_path, "x", b"one"), "k/data.bin", "application/x-custom")
    info = await store.head("k/data.bin")
    assert info is not None
    # The type is kept in an extended attribute where the filesystem has them, guessed otherwise.
    assert info.content_type in {"application/x-custom", "application/octet-stream"}
    await store.put_file(_file(tmp_path, "y", b"second"), "k/data.bin")
    assert (tmp_path / "store" / "k" / "data.bin").read_bytes() == b"second"


async def test_list_and_prefix(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store", prefix="rec/app1", base_url="http://node:8080/storage")
    src = _file(tmp_path, "f", b"12345")
    for key in ["t1/a.ts", "t1/b.ts", "t1/sub/c.ts", "t2/a.ts", "t10/a.ts"]:
        await store.put_file(src, key)
    assert (tmp_path / "store" / "rec" / "app1" / "t1" / "sub" / "c.ts").is_file()
    # A stray temporary file is never listed.
    (tmp_path / "store" / "rec" / "app1" / "t1" / f"{TMP_MARKER}x-a.ts").write_bytes(b"partial")

    keys = [i.key for i in await store.list("t1/")]
    assert keys == ["t1/a.ts", "t1/b.ts", "t1/sub/c.ts"]
    assert [i.key for i in await store.list("t1")] == ["t1/a.ts", "t1/b.ts", "t1/sub/c.ts", "t10/a.ts"]
    assert len(await store.list()) == 5
    assert await store.list("nothing/") == []
    assert await store.url("t1/a.ts") == "http://node:8080/storage/rec/app1/t1/a.ts"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../escape",
        "a/../../escape",
        "a/./b",
        "a//b",
        "a/b/",
        "a\\b",
        "a/\x00b",
        "a/\nb",
        f"a/{TMP_MARKER}x",
        "k" * 1025,
    ],
)
async def test_bad_keys_rejected(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "f", b"x")
    with pytest.raises(InvalidKey):
        check_key(key)
    with pytest.raises(InvalidKey):
        await store.put_file(src, key)
    with pytest.raises(InvalidKey):
        await store.head(key)
    with pytest.raises(InvalidKey):
        await store.delete(key)
    assert not (tmp_path / "escape").exists()


async def test_symlink_inside_root_cannot_lead_out(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    store = LocalStore(root)
    with pytest.raises(InvalidKey):
        await store.put_file(_file(tmp_path, "f", b"x"), "link/file.ts")
    assert list(outside.iterdir()) == []


async def test_failed_write_leaves_no_partial_object(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(StorageError) as ei:
        await store.put_file(tmp_path / "missing.ts", "a/b.ts")
    assert ei.value.kind == "source_missing" and not ei.value.retryable
    assert not await store.exists("a/b.ts")
    leftovers = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert leftovers == []


async def test_object_and_folder_conflict(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "f", b"x")
    await store.put_file(src, "a")
    with pytest.raises(StorageError) as ei:
        await store.put_file(src, "a/b")
    assert ei.value.kind == "invalid_request" and not ei.value.retryable
    assert "a/b" in ei.value.message


async def test_operating_system_errors_are_classified(tmp_path: Path) -> None:
    # The root is a file: every operation fails with ENOTDIR, as a StorageError naming the key.
    (tmp_path / "file").write_bytes(b"")
    store = LocalStore(tmp_path / "file")
    with pytest.raises(StorageError) as ei:
        await store.put_file(_file(tmp_path, "f", b"x"), "rec/a.ts")
    assert (
        ei.value.kind == "invalid_request" and ei.value.code == "ENOTDIR" and "rec/a.ts" in ei.value.message
    )
    with pytest.raises(StorageError) as ei:
        await LocalStore(tmp_path / "store").get_file("none.ts", tmp_path / "out.ts")
    assert ei.value.kind == "no_such_key" and not ei.value.retryable


@pytest.mark.parametrize(
    ("err", "kind", "retryable"),
    [
        (errno.EACCES, "access_denied", False),
        (errno.EPERM, "access_denied", False),
        (errno.EROFS, "access_denied", False),
        (errno.ENOSPC, "storage_full", True),
        (errno.EDQUOT, "storage_full", True),
        (errno.EIO, "unknown", True),
    ],
)
def test_os_error_kinds(err: int, kind: str, retryable: bool) -> None:
    k = os_error_kind(OSError(err, os.strerror(err)))
    assert k == kind and StorageError("x", kind=k).retryable is retryable


def test_content_types() -> None:
    assert guess_content_type("x/playlist.m3u8") == "application/vnd.apple.mpegurl"
    assert guess_content_type("x/SEG.TS") == "video/mp2t"
    assert guess_content_type("x/a.mp4") == "video/mp4"
    assert guess_content_type("x/a.m4a") == "audio/mp4"
    assert guess_content_type("x/unknown.zzz") == "application/octet-stream"
