"""What each variant's parity bound means: fp32 bounds every element, lossy variants the mean deviation."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from export.parity import TOLERANCES, compare_outputs, failures

pytestmark = pytest.mark.train


def _levels(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, 4)).astype(np.float32)


def test_fp32_refuses_a_single_element_off_by_more_than_1e_4() -> None:
    ref = {"rel_logits": _levels(64)}
    got = {"rel_logits": ref["rel_logits"].copy()}
    got["rel_logits"][7, 2] += 0.01
    checks = compare_outputs("encoder", (64, 16), ref, got, TOLERANCES["fp32"])
    assert any("p_rel_level" in f and "max abs diff" in f for f in failures(checks))


def test_int8_tolerates_one_outlier_row_that_fp32_would_refuse() -> None:
    """Per-tensor dynamic quantisation moves a few near-boundary rows a lot; the mean stays small."""
    ref = {"rel_logits": _levels(256)}
    got = {"rel_logits": ref["rel_logits"] + 0.01}
    got["rel_logits"][3] = ref["rel_logits"][3][::-1]  # one row's level distribution reversed
    checks = compare_outputs("encoder", (256, 16), ref, got, TOLERANCES["int8"])
    assert not failures(checks)
    p_rel = next(c for c in checks if c.output == "p_rel_level")
    assert p_rel.max_abs_diff > 0.15 > p_rel.measured  # the max is still recorded
    assert failures(compare_outputs("encoder", (256, 16), ref, got, TOLERANCES["fp32"]))


def test_int8_refuses_a_broken_conversion_that_moves_every_row() -> None:
    ref = {"rel_logits": _levels(256)}
    got = {"rel_logits": _levels(256, seed=1)}  # unrelated outputs: what a wrong scale or input looks like
    failed = failures(compare_outputs("encoder", (256, 16), ref, got, TOLERANCES["int8"]))
    assert any(f.startswith("encoder p_rel_level") and "mean abs diff" in f for f in failed)


def test_a_shape_mismatch_fails_under_every_tolerance() -> None:
    ref = {"rel_logits": _levels(8)}
    got = {"rel_logits": _levels(8)[:, :3]}
    for tolerance in TOLERANCES.values():
        assert failures(compare_outputs("encoder", (8, 16), ref, got, tolerance))
