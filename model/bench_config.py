"""The benchmark's rows (METHOD.md §5) and profiles (how much data and training each cell gets).

Each V2 ablation is the same code as V2 with one switch off: ``cold_start`` (activity-gated blend with
the cross-user query-level preference), ``debias`` (synthetic hard negatives + pairwise loss) or the
encoder (distilled student fine-tuned end to end vs frozen MiniLM embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from features.head_inputs import NUM_VALUE_BUCKETS
from model.config import HeadConfig, ModelSpec, RslConfig, TrainConfig
from model.dataset import ViewSpec


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    encoder: str = "none"
    cold_start: bool = False
    debias: bool = False


ROWS: tuple[Row, ...] = (
    Row("LR", "lr"),
    Row("DNN", "dnn"),
    Row("Wide&Deep", "wide_deep"),
    Row("DeepFM", "deepfm"),
    Row("DIN", "din"),
    Row("PRECTR", "prectr", "minilm_frozen"),
    Row("PRECTR-V2", "prectr", "student", cold_start=True, debias=True),
    Row("V2 - cold-start mining", "prectr", "student", cold_start=False, debias=True),
    Row("V2 - debias", "prectr", "student", cold_start=True, debias=False),
    Row("V2 - distilled encoder", "prectr", "minilm_frozen", cold_start=True, debias=True),
)
BASE_ROW = "Wide&Deep"  # RelaImpr reference, as in the papers


@dataclass(frozen=True)
class BenchProfile:
    name: str
    view: ViewSpec
    train: TrainConfig
    rsl: RslConfig = field(default_factory=RslConfig)


PROFILES: dict[str, BenchProfile] = {
    # ~5 min on 2 cores: 3 training days of CTR rows, one pass of end-to-end steps on a budget
    "small": BenchProfile(
        "small",
        ViewSpec(ctr_days=3, max_coarse_requests=250),
        TrainConfig(epochs=3, batch_size=1024, rsl_epochs=3, e2e_steps=20),
    ),
    # <= 90 min on 2 cores for 10 rows x 3 seeds (sizes chosen from measured throughput, see the report)
    "full": BenchProfile(
        "full",
        ViewSpec(ctr_days=6, max_train_rows=400_000, max_coarse_requests=1_500, max_test_requests=8_000),
        TrainConfig(epochs=3, batch_size=2048, rsl_epochs=3, e2e_steps=60),
    ),
}


def pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def buckets_for(n_users: int, n_items: int, n_queries: int) -> dict[str, int]:
    """Hash table sizes ~2x the distinct ids (few collisions, tables no bigger than the data needs)."""
    size = lambda n: max(1024, pow2_at_least(2 * n))  # noqa: E731
    return {
        "user": size(n_users),
        "item": size(n_items),
        "query": size(n_queries),
        "price_bucket": NUM_VALUE_BUCKETS,
        "pop_bucket": NUM_VALUE_BUCKETS,
    }


LINEAR_LR = 1e-2  # LR is convex and converges slowly at the deep models' 2e-3 (AUC 0.75 +- 0.04 vs 0.80)


def row_spec(row: Row, profile: BenchProfile, seed: int, buckets: dict[str, int], rel_dim: int) -> ModelSpec:
    """The resolved config of one (row, seed) cell."""
    # cross-user mining is one V2 part: without it neither the PRI nor the CTR tower sees query-level stats
    # (baselines keep every preference feature: they get the richest inputs we have)
    mined = row.cold_start or row.kind != "prectr"
    head = HeadConfig(
        buckets=dict(buckets), rel_dim=rel_dim, cold_start_blend=row.cold_start, query_prefs=mined
    )
    train = replace(profile.train, seed=seed, lr=LINEAR_LR if row.kind == "lr" else profile.train.lr)
    return ModelSpec(
        name=row.name,
        kind=row.kind,
        encoder=row.encoder,
        cold_start=row.cold_start,
        debias=row.debias,
        semantic_consistency=row.kind == "prectr",
        head=head,
        rsl=replace(profile.rsl, rel_dim=rel_dim),
        train=train,
    )
