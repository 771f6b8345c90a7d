"""``prectr teacher label``: run the teacher over every pair the student will see, write the soft-label file.

Labelling is the expensive part of distillation on CPU (MiniLM-L6 runs a few hundred pairs/s here), so the
file is cached: a re-run with the same data fingerprint, teacher hash and pair cap returns it untouched.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.encoder_data import EncoderData, Pairs
from model.encoder_loop import Progress
from model.soft_labels import read_soft_label_meta, write_soft_labels
from model.teacher import load_teacher, predict_teacher, teacher_hash, tokenize_for_teacher

PAIR_SELECTION = "train-relevance+train-day-impressions-of-train-queries/1"


def student_pairs(data: EncoderData, max_pairs: int | None, seed: int = 0) -> tuple[Pairs, np.ndarray]:
    """Train-split relevance pairs first, then distinct training-day impression pairs, deduplicated and capped.

    The cap drops impression pairs before relevance pairs: labelled pairs carry the level boundaries.
    """
    rel = data.relevance_pairs(("train",))
    imp = data.impression_pairs(("train",))
    seen = set(zip(rel.query_id.tolist(), rel.item_id.tolist(), strict=True))
    fresh = np.fromiter(
        ((q, i) not in seen for q, i in zip(imp.query_id.tolist(), imp.item_id.tolist(), strict=True)),
        dtype=bool,
        count=len(imp),
    )
    imp = imp.subset(np.flatnonzero(fresh))
    rng = np.random.default_rng(seed)
    if max_pairs is not None and len(rel) + len(imp) > max_pairs:
        if len(rel) >= max_pairs:
            rel, imp = (
                rel.subset(np.sort(rng.choice(len(rel), max_pairs, replace=False))),
                imp.subset(np.arange(0)),
            )
        else:
            imp = imp.subset(np.sort(rng.choice(len(imp), max_pairs - len(rel), replace=False)))
    source = np.asarray(["relevance"] * len(rel) + ["impression"] * len(imp), dtype=object)
    return Pairs.concat([rel, imp]), source


def label_pairs(
    data: EncoderData,
    teacher_dir: str | Path,
    out_file: str | Path,
    max_pairs: int | None = None,
    batch_size: int = 128,
    with_hidden: bool = False,
    force: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Write (or reuse) the soft-label file; returns a summary with counts, throughput and ``cached``."""
    out_file = Path(out_file)
    key = {
        "data_fingerprint": data.fingerprint,
        "teacher_hash": teacher_hash(teacher_dir),
        "max_pairs": max_pairs,
        "pair_selection": PAIR_SELECTION,
    }
    if out_file.is_file() and not force:
        meta = read_soft_label_meta(out_file)
        if all(meta.get(k) == v for k, v in key.items()) and (meta.get("hidden_file") or not with_hidden):
            return {**meta, "cached": True, "file": str(out_file)}
    pairs, source = student_pairs(data, max_pairs)
    model, tokenizer, _ = load_teacher(teacher_dir)
    started = time.perf_counter()
    tokens = tokenize_for_teacher(tokenizer, pairs.query, pairs.title, model.cfg.max_len)
    with Progress(len(pairs), "teacher label", show_progress) as advance:
        logits, pooled = predict_teacher(model, tokens, batch_size, with_pooled=with_hidden, progress=advance)
    seconds = time.perf_counter() - started
    meta = {
        **key,
        "teacher": "all-MiniLM-L6-v2 cross-encoder (fine-tuned)",
        "pairs": len(pairs),
        "relevance_pairs": int((source == "relevance").sum()),
        "impression_pairs": int((source == "impression").sum()),
        "label_seconds": round(seconds, 1),
        "pairs_per_second": round(len(pairs) / max(seconds, 1e-9), 1),
        "mean_tokens": round(float(tokens.lengths.mean()), 1),
        "torch_threads": torch.get_num_threads(),
    }
    write_soft_labels(out_file, pairs.query, pairs.item_id, logits, meta, source=source, hidden=pooled)
    return {**read_soft_label_meta(out_file), "cached": False, "file": str(out_file)}
