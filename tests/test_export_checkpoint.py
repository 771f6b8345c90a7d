"""The trainer's checkpoint format round-trips into export; what cannot be exported is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch
from bundle_factory import short_tokenizer
from typer.testing import CliRunner

from export.checkpoint import CheckpointError, load_checkpoint
from export.cli import app
from export.probe_inputs import encoder_feeds, head_feeds
from export.tiny import TINY_BUCKETS, StudentHolder, tiny_modules
from features.text import TextEncoder
from model.checkpoint import save_checkpoint
from model.config import ModelSpec
from model.prectr import BaselineModel, PrectrModel
from model.student import Student

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, PrectrModel]:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = short_tokenizer()
    encoder, head = tiny_modules(vocab_size=200)
    text = TextEncoder(tok, 32, 12, (16, 24, 32))
    student = Student(
        encoder, text, {"text": {"max_len": 32, "max_query_len": 12, "length_buckets": [16, 24, 32]}}
    )
    spec = ModelSpec(name="v2-test", kind="prectr", encoder="student", cold_start=True, head=head.cfg)
    model = PrectrModel(spec, StudentHolder(encoder, student))
    for p in model.head.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    view = {"ctr_days": 2, "max_train_rows": 900, "max_test_requests": 30, "seed": 4}
    out = save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "v2", "fp-abc", {"auc": 0.7}, view)
    return out, model.eval()


def test_checkpoint_loads_with_identical_modules_and_contract(saved) -> None:
    root, model = saved
    loaded = load_checkpoint(root)
    assert loaded.data_fingerprint == "fp-abc" and loaded.metrics == {"auc": 0.7}
    assert (
        loaded.text.max_len == 32
        and loaded.text.max_query_len == 12
        and loaded.text.length_buckets == (16, 24, 32)
    )
    assert loaded.buckets == TINY_BUCKETS and loaded.history_len == 10
    rng = np.random.default_rng(0)
    tokens = [torch.from_numpy(v) for v in encoder_feeds(4, 24, 200, rng).values()]
    with torch.no_grad():
        a, b = loaded.encoder(*tokens), model.source.encoder(*tokens)
        feeds = head_feeds(a[0].numpy(), a[1].numpy(), TINY_BUCKETS, 10, rng)
        ha = loaded.head(*(torch.from_numpy(v) for v in feeds.values()))
        hb = model.head(*(torch.from_numpy(v) for v in feeds.values()))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(ha, hb, rtol=0, atol=0)


def test_baseline_checkpoint_is_refused_with_its_kind(tmp_path: Path) -> None:
    spec = ModelSpec(name="din", kind="din")
    out = save_checkpoint(BaselineModel(spec, 3), tmp_path / "din", "fp", {})
    with pytest.raises(CheckpointError, match=r"'din' \(kind=din, encoder=none\); only PRECTR models"):
        load_checkpoint(out)


def test_missing_checkpoint_is_a_clear_cli_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "no checkpoint at" in result.output and not (tmp_path / "b").exists()


def test_cli_exports_a_checkpoint_then_check_accepts_it(saved, tmp_path: Path) -> None:
    out = tmp_path / "v2-test-int8"
    runner = CliRunner()
    result = runner.invoke(app, ["--checkpoint", str(saved[0]), "--out", str(out), "--variant", "int8"])
    assert result.exit_code == 0, result.output
    assert "speedup_int8_vs_fp32" in result.output
    checked = runner.invoke(app, ["check", str(out)])
    assert checked.exit_code == 0 and "v2-test-int8 (int8)" in checked.output
    (out / "encoder.onnx").write_bytes(b"not onnx")
    refused = runner.invoke(app, ["check", str(out)])
    assert refused.exit_code == 1 and "sha256 mismatch for encoder.onnx" in refused.output


def test_export_re_measures_test_metrics_on_the_view_the_checkpoint_recorded(saved) -> None:
    from export.evaluate import test_view_spec

    loaded = load_checkpoint(saved[0])
    spec = test_view_spec(loaded.history_len, loaded.view)
    # the test-request sample depends on the seed and on the training-row sampling drawn before it
    assert (spec.max_test_requests, spec.seed, spec.ctr_days, spec.max_train_rows) == (30, 4, 2, 900)
    assert spec.history_len == loaded.history_len
    assert test_view_spec(10, None).max_test_requests is None  # no record: the whole test view
