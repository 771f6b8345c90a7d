"""The tiny bundle on synthetic data: trained, end-to-end parity with the training path, int8 deltas recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from export.tiny import build_tiny_bundle
from features.bundle import open_bundle
from features.graph_check import check_bundle_graphs, open_session
from features.text import TextEncoder

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from data.build import build_dataset
    from data.config import profile_config

    out = tmp_path_factory.mktemp("data") / "synthetic-small"
    build_dataset("synthetic", profile_config("small"), 0, out)
    return out


@pytest.fixture(scope="module")
def int8_bundle(data_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "tiny-int8"
    build_tiny_bundle(data_dir, out, variant="int8")
    return out


def test_tiny_bundle_opens_and_records_parity_deltas_and_fingerprint(
    int8_bundle: Path, data_dir: Path
) -> None:
    bundle = open_bundle(int8_bundle)
    check_bundle_graphs(bundle)
    m = bundle.manifest
    assert m.variant == "int8" and m.text.length_buckets == (16, 24, 32)
    assert m.data_fingerprint == json.loads((data_dir / "meta.json").read_text())["fingerprint"]
    assert m.metrics["parity_fp32_head_max_abs_diff_prob"] <= 1e-4
    assert m.metrics["parity_fp32_encoder_max_abs_diff_prob"] <= 1e-4
    assert m.metrics["e2e_rows"] >= 100
    assert (
        max(m.metrics[f"e2e_fp32_max_abs_diff_{k}"] for k in ("p_level", "p_ctr_given_level", "score"))
        <= 1e-4
    )
    for key in ("delta_auc_int8_vs_fp32", "delta_rel_ndcg10_int8_vs_fp32", "speedup_int8_vs_fp32"):
        assert np.isfinite(m.metrics[key])
    assert m.metrics["test_auc_ort_fp32"] > 0.6


def test_tiny_encoder_ranks_labelled_matches_above_random_products(int8_bundle: Path, data_dir: Path) -> None:
    """A real (if weak) model: strong pairs get a higher expected level than irrelevant ones."""
    from model.encoder_data import EncoderData

    bundle = open_bundle(int8_bundle)
    t = bundle.manifest.text
    text = TextEncoder(bundle.tokenizer_path, t.max_len, t.max_query_len, t.length_buckets)
    pairs = EncoderData(data_dir).relevance_pairs(("test",))
    session = open_session(bundle.encoder_path)
    expected = []
    for level in (0, 3):
        rows = np.flatnonzero(pairs.level == level)[:300]
        enc = text.encode_pairs(list(pairs.query[rows]), list(pairs.title[rows]))
        logits = session.run(["rel_logits"], enc.as_feeds(("input_ids", "attention_mask", "token_type_ids")))[
            0
        ]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        expected.append(float(((p / p.sum(axis=1, keepdims=True)) @ np.arange(4)).mean()))
    assert expected[1] > expected[0] + 0.2, expected


def test_data_of_another_fingerprint_is_refused(data_dir: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from export.checkpoint import from_modules
    from export.evaluate import data_checks
    from export.onnx_export import ExportError
    from export.tiny import tiny_modules
    from features.tokenizer import save_tokenizer, train_wordpiece

    tok = save_tokenizer(
        train_wordpiece(["drill bit", "paint roller"] * 5, 100, 1), tmp_path / "tokenizer.json"
    )
    model = replace(from_modules(*tiny_modules(100), tok), data_fingerprint="0123456789abcdef")
    with pytest.raises(ExportError, match=r"trained on data 0123456789ab…, but --data .* is [0-9a-f]{12}…"):
        data_checks(model, tmp_path, tmp_path, "fp32", data_dir)
