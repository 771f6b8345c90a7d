"""End-to-end student training on a small simulated data build, the soft-label cache, and CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from data.build import build_dataset  # noqa: E402
from data.config import profile_config  # noqa: E402
from model.encoder_cli import encoder_app, teacher_app  # noqa: E402
from model.encoder_data import EncoderData  # noqa: E402
from model.encoder_eval import run_encoder_benchmark  # noqa: E402
from model.encoder_report import write_encoder_report  # noqa: E402
from model.soft_labels import SoftLabelError, write_soft_labels  # noqa: E402
from model.student import load_student  # noqa: E402
from model.student_train import DistillConfig, distill_student  # noqa: E402
from model.teacher_label import student_pairs  # noqa: E402

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("enc-data")
    cfg = profile_config("small", max_queries=600, synthetic_queries=600, n_requests=3000, n_users=800)
    build_dataset("synthetic", cfg, 0, out)
    return out


def _oracle_soft_labels(data: EncoderData, path: Path, max_pairs: int, hidden: bool = False) -> None:
    """A stand-in teacher that knows the simulator's levels, written through the public file contract."""
    pairs, source = student_pairs(data, max_pairs)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.5, (len(pairs), 4)).astype(np.float32)
    logits = 3.0 * np.eye(4, dtype=np.float32)[pairs.level] + noise
    states = rng.normal(size=(len(pairs), 384)).astype(np.float32) if hidden else None
    meta = {"data_fingerprint": data.fingerprint}
    write_soft_labels(path, pairs.query, pairs.item_id, logits, meta, source, hidden=states)


# a narrower student than the default keeps the whole module under a minute on one thread
SMALL = {"tokenizer_vocab": 2000, "d_model": 64, "n_layers": 2, "d_ff": 128, "max_valid_pairs": 600}


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("student")
    data = EncoderData(data_dir)
    _oracle_soft_labels(data, tmp / "soft.parquet", max_pairs=3000)
    cfg = DistillConfig(**SMALL, distill_epochs=3, sft_epochs=1, batch_size=64)
    return tmp / "student", distill_student(
        data, tmp / "soft.parquet", tmp / "student", cfg, show_progress=False
    )


def test_distillation_loss_falls_and_the_student_beats_the_majority_class(
    data_dir: Path, trained: tuple[Path, dict]
) -> None:
    student_dir, summary = trained
    losses = [h["loss"] for h in summary["distill_history"]]
    assert losses[-1] < 0.8 * losses[0]
    assert summary["valid_macro_f1"] > 0.3  # predicting the majority level everywhere scores ~0.18
    student = load_student(student_dir)
    assert student.model.num_parameters() == summary["parameters"]
    valid = EncoderData(data_dir).relevance_pairs(("valid",))
    _, logits = student.predict(valid.query[:5], valid.title[:5])
    assert logits.shape == (5, 4)


def test_encoder_eval_writes_a_report_row_per_model_with_sane_metrics(
    data_dir: Path, trained: tuple[Path, dict], tmp_path: Path
) -> None:
    result = run_encoder_benchmark(data_dir, trained[0], None, None, repeats=2, models=("student", "bm25"))
    md, js = write_encoder_report(result, tmp_path, "prectr encoder eval ...", trained[0], None)
    names = [m["name"] for m in result["models"]]
    assert names == ["student (distilled)", "BM25"]
    for row in result["models"]:
        assert (
            0.0 <= row["macro_f1"] <= 1.0 and 0.0 <= row["accuracy"] <= 1.0 and 0.0 < row["ndcg_at_10"] <= 1.0
        )
        assert row["ms_per_200"] > 0 and row["forward_ms_per_200"] > 0  # values, not speed: no timed asserts
    assert "| BM25 |" in md.read_text() and json.loads(js.read_text())["data"]["test_pairs"] > 0


