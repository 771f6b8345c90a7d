"""``make loadtest``: run locust headless against a local service, scrape /metrics around it, write the report.

    python -m loadtest.run --url http://127.0.0.1:8000 --shape step -u 8 -t 60 \\
        --start-cmd "prectr run --data artifacts/data/synthetic-small" --max-error-rate 0.01 --max-p99-ms 250

When nothing answers at ``--url`` and ``--start-cmd`` is given, the runner starts the service itself, waits
for ``/readyz`` and stops it afterwards. Only loopback targets are accepted: this tool generates enough
load to hurt, and pointing it at a shared host by typo must be impossible.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from loadtest import report

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def require_loopback(url: str) -> None:
    """Refuse any URL whose host resolves to a non-loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--url {url!r} is not an http(s) URL")
    try:
        addrs = {str(a[4][0]) for a in socket.getaddrinfo(parts.hostname, parts.port or 80)}
    except socket.gaierror as exc:
        raise ValueError(f"--url host {parts.hostname!r} does not resolve: {exc}") from exc
    bad = sorted(a for a in addrs if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if bad:
        raise ValueError(f"--url host {parts.hostname!r} resolves to non-loopback {bad}: refusing to load it")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only (checked)
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_ready(url: str, timeout_s: float, proc: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + timeout_s
    while http_get(f"{url}/readyz")[0] != 200:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the service exited with status {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/readyz did not answer 200 within {timeout_s:g} s")
        time.sleep(0.5)


def start_service(cmd: str, log_path: Path) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so stopping it stops its workers too)."""
    log = log_path.open("wb")
    return subprocess.Popen(shlex.split(cmd), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_service(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def locust_command(args: argparse.Namespace, prefix: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        args.url,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "-u",
        str(args.users),
        "-r",
        str(args.spawn_rate or max(1, args.users)),
        "-t",
        f"{args.duration}s",
        "--shape",
        args.shape,
        "--payload-seed",
        str(args.seed),
        "--min-candidates",
        str(args.min_candidates),
        "--max-candidates",
        str(args.max_candidates),
        "--loglevel",
        "WARNING",
    ]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    if args.budget_ms:
        cmd += ["--budget-ms", str(args.budget_ms)]
    if args.think_ms:
        cmd += ["--think-ms", str(args.think_ms)]
    return cmd


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL (loopback only)")
    ap.add_argument("--start-cmd", default="", help="command that starts the service when none answers")
    ap.add_argument("--start-timeout", type=float, default=180.0, help="seconds to wait for /readyz")
    ap.add_argument("--shape", choices=("steady", "step", "spike"), default="steady")
    ap.add_argument("-u", "--users", type=int, default=4, help="peak concurrent users")
    ap.add_argument("-r", "--spawn-rate", type=float, default=0.0, help="users started per second (0: -u)")
    ap.add_argument("-t", "--duration", type=int, default=60, help="seconds of load (bounded, max 3600)")
    ap.add_argument("--data-dir", default="", help="prectr data dir for payloads (synthetic when absent)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-candidates", type=int, default=50)
    ap.add_argument("--max-candidates", type=int, default=500)
    ap.add_argument(
        "--budget-ms", type=float, default=0.0, help="budget_ms in each request (0: service default)"
    )
    ap.add_argument("--think-ms", type=float, default=0.0, help="pause between one user's requests")
    ap.add_argument("--out", type=Path, default=None, help="output dir (default artifacts/loadtest/<time>)")
    ap.add_argument("--max-error-rate", type=float, default=0.01)
    ap.add_argument("--max-p99-ms", type=float, default=None)
    args = ap.parse_args(argv)
    if not 1 <= args.duration <= 3600:
        ap.error(f"--duration {args.duration} must be within 1..3600 s")
    if args.users < 1:
        ap.error(f"--users {args.users} must be at least 1")
    args.url = args.url.rstrip("/")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        require_loopback(args.url)
    except ValueError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("artifacts/loadtest") / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    proc = None
    try:
        if http_get(f"{args.url}/healthz")[0] != 200:
            if not args.start_cmd:
                print(f"loadtest: nothing answers at {args.url}/healthz and no --start-cmd", file=sys.stderr)
                return 2
            print(f"loadtest: starting the service: {args.start_cmd} (log: {out / 'service.log'})")
            proc = start_service(args.start_cmd, out / "service.log")
        wait_ready(args.url, args.start_timeout, proc)
        (out / "metrics_before.prom").write_bytes(http_get(f"{args.url}/metrics")[1])
        print(f"loadtest: {args.shape} load, {args.users} users, {args.duration} s against {args.url}")
        subprocess.run(locust_command(args, out / "locust"), check=True, timeout=args.duration + 120)
        (out / "metrics_after.prom").write_bytes(http_get(f"{args.url}/metrics")[1])
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    finally:
        if proc is not None:
            stop_service(proc)
    gate = ["--max-error-rate", str(args.max_error_rate)]
    if args.max_p99_ms is not None:
        gate += ["--max-p99-ms", str(args.max_p99_ms)]
    return report.main(
        [
            "--csv-prefix",
            str(out / "locust"),
            "--metrics-before",
            str(out / "metrics_before.prom"),
            "--metrics-after",
            str(out / "metrics_after.prom"),
            "--out-dir",
            str(out),
            "--title",
            f"POST /score, {args.shape} shape, {args.users} users, {args.duration} s",
            *gate,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
