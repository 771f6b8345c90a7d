"""Exportability: names, dynamic axes and PyTorch-vs-ORT parity at shapes other than the export example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch

from export.graph_specs import encoder_spec, head_spec
from export.onnx_export import ExportError, export_module
from export.parity import TOLERANCES, failures, graph_parity, worst
from export.probe_inputs import encoder_feeds, head_feeds
from export.variants import cpu_session, make_variant
from features.graph_check import graph_problems
from features.head_inputs import ENCODER_OUTPUT_NAMES, HEAD_OUTPUT_NAMES
from model.config import HeadConfig
from model.encoder import CrossEncoder, EncoderConfig
from model.head import PrectrHead

pytestmark = pytest.mark.train

VOCAB, REL_DIM, K, HIST = 300, 16, 4, 6
BUCKETS = {"user": 97, "item": 211, "query": 53, "price_bucket": 11, "pop_bucket": 11}
EXAMPLE_SHAPE = (2, 16)


@pytest.fixture(scope="module")
def modules() -> tuple[CrossEncoder, PrectrHead]:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    enc = CrossEncoder(
        EncoderConfig(vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4, d_ff=64, rel_dim=REL_DIM)
    )
    head = PrectrHead(
        HeadConfig(rel_dim=REL_DIM, history_len=HIST, buckets=BUCKETS, emb_dim=8, hidden=(32, 16))
    )
    for p in head.parameters():  # spread weights so outputs are far from the initial near-constant values
        p.data.add_(torch.randn_like(p) * 0.2)
    return enc.eval(), head.eval()


@pytest.fixture(scope="module")
def graphs(modules, tmp_path_factory) -> dict[str, Path]:
    enc, head = modules
    out = tmp_path_factory.mktemp("graphs")
    rng = np.random.default_rng(0)
    ex = encoder_feeds(*EXAMPLE_SHAPE, VOCAB, rng)
    with torch.no_grad():
        rel_vec, rel_logits = enc(*(torch.from_numpy(v) for v in ex.values()))
    hx = head_feeds(rel_vec.numpy(), rel_logits.numpy(), BUCKETS, HIST, rng)
    return {
        "encoder": export_module(
            enc, [torch.from_numpy(v) for v in ex.values()], encoder_spec(REL_DIM, K), out / "e.onnx"
        ),
        "head": export_module(
            head, [torch.from_numpy(v) for v in hx.values()], head_spec(REL_DIM, K, HIST), out / "h.onnx"
        ),
    }


def _encoder_probes(rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    return [encoder_feeds(b, s, VOCAB, rng) for b, s in ((1, 24), (5, 64), (37, 29))]


def _encoder_parity(module, session, seed: int, variant: str):  # type: ignore[no-untyped-def]
    """The encoder graph vs PyTorch on probes of unseen batch sizes and lengths, at the variant's tolerance."""
    probes = _encoder_probes(np.random.default_rng(seed))
    return graph_parity("encoder", module, session, probes, ENCODER_OUTPUT_NAMES, TOLERANCES[variant])


def test_exported_graphs_declare_the_manifest_signature(graphs) -> None:
    assert graph_problems(cpu_session(graphs["encoder"]), encoder_spec(REL_DIM, K)) == []
    assert graph_problems(cpu_session(graphs["head"]), head_spec(REL_DIM, K, HIST)) == []


def test_encoder_parity_at_unseen_batch_sizes_and_lengths(modules, graphs) -> None:
    checks = _encoder_parity(modules[0], cpu_session(graphs["encoder"]), 1, "fp32")
    assert {c.shape for c in checks} == {(1, 24), (5, 64), (37, 29)}
    assert failures(checks) == []
    assert worst(checks, lambda c: c.output == "p_rel_level") <= 1e-4


def test_head_parity_with_empty_and_full_histories(modules, graphs) -> None:
    enc, head = modules
    rng = np.random.default_rng(2)
    feeds = []
    for batch in (1, 7, 200):
        tokens = encoder_feeds(batch, 32, VOCAB, rng)
        with torch.no_grad():
            rel_vec, rel_logits = enc(*(torch.from_numpy(v) for v in tokens.values()))
        feeds.append(head_feeds(rel_vec.numpy(), rel_logits.numpy(), BUCKETS, HIST, rng))
    checks = graph_parity(
        "head", head, cpu_session(graphs["head"]), feeds, HEAD_OUTPUT_NAMES, TOLERANCES["fp32"]
    )
    assert failures(checks) == []
    assert worst(checks, lambda c: c.output == "score") <= 1e-4


def test_same_pair_scores_the_same_at_any_padded_length(graphs) -> None:
    session = cpu_session(graphs["encoder"])
    short = encoder_feeds(3, 16, VOCAB, np.random.default_rng(3))
    padded = {k: np.pad(v, ((0, 0), (0, 48))) for k, v in short.items()}
    a, b = session.run(None, short)[1], session.run(None, padded)[1]
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_variants_keep_the_signature_and_stay_within_their_tolerance(
    variant, modules, graphs, tmp_path
) -> None:
    path = make_variant("encoder", graphs["encoder"], tmp_path / f"e_{variant}.onnx", variant)  # type: ignore[arg-type]
    session = cpu_session(path)
    assert graph_problems(session, encoder_spec(REL_DIM, K)) == []
    checks = _encoder_parity(modules[0], session, 4, variant)
    assert failures(checks) == []


def test_dynamo_exporter_produces_an_equivalent_graph(modules, tmp_path) -> None:
    enc = modules[0]
    ex = encoder_feeds(*EXAMPLE_SHAPE, VOCAB, np.random.default_rng(5))
    spec = encoder_spec(REL_DIM, K)
    path = export_module(
        enc, [torch.from_numpy(v) for v in ex.values()], spec, tmp_path / "d.onnx", exporter="dynamo"
    )
    session = cpu_session(path)
    assert graph_problems(session, spec) == []
    checks = _encoder_parity(enc, session, 6, "fp32")
    assert failures(checks) == []


def test_export_refuses_an_opset_below_17(modules, tmp_path) -> None:
    ex = encoder_feeds(*EXAMPLE_SHAPE, VOCAB, np.random.default_rng(7))
    with pytest.raises(ExportError, match="opset 13 is below"):
        export_module(
            modules[0],
            [torch.from_numpy(v) for v in ex.values()],
            encoder_spec(REL_DIM, K),
            tmp_path / "x.onnx",
            opset=13,
        )


@pytest.mark.gpu
def test_fp16_encoder_on_cuda_stays_within_tolerance(modules, graphs, tmp_path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDA execution provider (install onnxruntime-gpu on a GPU machine)")
    path = make_variant("encoder", graphs["encoder"], tmp_path / "e16.onnx", "fp16")
    session = ort.InferenceSession(str(path), providers=["CUDAExecutionProvider"])
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    checks = _encoder_parity(modules[0], session, 8, "fp16")
    assert failures(checks) == []
