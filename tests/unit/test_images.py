"""Tenant images: fetched through the URL policy with size and time limits, decoded off the event
loop as still images only, cached (bounded LRU), and never read from local files."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from roomcast.domain.layout import Background, Canvas, Color, ImageRef, ImageWatermark, Layout, Rect
from roomcast.media.compositor import Compositor
from roomcast.media.images import ImageError, ImageFetcher, decode_image, layout_image_urls
from roomcast.net.urls import UrlPolicy

OPEN = UrlPolicy(allow_private=True)  # the test server runs on 127.0.0.1
STRICT = UrlPolicy(allow_private=False)


def png(width: int, height: int, rgba: tuple[int, int, int, int]) -> bytes:
    arr = np.zeros((height, width, 4), np.uint8)
    arr[...] = rgba
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = width, height, "rgba"
    frame = av.VideoFrame.from_ndarray(arr, format="rgba")
    return b"".join(bytes(p) for p in [*cc.encode(frame), *cc.encode(None)])


def mp4() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame(64, 64, "yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


RED = png(40, 20, (255, 0, 0, 255))


@contextmanager
def image_server(routes: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """Serve ``routes``: bytes, or a callable(handler) for special answers. Yields (base, hits)."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            route = routes.get(self.path.split("?", 1)[0])
            if callable(route):
                route(self)
                return
            if route is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(route)))
            self.end_headers()
            self.wfile.write(route)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", hits
    finally:
        srv.shutdown()
        srv.server_close()


