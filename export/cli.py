"""``prectr export ...``: checkpoint -> validated bundle; ``tiny`` builds a seconds-old bundle; ``check`` verifies.

Heavy imports (torch, onnxruntime) stay inside the commands so importing the CLI stays cheap.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="Export a checkpoint as a parity-validated ONNX bundle (encoder.onnx, head.onnx, tokenizer, manifest).",
    invoke_without_command=True,
    no_args_is_help=True,
)
console = Console(stderr=True)


class VariantOpt(StrEnum):
    fp32 = "fp32"
    int8 = "int8"
    fp16 = "fp16"


class ExporterOpt(StrEnum):
    legacy = "legacy"
    dynamo = "dynamo"


VARIANT_HELP = "fp32; int8 (dynamic quantisation, CPU); fp16 (encoder in fp16, GPU)."
DATA_HELP = "Data directory (`prectr data build`): end-to-end parity and test metrics (variant deltas)."


@app.callback()
def export(
    ctx: typer.Context,
    checkpoint: Path | None = typer.Option(None, help="Trained model checkpoint (file or directory)."),
    out: Path | None = typer.Option(None, help="Bundle directory; its name is the model version."),
    variant: VariantOpt = typer.Option(VariantOpt.fp32, help=VARIANT_HELP),
    data: Path | None = typer.Option(None, help=DATA_HELP),
    exporter: ExporterOpt = typer.Option(
        ExporterOpt.legacy, help="legacy (TorchScript, opset 17) or dynamo."
    ),
    force: bool = typer.Option(False, help="Replace an existing bundle directory."),
) -> None:
    """Export CHECKPOINT to OUT, validating signatures and PyTorch/ORT parity; nothing is written on failure."""
    if ctx.invoked_subcommand is not None:
        return
    if checkpoint is None or out is None:
        _fail("--checkpoint and --out are required (or use a subcommand: tiny, check)")
    from export.checkpoint import CheckpointError, load_checkpoint

    try:
        model = load_checkpoint(checkpoint)  # type: ignore[arg-type]
    except (CheckpointError, FileNotFoundError) as exc:
        _fail(str(exc))
    _export(model, out, variant, data, exporter, force)  # type: ignore[arg-type]


@app.command()
def tiny(
    data: Path = typer.Option(..., help="Data directory, e.g. from `prectr data build --profile small`."),
    out: Path = typer.Option(Path("bundles/tiny"), help="Bundle directory; its name is the model version."),
    variant: VariantOpt = typer.Option(VariantOpt.fp32, help=VARIANT_HELP),
    force: bool = typer.Option(False, help="Replace an existing bundle directory."),
) -> None:
    """Quick-fit a tiny model on DATA (tokenizer, 2-layer d64 encoder, head; seconds) and export it."""
    import tempfile

    from export.checkpoint import CheckpointError, load_checkpoint
    from export.tiny import train_tiny
    from model.tables import DataDirError

    with tempfile.TemporaryDirectory(prefix="prectr-tiny-") as work:
        try:
            with console.status("quick-fitting the tiny model"):
                model = load_checkpoint(train_tiny(data, work))
        except (DataDirError, CheckpointError, FileNotFoundError, ValueError) as exc:
            _fail(str(exc))
        _export(model, out, variant, data, ExporterOpt.legacy, force)


@app.command()
def check(bundle: Path = typer.Argument(..., help="Bundle directory to verify.")) -> None:
    """Verify files, sha256, schema and both graphs' signatures exactly as the service does at start-up."""
    from features.bundle import BundleError, open_bundle
    from features.graph_check import check_bundle_graphs

    try:
        files = open_bundle(bundle)
        check_bundle_graphs(files)
    except BundleError as exc:
        _fail(str(exc))
    m = files.manifest
    console.print(
        f"[green]ok[/green] {m.model_version} ({m.variant}), K={m.num_levels}, rel_dim={m.rel_dim}, "
        f"buckets {m.text.length_buckets}"
    )


def _export(
    model, out: Path, variant: VariantOpt, data: Path | None, exporter: ExporterOpt, force: bool
) -> None:
    from functools import partial

    from export.bundle_writer import export_bundle
    from export.evaluate import data_checks
    from export.onnx_export import ExportError
    from features.bundle import BundleError

    checks = partial(data_checks, data_dir=data) if data is not None else None
    try:
        with console.status(f"exporting and validating {variant.value} bundle {out}"):
            result = export_bundle(
                model,
                out,
                variant=variant.value,
                exporter=exporter.value,  # type: ignore[arg-type]
                data_checks=checks,
                force=force,
            )
    except (ExportError, BundleError, ValueError) as exc:
        _fail(f"export failed, nothing written: {exc}")
    table = Table(title=f"bundle {result.bundle.root} ({variant.value})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(result.manifest.metrics.items()):
        table.add_row(key, f"{value:.4g}")
    Console().print(table)


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=1)
