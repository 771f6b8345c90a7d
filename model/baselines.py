"""CTR baselines of the paper's table: LR, DNN, Wide&Deep, DeepFM, DIN.

They see the same id features, history and preference features as PRECTR, plus cheap lexical relevance
features (BM25 and query-term coverage) instead of a learned text encoder, and return one click logit.
Like PRECTR they get the position-bias tower in training only (added by the trainer).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from features.head_inputs import ID_FEATURES
from model.config import HeadConfig
from model.ctr_heads import IdEmbeddings, Standardize, TargetAttention, mlp

ITEM, QUERY = ID_FEATURES.index("item"), ID_FEATURES.index("query")
BASELINE_KINDS = ("lr", "dnn", "wide_deep", "deepfm", "din")


class _Inputs(nn.Module):
    """Shared featurisation: id embeddings ``(N, F, E)``, history ``(N, E)``, dense ``(N, P + L)``."""

    def __init__(self, cfg: HeadConfig, lexical_dim: int, attention: bool) -> None:
        super().__init__()
        self.embeddings = IdEmbeddings(cfg.buckets, cfg.emb_dim)
        self.attention = TargetAttention(cfg.emb_dim, cfg.num_levels) if attention else None
        self.level_emb = None if attention else nn.Embedding(cfg.num_levels + 1, cfg.emb_dim)
        self.dense_dim = cfg.pref_dim + lexical_dim
        self.dense_norm = Standardize(self.dense_dim)

    def forward(
        self, ids: Tensor, hist_items: Tensor, hist_levels: Tensor, dense: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        emb = self.embeddings(ids)  # (N, F, E)
        hist = self.embeddings.item_table(hist_items)  # (N, H, E)
        if self.attention is not None:
            pooled = self.attention(emb[:, ITEM], hist, hist_levels)
        else:  # mean pooling over the non-padded history
            mask = (hist_levels > 0).float().unsqueeze(-1)  # (N, H, 1)
            hist = hist + self.level_emb(hist_levels)  # type: ignore[misc]
            pooled = (hist * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return emb, pooled, self.dense_norm(dense)


class LogisticRegression(nn.Module):
    """Per-id weights plus a linear term over the dense features."""

    def __init__(self, cfg: HeadConfig, lexical_dim: int) -> None:
        super().__init__()
        self.weights = IdEmbeddings(cfg.buckets, 1)
        self.dense_norm = Standardize(cfg.pref_dim + lexical_dim)
        self.dense = nn.Linear(cfg.pref_dim + lexical_dim, 1)

    def forward(self, ids: Tensor, hist_items: Tensor, hist_levels: Tensor, dense: Tensor) -> Tensor:
        return self.weights(ids).sum(dim=(1, 2)) + self.dense(self.dense_norm(dense)).squeeze(-1)  # (N,)

    @torch.no_grad()
    def set_click_prior(self, logit: float) -> None:
        self.dense.bias.fill_(logit)


class DeepCtr(nn.Module):
    """DNN, Wide&Deep, DeepFM and DIN: one MLP over [embeddings, pooled history, dense] plus extras.

    ``wide`` adds the LR part and a hashed query x item cross weight (Wide&Deep); ``fm`` adds first-order
    weights and pairwise field interactions (DeepFM); ``attention`` swaps mean pooling for DIN attention.
    """

    def __init__(
        self,
        cfg: HeadConfig,
        lexical_dim: int,
        *,
        wide: bool = False,
        fm: bool = False,
        attention: bool = False,
    ) -> None:
        super().__init__()
        self.inputs = _Inputs(cfg, lexical_dim, attention)
        n_fields = len(ID_FEATURES) + 1
        self.mlp = mlp((n_fields * cfg.emb_dim + self.inputs.dense_dim, *cfg.hidden))
        self.out = nn.Linear(cfg.hidden[-1], 1)
        self.wide = LogisticRegression(cfg, lexical_dim) if (wide or fm) else None
        self.cross_buckets = cfg.buckets["item"]
        self.cross = nn.Embedding(self.cross_buckets, 1) if wide else None
        if self.cross is not None:
            nn.init.zeros_(self.cross.weight)
        self.dense_proj = nn.Linear(self.inputs.dense_dim, cfg.emb_dim) if fm else None

    @torch.no_grad()
    def set_click_prior(self, logit: float) -> None:
        self.out.bias.fill_(logit)
        if self.wide is not None:
            self.wide.dense.bias.zero_()

    def forward(self, ids: Tensor, hist_items: Tensor, hist_levels: Tensor, dense: Tensor) -> Tensor:
        emb, pooled, dense_n = self.inputs(ids, hist_items, hist_levels, dense)
        fields = torch.cat([emb, pooled.unsqueeze(1)], dim=1)  # (N, F+1, E)
        logit = self.out(self.mlp(torch.cat([fields.flatten(1), dense_n], dim=1))).squeeze(-1)  # (N,)
        if self.wide is not None:  # the LR part standardises the raw dense features itself
            logit = logit + self.wide(ids, hist_items, hist_levels, dense)
        if self.cross is not None:  # hashed (query, item) cross feature, as in the Wide&Deep paper
            cross = (ids[:, QUERY] * 1_000_003 + ids[:, ITEM]) % (self.cross_buckets - 1) + 1
            logit = logit + self.cross(cross).squeeze(-1)
        if self.dense_proj is not None:  # FM second order over id fields, history and dense projection
            v = torch.cat([fields, self.dense_proj(dense_n).unsqueeze(1)], dim=1)  # (N, F+2, E)
            logit = logit + 0.5 * (v.sum(1).pow(2) - v.pow(2).sum(1)).sum(-1)
        return logit


def build_baseline(kind: str, cfg: HeadConfig, lexical_dim: int) -> nn.Module:
    """A baseline by name; unknown names are an error listing the known ones."""
    if kind == "lr":
        return LogisticRegression(cfg, lexical_dim)
    flags = {"dnn": {}, "wide_deep": {"wide": True}, "deepfm": {"fm": True}, "din": {"attention": True}}
    if kind not in flags:
        raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINE_KINDS}")
    return DeepCtr(cfg, lexical_dim, **flags[kind])
