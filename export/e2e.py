"""End-to-end parity: raw test requests through the serving path vs the same rows through the training path.

Serving path (what the service does, torch-free): raw query -> ``normalize_query`` -> ``TextEncoder.encode``
(query once, titles bucket-padded) -> ONNX encoder; preference records from the in-process store over the
mined training days -> ``build_head_feeds`` -> ONNX head.
Training path: ``model.dataset.load_dataset`` test view (point-in-time preferences, ``id_matrix``) and
``model.student.tokenize_for_student`` -> PyTorch encoder and head.
Both start from the raw Parquet tables; they share only ``features/``, which is the point.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.checkpoint import ExportableModel
from export.onnx_export import ExportError
from features.head_inputs import ENCODER_OUTPUT_NAMES, HEAD_OUTPUT_NAMES, build_head_feeds
from features.normalize import normalize_query
from features.prefs import Smoothing
from features.text import TextEncoder

COMPARED = ("p_level", "p_ctr_given_level", "score")


@dataclass(frozen=True)
class RawRequest:
    """One logged test request as a search backend would send it."""

    request_id: int
    query: str
    user_id: str
    item_ids: list[str]
    titles: list[str]
    price_bucket: np.ndarray
    pop_bucket: np.ndarray


def raw_test_requests(
    data_dir: Path, day: int, max_requests: int, among: np.ndarray | None = None
) -> list[RawRequest]:
    """The first ``max_requests`` requests of ``day`` (of the request ids ``among``, when given: a sampled
    test view holds only some of the day's requests) with raw (un-normalised) query text, from the tables."""
    from model.tables import read_table

    imp = read_table(data_dir, "impressions", ("request_id", "day", "user_id", "query_id", "item_id"))
    on_day = imp["day"] == day
    if among is not None:
        on_day &= np.isin(imp["request_id"], among)
    keep = np.isin(imp["request_id"], np.unique(imp["request_id"][on_day])[:max_requests]) & on_day
    imp = {k: v[keep] for k, v in imp.items()}
    queries = read_table(data_dir, "queries", ("query_id", "query"))
    query_of = dict(zip(queries["query_id"].tolist(), queries["query"].tolist(), strict=True))
    items = read_table(data_dir, "items", ("item_id", "title", "price_bucket", "pop_bucket"))
    item_row = {int(i): r for r, i in enumerate(items["item_id"].tolist())}
    requests = []
    for rid in np.unique(imp["request_id"]).tolist():
        rows = np.flatnonzero(imp["request_id"] == rid)
        at = np.asarray([item_row[int(i)] for i in imp["item_id"][rows]])
        requests.append(
            RawRequest(
                request_id=int(rid),
                query=str(query_of[int(imp["query_id"][rows[0]])]),
                user_id=str(int(imp["user_id"][rows[0]])),
                item_ids=[str(int(i)) for i in imp["item_id"][rows]],
                titles=[str(t) for t in items["title"][at]],
                price_bucket=items["price_bucket"][at].astype(np.int64),
                pop_bucket=items["pop_bucket"][at].astype(np.int64),
            )
        )
    return requests


def serve(
    model: ExportableModel, encoder, head, store, requests: list[RawRequest]
) -> dict[tuple[int, int], dict]:
    """Serving-path outputs keyed by (request_id, item_id); ``encoder``/``head`` are ORT sessions."""
    text = TextEncoder(
        model.tokenizer_path, model.text.max_len, model.text.max_query_len, model.text.length_buckets
    )
    smoothing = Smoothing(model.smoothing.prior_rate, model.smoothing.strength)
    out: dict[tuple[int, int], dict] = {}
    for req in requests:
        pairs = text.encode(normalize_query(req.query), req.titles)
        rel_vec, rel_logits = encoder.run(
            list(ENCODER_OUTPUT_NAMES), pairs.as_feeds(("input_ids", "attention_mask", "token_type_ids"))
        )
        prefs = asyncio.run(store.lookup(req.query, req.user_id))
        feeds = build_head_feeds(
            rel_vec=rel_vec,
            rel_logits=rel_logits,
            query=req.query,
            user_id=req.user_id,
            item_ids=req.item_ids,
            price_bucket=req.price_bucket,
            pop_bucket=req.pop_bucket,
            qpref=prefs.qpref,
            upref=prefs.upref,
            buckets=model.buckets,
            smoothing=smoothing,
            history_len=model.history_len,
        )
        results = dict(zip(HEAD_OUTPUT_NAMES, head.run(list(HEAD_OUTPUT_NAMES), feeds), strict=True))
        for i, item in enumerate(req.item_ids):
            out[(req.request_id, int(item))] = {k: results[k][i] for k in COMPARED}
    return out


def train_path(model: ExportableModel, ds, request_ids: set[int]) -> dict[tuple[int, int], dict]:
    """Training-path outputs for the test-view rows of ``request_ids`` (PyTorch eager).

    ``ds`` is a ``model.dataset.Dataset`` built with ``model.buckets`` and ``model.history_len``.
    """
    import torch

    from model.student import predict_student, tokenize_for_student

    view = ds.views["test"]
    rows = np.flatnonzero(np.isin(view.request, sorted(request_ids)))
    text = TextEncoder(
        model.tokenizer_path, model.text.max_len, model.text.max_query_len, model.text.length_buckets
    )
    pair = view.pair[rows]
    tokens = tokenize_for_student(text, ds.pairs.query_norm[pair], ds.pairs.title[pair])
    rel_vec, rel_logits = predict_student(model.encoder, tokens)
    inputs = (
        rel_vec,
        rel_logits,
        view.pref_dense[rows],
        view.ids[rows],
        view.hist_items[rows],
        view.hist_levels[rows],
    )
    with torch.no_grad():
        outs = model.head(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    results = dict(zip(HEAD_OUTPUT_NAMES, (o.numpy() for o in outs), strict=True))
    items = ds.pairs.item_id[pair]
    return {
        (int(view.request[r]), int(items[i])): {k: results[k][i] for k in COMPARED}
        for i, r in enumerate(rows)
    }


def e2e_abs_diffs(served: dict, trained: dict) -> dict[str, np.ndarray]:
    """|serving - training| per output over every row both paths produced; every row must match."""
    if set(served) != set(trained):
        missing = sorted(set(served) ^ set(trained))[:3]
        raise ExportError(f"serving and training paths produced different rows, e.g. {missing}")
    return {
        k: np.concatenate([np.abs(served[key][k] - trained[key][k]).reshape(-1) for key in served])
        for k in COMPARED
    }
