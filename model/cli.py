"""``prectr train`` (one model, one seed -> checkpoint + metrics) and ``prectr bench-model`` (the table).

Heavy imports (torch, duckdb) stay inside the commands so ``prectr serve`` never loads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
ROW_NAMES = (
    "LR",
    "DNN",
    "Wide&Deep",
    "DeepFM",
    "DIN",
    "PRECTR",
    "PRECTR-V2",
    "V2 - cold-start mining",
    "V2 - debias",
    "V2 - distilled encoder",
)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Bad input becomes one red line and exit code 2 instead of a traceback."""
    from model.bench import BenchError
    from model.checkpoint import CheckpointError
    from model.config import ConfigMismatchError
    from model.encoder_ckpt import EncoderCheckpointError
    from model.tables import DataDirError

    try:
        yield
    except (BenchError, CheckpointError, ConfigMismatchError, EncoderCheckpointError, DataDirError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc


class _Task:
    """One progress bar row; ``finish`` fills it when early stopping ends a cell before its maximum."""

    def __init__(self, bar: object, task: object) -> None:
        self.bar, self.task = bar, task

    def __call__(self, n: int) -> None:
        self.bar.advance(self.task, n)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.bar.update(self.task, completed=self.bar.tasks[self.task].total)  # type: ignore[attr-defined]


@contextmanager
def _progress() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        yield lambda label, total: _Task(bar, bar.add_task(label, total=total))


def bench_model(
    data: Path = typer.Option(..., help="Output of `prectr data build`."),
    profile: str = typer.Option("small", help="small (< 5 min) or full (< 90 min on 2 cores)."),
    seeds: int = typer.Option(3, min=1, help="Seeds per row (0..seeds-1)."),
    out: Path = typer.Option(Path("reports"), help="Folder for model_benchmark.md/.json and PNG plots."),
    student: Path | None = typer.Option(None, help="Distilled student (`prectr encoder distill --out`)."),
    rows: list[str] = typer.Option(list(ROW_NAMES), "--row", help="Rows to run (repeatable)."),
    checkpoints: Path | None = typer.Option(
        None, help="Checkpoint folder [default: artifacts/bench/<profile>]."
    ),
    minilm_cache: Path = typer.Option(
        Path("artifacts/cache/minilm_text_embeddings.npz"), help="MiniLM embedding cache (by text hash)."
    ),
    restart: bool = typer.Option(False, help="Discard finished cells in --out instead of resuming."),
    threads: int = typer.Option(2, min=1, help="Torch threads."),
) -> None:
    """Train and evaluate every row of METHOD.md §5 over seeds; resumes finished (row, seed) cells."""
    from model.bench import BenchPlan, run_bench
    from model.report import markdown_table

    plan = BenchPlan(
        data_dir=data,
        profile=profile,
        seeds=tuple(range(seeds)),
        out_dir=out,
        ckpt_dir=checkpoints or Path("artifacts/bench") / profile,
        student_dir=student,
        rows=tuple(rows),
        restart=restart,
        threads=threads,
        minilm_cache=minilm_cache,
    )
    with _clear_errors(), _progress() as progress:
        payload = run_bench(plan, progress, console.log)
    console.print(markdown_table(payload))
    console.print(
        f"[green]wrote[/green] {out / 'model_benchmark.md'} in {payload['wall_seconds_this_run']:.0f} s"
    )


def train(
    data: Path = typer.Option(..., help="Output of `prectr data build`."),
    model: str = typer.Option("PRECTR-V2", help=f"One of: {', '.join(ROW_NAMES)}."),
    out: Path = typer.Option(..., help="Checkpoint directory to write."),
    student: Path | None = typer.Option(None, help="Distilled student for the V2 rows."),
    profile: str = typer.Option("small", help="Data/training sizes: small or full."),
    seed: int = typer.Option(0),
    threads: int = typer.Option(2, min=1),
) -> None:
    """Train one model (one row of the benchmark) and write its checkpoint and test metrics."""
    from model.bench import BenchPlan, run_bench

    plan = BenchPlan(
        data_dir=data,
        profile=profile,
        seeds=(seed,),
        out_dir=out,
        ckpt_dir=out,
        student_dir=student,
        rows=(model,),
        restart=True,
        threads=threads,
        minilm_cache=Path("artifacts/cache/minilm_text_embeddings.npz"),
        json_name="train_summary.json",
        report=False,
    )
    with _clear_errors(), _progress() as progress:
        payload = run_bench(plan, progress, console.log)
    cell = next(iter(payload["cells"].values()))
    console.print(json.dumps({k: round(v, 4) for k, v in cell["metrics"].items()}))
    console.print(f"[green]checkpoint[/green] {cell['checkpoint']}")
