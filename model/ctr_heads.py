"""Base CTR building blocks: id embeddings, DIN-style target attention, monotone per-level CTR heads."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from features.head_inputs import ID_FEATURES


def mlp(sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """ReLU MLP ``sizes[0] -> ... -> sizes[-1]`` with a ReLU after every layer (the caller adds the output)."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class IdEmbeddings(nn.Module):
    """One embedding table per id feature in :data:`features.head_inputs.ID_FEATURES` order."""

    def __init__(self, buckets: dict[str, int], dim: int) -> None:
        super().__init__()
        missing = [name for name in ID_FEATURES if name not in buckets]
        if missing:
            raise ValueError(f"hash bucket counts missing for id features {missing}")
        self.tables = nn.ModuleList(nn.Embedding(buckets[name], dim) for name in ID_FEATURES)
        for table in self.tables:
            nn.init.normal_(table.weight, std=0.05)
        self.dim = dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``(N, F) int64 -> (N, F, E)``."""
        return torch.stack([table(ids[:, f]) for f, table in enumerate(self.tables)], dim=1)

    @property
    def item_table(self) -> nn.Embedding:
        return self.tables[ID_FEATURES.index("item")]  # type: ignore[return-value]


class TargetAttention(nn.Module):
    """DIN target attention: weight each history item (item + its level) by relevance to the candidate."""

    def __init__(self, dim: int, num_levels: int, hidden: int = 32) -> None:
        super().__init__()
        self.level_emb = nn.Embedding(num_levels + 1, dim)  # 0 = padding
        self.score = nn.Sequential(nn.Linear(4 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(
        self, target: torch.Tensor, hist_emb: torch.Tensor, hist_levels: torch.Tensor
    ) -> torch.Tensor:
        """target ``(N, E)``, hist_emb ``(N, H, E)``, hist_levels ``(N, H)`` (0 = pad) -> pooled ``(N, E)``."""
        keys = hist_emb + self.level_emb(hist_levels)  # (N, H, E)
        query = target.unsqueeze(1).expand_as(keys)  # (N, H, E)
        logits = self.score(torch.cat([query, keys, query - keys, query * keys], dim=-1)).squeeze(-1)
        mask = (hist_levels > 0).to(keys.dtype)  # (N, H)
        weights = torch.softmax(logits.masked_fill(mask == 0, -1e9), dim=-1) * mask  # empty history -> 0
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1)  # (N, E)


class MonotoneCtrHeads(nn.Module):
    """K click logits, non-decreasing in the level: logit_i = logit_1 + sum_{m<=i} softplus(d_m)."""

    def __init__(self, in_dim: int, num_levels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, num_levels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``(N, H) -> (N, K)`` logits of P(click | level = i, x)."""
        out = self.proj(h)  # (N, K)
        base, deltas = out[:, :1], nn.functional.softplus(out[:, 1:])  # (N, 1), (N, K-1)
        steps = torch.cat([torch.zeros_like(base), torch.cumsum(deltas, dim=1)], dim=1)  # (N, K)
        return base + steps


class Standardize(nn.Module):
    """(x - mean) / std with statistics fitted on the training rows; buffers, so export carries them."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("inv_std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Set the statistics from ``(N, D)`` training rows (constant columns keep scale 1)."""
        std = x.std(dim=0, unbiased=False)
        self.mean.copy_(x.mean(dim=0))
        self.inv_std.copy_(torch.where(std > 1e-6, 1.0 / std.clamp_min(1e-6), torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std  # (N, D)


class PositionBias(nn.Module):
    """Shallow position tower: a logit offset per displayed rank relative to the top slot (rank 0).

    Training only; serving has no position, so the head's score is the click probability at the top
    slot (the coarse-ranking view's truth is defined at the same fixed position).
    """

    def __init__(self, max_positions: int = 64, dim: int = 8) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.tower = nn.Sequential(nn.Embedding(max_positions, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, position: torch.Tensor) -> torch.Tensor:
        """``(N,) int64 -> (N,)`` logit offset, exactly 0 at rank 0."""
        top = self.tower(torch.zeros(1, dtype=torch.long, device=position.device))  # (1, 1)
        return (self.tower(position.clamp(0, self.max_positions - 1)) - top).squeeze(-1)
