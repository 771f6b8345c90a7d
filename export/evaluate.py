"""What a variant costs in accuracy: the test-view metrics of ORT fp32 vs ORT int8/fp16 graphs.

Run when ``prectr export --data DIR`` is given. Rows are the ``test`` view (exposed test-day impressions,
clicks -> AUC) and the held-out relevance pairs (human levels -> NDCG@10 of the expected level
``sum_k k * p_level``), both built by ``model.dataset`` exactly as for the model's own test metrics.
The end-to-end parity check (:mod:`export.e2e`) runs here too, on the variant that will be shipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from export.checkpoint import ExportableModel
from export.e2e import e2e_abs_diffs, raw_test_requests, serve, train_path
from export.graph_specs import ENCODER_FILE, HEAD_FILE
from export.onnx_export import ExportError
from export.parity import TOLERANCES
from export.variants import Variant, cpu_session
from features.head_inputs import ENCODER_OUTPUT_NAMES, HEAD_OUTPUT_NAMES
from features.text import TextEncoder

E2E_REQUESTS = 40
BATCH = 256
# A variant that loses more than this on the test view is refused (absolute drop vs the fp32 graphs).
MAX_DROP = {"auc": 0.01, "rel_ndcg10": 0.02}


def encoder_outputs(session, tokens, num_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """ORT encoder over tokenised pairs in length-sorted batches trimmed to their longest row."""
    n = len(tokens.input_ids)
    lengths = tokens.attention_mask.sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    vecs, logits = None, np.zeros((n, num_levels), np.float32)
    for start in range(0, n, BATCH):
        idx = order[start : start + BATCH]
        width = max(1, int(lengths[idx].max()))
        feeds = {
            name: np.ascontiguousarray(getattr(tokens, name)[idx, :width], dtype=np.int64)
            for name in ("input_ids", "attention_mask", "token_type_ids")
        }
        v, z = session.run(list(ENCODER_OUTPUT_NAMES), feeds)
        vecs = np.zeros((n, v.shape[1]), np.float32) if vecs is None else vecs
        vecs[idx], logits[idx] = v, z
    return vecs if vecs is not None else np.zeros((0, 0), np.float32), logits


def test_view_spec(history_len: int, view: dict[str, Any] | None = None):
    """The view the checkpoint's own test metrics were measured on when it recorded one (the test-request
    sample depends on the view's seed and on the training-row sampling drawn before it), so fp32 ORT
    reproduces them; else the full test view, with train/coarse views cut to a token size (unused)."""
    from model.dataset import ViewSpec

    if view is not None:
        return ViewSpec(**{**view, "history_len": history_len})
    return ViewSpec(ctr_days=1, max_train_rows=500, max_coarse_requests=5, history_len=history_len)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class TestViewEvaluator:
    """Tokenises the test view once; scores any (encoder, head) graph pair on it."""

    def __init__(self, model: ExportableModel, ds) -> None:
        from model.student import tokenize_for_student

        self.model = model
        self.ds = ds
        view, rel = self.ds.views["test"], self.ds.rel_test
        self.pairs = np.unique(np.concatenate([view.pair, rel.pair]))
        text = TextEncoder(
            model.tokenizer_path, model.text.max_len, model.text.max_query_len, model.text.length_buckets
        )
        self.tokens = tokenize_for_student(
            text, self.ds.pairs.query_norm[self.pairs], self.ds.pairs.title[self.pairs]
        )

    def metrics(self, encoder_path: Path, head_path: Path) -> dict[str, float]:
        from model.metrics import auc, ndcg_at_k

        vecs, logits = encoder_outputs(cpu_session(encoder_path), self.tokens, self.model.num_levels)
        view, rel = self.ds.views["test"], self.ds.rel_test
        at = np.searchsorted(self.pairs, view.pair)
        head = cpu_session(head_path)
        scores = np.zeros(len(view), np.float32)
        for start in range(0, len(view), 4096):
            s = slice(start, start + 4096)
            feeds = {
                "rel_vec": vecs[at[s]],
                "rel_logits": logits[at[s]],
                "pref_dense": view.pref_dense[s],
                "ids": view.ids[s],
                "hist_items": view.hist_items[s],
                "hist_levels": view.hist_levels[s],
            }
            scores[s] = head.run([HEAD_OUTPUT_NAMES[-1]], feeds)[0]
        expected_level = _softmax(logits[np.searchsorted(self.pairs, rel.pair)]) @ np.arange(
            self.model.num_levels
        )
        return {
            "auc": auc(view.target, scores),
            "rel_ndcg10": ndcg_at_k(rel.level, expected_level, rel.group),
        }


def data_checks(
    model: ExportableModel, fp32_dir: Path, variant_dir: Path, variant: Variant, data_dir: Path
) -> dict[str, float]:
    """End-to-end parity of the shipped graphs, and test metrics of fp32 vs the variant (ORT)."""
    from model.dataset import load_dataset
    from model.tables import read_meta
    from preference_cache.memory_store import InProcessPreferenceStore
    from preference_cache.mining import mine_preferences

    meta = read_meta(data_dir)
    if model.data_fingerprint and model.data_fingerprint != meta.fingerprint:
        raise ExportError(
            f"the model was trained on data {model.data_fingerprint[:12]}…, but --data {data_dir} is "
            f"{meta.fingerprint[:12]}…: parity and test metrics would be measured on the wrong data"
        )
    store = InProcessPreferenceStore(mine_preferences(meta.root, history_len=model.history_len, threads=2))
    ds = load_dataset(meta.root, test_view_spec(model.history_len, model.view), model.buckets)
    requests = raw_test_requests(meta.root, meta.test_day, E2E_REQUESTS, np.unique(ds.views["test"].request))
    trained = train_path(model, ds, {r.request_id for r in requests})
    out: dict[str, float] = {}
    for name, graphs in {"fp32": fp32_dir, variant: variant_dir}.items():
        served = serve(
            model, cpu_session(graphs / ENCODER_FILE), cpu_session(graphs / HEAD_FILE), store, requests
        )
        diffs = e2e_abs_diffs(served, trained)
        tol = TOLERANCES[name]
        gated = {k: tol.measure(d) for k, d in diffs.items()}
        if max(gated.values()) > tol.prob:
            raise ExportError(
                f"end-to-end parity ({name}, {len(served)} rows of {len(requests)} test requests) "
                f"failed: {tol.statistic} abs diffs {gated} > {tol.prob:g}"
            )
        out |= {f"e2e_{name}_max_abs_diff_{k}": float(d.max(initial=0.0)) for k, d in diffs.items()}
        out |= {f"e2e_{name}_mean_abs_diff_{k}": float(d.mean()) if d.size else 0.0 for k, d in diffs.items()}
        out["e2e_rows"] = float(len(served))
    evaluator = TestViewEvaluator(model, ds)
    base = evaluator.metrics(fp32_dir / ENCODER_FILE, fp32_dir / HEAD_FILE)
    out.update({f"test_{k}_ort_fp32": v for k, v in base.items()})
    # The trainer's own test metrics (same view, PyTorch) should be reproduced by the fp32 graphs.
    out |= {
        f"test_{k}_ort_fp32_minus_checkpoint": base[k] - model.metrics[k] for k in base if k in model.metrics
    }
    if variant != "fp32":
        mine = evaluator.metrics(variant_dir / ENCODER_FILE, variant_dir / HEAD_FILE)
        out.update({f"test_{k}_ort_{variant}": v for k, v in mine.items()})
        out.update({f"delta_{k}_{variant}_vs_fp32": mine[k] - base[k] for k in base})
        lost = {k: base[k] - mine[k] for k in base if base[k] - mine[k] > MAX_DROP[k]}
        if lost:
            raise ExportError(f"{variant} loses too much on the test view: {lost} (allowed {MAX_DROP})")
    return out
