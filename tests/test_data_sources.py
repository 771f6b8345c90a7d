"""Relevance-label loaders: the 4-level mapping, any CSV with the Home Depot columns, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from data.sources import (
    REQUIRED_COLUMNS,
    DataSourceError,
    default_home_depot_path,
    load_home_depot,
    load_relevance_csv,
    relevance_to_level,
)
from data.synthetic import generate_synthetic

HEADER = ",".join(f'"{c}"' for c in REQUIRED_COLUMNS)
ROWS = [
    '2,100001,"Simpson Strong-Tie 12-Gauge Angle","angle bracket",3',
    '3,100001,"Simpson Strong-Tie 12-Gauge Angle","l bracket",2.5',
    '9,100002,"BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat","deck over",1.67',
]


def write_csv(path: Path, header: str = HEADER, rows: list[str] = ROWS, compress: bool = False) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_level_mapping_matches_method_golden_values() -> None:
    raw = [1.0, 1.25, 1.33, 1.5, 1.67, 1.75, 2.0, 2.25, 2.33, 2.5, 2.67, 2.75, 3.0]
    expected = [0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 3]
    assert relevance_to_level(np.array(raw)).tolist() == expected
    assert relevance_to_level(np.array(raw)).dtype == np.int8


@pytest.mark.parametrize("compress", [False, True])
def test_any_csv_with_the_columns_loads_plain_or_gzipped(tmp_path: Path, compress: bool) -> None:
    path = write_csv(tmp_path / ("pairs.csv.gz" if compress else "pairs.csv"), compress=compress)
    data = load_relevance_csv(path)
    assert len(data) == 3
    assert data.search_term.tolist() == ["angle bracket", "l bracket", "deck over"]
    assert data.product_uid.tolist() == [100001, 100001, 100002]
    assert data.level.tolist() == [3, 2, 0]
    assert len(data.sha256) == 64


def test_extra_columns_and_column_order_do_not_matter(tmp_path: Path) -> None:
    header = '"relevance","search_term","note","product_title","product_uid","id"'
    rows = ['2,"hammer","x","Claw Hammer",5,1', '3,"saw","y","Hand Saw",6,2']
    data = load_relevance_csv(write_csv(tmp_path / "reordered.csv", header, rows))
    assert data.level.tolist() == [1, 3]
    assert data.product_title.tolist() == ["Claw Hammer", "Hand Saw"]


def test_missing_column_error_names_path_and_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", header='"id","product_uid","title","search_term","relevance"')
    with pytest.raises(DataSourceError) as err:
        load_relevance_csv(path)
    message = str(err.value)
    assert str(path) in message and "product_title" in message and "title" in message


def test_missing_file_error_names_path_and_expected_columns(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv.gz"
    with pytest.raises(DataSourceError, match="not found") as err:
        load_relevance_csv(path)
    assert str(path) in str(err.value) and "search_term" in str(err.value)


def test_out_of_range_relevance_is_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "range.csv", rows=['1,5,"Saw","saw",4.5'])
    with pytest.raises(DataSourceError, match=r"relevance must be in \[1, 3\]"):
        load_relevance_csv(path)


def test_non_numeric_relevance_is_a_clear_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "text.csv", rows=['1,5,"Saw","saw",high'])
    with pytest.raises(DataSourceError, match="unreadable") as err:
        load_relevance_csv(path)
    assert str(path) in str(err.value)


def test_duplicate_query_product_pairs_are_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "dup.csv", rows=[ROWS[0], ROWS[0].replace("2,", "7,", 1)])
    with pytest.raises(DataSourceError, match="unique"):
        load_relevance_csv(path)


def test_home_depot_file_loads_with_the_documented_statistics() -> None:
    if not default_home_depot_path().is_file():
        pytest.skip(f"shared Home Depot file absent at {default_home_depot_path()}")
    data = load_home_depot()
    assert len(data) == 74_067
    assert np.unique(data.search_term).size == 11_795
    assert np.unique(data.product_uid).size == 54_667
    shares = np.bincount(data.level, minlength=4) / len(data)
    np.testing.assert_allclose(shares, [0.16, 0.16, 0.42, 0.26], atol=0.01)


def test_synthetic_source_has_the_same_schema_and_realistic_labels() -> None:
    data = generate_synthetic(n_queries=300, n_products=1_500, seed=3)
    assert np.unique(data.search_term).size == 300
    assert set(data.relevance.tolist()) <= {1.0, 1.33, 1.67, 2.0, 2.33, 2.67, 3.0}  # means of three raters
    shares = np.bincount(data.level, minlength=4) / len(data)
    assert (shares > 0.05).all(), shares  # every level occurs
    again = generate_synthetic(n_queries=300, n_products=1_500, seed=3)
    assert np.array_equal(again.search_term, data.search_term) and np.array_equal(
        again.relevance, data.relevance
    )
