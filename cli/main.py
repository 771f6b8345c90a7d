"""``prectr``: one CLI for data, training, export, preferences and serving.

Sub-apps are imported here, so each package's ``cli.py`` must keep heavy imports (torch, duckdb,
onnxruntime) inside its commands: ``prectr serve`` must never import torch.
"""

from __future__ import annotations

import typer

from data.cli import app as data_app

app = typer.Typer(help="PRECTR-V2 relevance x CTR ranking: offline pipeline and online service.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(data_app, name="data")


if __name__ == "__main__":  # pragma: no cover
    app()