def test_hidden_state_distillation_runs_when_the_teacher_states_are_stored(
    data_dir: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    data = EncoderData(data_dir)
    _oracle_soft_labels(data, tmp_path / "soft.parquet", max_pairs=300, hidden=True)
    cfg = DistillConfig(**SMALL, distill_epochs=1, sft_epochs=0, hidden_mse_weight=0.5)
    summary = distill_student(data, tmp_path / "soft.parquet", tmp_path / "student", cfg, show_progress=False)
    assert np.isfinite(summary["distill_history"][0]["loss"])
    no_states = tmp_path / "plain.parquet"
    _oracle_soft_labels(data, no_states, max_pairs=300)
    with pytest.raises(SoftLabelError, match="--with-hidden"):
        distill_student(data, no_states, tmp_path / "s2", cfg, show_progress=False)


def test_soft_labels_from_another_data_build_are_refused(data_dir: Path, tmp_path: Path) -> None:
    data = EncoderData(data_dir)
    write_soft_labels(
        tmp_path / "soft.parquet",
        np.array(["a"], dtype=object),
        np.array([1]),
        np.zeros((1, 4), np.float32),
        {"data_fingerprint": "0" * 64},
    )
    with pytest.raises(SoftLabelError, match="labelled on data 000000000000"):
        distill_student(data, tmp_path / "soft.parquet", tmp_path / "s", DistillConfig(), show_progress=False)


def test_student_pairs_put_labelled_pairs_first_and_hold_out_valid_and_test_queries(data_dir: Path) -> None:
    data = EncoderData(data_dir)
    pairs, source = student_pairs(data, max_pairs=None)
    assert set(data.split_of(pairs.query_id)) == {"train"}
    assert source[0] == "relevance" and "impression" in set(source)
    keys = set(zip(pairs.query_id.tolist(), pairs.item_id.tolist(), strict=True))
    assert len(keys) == len(pairs)  # each (query, item) once
    capped, _ = student_pairs(data, max_pairs=100)
    assert len(capped) == 100


def test_teacher_label_reuses_its_cached_file_for_the_same_data_and_teacher(
    data_dir: Path, tmp_path: Path
) -> None:
    from model.teacher import TeacherConfig, new_teacher, save_teacher
    from model.teacher_label import label_pairs

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, tokenizer = new_teacher(TeacherConfig())
    save_teacher(model, tokenizer, tmp_path / "teacher", extra={})
    data = EncoderData(data_dir)
    first = label_pairs(
        data, tmp_path / "teacher", tmp_path / "soft.parquet", max_pairs=40, show_progress=False
    )
    again = label_pairs(
        data, tmp_path / "teacher", tmp_path / "soft.parquet", max_pairs=40, show_progress=False
    )
    assert (first["cached"], again["cached"]) == (False, True)
    assert first["pairs"] == 40 and again["teacher_hash"] == first["teacher_hash"]
    other = label_pairs(
        data, tmp_path / "teacher", tmp_path / "soft.parquet", max_pairs=30, show_progress=False
    )
    assert other["cached"] is False and other["pairs"] == 30


def test_cli_reports_a_missing_data_dir_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = tmp_path / "nope"
    result = runner.invoke(
        encoder_app, ["distill", "--data", str(missing), "--soft-labels", "x", "--out", "y", "--threads", "1"]
    )
    assert result.exit_code == 2
    assert "data directory not found" in result.output
    result = runner.invoke(teacher_app, ["label", "--data", str(missing), "--teacher", "t", "--out", "o"])
    assert result.exit_code == 2


def test_same_seed_and_shared_tokenizer_reproduce_the_student_exactly(
    data_dir: Path, trained: tuple[Path, dict], tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    data = EncoderData(data_dir)
    _oracle_soft_labels(data, tmp_path / "soft.parquet", max_pairs=300)
    cfg = DistillConfig(
        **SMALL, distill_epochs=1, sft_epochs=1, tokenizer_file=str(trained[0] / "tokenizer.json")
    )
    runs = [
        distill_student(data, tmp_path / "soft.parquet", tmp_path / f"s{i}", cfg, show_progress=False)
        for i in range(2)
    ]
    assert runs[0]["distill_history"] == runs[1]["distill_history"]
    a, b = (load_student(tmp_path / f"s{i}").model.state_dict() for i in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
