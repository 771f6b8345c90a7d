"""What export needs from a trained model, independent of how the trainer stores it.

:class:`ExportableModel` is the seam: the encoder and head modules in eval mode plus every number the
manifest records. :func:`from_modules` builds one from modules and their configs (used by the tiny bundle
and tests); :func:`load_checkpoint` reads a trainer checkpoint into one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from features.head_inputs import ID_FEATURES
from features.manifest import IdFeatureSpec, PrefSpec, TextSpec
from features.prefs import PREF_DENSE_COLUMNS, Smoothing
from features.text import DEFAULT_BUCKETS

LEVEL_NAMES = ("irrelevant", "weak", "relevant", "strong")


class CheckpointError(RuntimeError):
    """The checkpoint is missing, unreadable, or lacks something the bundle must record."""


@dataclass(frozen=True)
class ExportableModel:
    """Encoder + head (eval mode) and the contract values the manifest will carry."""

    encoder: nn.Module
    head: nn.Module
    tokenizer_path: Path
    text: TextSpec
    rel_dim: int
    num_levels: int
    buckets: dict[str, int]
    history_len: int
    smoothing: Smoothing = field(default_factory=Smoothing)
    level_names: tuple[str, ...] = LEVEL_NAMES
    data_fingerprint: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""
    view: dict[str, Any] | None = None  # the data view ``metrics`` were measured on (model.dataset.ViewSpec)

    @property
    def vocab_size(self) -> int:
        return self.text.vocab_size

    def id_features(self) -> tuple[IdFeatureSpec, ...]:
        return tuple(IdFeatureSpec(name=n, buckets=int(self.buckets[n])) for n in ID_FEATURES)

    def pref_spec(self) -> PrefSpec:
        return PrefSpec(
            dense_columns=PREF_DENSE_COLUMNS,
            prior_rate=self.smoothing.prior_rate,
            strength=self.smoothing.strength,
            history_len=self.history_len,
        )


def text_spec_for(
    encoder_cfg: Any,
    max_query_len: int = 16,
    length_buckets: tuple[int, ...] | None = None,
    max_len: int | None = None,
) -> TextSpec:
    """Length buckets up to ``max_len`` (default: the encoder's; the default buckets, cut and closed there)."""
    max_len = int(max_len or encoder_cfg.max_len)
    if max_len > encoder_cfg.max_len:
        raise CheckpointError(
            f"text max_len={max_len} exceeds the encoder's position table ({encoder_cfg.max_len})"
        )
    buckets = length_buckets or tuple(sorted({*(b for b in DEFAULT_BUCKETS if b < max_len), max_len}))
    return TextSpec(
        max_len=max_len,
        max_query_len=min(max_query_len, max_len - 4),
        length_buckets=buckets,
        vocab_size=int(encoder_cfg.vocab_size),
    )


def from_modules(
    encoder: nn.Module,
    head: nn.Module,
    tokenizer_path: str | Path,
    *,
    smoothing: Smoothing | None = None,
    data_fingerprint: str = "",
    metrics: dict[str, float] | None = None,
    source: str = "",
    view: dict[str, Any] | None = None,
    max_query_len: int = 16,
    length_buckets: tuple[int, ...] | None = None,
    max_len: int | None = None,
) -> ExportableModel:
    """Wrap a ``CrossEncoder`` (``.cfg: EncoderConfig``) and a ``PrectrHead`` (``.cfg: HeadConfig``)."""
    enc_cfg, head_cfg = getattr(encoder, "cfg", None), getattr(head, "cfg", None)
    if enc_cfg is None or head_cfg is None:
        raise CheckpointError("encoder and head must carry their config as .cfg (EncoderConfig, HeadConfig)")
    if enc_cfg.rel_dim != head_cfg.rel_dim or enc_cfg.num_levels != head_cfg.num_levels:
        raise CheckpointError(
            f"encoder emits rel_dim={enc_cfg.rel_dim}, K={enc_cfg.num_levels} but the head expects "
            f"rel_dim={head_cfg.rel_dim}, K={head_cfg.num_levels}"
        )
    if len(LEVEL_NAMES) != head_cfg.num_levels:
        raise CheckpointError(f"no level names for K={head_cfg.num_levels} (known: {LEVEL_NAMES})")
    missing = [n for n in ID_FEATURES if n not in head_cfg.buckets]
    if missing:
        raise CheckpointError(f"head config has no hash bucket count for id features {missing}")
    return ExportableModel(
        encoder=encoder.eval(),
        head=head.eval(),
        tokenizer_path=Path(tokenizer_path),
        text=text_spec_for(enc_cfg, max_query_len, length_buckets, max_len),
        rel_dim=int(head_cfg.rel_dim),
        num_levels=int(head_cfg.num_levels),
        buckets={n: int(head_cfg.buckets[n]) for n in ID_FEATURES},
        history_len=int(head_cfg.history_len),
        smoothing=smoothing or Smoothing(),
        data_fingerprint=data_fingerprint,
        metrics={k: float(v) for k, v in (metrics or {}).items()},
        source=source,
        view=view,
    )


def load_checkpoint(ckpt_dir: str | Path) -> ExportableModel:
    """A ``model.checkpoint`` directory (``model.safetensors`` + ``encoder/``) of a PRECTR student model.

    Only cells whose relevance source is the distilled student export: the frozen-MiniLM cells (PRECTR V1,
    "V2 - distilled encoder") would need MiniLM itself in ``encoder.onnx``, and baselines have no encoder.
    """
    from safetensors.torch import load_file

    from model.checkpoint import ENCODER_DIR, WEIGHTS, read_checkpoint_info
    from model.checkpoint import CheckpointError as ModelCheckpointError
    from model.encoder_ckpt import EncoderCheckpointError, load_encoder
    from model.head import PrectrHead

    root = Path(ckpt_dir)
    try:
        info = read_checkpoint_info(root)
        spec = info.spec
        if spec.kind != "prectr" or spec.encoder != "student":
            raise CheckpointError(
                f"checkpoint {root} is {spec.name!r} (kind={spec.kind}, encoder={spec.encoder}); only PRECTR "
                "models with the distilled student encoder export to a bundle"
            )
        loaded = load_encoder(root / ENCODER_DIR)
    except (ModelCheckpointError, EncoderCheckpointError) as exc:
        raise CheckpointError(str(exc)) from exc
    head = PrectrHead(spec.head)
    state = {
        k.removeprefix("head."): v for k, v in load_file(str(root / WEIGHTS)).items() if k.startswith("head.")
    }
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"head weights in {root / WEIGHTS} do not fit its stored config: {exc}"
        ) from exc
    text = loaded.extra.get("text", {})
    buckets = text.get("length_buckets")
    return from_modules(
        loaded.model,
        head,
        loaded.tokenizer_path,
        data_fingerprint=info.data_fingerprint,
        metrics=info.metrics,
        view=info.view,
        source=f"{root} ({spec.name}, spec {info.spec_hash})",
        max_query_len=int(text.get("max_query_len", 16)),
        length_buckets=tuple(int(b) for b in buckets) if buckets else None,
        max_len=int(text["max_len"]) if "max_len" in text else None,
    )
