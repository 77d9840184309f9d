"""Tenant images of mixed recordings (watermarks, backgrounds, placeholders), fetched safely.

A layout names its images by URL. :class:`ImageFetcher` is the only way they reach the
compositor:

* fetched on the event loop through the node's :class:`~roomcast.net.urls.UrlPolicy` (http(s),
  public addresses; every redirect hop is checked again), within ``url_fetch_timeout_s`` for the
  whole fetch and ``url_fetch_max_bytes`` for the body;
* decoded in a worker thread (never on the event loop, never on a mixing thread), as a still
  image only (PNG, JPEG, WebP, BMP, GIF's first frame) of at most :data:`MAX_PIXELS`;
* kept in a bounded LRU cache shared by every recording of the node; a failure is logged and
  remembered for ``failure_ttl_s`` (the image is absent meanwhile; the recording goes on).

The compositor reads the cache only (:meth:`ImageFetcher.get`, a dictionary look-up); the mixer
asks for a layout's images when it applies the layout (:meth:`ImageFetcher.fetch_all`) and
redraws once they arrive.

``s3://bucket/object`` images are objects of the recording's own store: a recording reads them
through :meth:`ImageFetcher.for_objects` with an :class:`ObjectReader` (the storage layer's, for
the task's storage target), within the same time and size limits, never over HTTP. Their cache
entries are per store (``ObjectReader.scope``), so one store's picture never serves another's.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Final, Protocol

import av
import httpx
import numpy as np
import numpy.typing as npt

from roomcast.domain.layout import ImageWatermark, Layout
from roomcast.net.urls import UrlPolicy, UrlRefused
from roomcast.storage.base import StorageError

__all__ = [
    "MAX_PIXELS",
    "ImageFetcher",
    "ImageSource",
    "JobImages",
    "ObjectReader",
    "decode_image",
    "layout_image_urls",
    "object_ref",
]

log = logging.getLogger(__name__)

U8Array = npt.NDArray[np.uint8]

MAX_PIXELS: Final = 4096 * 4096
"""Largest decoded image (a small compressed file can declare a huge picture)."""
MAX_REDIRECTS: Final = 3
_IMAGE_DEMUXERS: Final = frozenset({"png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "gif", "gif_pipe"})


class ImageError(Exception):
    """Why an image could not be used (logged; the image is then absent)."""


_FETCH_ERRORS = (
    ImageError,
    UrlRefused,
    StorageError,
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.StreamError,
    TimeoutError,
)
OBJECT_SCHEME: Final = "s3://"


class ObjectReader(Protocol):
    """Reads objects of a recording's store (``roomcast.storage.objects.TargetObjects``)."""

    scope: str
    """Which store: cache entries of its objects are kept apart from other stores'."""

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes: ...


class ImageSource(Protocol):
    """What the mixer needs: the cache (any thread) and fetching (event loop)."""

    def get(self, url: str) -> U8Array | None: ...

    def known(self, url: str) -> bool: ...

    async def fetch_all(self, urls: Iterable[str]) -> None: ...


def object_ref(url: str) -> tuple[str, str] | None:
    """``(bucket, key)`` of an ``s3://bucket/object`` reference; None for other URLs."""
    if not url.startswith(OBJECT_SCHEME):
        return None
    bucket, _, key = url[len(OBJECT_SCHEME) :].partition("/")
    return (bucket, key) if bucket and key else None


