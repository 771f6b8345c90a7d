"""Student checkpoints round-trip exactly and refuse another architecture with a message naming the fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from features.tokenizer import save_tokenizer, train_wordpiece  # noqa: E402
from model.encoder import CrossEncoder, EncoderConfig  # noqa: E402
from model.encoder_ckpt import (  # noqa: E402
    EncoderCheckpointError,
    load_encoder,
    load_state_into,
    read_encoder_config,
    save_encoder,
)
from model.student import load_student  # noqa: E402

pytestmark = pytest.mark.train
SMALL = {"d_model": 32, "n_layers": 1, "n_heads": 4, "d_ff": 64, "rel_dim": 16}


@pytest.fixture
def ckpt(tmp_path: Path) -> tuple[Path, CrossEncoder]:
    torch.set_num_threads(1)
    tok = train_wordpiece(["deck screws steel", "interior paint white", "brass coupling"] * 3, 100, 1)
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    torch.manual_seed(0)
    model = CrossEncoder(EncoderConfig(vocab_size=tok.get_vocab_size(), **SMALL)).eval()
    save_encoder(model, tmp_path, extra={"text": {"max_len": 64, "max_query_len": 16}})
    return tmp_path, model


def test_saved_encoder_reloads_with_identical_outputs_and_config(ckpt: tuple[Path, CrossEncoder]) -> None:
    path, model = ckpt
    loaded = load_encoder(path)
    assert loaded.config == model.cfg
    assert loaded.extra["text"]["max_len"] == 64
    ids = torch.randint(5, model.cfg.vocab_size, (2, 12))
    mask, types = torch.ones_like(ids), torch.zeros_like(ids)
    for a, b in zip(model(ids, mask, types), loaded.model(ids, mask, types), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_loading_under_another_config_names_the_differing_fields(ckpt: tuple[Path, CrossEncoder]) -> None:
    path, model = ckpt
    expected = EncoderConfig(vocab_size=model.cfg.vocab_size, **{**SMALL, "d_model": 64, "n_layers": 2})
    with pytest.raises(EncoderCheckpointError, match=r"d_model: checkpoint=32, expected=64.*n_layers"):
        load_encoder(path, expected=expected)
    with pytest.raises(EncoderCheckpointError, match="another configuration"):
        load_state_into(CrossEncoder(expected), path)


def test_dropout_difference_is_not_a_config_mismatch(ckpt: tuple[Path, CrossEncoder]) -> None:
    path, model = ckpt
    target = CrossEncoder(EncoderConfig(vocab_size=model.cfg.vocab_size, **SMALL, dropout=0.0))
    load_state_into(target, path)
    torch.testing.assert_close(target.rsl_head.weight, model.rsl_head.weight)


def test_missing_checkpoint_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(EncoderCheckpointError, match="prectr encoder distill"):
        load_encoder(tmp_path)


def test_checkpoint_without_its_tokenizer_is_refused(ckpt: tuple[Path, CrossEncoder]) -> None:
    path, _ = ckpt
    (path / "tokenizer.json").unlink()
    with pytest.raises(EncoderCheckpointError, match="no tokenizer file"):
        load_encoder(path)


def test_weights_that_do_not_fit_the_stored_config_are_refused(ckpt: tuple[Path, CrossEncoder]) -> None:
    path, model = ckpt
    other = CrossEncoder(EncoderConfig(vocab_size=model.cfg.vocab_size, **{**SMALL, "rel_dim": 8}))
    save_encoder(other, path)
    # hand-forge a checkpoint whose metadata claims rel_dim=16 but whose tensors have rel_dim=8
    tensors = load_file(str(path / "encoder.safetensors"))
    with safe_open(str(path / "encoder.safetensors"), framework="pt") as fh:
        meta = dict(fh.metadata())
    meta["config"] = meta["config"].replace('"rel_dim": 8', '"rel_dim": 16')
    save_file(tensors, str(path / "encoder.safetensors"), metadata=meta)
    assert read_encoder_config(path).rel_dim == 16
    with pytest.raises(EncoderCheckpointError, match="do not fit its stored config"):
        load_encoder(path)


def test_load_student_tokenizes_like_serving(ckpt: tuple[Path, CrossEncoder]) -> None:
    path, _ = ckpt
    student = load_student(path)
    rel_vec, logits = student.predict(
        np.array(["Deck  Screws"], dtype=object), np.array(["deck screws steel"])
    )
    assert rel_vec.shape == (1, 16) and logits.shape == (1, 4)
    tokens = student.tokenize(np.array(["deck screws"], dtype=object), np.array(["deck screws steel"]))
    assert tokens.input_ids[0, 0] == 2  # [CLS]
