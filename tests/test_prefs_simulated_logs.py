"""Contract with ``data/``: mining the simulator's logs agrees with the simulator's own user bookkeeping."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from preference_cache.mining import mine_preferences


@pytest.fixture(scope="module")
def small_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = pytest.importorskip("data.build")
    config = pytest.importorskip("data.config")
    out = tmp_path_factory.mktemp("sim-small")
    build.build_dataset("synthetic", config.profile_config("small"), 0, out)
    return out


def test_mined_activity_equals_the_simulators_training_clicks(small_logs: Path) -> None:
    mined = mine_preferences(small_logs, history_len=10)
    users = duckdb.sql(
        f"SELECT user_id, train_clicks, train_requests FROM '{small_logs / 'users.parquet'}' ORDER BY user_id"
    ).fetchnumpy()
    arrays = mined.user_arrays(users["user_id"])
    np.testing.assert_array_equal(arrays.found, users["train_requests"] > 0)  # new users have no record
    np.testing.assert_array_equal(arrays.activity, users["train_clicks"])
    assert (arrays.history_levels >= 0).sum(axis=1).max() <= 10


def test_test_day_impressions_never_reach_the_mined_counts(small_logs: Path) -> None:
    mined = mine_preferences(small_logs)
    train_rows = duckdb.sql(
        f"SELECT count(*) FROM '{small_logs / 'impressions.parquet'}' WHERE day <= {mined.train_days}"
    ).fetchall()[0][0]
    assert mined.source_rows == train_rows == int(mined.q_exposures.sum()) == int(mined.u_exposures.sum())
