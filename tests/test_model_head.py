"""Contracts of the PRECTR head: shapes, fusion, monotone CTR heads, the cold-start gate."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_inputs import SMALL, head_inputs  # noqa: E402

from features.head_inputs import HEAD_OUTPUT_NAMES  # noqa: E402
from features.prefs import PREF_DENSE_COLUMNS, QueryPref, UserPref, features_for_request  # noqa: E402
from model.config import HeadConfig  # noqa: E402
from model.head import PrectrHead  # noqa: E402
from model.incentive import PreferenceVector, preference_shape  # noqa: E402

pytestmark = pytest.mark.train


def test_head_outputs_have_the_head_onnx_shapes() -> None:
    head = PrectrHead(SMALL).eval()
    outs = head(**head_inputs(7))
    assert len(outs) == len(HEAD_OUTPUT_NAMES)
    p_ctr, p_level, incentive, score = outs
    assert p_ctr.shape == (7, 4) and p_level.shape == (7, 4)
    assert incentive.shape == (7,) and score.shape == (7,)
    assert torch.all((score > 0) & (score < 1))


def test_fused_probability_equals_explicit_sum_over_levels() -> None:
    head = PrectrHead(HeadConfig(**{**SMALL.__dict__, "use_incentive": False})).eval()
    p_ctr, p_level, incentive, score = head(**head_inputs(64))
    explicit = (p_ctr * p_level).sum(dim=1)
    assert torch.allclose(score, explicit, atol=1e-6)
    assert torch.all(incentive == 0)


def test_incentive_shifts_the_fused_logit_by_tau() -> None:
    head = PrectrHead(SMALL).eval()
    out = head.components(**head_inputs(32))
    fused = (out.p_ctr_given_level * out.p_level).sum(dim=1)
    expected = torch.sigmoid(torch.logit(fused.double()) + out.incentive.double())
    assert torch.allclose(out.score.double(), expected, atol=1e-5)


def test_ctr_heads_are_monotone_in_the_level() -> None:
    head = PrectrHead(SMALL).eval()
    for seed in range(3):
        for p in head.parameters():  # random weights, including large negative deltas
            torch.nn.init.normal_(p, std=2.0, generator=torch.Generator().manual_seed(seed))
        p_ctr = head(**head_inputs(128, seed=seed))[0]
        assert torch.all(p_ctr[:, 1:] >= p_ctr[:, :-1])


def test_new_user_gets_query_level_preference_with_full_weight() -> None:
    qpref = QueryPref(exposures=(50, 40, 80, 90), clicks=(1, 2, 12, 25), users=30)
    dense = torch.from_numpy(features_for_request(qpref, None, 1))  # no user record at all
    assert dense[0, PREF_DENSE_COLUMNS.index("u_is_new")] == 1
    pref, alpha = PreferenceVector(blend=True)(dense)
    assert alpha.item() == 0.0
    expected = preference_shape(dense[:, [PREF_DENSE_COLUMNS.index(f"q_rate_l{k}") for k in range(4)]])
    assert torch.allclose(pref, expected)


def test_active_user_blends_in_personal_preference_and_v1_ignores_the_query() -> None:
    qpref = QueryPref(exposures=(50, 40, 80, 90), clicks=(1, 2, 12, 25), users=30)
    upref = UserPref(exposures=(5, 5, 30, 30), clicks=(3, 3, 3, 3), activity=12)
    dense = torch.from_numpy(features_for_request(qpref, upref, 1))
    _, alpha = PreferenceVector(blend=True)(dense)
    assert 0.0 < alpha.item() < 1.0
    v1, _ = PreferenceVector(blend=False)(dense)
    personal = preference_shape(dense[:, [PREF_DENSE_COLUMNS.index(f"u_rate_l{k}") for k in range(4)]])
    assert torch.allclose(v1, personal)


def test_gumbel_gate_is_deterministic_in_eval_and_noisy_in_training() -> None:
    head = PrectrHead(SMALL)
    x = head_inputs(16)
    head.eval()
    np.testing.assert_array_equal(head(**x)[3].detach().numpy(), head(**x)[3].detach().numpy())
    head.train()
    torch.manual_seed(1)
    a = head.components(**x).gate
    b = head.components(**x).gate
    assert not torch.allclose(a, b)


def test_without_cross_user_mining_the_ctr_tower_ignores_query_level_columns() -> None:
    from dataclasses import replace

    from model.incentive import QUERY_PREF_COLS

    torch.manual_seed(0)
    head = PrectrHead(replace(SMALL, query_prefs=False, cold_start_blend=False)).eval()
    x = head_inputs(8)
    other = dict(x, pref_dense=x["pref_dense"].clone())
    other["pref_dense"][:, QUERY_PREF_COLS] += 0.3  # a different query-level preference
    assert torch.allclose(head(**x)[3], head(**other)[3])
    mined = PrectrHead(replace(SMALL, query_prefs=True, cold_start_blend=False)).eval()
    assert not torch.allclose(mined(**x)[3], mined(**other)[3])
