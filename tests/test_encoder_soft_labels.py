"""The soft-label file is the teacher/student contract: any teacher that writes it can be distilled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.bm25 import BM25, QuantileLevels
from model.soft_labels import SoftLabelError, read_soft_labels, write_soft_labels


def _write(path: Path, hidden: bool = False) -> np.ndarray:
    logits = np.array([[2.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 3.0]], dtype=np.float32)
    write_soft_labels(
        path,
        np.array(["deck screws", "paint"], dtype=object),
        np.array([11, 12]),
        logits,
        {"data_fingerprint": "abc", "teacher": "test"},
        source=np.array(["relevance", "impression"], dtype=object),
        hidden=np.ones((2, 8), dtype=np.float32) if hidden else None,
    )
    return logits


def test_written_file_round_trips_logits_and_metadata(tmp_path: Path) -> None:
    logits = _write(tmp_path / "soft.parquet", hidden=True)
    soft = read_soft_labels(tmp_path / "soft.parquet", num_levels=4, load_hidden=True)
    np.testing.assert_allclose(soft.logits, logits)
    assert soft.meta["data_fingerprint"] == "abc" and soft.meta["num_levels"] == 4
    assert soft.hidden is not None and soft.hidden.shape == (2, 8)
    np.testing.assert_allclose(soft.probs(1.0).sum(axis=1), 1.0, atol=1e-6)


def test_higher_temperature_flattens_the_distribution(tmp_path: Path) -> None:
    _write(tmp_path / "soft.parquet")
    soft = read_soft_labels(tmp_path / "soft.parquet")
    assert soft.probs(2.0).max(axis=1).max() < soft.probs(1.0).max(axis=1).max()


def test_probability_only_file_from_an_llm_teacher_is_accepted(tmp_path: Path) -> None:
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.05, 0.05, 0.3, 0.6]])
    cols = {"query": ["a", "b"], "item_id": [1, 2], **{f"p_{k}": probs[:, k] for k in range(4)}}
    pq.write_table(pa.table(cols), tmp_path / "llm.parquet")
    soft = read_soft_labels(tmp_path / "llm.parquet", num_levels=4)
    np.testing.assert_allclose(soft.probs(1.0), probs, atol=1e-6)


def test_rows_that_do_not_sum_to_one_are_refused(tmp_path: Path) -> None:
    cols = {"query": ["a"], "item_id": [1], "p_0": [0.5], "p_1": [0.1], "p_2": [0.1], "p_3": [0.1]}
    pq.write_table(pa.table(cols), tmp_path / "bad.parquet")
    with pytest.raises(SoftLabelError, match="sum to 1"):
        read_soft_labels(tmp_path / "bad.parquet")


def test_level_count_mismatch_and_missing_columns_are_named(tmp_path: Path) -> None:
    _write(tmp_path / "soft.parquet")
    with pytest.raises(SoftLabelError, match="has 4 levels .* student predicts 3"):
        read_soft_labels(tmp_path / "soft.parquet", num_levels=3)
    pq.write_table(pa.table({"query": ["a"], "p_0": [1.0]}), tmp_path / "cols.parquet")
    with pytest.raises(SoftLabelError, match="needs columns query, item_id"):
        read_soft_labels(tmp_path / "cols.parquet")
    with pytest.raises(SoftLabelError, match="not found"):
        read_soft_labels(tmp_path / "none.parquet")


def test_bm25_ranks_the_matching_title_first_and_rare_terms_weigh_more() -> None:
    titles = [
        "steel deck screws",
        "interior paint white",
        "white ceiling paint",
        "brass coupling",
        "deck paint",
    ]
    bm25 = BM25(titles)
    scores = bm25.score_pairs(["deck screws"] * 5, titles)
    assert scores.argmax() == 0
    assert scores[3] == 0.0
    assert bm25.score_pair("coupling", "brass coupling") > bm25.score_pair("paint", "deck paint")


def test_quantile_levels_reproduce_the_train_level_mix_and_send_zero_scores_to_level_zero() -> None:
    scores = np.array([0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    levels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    q = QuantileLevels(4).fit(scores, levels)
    assert q.predict(np.array([0.0]))[0] == 0
    assert np.bincount(q.predict(scores), minlength=4).tolist() == [2, 2, 2, 2]
    assert q.one_hot(scores).shape == (8, 4)
