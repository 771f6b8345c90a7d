"""RSL (relevance score level) module over frozen text embeddings: PRECTR's frozen-encoder variant.

The frozen encoder is all-MiniLM-L6-v2 used as the sentence encoder it was trained to be: the query and the
title are embedded separately (cached once per distinct text), and the pair is described by the classic
interaction features ``[q, t, q*t, |q-t|]``. A compression MLP turns that into the relevance vector and a
linear classifier into K level logits. Embedding each distinct text once instead of each (query, item) pair
keeps the cost at ~one MiniLM pass per catalogue title.
"""

from __future__ import annotations

import torch
from torch import nn

from model.config import RslConfig


def pair_features(q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(N, E), (N, E) -> (N, 4E)`` interaction features of a query and a title vector."""
    return torch.cat([q, t, q * t, (q - t).abs()], dim=1)


class FrozenEmbeddingRsl(nn.Module):
    """(query embedding, title embedding) -> (rel_vec, rel_logits); same outputs as the student encoder.

    Both embeddings go through one shared down-projection first, so the interaction features cost
    ``4 * proj_dim`` instead of ``4 * 384`` per row; their cosine similarity (the signal MiniLM was
    trained for) is appended unprojected.
    """

    def __init__(self, cfg: RslConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.project = nn.Linear(cfg.text_dim, cfg.proj_dim)
        self.compress = nn.Sequential(
            nn.Linear(4 * cfg.proj_dim + 1, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.rel_dim),
            nn.Tanh(),  # bounded rel_vec: the debias noise scale is then comparable across runs
        )
        self.classifier = nn.Linear(cfg.rel_dim, cfg.num_levels)

    def classify(self, rel_vec: torch.Tensor) -> torch.Tensor:
        """``(N, D) -> (N, K)`` level logits; also used to relabel synthetic negatives."""
        return self.classifier(rel_vec)

    def forward(self, q_emb: torch.Tensor, t_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cosine = (q_emb * t_emb).sum(dim=1, keepdim=True)  # (N, 1): MiniLM vectors are unit length
        x = torch.cat([pair_features(self.project(q_emb), self.project(t_emb)), cosine], dim=1)
        rel_vec = self.compress(x)  # (N, D)
        return rel_vec, self.classify(rel_vec)  # (N, D), (N, K)
