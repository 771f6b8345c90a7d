"""``prectr data build`` through the real typer app: success writes every table, bad input fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data.cli import app
from data.schema import TABLES

runner = CliRunner()


def test_build_synthetic_small_writes_every_table_and_meta(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    result = runner.invoke(
        app, ["build", "--source", "synthetic", "--profile", "small", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    for name in TABLES:
        assert (out / f"{name}.parquet").is_file(), name
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["source"] == "synthetic" and meta["profile"] == "small"
    assert meta["test_day"] == meta["train_days"] + 1 and len(meta["fingerprint"]) == 64
    assert meta["rows"]["impressions"] == 10 * meta["rows"]["requests"]
    summary = runner.invoke(app, ["summary", str(out)])
    assert summary.exit_code == 0 and meta["fingerprint"] in summary.output


@pytest.mark.parametrize(("option", "value"), [("--profile", "huge"), ("--source", "kaggle")])
def test_unknown_profile_or_source_is_refused_with_the_choices(
    tmp_path: Path, option: str, value: str
) -> None:
    result = runner.invoke(app, ["build", option, value, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert value in result.output and ("small" in result.output or "synthetic" in result.output)
    assert not (tmp_path / "x").exists()


def test_missing_home_depot_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent" / "train.csv.gz"
    result = runner.invoke(
        app, ["build", "--source", "homedepot", "--hd-path", str(missing), "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert f"relevance CSV not found: {missing}" in result.output
    assert not (tmp_path / "x" / "meta.json").exists()


def test_hd_path_comes_from_the_environment(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text('"id","query","relevance"\n1,"saw",3\n')
    result = runner.invoke(
        app,
        ["build", "--source", "homedepot", "--out", str(tmp_path / "x")],
        env={"PRECTR_HD_PATH": str(wrong)},
    )
    assert result.exit_code == 2
    assert f"{wrong}: missing column(s) product_uid, product_title, search_term" in result.output


def test_summary_of_a_folder_without_meta_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["summary", str(tmp_path)])
    assert result.exit_code == 2 and "meta.json" in result.output
