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
    """(pair) -> distilled student cross-encoder outputs, cached between end-to-end steps."""

    def __init__(
        self,
        encoder: nn.Module,
        text: TextInputs,
        e2e_pairs: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if text.student_tokens is None or text.student_row is None or text.student_vec is None:
            raise ValueError("StudentSource needs TextInputs built with a student")
        self.encoder = encoder
        self.student = text.student  # model.student.Student it started from: tokenizer + text settings
        self.tokens = text.student_tokens  # TokenizedPairs of the tokenised pairs
        self.token_row = text.student_row  # (P,) pair -> row of tokens, -1 when not tokenised
        self.e2e_pairs = e2e_pairs
        self.batch_size = 512
        self._rng = np.random.default_rng(seed)
        self._cache_vec = text.student_vec.clone()  # (P, D) starts at the delivered student's outputs
        self._cached = self.token_row >= 0

    @property
    def classifier(self) -> nn.Linear:
        return self.encoder.rsl_head  # type: ignore[return-value]

    def trainable_encoder_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.encoder.named_parameters() if not n.startswith("rsl_head.")]

    def invalidate(self) -> None:
        """Forget cached outputs (after end-to-end steps changed the encoder)."""
        self._cached[:] = False

    def _tokens(self, pairs: np.ndarray) -> dict[str, torch.Tensor]:
        rows = self.token_row[pairs]
        if (rows < 0).any():
            raise ValueError(f"{int((rows < 0).sum())} pairs were never tokenised for the student")
        return self.tokens.batch(rows)

    @torch.no_grad()
    def refresh(self, pairs: np.ndarray | None = None) -> None:
        """Compute cached rel_vec for ``pairs`` (every tokenised pair when None) with the current encoder."""
        from model.encoder_loop import inference_batches

        todo = np.flatnonzero(self.token_row >= 0) if pairs is None else np.unique(pairs)
        todo = todo[~self._cached[todo]]
        if not len(todo):
            return
        was_training = self.encoder.training
        self.encoder.eval()
        for sub in inference_batches(self.tokens.lengths[self.token_row[todo]], self.batch_size):
            self._cache_vec[todo[sub]] = self.encoder(**self._tokens(todo[sub]))[0]
        self._cached[todo] = True
        self.encoder.train(was_training)

    def forward(self, pair: torch.Tensor, e2e: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``e2e``: up to ``e2e_pairs`` distinct pairs of the batch run through the encoder with gradients;
        the rest (and every pair on other steps) come from the cache."""
        idx = pair.numpy()
        self.refresh(idx)  # no-op for pairs already cached
        if not e2e:
            rel_vec = self._cache_vec[pair]  # (N, D)
            return rel_vec, self.classifier(rel_vec)
        uniq, inverse = np.unique(idx, return_inverse=True)
        pick = np.arange(len(uniq))
        if len(uniq) > self.e2e_pairs:
            pick = np.sort(self._rng.choice(len(uniq), self.e2e_pairs, replace=False))
        fresh, _ = self.encoder(**self._tokens(uniq[pick]))  # (U', D) with gradients
        table = self._cache_vec[torch.from_numpy(uniq)].index_put((torch.from_numpy(pick),), fresh)  # (U, D)
        rel_vec = table[torch.from_numpy(inverse.reshape(-1))]  # (N, D)
        return rel_vec, self.classifier(rel_vec)
