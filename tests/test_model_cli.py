"""The model commands answer bad input with one clear line and exit code 2, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

pytestmark = pytest.mark.train
runner = CliRunner()


def test_bench_model_with_missing_data_dir_names_the_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data"
    result = runner.invoke(app, ["bench-model", "--data", str(missing), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "data directory not found" in result.output and "no-such-data" in result.output


def test_bench_model_with_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["bench-model", "--data", str(tmp_path), "--profile", "huge", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "unknown profile 'huge'" in result.output and "small" in result.output


def test_v2_rows_without_a_student_say_how_to_get_one(tmp_path: Path) -> None:
    from model_inputs import build_tiny_data

    data = build_tiny_data(tmp_path / "data")
    result = runner.invoke(
        app, ["bench-model", "--data", str(data), "--row", "PRECTR-V2", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "--student" in result.output


def test_train_writes_a_checkpoint_with_its_resolved_config(tmp_path: Path) -> None:
    from model_inputs import build_tiny_data

    from model.checkpoint import read_checkpoint_info

    data = build_tiny_data(tmp_path / "data")
    out = tmp_path / "ckpt"
    result = runner.invoke(
        app, ["train", "--data", str(data), "--model", "DIN", "--out", str(out), "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    info = read_checkpoint_info(out / "din-s0")
    assert info.spec.name == "DIN" and info.spec.kind == "din"
    assert 0.5 < info.metrics["auc"] < 1.0
