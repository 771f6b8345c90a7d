"""``PrectrHead``: everything after the encoder, exported as ``head.onnx``.

    P(click | x) = sum_i P(click | level i, x) * P(level i | x)          (conditional-probability fusion)
    score        = sigmoid(logit(P) + tau(x))                            (personalised relevance incentive)

The head sees no position: the position-bias tower is added to the training logit by the trainer only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from features.head_inputs import ID_FEATURES
from model.config import HeadConfig
from model.ctr_heads import IdEmbeddings, MonotoneCtrHeads, Standardize, TargetAttention, mlp
from model.incentive import QUERY_PREF_COLS, U_ACTIVITY_COL, PreferenceVector, RelevanceIncentive

ITEM = ID_FEATURES.index("item")


@dataclass
class HeadOutput:
    """All intermediate outputs a trainer needs; ``forward`` exports only the first four."""

    p_ctr_given_level: torch.Tensor  # (N, K)
    p_level: torch.Tensor  # (N, K)
    incentive: torch.Tensor  # (N,)
    score: torch.Tensor  # (N,)
    score_logit: torch.Tensor  # (N,) logit(P_fused) + tau
    gate: torch.Tensor  # (N, 3) expert usage (zeros when the incentive is off)
    alpha: torch.Tensor  # (N,) weight of the personal preference


def fused_logit(ctr_logits: torch.Tensor, rel_logits: torch.Tensor) -> torch.Tensor:
    """logit(sum_i sigmoid(ctr_i) softmax(rel)_i), computed in log space: ``(N, K), (N, K) -> (N,)``."""
    log_p_level = torch.log_softmax(rel_logits, dim=1)
    log_click = torch.logsumexp(nn.functional.logsigmoid(ctr_logits) + log_p_level, dim=1)
    log_no_click = torch.logsumexp(nn.functional.logsigmoid(-ctr_logits) + log_p_level, dim=1)
    return log_click - log_no_click


class BaseCtr(nn.Module):
    """Emb+MLP over ids, DIN-pooled history, preference features and rel_vec -> K monotone click logits."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.embeddings = IdEmbeddings(cfg.buckets, cfg.emb_dim)
        self.attention = TargetAttention(cfg.emb_dim, cfg.num_levels)
        self.pref_norm = Standardize(cfg.pref_dim)
        # Without cross-user mining (PRECTR V1, "V2 - cold-start mining") the query-level columns are unknown.
        keep = torch.ones(cfg.pref_dim)
        if not cfg.query_prefs:
            keep[QUERY_PREF_COLS] = 0.0
        self.register_buffer("pref_keep", keep)
        in_dim = (len(ID_FEATURES) + 1) * cfg.emb_dim + cfg.pref_dim + cfg.rel_dim
        self.mlp = mlp((in_dim, *cfg.hidden))
        self.heads = MonotoneCtrHeads(cfg.hidden[-1], cfg.num_levels)

    def forward(
        self,
        rel_vec: torch.Tensor,
        pref_dense: torch.Tensor,
        ids: torch.Tensor,
        hist_items: torch.Tensor,
        hist_levels: torch.Tensor,
    ) -> torch.Tensor:
        emb = self.embeddings(ids)  # (N, F, E)
        hist = self.embeddings.item_table(hist_items)  # (N, H, E)
        pooled = self.attention(emb[:, ITEM], hist, hist_levels)  # (N, E)
        prefs = self.pref_norm(pref_dense) * self.pref_keep  # (N, P)
        x = torch.cat([emb.flatten(1), pooled, prefs, rel_vec], dim=1)
        return self.heads(self.mlp(x))  # (N, K)


class PrectrHead(nn.Module):
    """(rel_vec, rel_logits, pref_dense, ids, hist_items, hist_levels) -> head.onnx outputs."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.base = BaseCtr(cfg)
        self.preference = PreferenceVector(blend=cfg.cold_start_blend)
        self.incentive = RelevanceIncentive(cfg.num_levels, cfg.incentive_hidden, cfg.gumbel_temperature)

    @torch.no_grad()
    def set_click_prior(self, logit: float) -> None:
        """Start the lowest level's click logit at the training log-odds (the others sit above it)."""
        self.base.heads.proj.bias[0] = logit

    def components(
        self,
        rel_vec: torch.Tensor,
        rel_logits: torch.Tensor,
        pref_dense: torch.Tensor,
        ids: torch.Tensor,
        hist_items: torch.Tensor,
        hist_levels: torch.Tensor,
    ) -> HeadOutput:
        ctr_logits = self.base(rel_vec, pref_dense, ids, hist_items, hist_levels)  # (N, K)
        p_level = torch.softmax(rel_logits, dim=1)  # (N, K)
        fused = fused_logit(ctr_logits, rel_logits)  # (N,)
        pref, alpha = self.preference(pref_dense)  # (N, K), (N,)
        if self.cfg.use_incentive:
            tau, gate = self.incentive(p_level, pref, pref_dense[:, U_ACTIVITY_COL], alpha)
        else:
            tau, gate = torch.zeros_like(fused), torch.zeros_like(p_level[:, :3])
        logit = fused + tau
        return HeadOutput(torch.sigmoid(ctr_logits), p_level, tau, torch.sigmoid(logit), logit, gate, alpha)

    def forward(
        self,
        rel_vec: torch.Tensor,
        rel_logits: torch.Tensor,
        pref_dense: torch.Tensor,
        ids: torch.Tensor,
        hist_items: torch.Tensor,
        hist_levels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.components(rel_vec, rel_logits, pref_dense, ids, hist_items, hist_levels)
        return out.p_ctr_given_level, out.p_level, out.incentive, out.score
