"""Codec steps of the recorders (synchronous; run them in worker threads).

* :class:`AudioEncoder` - PCM frames placed on a sample grid (gaps filled with silence, overlaps
  trimmed) and encoded to AAC or MP3.  Its packets' pts are sample positions on the recording
  timeline, so audio stays where the room clock puts it.
* :class:`OpusDecoder` - Opus packets to PCM.
* :class:`OpusCopier` - Opus packets kept as they are (WebM), re-timed onto the grid with
  pre-encoded silent packets for gaps.
* :class:`VideoTranscoder` - VP8 (or any decodable video) to H.264 with libx264, forced
  keyframes, and black/image fill for gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from roomcast.domain.recording import VideoFill

from .outputs import VIDEO_TIME_BASE, EncodedPacket

__all__ = [
    "AudioEncoder",
    "OpusCopier",
    "OpusDecoder",
    "VideoTranscoder",
    "opus_packet_samples",
]

F32Array = npt.NDArray[np.float32]

GRID_TOLERANCE = 0.015  # s: audio within this of its grid position is written contiguously
MAX_GAP_FILL = 6 * 3600.0  # s: never synthesize more silence than this at once


class AudioEncoder:
    """Encode PCM to ``codec`` ("aac" or "mp3") on a continuous sample grid."""

    def __init__(self, codec: str, sample_rate: int, channels: int, bitrate: int) -> None:
        name = {"aac": "aac", "mp3": "libmp3lame"}[codec]
        ctx: Any = av.CodecContext.create(name, "w")
        ctx.sample_rate = sample_rate
        ctx.layout = "mono" if channels == 1 else "stereo"
        ctx.format = "fltp"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, sample_rate)
        ctx.open()
        self.codec = codec
        self.ctx = ctx
        self.rate = sample_rate
        self.channels = channels
        self.frame_size = int(ctx.frame_size) or 1024
        self.resampler = av.AudioResampler(format="fltp", layout=ctx.layout.name, rate=sample_rate)
        self._buf: F32Array = np.zeros((channels, 0), np.float32)
        self._buf_pos: int | None = None  # grid position of _buf[:, 0]
        self.silence_samples = 0
        self.trimmed_samples = 0

    @property
    def next_position(self) -> int | None:
        return None if self._buf_pos is None else self._buf_pos + self._buf.shape[1]

    def feed(self, frame: av.AudioFrame, at: float) -> list[EncodedPacket]:
        """Place ``frame`` (any format/rate) at ``at`` seconds of the timeline and encode."""
        frame.pts = None
        chunks = [f.to_ndarray().astype(np.float32, copy=False) for f in self.resampler.resample(frame)]
        if not chunks:
            return []
        data = np.concatenate(chunks, axis=1) if len(chunks) > 1 else chunks[0]
        return self._place(data, round(at * self.rate))

    def _place(self, data: F32Array, target: int) -> list[EncodedPacket]:
        if self._buf_pos is None:
            self._buf_pos = target
        nxt = self._buf_pos + self._buf.shape[1]
        tol = round(GRID_TOLERANCE * self.rate)
        gap = target - nxt
        if gap > tol:
            gap = min(gap, round(MAX_GAP_FILL * self.rate))
            self.silence_samples += gap
            self._buf = np.concatenate([self._buf, np.zeros((self.channels, gap), np.float32)], axis=1)
        elif gap < -tol:
            drop = min(-gap, data.shape[1])
            self.trimmed_samples += drop
            data = data[:, drop:]
        if data.shape[1]:
            self._buf = np.concatenate([self._buf, data], axis=1)
        return self._drain(final=False)

    def fill_until(self, at: float) -> list[EncodedPacket]:
        """Extend the track with silence up to ``at`` seconds (e.g. the end of the file)."""
        if self._buf_pos is None:
            return []
        target = round(at * self.rate)
        nxt = self._buf_pos + self._buf.shape[1]
        if target > nxt:
            n = min(target - nxt, round(MAX_GAP_FILL * self.rate))
            self.silence_samples += n
            self._buf = np.concatenate([self._buf, np.zeros((self.channels, n), np.float32)], axis=1)
        return self._drain(final=False)

    def _drain(self, final: bool) -> list[EncodedPacket]:
        out: list[EncodedPacket] = []
        fs = self.frame_size
        assert self._buf_pos is not None
        while self._buf.shape[1] >= fs or (final and self._buf.shape[1] > 0):
            chunk = self._buf[:, :fs]
            if chunk.shape[1] < fs:
                chunk = np.concatenate(
                    [chunk, np.zeros((self.channels, fs - chunk.shape[1]), np.float32)], axis=1
                )
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout=self.ctx.layout.name
            )
            frame.sample_rate = self.rate
            frame.pts = self._buf_pos
            frame.time_base = self.ctx.time_base
            out.extend(self._packets(self.ctx.encode(frame)))
            self._buf = self._buf[:, fs:]
            self._buf_pos += fs
        return out

    def _packets(self, packets: list[Any]) -> list[EncodedPacket]:
        return [
            EncodedPacket("audio", bytes(p), int(p.pts), True, int(p.duration or self.frame_size))
            for p in packets
            if p.pts is not None
        ]

    def flush(self) -> list[EncodedPacket]:
        if self._buf_pos is None:
            return []
        out = self._drain(final=True)
        out.extend(self._packets(self.ctx.encode(None)))
        return out


class OpusDecoder:
    def __init__(self) -> None:
        self.ctx: Any = av.CodecContext.create("opus", "r")
        self.errors = 0

    def decode(self, data: bytes) -> list[av.AudioFrame]:
        try:
            frames: list[av.AudioFrame] = self.ctx.decode(av.Packet(data))
            return frames
        except av.FFmpegError:
            self.errors += 1
            return []


_OPUS_FRAME_MS = {0: (10, 20, 40, 60), 1: (10, 20), 2: (2.5, 5, 10, 20)}


def opus_packet_samples(data: bytes, rate: int = 48000) -> int:
    """Samples (at ``rate``) in an Opus packet, from its TOC byte (RFC 6716 3.1)."""
    if not data:
        return 0
    config = data[0] >> 3
    if config < 12:
        ms = _OPUS_FRAME_MS[0][config % 4]
    elif config < 16:
        ms = _OPUS_FRAME_MS[1][config % 2]
    else:
        ms = _OPUS_FRAME_MS[2][config % 4]
    code = data[0] & 3
    frames = 1 if code == 0 else 2 if code in (1, 2) else (data[1] & 0x3F if len(data) > 1 else 1)
    return int(frames * ms * rate / 1000)


def _opus_silence(channels: int) -> bytes:
    enc: Any = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "mono" if channels == 1 else "stereo"
    enc.format = "s16"
    enc.bit_rate = 32000
    enc.time_base = Fraction(1, 48000)
    enc.open()
    frame = av.AudioFrame.from_ndarray(
        np.zeros((1, 960 * channels), np.int16), format="s16", layout=enc.layout.name
    )
    frame.sample_rate = 48000
    packets: list[Any] = []
    for i in range(4):
        frame.pts = i * 960
        packets.extend(enc.encode(frame))
    return bytes(packets[-1])


class OpusCopier:
    """Opus packets kept as received, on a 48 kHz grid; gaps get silent 20 ms packets."""

    def __init__(self, channels: int = 2) -> None:
        self.silence = _opus_silence(channels)
        self.next_pos: int | None = None
        self.silence_packets = 0
        self.dropped = 0

    def feed(self, data: bytes, at: float) -> list[EncodedPacket]:
        n = opus_packet_samples(data) or 960
        target = round(at * 48000)
        out: list[EncodedPacket] = []
        if self.next_pos is None:
            self.next_pos = target
        tol = round(GRID_TOLERANCE * 48000)
        if target - self.next_pos > tol:
            while target - self.next_pos >= 960:
                out.append(EncodedPacket("audio", self.silence, self.next_pos, True, 960))
                self.next_pos += 960
                self.silence_packets += 1
        elif self.next_pos - target > max(tol, n // 2):
            self.dropped += 1
            return out
        out.append(EncodedPacket("audio", data, self.next_pos, True, n))
        self.next_pos += n
        return out


def capped_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down to ``max_height`` (same shape; 0: no cap)."""
    if not max_height or height <= max_height:
        return width, height
    return max(2, round(width * max_height / height)), max_height


