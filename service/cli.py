"""``prectr serve`` and ``prectr run``: the service under uvicorn (uvloop + httptools).

Heavy imports (uvicorn, onnxruntime via the app's lifespan) stay inside the commands so ``prectr --help``
is fast and never pulls torch. SIGTERM first takes the instance out of rotation (``/readyz`` 503) for
``server.drain_grace_s`` while it keeps serving, then uvicorn stops accepting, in-flight requests finish
and the lifespan releases sessions and stores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from service.settings import Settings


def _settings(bundle: Path | None, host: str | None, port: int | None, prefs: Path | None = None) -> Settings:
    """Environment first, explicit flags on top (pydantic-settings merges init values into env sections)."""
    flags: dict[str, Any] = {
        "bundle": {"path": bundle},
        "server": {"host": host, "port": port},
        "redis": {"prefs_path": prefs},
    }
    overrides: dict[str, Any] = {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in flags.items()
        if any(v is not None for v in values.values())
    }
    return Settings(**overrides)


def run_server(settings: Settings, workers: int = 1, log_level: str = "info") -> None:
    import uvicorn

    from service.access_log import logging_config
    from service.app import create_app
    from service.server import DrainingServer

    common: dict[str, Any] = dict(
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=logging_config(log_level),
        lifespan="on",
        timeout_graceful_shutdown=int(settings.server.drain_timeout_s),
    )
    if workers > 1:
        # Worker processes build their own app from the environment: hand the resolved settings over there.
        os.environ.update(settings_as_env(for_processes(settings, workers)))
        uvicorn.run("service.app:create_app", factory=True, workers=workers, **common)
        return
    app = create_app(settings)
    lifecycle = app.state.service.lifecycle
    DrainingServer(
        uvicorn.Config(app, **common), lifecycle.announce_shutdown, settings.server.drain_grace_s
    ).run()


def for_processes(settings: Settings, workers: int) -> Settings:
    """``settings`` for each of ``workers`` server processes: with several, encoder threads are not pinned
    unless asked for (every process would pin its workers to the same cores)."""
    encoder = settings.batching.encoder
    if workers < 2 or encoder.pin_cores is not None:
        return settings
    batching = settings.batching.model_copy(
        update={"encoder": encoder.model_copy(update={"pin_cores": False})}
    )
    return settings.model_copy(update={"batching": batching})


def settings_as_env(settings: Settings) -> dict[str, str]:
    """``PRECTR_*`` variables that rebuild exactly these settings in another process."""
    out: dict[str, str] = {}

    def walk(prefix: str, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key.upper()}__", value)
            elif value is not None:
                out[f"{prefix}{key.upper()}"] = str(value)

    walk("PRECTR_", settings.model_dump(mode="json"))
    if settings.admin.token is not None:
        out["PRECTR_ADMIN__TOKEN"] = settings.admin.token.get_secret_value()
    return out


def serve(
    bundle: Path = typer.Option(None, "--bundle", help="bundle directory (default: PRECTR_BUNDLE__PATH)"),
    host: str = typer.Option(None, help="bind address (default: PRECTR_SERVER__HOST or 127.0.0.1)"),
    port: int = typer.Option(None, help="port (default: PRECTR_SERVER__PORT or 8000)"),
    workers: int = typer.Option(1, min=1, help="processes; each loads its own sessions"),
    log_level: str = typer.Option("info", help="debug | info | warning | error"),
) -> None:
    """Serve POST /score for a bundle. Every other setting: PRECTR_<SECTION>__<FIELD> variables."""
    run_server(_settings(bundle, host, port), workers, log_level)


def run(
    data: Path = typer.Option(..., "--data", help="dataset directory (make run builds bundle/prefs from it)"),
    bundle: Path = typer.Option(None, "--bundle", help="bundle directory (default: PRECTR_BUNDLE__PATH)"),
    prefs: Path = typer.Option(None, "--prefs", help="mined preferences for the embedded store"),
    port: int = typer.Option(None, help="port (default: PRECTR_SERVER__PORT or 8000)"),
) -> None:
    """Serve a local bundle on the embedded preference store (Redis if PRECTR_REDIS__URL is set)."""
    settings = _settings(bundle, None, port, prefs)
    if settings.bundle.path is None:
        raise typer.BadParameter("no bundle: pass --bundle or set PRECTR_BUNDLE__PATH", param_hint="--bundle")
    typer.echo(curl_example(settings))
    run_server(settings)


def curl_example(settings: Settings) -> str:
    body = {
        "user_id": "u-1",
        "query": "cordless drill",
        "top_k": 3,
        "candidates": [
            {"item_id": "100001", "title": "DEWALT 20V MAX Cordless Drill/Driver Kit"},
            {"item_id": "100002", "title": "Ryobi 18V ONE+ Lithium-Ion Cordless Drill"},
            {"item_id": "100003", "title": "Glacier Bay 2-Handle Kitchen Faucet"},
        ],
    }
    url = f"http://{settings.server.host}:{settings.server.port}/score"
    return f"Try:\n  curl -s {url} -H 'content-type: application/json' -d '{json.dumps(body)}'\n"


if __name__ == "__main__":  # ``python -m service.cli --bundle DIR`` (used by bench/serve_bench.py)
    typer.run(serve)
