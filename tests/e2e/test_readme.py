"""The README as a new user meets it.

A fresh server is started the way ``./scripts/serve`` starts it; the export block it prints is
pasted into a shell whose PATH has no ``roomcast``; then every ``sh`` and ``python`` example of
README.md runs as written, in order, in that one shell (python blocks through ``python3 -``).
Blocks are read from README.md by this test, never copied into it; a block is left out only when
the line before it says ``<!-- readme-test: skip (why) -->``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.support.avcheck import probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.M | re.S)
SKIP_MARK = "<!-- readme-test: skip"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """The runnable (``sh``, ``python``) blocks of a README, in order, minus the marked ones."""
    out: list[tuple[str, str]] = []
    for m in FENCE.finditer(text):
        lang, body = m.group(1), m.group(2)
        before = text[: m.start()].rstrip().splitlines()
        if lang not in ("sh", "python") or (before and before[-1].startswith(SKIP_MARK)):
            continue
        out.append((lang, body))
    return out


def shell_script(exports: list[str], blocks: list[tuple[str, str]]) -> str:
    lines = ["set -euo pipefail", *exports]
    for i, (lang, body) in enumerate(blocks, 1):
        lines.append(f"echo '>>> README block {i} ({lang})'")
        if lang == "sh":
            lines.append(body)
        else:
            lines.append(f"python3 - <<'README_PYTHON'\n{body}README_PYTHON")
    lines.append("echo '>>> README done'")
    return "\n".join(lines) + "\n"


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path
    stdout: Path
    env: dict[str, str]

    def printed(self) -> str:
        return self.stdout.read_text()


def _env(tmp: Path) -> dict[str, str]:
    """What a new user's shell has: no ROOMCAST_* settings, no virtualenv on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOMCAST_", "VIRTUAL_ENV"))}
    env["PATH"] = BASE_PATH
    env["HOME"] = str(tmp)
    env["PYTHONPATH"] = str(ROOT / "src")  # the checkout under test wins over an installed copy
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = _env(tmp_path)
    data = tmp_path / "checkout-var"
    out = tmp_path / "serve.out"
    # As ./scripts/serve does: ROOMCAST_DATA_DIR set to the checkout's var/, `roomcast serve`.
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "roomcast", "serve", "--port", str(port)],
            stdout=fh,
            stderr=(tmp_path / "serve.err").open("wb"),
            env={**env, "ROOMCAST_DATA_DIR": str(data)},
            cwd=tmp_path,
        )
    s = Served(proc, f"http://127.0.0.1:{port}", port, data, out, env)
    try:
        deadline = time.monotonic() + 60
        while "export SDK_APP_ID" not in s.printed() and "SDK_APP_ID=" not in s.printed():
            assert proc.poll() is None, (tmp_path / "serve.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "serve printed no export block"
            time.sleep(0.2)
        while True:
            try:
                httpx.get(f"{s.url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
        yield s
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _exports(printed: str) -> list[str]:
    return [line.strip() for line in printed.splitlines() if line.startswith("    export ")]


def test_readme_walkthrough(served: Served, tmp_path: Path) -> None:
    printed = served.printed()
    exports = _exports(printed)
    assert any(e.startswith("export SECRET_KEY=") for e in exports), printed
    # The README's examples read these variables (none hard-codes an app id).
    readme = README.read_text()
    blocks = readme_blocks(readme)
    assert len(blocks) >= 8
    code = "\n".join(body for _, body in blocks)
    for var in ("SDK_APP_ID", "SECRET_ID", "SECRET_KEY", "ROOMCAST_URL", "PROJECT_ID"):
        assert var in code
    assert "1400000001" not in readme

    # 1: without the export block, `roomcast` is not on this shell's PATH.
    assert shutil.which("roomcast", path=BASE_PATH) is None
    # 5: the browser link the server printed opens the page, not an API error.
    link = re.search(r"Browser client\s+(\S+)", printed)
    assert link is not None
    page = httpx.get(link.group(1), timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"], page.text[:300]

    work = tmp_path / "somewhere-else"
    work.mkdir()
    log = tmp_path / "readme.log"
    with log.open("wb") as fh:
        run = subprocess.Popen(
            ["bash", "-c", shell_script(exports, blocks)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=served.env,
            cwd=work,
            start_new_session=True,
        )
        try:
            rc = run.wait(600)
        finally:
            # Background bots the README started end with their process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGTERM)
    text = log.read_text(errors="replace")
    assert rc == 0, f"README example failed (exit {rc}):\n{text[-6000:]}"
    assert ">>> README done" in text
    # 4: the recording can be found and downloaded after the task ended.
    recording = work / "recording.mp4"
    info = probe(recording)
    assert info.video is not None and info.audio is not None
    assert info.duration is not None and info.duration >= 5, info
    # 9: the CLI found the server's data from another directory, and created no ./var there.
    assert not (work / "var").exists()


def test_cli_without_data_dir_says_so(served: Served, tmp_path: Path) -> None:
    """9: run from another directory without ROOMCAST_DATA_DIR, the CLI explains instead of
    showing an empty, freshly created ./var."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "roomcast", "app", "list"],
        env=served.env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "no roomcast data in" in res.stderr and "ROOMCAST_DATA_DIR" in res.stderr
    assert not (elsewhere / "var").exists()


def test_second_serve_on_busy_port_fails_fast(served: Served, tmp_path: Path) -> None:
    """10: a second server on the same port stops before it opens (let alone migrates) any data."""
    other = tmp_path / "other-var"
    started = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "roomcast", "serve", "--port", str(served.port), "--data-dir", str(other)],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert f"cannot listen on 127.0.0.1:{served.port}" in res.stderr and "--port" in res.stderr
    assert not other.exists()
    assert res.stdout == ""
    assert time.monotonic() - started < 30
    # And the running server's data was not touched by a second start-up.
    assert '"event": "server.started"' not in res.stderr
