"""Contract of the student cross-encoder: shapes, size, padding invariance, losses."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from features.text import TextEncoder  # noqa: E402
from features.tokenizer import train_wordpiece  # noqa: E402
from model.distill import balanced_class_weights, distillation_loss, hidden_mse_loss  # noqa: E402
from model.encoder import CrossEncoder, EncoderConfig, exact_match  # noqa: E402

pytestmark = pytest.mark.train

CORPUS = [
    "simpson strong-tie 10 in. steel deck screws",
    "behr premium plus 1-gal. satin enamel interior paint",
    "sharkbite 1/2 in. push-to-connect brass coupling",
    "deck screws",
    "interior paint white",
    "copper pipe fitting 1/2 in.",
] * 5


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    return TextEncoder(train_wordpiece(CORPUS, vocab_size=200, min_frequency=1))


def _model(vocab: int = 200, **kw: int) -> CrossEncoder:
    torch.manual_seed(0)
    return CrossEncoder(EncoderConfig(vocab_size=vocab, **kw)).eval()


def test_forward_returns_rel_vec_and_k_logits_per_pair(text_encoder: TextEncoder) -> None:
    enc = text_encoder.encode("deck screws", ["steel deck screws", "interior paint", "brass coupling"])
    rel_vec, rel_logits = _model()(
        *(torch.from_numpy(a) for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids))
    )
    assert rel_vec.shape == (3, 64)
    assert rel_logits.shape == (3, 4)
    assert torch.isfinite(rel_logits).all()


def test_default_student_has_about_two_million_parameters() -> None:
    n = CrossEncoder(EncoderConfig(vocab_size=8000)).num_parameters()
    assert 1.4e6 < n < 2.5e6


def test_padding_to_64_gives_the_same_output_as_padding_to_16(text_encoder: TextEncoder) -> None:
    enc = text_encoder.encode("deck screws", ["simpson strong-tie 10 in. steel deck screws"])
    assert enc.input_ids.shape[1] == 16

    def padded(a: np.ndarray, width: int) -> torch.Tensor:
        out = np.zeros((a.shape[0], width), dtype=np.int64)
        out[:, : a.shape[1]] = a
        return torch.from_numpy(out)

    model = _model()
    short = model(*(padded(a, 16) for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids)))
    long = model(*(padded(a, 64) for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids)))
    torch.testing.assert_close(long[0], short[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(long[1], short[1], atol=1e-5, rtol=0)


def test_a_pair_scores_the_same_alone_or_batched_with_longer_pairs(text_encoder: TextEncoder) -> None:
    model = _model()
    alone = text_encoder.encode("paint", ["interior paint"])
    batch = text_encoder.encode("paint", ["interior paint", " ".join(CORPUS[:4])])

    def run(e):
        return model(*(torch.from_numpy(a) for a in (e.input_ids, e.attention_mask, e.token_type_ids)))

    torch.testing.assert_close(run(batch)[0][:1], run(alone)[0], atol=1e-5, rtol=0)


def test_exact_match_flags_only_word_pieces_shared_across_segments() -> None:
    # [CLS] a b [SEP] | b c a c [SEP] [PAD]: "c" repeats inside the title only, [SEP] is in both segments
    ids = torch.tensor([[2, 10, 11, 3, 11, 12, 10, 12, 3, 0]])
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 1, 0]])
    mask = (ids != 0).long()
    assert exact_match(ids, mask, types).tolist() == [[0, 1, 1, 0, 1, 0, 1, 0, 0, 0]]


def test_sequence_longer_than_max_len_is_refused_with_its_length() -> None:
    ids = torch.ones((1, 65), dtype=torch.long)
    with pytest.raises(ValueError, match="sequence length 65 exceeds"):
        _model()(ids, torch.ones_like(ids), torch.zeros_like(ids))


def test_config_refuses_heads_that_do_not_divide_d_model() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        EncoderConfig(vocab_size=100, d_model=130, n_heads=4)


def test_distillation_loss_is_zero_when_student_equals_teacher() -> None:
    logits = torch.randn(8, 4)
    assert distillation_loss(logits.clone(), logits, temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(torch.zeros(8, 4), logits, temperature=2.0).item() > 1e-3


def test_distillation_loss_gradient_pulls_student_toward_teacher() -> None:
    teacher = torch.tensor([[4.0, 0.0, 0.0, 0.0]])
    student = torch.zeros(1, 4, requires_grad=True)
    distillation_loss(student, teacher, temperature=2.0).backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 1]  # descent raises the teacher's top level


def test_hidden_mse_is_zero_for_matching_projection() -> None:
    proj = torch.nn.Identity()
    h = torch.randn(5, 16)
    assert hidden_mse_loss(h, h.clone(), proj).item() == 0.0


def test_balanced_class_weights_upweight_the_rare_level() -> None:
    w = balanced_class_weights(np.array([0, 0, 0, 1, 2, 2, 3]), 4)
    assert w[1] > w[0]
    assert w.mean().item() == pytest.approx(1.0)
