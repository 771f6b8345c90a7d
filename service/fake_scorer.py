"""A deterministic stand-in for :class:`service.ort_scorer.OrtScorer` (same protocol, no model).

Used by the service tests to exercise HTTP, batching, deadlines and failures without a bundle. Scores are
pure functions of the feeds, so the same request always gets the same answer. Knobs: ``delay_s`` (per
batch, like an accelerator), ``fail_batches`` (the next N batches raise), and ``hold()``/``release()`` to
block inference so a test can fill the queue deterministically, without timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from features.head_inputs import HEAD_INPUT_NAMES
from features.text import TextEncoder
from features.tokenizer import SPECIAL_TOKENS
from service.scorer import TOKEN_INPUTS, BatchedGraph, Feeds, HeadConfig, ModelInfo

LEVELS = ("irrelevant", "weak", "relevant", "strong")
_WORDS = [
    "cordless",
    "drill",
    "18v",
    "lithium",
    "battery",
    "kit",
    "white",
    "interior",
    "paint",
    "gallon",
    "satin",
    "finish",
    "copper",
    "pipe",
    "fitting",
    "1/2",
    "in",
    "elbow",
    "led",
    "light",
    "bulb",
    "60w",
    "soft",
    "garden",
    "hose",
    "50",
    "ft",
    "model",
]


def default_text_encoder() -> TextEncoder:
    """A fixed-vocabulary WordPiece tokenizer: identical ids in every process (training one is not)."""
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789/"))
    vocab_list = [*SPECIAL_TOKENS, *sorted(set(_WORDS)), *chars, *(f"##{c}" for c in chars)]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return TextEncoder(tok, max_len=32, max_query_len=8, buckets=(16, 24, 32))


class FakeGraph(BatchedGraph):
    def __init__(self, name: str, dtypes: dict[str, np.dtype], owner: FakeScorer) -> None:
        super().__init__(name, dtypes)
        self.owner = owner
        self.batches: list[int] = []  # rows per batch actually run

    def run(self, feeds: Feeds) -> Feeds:
        owner = self.owner
        with owner._lock:
            owner.started_batches += 1  # lets a test wait until a batch is inside the (held) accelerator
        owner._gate.wait()
        with owner._lock:
            if owner.fail_batches > 0:
                owner.fail_batches -= 1
                raise RuntimeError(f"fake {self.name} failure")
            self.batches.append(len(next(iter(feeds.values()))))
        if owner.delay_s:
            time.sleep(owner.delay_s)
        return owner._encode(feeds) if self.name == "encoder" else owner._head(feeds)


class FakeScorer:
    def __init__(
        self,
        version: str = "fake-1",
        text: TextEncoder | None = None,
        rel_dim: int = 8,
        delay_s: float = 0.0,
        fail_batches: int = 0,
        row_cost_s: float = 1e-5,
    ) -> None:
        self.text = text or default_text_encoder()
        self.info = ModelInfo(version, "fake", "fp32", LEVELS, rel_dim, self.text.buckets)
        self.head_config = HeadConfig(buckets={"user": 1000, "item": 1000, "query": 1000})
        self.delay_s, self.fail_batches, self.row_cost_s = delay_s, fail_batches, row_cost_s
        self.started_batches = 0
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        i64, f32 = np.dtype(np.int64), np.dtype(np.float32)
        self.encoder = FakeGraph("encoder", dict.fromkeys(TOKEN_INPUTS, i64), self)
        head_dtypes = {
            n: (f32 if n in ("rel_vec", "rel_logits", "pref_dense") else i64) for n in HEAD_INPUT_NAMES
        }
        self.head = FakeGraph("head", head_dtypes, self)
        self.closed = False

    def hold(self) -> None:
        """Block every batch at the start of ``run`` until :meth:`release`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def warmup(self, encoder_rows: int, head_rows: int) -> dict[str, float]:
        self._gate.wait()  # hold() also holds start-up: lets a test see "not ready yet"
        return {"encoder": self.row_cost_s, "head": self.row_cost_s}

    def close(self) -> None:
        self.closed = True
        self.release()

    def _encode(self, feeds: Feeds) -> Feeds:
        ids = feeds["input_ids"].astype(np.float64)
        mask = feeds["attention_mask"].astype(np.float64)
        freqs = np.arange(1, self.info.rel_dim + 1, dtype=np.float64)
        waves = np.sin(ids[:, :, None] * freqs[None, None, :] * 0.37)  # (B, L, D)
        rel_vec = (waves * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        return {
            "rel_vec": rel_vec.astype(np.float32),
            "rel_logits": (3.0 * rel_vec[:, :4]).astype(np.float32),
        }

    def _head(self, feeds: Feeds) -> Feeds:
        logits = feeds["rel_logits"].astype(np.float64)
        p_level = np.exp(logits - logits.max(1, keepdims=True))
        p_level /= p_level.sum(1, keepdims=True)
        pref = feeds["pref_dense"].astype(np.float64)
        user_bias = (feeds["ids"][:, 0] % 7).astype(np.float64) / 20.0
        p_ctr = 1.0 / (1.0 + np.exp(-(np.arange(4)[None, :] - 2.5 + 5 * pref[:, :4] + user_bias[:, None])))
        fused = np.clip((p_ctr * p_level).sum(1), 1e-6, 1 - 1e-6)
        incentive = 0.2 * np.tanh(pref[:, 8] - pref[:, 0])
        score = 1.0 / (1.0 + np.exp(-(np.log(fused / (1 - fused)) + incentive)))
        return {
            "p_ctr_given_level": p_ctr.astype(np.float32),
            "p_level": p_level.astype(np.float32),
            "incentive": incentive.astype(np.float32),
            "score": score.astype(np.float32),
        }

    @property
    def rows_run(self) -> dict[str, Sequence[int]]:
        return {"encoder": list(self.encoder.batches), "head": list(self.head.batches)}
