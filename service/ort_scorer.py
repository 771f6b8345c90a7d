"""The real backend: two ONNX Runtime sessions opened from a verified bundle.

Start-up refuses (``BundleError`` naming the problem) a bundle whose graphs disagree with its manifest or
whose manifest disagrees with what this service feeds; there is no silent fallback. ``onnxruntime`` is
imported here only, so importing the service package stays cheap.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from features.bundle import BundleError, open_bundle
from features.head_inputs import ENCODER_OUTPUT_NAMES, HEAD_INPUT_NAMES, HEAD_OUTPUT_NAMES
from features.manifest import BundleManifest, GraphSpec
from features.prefs import NUM_LEVELS, PREF_DENSE_COLUMNS, Smoothing
from features.text import TextEncoder
from service.scorer import TOKEN_INPUTS, BatchedGraph, Feeds, HeadConfig, ModelInfo, warmup_feeds
from service.settings import OnnxSettings

log = logging.getLogger("prectr.service")
_ORT_DTYPES = {
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
}
_OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


class OrtGraph(BatchedGraph):
    def __init__(self, name: str, session: Any, spec: GraphSpec) -> None:
        super().__init__(name, {t.name: np.dtype(t.dtype) for t in spec.inputs})
        self.session = session
        self.output_names = list(spec.output_names())

    def run(self, feeds: Feeds) -> Feeds:
        values = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, values, strict=True))


def choose_providers(settings: OnnxSettings, available: list[str]) -> tuple[list[Any], str]:
    if settings.providers in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return [
            (
                "CUDAExecutionProvider",
                {"device_id": settings.cuda_device_id, "use_tf32": int(settings.cuda_tf32)},
            ),
            "CPUExecutionProvider",
        ], "cuda"
    if settings.providers == "cuda":
        fix = "install the gpu extra (onnxruntime-gpu) or set PRECTR_ONNX__PROVIDERS=auto"
        if installed("onnxruntime") and installed("onnxruntime-gpu"):
            fix = (
                "both onnxruntime and onnxruntime-gpu are installed and share one `onnxruntime` module (the "
                "CPU build won): pip uninstall -y onnxruntime onnxruntime-gpu && pip install "
                "'onnxruntime-gpu[cuda,cudnn]'"
            )
        raise BundleError(f"onnx.providers=cuda but onnxruntime offers only {available}; {fix}")
    return ["CPUExecutionProvider"], "cpu"


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def load_cuda_libraries(ort: Any) -> None:
    """Make the CUDA and cuDNN libraries of pip's ``nvidia-*`` packages (``onnxruntime-gpu[cuda,cudnn]``,
    the gpu extra) loadable before a CUDA session opens: ``onnxruntime.preload_dlls`` loads them from the
    site-packages beside onnxruntime, then from the loader's default paths (a system CUDA install). It
    reports problems by printing; they are logged instead, and a library still missing makes the CUDA
    provider fail to initialise, which the caller turns into a refusal or a CPU fallback."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:  # onnxruntime-gpu < 1.21: the libraries must be on the loader's path
        return
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        preload()
    if printed.getvalue().strip():
        log.warning("onnxruntime.preload_dlls: %s", " ".join(printed.getvalue().split()))


