"""The real ONNX Runtime path on a tiny real bundle: parity with a direct ORT run, and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from bundle_factory import build_tiny_bundle
from service_fakes import FakeStore, running

from features.bundle import BundleError
from features.head_inputs import build_head_feeds
from features.prefs import QueryPref, Smoothing, UserPref
from features.text import TextEncoder
from service.app import create_app
from service.ort_scorer import OrtGraph, OrtScorer, choose_providers, installed, load_cuda_libraries
from service.settings import OnnxSettings, Settings

TOL = 1e-5
TITLES = [
    "cordless drill",
    "white interior paint gallon satin finish with a very long description of the can",
    "copper pipe fitting 1/2 in elbow",
    "led light bulb 60w soft white dimmable four pack for the kitchen",
    "garden hose",
    "stainless steel kitchen sink faucet with pull down sprayer and soap dispenser",
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny-1")


def _direct(
    bundle: Path,
    query: str,
    user: str,
    items: list[str],
    titles: list[str],
    price: list[int],
    qpref: QueryPref | None,
    upref: UserPref | None,
) -> dict[str, np.ndarray]:
    """What the service must return, computed with plain onnxruntime and the features/ contract."""
    from features.manifest import BundleManifest

    m = BundleManifest.read(bundle / "manifest.json")
    text = TextEncoder(bundle / "tokenizer.json", m.text.max_len, m.text.max_query_len, m.text.length_buckets)
    enc = ort.InferenceSession(str(bundle / "encoder.onnx"), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(str(bundle / "head.onnx"), providers=["CPUExecutionProvider"])
    rel_vec, rel_logits = enc.run(
        None, text.encode(query, titles).as_feeds(("input_ids", "attention_mask", "token_type_ids"))
    )
    feeds = build_head_feeds(
        rel_vec=rel_vec,
        rel_logits=rel_logits,
        query=query,
        user_id=user,
        item_ids=items,
        price_bucket=np.asarray(price),
        pop_bucket=np.zeros(len(items), np.int64),
        qpref=qpref,
        upref=upref,
        buckets={f.name: f.buckets for f in m.id_features},
        smoothing=Smoothing(m.prefs.prior_rate, m.prefs.strength),
        history_len=m.prefs.history_len,
    )
    names = [o.name for o in head.get_outputs()]
    return dict(zip(names, head.run(names, feeds), strict=True))


HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
GPU_ONLY = [pytest.mark.gpu, pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a GPU")]
ON_CUDA = pytest.param("cuda", marks=GPU_ONLY)
HEAD_ON_CPU = pytest.param("cuda+cpu-head", marks=GPU_ONLY)  # encoder on the GPU, head on the CPU
# CUDA kernels sum in another order than the CPU's: the same scores to 1e-4 (TF32 is off by default).
PROVIDER_TOL = {"cpu": TOL, "cuda": 1e-4, "cuda+cpu-head": 1e-4}


@pytest.mark.parametrize("placement", ["cpu", ON_CUDA, HEAD_ON_CPU])
async def test_service_scores_equal_a_direct_onnx_run(bundle: Path, placement: str) -> None:
    items = [f"sku-{i}" for i in range(24)]
    titles = [f"{TITLES[i % len(TITLES)]} {i}" for i in range(24)]
    price = [i % 11 for i in range(24)]
    store = FakeStore()
    store.queries["cordless drill"] = QueryPref((100, 80, 60, 40), (1, 4, 12, 20), users=30)
    store.users["u7"] = UserPref(
        (10, 10, 10, 10), (0, 1, 3, 6), 10, history_items=(11, 22), history_levels=(3, 2)
    )
    body = {
        "user_id": "u7",
        "query": "Cordless  DRILL",
        "sort": False,
        "candidates": [
            {"item_id": i, "title": t, "price_bucket": p}
            for i, t, p in zip(items, titles, price, strict=True)
        ],
    }
    expected = _direct(
        bundle, body["query"], "u7", items, titles, price, store.queries["cordless drill"], store.users["u7"]
    )
    other_query = {**body, "query": "copper elbow"}
    expected_other = _direct(bundle, "copper elbow", "u7", items, titles, price, None, store.users["u7"])
    provider, _, head = placement.partition("+")
    onnx = {"providers": provider, "head_on_cpu": head == "cpu-head"}
    settings = Settings(
        bundle={"path": bundle},
        onnx=onnx,
        batching={"encoder": {"max_rows": 8}},
        cache={"admit_after": 1},  # the second request is served from the relevance cache
    )
    tol = PROVIDER_TOL[placement]
    app = create_app(settings, store=store)
    async with running(app) as client:
        assert f'provider="{provider}"' in (await client.get("/metrics")).text
        first = await client.post("/score", json=body)
        cached = await client.post("/score", json=body)  # every pair now comes from the relevance cache
        # new pairs, known titles: token ids come from the title token cache, the encoder runs again
        other = await client.post("/score", json=other_query)
    got_other = np.array([r["score"] for r in other.json()["results"]])
    np.testing.assert_allclose(got_other, expected_other["score"], atol=tol)
    for resp in (first, cached):
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert out["model_version"] == "tiny-1" and out["degraded"] == []
        got = {
            k: np.array([r[k] for r in out["results"]]) for k in ("score", "p_level", "incentive", "p_click")
        }
        np.testing.assert_allclose(got["score"], expected["score"], atol=tol)
        np.testing.assert_allclose(got["p_level"], expected["p_level"], atol=tol)
        np.testing.assert_allclose(got["incentive"], expected["incentive"], atol=tol)
        fused = (expected["p_ctr_given_level"] * expected["p_level"]).sum(1)
        np.testing.assert_allclose(got["p_click"], fused, atol=tol)


def test_every_length_bucket_is_warmed_at_both_batch_sizes(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shapes: list[tuple[str, tuple[int, ...]]] = []
    real_run = OrtGraph.run

    def recording_run(self: OrtGraph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shapes.append((self.name, next(iter(feeds.values())).shape))
        return real_run(self, feeds)

    monkeypatch.setattr(OrtGraph, "run", recording_run)
    costs = OrtScorer(bundle, OnnxSettings()).warmup(encoder_rows=8, head_rows=32)
    assert {s for g, s in shapes if g == "encoder"} == {(n, w) for n in (1, 8) for w in (16, 24, 32)}
    assert {s[0] for g, s in shapes if g == "head"} == {1, 32}
    assert costs["encoder"] > 0 and costs["head"] > 0


def _edit(path: list[Any], value: Any) -> Any:
    def edit(manifest: dict[str, Any]) -> dict[str, Any]:
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return manifest

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_edit(["head", "inputs", 3, "dtype"], "int32"), "input ids is int64 but the manifest says int32"),
        (_edit(["encoder", "outputs", 0, "shape"], ["batch", 8]), "output rel_vec has shape"),
        (_edit(["head", "outputs", 3, "name"], "fused_score"), "head outputs need"),
        (_edit(["text", "vocab_size"], 9999), "tokenizer has"),
        (_edit(["prefs", "dense_columns"], ["q_rate_l0"]), "prefs.dense_columns"),
    ],
    ids=["dtype", "static_shape", "output_name", "vocab_size", "dense_columns"],
)
def test_manifest_that_disagrees_with_the_graphs_is_refused(tmp_path: Path, edit: Any, message: str) -> None:
    bad = build_tiny_bundle(tmp_path / "bad", edit_manifest=edit)
    with pytest.raises(BundleError, match=message):
        OrtScorer(bad, OnnxSettings())


def test_corrupted_file_is_refused_by_its_sha256(tmp_path: Path) -> None:
    bad = build_tiny_bundle(tmp_path / "bad")
    with open(bad / "encoder.onnx", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="sha256 mismatch for encoder.onnx"):
        OrtScorer(bad, OnnxSettings())


async def test_service_does_not_start_on_a_bad_bundle(tmp_path: Path) -> None:
    bad = build_tiny_bundle(tmp_path / "bad")
    (bad / "head.onnx").unlink()
    app = create_app(Settings(bundle={"path": bad}), store=FakeStore())
    with pytest.raises(BundleError, match="missing file head.onnx"):
        async with running(app):
            pass


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
def test_cuda_required_without_cuda_is_refused_with_the_reason(bundle: Path) -> None:
    with pytest.raises(BundleError, match="onnx.providers=cuda.*install the gpu extra"):
        OrtScorer(bundle, OnnxSettings(providers="cuda"))


def test_cuda_refusal_names_the_cpu_and_gpu_packages_clash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both wheels ship the `onnxruntime` module: with both installed, the CPU build can shadow CUDA."""
    assert installed("numpy") and not installed("prectr-no-such-distribution")
    monkeypatch.setattr("service.ort_scorer.installed", lambda dist: True)
    with pytest.raises(BundleError, match="both onnxruntime and onnxruntime-gpu are installed"):
        choose_providers(OnnxSettings(providers="cuda"), ["CPUExecutionProvider"])


