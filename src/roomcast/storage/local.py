"""A directory as an object store: the default target, and the one tests use without a network.

Writes are atomic (a temporary file in the destination directory, fsync, rename), so a reader never
sees half a file and a crash leaves either the old object or the new one. Keys are checked
(:func:`check_key`) and the resolved path must stay under the root, which also stops symlinks inside
the root from pointing writes elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from roomcast.storage.base import (
    TMP_MARKER,
    InvalidKey,
    ObjectInfo,
    ObjectStore,
    StorageError,
    StorageErrorKind,
    check_key,
    check_prefix,
    guess_content_type,
    os_error_kind,
)

T = TypeVar("T")

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
    returns ``{base_url}/{key}``, otherwise a ``file://`` URL. ``label`` names the store in error
    messages (which may reach tenants, so the factory passes ``local:<folder>``, not the node's path).
    """

    kind = "local"

    def __init__(
        self, root: Path, *, prefix: str = "", base_url: str | None = None, label: str | None = None
    ) -> None:
        self.root = root.resolve()
        self.prefix = check_prefix(prefix)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.label = (label or str(self.root)).rstrip("/")

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
            raise StorageError(
                f"local file to store as {self._where(key)} does not exist: {src}",
                code="ENOENT",
                kind=StorageErrorKind.SOURCE_MISSING,
            )
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise StorageError(
                f"put {self._where(key)} failed: a parent folder is a file",
                code="EEXIST",
                kind=StorageErrorKind.INVALID_REQUEST,
            ) from exc
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
            raise StorageError(
                f"get {self._where(key)} failed: no such object",
                code="NoSuchKey",
                kind=StorageErrorKind.NO_SUCH_KEY,
            )
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

    def _head(self, key: str) -> ObjectInfo | None:
        return self._info(key, self.path_for(key))

    def _url(self, key: str) -> str:
        path = self.path_for(key)
        if self.base_url:
            return f"{self.base_url}/{quote(self.prefix + key)}"
        return path.as_uri()

    def _where(self, key: str) -> str:
        return f"{self.label}/{self.prefix}{key}"

    def _error(self, op: str, key: str, exc: OSError) -> StorageError:
        kind = os_error_kind(exc)
        code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        reason = exc.strerror or type(exc).__name__  # not str(exc): it names the node's own paths
        return StorageError(f"{op} {self._where(key)} failed: {kind.value}: {reason}", code=code, kind=kind)

    async def _run(self, op: str, key: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in a thread; operating-system errors become classified :class:`StorageError`."""
        try:
            return await asyncio.to_thread(fn, *args)
        except StorageError:
            raise
        except OSError as exc:
            raise self._error(op, key, exc) from None

    # -- the interface ------------------------------------------------------------------------------

    async def put_file(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
        check_key(key)
        return await self._run("put", key, self._put, path, key, content_type or guess_content_type(key))

    async def head(self, key: str) -> ObjectInfo | None:
        check_key(key)
        return await self._run("head", key, self._head, key)

    async def get_file(self, key: str, path: Path) -> ObjectInfo:
        check_key(key)
        return await self._run("get", key, self._get, key, path)

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._run("delete", key, self._delete, key)

    async def url(self, key: str, expires_s: int = 3600) -> str:
        check_key(key)
        return await self._run("url", key, self._url, key)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        return await self._run("list", prefix, self._list, prefix)
