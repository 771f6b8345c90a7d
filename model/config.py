"""Config dataclasses: one per model part, resolved into a checkpoint so a run can be checked and resumed.

A checkpoint stores ``asdict(config)`` and its :func:`config_hash`; loading a checkpoint under a different
config is refused (:class:`ConfigMismatchError`) instead of silently mixing weights and settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

from features.head_inputs import ID_FEATURES, NUM_VALUE_BUCKETS
from features.prefs import HISTORY_LEN, NUM_LEVELS, PREF_DENSE_COLUMNS

T = TypeVar("T")

DEFAULT_BUCKETS: dict[str, int] = {
    "user": 1 << 16,
    "item": 1 << 17,
    "query": 1 << 15,
    "price_bucket": NUM_VALUE_BUCKETS,
    "pop_bucket": NUM_VALUE_BUCKETS,
}


class ConfigMismatchError(ValueError):
    """A checkpoint was written under a different config than the one asked for."""


@dataclass(frozen=True)
class HeadConfig:
    """Shapes and switches of :class:`model.head.PrectrHead` (everything after the encoder)."""

    num_levels: int = NUM_LEVELS
    rel_dim: int = 64
    pref_dim: int = len(PREF_DENSE_COLUMNS)
    history_len: int = HISTORY_LEN
    buckets: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BUCKETS))
    emb_dim: int = 16
    hidden: tuple[int, ...] = (128, 64)
    incentive_hidden: int = 32
    use_incentive: bool = True
    cold_start_blend: bool = True  # V2: gate personal vs cross-user (query-level) preference in the PRI
    query_prefs: bool = True  # the CTR tower reads the cross-user query-level columns of pref_dense
    gumbel_temperature: float = 1.0


@dataclass(frozen=True)
class RslConfig:
    """Compression MLP over frozen text embeddings (PRECTR's RSL on a frozen encoder)."""

    text_dim: int = 384
    proj_dim: int = 96
    hidden: int = 128
    rel_dim: int = 64
    num_levels: int = NUM_LEVELS
    dropout: float = 0.1


@dataclass(frozen=True)
class LossConfig:
    """Loss weights of the V2 objective L = BCE + sc*L_sc + debias*L_debias + bal*L_bal."""

    sc: float = 0.1
    debias: float = 0.1
    bal: float = 0.01
    debias_eta: float = 1.0  # noise sigma = eta * batch std of rel_vec
    debias_margin: float = 2.0
    debias_keep: float = 0.7  # dynamic truncation: keep the hardest 70% of pairs
    debias_min_level: int = 2  # anchors: exposed samples at level >= this
    debias_max_anchors: int = 512  # per batch, drawn at random (bounds the extra head pass)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by PRECTR variants and baselines."""

    seed: int = 0
    batch_size: int = 1024
    epochs: int = 3  # at most; early stopping on held-out requests picks the best epoch
    patience: int = 0  # epochs without validation gain before stopping
    valid_share: float = 0.1  # share of training requests held out for early stopping
    lr: float = 2e-3
    lr_decay: float = 0.5  # learning-rate factor after every epoch (smooth, low-noise convergence)
    weight_decay: float = 1e-6
    rsl_epochs: int = 3  # stage 1 (frozen-embedding RSL only)
    rsl_lr: float = 2e-3
    encoder_lr: float = 1e-4  # end-to-end fine-tuning of the distilled encoder
    e2e_steps: int = 40  # end-to-end encoder steps after the best epoch; other steps read cached outputs
    e2e_batch_size: int = 256  # rows per end-to-end step; every distinct pair of the batch runs the encoder
    e2e_head_lr_scale: float = 1.0  # extra LR factor for everything but the transformer in those steps
    threads: int = 2


@dataclass(frozen=True)
class ModelSpec:
    """One row of the benchmark table: which model, which parts switched on."""

    name: str
    kind: str  # "prectr" or a baseline kind: lr, dnn, wide_deep, deepfm, din
    encoder: str = "none"  # "minilm_frozen", "student" or "none" (baselines: lexical feature only)
    cold_start: bool = False
    debias: bool = False
    semantic_consistency: bool = True
    head: HeadConfig = field(default_factory=HeadConfig)
    rsl: RslConfig = field(default_factory=RslConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def config_dict(cfg: Any) -> dict[str, Any]:
    """JSON-safe dict of a (nested) config dataclass; tuples become lists."""
    return json.loads(json.dumps(asdict(cfg)))


def config_hash(cfg: Any) -> str:
    """Short stable hash of a config, independent of dict order."""
    return hashlib.sha256(json.dumps(config_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a (nested) config dataclass from :func:`config_dict` output; unknown keys are an error."""
    names = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigMismatchError(f"{cls.__name__} has no fields {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        ftype = _resolve(cls, names[name].type)
        if is_dataclass(ftype) and isinstance(value, dict):
            kwargs[name] = from_dict(ftype, value)  # type: ignore[arg-type]
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _resolve(cls: type, annotation: Any) -> Any:
    if isinstance(annotation, str):
        return {c.__name__: c for c in (HeadConfig, RslConfig, LossConfig, TrainConfig, ModelSpec)}.get(
            annotation, annotation
        )
    return annotation


assert tuple(DEFAULT_BUCKETS) == ID_FEATURES, "bucket table must follow features.head_inputs.ID_FEATURES"
