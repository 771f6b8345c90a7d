"""``torch.nn.Module`` -> one self-contained ``.onnx`` file whose signature is a :class:`GraphSpec`.

Exporter choice (torch 2.13): the TorchScript-based exporter (``dynamo=False``) is the default here.
It exports our graphs (plain MatMul / Softmax / LayerNorm / Gather) in ~0.2 s instead of ~4 s, writes one
file with no external-data side file, needs no ``onnxscript``, and honours ``dynamic_axes`` names
verbatim; the produced opset-17 graph is what ``quantize_dynamic`` and the fp16 converter handle best.
It is deprecated upstream, so torch is pinned exactly in pyproject and ``exporter="dynamo"`` (the
``torch.export`` path, opset 18) is kept working and tested as the migration route.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from export.graph_specs import dynamic_axes
from features.manifest import GraphSpec

Exporter = Literal["legacy", "dynamo"]
DEFAULT_OPSET = 17
MIN_OPSET = 17


class ExportError(RuntimeError):
    """Export or its validation failed; the message names the graph and the problem."""


def export_module(
    module: nn.Module,
    example: Sequence[torch.Tensor],
    spec: GraphSpec,
    path: str | Path,
    *,
    exporter: Exporter = "legacy",
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``module`` (in eval mode) with the inputs, outputs and dynamic axes that ``spec`` names."""
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is below the supported minimum {MIN_OPSET}")
    if len(example) != len(spec.inputs):
        raise ExportError(f"{spec.file}: {len(example)} example tensors for {len(spec.inputs)} inputs")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    args = tuple(example)
    with torch.no_grad(), _quiet():
        if exporter == "legacy":
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=list(spec.input_names()),
                output_names=list(spec.output_names()),
                dynamic_axes=dynamic_axes(spec),
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        elif exporter == "dynamo":
            _export_dynamo(module, args, spec, path, max(opset, 18))
        else:
            raise ExportError(f"unknown exporter {exporter!r} (legacy or dynamo)")
    return path


def _export_dynamo(
    module: nn.Module, args: tuple[torch.Tensor, ...], spec: GraphSpec, path: Path, opset: int
) -> None:
    dims: dict[str, torch.export.Dim] = {}
    shapes = []
    for tensor in spec.inputs:
        named = {i: d for i, d in enumerate(tensor.shape) if isinstance(d, str)}
        shapes.append({i: dims.setdefault(d, torch.export.Dim(d)) for i, d in named.items()} or None)
    program = torch.onnx.export(
        module,
        args,
        input_names=list(spec.input_names()),
        output_names=list(spec.output_names()),
        dynamic_shapes=tuple(shapes),
        opset_version=opset,
        dynamo=True,
        external_data=False,
        optimize=True,
        verbose=False,
    )
    if program is None:  # pragma: no cover - torch contract
        raise ExportError(f"{spec.file}: the dynamo exporter returned no program")
    program.save(str(path), external_data=False)


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' deprecation chatter and progress prints; real errors still raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