class VideoTranscoder:
    """Decode (VP8) and re-encode to H.264 with libx264; output pts on the 90 kHz timeline."""

    def __init__(
        self,
        decoder_name: str,
        *,
        fps: int,
        bitrate: int,
        gop: float,
        preset: str,
        fill: VideoFill = VideoFill.LAST_FRAME,
        fill_image: str | None = None,
        size: tuple[int, int] | None = None,
        gap_threshold: float = 0.5,
        max_height: int = 0,
    ) -> None:
        self.decoder: Any = av.CodecContext.create(decoder_name, "r")
        self.max_height = max_height
        self.fps = fps
        self.bitrate = bitrate
        self.gop = gop
        self.preset = preset
        self.fill = fill
        self.fill_image = fill_image
        self.size = size
        self.gap_threshold = gap_threshold
        self.encoder: Any = None
        self.width = 0
        self.height = 0
        self.force_keyframe = False
        self.last_pts: int | None = None
        self.frames_in = 0
        self.frames_out = 0
        self.fill_frames = 0
        self._fill_frame: av.VideoFrame | None = None

    def _open(self, width: int, height: int) -> None:
        w, h = self.size if self.size else capped_size(width, height, self.max_height)
        self.width, self.height = max(2, w - w % 2), max(2, h - h % 2)
        enc: Any = av.CodecContext.create("libx264", "w")
        enc.width, enc.height = self.width, self.height
        enc.pix_fmt = "yuv420p"
        enc.time_base = VIDEO_TIME_BASE
        enc.framerate = Fraction(self.fps, 1)
        enc.bit_rate = self.bitrate
        enc.gop_size = max(1, round(self.gop * self.fps))
        enc.thread_count = 1
        enc.options = {"preset": self.preset, "tune": "zerolatency", "bf": "0"}
        enc.open()
        self.encoder = enc

    def _filler(self) -> av.VideoFrame:
        if self._fill_frame is None:
            frame: av.VideoFrame | None = None
            if self.fill is VideoFill.IMAGE and self.fill_image:
                try:
                    with av.open(self.fill_image) as src:
                        for decoded in src.decode(video=0):
                            frame = decoded.reformat(self.width, self.height, "yuv420p")
                            break
                except (OSError, av.FFmpegError):
                    frame = None
            if frame is None:
                planes = np.zeros((self.height * 3 // 2, self.width), np.uint8)
                planes[: self.height] = 16
                planes[self.height :] = 128
                frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            self._fill_frame = frame
        return self._fill_frame

    def _encode(self, frame: av.VideoFrame, pts: int, key: bool) -> list[EncodedPacket]:
        if frame.width != self.width or frame.height != self.height or frame.format.name != "yuv420p":
            frame = frame.reformat(self.width, self.height, "yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
        out = []
        for p in self.encoder.encode(frame):
            out.append(EncodedPacket("video", bytes(p), int(p.pts), bool(p.is_keyframe)))
        self.frames_out += 1
        self.last_pts = pts
        return out

    def feed(self, data: bytes, pts: int, tick: Callable[[float], int] | None = None) -> list[EncodedPacket]:
        """Decode one source packet and encode its frames at ``pts`` (90 kHz)."""
        try:
            frames = self.decoder.decode(av.Packet(data))
        except av.FFmpegError:
            return []
        out: list[EncodedPacket] = []
        for frame in frames:
            self.frames_in += 1
            if self.encoder is None:
                self._open(frame.width, frame.height)
                self.force_keyframe = True
            if (
                self.last_pts is not None
                and self.fill is not VideoFill.LAST_FRAME
                and pts - self.last_pts > self.gap_threshold * 90000
            ):
                # one filler frame just after the last picture; it holds until the new one
                fill_pts = self.last_pts + round(90000 / self.fps)
                out += self._encode(self._filler(), fill_pts, key=False)
                self.fill_frames += 1
            key = self.force_keyframe
            self.force_keyframe = False
            if self.last_pts is not None and pts <= self.last_pts:
                pts = self.last_pts + 1
            out += self._encode(frame, pts, key)
        return out

    def flush(self) -> list[EncodedPacket]:
        if self.encoder is None:
            return []
        return [
            EncodedPacket("video", bytes(p), int(p.pts), bool(p.is_keyframe))
            for p in self.encoder.encode(None)
        ]
