"""Hashing, preference features, head inputs, the manifest schema and bundle verification."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from features.bundle import BundleError, open_bundle, sha256_file
from features.hashing import hash_bucket, hash_buckets, query_key, stable_hash64, user_key
from features.head_inputs import (
    HEAD_INPUT_NAMES,
    bucket_of_hash64,
    build_head_feeds,
    history_matrix,
    id_matrix,
    item_hash64,
    request_id_matrix,
)
from features.manifest import BundleManifest, GraphSpec, IdFeatureSpec, PrefSpec, TensorSpec, TextSpec
from features.prefs import (
    NUM_LEVELS,
    PREF_DENSE_COLUMNS,
    QueryPref,
    Smoothing,
    UserPref,
    features_for_request,
    preference_features,
)

BUCKETS = {"user": 1000, "item": 5000, "query": 2000, "price_bucket": 11, "pop_bucket": 11}


def test_stable_hash_is_golden_and_process_independent() -> None:
    assert stable_hash64("100001") == stable_hash64(100001)
    golden = stable_hash64("angle bracket")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from features.hashing import stable_hash64; print(stable_hash64('angle bracket'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert int(out.stdout) == golden
    assert golden == 0x7FFF_FFFF_FFFF_FFFF & golden  # non-negative 63-bit


def test_hash_bucket_reserves_zero_and_vectorised_version_agrees() -> None:
    values = [str(i) for i in range(500)]
    scalar = [hash_bucket(v, 7) for v in values]
    assert min(scalar) == 1 and max(scalar) == 6
    np.testing.assert_array_equal(hash_buckets(values, 7), scalar)
    with pytest.raises(ValueError, match="bucket 0 is reserved"):
        hash_bucket("x", 1)


def test_query_key_uses_the_normalised_query() -> None:
    assert query_key("  Angle BRACKET") == query_key("angle bracket")
    assert query_key("angle bracket") != query_key("angle brackets")
    assert len(user_key(42)) == 16 and user_key(42) == user_key("42")


def test_missing_preferences_fall_back_to_prior_and_mark_new_user() -> None:
    row = features_for_request(None, None, n_rows=3, smoothing=Smoothing(prior_rate=0.05, strength=20))
    assert row.shape == (3, len(PREF_DENSE_COLUMNS)) and row.dtype == np.float32
    named = dict(zip(PREF_DENSE_COLUMNS, row[0], strict=True))
    assert named["q_rate_l3"] == pytest.approx(0.05) and named["u_rate_l0"] == pytest.approx(0.05)
    assert named["u_is_new"] == 1.0 and named["q_log_exposures"] == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_serving_features_equal_the_training_function_bit_for_bit(seed: int) -> None:
    """The service's one-row path computes exactly what ``preference_features`` (training) computes."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        exposures = rng.integers(0, 10 ** rng.integers(1, 7), size=(2, NUM_LEVELS))
        clicks = np.minimum(exposures, rng.integers(0, 1000, size=(2, NUM_LEVELS)))
        q = QueryPref(tuple(exposures[0].tolist()), tuple(clicks[0].tolist()), int(rng.integers(0, 10**6)))
        u = UserPref(tuple(exposures[1].tolist()), tuple(clicks[1].tolist()), int(rng.integers(0, 10**4)))
        smoothing = Smoothing(float(rng.uniform(0.001, 0.5)), float(rng.uniform(0.5, 100)))
        qpref, upref = (q if rng.random() < 0.8 else None), (u if rng.random() < 0.7 else None)
        zeros = np.zeros((1, NUM_LEVELS), np.int64)
        want = preference_features(
            np.array([q.exposures]) if qpref else zeros,
            np.array([q.clicks]) if qpref else zeros,
            np.array([q.users if qpref else 0]),
            np.array([u.exposures]) if upref else zeros,
            np.array([u.clicks]) if upref else zeros,
            np.array([u.activity if upref else 0]),
            smoothing,
        )
        got = features_for_request(qpref, upref, 3, smoothing)
        np.testing.assert_array_equal(got, np.repeat(want, 3, axis=0))


def test_preference_rates_move_from_prior_toward_observed_rate() -> None:
    q = QueryPref(exposures=(1000, 0, 0, 1000), clicks=(10, 0, 0, 300), users=50)
    u = UserPref(exposures=(5, 5, 5, 5), clicks=(0, 0, 1, 3), activity=4)
    named = dict(zip(PREF_DENSE_COLUMNS, features_for_request(q, u, 1)[0], strict=True))
    assert named["q_rate_l3"] == pytest.approx((300 + 1) / 1020, rel=1e-6)
    assert named["q_rate_l0"] < 0.05 < named["q_rate_l3"]
    assert named["u_is_new"] == 0.0 and named["u_log_activity"] == pytest.approx(np.log1p(4))


