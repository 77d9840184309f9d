"""A directory as an object store: the default target, and the one tests use without a network.

Writes are atomic (a temporary file in the destination directory, fsync, rename), so a reader never
sees half a file and a crash leaves either the old object or the new one. Keys are checked
(:func:`check_key`) and the resolved path must stay under the root, which also stops symlinks inside
the root from pointing writes elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from roomcast.storage.base import (
    TMP_MARKER,
    InvalidKey,
    ObjectInfo,
    ObjectStore,
    StorageError,
    check_key,
    check_prefix,
    guess_content_type,
)

_XATTR = "user.roomcast.content_type"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalStore(ObjectStore):
    """Objects as files under ``root`` (optionally under a key prefix inside it).

    ``base_url``, when given, is where the node serves this directory over HTTP; :meth:`url` then
    returns ``{base_url}/{key}``, otherwise a ``file://`` URL.
    """

    kind = "local"

    def __init__(self, root: Path, *, prefix: str = "", base_url: str | None = None) -> None:
        self.root = root.resolve()
        self.prefix = check_prefix(prefix)
        self.base_url = base_url.rstrip("/") if base_url else None

    def __repr__(self) -> str:
        return f"LocalStore(root={str(self.root)!r}, prefix={self.prefix!r})"

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``; raises :class:`InvalidKey` if it would leave the root."""
        full = self.prefix + check_key(key)
        path = self.root.joinpath(*full.split("/"))
        # Resolve symlinks of existing parents: a link inside the root must not lead outside it.
        resolved = path.parent.resolve() / path.name
        if not resolved.is_relative_to(self.root):
            raise InvalidKey("object key resolves outside the store root")
        return resolved

    # -- blocking parts, run in a thread ------------------------------------------------------------

    def _info(self, key: str, path: Path) -> ObjectInfo | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        ctype: str | None = None
        with contextlib.suppress(OSError, AttributeError):
            ctype = os.getxattr(path, _XATTR).decode()
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=ctype or guess_content_type(key),
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _put(self, src: Path, key: str, content_type: str) -> ObjectInfo:
        dest = self.path_for(key)
        if not src.is_file():
            raise StorageError(f"local file to store does not exist: {src}", retryable=False)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise StorageError(f"a parent of {key!r} is an object, not a folder", retryable=False) from exc
        tmp = dest.parent / f"{TMP_MARKER}{secrets.token_hex(6)}-{dest.name}"
        try:
            with src.open("rb") as fin, tmp.open("wb") as fout:
                shutil.copyfileobj(fin, fout, 1024 * 1024)
                fout.flush()
                os.fsync(fout.fileno())
            with contextlib.suppress(OSError, AttributeError):
                os.setxattr(tmp, _XATTR, content_type.encode())
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(dest.parent)
        info = self._info(key, dest)
        assert info is not None
        return info

    def _get(self, key: str, dest: Path) -> ObjectInfo:
        src = self.path_for(key)
        info = self._info(key, src)
        if info is None:
            raise StorageError(f"no such object: {key}", retryable=False, code="NoSuchKey")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return info

    def _delete(self, key: str) -> None:
        path = self.path_for(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
        # Remove folders the delete left empty, up to (not including) the root.
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _list(self, prefix: str) -> list[ObjectInfo]:
        base = self.root.joinpath(*self.prefix.rstrip("/").split("/")) if self.prefix else self.root
        # Walk only the deepest folder the prefix names completely.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base.joinpath(*folder.split("/")) if folder else base
        start_resolved = start.resolve()
        if not start_resolved.is_relative_to(self.root) or not start_resolved.is_dir():
            return []
        out: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(start_resolved):
            dirnames[:] = [d for d in dirnames if not d.startswith(TMP_MARKER)]
            for name in filenames:
                if name.startswith(TMP_MARKER):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(base).as_posix()
                if not key.startswith(prefix):
                    continue
                info = self._info(key, path)
                if info is not None:
                    out.append(info)
        out.sort(key=lambda i: i.key)
        return out

    # -- the interface ------------------------------------------------------------------------------

    async def put_file(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
        check_key(key)
        return await asyncio.to_thread(self._put, path, key, content_type or guess_content_type(key))

    async def head(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        return await asyncio.to_thread(self._info, key, path)

    async def get_file(self, key: str, path: Path) -> ObjectInfo:
        return await asyncio.to_thread(self._get, key, path)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    async def url(self, key: str, expires_s: int = 3600) -> str:
        path = self.path_for(key)
        if self.base_url:
            return f"{self.base_url}/{quote(self.prefix + key)}"
        return path.as_uri()

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        return await asyncio.to_thread(self._list, prefix)
