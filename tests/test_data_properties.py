"""The generated logs have the properties PRECTR-V2 relies on, measured on the tables, not the parameters.

The small profile is built once per session for each source (Home Depot only when the shared file exists).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr

from data.build import build_dataset
from data.config import profile_config
from data.schema import LOW_ACTIVE_CLICKS, TABLES
from data.sources import default_home_depot_path, relevance_to_level
from data.tables import arrow_schema


class Built:
    def __init__(self, root: Path, meta: dict) -> None:
        self.root, self.meta = root, meta
        self.train_days, self.test_day = meta["train_days"], meta["test_day"]

    def cols(self, table: str, *names: str) -> dict[str, np.ndarray]:
        t = pq.read_table(self.root / f"{table}.parquet", columns=list(names) or None)
        return {
            n: np.asarray(
                t.column(n).to_pylist() if t.schema.field(n).type == "string" else t.column(n).to_numpy()
            )
            for n in t.column_names
        }


@pytest.fixture(scope="session", params=["synthetic", "homedepot"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    source = request.param
    if source == "homedepot" and not default_home_depot_path().is_file():
        pytest.skip(f"Home Depot labels not found at {default_home_depot_path()} (shared data absent)")
    root = tmp_path_factory.mktemp(f"data-{source}")
    return Built(root, build_dataset(source, profile_config("small"), seed=0, out_dir=root))


def test_every_table_has_exactly_the_schema_columns_and_types(built: Built) -> None:
    for name in TABLES:
        schema = pq.read_schema(built.root / f"{name}.parquet")
        assert schema.remove_metadata() == arrow_schema(name), name
        assert pq.read_metadata(built.root / f"{name}.parquet").num_rows == built.meta["rows"][name]


def test_logging_policy_exposes_far_more_relevant_items_than_the_coarse_view(built: Built) -> None:
    imp = built.cols("impressions", "day", "level")
    exposed = imp["level"][imp["day"] == built.test_day].mean()
    coarse = built.cols("candidates", "level")["level"].mean()
    assert exposed > coarse + 0.4 and exposed > 2.5 * coarse, (exposed, coarse)


def test_at_least_40_percent_of_users_are_low_active_and_some_are_new(built: Built) -> None:
    imp = built.cols("impressions", "day", "user_id", "click")
    users = built.cols("users", "user_id")["user_id"]
    train = imp["day"] <= built.train_days
    clicks = np.bincount(imp["user_id"][train], weights=imp["click"][train], minlength=users.max() + 1)[users]
    seen = np.bincount(imp["user_id"][train], minlength=users.max() + 1)[users] > 0
    assert np.mean(clicks < LOW_ACTIVE_CLICKS) >= 0.40
    assert np.mean(~seen) >= 0.02, "no new users (without any training request)"
    assert np.mean(clicks >= LOW_ACTIVE_CLICKS) >= 0.05, "no active users to learn personal preferences from"


def _strictness_signal(built: Built, min_impressions: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query: log clicks-over-expected-clicks (COEC) on levels >= 2 minus on level 0, training days only.

    Expected clicks come from the position click curve measured on all training impressions, which removes
    the position confound (low levels sit lower in the list). A strict query punishes irrelevance harder, so
    its gap is wider. Returns (signal, latent strictness) for queries with enough traffic in both groups.
    """
    imp = built.cols("impressions", "day", "query_id", "position", "level", "click")
    train = imp["day"] <= built.train_days
    q, pos, lv, clk = (imp[k][train] for k in ("query_id", "position", "level", "click"))
    clk = clk.astype(np.float64)
    expected = (np.bincount(pos, weights=clk) / np.bincount(pos))[pos]
    strictness = built.cols("queries", "strictness")["strictness"]
    n = strictness.size

    def coec(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = np.bincount(q[mask], weights=clk[mask], minlength=n)
        e = np.bincount(q[mask], weights=expected[mask], minlength=n)
        return np.log((c + 0.5) / (e + 0.5)), np.bincount(q[mask], minlength=n)

    (hi, n_hi), (lo, n_lo) = coec(lv >= 2), coec(lv == 0)
    enough = (n_hi >= min_impressions) & (n_lo >= min_impressions)
    return (hi - lo)[enough], strictness[enough]


def test_cross_user_click_rates_by_level_recover_query_strictness(built: Built) -> None:
    signal, strictness = _strictness_signal(built, min_impressions=30)
    assert signal.size >= 50, f"only {signal.size} queries with enough traffic"
    rho = spearmanr(signal, strictness).statistic
    assert rho >= 0.5, rho


def test_test_day_rows_never_enter_training_tables(built: Built) -> None:
    req = built.cols("requests", "request_id", "day", "user_id")
    imp = built.cols("impressions", "request_id", "day", "user_id")
    day_of = np.full(req["request_id"].max() + 1, -1)
    day_of[req["request_id"]] = req["day"]
    assert np.array_equal(day_of[imp["request_id"]], imp["day"]), "impression day differs from its request"
    assert req["day"].min() == 1 and req["day"].max() == built.test_day
    cand = built.cols("candidates", "request_id")["request_id"]
    test_requests = req["request_id"][req["day"] == built.test_day]
    assert np.array_equal(np.unique(cand), np.sort(test_requests)), "candidates must be exactly the test day"
    users = built.cols("users", "user_id", "train_requests", "train_clicks", "segment")
    train = req["day"] <= built.train_days
    n = users["user_id"].max() + 1
    assert np.array_equal(
        np.bincount(req["user_id"][train], minlength=n)[users["user_id"]], users["train_requests"]
    )
    imp_click = built.cols("impressions", "click")["click"]
    t = imp["day"] <= built.train_days
    clicks = np.bincount(imp["user_id"][t], weights=imp_click[t], minlength=n)[users["user_id"]]
    assert np.array_equal(clicks.astype(np.int64), users["train_clicks"]), "user stats must use training days"
    assert set(users["segment"][users["train_requests"] == 0]) == {"new"}


def test_exposures_and_coarse_view_share_one_latent_click_probability(built: Built) -> None:
    imp = built.cols("impressions", "day", "request_id", "item_id", "position", "level", "p_click")
    cand = built.cols("candidates", "request_id", "item_id", "level", "p_click_true")
    test = imp["day"] == built.test_day
    key = lambda r, i: r.astype(np.int64) * 10_000_000 + i  # noqa: E731
    order = np.argsort(key(cand["request_id"], cand["item_id"]))
    idx = order[
        np.searchsorted(
            key(cand["request_id"], cand["item_id"])[order],
            key(imp["request_id"][test], imp["item_id"][test]),
        )
    ]
    assert np.array_equal(cand["level"][idx], imp["level"][test])
    resolvable = cand["p_click_true"][idx] > 1e-6  # float32 underflow makes tiny ratios meaningless
    ratio = imp["p_click"][test][resolvable] / cand["p_click_true"][idx][resolvable]
    by_position = [ratio[imp["position"][test][resolvable] == p] for p in range(10)]
    assert all(np.ptp(r) < 1e-4 for r in by_position), "ratio must depend on the position only"
    assert abs(by_position[0].mean() - 1.0) < 1e-5 and np.all(np.diff([r.mean() for r in by_position]) < 0)


def test_relevance_table_is_split_by_query_and_consistent_with_labels(built: Built) -> None:
    rel = built.cols("relevance", "query_id", "level", "relevance_raw", "split")
    queries = built.cols("queries", "query_norm", "split")
    assert np.array_equal(queries["split"][rel["query_id"]], rel["split"])
    split_of: dict[str, str] = {}
    for norm, split in zip(queries["query_norm"], queries["split"], strict=True):
        assert split_of.setdefault(norm, split) == split, f"{norm!r} appears in two splits"
    human = ~np.isnan(rel["relevance_raw"])
    assert np.array_equal(relevance_to_level(rel["relevance_raw"][human]), rel["level"][human])
    assert (rel["level"][~human] == 0).all() and (~human).sum() > 0
    shares = (
        np.bincount(np.searchsorted(["test", "train", "valid"], queries["split"])) / queries["split"].size
    )
    np.testing.assert_allclose(shares, [0.1, 0.8, 0.1], atol=0.04)


def _fingerprint_in_fresh_process(seed: int, out: Path) -> str:
    """Build in a new interpreter with another string-hash seed: no set or dict order may leak in."""
    code = (
        "import sys; from data.build import build_dataset; from data.config import profile_config; "
        "print(build_dataset('synthetic', profile_config('small'), int(sys.argv[1]), sys.argv[2])['fingerprint'])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(seed), str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    cfg = profile_config("small")
    first = build_dataset("synthetic", cfg, seed=7, out_dir=tmp_path / "a")
    second = build_dataset("synthetic", cfg, seed=7, out_dir=tmp_path / "b")
    other = build_dataset("synthetic", cfg, seed=8, out_dir=tmp_path / "c")
    for name in TABLES:
        same = (tmp_path / "a" / f"{name}.parquet").read_bytes() == (
            tmp_path / "b" / f"{name}.parquet"
        ).read_bytes()
        assert same, f"{name}.parquet differs between two builds with seed 7"
    assert first["fingerprint"] == second["fingerprint"] != other["fingerprint"]
    imp_a = (
        pq.read_table(tmp_path / "a" / "impressions.parquet", columns=["click"]).column("click").to_numpy()
    )
    imp_c = (
        pq.read_table(tmp_path / "c" / "impressions.parquet", columns=["click"]).column("click").to_numpy()
    )
    assert imp_a.size != imp_c.size or not np.array_equal(imp_a, imp_c)
