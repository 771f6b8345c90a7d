"""Training views: point-in-time preference features and clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_inputs import build_tiny_data

from features.prefs import PREF_DENSE_COLUMNS
from model.bench_config import buckets_for
from model.dataset import ViewSpec, load_dataset
from model.tables import DataDirError, read_table

pytestmark = pytest.mark.train
ACTIVITY = PREF_DENSE_COLUMNS.index("u_log_activity")
IS_NEW = PREF_DENSE_COLUMNS.index("u_is_new")
BUCKETS = buckets_for(800, 1500, 300)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_data(tmp_path_factory.mktemp("model-data") / "tiny")


@pytest.fixture(scope="module")
def dataset(tiny: Path):  # type: ignore[no-untyped-def]
    return load_dataset(tiny, ViewSpec(ctr_days=3, max_coarse_requests=50), BUCKETS)


def _clicks_before(tiny: Path, user: np.ndarray, day: np.ndarray) -> np.ndarray:
    imp = read_table(tiny, "impressions", ("user_id", "day", "click"))
    out = np.zeros(len(user), dtype=np.int64)
    for d in np.unique(day):
        rows = day == d
        clicked = imp["user_id"][(imp["day"] < d) & (imp["click"] == 1)]
        uniq, counts = np.unique(clicked, return_counts=True)
        pos = np.clip(np.searchsorted(uniq, user[rows]), 0, max(len(uniq) - 1, 0))
        out[rows] = np.where(uniq[pos] == user[rows], counts[pos], 0) if len(uniq) else 0
    return out


def test_training_rows_only_see_clicks_from_earlier_days(tiny: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    view = dataset.views["train"]
    imp = read_table(tiny, "impressions", ("request_id", "user_id", "day"))
    order = np.argsort(imp["request_id"])
    pos = np.searchsorted(imp["request_id"][order], view.request)
    user, day = imp["user_id"][order][pos], imp["day"][order][pos].astype(np.int64)
    assert len(np.unique(day)) == 3  # rolling cut-offs over three training days
    expected = np.log1p(_clicks_before(tiny, user, day))
    np.testing.assert_allclose(view.pref_dense[:, ACTIVITY], expected, rtol=1e-5)


def test_test_day_rows_see_the_whole_training_window(tiny: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    view = dataset.views["test"]
    users = read_table(tiny, "users", ("user_id", "train_clicks", "segment"))
    imp = read_table(tiny, "impressions", ("request_id", "user_id"))
    order = np.argsort(imp["request_id"])
    user = imp["user_id"][order][np.searchsorted(imp["request_id"][order], view.request)]
    lookup = dict(zip(users["user_id"].tolist(), users["train_clicks"].tolist(), strict=True))
    expected = np.log1p([lookup.get(u, 0) for u in user.tolist()])
    np.testing.assert_allclose(view.pref_dense[:, ACTIVITY], expected, rtol=1e-5)
    assert view.pref_dense[view.segment == "new", IS_NEW].min() == 1.0


def test_human_levels_come_only_from_the_train_split(dataset) -> None:  # type: ignore[no-untyped-def]
    labelled = dataset.pairs.label >= 0
    assert set(dataset.rel_train.pair.tolist()) == set(np.flatnonzero(labelled).tolist())
    assert not labelled[dataset.rel_test.pair].any()  # test-split labels never reach L_sc


def test_missing_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="data directory not found"):
        load_dataset(tmp_path / "nope", ViewSpec(), BUCKETS)


def test_data_dir_without_meta_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="meta.json not found"):
        load_dataset(tmp_path, ViewSpec(), BUCKETS)