def session_options(ort: Any, settings: OnnxSettings, cuda: bool) -> Any:
    """ORT session options of one graph: its thread count depends on the provider it runs on."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, _OPT_LEVELS[settings.graph_optimization]
    )
    opts.intra_op_num_threads = settings.cuda_intra_op_threads if cuda else settings.intra_op_threads
    opts.inter_op_num_threads = settings.inter_op_threads
    if not settings.allow_spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def check_graph(session: Any, spec: GraphSpec, graph: str) -> None:
    """The graph's input/output names, dtypes and static sizes must be exactly the manifest's."""
    for kind, actual_args, expected in (
        ("input", session.get_inputs(), spec.inputs),
        ("output", session.get_outputs(), spec.outputs),
    ):
        actual = {a.name: a for a in actual_args}
        missing = sorted({t.name for t in expected} - actual.keys())
        extra = sorted(actual.keys() - {t.name for t in expected})
        if missing or extra:
            raise BundleError(
                f"{spec.file}: {kind}s differ from the manifest: missing {missing}, unexpected {extra}"
            )
        for t in expected:
            dtype = _ORT_DTYPES.get(actual[t.name].type, actual[t.name].type)
            if dtype != t.dtype:
                raise BundleError(f"{spec.file}: {kind} {t.name} is {dtype} but the manifest says {t.dtype}")
            dims = actual[t.name].shape
            if len(dims) != len(t.shape) or any(
                isinstance(m, int) and isinstance(d, int) and m != d
                for m, d in zip(t.shape, dims, strict=False)
            ):
                raise BundleError(f"{spec.file}: {kind} {t.name} has shape {dims}, manifest says {t.shape}")


def check_manifest_contract(m: BundleManifest) -> None:
    """What this service feeds and reads must be what the bundle was trained with."""
    enc_in = set(m.encoder.input_names())
    if not {"input_ids", "attention_mask"} <= enc_in <= set(TOKEN_INPUTS):
        raise BundleError(
            f"encoder inputs {sorted(enc_in)} must be input_ids, attention_mask[, token_type_ids]"
        )
    problems = [
        (
            set(ENCODER_OUTPUT_NAMES) <= set(m.encoder.output_names()),
            f"encoder outputs need {ENCODER_OUTPUT_NAMES}",
        ),
        (set(m.head.input_names()) == set(HEAD_INPUT_NAMES), f"head inputs must be {HEAD_INPUT_NAMES}"),
        (set(HEAD_OUTPUT_NAMES) <= set(m.head.output_names()), f"head outputs need {HEAD_OUTPUT_NAMES}"),
        (
            tuple(m.prefs.dense_columns) == PREF_DENSE_COLUMNS,
            f"prefs.dense_columns must be {PREF_DENSE_COLUMNS}",
        ),
        (m.num_levels == NUM_LEVELS, f"num_levels {m.num_levels} but preference features have {NUM_LEVELS}"),
    ]
    for ok, message in problems:
        if not ok:
            raise BundleError(f"manifest {m.model_version}: {message}")
    for name in ("user", "item", "query"):
        try:
            m.id_buckets(name)
        except KeyError as exc:
            raise BundleError(f"manifest {m.model_version}: no id feature {name!r}") from exc


class OrtScorer:
    def __init__(self, root: str | Path, settings: OnnxSettings) -> None:
        import onnxruntime as ort

        files = open_bundle(root)
        m = files.manifest
        check_manifest_contract(m)
        providers, provider = choose_providers(settings, ort.get_available_providers())
        if provider == "cuda":
            load_cuda_libraries(ort)
        sessions = {}
        for name, spec in (("encoder", m.encoder), ("head", m.head)):
            on_cuda = provider == "cuda" and not (name == "head" and settings.head_on_cpu)
            path = str(files.root / spec.file)
            try:
                sessions[name] = ort.InferenceSession(
                    path,
                    session_options(ort, settings, on_cuda),
                    providers=providers if on_cuda else ["CPUExecutionProvider"],
                )
            except Exception as exc:  # ORT raises its own types; the bundle is what is wrong
                raise BundleError(f"{spec.file}: onnxruntime cannot load it: {exc}") from exc
            check_graph(sessions[name], spec, name)
            if on_cuda and sessions[name].get_providers()[0] != "CUDAExecutionProvider":
                if settings.providers == "cuda":
                    raise BundleError(f"{spec.file}: the CUDA provider failed to initialise")
                provider = "cpu"
        self.manifest = m
        self.text = TextEncoder(
            files.tokenizer_path, m.text.max_len, m.text.max_query_len, m.text.length_buckets
        )
        vocab = self.text.tokenizer.get_vocab_size()
        if vocab != m.text.vocab_size:
            raise BundleError(f"tokenizer has {vocab} tokens but the manifest says {m.text.vocab_size}")
        self.info = ModelInfo(
            m.model_version,
            provider,
            m.variant,
            tuple(m.level_names),
            m.rel_dim,
            tuple(m.text.length_buckets),
        )
        self.head_config = HeadConfig(
            buckets={f.name: f.buckets for f in m.id_features},
            smoothing=Smoothing(m.prefs.prior_rate, m.prefs.strength),
            history_len=m.prefs.history_len,
        )
        self.encoder = OrtGraph("encoder", sessions["encoder"], m.encoder)
        self.head = OrtGraph("head", sessions["head"], m.head)

    def warmup(self, encoder_rows: int, head_rows: int) -> dict[str, float]:
        """Run each length bucket at 1 row and at a full batch, so no request pays a first-shape cost."""
        m, cost = self.manifest, {}
        for graph, rows, widths in (
            (self.encoder, encoder_rows, m.text.length_buckets),
            (self.head, head_rows, [None]),
        ):
            per_row = []
            for width in widths:
                for n in (1, rows):
                    feeds = graph.prepare(
                        [warmup_feeds(n, width, m.rel_dim, m.num_levels, m.prefs.history_len)], width
                    )
                    start = time.perf_counter()
                    graph.run(feeds)
                    per_row.append((time.perf_counter() - start) / n)
            cost[graph.name] = float(np.mean(per_row[1::2]))  # full-batch runs: the steady-state cost
        log.info("warmed %s on %s: %s", m.model_version, self.info.provider, cost)
        return cost

    def close(self) -> None:
        """Sessions free their memory when dropped; nothing else to release."""
