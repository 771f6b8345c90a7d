"""Relevance sources: pair index -> (rel_vec, rel_logits), the encoder half of the exportable split.

- :class:`FrozenMiniLmSource` (PRECTR, "V2 - distilled encoder"): frozen MiniLM sentence embeddings and a
  trainable compression MLP + classifier (:class:`model.rsl.FrozenEmbeddingRsl`).
- :class:`StudentSource` (V2): the distilled student cross-encoder. Its transformer runs end to end only
  on ``e2e`` steps, on the distinct pairs of the batch; other steps read ``rel_vec`` from a cache of the
  current encoder's outputs. The classifier (``rsl_head``) always trains.

Text tables are plain attributes, not parameters or buffers: they never enter a checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model.config import RslConfig
from model.rel_features import MiniLmInputs
from model.rsl import FrozenEmbeddingRsl
from model.text_inputs import TextInputs


class FrozenMiniLmSource(nn.Module):
    """(pair) -> RSL over frozen MiniLM embeddings of its query and title."""

    def __init__(self, cfg: RslConfig, inputs: MiniLmInputs | None = None) -> None:
        super().__init__()
        self.rsl = FrozenEmbeddingRsl(cfg)
        self.inputs = inputs

    @property
    def classifier(self) -> nn.Linear:
        return self.rsl.classifier

    def trainable_encoder_parameters(self) -> list[nn.Parameter]:
        return []  # the text encoder is frozen; the compression MLP trains with the head

    def forward(self, pair: torch.Tensor, e2e: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if self.inputs is None:
            raise RuntimeError("FrozenMiniLmSource has no embedding tables; call attach() first")
        idx = pair.numpy()
        q = torch.from_numpy(self.inputs.queries[self.inputs.query_row[idx]])  # (N, 384)
        t = torch.from_numpy(self.inputs.titles[self.inputs.title_row[idx]])  # (N, 384)
        return self.rsl(q, t)  # (N, D), (N, K)

    def refresh(self, pairs: np.ndarray | None = None) -> None:
        """Nothing is cached: the compression MLP runs on every call."""

    def invalidate(self) -> None:
        """Nothing is cached."""


class StudentSource(nn.Module):
    """(pair) -> distilled student outputs. The transformer's [CLS] states are cached between end-to-end
    steps; its compression head (``compress``, -> rel_vec) and classifier (``rsl_head``) train on every
    step, like the compression MLP over frozen MiniLM embeddings."""

    def __init__(self, encoder: nn.Module, text: TextInputs, e2e_pairs: int = 1024, seed: int = 0) -> None:
        super().__init__()
        if text.student_tokens is None or text.student_row is None or text.student_pooled is None:
            raise ValueError("StudentSource needs TextInputs built with a student")
        self.encoder = encoder
        self.student = text.student  # model.student.Student it started from: tokenizer + text settings
        self.tokens = text.student_tokens  # TokenizedPairs, one row per encoded pair
        self.token_row = text.student_row  # (P,) pair -> token row, -1 when not encoded
        self.e2e_pairs = e2e_pairs
        self.batch_size = 512
        self._rng = np.random.default_rng(seed)
        self._pooled = text.student_pooled.clone()  # (M, d_model), starts at the delivered student's states
        self._cached = np.ones(len(self._pooled), dtype=bool)

    @property
    def classifier(self) -> nn.Linear:
        return self.encoder.rsl_head  # type: ignore[return-value]

    def trainable_encoder_parameters(self) -> list[nn.Parameter]:
        """The transformer (tuned at the lower LR in end-to-end steps); compress and rsl_head train always."""
        head = ("compress.", "rsl_head.")
        return [p for n, p in self.encoder.named_parameters() if not n.startswith(head)]

    def invalidate(self) -> None:
        """Forget cached states (after end-to-end steps changed the transformer)."""
        self._cached[:] = False

    def _rows(self, pairs: np.ndarray) -> np.ndarray:
        rows = self.token_row[pairs]
        if (rows < 0).any():
            raise ValueError(f"{int((rows < 0).sum())} pairs were never tokenised for the student")
        return rows

    @torch.no_grad()
    def refresh(self, pairs: np.ndarray | None = None) -> None:
        """Recompute stale cached states of ``pairs`` (all encoded pairs when None)."""
        from model.encoder_loop import inference_batches

        rows = np.arange(len(self._pooled)) if pairs is None else np.unique(self._rows(pairs))
        rows = rows[~self._cached[rows]]
        if not len(rows):
            return
        was_training = self.encoder.training
        self.encoder.eval()
        for sub in inference_batches(self.tokens.lengths[rows], self.batch_size):
            self._pooled[rows[sub]] = self.encoder.encode(**self.tokens.batch(rows[sub])).pooled
        self._cached[rows] = True
        self.encoder.train(was_training)

    def forward(self, pair: torch.Tensor, e2e: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``e2e``: the batch's distinct pairs (up to ``e2e_pairs``) run through the transformer with
        gradients; every pair on other steps reads cached [CLS] states."""
        idx = pair.numpy()
        self.refresh(idx)  # no-op for pairs already cached
        rows = self._rows(idx)
        if not e2e:
            pooled = self._pooled[torch.from_numpy(rows)]  # (N, d_model)
        else:
            uniq, inverse = np.unique(rows, return_inverse=True)
            pick = np.arange(len(uniq))
            if len(uniq) > self.e2e_pairs:
                pick = np.sort(self._rng.choice(len(uniq), self.e2e_pairs, replace=False))
            was_training = self.encoder.training
            self.encoder.eval()  # no dropout: fresh states must match the cached (eval-mode) ones
            fresh = self.encoder.encode(**self.tokens.batch(uniq[pick])).pooled  # (U', d_model), with grad
            self.encoder.train(was_training)
            table = self._pooled[torch.from_numpy(uniq)].index_put((torch.from_numpy(pick),), fresh)
            pooled = table[torch.from_numpy(inverse.reshape(-1))]  # (N, d_model)
        rel_vec = self.encoder.compress(pooled)  # (N, D)
        return rel_vec, self.classifier(rel_vec)
