"""Frozen all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm, as the model was trained), cached.

PRECTR's frozen-encoder variant and the frozen MiniLM + MLP relevance baseline embed each distinct query
and title once; the cache file maps sha1(text) -> float16 vector so repeated runs (seeds, ablations) pay
for MiniLM once per data build.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.encoder_loop import inference_batches
from model.minilm import HIDDEN_SIZE, load_minilm

EMBED_MAX_LEN = 48  # titles average ~15 MiniLM tokens; 48 keeps >99% whole at a fraction of 256's cost


def text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.asarray([hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts], dtype="<U40")


@torch.inference_mode()
def embed_texts(
    texts: Sequence[str], batch_size: int = 256, model: Any = None, tokenizer: Any = None
) -> np.ndarray:
    """``(N, 384)`` float32 unit vectors for ``texts`` (loads MiniLM when no model is passed)."""
    if model is None or tokenizer is None:
        model, tokenizer = load_minilm()
    model.eval()
    enc = tokenizer(
        list(texts), truncation=True, max_length=EMBED_MAX_LEN, padding="max_length", return_tensors="np"
    )
    ids, mask = enc["input_ids"], enc["attention_mask"]
    out = np.zeros((len(texts), HIDDEN_SIZE), dtype=np.float32)
    for idx in inference_batches(mask.sum(axis=1), batch_size):
        width = int(mask[idx].sum(axis=1).max())
        m = torch.from_numpy(mask[idx, :width].astype(np.int64))
        hidden = model(input_ids=torch.from_numpy(ids[idx, :width].astype(np.int64)), attention_mask=m)
        h = hidden.last_hidden_state  # (B, L, 384)
        pooled = (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
        out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def embed_texts_cached(
    texts: Sequence[str], cache_file: str | Path | None, batch_size: int = 256
) -> np.ndarray:
    """Like :func:`embed_texts` but reuses and extends an ``.npz`` cache keyed by sha1 of the text."""
    texts = [str(t) for t in texts]
    keys = text_keys(texts)
    uniq_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    table = np.zeros((len(uniq_keys), HIDDEN_SIZE), dtype=np.float32)
    known = np.zeros(len(uniq_keys), dtype=bool)
    cache_file = Path(cache_file) if cache_file is not None else None
    cached_keys, cached_vecs = np.zeros(0, dtype="<U40"), np.zeros((0, HIDDEN_SIZE), dtype=np.float16)
    if cache_file is not None and cache_file.is_file():
        with np.load(cache_file) as npz:
            cached_keys, cached_vecs = npz["keys"], npz["vectors"]
        pos = np.clip(np.searchsorted(cached_keys, uniq_keys), 0, max(len(cached_keys) - 1, 0))
        known = (cached_keys[pos] == uniq_keys) if len(cached_keys) else known
        table[known] = cached_vecs[pos[known]].astype(np.float32)
    todo = np.flatnonzero(~known)
    if len(todo):
        # rounded through float16 so a first run and a cached run return identical vectors
        table[todo] = embed_texts([texts[i] for i in first[todo]], batch_size).astype(np.float16)
        if cache_file is not None:
            merged_keys = np.concatenate([cached_keys, uniq_keys[todo]])
            merged_vecs = np.concatenate([cached_vecs, table[todo].astype(np.float16)])
            order = np.argsort(merged_keys)
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(cache_file.name + ".tmp.npz")
            np.savez(tmp, keys=merged_keys[order], vectors=merged_vecs[order])
            tmp.replace(cache_file)
    return table[inverse.reshape(-1)]
