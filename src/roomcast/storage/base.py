"""The object store interface shared by the local directory store and the S3-compatible store.

Keys are relative, slash-separated paths (``task-1/seg00001.ts``). They are validated the same way
for every store, so a key that works against the local store in tests also works against S3, and a
key can never climb out of the local store's root.
"""

from __future__ import annotations

import abc
import asyncio
import errno
import posixpath
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

MAX_KEY_BYTES = 1024
"""S3's limit on the length of an object key (UTF-8 bytes), including any store prefix."""

TMP_MARKER = ".rc-tmp-"
"""Name prefix of the local store's in-flight temporary files; never a valid key segment."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Explicit types for what recordings produce: ``mimetypes`` reads /etc/mime.types, which differs
# between hosts (e.g. ``.ts`` is sometimes "text/vnd.trolltech.linguist").
CONTENT_TYPES: dict[str, str] = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".webm": "video/webm",
    ".flv": "video/x-flv",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".vtt": "text/vtt",
    ".srt": "application/x-subrip",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def guess_content_type(name: str) -> str:
    """The content type recordings use for a file name (by extension), octet-stream otherwise."""
    return CONTENT_TYPES.get(posixpath.splitext(name)[1].lower(), DEFAULT_CONTENT_TYPE)


class StorageErrorKind(StrEnum):
    """What went wrong with a store, in roomcast's own words (stable: stored, mapped by dialects).

    Permanent kinds (retrying the same request cannot help; a person must fix the target):

    - ``no_such_bucket``: the bucket (or the local folder's store) does not exist;
    - ``access_denied``: the credentials are valid but may not do this (bucket policy, ACL,
      a local folder that is not writable);
    - ``bad_credentials``: the store does not know the access key, the signature does not match
      (wrong secret key), the session token is invalid or expired, or there are no credentials;
    - ``wrong_endpoint``: the bucket lives elsewhere (``PermanentRedirect``, a region mismatch in
      the signature, a path-style request to a store that forbids it) or the endpoint is malformed;
    - ``invalid_request``: the request itself is invalid (bucket name, object key, region, vendor,
      an argument the store rejects); also any 4xx answer roomcast does not know;
    - ``no_such_key``: the object to read does not exist;
    - ``source_missing``: the local file to upload does not exist.

    Transient kinds (retry with backoff):

    - ``unreachable``: no connection (refused, DNS, TLS, connect timeout, or no answer at all
      within a check's time budget);
    - ``interrupted``: the connection broke or timed out mid-request, or the body arrived
      damaged (``RequestTimeout``, ``BadDigest``, ``IncompleteBody``, read timeouts);
    - ``throttled``: the store asks to slow down (``SlowDown``, ``Throttling``, HTTP 429);
    - ``server_error``: the store failed (HTTP 5xx, ``InternalError``, ``ServiceUnavailable``);
    - ``storage_full``: a local disk or quota is full (space may be freed);
    - ``unknown``: anything else (retried, bounded by the queue's attempt limit).
    """

    NO_SUCH_BUCKET = "no_such_bucket"
    ACCESS_DENIED = "access_denied"
    BAD_CREDENTIALS = "bad_credentials"
    WRONG_ENDPOINT = "wrong_endpoint"
    INVALID_REQUEST = "invalid_request"
    NO_SUCH_KEY = "no_such_key"
    SOURCE_MISSING = "source_missing"
    UNREACHABLE = "unreachable"
    INTERRUPTED = "interrupted"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    STORAGE_FULL = "storage_full"
    UNKNOWN = "unknown"

    @property
    def permanent(self) -> bool:
        """True if retrying cannot help (the default ``retryable`` is the opposite)."""
        return self in PERMANENT_KINDS


PERMANENT_KINDS: frozenset[StorageErrorKind] = frozenset(
    {
        StorageErrorKind.NO_SUCH_BUCKET,
        StorageErrorKind.ACCESS_DENIED,
        StorageErrorKind.BAD_CREDENTIALS,
        StorageErrorKind.WRONG_ENDPOINT,
        StorageErrorKind.INVALID_REQUEST,
        StorageErrorKind.NO_SUCH_KEY,
        StorageErrorKind.SOURCE_MISSING,
    }
)


class StorageError(Exception):
    """A store operation failed. The message names the bucket and object key, never credentials.

    ``kind`` is roomcast's classification (:class:`StorageErrorKind`), ``code`` the store's own
    error code when there is one (``NoSuchBucket``, ``SignatureDoesNotMatch``, ``ENOSPC``...).
    ``retryable`` defaults to False for the permanent kinds and True otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        code: str | None = None,
        kind: StorageErrorKind | str = StorageErrorKind.UNKNOWN,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = StorageErrorKind(kind)
        self.retryable = (not self.kind.permanent) if retryable is None else retryable
        self.code = code

    def __repr__(self) -> str:
        return (
            f"StorageError({self.message!r}, kind={self.kind.value!r}, code={self.code!r}, "
            f"retryable={self.retryable})"
        )


_OS_ERRNO_KINDS: dict[int, StorageErrorKind] = {
    errno.EACCES: StorageErrorKind.ACCESS_DENIED,
    errno.EPERM: StorageErrorKind.ACCESS_DENIED,
    errno.EROFS: StorageErrorKind.ACCESS_DENIED,
    errno.ENOSPC: StorageErrorKind.STORAGE_FULL,
    errno.EDQUOT: StorageErrorKind.STORAGE_FULL,
    errno.ENOTDIR: StorageErrorKind.INVALID_REQUEST,
    errno.EISDIR: StorageErrorKind.INVALID_REQUEST,
    errno.EEXIST: StorageErrorKind.INVALID_REQUEST,
    errno.ENAMETOOLONG: StorageErrorKind.INVALID_REQUEST,
    errno.EINVAL: StorageErrorKind.INVALID_REQUEST,
    errno.ECONNREFUSED: StorageErrorKind.UNREACHABLE,
    errno.EHOSTUNREACH: StorageErrorKind.UNREACHABLE,
    errno.ENETUNREACH: StorageErrorKind.UNREACHABLE,
    errno.ETIMEDOUT: StorageErrorKind.UNREACHABLE,
    errno.ECONNRESET: StorageErrorKind.INTERRUPTED,
    errno.EPIPE: StorageErrorKind.INTERRUPTED,
}


def os_error_kind(exc: OSError) -> StorageErrorKind:
    """The kind of an operating-system error (a missing file is ``unknown``: the caller knows
    whether it was the source, the object or a folder)."""
    return _OS_ERRNO_KINDS.get(exc.errno or 0, StorageErrorKind.UNKNOWN)


class InvalidKey(StorageError, ValueError):
    """A key that is empty, absolute, contains ``.``/``..`` segments, control characters, etc."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, code="InvalidKey", kind=StorageErrorKind.INVALID_REQUEST)


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise :class:`InvalidKey`.

    Rejected: empty keys, absolute keys (``/a``), backslashes, empty segments (``a//b``, a trailing
    slash), ``.`` and ``..`` segments, control characters, the local store's temporary-file marker
    and keys longer than 1024 UTF-8 bytes.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("object key is empty")
    if key.startswith("/"):
        raise InvalidKey("object key must be relative (it starts with '/')")
    if "\\" in key:
        raise InvalidKey("object key must not contain backslashes")
    if _CONTROL.search(key):
        raise InvalidKey("object key must not contain control characters")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is longer than {MAX_KEY_BYTES} bytes")
    for seg in key.split("/"):
        if seg in {"", ".", ".."}:
            raise InvalidKey(f"object key has an empty, '.' or '..' segment: {key!r}")
        if seg.startswith(TMP_MARKER):
            raise InvalidKey(f"object key segments must not start with {TMP_MARKER!r}")
    return key


def check_prefix(prefix: str) -> str:
    """Normalize a store prefix: ``""`` or a valid key ending in ``/`` (``"a/b"`` -> ``"a/b/"``)."""
    p = prefix.strip("/")
    if not p:
        return ""
    check_key(p)
    return p + "/"


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object. ``key`` is relative to the store's prefix."""

    key: str
    size: int
    content_type: str | None = None
    etag: str | None = None
    last_modified: datetime | None = None


class ObjectStore(abc.ABC):
    """Where recordings go. Every method is a coroutine; blocking work runs off the event loop."""

    kind: str = ""

    @abc.abstractmethod
    async def put_file(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
        """Store the local file ``path`` under ``key`` (replacing any object there).

        Returns once the object is durable in the store. ``content_type`` defaults to a guess from
        the key's extension.
        """

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo | None:
        """The object's size and type, or ``None`` if there is no such object."""

    async def exists(self, key: str) -> bool:
        return await self.head(key) is not None

    @abc.abstractmethod
    async def get_file(self, key: str, path: Path) -> ObjectInfo:
        """Download ``key`` into the local file ``path`` (raises :class:`StorageError` if missing)."""

    async def read_bytes(self, key: str, max_bytes: int) -> bytes:
        """A small object's content; :class:`StorageError` if it is missing or larger than
        ``max_bytes`` (checked before the download and again on what arrived)."""
        info = await self.head(key)
        if info is None:
            raise StorageError(f"no such object {key!r}", code="NoSuchKey", kind=StorageErrorKind.NO_SUCH_KEY)
        too_large = StorageError(
            f"object {key!r} is larger than {max_bytes} bytes",
            code="TooLarge",
            kind=StorageErrorKind.INVALID_REQUEST,
        )
        if info.size > max_bytes:
            raise too_large
        with tempfile.TemporaryDirectory(prefix="rc-read-") as tmp:
            path = Path(tmp) / "object"
            await self.get_file(key, path)
            if path.stat().st_size > max_bytes:
                raise too_large
            return await asyncio.to_thread(path.read_bytes)

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    @abc.abstractmethod
    async def url(self, key: str, expires_s: int = 3600) -> str:
        """A URL a client can read the object from (presigned for private S3 buckets)."""

    @abc.abstractmethod
    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (plain string match), sorted by key."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections and threads."""
