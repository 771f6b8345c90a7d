"""``prectr data ...``: build the benchmark tables. Heavy imports stay inside the commands."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="Relevance labels and the seeded search-log simulator (METHOD.md §3-4).", no_args_is_help=True
)
console = Console(stderr=True)


class Source(StrEnum):
    homedepot = "homedepot"
    synthetic = "synthetic"


class Profile(StrEnum):
    small = "small"
    full = "full"


@app.callback()
def data() -> None:
    """Build and inspect simulated search logs."""


@app.command()
def build(
    source: Source = typer.Option(
        Source.synthetic, help="homedepot: the real labels; synthetic: no files needed."
    ),
    profile: Profile = typer.Option(Profile.small, help="small: < 1 min for tests; full: >= 1M impressions."),
    seed: int = typer.Option(0, help="Seed of every random draw of the simulation."),
    out: Path | None = typer.Option(None, help="Output folder (default: artifacts/data/<source>-<profile>)."),
    hd_path: Path | None = typer.Option(
        None,
        "--hd-path",
        envvar="PRECTR_HD_PATH",
        help="Home Depot train.csv.gz (default: <repo>/../shared/data/home_depot_search_relevance/).",
    ),
) -> None:
    """Write items, queries, users, requests, impressions, candidates, relevance (Parquet) and meta.json."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from data.build import build_dataset
    from data.config import ProfileError, profile_config
    from data.sources import DataSourceError

    out_dir = out or Path("artifacts", "data", f"{source.value}-{profile.value}")
    if hd_path is not None and source is not Source.homedepot:
        console.print(f"[yellow]--hd-path is ignored for --source {source.value}[/yellow]")
    columns = (
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("starting", total=100)
            meta = build_dataset(
                source.value,
                profile_config(profile.value),
                seed,
                out_dir,
                hd_path,
                progress=lambda stage, pct: bar.update(task, description=stage, completed=pct),
            )
    except (DataSourceError, ProfileError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(code=2) from exc
    _print_meta(meta, out_dir)


@app.command()
def summary(data_dir: Path = typer.Argument(..., help="A folder written by `prectr data build`.")) -> None:
    """Print the row counts, user segments and fingerprint recorded in meta.json."""
    meta_path = data_dir / "meta.json"
    if not meta_path.is_file():
        console.print(
            f"[red]error:[/red] {meta_path} not found; run `prectr data build --out {data_dir}`",
            soft_wrap=True,
        )
        raise typer.Exit(code=2)
    _print_meta(json.loads(meta_path.read_text()), data_dir)


def _print_meta(meta: dict, out_dir: Path) -> None:
    table = Table(title=f"{meta['source']} / {meta['profile']} / seed {meta['seed']} -> {out_dir}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in meta["rows"].items():
        table.add_row(name, f"{rows:,}")
    Console().print(table)
    segments = ", ".join(f"{k} {v:.1%}" for k, v in meta["segments"].items())
    Console().print(
        f"train days 1..{meta['train_days']}, test day {meta['test_day']}; users: {segments}; "
        f"CTR {meta['ctr']:.2%}; built in {meta['build_seconds']:.1f} s\nfingerprint {meta['fingerprint']}"
    )
