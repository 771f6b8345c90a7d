"""The service as a process: never imports torch; `serve` runs under uvicorn, logs JSON, drains on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from bundle_factory import build_tiny_bundle
from conftest import REPO_ROOT, free_port
from service_fakes import score_body

FORBIDDEN = ("torch", "transformers", "model", "export", "data")

START_AND_SCORE = """
import asyncio, sys
sys.path.insert(0, "tests")
import service.app
from service.settings import Settings
from service_fakes import running, score_body

async def main():
    app = service.app.create_app(Settings(bundle={{"path": {bundle!r}}}))
    async with running(app) as client:
        assert (await client.post("/score", json=score_body(5))).status_code == 200
asyncio.run(main())
print("leaked=" + ",".join(sorted(m for m in {forbidden!r} if m in sys.modules)))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny-1")


def test_starting_and_scoring_never_imports_torch_or_training_code(bundle: Path) -> None:
    code = START_AND_SCORE.format(bundle=str(bundle), forbidden=FORBIDDEN)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "leaked=", out.stdout


SERVE_HELP = """
import sys
from typer.testing import CliRunner
from cli.main import app
result = CliRunner().invoke(app, ["serve", "--help"])
assert result.exit_code == 0 and "--bundle" in result.output, result.output
print("leaked=" + ",".join(m for m in ("torch", "transformers") if m in sys.modules))
"""


def test_serve_help_never_imports_torch() -> None:
    code = SERVE_HELP
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "leaked=", out.stdout


def _start(bundle: Path, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "--bundle", str(bundle), "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _wait_ready(proc: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "service never became ready"
        time.sleep(0.1)


def test_serve_answers_logs_json_and_exits_cleanly_on_sigterm(bundle: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(bundle, port)
    try:
        _wait_ready(proc, base)
        resp = httpx.post(f"{base}/score", json=score_body(5, request_id="proc-1"), timeout=10)
        assert resp.status_code == 200 and resp.headers["x-request-id"] == "proc-1"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown, so -SIGTERM is a clean exit too
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete." in stderr
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "prectr.access" and r.get("path") == "/score"]
    assert access and access[0]["request_id"] == "proc-1" and access[0]["status"] == 200
    assert any("ready" in r["msg"] for r in records)


def test_sigterm_first_leaves_rotation_while_still_serving(bundle: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(bundle, port, PRECTR_SERVER__DRAIN_GRACE_S="5")
    try:
        _wait_ready(proc, base)
        proc.send_signal(signal.SIGTERM)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        scored = httpx.post(f"{base}/score", json=score_body(3), timeout=5)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert ready.status_code == 503 and ready.json()["checks"]["draining"] is True
    assert scored.status_code == 200
