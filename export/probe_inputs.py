"""Synthetic but well-formed graph inputs: the export example and the parity probes.

Probes deliberately use batch sizes and sequence lengths that differ from the export example (a graph that
baked in a shape fails), ragged padding inside each batch (masking must be exact), and a mix of new users
with empty histories and active users with full ones (both head branches run).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.head_inputs import ID_FEATURES
from features.prefs import NUM_LEVELS, PREF_DENSE_COLUMNS
from features.tokenizer import CLS_ID, PAD_ID, SEP_ID

EXAMPLE_BATCH = 2
FIRST_TOKEN_ID = 5  # ids below are special tokens
ENCODER_PROBE_BATCHES = (1, 5, 37)
HEAD_PROBE_BATCHES = (1, 7, 200)


def probe_lengths(length_buckets: Sequence[int], example_len: int) -> tuple[int, ...]:
    """Every bucket except the example's, plus an odd length: padding need not land on a bucket."""
    odd = max(5, length_buckets[-1] - 3)
    return tuple(sorted({*(b for b in length_buckets if b != example_len), odd} - {example_len}))


def encoder_feeds(batch: int, seq: int, vocab_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``[CLS] q [SEP] t [SEP] [PAD]..`` rows of random lengths; at least one row fills ``seq`` exactly.

    About 30 % of title pieces repeat a query piece, so lexical-overlap features of the encoder see both
    matching and non-matching tokens.
    """
    input_ids = np.full((batch, seq), PAD_ID, dtype=np.int64)
    token_type_ids = np.zeros((batch, seq), dtype=np.int64)
    lengths = rng.integers(min(5, seq), seq + 1, size=batch)
    lengths[0] = seq
    for i, length in enumerate(lengths):
        q_len = int(rng.integers(1, max(2, (length - 3) // 2 + 1)))
        t_len = int(length) - q_len - 3
        q = rng.integers(FIRST_TOKEN_ID, vocab_size, size=q_len)
        t = rng.integers(FIRST_TOKEN_ID, vocab_size, size=t_len)
        shared = rng.random(t_len) < 0.3  # some title pieces repeat query pieces: exact-match paths run too
        t[shared] = rng.choice(q, size=int(shared.sum()))
        input_ids[i, :length] = [CLS_ID, *q, SEP_ID, *t, SEP_ID]
        token_type_ids[i, q_len + 2 : length] = 1
    attention_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def pref_dense(batch: int, rng: np.random.Generator) -> np.ndarray:
    """Plausible :data:`PREF_DENSE_COLUMNS` values; every third row is a new user (zero counts)."""
    cols = {name: i for i, name in enumerate(PREF_DENSE_COLUMNS)}
    out = np.zeros((batch, len(PREF_DENSE_COLUMNS)), dtype=np.float32)
    for prefix in ("q_rate_l", "u_rate_l"):
        idx = [cols[f"{prefix}{k}"] for k in range(NUM_LEVELS)]
        out[:, idx] = np.sort(rng.uniform(0.005, 0.4, size=(batch, NUM_LEVELS)), axis=1)
    out[:, cols["q_log_exposures"]] = rng.uniform(0, 9, batch)
    out[:, cols["q_log_users"]] = rng.uniform(0, 7, batch)
    out[:, cols["u_log_activity"]] = rng.uniform(0, 5, batch)
    new = np.arange(batch) % 3 == 0
    out[new, cols["u_log_activity"]] = 0.0
    out[new, cols["u_is_new"]] = 1.0
    out[np.ix_(new, [cols[f"u_rate_l{k}"] for k in range(NUM_LEVELS)])] = 0.05
    return out


def head_feeds(
    rel_vec: np.ndarray,
    rel_logits: np.ndarray,
    buckets: dict[str, int],
    history_len: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Head inputs around real encoder outputs; histories are left-padded with 0, some empty, some full."""
    batch = rel_vec.shape[0]
    ids = np.stack([rng.integers(0, buckets[name], size=batch) for name in ID_FEATURES], axis=1)
    hist_items = np.zeros((batch, history_len), dtype=np.int64)
    hist_levels = np.zeros((batch, history_len), dtype=np.int64)
    for i in range(batch):
        n = 0 if i % 3 == 0 else (history_len if i % 3 == 1 else int(rng.integers(0, history_len + 1)))
        if n:
            hist_items[i, history_len - n :] = rng.integers(1, buckets["item"], size=n)
            hist_levels[i, history_len - n :] = rng.integers(1, NUM_LEVELS + 1, size=n)
    return {
        "rel_vec": np.ascontiguousarray(rel_vec, dtype=np.float32),
        "rel_logits": np.ascontiguousarray(rel_logits, dtype=np.float32),
        "pref_dense": pref_dense(batch, rng),
        "ids": ids.astype(np.int64),
        "hist_items": hist_items,
        "hist_levels": hist_levels,
    }