def test_cuda_is_chosen_when_offered_with_tf32_off_unless_asked() -> None:
    offered = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    providers, chosen = choose_providers(OnnxSettings(cuda_device_id=1), offered)
    assert chosen == "cuda" and providers[1] == "CPUExecutionProvider"
    assert providers[0] == ("CUDAExecutionProvider", {"device_id": 1, "use_tf32": 0})
    assert choose_providers(OnnxSettings(cuda_tf32=True), offered)[0][0][1]["use_tf32"] == 1
    assert choose_providers(OnnxSettings(providers="cpu"), offered) == (["CPUExecutionProvider"], "cpu")
    assert choose_providers(OnnxSettings(), ["CPUExecutionProvider"]) == (["CPUExecutionProvider"], "cpu")


def test_cuda_library_preload_problems_are_logged_not_printed(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    class GpuOrt:  # onnxruntime-gpu >= 1.21 reports a library it cannot load by printing
        calls = 0

        @classmethod
        def preload_dlls(cls) -> None:
            cls.calls += 1
            print("Failed to load libcudnn.so.9: cannot open shared object file")

    with caplog.at_level("WARNING", logger="prectr.service"):
        load_cuda_libraries(GpuOrt)
        load_cuda_libraries(object())  # an onnxruntime without preload_dlls: nothing to do, no error
    assert GpuOrt.calls == 1
    assert "libcudnn.so.9: cannot open shared object file" in caplog.text
    assert capsys.readouterr().out == ""


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a GPU")
def test_head_on_cpu_moves_only_the_head_off_the_gpu(bundle: Path) -> None:
    scorer = OrtScorer(bundle, OnnxSettings(providers="cuda", head_on_cpu=True))
    assert scorer.info.provider == "cuda"
    assert scorer.encoder.session.get_providers()[0] == "CUDAExecutionProvider"
    assert scorer.head.session.get_providers() == ["CPUExecutionProvider"]


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a GPU")
def test_cuda_provider_scores_match_cpu(bundle: Path) -> None:
    cpu, cuda = (
        OrtScorer(bundle, OnnxSettings(providers="cpu")),
        OrtScorer(bundle, OnnxSettings(providers="cuda")),
    )
    assert cuda.info.provider == "cuda"
    cuda.warmup(encoder_rows=64, head_rows=256)
    pairs = cpu.text.encode("cordless drill", [f"{t} {i}" for i, t in enumerate(TITLES * 10)])
    feeds = {name: getattr(pairs, name) for name in ("input_ids", "attention_mask", "token_type_ids")}
    width = feeds["input_ids"].shape[1]
    want = cpu.encoder.run(cpu.encoder.prepare([feeds], width))
    got = cuda.encoder.run(cuda.encoder.prepare([feeds], width))
    for name in ("rel_vec", "rel_logits"):
        np.testing.assert_allclose(got[name], want[name], atol=1e-4)
