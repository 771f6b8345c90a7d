"""``prectr prefs``: mine preferences from the logs, publish them to Redis, look one up.

Heavy imports (duckdb, pyarrow, redis) stay inside the commands so ``prectr serve`` stays light.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import typer

app = typer.Typer(
    help="Cross-user / per-user relevance preferences: mine, publish, look up.", no_args_is_help=True
)


@app.command()
def mine(
    data: Path = typer.Option(..., "--data", help="directory written by `prectr data build`"),
    out: Path = typer.Option(..., "--out", help="mined file to write (a directory: meta.json + 2 Parquet)"),
    history_len: int = typer.Option(
        10, "--history-len", min=0, max=255, help="last L clicked items per user"
    ),
    threads: int = typer.Option(0, "--threads", min=0, help="DuckDB threads (0 = all cores)"),
) -> None:
    """Mine per-query and per-user preference counts from the training days."""
    from preference_cache.mining import mine_preferences
    from preference_cache.storage import save_mined

    start = time.perf_counter()
    try:
        mined = mine_preferences(data, history_len=history_len, threads=threads or None)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    seconds = time.perf_counter() - start
    save_mined(mined, out, source=str(data))
    _print(
        {
            "out": str(out),
            "namespace": mined.namespace,
            "train_days": mined.train_days,
            "rows": mined.source_rows,
            "queries": mined.num_queries,
            "users": mined.num_users,
            "mining_seconds": round(seconds, 3),
            "rows_per_s": round(mined.source_rows / seconds),
        }
    )


@app.command()
def publish(
    inp: Path = typer.Option(..., "--in", help="mined file from `prectr prefs mine`"),
    redis_url: str = typer.Option(..., "--redis", help="redis:// URL (any node of a cluster)"),
    cluster: bool = typer.Option(False, "--cluster", help="the URL points at a Redis Cluster"),
    prefix: str = typer.Option("prectr", "--prefix", help="key prefix shared with the readers"),
    grace_seconds: int = typer.Option(600, "--grace-seconds", min=1, help="TTL given to the old namespace"),
    chunk: int = typer.Option(2000, "--chunk", min=1, help="records per round trip"),
    lock_wait: float = typer.Option(0.0, "--lock-wait", min=0, help="seconds to wait for a running publish"),
) -> None:
    """Write a new namespace, flip the pointer atomically, let the previous namespace expire."""
    from rich.progress import Progress

    from preference_cache.publish import PublishInProgress, make_sync_client
    from preference_cache.publish import publish as run_publish
    from preference_cache.storage import load_mined

    try:
        mined = load_mined(inp)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--in") from exc
    client = make_sync_client(redis_url, cluster)
    with Progress(transient=True) as progress:
        task = progress.add_task(f"publishing {mined.namespace}", total=mined.num_queries + mined.num_users)
        try:
            report = run_publish(
                mined,
                client,
                prefix=prefix,
                grace_seconds=grace_seconds,
                chunk_size=chunk,
                lock_wait_s=lock_wait,
                after_chunk=lambda done, _total: progress.update(task, completed=done),
            )
        except PublishInProgress as exc:
            raise typer.Exit(_fail(str(exc))) from exc
    client.close()
    _print({**report.__dict__, "records_per_s": round(report.records_per_s)})


@app.command()
def lookup(
    source: str = typer.Option(..., "--from", help="redis:// URL or a mined file"),
    query: str = typer.Option(..., "--query"),
    user: str = typer.Option(..., "--user"),
    cluster: bool = typer.Option(False, "--cluster"),
    prefix: str = typer.Option("prectr", "--prefix"),
) -> None:
    """Show what the service would read for one (query, user) pair."""
    from preference_cache.factory import open_store
    from preference_cache.settings import PrefReaderSettings

    async def run() -> dict:
        spec: str | PrefReaderSettings = source
        if source.startswith(("redis://", "rediss://", "unix://")):
            spec = PrefReaderSettings(url=source, cluster=cluster, key_prefix=prefix, deadline_ms=2000)
        store = open_store(spec)
        try:
            found = await store.lookup(query, user)
        finally:
            await store.close()
        return {
            "namespace": found.namespace,
            "query_outcome": found.query_outcome.value,
            "user_outcome": found.user_outcome.value,
            "qpref": found.qpref and found.qpref.__repr__(),
            "upref": found.upref and found.upref.__repr__(),
        }

    _print(asyncio.run(run()))


def _print(payload: dict) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def _fail(message: str) -> int:
    typer.echo(f"error: {message}", err=True)
    return 1
