"""`roomcast serve` as a real process: bootstrap, health check, graceful SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def test_serve_bootstrap_health_and_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMCAST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roomcast", "serve", "--data-dir", str(tmp_path / "var"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert r.headers["x-request-id"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "created a default account and app" in out and "secret_key" in out
    secret_key = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("secret_key"))
    assert secret_key not in err  # the log never carries it
    assert '"event": "server.stopped"' in err
    assert '"path": "/healthz"' in err


def test_second_start_does_not_bootstrap_again(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from roomcast.cli import cli

    runner = CliRunner()
    data = tmp_path / "var"
    runner.invoke(cli, ["account", "create", "--name", "x", "--data-dir", str(data)])
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "roomcast", "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "created a default account" not in out