def slow(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.end_headers()
    handler.wfile.write(RED[:10])
    handler.wfile.flush()
    time.sleep(3)
    handler.wfile.write(RED[10:])


def unsized(handler: BaseHTTPRequestHandler) -> None:  # no Content-Length: the limit counts bytes
    handler.send_response(200)
    handler.end_headers()
    handler.wfile.write(b"\x89PNG" + b"\0" * 50_000)


def redirect(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(302)
    handler.send_header("Location", "/red.png")
    handler.end_headers()


def test_decode_still_images_only() -> None:
    img = decode_image(RED)
    assert img.shape == (20, 40, 4) and tuple(img[0, 0]) == (255, 0, 0, 255)
    with pytest.raises(ImageError, match="not a still image"):
        decode_image(mp4())
    with pytest.raises(ImageError):
        decode_image(b"<html>not an image</html>" * 10)
    with pytest.raises(ImageError, match="too large"):
        decode_image(png(200, 200, (0, 0, 0, 255)), max_pixels=100 * 100)


async def test_fetch_cache_and_coalescing() -> None:
    with image_server({"/red.png": RED}) as (base, hits):
        fetcher = ImageFetcher(OPEN)
        url = f"{base}/red.png"
        assert fetcher.get(url) is None and not fetcher.known(url)
        a, b = await fetcher.fetch(url), await fetcher.fetch(url)
        assert a is not None and b is a and tuple(a[0, 0]) == (255, 0, 0, 255)
        assert fetcher.get(url) is a and hits == ["/red.png"]
        other = f"{base}/red.png?again"
        await fetcher.fetch_all([other, other, other])
        assert hits == ["/red.png", "/red.png?again"] and fetcher.fetches == 2


async def test_cache_is_a_bounded_lru() -> None:
    with image_server({"/red.png": RED}) as (base, _):
        fetcher = ImageFetcher(OPEN, cache_entries=2)
        first, second, third = (f"{base}/red.png?{n}" for n in (1, 2, 3))
        await fetcher.fetch(first)
        await fetcher.fetch(second)
        assert fetcher.get(first) is not None  # used: now the most recent
        await fetcher.fetch(third)
        assert fetcher.get(second) is None and fetcher.get(first) is not None
        assert fetcher.get(third) is not None
        by_bytes = ImageFetcher(OPEN, cache_bytes=20 * 40 * 4 + 10)
        await by_bytes.fetch(first)
        await by_bytes.fetch(second)
        assert by_bytes.get(first) is None and by_bytes.get(second) is not None


async def test_size_and_time_limits() -> None:
    big = png(300, 300, (1, 2, 3, 255)) + b"\0" * 20_000
    with image_server({"/big.png": big, "/slow.png": slow, "/unsized.png": unsized}) as (base, hits):
        fetcher = ImageFetcher(OPEN, max_bytes=10_000, timeout_s=0.5)
        assert await fetcher.fetch(f"{base}/big.png") is None  # Content-Length says too big
        assert await fetcher.fetch(f"{base}/unsized.png") is None  # counted while reading
        t0 = time.monotonic()
        assert await fetcher.fetch(f"{base}/slow.png") is None
        assert time.monotonic() - t0 < 2.0
        # failures are remembered for a while: no new download
        assert fetcher.known(f"{base}/big.png")
        assert await fetcher.fetch(f"{base}/big.png") is None
        assert hits.count("/big.png") == 1


async def test_redirects_are_followed_through_the_policy() -> None:
    with image_server({"/red.png": RED, "/go": redirect}) as (base, hits):
        img = await ImageFetcher(OPEN).fetch(f"{base}/go")
        assert img is not None and hits == ["/go", "/red.png"]


async def test_local_files_and_private_addresses_are_never_read(tmp_path: Path) -> None:
    local = tmp_path / "secret.png"
    local.write_bytes(RED)
    with image_server({"/red.png": RED}) as (base, hits):
        fetcher = ImageFetcher(STRICT)
        for url in (str(local), local.as_uri(), f"{base}/red.png", "http://169.254.169.254/latest/"):
            assert await fetcher.fetch(url) is None
        assert hits == []  # refused before connecting
    # nor does the compositor open anything by itself
    mark = ImageWatermark(Rect(0, 0, 40, 20), ImageRef(str(local)))
    canvas = Canvas(64, 32, background=Background(Color(0, 0, 255)), watermarks=(mark,))
    out = Compositor(Layout(canvas)).compose({})
    assert abs(int(out.to_ndarray(format="rgb24")[10, 10][2]) - 255) < 20  # still blue


async def test_images_arrive_in_the_compositor_after_the_fetch() -> None:
    with image_server({"/red.png": RED}) as (base, _):
        fetcher = ImageFetcher(OPEN)
        mark = ImageWatermark(Rect(0, 0, 40, 20), ImageRef(f"{base}/red.png"))
        layout = Layout(Canvas(64, 32, background=Background(Color(0, 0, 255)), watermarks=(mark,)))
        assert layout_image_urls(layout) == [f"{base}/red.png"]
        comp = Compositor(layout, image_loader=fetcher.get)
        before = comp.compose({}).to_ndarray(format="rgb24")[10, 10]
        await fetcher.fetch_all(layout_image_urls(layout))
        comp.reload_images()
        after = comp.compose({}).to_ndarray(format="rgb24")[10, 10]
    assert before[2] > 200 and after[0] > 200 and after[2] < 50


class FakeObjects:
    """An ObjectReader over a dict (what the storage layer's TargetObjects does against a store)."""

    def __init__(self, scope: str, objects: dict[tuple[str, str], bytes]) -> None:
        self.scope = scope
        self.objects = objects
        self.reads: list[tuple[str, str, int]] = []

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        self.reads.append((bucket, key, max_bytes))
        data = self.objects[(bucket, key)]
        if len(data) > max_bytes:
            raise ImageError("too large")
        return data


async def test_s3_images_come_from_the_recordings_store_not_http() -> None:
    red, blue = png(8, 8, (255, 0, 0, 255)), png(8, 8, (0, 0, 255, 255))
    fetcher = ImageFetcher(STRICT, max_bytes=10_000)
    mine = FakeObjects("store-a", {("b", "bg/sky.png"): red})
    other = FakeObjects("store-b", {("b", "bg/sky.png"): blue})
    url = "s3://b/bg/sky.png"
    a, b = fetcher.for_objects(mine), fetcher.for_objects(other)
    await a.fetch_all([url])
    await b.fetch_all([url])
    img_a, img_b = a.get(url), b.get(url)
    assert img_a is not None and tuple(img_a[0, 0]) == (255, 0, 0, 255)
    # Same URL, another store: its own object, never the other store's cached picture.
    assert img_b is not None and tuple(img_b[0, 0]) == (0, 0, 255, 255)
    assert mine.reads == [("b", "bg/sky.png", 10_000)] and len(other.reads) == 1
    await a.fetch_all([url])  # cached
    assert len(mine.reads) == 1
    # Without a store (or from the node-wide view), an s3:// image is absent, never fetched.
    assert await fetcher.fetch(url) is None and fetcher.get(url) is None
    assert fetcher.for_objects(None).get(url) is None


async def test_s3_images_keep_the_size_limit_and_reject_malformed_refs() -> None:
    fetcher = ImageFetcher(STRICT, max_bytes=100)
    objects = FakeObjects("s", {("b", "big.png"): png(64, 64, (1, 2, 3, 255)) + b"\0" * 200})
    view = fetcher.for_objects(objects)
    await view.fetch_all(["s3://b/big.png", "s3://b", "s3:///nokey"])
    assert view.get("s3://b/big.png") is None and view.known("s3://b/big.png")  # failed, remembered
    assert objects.reads == [("b", "big.png", 100)]  # the malformed ones never reach the store