def layout_image_urls(layout: Layout) -> list[str]:
    """Every image URL a layout draws, without repeats, in drawing order."""
    urls: dict[str, None] = {}
    bg = layout.canvas.background.image
    if bg is not None:
        urls[bg.url] = None
    for pane in layout.panes:
        for ref in (pane.background_image, pane.placeholder.image):
            if ref is not None:
                urls[ref.url] = None
    for mark in layout.canvas.watermarks:
        if isinstance(mark, ImageWatermark):
            urls[mark.image.url] = None
    return list(urls)


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> U8Array:
    """A still image file to an ``(h, w, 4)`` RGBA array; :class:`ImageError` if it is not one."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if container.format.name not in _IMAGE_DEMUXERS:
                raise ImageError(f"not a still image ({container.format.name})")
            if not container.streams.video:
                raise ImageError("no picture in the file")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
            if width * height > max_pixels:
                raise ImageError(f"picture too large ({width}x{height})")
            for frame in container.decode(stream):
                if frame.width * frame.height > max_pixels:
                    raise ImageError(f"picture too large ({frame.width}x{frame.height})")
                return np.ascontiguousarray(frame.to_ndarray(format="rgba"), dtype=np.uint8)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ImageError(f"cannot decode: {exc}") from None
    raise ImageError("no picture in the file")


class ImageFetcher:
    """Fetches, decodes and caches tenant images (one per node; thread-safe reads)."""

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        timeout_s: float = 5.0,
        max_bytes: int = 10_000_000,
        cache_entries: int = 64,
        cache_bytes: int = 256 * 1024 * 1024,
        failure_ttl_s: float = 60.0,
    ) -> None:
        self.policy = policy
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.cache_entries = cache_entries
        self.cache_bytes = cache_bytes
        self.failure_ttl_s = failure_ttl_s
        self._lock = threading.Lock()
        self._cache: collections.OrderedDict[str, U8Array] = collections.OrderedDict()
        self._cached_bytes = 0
        self._failed: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[U8Array | None]] = {}
        self.fetches = 0
        """Downloads started (cache misses), for tests and figures."""

    @classmethod
    def from_settings(cls, settings: Any) -> ImageFetcher:
        return cls(
            UrlPolicy.from_settings(settings),
            timeout_s=float(settings.url_fetch_timeout_s),
            max_bytes=int(settings.url_fetch_max_bytes),
        )

    # ------------------------------------------------------------------ cache (any thread)

    def get(self, url: str) -> U8Array | None:
        """The cached image (None if not fetched, failed or evicted): the compositor's loader."""
        with self._lock:
            img = self._cache.get(url)
            if img is not None:
                self._cache.move_to_end(url)
            return img

    def known(self, url: str) -> bool:
        """Cached, or failed recently (no point in asking again yet)."""
        with self._lock:
            if url in self._cache:
                return True
            until = self._failed.get(url)
            return until is not None and time.monotonic() < until

    def _store(self, url: str, img: U8Array) -> None:
        with self._lock:
            self._failed.pop(url, None)
            old = self._cache.pop(url, None)
            if old is not None:
                self._cached_bytes -= old.nbytes
            if img.nbytes > self.cache_bytes:
                return
            self._cache[url] = img
            self._cached_bytes += img.nbytes
            while len(self._cache) > self.cache_entries or self._cached_bytes > self.cache_bytes:
                _, evicted = self._cache.popitem(last=False)
                self._cached_bytes -= evicted.nbytes

    def _fail(self, url: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._failed = {u: t for u, t in self._failed.items() if t > now}
            self._failed[url] = now + self.failure_ttl_s

    # ------------------------------------------------------------------ fetching (event loop)

    def for_objects(self, objects: ObjectReader | None) -> ImageSource:
        """This fetcher for one recording: ``s3://`` images come from ``objects`` (None: such
        images are absent)."""
        return JobImages(self, objects)

    async def fetch(self, url: str, objects: ObjectReader | None = None) -> U8Array | None:
        """The image at ``url`` (cached; concurrent callers share one download). Never raises:
        a failure is logged and gives None. ``s3://`` URLs are read with ``objects``."""
        key = cache_key(url, objects)
        img = self.get(key)
        if img is not None or self.known(key):
            return img
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[U8Array | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            img = await self._load(url, key, objects)
            fut.set_result(img)
            return img
        except BaseException:
            fut.set_result(None)
            raise
        finally:
            del self._inflight[key]

    async def fetch_all(self, urls: Iterable[str], objects: ObjectReader | None = None) -> None:
        await asyncio.gather(*(self.fetch(u, objects) for u in dict.fromkeys(urls)))

    async def _load(self, url: str, key: str, objects: ObjectReader | None) -> U8Array | None:
        self.fetches += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                data = await self._read(url, objects)
            img = await asyncio.to_thread(decode_image, data)
        except _FETCH_ERRORS as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            log.warning("image %s not used: %s", url, reason)
            self._fail(key)
            return None
        self._store(key, img)
        return img

    async def _read(self, url: str, objects: ObjectReader | None) -> bytes:
        ref = object_ref(url)
        if ref is None:
            if url.startswith(OBJECT_SCHEME):
                raise ImageError("not an s3://bucket/object reference")
            return await self._download(url)
        if objects is None:
            raise ImageError("no store to read s3:// images from")
        return await objects.read(ref[0], ref[1], self.max_bytes)

    async def _download(self, url: str) -> bytes:
        # A client of its own: images are fetched rarely (cached), and no proxy from the
        # environment may stand between the policy's check and the connection.
        async with httpx.AsyncClient(trust_env=False, timeout=self.timeout_s) as client:
            for _ in range(MAX_REDIRECTS + 1):
                resp = await self.policy.send(client, "GET", url, stream=True)
                try:
                    if resp.is_redirect and "location" in resp.headers:
                        # against the URL as given: resp.url may be the pinned address
                        url = str(httpx.URL(url).join(resp.headers["location"]))
                        continue
                    if resp.status_code != 200:
                        raise ImageError(f"HTTP {resp.status_code}")
                    length = resp.headers.get("content-length")
                    if length is not None and length.isdigit() and int(length) > self.max_bytes:
                        raise ImageError(f"larger than {self.max_bytes} bytes")
                    body = bytearray()
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise ImageError(f"larger than {self.max_bytes} bytes")
                    return bytes(body)
                finally:
                    await resp.aclose()
        raise ImageError("too many redirects")


def cache_key(url: str, objects: ObjectReader | None) -> str:
    """An ``s3://`` image is cached per store; any other URL as itself."""
    if objects is not None and url.startswith(OBJECT_SCHEME):
        return f"{objects.scope}\x1f{url}"
    return url


class JobImages:
    """An :class:`ImageFetcher` seen by one recording: its ``s3://`` images are its store's."""

    def __init__(self, fetcher: ImageFetcher, objects: ObjectReader | None) -> None:
        self._fetcher = fetcher
        self._objects = objects

    def get(self, url: str) -> U8Array | None:
        return self._fetcher.get(cache_key(url, self._objects))

    def known(self, url: str) -> bool:
        return self._fetcher.known(cache_key(url, self._objects))

    async def fetch_all(self, urls: Iterable[str]) -> None:
        await self._fetcher.fetch_all(urls, self._objects)