def test_history_is_left_padded_most_recent_last_and_bucketed_like_item_ids() -> None:
    h = item_hash64(["a", "b", "c"])
    items, levels = history_matrix(h, [3, 0, 2], n_rows=2, buckets=5000, history_len=5)
    assert items.shape == (2, 5) and items[0, :2].tolist() == [0, 0]
    assert items[0, 2:].tolist() == [hash_bucket("a", 5000), hash_bucket("b", 5000), hash_bucket("c", 5000)]
    assert levels[0].tolist() == [0, 0, 4, 1, 3]  # level + 1, 0 = padding
    assert bucket_of_hash64(np.array([0]), 10).tolist() == [0]


def test_head_feeds_have_contract_names_shapes_and_dtypes() -> None:
    n = 4
    feeds = build_head_feeds(
        rel_vec=np.zeros((n, 8)),
        rel_logits=np.zeros((n, 4)),
        query="Deck Over",
        user_id="u1",
        item_ids=["1", "2", "3", "4"],
        price_bucket=np.array([1, 2, 0, 12]),
        pop_bucket=np.zeros(n),
        qpref=None,
        upref=None,
        buckets=BUCKETS,
    )
    assert tuple(feeds) == HEAD_INPUT_NAMES
    assert feeds["ids"].shape == (n, 5) and feeds["ids"].dtype == np.int64
    assert feeds["ids"][:, 3].tolist() == [1, 2, 0, 10]  # out-of-range buckets are clipped
    assert feeds["rel_vec"].dtype == np.float32 and feeds["pref_dense"].shape == (n, 12)
    assert feeds["ids"][0, 2] == hash_bucket("deck over", BUCKETS["query"])


def test_serving_id_matrix_equals_the_training_one_row_for_row() -> None:
    items = [str(i) for i in range(50)]
    price, pop = np.arange(50) % 13 - 1, np.full(50, 3.7)  # out of range and non-integer values too
    training = id_matrix(["u9"] * 50, items, ["deck over"] * 50, price, pop, BUCKETS)
    serving = request_id_matrix("u9", items, "deck over", price, pop, BUCKETS)
    assert serving.dtype == np.int64
    np.testing.assert_array_equal(serving, training)


def make_manifest(**overrides) -> BundleManifest:
    spec = lambda name, dtype, *shape: TensorSpec(name=name, dtype=dtype, shape=shape)  # noqa: E731
    fields = dict(
        model_version="v1.test",
        created_at="2026-11-23T00:00:00Z",
        rel_dim=8,
        text=TextSpec(vocab_size=300, max_len=32, max_query_len=8, length_buckets=(16, 32)),
        encoder=GraphSpec(
            file="encoder.onnx",
            inputs=(spec("input_ids", "int64", "batch", "seq"),),
            outputs=(spec("rel_vec", "float32", "batch", 8), spec("rel_logits", "float32", "batch", 4)),
        ),
        head=GraphSpec(file="head.onnx", inputs=(), outputs=(spec("score", "float32", "batch"),)),
        prefs=PrefSpec(dense_columns=PREF_DENSE_COLUMNS),
        id_features=tuple(IdFeatureSpec(name=k, buckets=v) for k, v in BUCKETS.items()),
    )
    fields.update(overrides)
    return BundleManifest(**fields)


def test_manifest_round_trips_and_is_frozen(tmp_path: Path) -> None:
    m = make_manifest()
    m.write(tmp_path / "manifest.json")
    again = BundleManifest.read(tmp_path / "manifest.json")
    assert again == m and again.id_buckets("item") == 5000
    with pytest.raises(ValidationError):
        m.model_version = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"schema_version": 99}, "schema_version 99 is not supported"),
        ({"num_levels": 3}, "level_names for num_levels=3"),
        ({"model_version": "bad version!"}, "model_version"),
    ],
)
def test_manifest_refuses_impossible_values(overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_manifest(**overrides)


def write_bundle(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("encoder.onnx", "head.onnx", "tokenizer.json"):
        (root / name).write_bytes(name.encode() * 10)
    files = {name: sha256_file(root / name) for name in ("encoder.onnx", "head.onnx", "tokenizer.json")}
    make_manifest(files=files).write(root / "manifest.json")
    return root


def test_valid_bundle_opens(tmp_path: Path) -> None:
    bundle = open_bundle(write_bundle(tmp_path / "b"))
    assert bundle.encoder_path.name == "encoder.onnx" and bundle.manifest.model_version == "v1.test"


def test_corrupted_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "head.onnx").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="sha256 mismatch for head.onnx"):
        open_bundle(root)


def test_missing_file_and_missing_dir_are_refused(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match="missing file tokenizer.json"):
        open_bundle(root)
    with pytest.raises(BundleError, match="not found"):
        open_bundle(tmp_path / "nowhere")


def test_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    data = json.loads((root / "manifest.json").read_text())
    data["schema_version"] = 2
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="schema_version 2 is not supported"):
        open_bundle(root)
