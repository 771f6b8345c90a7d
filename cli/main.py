"""``prectr``: one CLI for data, training, export, preferences and serving.

Sub-apps are imported here, so each package's ``cli.py`` must keep heavy imports (torch, duckdb,
onnxruntime) inside its commands: ``prectr serve`` must never import torch.
"""

from __future__ import annotations

import typer

from data.cli import app as data_app
from export.cli import app as export_app
from model.cli import bench_model, train
from model.encoder_cli import encoder_app, teacher_app
from preference_cache.cli import app as prefs_app
from service.cli import run, serve

app = typer.Typer(
    help="PRECTR-V2 relevance x CTR ranking: offline pipeline and online service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(teacher_app, name="teacher")
app.add_typer(encoder_app, name="encoder")
app.add_typer(prefs_app, name="prefs")
app.add_typer(export_app, name="export")
app.command("train")(train)
app.command("bench-model")(bench_model)
app.command("serve")(serve)
app.command("run")(run)


if __name__ == "__main__":  # pragma: no cover
    app()
