"""Student checkpoints: ``encoder.safetensors`` (weights + resolved config in its metadata) + ``tokenizer.json``.

No pickle: safetensors holds tensors only and string metadata, so a checkpoint can be opened safely by
export, by the CTR trainer (which fine-tunes the encoder end to end) and by evaluation. A checkpoint
from another architecture fails loudly, naming the fields that differ.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save_file

from model.encoder import CrossEncoder, EncoderConfig

CHECKPOINT_FILE = "encoder.safetensors"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = "prectr-encoder/1"


class EncoderCheckpointError(RuntimeError):
    """The checkpoint is missing, of another format, or does not match the expected configuration."""


@dataclass
class LoadedEncoder:
    model: CrossEncoder
    config: EncoderConfig
    tokenizer_path: Path
    extra: dict[str, Any]


def save_encoder(model: CrossEncoder, out_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the weights and resolved config; the tokenizer is expected at ``out_dir/tokenizer.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(asdict(model.cfg), sort_keys=True),
        "tokenizer": TOKENIZER_FILE,
        "extra": json.dumps(extra or {}, sort_keys=True, default=str),
    }
    path = out_dir / CHECKPOINT_FILE
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)  # a crash mid-write never leaves a half checkpoint under the real name
    return path


def _read_metadata(ckpt_dir: Path) -> dict[str, str]:
    path = ckpt_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise EncoderCheckpointError(f"no encoder checkpoint at {path} (run `prectr encoder distill` first)")
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata() or {}
    if metadata.get("format") != FORMAT:
        raise EncoderCheckpointError(
            f"{path} is not a {FORMAT} checkpoint (format={metadata.get('format')!r})"
        )
    return metadata


def read_encoder_config(ckpt_dir: str | Path) -> EncoderConfig:
    raw = json.loads(_read_metadata(Path(ckpt_dir))["config"])
    known = {f.name for f in fields(EncoderConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise EncoderCheckpointError(
            f"checkpoint {ckpt_dir} has config fields this code does not know: {unknown}"
        )
    return EncoderConfig(**raw)


def config_differences(stored: EncoderConfig, expected: EncoderConfig) -> list[str]:
    """Human-readable ``field: checkpoint=..., expected=...`` lines; dropout is a training knob, not shape."""
    diffs = []
    for f in fields(EncoderConfig):
        a, b = getattr(stored, f.name), getattr(expected, f.name)
        if f.name != "dropout" and a != b:
            diffs.append(f"{f.name}: checkpoint={a}, expected={b}")
    return diffs


def load_encoder(ckpt_dir: str | Path, expected: EncoderConfig | None = None) -> LoadedEncoder:
    """Load a student on CPU in eval mode; raise :class:`EncoderCheckpointError` on any mismatch."""
    ckpt_dir = Path(ckpt_dir)
    metadata = _read_metadata(ckpt_dir)
    config = read_encoder_config(ckpt_dir)
    if expected is not None and (diffs := config_differences(config, expected)):
        raise EncoderCheckpointError(
            f"encoder checkpoint {ckpt_dir} was trained with another configuration: " + "; ".join(diffs)
        )
    tokenizer_path = ckpt_dir / metadata.get("tokenizer", TOKENIZER_FILE)
    if not tokenizer_path.is_file():
        raise EncoderCheckpointError(f"checkpoint {ckpt_dir} has no tokenizer file {tokenizer_path.name}")
    model = CrossEncoder(config)
    try:
        model.load_state_dict(load_file(str(ckpt_dir / CHECKPOINT_FILE)), strict=True)
    except RuntimeError as exc:
        raise EncoderCheckpointError(f"weights in {ckpt_dir} do not fit its stored config: {exc}") from exc
    model.eval()
    return LoadedEncoder(model, config, tokenizer_path, json.loads(metadata.get("extra", "{}")))


def load_state_into(model: torch.nn.Module, ckpt_dir: str | Path) -> None:
    """Copy checkpoint weights into an existing encoder (e.g. inside a CTR model) after checking configs."""
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, EncoderConfig):
        raise TypeError(
            f"expected a CrossEncoder-like module with an EncoderConfig .cfg, got {type(model).__name__}"
        )
    loaded = load_encoder(ckpt_dir, expected=cfg)
    model.load_state_dict(loaded.model.state_dict())
