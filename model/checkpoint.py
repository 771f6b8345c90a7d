"""Checkpoints of trained cells: safetensors weights + the resolved config, never pickle.

Layout of one checkpoint directory::

    model.safetensors   every weight except a student encoder's (head, position tower, RSL MLP)
                        metadata: format, spec (ModelSpec JSON), spec_hash, data_fingerprint, metrics
    encoder/            the fine-tuned student, in model.encoder_ckpt's format (+ tokenizer.json)

Export reads ``head`` from ``model.safetensors`` and the encoder from ``encoder/``. Loading under a
different config raises :class:`model.config.ConfigMismatchError` naming the fields that differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from model.config import ConfigMismatchError, ModelSpec, config_dict, config_hash, from_dict

FORMAT = "prectr-ctr/1"
WEIGHTS = "model.safetensors"
ENCODER_DIR = "encoder"


class CheckpointError(FileNotFoundError):
    """Missing or unreadable checkpoint."""


@dataclass
class CheckpointInfo:
    spec: ModelSpec
    spec_hash: str
    data_fingerprint: str
    metrics: dict[str, float]
    view: dict[str, Any] | None = None  # the ViewSpec the metrics were measured on (export re-measures there)


def save_checkpoint(
    model: nn.Module,
    out_dir: Path,
    data_fingerprint: str,
    metrics: dict[str, float],
    view: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (a PrectrModel or BaselineModel) to ``out_dir`` atomically per file; ``view`` is the
    data view (``model.dataset.ViewSpec`` fields) its ``metrics`` were measured on."""
    spec: ModelSpec = model.spec  # type: ignore[assignment]
    out_dir.mkdir(parents=True, exist_ok=True)
    source = getattr(model, "source", None)
    encoder = getattr(source, "encoder", None)
    state = {
        k: v.detach().contiguous()
        for k, v in model.state_dict().items()
        if not (encoder is not None and k.startswith("source.encoder."))
    }
    meta = {
        "format": FORMAT,
        "spec": json.dumps(config_dict(spec), sort_keys=True),
        "spec_hash": config_hash(spec),
        "data_fingerprint": data_fingerprint,
        "metrics": json.dumps({k: float(v) for k, v in metrics.items()}),
    }
    if view is not None:
        meta["view"] = json.dumps(view, sort_keys=True)
    tmp = out_dir / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(out_dir / WEIGHTS)
    if encoder is not None:
        from model.encoder_ckpt import TOKENIZER_FILE, save_encoder

        student = getattr(source, "student", None)  # model.student.Student the run started from
        extra = {**(student.extra if student is not None else {}), "fine_tuned_in": spec.name}
        enc_dir = save_encoder(encoder, out_dir / ENCODER_DIR, extra=extra).parent
        if student is not None:
            student.text_encoder.tokenizer.save(str(enc_dir / TOKENIZER_FILE))
    return out_dir


def read_checkpoint_info(ckpt_dir: Path) -> CheckpointInfo:
    path = Path(ckpt_dir) / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    with safe_open(str(path), framework="pt") as fh:
        meta: dict[str, Any] = fh.metadata() or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint (format={meta.get('format')!r})")
    spec = from_dict(ModelSpec, json.loads(meta["spec"]))
    return CheckpointInfo(
        spec,
        meta["spec_hash"],
        meta.get("data_fingerprint", ""),
        json.loads(meta["metrics"]),
        json.loads(meta["view"]) if "view" in meta else None,
    )


def spec_differences(stored: ModelSpec, expected: ModelSpec) -> list[str]:
    """``path: checkpoint=..., expected=...`` for every differing leaf of the two configs."""
    out: list[str] = []

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)
        elif a != b:
            out.append(f"{prefix}: checkpoint={a!r}, expected={b!r}")

    walk(config_dict(stored), config_dict(expected), "")
    return out


def load_weights(model: nn.Module, ckpt_dir: Path, expected_fingerprint: str | None = None) -> CheckpointInfo:
    """Load a checkpoint into ``model`` built from the expected spec; any config difference is an error."""
    info = read_checkpoint_info(ckpt_dir)
    expected: ModelSpec = model.spec  # type: ignore[assignment]
    diffs = spec_differences(info.spec, expected)
    if diffs:
        raise ConfigMismatchError(
            f"checkpoint {ckpt_dir} was trained with another config: " + "; ".join(diffs)
        )
    if expected_fingerprint is not None and info.data_fingerprint != expected_fingerprint:
        raise ConfigMismatchError(
            f"checkpoint {ckpt_dir} was trained on data {info.data_fingerprint[:12]}, not {expected_fingerprint[:12]}"
        )
    state = load_file(str(Path(ckpt_dir) / WEIGHTS))
    encoder = getattr(getattr(model, "source", None), "encoder", None)
    if encoder is not None:
        from model.encoder_ckpt import load_state_into

        load_state_into(encoder, Path(ckpt_dir) / ENCODER_DIR)
        state |= {f"source.encoder.{k}": v for k, v in encoder.state_dict().items()}
    model.load_state_dict(state, strict=True)
    return info


def load_exportable(ckpt_dir: Path) -> tuple[nn.Module, nn.Module, CheckpointInfo]:
    """(fine-tuned student CrossEncoder, PrectrHead, info) of a student-encoder checkpoint, in eval mode.

    The two halves of the bundle: ``encoder.onnx`` from the first, ``head.onnx`` from the second. Baseline
    and frozen-MiniLM checkpoints have no exportable encoder graph and are refused with that reason.
    """
    from model.encoder_ckpt import load_encoder
    from model.head import PrectrHead

    info = read_checkpoint_info(ckpt_dir)
    if info.spec.kind != "prectr" or info.spec.encoder != "student":
        raise CheckpointError(
            f"{ckpt_dir} holds {info.spec.name} (kind={info.spec.kind}, encoder={info.spec.encoder}); only "
            "PRECTR checkpoints with the distilled student encoder export to encoder.onnx + head.onnx"
        )
    head = PrectrHead(info.spec.head)
    state = load_file(str(Path(ckpt_dir) / WEIGHTS))
    head.load_state_dict({k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")})
    encoder = load_encoder(Path(ckpt_dir) / ENCODER_DIR).model
    return encoder.eval(), head.eval(), info
