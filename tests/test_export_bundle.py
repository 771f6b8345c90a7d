"""A written bundle opens as the service opens it; a corrupt or mismatched bundle is refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch
from bundle_factory import short_tokenizer

from export.bundle_writer import export_bundle
from export.checkpoint import from_modules
from export.onnx_export import ExportError, export_module
from export.tiny import tiny_modules
from features.bundle import BundleError, open_bundle
from features.graph_check import check_bundle_graphs
from features.manifest import SCHEMA_VERSION
from features.tokenizer import save_tokenizer

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok_path = save_tokenizer(
        short_tokenizer(),
        tmp_path_factory.mktemp("tok") / "tokenizer.json",
    )
    encoder, head = tiny_modules(vocab_size=200)
    return from_modules(encoder, head, tok_path, data_fingerprint="fp-test", metrics={"test_auc": 0.61})


@pytest.fixture(scope="module")
def bundle_dir(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "tiny-test"
    export_bundle(model, out, measure_speed=False)
    return out


def _copy(bundle_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / bundle_dir.name
    shutil.copytree(bundle_dir, dst)
    return dst


def _edit_manifest(root: Path, edit) -> None:
    path = root / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_written_bundle_opens_and_records_contract_and_metrics(bundle_dir: Path) -> None:
    bundle = open_bundle(bundle_dir)
    check_bundle_graphs(bundle)
    m = bundle.manifest
    assert m.model_version == "tiny-test" and m.variant == "fp32" and m.data_fingerprint == "fp-test"
    assert sorted(m.files) == ["encoder.onnx", "head.onnx", "tokenizer.json"]
    assert m.encoder.inputs[0].shape == ("batch", "seq") and m.head.outputs[-1].shape == ("batch",)
    assert m.text.length_buckets[-1] == m.text.max_len
    assert m.metrics["test_auc"] == pytest.approx(0.61)
    assert m.metrics["parity_fp32_head_max_abs_diff_prob"] <= 1e-4
    assert [f.name for f in m.id_features] == ["user", "item", "query", "price_bucket", "pop_bucket"]


def test_tampered_graph_is_refused_by_sha256(bundle_dir: Path, tmp_path: Path) -> None:
    root = _copy(bundle_dir, tmp_path)
    with open(root / "head.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match=r"sha256 mismatch for head\.onnx"):
        open_bundle(root)


def test_missing_tokenizer_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    root = _copy(bundle_dir, tmp_path)
    (root / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"missing file tokenizer\.json"):
        open_bundle(root)


def test_unknown_schema_version_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    root = _copy(bundle_dir, tmp_path)
    _edit_manifest(root, lambda d: d.update(schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(BundleError, match="schema_version"):
        open_bundle(root)


def test_manifest_input_not_in_the_graph_is_refused_by_name(bundle_dir: Path, tmp_path: Path) -> None:
    root = _copy(bundle_dir, tmp_path)
    _edit_manifest(root, lambda d: d["head"]["inputs"][4].update(name="history_items"))
    with pytest.raises(
        BundleError, match=r"head\.onnx: inputs \['history_items'\] .* missing from the graph"
    ):
        check_bundle_graphs(open_bundle(root))


def test_manifest_static_size_different_from_the_graph_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    root = _copy(bundle_dir, tmp_path)

    def edit(d):
        d["head"]["inputs"][4]["shape"] = ["batch", 7]
        d["head"]["inputs"][5]["shape"] = ["batch", 7]
        d["prefs"]["history_len"] = 7

    _edit_manifest(root, edit)
    with pytest.raises(BundleError, match=r"'hist_items' axis 1: size 10 in the graph, 7 in the manifest"):
        check_bundle_graphs(open_bundle(root))


def test_graph_with_a_baked_in_batch_size_is_refused(model, bundle_dir: Path, tmp_path: Path) -> None:
    """A graph exported without dynamic axes (fixed example shape) fails the named-axis check."""
    root = _copy(bundle_dir, tmp_path)
    spec = open_bundle(root).manifest.encoder
    fixed = spec.model_copy(
        update={
            "inputs": tuple(t.model_copy(update={"shape": (2, 16)}) for t in spec.inputs),
            "outputs": tuple(t.model_copy(update={"shape": (2, t.shape[1])}) for t in spec.outputs),
        }
    )
    tokens = [torch.zeros((2, 16), dtype=torch.long)] * 3
    export_module(model.encoder, tokens, fixed, root / "encoder.onnx")
    with pytest.raises(
        BundleError, match=r"'input_ids' axis 0: dynamic axis 'batch' in the manifest, fixed to 2"
    ):
        check_bundle_graphs(open_bundle(root, verify_hashes=False))


def test_mismatched_rel_dim_between_manifest_fields_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    root = _copy(bundle_dir, tmp_path)
    _edit_manifest(root, lambda d: d.update(rel_dim=d["rel_dim"] + 1))
    with pytest.raises(BundleError, match=r"manifest: encoder output 'rel_vec'"):
        check_bundle_graphs(open_bundle(root))


def test_export_refuses_to_overwrite_without_force(model, bundle_dir: Path) -> None:
    with pytest.raises(ExportError, match="already exists; pass --force"):
        export_bundle(model, bundle_dir, measure_speed=False)


class _DriftsInExport(torch.nn.Module):
    """Behaves differently inside the exporter: the exported graph cannot match eager PyTorch."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.cfg = inner, inner.cfg

    def forward(self, *args):
        outs = self.inner(*args)
        if torch.onnx.is_in_onnx_export():
            return (outs[0] * 1.01, *outs[1:])
        return outs


def test_parity_failure_fails_the_export_and_writes_nothing(model, tmp_path: Path) -> None:
    from dataclasses import replace

    broken = replace(model, head=_DriftsInExport(model.head))
    out = tmp_path / "broken"
    with pytest.raises(ExportError, match=r"head p_ctr_given_level at shape \(1, \d+\)"):
        export_bundle(broken, out, measure_speed=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_tokenizer_larger_than_the_embedding_is_refused(model, tmp_path: Path) -> None:
    from dataclasses import replace

    small = replace(model, text=model.text.model_copy(update={"vocab_size": 16}))
    with pytest.raises(ExportError, match="embeds only 16"):
        export_bundle(small, tmp_path / "x", measure_speed=False)
    assert np.all([not p.name.startswith(".x") for p in tmp_path.iterdir()])
