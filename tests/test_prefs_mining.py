"""Mining on tiny hand-written Parquet tables (exact expected counts) and on seeded toy logs."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.hashing import stable_hash64
from preference_cache.mining import mine_preferences
from preference_cache.storage import load_mined, save_mined
from preference_cache.synthetic import write_toy_logs
from preference_cache.training import RowContribution

# (request_id, day, user_id, query_id, item_id, position, level, click); train_days = 2, day 3 is test
ROWS = [
    (1, 1, 10, 1, 100, 0, 3, 1),
    (1, 1, 10, 1, 101, 1, 0, 0),
    (2, 1, 11, 2, 100, 0, 3, 0),
    (2, 1, 11, 2, 102, 1, 2, 1),
    (3, 2, 10, 3, 200, 0, 1, 1),
    (3, 2, 10, 3, 201, 1, 3, 1),
    (9, 1, 10, 3, 300, 0, 2, 1),  # higher request id but an earlier day than request 3
    (4, 3, 12, 1, 100, 0, 3, 1),  # test day: must not be mined
]


def write_tables(root: Path, rows: list[tuple] = ROWS, train_days: int = 2) -> Path:
    cols = list(zip(*rows, strict=True))
    names = ["request_id", "day", "user_id", "query_id", "item_id", "position", "level", "click"]
    table = {n: pa.array(c, pa.int64()) for n, c in zip(names, cols, strict=True)}
    table["p_click"] = pa.array([0.1] * len(rows), pa.float32())
    pq.write_table(pa.table(table), root / "impressions.parquet")
    queries = {"query_id": [1, 2, 3], "query": ["Drill Bits", "drill  bits", "PVC pipe"]}
    queries["query_norm"] = ["drill bits", "drill bits", "pvc pipe"]
    pq.write_table(pa.table(queries), root / "queries.parquet")
    (root / "meta.json").write_text(json.dumps({"train_days": train_days, "test_day": train_days + 1}))
    return root


def test_query_counts_group_raw_queries_by_normalised_form_on_training_days(tmp_path: Path) -> None:
    mined = mine_preferences(write_tables(tmp_path), history_len=3)
    assert mined.query_norm.tolist() == ["drill bits", "pvc pipe"]
    assert mined.q_exposures.tolist() == [[1, 0, 1, 2], [0, 1, 1, 1]]
    assert mined.q_clicks.tolist() == [[0, 0, 1, 1], [0, 1, 1, 1]]
    assert mined.q_users.tolist() == [2, 1]
    assert mined.source_rows == 7


def test_user_history_keeps_the_last_clicks_in_time_order(tmp_path: Path) -> None:
    mined = mine_preferences(write_tables(tmp_path), history_len=3)
    assert mined.user_id.tolist() == [10, 11]  # user 12 only searched on the test day
    u10, u11 = mined.user_record(0), mined.user_record(1)
    assert (u10.exposures, u10.clicks, u10.activity) == ((1, 1, 1, 2), (0, 1, 1, 2), 4)
    assert u10.history_items == tuple(stable_hash64(str(i)) for i in (300, 200, 201))
    assert u10.history_levels == (2, 1, 3)
    assert (u11.activity, u11.history_items, u11.history_levels) == (1, (stable_hash64("102"),), (2,))
    assert mined.u_history_levels[1].tolist() == [-1, -1, 2]  # left-padded, most recent last


def test_until_day_mines_an_earlier_window_and_refuses_test_days(tmp_path: Path) -> None:
    data = write_tables(tmp_path)
    day1 = mine_preferences(data, history_len=3, until_day=1)
    assert day1.train_days == 1 and day1.source_rows == 5
    with pytest.raises(ValueError, match="until_day must lie in 1..train_days=2"):
        mine_preferences(data, until_day=3)


def test_row_arrays_align_to_rows_and_unknown_keys_get_defaults(tmp_path: Path) -> None:
    mined = mine_preferences(write_tables(tmp_path), history_len=3)
    q = mined.query_arrays(np.array(["pvc pipe", "never searched", "drill bits"], dtype=object))
    assert q.found.tolist() == [True, False, True]
    assert q.exposures.tolist() == [[0, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 2]]
    u = mined.user_arrays(np.array([11, 99, 10]))
    assert u.found.tolist() == [True, False, True] and u.activity.tolist() == [1, 0, 4]
    assert u.history_levels[1].tolist() == [-1, -1, -1] and u.history_items[1].tolist() == [0, 0, 0]
    feats = mined.features(np.array(["never searched"], dtype=object), np.array([99]))
    assert feats.shape == (1, 12) and feats[0, -1] == 1.0  # u_is_new
    np.testing.assert_allclose(feats[0, :4], 0.05)  # the smoothing prior


def test_leave_one_out_removes_each_rows_own_impression(tmp_path: Path) -> None:
    mined = mine_preferences(write_tables(tmp_path), history_len=3)
    own = RowContribution(
        levels=np.array([3, -1]), clicks=np.array([1, 0]), item_hash64=np.array([stable_hash64("201"), 0])
    )
    q = mined.query_arrays(np.array(["pvc pipe", "pvc pipe"], dtype=object), exclude=own)
    assert q.exposures.tolist() == [[0, 1, 1, 0], [0, 1, 1, 1]]  # second row is outside the window
    u = mined.user_arrays(np.array([10, 10]), exclude=own)
    assert u.clicks.tolist() == [[0, 1, 1, 1], [0, 1, 1, 2]] and u.activity.tolist() == [3, 4]
    assert u.history_items[0].tolist() == [0, stable_hash64("300"), stable_hash64("200")]
    assert u.history_levels[0].tolist() == [-1, 2, 1]


def test_mined_file_round_trips_without_pickle_and_detects_tampering(tmp_path: Path) -> None:
    mined = mine_preferences(write_tables(tmp_path), history_len=3)
    out = save_mined(mined, tmp_path / "mined")
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "queries.parquet", "users.parquet"]
    assert (out / "users.parquet").read_bytes()[:4] == b"PAR1"
    loaded = load_mined(out)
    assert loaded.namespace == mined.namespace
    assert [loaded.user_record(i) for i in range(2)] == [mined.user_record(i) for i in range(2)]
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "content_hash": "0" * 64}))
    with pytest.raises(ValueError, match="corrupt or was edited"):
        load_mined(out)


def test_namespace_is_a_content_hash(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = mine_preferences(write_tables(tmp_path / "a"), history_len=3)
    again = mine_preferences(write_tables(tmp_path / "a"), history_len=3)
    changed = [r if r[0] != 2 or r[4] != 100 else (*r[:7], 1) for r in ROWS]  # one more click
    other = mine_preferences(write_tables(tmp_path / "b", changed), history_len=3)
    assert first.namespace == again.namespace != other.namespace


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: [(*r[:6], 7, r[7]) for r in rows], "level outside 0..3"),
        (lambda rows: [(*r[:3], 42, *r[4:]) for r in rows], "query_id is not in queries"),
        (lambda rows: [(*r[:7], 2) for r in rows], "click not 0/1"),
    ],
)
def test_invalid_impressions_are_refused_with_the_reason(tmp_path: Path, mutate, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mine_preferences(write_tables(tmp_path, mutate(ROWS)))


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"meta.json not found"):
        mine_preferences(tmp_path)
    write_tables(tmp_path)
    pq.write_table(pa.table({"query_id": [1], "query": ["x"]}), tmp_path / "queries.parquet")
    with pytest.raises(ValueError, match=r"lacks columns \['query_norm'\]"):
        mine_preferences(tmp_path)


def test_sql_matches_a_plain_python_reference_on_toy_logs(tmp_path: Path) -> None:
    data = write_toy_logs(tmp_path, requests=3000, users=300, queries=80, train_days=5, seed=3)
    mined = mine_preferences(data, history_len=4)
    imp = pq.read_table(data / "impressions.parquet").to_pylist()
    norm = dict(
        zip(
            *pq.read_table(data / "queries.parquet", columns=["query_id", "query_norm"]).to_pydict().values(),
            strict=True,
        )
    )
    exposures, users, clicks_by_user = defaultdict(lambda: [0] * 4), defaultdict(set), defaultdict(list)
    for r in sorted(imp, key=lambda r: (r["day"], r["request_id"], r["position"])):
        if r["day"] > 5:
            continue
        exposures[norm[r["query_id"]]][r["level"]] += 1
        users[norm[r["query_id"]]].add(r["user_id"])
        if r["click"]:
            clicks_by_user[r["user_id"]].append((stable_hash64(str(r["item_id"])), r["level"]))
    assert mined.query_norm.tolist() == sorted(exposures)
    assert mined.q_exposures.tolist() == [exposures[q] for q in sorted(exposures)]
    assert mined.q_users.tolist() == [len(users[q]) for q in sorted(users)]
    for row, uid in enumerate(mined.user_id.tolist()):
        record, expected = mined.user_record(row), clicks_by_user[uid][-4:]
        assert list(zip(record.history_items, record.history_levels, strict=True)) == expected
        assert record.activity == len(clicks_by_user[uid])
