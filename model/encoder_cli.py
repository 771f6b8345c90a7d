"""``prectr teacher train|label`` and ``prectr encoder distill|eval``. Heavy imports stay inside commands."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

teacher_app = typer.Typer(help="The MiniLM cross-encoder teacher and its soft labels.", no_args_is_help=True)
encoder_app = typer.Typer(
    help="The distilled student encoder: training and evaluation.", no_args_is_help=True
)
console = Console(stderr=True)

THREADS_HELP = "Torch threads [default: every core]."


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Known bad-input errors become one red line and exit code 2, not a traceback."""
    from model.encoder_ckpt import EncoderCheckpointError
    from model.encoder_data import EncoderDataError
    from model.minilm import MiniLMUnavailableError
    from model.soft_labels import SoftLabelError
    from model.teacher import TeacherCheckpointError

    known = (
        EncoderCheckpointError,
        EncoderDataError,
        MiniLMUnavailableError,
        SoftLabelError,
        TeacherCheckpointError,
    )
    try:
        yield
    except known as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc


def _run(step: str, fn: Callable[[], dict], threads: int) -> dict:
    from model.encoder_loop import set_torch_threads

    n = set_torch_threads(threads or None)
    started = time.perf_counter()
    with _clear_errors():
        summary = fn()
    console.print(f"[green]{step}[/green] done in {time.perf_counter() - started:.1f} s on {n} torch threads")
    return summary


@teacher_app.command("train")
def teacher_train(
    data: Path = typer.Option(..., help="Output of `prectr data build`."),
    out: Path = typer.Option(..., help="Teacher checkpoint directory."),
    epochs: int = typer.Option(2, min=1),
    max_pairs: int | None = typer.Option(None, min=1, help="Cap on training pairs (CPU cost ~70 pairs/s)."),
    batch_size: int = typer.Option(32, min=1),
    lr: float = typer.Option(8e-5),
    seed: int = typer.Option(0),
    force: bool = typer.Option(False, help="Retrain even when OUT holds a run on the same data and config."),
    threads: int = typer.Option(0, help=THREADS_HELP),
) -> None:
    """Fine-tune all-MiniLM-L6-v2 as a K-way cross-encoder on the train-split relevance labels."""
    from model.encoder_data import EncoderData
    from model.teacher_train import TeacherTrainConfig, train_teacher

    cfg = TeacherTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, max_pairs=max_pairs, seed=seed)
    summary = _run("teacher train", lambda: train_teacher(EncoderData(data), out, cfg, force=force), threads)
    console.print(json.dumps({k: summary[k] for k in ("cached", "train_pairs", "valid", "train_seconds")}))


@teacher_app.command("label")
def teacher_label(
    data: Path = typer.Option(..., help="Output of `prectr data build`."),
    teacher: Path = typer.Option(..., help="Checkpoint from `prectr teacher train`."),
    out: Path = typer.Option(..., help="Soft-label Parquet file to write."),
    max_pairs: int | None = typer.Option(
        None, min=1, help="Cap on labelled pairs (impression pairs go first)."
    ),
    batch_size: int = typer.Option(128, min=1),
    with_hidden: bool = typer.Option(
        False, help="Also store the teacher's pooled states (hidden-state MSE)."
    ),
    force: bool = typer.Option(False, help="Relabel even when a cached file matches."),
    threads: int = typer.Option(0, help=THREADS_HELP),
) -> None:
    """Write the soft-label file for every pair the student trains on (cached by data + teacher hash)."""
    from model.encoder_data import EncoderData
    from model.teacher_label import label_pairs

    summary = _run(
        "teacher label",
        lambda: label_pairs(EncoderData(data), teacher, out, max_pairs, batch_size, with_hidden, force),
        threads,
    )
    keys = ("cached", "pairs", "relevance_pairs", "impression_pairs", "pairs_per_second", "file")
    console.print(json.dumps({k: summary.get(k) for k in keys}))


@encoder_app.command("distill")
def encoder_distill(
    data: Path = typer.Option(..., help="Output of `prectr data build`."),
    soft_labels: Path | None = typer.Option(
        None,
        help="Soft-label file from `prectr teacher label` (or any teacher); omit for SFT only (ablation).",
    ),
    out: Path = typer.Option(
        ..., help="Student checkpoint directory (encoder.safetensors + tokenizer.json)."
    ),
    tokenizer_vocab: int = typer.Option(8000, min=100),
    tokenizer: Path | None = typer.Option(
        None, help="Reuse this tokenizer.json (e.g. another run's) instead of training one: same vocabulary."
    ),
    distill_epochs: int = typer.Option(8, min=0),
    sft_epochs: int = typer.Option(6, min=0),
    batch_size: int = typer.Option(128, min=1),
    temperature: float = typer.Option(2.0, min=0.1),
    hidden_mse_weight: float = typer.Option(
        0.0, min=0.0, help="0 = off; needs `teacher label --with-hidden`."
    ),
    class_weights: bool = typer.Option(False, help="Inverse-frequency class weights in SFT."),
    seed: int = typer.Option(0),
    threads: int = typer.Option(0, help=THREADS_HELP),
) -> None:
    """Train the WordPiece tokenizer and the ~2M-parameter student: distillation, then SFT."""
    from model.encoder_data import EncoderData
    from model.student_train import DistillConfig, distill_student

    cfg = DistillConfig(
        tokenizer_vocab=tokenizer_vocab,
        tokenizer_file=str(tokenizer) if tokenizer is not None else None,
        distill_epochs=distill_epochs,
        sft_epochs=sft_epochs,
        batch_size=batch_size,
        temperature=temperature,
        hidden_mse_weight=hidden_mse_weight,
        class_weights=class_weights,
        seed=seed,
    )
    summary = _run(
        "encoder distill", lambda: distill_student(EncoderData(data), soft_labels, out, cfg), threads
    )
    keys = ("parameters", "valid_macro_f1_after_distill", "valid_macro_f1", "sft_kept", "train_seconds")
    console.print(json.dumps({k: summary[k] for k in keys}))


@encoder_app.command("eval")
def encoder_eval(
    data: Path = typer.Option(..., help="Output of `prectr data build`."),
    student: Path = typer.Option(..., help="Checkpoint from `prectr encoder distill`."),
    teacher: Path | None = typer.Option(
        None, help="Checkpoint from `prectr teacher train` (row skipped if absent)."
    ),
    sft_student: Path | None = typer.Option(
        None, help="A student trained without soft labels (ablation row)."
    ),
    out: Path = typer.Option(Path("reports"), help="Folder for encoder_benchmark.md / .json."),
    cache_dir: Path | None = typer.Option(
        Path("artifacts/cache"), help="MiniLM text-embedding cache folder."
    ),
    repeats: int = typer.Option(7, min=1, help="Timing repeats (median reported)."),
    threads: int = typer.Option(2, help="Torch threads for quality and timing."),
) -> None:
    """Held-out accuracy, macro-F1, NDCG@10, parameters and CPU ms/200 pairs for every relevance model."""
    from model.encoder_eval import run_encoder_benchmark
    from model.encoder_report import write_encoder_report

    result = _run(
        "encoder eval",
        lambda: run_encoder_benchmark(data, student, teacher, cache_dir, repeats, sft_student=sft_student),
        threads,
    )
    command = "prectr " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    md, _ = write_encoder_report(result, out, command, student, teacher)
    console.print(md.read_text(), markup=False, highlight=False)
