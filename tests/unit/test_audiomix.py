"""The audio mixer (roomcast.media.audiomix): sums, N loudest, late joiners, limiter."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from roomcast.media.audiomix import LIMIT_KNEE, AudioMixer, soft_limit

RATE = 48_000
F64 = npt.NDArray[np.float64]


def tone(freq: float, seconds: float, amp: float, start_sample: int = 0) -> npt.NDArray[np.float32]:
    n = round(seconds * RATE)
    t = (np.arange(n) + start_sample) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None, :]


def feed(mixer: AudioMixer, key: str, pcm: npt.NDArray[np.float32], at: float, chunk: int = 960) -> None:
    """Push in 20 ms chunks with explicit times (as decoded network audio arrives)."""
    for i in range(0, pcm.shape[1], chunk):
        mixer.push_array(key, pcm[:, i : i + chunk], at + i / RATE)


def read_all(mixer: AudioMixer, seconds: float, block: int = 1024) -> F64:
    total = round(seconds * RATE)
    out = [mixer.read_array(min(block, total - i)) for i in range(0, total, block)]
    return np.concatenate(out, axis=1).astype(np.float64)


def amplitude(x: F64, freq: float) -> float:
    """Amplitude of the component at ``freq`` (least squares on sin/cos)."""
    t = np.arange(x.size) / RATE
    s, c = np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)
    return float(2 * np.hypot(x @ s, x @ c) / x.size)


def test_two_tones_sum_exactly() -> None:
    mixer = AudioMixer(RATE, 1)
    feed(mixer, "a", tone(440, 1.0, 0.3), 0.0)
    feed(mixer, "b", tone(1000, 1.0, 0.3), 0.0)
    out = read_all(mixer, 1.0)[0]
    expected = (tone(440, 1.0, 0.3) + tone(1000, 1.0, 0.3))[0].astype(np.float64)
    # after the 10 ms fade-in the mix is the plain sum
    fade = mixer.fade_samples
    assert np.max(np.abs(out[fade:] - expected[fade:])) < 1e-5
    assert amplitude(out[fade:], 440) == pytest.approx(0.3, abs=0.01)
    assert amplitude(out[fade:], 1000) == pytest.approx(0.3, abs=0.01)


def test_mono_source_in_stereo_mix_via_resampler() -> None:
    import av

    mixer = AudioMixer(RATE, 2)
    pcm = (tone(500, 0.5, 0.25) * 32767).astype(np.int16)
    for i in range(0, pcm.shape[1], 960):
        frame = av.AudioFrame.from_ndarray(pcm[:, i : i + 960], format="s16", layout="mono")
        frame.sample_rate = RATE
        mixer.push("a", frame, i / RATE)
    out = read_all(mixer, 0.4)
    assert out.shape[0] == 2
    assert np.allclose(out[0], out[1])
    assert amplitude(out[0, 1000:], 500) == pytest.approx(0.25, abs=0.02)


def test_resampling_from_16k() -> None:
    import av

    mixer = AudioMixer(RATE, 1)
    n = 16000
    pcm = (0.3 * np.sin(2 * np.pi * 700 * np.arange(n) / 16000) * 32767).astype(np.int16)[None, :]
    for i in range(0, n, 320):
        frame = av.AudioFrame.from_ndarray(pcm[:, i : i + 320], format="s16", layout="mono")
        frame.sample_rate = 16000
        mixer.push("a", frame, i / 16000)
    out = read_all(mixer, 0.9)[0]
    assert amplitude(out[2000:], 700) == pytest.approx(0.3, abs=0.02)


def test_n_loudest() -> None:
    mixer = AudioMixer(RATE, 1, max_sources=2)
    feed(mixer, "loud", tone(300, 2.0, 0.3), 0.0)
    feed(mixer, "mid", tone(700, 2.0, 0.2), 0.0)
    feed(mixer, "quiet", tone(1100, 2.0, 0.05), 0.0)
    out = read_all(mixer, 2.0)[0]
    tail = out[RATE:]  # after the level estimate settled
    assert amplitude(tail, 300) == pytest.approx(0.3, abs=0.01)
    assert amplitude(tail, 700) == pytest.approx(0.2, abs=0.01)
    assert amplitude(tail, 1100) < 0.002


def test_n_loudest_switches_without_click() -> None:
    mixer = AudioMixer(RATE, 1, max_sources=1)
    # a talks for 1 s then goes quiet; b starts quiet and gets loud at 1 s
    a = np.concatenate([tone(300, 1.0, 0.3), tone(300, 1.5, 0.01, RATE)], axis=1)
    b = np.concatenate([tone(800, 1.0, 0.01), tone(800, 1.5, 0.3, RATE)], axis=1)
    feed(mixer, "a", a, 0.0)
    feed(mixer, "b", b, 0.0)
    out = read_all(mixer, 2.5)[0]
    assert amplitude(out[RATE // 2 : RATE], 300) > 0.25
    assert amplitude(out[RATE // 2 : RATE], 800) < 0.002
    assert amplitude(out[2 * RATE :], 800) > 0.25
    assert amplitude(out[2 * RATE :], 300) < 0.002
    # no step larger than what the tones themselves produce (0.3 * 2*pi*800/48000 ~ 0.031)
    assert np.max(np.abs(np.diff(out))) < 0.05


def test_late_joiner_no_discontinuity() -> None:
    mixer = AudioMixer(RATE, 1)
    feed(mixer, "a", tone(440, 2.0, 0.3), 0.0)
    out_parts = [read_all(mixer, 1.0)]
    # b joins at 1.03 s (after the mixer already produced the first second)
    feed(mixer, "b", tone(1000, 0.97, 0.3), 1.03)
    out_parts.append(read_all(mixer, 1.0))
    out = np.concatenate(out_parts, axis=1)[0]
    assert out.size == 2 * RATE  # continuous output, no gap and no extra samples
    a_only = tone(440, 2.0, 0.3)[0].astype(np.float64)
    join = round(1.03 * RATE)
    # before the join the output is exactly a's tone (a's phase never moved)
    assert np.max(np.abs(out[mixer.fade_samples : join] - a_only[mixer.fade_samples : join])) < 1e-5
    # b fades in: no step larger than the tones' own slopes
    assert np.max(np.abs(np.diff(out[join - 100 : join + 1000]))) < 0.1
    b_part = out[join + mixer.fade_samples :] - a_only[join + mixer.fade_samples :]
    assert amplitude(b_part, 1000) == pytest.approx(0.3, abs=0.01)


def test_leaver_fades_out_and_source_is_dropped() -> None:
    mixer = AudioMixer(RATE, 1)
    feed(mixer, "a", tone(440, 0.5, 0.5), 0.0)
    mixer.remove_source("a")
    out = read_all(mixer, 1.0)[0]
    assert mixer.sources == []
    end = round(0.5 * RATE)
    assert np.max(np.abs(out[end - 20 : end])) < 0.5 * 21 / mixer.fade_samples  # faded to 0 at its end
    assert np.all(out[end:] == 0)


def test_gap_is_silence_and_resumes_in_time() -> None:
    mixer = AudioMixer(RATE, 1)
    feed(mixer, "a", tone(440, 0.5, 0.3), 0.0)
    feed(mixer, "a", tone(440, 0.5, 0.3, round(1.0 * RATE)), 1.0)  # 0.5 s later than contiguous
    out = read_all(mixer, 1.5)[0]
    assert np.max(np.abs(out[round(0.52 * RATE) : round(0.98 * RATE)])) < 1e-6
    assert amplitude(out[round(1.05 * RATE) :], 440) == pytest.approx(0.3, abs=0.01)
    assert mixer.stats("a")["resyncs"] == 1


def test_jitter_does_not_move_samples() -> None:
    mixer = AudioMixer(RATE, 1)
    pcm = tone(440, 1.0, 0.3)
    rng = np.random.default_rng(1)
    for i in range(0, pcm.shape[1], 960):
        jitter = float(rng.uniform(-0.02, 0.02)) if i else 0.0  # the first frame anchors the source
        mixer.push_array("a", pcm[:, i : i + 960], i / RATE + jitter)
    out = read_all(mixer, 1.0)[0]
    f = mixer.fade_samples
    assert np.max(np.abs(out[f:] - pcm[0, f:])) < 1e-5


def test_clipping_protection() -> None:
    mixer = AudioMixer(RATE, 1)
    for i, f in enumerate((200, 300, 500, 700)):
        feed(mixer, f"u{i}", tone(f, 0.5, 0.6), 0.0)
    out = read_all(mixer, 0.5)[0]
    assert np.max(np.abs(out)) < 1.0
    x = np.linspace(-3, 3, 10001).astype(np.float32)
    y = soft_limit(x)
    assert np.all(np.abs(y) <= 1.0)
    assert np.all(np.diff(y) >= 0)  # monotonic
    small = np.abs(x) <= LIMIT_KNEE
    assert np.array_equal(y[small], x[small])


def test_read_frame_has_pts() -> None:
    mixer = AudioMixer(RATE, 2)
    f1 = mixer.read(1024)
    f2 = mixer.read(1024)
    assert (f1.pts, f2.pts) == (0, 1024)
    assert f1.samples == 1024 and f1.format.name == "fltp" and f1.sample_rate == RATE
