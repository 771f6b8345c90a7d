"""``prectr encoder eval``: relevance quality and CPU cost of student, teacher, frozen MiniLM + MLP and BM25.

All four are scored on the TEST-split queries' labelled pairs (human labels + sampled level-0 negatives),
which no model trained on: level accuracy and macro-F1 of the argmax level, and NDCG@10 per query of the
ranking by expected level (BM25: by its score) with graded gains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.bm25 import BM25, QuantileLevels
from model.encoder_data import EncoderData, EncoderDataError, Pairs
from model.encoder_loop import classification_metrics
from model.encoder_timing import Timing, time_model, timing_candidates
from model.metrics import ndcg_at_k


@dataclass
class ModelResult:
    name: str
    parameters: int
    metrics: dict[str, float]
    timing: Timing
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def relevance_metrics(
    test: Pairs, probs: np.ndarray, rank_scores: np.ndarray | None = None
) -> dict[str, float]:
    expected_level = probs @ np.arange(probs.shape[1], dtype=np.float64)
    scores = expected_level if rank_scores is None else rank_scores
    return {
        **classification_metrics(test.level, probs),
        "ndcg_at_10": ndcg_at_k(test.level, scores, test.query_id, k=10),
    }


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def eval_student(
    student_dir: Path,
    test: Pairs,
    tq: np.ndarray,
    tt: np.ndarray,
    repeats: int,
    name: str = "student (distilled)",
) -> ModelResult:
    from model.student import load_student

    student = load_student(student_dir)
    _, logits = student.predict(test.query, test.title)

    def prepare() -> list[torch.Tensor]:  # serving path: the query is tokenised once per request
        enc = student.text_encoder.encode(str(tq[0]), [str(t) for t in tt])
        return [torch.from_numpy(a) for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids)]

    timing = time_model(prepare, lambda x: student.model(*x), repeats)
    return ModelResult(
        name,
        student.model.num_parameters(),
        relevance_metrics(test, _softmax(logits)),
        timing,
        f"{student.model.cfg.n_layers} layers, d={student.model.cfg.d_model}",
    )


def eval_teacher(teacher_dir: Path, test: Pairs, tq: np.ndarray, tt: np.ndarray, repeats: int) -> ModelResult:
    from model.teacher import load_teacher, predict_teacher, tokenize_for_teacher

    model, tokenizer, _ = load_teacher(teacher_dir)
    logits, _ = predict_teacher(
        model, tokenize_for_teacher(tokenizer, test.query, test.title, model.cfg.max_len)
    )
    prepare = lambda: tokenize_for_teacher(tokenizer, tq, tt, model.cfg.max_len).batch(np.arange(len(tq)))  # noqa: E731
    timing = time_model(prepare, lambda b: model(**b), repeats)
    params = sum(p.numel() for p in model.parameters())
    return ModelResult(
        "teacher (MiniLM-L6 fine-tuned)",
        params,
        relevance_metrics(test, _softmax(logits)),
        timing,
        "cross-encoder, 6 layers, d=384",
    )


def eval_minilm_mlp(
    data: EncoderData, test: Pairs, cache: Path | None, tq: np.ndarray, tt: np.ndarray, repeats: int
) -> ModelResult:
    from model.minilm import load_minilm
    from model.minilm_embed import EMBED_MAX_LEN
    from model.minilm_mlp import pair_embeddings, predict_logits, train_minilm_mlp

    mlp, valid_metrics = train_minilm_mlp(
        data.relevance_pairs(("train",)), data.relevance_pairs(("valid",)), cache
    )
    q, t = pair_embeddings(test, cache)
    logits = predict_logits(mlp, q, t)
    bert, tokenizer = load_minilm()
    texts = [str(tq[0]), *map(str, tt)]  # the query once plus every title, as a serving call would embed them

    def forward(enc: Any) -> torch.Tensor:
        h = bert(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        emb = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        return mlp(emb[:1].expand(len(texts) - 1, -1), emb[1:])[1]

    def prepare() -> Any:
        return tokenizer(texts, padding=True, truncation=True, max_length=EMBED_MAX_LEN, return_tensors="pt")

    timing = time_model(prepare, forward, repeats)
    params = sum(p.numel() for p in bert.parameters()) + sum(p.numel() for p in mlp.parameters())
    return ModelResult(
        "frozen MiniLM + MLP",
        params,
        relevance_metrics(test, _softmax(logits)),
        timing,
        "bi-encoder features (q, t, q·t, abs(q − t)) -> MLP",
        {"valid": valid_metrics},
    )


def eval_bm25(data: EncoderData, test: Pairs, tq: np.ndarray, tt: np.ndarray, repeats: int) -> ModelResult:
    bm25 = BM25(data.catalogue_titles().tolist())
    train = data.relevance_pairs(("train",))
    levels = QuantileLevels(4).fit(bm25.score_pairs(train.query, train.title), train.level)
    scores = bm25.score_pairs(test.query, test.title)
    timing = time_model(lambda: None, lambda _: bm25.score_pairs(tq, tt), repeats)
    return ModelResult(
        "BM25",
        0,
        relevance_metrics(test, levels.one_hot(scores), rank_scores=scores),
        timing,
        "levels by train-distribution score quantiles",
    )


def run_encoder_benchmark(
    data_dir: Path,
    student_dir: Path,
    teacher_dir: Path | None,
    cache_dir: Path | None,
    repeats: int = 7,
    models: tuple[str, ...] = ("student", "teacher", "minilm_mlp", "bm25"),
    sft_student: Path | None = None,
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    data = EncoderData(data_dir)
    test = data.relevance_pairs(("test",))
    if len(test) == 0:
        raise EncoderDataError(f"{data_dir} has no test-split relevance pairs to evaluate on")
    tq, tt = timing_candidates(str(test.query[0]), data.catalogue_titles())
    cache = cache_dir / "minilm_text_emb.npz" if cache_dir is not None else None
    results: list[ModelResult] = []
    if "student" in models:
        results.append(eval_student(student_dir, test, tq, tt, repeats))
    if sft_student is not None:
        results.append(
            eval_student(sft_student, test, tq, tt, repeats, "student (SFT only, no distillation)")
        )
    if "teacher" in models and teacher_dir is not None:
        results.append(eval_teacher(teacher_dir, test, tq, tt, repeats))
    if "minilm_mlp" in models:
        results.append(eval_minilm_mlp(data, test, cache, tq, tt, repeats))
    if "bm25" in models:
        results.append(eval_bm25(data, test, tq, tt, repeats))
    return {
        "data": {
            "dir": str(data_dir),
            "fingerprint": data.fingerprint,
            "source": data.meta.raw.get("source"),
            "profile": data.meta.raw.get("profile"),
            "test_pairs": len(test),
            "test_queries": len(np.unique(test.query_id)),
            "test_level_counts": np.bincount(test.level, minlength=4).tolist(),
        },
        # other work on a shared machine inflates timings (several-fold with 2 torch threads on 2 busy cores)
        "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
        "models": [
            {
                "name": r.name,
                "parameters": r.parameters,
                **{k: round(v, 4) for k, v in r.metrics.items()},
                **r.timing.as_dict(),
                "notes": r.notes,
                **r.extra,
            }
            for r in results
        ],
    }
