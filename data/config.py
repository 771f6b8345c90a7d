"""Simulator parameters (METHOD.md §4) and the two named profiles ``small`` and ``full``.

Every number that shapes the generated logs lives here, so ``meta.json`` can record all of them and a
changed default shows up in the data fingerprint's provenance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

SOURCES = ("homedepot", "synthetic")


class ProfileError(ValueError):
    """Unknown profile or source name, or an impossible parameter combination."""


@dataclass(frozen=True)
class SimConfig:
    # --- scale
    profile: str = "small"
    max_queries: int | None = 2_000  # None = every query of the source
    n_users: int = 3_000
    n_requests: int = 18_000  # expected, over days 1..D+1
    train_days: int = 7  # D; day D+1 is the test day
    synthetic_queries: int = 2_000
    synthetic_products: int = 8_000
    catalog_seed: int = 0  # fixes the synthetic catalogue and the small query subset across --seed runs
    # --- queries: Zipf popularity and latent strictness s_q = exp(log-linear in query traits + noise)
    zipf_exponent: float = 1.0
    zipf_offset: float = 2.0
    strictness_log_base: float = -0.1
    strictness_weights: dict[str, float] = field(
        default_factory=lambda: {"model_number": 0.6, "has_digit": 0.3, "brand": 0.45, "n_words": 0.12}
    )
    strictness_noise: float = 0.5
    split_shares: tuple[float, float, float] = (0.8, 0.1, 0.1)  # relevance train / valid / test, by query
    relevance_negatives: int = 3  # random level-0 pairs per query in the relevance table
    # --- items
    appeal_sigma: float = 0.5
    bucket_noise: float = 0.5  # noise (in latent sd units) before observable price/popularity bucketing
    # --- users
    new_user_share: float = 0.08  # join on the test day
    activity_sigma: float = 1.4  # log-normal sd of the per-day request rate
    delta_sigma: float = 0.5  # personal strictness deviation: s_uq = s_q * exp(delta_u)
    # --- candidates and the logging policy
    n_random: int = 40
    n_near: int = 8
    top_k: int = 10
    policy_level_weight: float = 1.6
    policy_near_bonus: float = 0.8
    policy_pop_weight: float = 0.3
    policy_noise: float = 1.0
    # --- clicks: P = posbias(rank) * sigmoid(b + s_uq * g(level) + a_i + noise)
    click_bias: float = -1.6
    level_gain: tuple[float, float, float, float] = (-2.0, -0.9, 0.3, 1.0)
    position_decay: float = 0.7  # posbias(rank) = (1 + rank) ** -decay
    click_noise: float = 0.3
    chunk_requests: int = 20_000

    def __post_init__(self) -> None:
        if self.n_requests <= self.n_users:
            raise ProfileError(f"n_requests={self.n_requests} must exceed n_users={self.n_users}")
        if self.train_days < 1 or self.top_k < 1 or self.n_random < self.top_k:
            raise ProfileError("need train_days >= 1, top_k >= 1 and n_random >= top_k")
        if abs(sum(self.split_shares) - 1.0) > 1e-9 or min(self.split_shares) <= 0:
            raise ProfileError(f"split_shares {self.split_shares} must be positive and sum to 1")
        if list(self.level_gain) != sorted(self.level_gain):
            raise ProfileError(f"level_gain {self.level_gain} must increase with the level")

    @property
    def test_day(self) -> int:
        return self.train_days + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, SimConfig] = {
    "small": SimConfig(),
    "full": SimConfig(
        profile="full",
        max_queries=None,
        n_users=40_000,
        n_requests=170_000,
        train_days=14,
        synthetic_queries=12_000,
        synthetic_products=50_000,
    ),
}


def profile_config(name: str, **overrides: Any) -> SimConfig:
    """The named profile, optionally with fields replaced (tests use smaller scales)."""
    if name not in PROFILES:
        raise ProfileError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    try:
        return replace(PROFILES[name], **overrides)
    except TypeError as exc:
        raise ProfileError(f"bad override for profile {name!r}: {exc}") from exc
