"""Contracts of the V2 losses: synthetic hard negatives, the pairwise debias loss, L_sc, L_bal."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from model.debias import anchor_levels, synthesize_hard_negatives  # noqa: E402
from model.losses import load_balance, pairwise_debias, semantic_consistency  # noqa: E402

pytestmark = pytest.mark.train


def test_every_synthetic_negative_is_strictly_below_its_anchor() -> None:
    g = torch.Generator().manual_seed(0)
    rel_vec = torch.randn(512, 8, generator=g)
    level = torch.randint(0, 4, (512,), generator=g)
    classifier = torch.nn.Linear(8, 4)
    torch.nn.init.normal_(classifier.weight, std=3.0)  # the frozen head often says "level 3" after noise
    synth = synthesize_hard_negatives(rel_vec, level, classifier, eta=1.0, min_level=1, generator=g)
    assert synth.anchor.numel() == int((level >= 1).sum())
    assert torch.all(synth.level < level[synth.anchor])
    assert torch.all(synth.level_gap >= 1)
    assert torch.all(synth.level >= 0)
    assert not torch.allclose(synth.rel_vec, rel_vec[synth.anchor])


def test_synthetic_negatives_only_come_from_high_level_anchors() -> None:
    level = torch.tensor([0, 1, 2, 3, 3, 1])
    synth = synthesize_hard_negatives(torch.randn(6, 4), level, torch.nn.Linear(4, 4), min_level=2)
    assert synth.anchor.tolist() == [2, 3, 4]


def test_anchor_level_prefers_the_human_label() -> None:
    frozen = torch.tensor([[0.0, 0.0, 5.0, 0.0], [9.0, 0.0, 0.0, 0.0]])
    assert anchor_levels(torch.tensor([-1, 3]), frozen).tolist() == [2, 3]


def test_pairwise_loss_is_zero_beyond_the_margin() -> None:
    s_real = torch.tensor([5.0, 3.5, 2.6], requires_grad=True)
    loss = pairwise_debias(
        s_real, torch.tensor([0.0, 1.0, 0.5]), torch.tensor([1, 2, 3]), margin=2.0, keep=1.0
    )
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    loss.backward()
    assert torch.all(s_real.grad == 0)


def test_pairwise_loss_is_positive_inside_the_margin_and_grows_when_the_twin_wins() -> None:
    gap = torch.ones(1)
    inside = pairwise_debias(torch.tensor([1.0]), torch.tensor([0.0]), gap, margin=2.0, keep=1.0)
    reversed_ = pairwise_debias(torch.tensor([0.0]), torch.tensor([1.0]), gap, margin=2.0, keep=1.0)
    assert 0 < inside.item() < reversed_.item()
    assert inside.item() == pytest.approx(math.log1p(math.exp(-1)) - math.log1p(math.exp(-2)), rel=1e-5)


def test_dynamic_truncation_drops_the_easiest_pairs() -> None:
    s_synth = torch.zeros(4)
    s_real = torch.tensor([-3.0, 0.0, 1.9, 1.95])  # hardest first
    gap = torch.ones(4)
    kept_half = pairwise_debias(s_real, s_synth, gap, margin=2.0, keep=0.5)
    hardest_two = pairwise_debias(s_real[:2], s_synth[:2], gap[:2], margin=2.0, keep=1.0)
    assert kept_half.item() == pytest.approx(hardest_two.item())


def test_semantic_consistency_uses_labels_where_known_and_kl_elsewhere() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    same_as_frozen = semantic_consistency(logits, torch.tensor([-1, -1]), logits.clone())
    assert same_as_frozen.item() == pytest.approx(0.0, abs=1e-6)
    labelled = semantic_consistency(logits, torch.tensor([0, -1]), logits.clone())
    ce = torch.nn.functional.cross_entropy(logits[:1], torch.tensor([0]))
    assert labelled.item() == pytest.approx(ce.item() / 2, rel=1e-5)


def test_load_balance_is_zero_for_uniform_usage_and_positive_when_one_expert_dominates() -> None:
    assert load_balance(torch.full((8, 3), 1 / 3)).item() == pytest.approx(0.0, abs=1e-6)
    assert load_balance(torch.tensor([[1.0, 0.0, 0.0]] * 8)).item() == pytest.approx(2.0)


def test_anchor_cap_keeps_a_random_subset_of_high_level_rows() -> None:
    level = torch.tensor([3] * 50 + [0] * 50)
    g = torch.Generator().manual_seed(0)
    synth = synthesize_hard_negatives(
        torch.randn(100, 4), level, torch.nn.Linear(4, 4), generator=g, max_anchors=8
    )
    assert synth.anchor.numel() == 8 and torch.all(level[synth.anchor] == 3)
