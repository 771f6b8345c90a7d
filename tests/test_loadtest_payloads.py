"""Seeded load-test payloads: deterministic, Zipf-skewed, sized as asked, valid for the service's schema."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loadtest.catalogue import Catalogue, load_catalogue, open_catalogue, synthetic_catalogue
from loadtest.payloads import CandidatePools, PayloadConfig, PayloadGenerator


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return synthetic_catalogue(seed=3, n_items=3000, n_queries=400, n_users=5000)


def _gen(catalogue: Catalogue, stream: int = 0, **cfg: object) -> PayloadGenerator:
    return PayloadGenerator(CandidatePools(catalogue, PayloadConfig(**cfg)), stream=stream)  # type: ignore[arg-type]


def test_same_seed_and_stream_give_the_same_payloads_and_other_streams_differ(catalogue: Catalogue) -> None:
    g1, g2, g3 = _gen(catalogue, seed=7), _gen(catalogue, seed=7), _gen(catalogue, seed=7, stream=1)
    seq1 = [g1.next_payload() for _ in range(20)]
    assert seq1 == [g2.next_payload() for _ in range(20)]
    assert seq1 != [g3.next_payload() for _ in range(20)]


def test_queries_and_users_follow_a_zipf_skew(catalogue: Catalogue) -> None:
    gen = _gen(catalogue, min_candidates=1, max_candidates=2, new_user_share=0.0)
    payloads = [gen.next_payload() for _ in range(4000)]
    queries = Counter(p["query"] for p in payloads)
    top_share = queries[str(catalogue.queries[0])] / len(payloads)
    assert top_share == pytest.approx(float(catalogue.query_weight[0]), abs=0.02)
    counts = sorted(queries.values(), reverse=True)
    assert counts[0] > 10 * counts[len(counts) // 2]  # a head and a long tail, not uniform
    users = Counter(p["user_id"] for p in payloads)
    assert users[str(catalogue.user_ids[0])] > 20 * len(payloads) / len(catalogue.user_ids)


def test_candidate_counts_stay_in_range_and_item_ids_are_unique_per_request(catalogue: Catalogue) -> None:
    gen = _gen(catalogue, min_candidates=50, max_candidates=500, fresh_share=0.5)
    sizes = []
    for _ in range(200):
        ids = [c["item_id"] for c in gen.next_payload()["candidates"]]
        assert len(ids) == len(set(ids))
        sizes.append(len(ids))
    assert min(sizes) >= 50 and max(sizes) <= 500
    assert min(sizes) < 100 and max(sizes) > 450  # the whole range is used


def test_a_repeated_query_mostly_gets_the_same_candidates_like_a_real_retriever(catalogue: Catalogue) -> None:
    gen = _gen(catalogue, min_candidates=100, max_candidates=100, fresh_share=0.1)
    by_query: dict[str, list[set[str]]] = {}
    for _ in range(300):
        p = gen.next_payload()
        by_query.setdefault(p["query"], []).append({c["item_id"] for c in p["candidates"]})
    first, second = next(sets for sets in by_query.values() if len(sets) >= 2)[:2]
    assert len(first & second) >= 70  # same pool, a few fresh items each time


def test_payloads_validate_against_the_service_request_schema(catalogue: Catalogue) -> None:
    schemas = pytest.importorskip("service.schemas")
    gen = _gen(catalogue, top_k=10, budget_ms=150.0)
    for _ in range(20):
        req = schemas.ScoreRequest.model_validate(gen.next_payload())
        assert req.top_k == 10 and 50 <= len(req.candidates) <= 500


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"min_candidates": 600, "max_candidates": 500}, "min_candidates"),
        ({"max_candidates": 2001}, "2000"),
        ({"fresh_share": 1.5}, "fresh_share"),
    ],
)
def test_bad_configuration_is_refused_with_the_field_named(cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PayloadConfig(**cfg)


def _write_tables(root: Path) -> None:
    root.mkdir()
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array(range(1000, 1600), pa.int64()),
                "title": [f"Acme {i} in. Copper Pipe Fitting" for i in range(600)],
                "price_bucket": pa.array([i % 10 + 1 for i in range(600)], pa.int8()),
                "pop_bucket": pa.array([i % 7 + 1 for i in range(600)], pa.int8()),
                "appeal": pa.array([0.0] * 600, pa.float32()),
            }
        ),
        root / "items.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "query_id": [1, 2, 3],
                "query": ["copper pipe", "pipe fitting", "never asked"],
                "popularity": [0.75, 0.25, 0.0],
            }
        ),
        root / "queries.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([11, 22, 33], pa.int64()),
                "activity": pa.array([0.1, 5.0, 1.0], pa.float32()),
            }
        ),
        root / "users.parquet",
    )


def test_data_dir_tables_drive_queries_by_popularity_and_real_user_ids(tmp_path: Path) -> None:
    _write_tables(tmp_path / "data")
    cat = load_catalogue(tmp_path / "data")
    assert list(cat.user_ids) == ["22", "33", "11"]  # most active first: Zipf rank 1 is the busiest user
    gen = PayloadGenerator(CandidatePools(cat, PayloadConfig(new_user_share=0.0)), stream=0)
    payloads = [gen.next_payload() for _ in range(400)]
    queries = Counter(p["query"] for p in payloads)
    assert "never asked" not in queries
    assert queries["copper pipe"] / 400 == pytest.approx(0.75, abs=0.07)
    assert {p["user_id"] for p in payloads} <= {"11", "22", "33"}
    first = payloads[0]["candidates"][0]
    assert (
        first["item_id"].isdigit() and "Copper" in first["title"] and 1 <= first.get("price_bucket", 1) <= 10
    )


def test_missing_table_is_an_error_but_a_missing_dir_falls_back_to_synthetic(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    with pytest.raises(FileNotFoundError, match="items.parquet"):
        open_catalogue(tmp_path / "broken")
    cat = open_catalogue(tmp_path / "not-built-yet")
    assert len(cat.item_ids) > 1000 and np.isclose(cat.query_weight.sum(), 1.0)
