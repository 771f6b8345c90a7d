"""The frozen MiniLM + MLP relevance baseline: PRECTR-V1's RSL stage 1 trained on the labelled levels alone.

The MLP is :class:`model.rsl.FrozenEmbeddingRsl` — the same module PRECTR uses over frozen embeddings — so
this row of the encoder benchmark is exactly the RSL that the V1 model starts from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model.encoder_data import Pairs
from model.encoder_loop import EarlyStopping, classification_metrics
from model.minilm_embed import embed_texts_cached
from model.rsl import FrozenEmbeddingRsl, RslConfig


def pair_embeddings(pairs: Pairs, cache_file: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and title embeddings ``(N, 384)`` each; every distinct text is embedded once."""
    texts = [*pairs.query.tolist(), *pairs.title.tolist()]
    emb = torch.from_numpy(embed_texts_cached(texts, cache_file))
    return emb[: len(pairs)], emb[len(pairs) :]


@torch.inference_mode()
def predict_logits(model: FrozenEmbeddingRsl, q: torch.Tensor, t: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.cat([model(q[i : i + 4096], t[i : i + 4096])[1] for i in range(0, len(q), 4096)]).numpy()


def train_minilm_mlp(
    train: Pairs,
    valid: Pairs,
    cache_file: str | Path | None,
    epochs: int = 30,
    lr: float = 1e-3,
    batch_size: int = 256,
    patience: int = 4,
    seed: int = 0,
) -> tuple[FrozenEmbeddingRsl, dict[str, float]]:
    """Cross-entropy on train levels, best epoch by valid macro-F1; returns the model and its valid metrics."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    q_tr, t_tr = pair_embeddings(train, cache_file)
    q_va, t_va = pair_embeddings(valid, cache_file)
    y = torch.from_numpy(train.level)
    model = FrozenEmbeddingRsl(RslConfig())
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    stopper = EarlyStopping(patience=patience)
    for _ in range(epochs):
        model.train()
        for idx in np.array_split(rng.permutation(len(train)), max(1, len(train) // batch_size)):
            loss = F.cross_entropy(model(q_tr[idx], t_tr[idx])[1], y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        stopper.update(
            classification_metrics(valid.level, predict_logits(model, q_va, t_va))["macro_f1"], model
        )
        if stopper.should_stop:
            break
    stopper.restore(model)
    return model.eval(), classification_metrics(valid.level, predict_logits(model, q_va, t_va))
