"""Build a small but REAL bundle (two ONNX graphs, tokenizer, manifest with sha256) without torch.

The graphs follow the bundle contract exactly (names, dtypes, shapes of features/head_inputs.py) so the
service's ORT path can be tested before the export pipeline exists:

  encoder: token + segment embeddings -> ``layers`` x ReLU(MatMul) per token -> masked mean ->
           rel_vec = tanh(W1 x), rel_logits = W2 rel_vec + b
  head:    p_level = softmax(rel_logits); p_ctr_given_level = sigmoid([rel_vec, pref_dense] Wc + id/history
           bias); incentive = 0.3 tanh(pref_dense wi); score = sigmoid(logit(sum p_ctr p_level) + incentive)

``layers``/``dim`` make the encoder as expensive as a real one for benchmarks. Run as a script to write one:
``python tests/bundle_factory.py --out DIR [--dim 128 --layers 0 --version tiny-1]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from features.bundle import MANIFEST_FILE, sha256_file
from features.head_inputs import ID_FEATURES
from features.manifest import BundleManifest, GraphSpec, IdFeatureSpec, PrefSpec, TensorSpec, TextSpec
from features.prefs import PREF_DENSE_COLUMNS
from features.tokenizer import save_tokenizer, train_wordpiece

LEVELS = 4
HISTORY = 10
ID_BUCKETS = {"user": 1000, "item": 5000, "query": 2000, "price_bucket": 11, "pop_bucket": 11}
CORPUS = [
    "cordless drill 18v lithium battery kit",
    "white interior paint gallon satin finish",
    "copper pipe fitting 1/2 in elbow",
    "led light bulb 60w soft white",
    "garden hose 50 ft heavy duty",
    "stainless steel kitchen sink faucet",
    "outdoor patio chair cushion",
    "cedar fence picket 6 ft",
    "ceramic floor tile 12 in gray",
    "adjustable wrench set metric",
    "smoke detector battery powered",
    "vinyl plank flooring oak",
    "exterior wood stain semi transparent",
    "ceiling fan with light 52 in",
] * 3
F32, I64 = TensorProto.FLOAT, TensorProto.INT64

# The tiny-model export tests' corpus: a 200-token vocabulary for ``export.tiny.tiny_modules(vocab_size=200)``.
SHORT_TITLES = [
    "cordless drill 18v lithium battery kit",
    "white interior paint gallon satin finish",
    "copper pipe fitting 1/2 in elbow",
    "led light bulb 60w soft white",
    "garden hose 50 ft",
] * 4
SHORT_VOCAB = 200


def short_tokenizer():  # type: ignore[no-untyped-def]
    """A WordPiece tokenizer over :data:`SHORT_TITLES` with :data:`SHORT_VOCAB` tokens."""
    return train_wordpiece(SHORT_TITLES, vocab_size=SHORT_VOCAB, min_frequency=1)


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def encoder_model(
    vocab: int, dim: int, rel_dim: int, layers: int, rng: np.random.Generator
) -> onnx.ModelProto:
    w = lambda *s: (rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32)  # noqa: E731
    inits = [
        _init("tok_emb", w(vocab, dim) * 3),
        _init("type_emb", w(2, dim)),
        _init("w1", w(dim, rel_dim)),
        _init("w2", w(rel_dim, LEVELS) * 2),
        _init("b2", np.array([0.5, 0, -0.2, -0.4], np.float32)),
        _init("axis1", np.array([1], np.int64)),
        _init("one", np.array(1.0, np.float32)),
    ]
    nodes = [
        helper.make_node("Gather", ["tok_emb", "input_ids"], ["e_tok"]),
        helper.make_node("Gather", ["type_emb", "token_type_ids"], ["e_type"]),
        helper.make_node("Add", ["e_tok", "e_type"], ["h0"]),
    ]
    for i in range(layers):
        inits.append(_init(f"wl{i}", w(dim, dim)))
        nodes += [
            helper.make_node("MatMul", [f"h{i}", f"wl{i}"], [f"m{i}"]),
            helper.make_node("Relu", [f"m{i}"], [f"h{i + 1}"]),
        ]
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=F32),
        helper.make_node("Unsqueeze", ["mask_f", "axis_last"], ["mask3"]),
        helper.make_node("Mul", [f"h{layers}", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask_f", "axis1"], ["count"], keepdims=1),
        helper.make_node("Max", ["count", "one"], ["count1"]),
        helper.make_node("Div", ["summed", "count1"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "w1"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["rel_vec"]),
        helper.make_node("MatMul", ["rel_vec", "w2"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b2"], ["rel_logits"]),
    ]
    inits.append(_init("axis_last", np.array([-1], np.int64)))
    tokens = [
        helper.make_tensor_value_info(n, I64, ["batch", "seq"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    outputs = [
        helper.make_tensor_value_info("rel_vec", F32, ["batch", rel_dim]),
        helper.make_tensor_value_info("rel_logits", F32, ["batch", LEVELS]),
    ]
    return _model(helper.make_graph(nodes, "tiny_encoder", tokens, outputs, inits))


def head_model(rel_dim: int, rng: np.random.Generator) -> onnx.ModelProto:
    n_dense, max_bucket = len(PREF_DENSE_COLUMNS), max(ID_BUCKETS.values())
    inits = [
        _init("wc", (rng.standard_normal((rel_dim + n_dense, LEVELS)) * 0.3).astype(np.float32)),
        _init("bc", np.array([-3.0, -2.0, -1.0, 0.0], np.float32)),
        _init("id_tab", (rng.standard_normal((max_bucket, 1)) * 0.1).astype(np.float32)),
        _init("wi", (rng.standard_normal((n_dense, 1)) * 0.5).astype(np.float32)),
        _init("ax12", np.array([1, 2], np.int64)),
        _init("ax1", np.array([1], np.int64)),
        _init("k03", np.array(0.3, np.float32)),
        _init("eps", np.array(1e-6, np.float32)),
        _init("one", np.array(1.0, np.float32)),
    ]
    nodes = [
        helper.make_node("Softmax", ["rel_logits"], ["p_level"], axis=-1),
        helper.make_node("Concat", ["rel_vec", "pref_dense"], ["x"], axis=1),
        helper.make_node("MatMul", ["x", "wc"], ["xc"]),
        helper.make_node("Gather", ["id_tab", "ids"], ["id_e"]),  # (B, 5, 1)
        helper.make_node("ReduceSum", ["id_e", "ax12"], ["id_bias"], keepdims=0),  # (B,)
        helper.make_node("Gather", ["id_tab", "hist_items"], ["h_e"]),  # (B, H, 1)
        helper.make_node("ReduceSum", ["h_e", "ax12"], ["h_bias"], keepdims=0),
        helper.make_node("Cast", ["hist_levels"], ["hl_f"], to=F32),
        helper.make_node("ReduceMean", ["hl_f", "ax1"], ["hl_bias"], keepdims=0),
        helper.make_node("Sum", ["id_bias", "h_bias", "hl_bias"], ["bias"]),
        helper.make_node("Unsqueeze", ["bias", "ax1"], ["bias2"]),
        helper.make_node("Sum", ["xc", "bc", "bias2"], ["ctr_logit"]),
        helper.make_node("Sigmoid", ["ctr_logit"], ["p_ctr_given_level"]),
        helper.make_node("Mul", ["p_ctr_given_level", "p_level"], ["joint"]),
        helper.make_node("ReduceSum", ["joint", "ax1"], ["fused0"], keepdims=0),
        helper.make_node("Max", ["fused0", "eps"], ["fused"]),
        helper.make_node("Sub", ["one", "fused"], ["not_fused"]),
        helper.make_node("Div", ["fused", "not_fused"], ["odds"]),
        helper.make_node("Log", ["odds"], ["fused_logit"]),
        helper.make_node("MatMul", ["pref_dense", "wi"], ["inc0"]),
        helper.make_node("Squeeze", ["inc0", "ax1"], ["inc1"]),
        helper.make_node("Tanh", ["inc1"], ["inc2"]),
        helper.make_node("Mul", ["inc2", "k03"], ["incentive"]),
        helper.make_node("Add", ["fused_logit", "incentive"], ["score_logit"]),
        helper.make_node("Sigmoid", ["score_logit"], ["score"]),
    ]
    inputs = [
        helper.make_tensor_value_info(n, t, ["batch", d])
        for n, t, d in (
            ("rel_vec", F32, rel_dim),
            ("rel_logits", F32, LEVELS),
            ("pref_dense", F32, n_dense),
            ("ids", I64, len(ID_FEATURES)),
            ("hist_items", I64, HISTORY),
            ("hist_levels", I64, HISTORY),
        )
    ]
    outputs = [
        helper.make_tensor_value_info("p_ctr_given_level", F32, ["batch", LEVELS]),
        helper.make_tensor_value_info("p_level", F32, ["batch", LEVELS]),
        helper.make_tensor_value_info("incentive", F32, ["batch"]),
        helper.make_tensor_value_info("score", F32, ["batch"]),
    ]
    return _model(helper.make_graph(nodes, "tiny_head", inputs, outputs, inits))


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="bundle_factory"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _spec(model: onnx.ModelProto, file: str) -> GraphSpec:
    def tensors(values: Any) -> tuple[TensorSpec, ...]:
        out = []
        for v in values:
            dtype = {F32: "float32", I64: "int64"}[v.type.tensor_type.elem_type]
            dims = tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim)
            out.append(TensorSpec(name=v.name, dtype=dtype, shape=dims))
        return tuple(out)

    return GraphSpec(file=file, inputs=tensors(model.graph.input), outputs=tensors(model.graph.output))


def build_tiny_bundle(
    root: str | Path,
    version: str = "tiny-1",
    *,
    dim: int = 32,
    rel_dim: int = 16,
    layers: int = 0,
    seed: int = 0,
    buckets: tuple[int, ...] = (16, 24, 32),
    edit_manifest: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Path:
    """Write a complete bundle to ``root``; ``edit_manifest`` may tamper with the manifest dict (tests)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tok = train_wordpiece(CORPUS, vocab_size=300, min_frequency=1)
    save_tokenizer(tok, root / "tokenizer.json")
    encoder = encoder_model(tok.get_vocab_size(), dim, rel_dim, layers, rng)
    head = head_model(rel_dim, rng)
    onnx.save(encoder, root / "encoder.onnx")
    onnx.save(head, root / "head.onnx")
    files = {n: sha256_file(root / n) for n in ("encoder.onnx", "head.onnx", "tokenizer.json")}
    manifest: dict[str, Any] = BundleManifest(
        model_version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        rel_dim=rel_dim,
        text=TextSpec(
            max_len=buckets[-1], max_query_len=8, length_buckets=buckets, vocab_size=tok.get_vocab_size()
        ),
        encoder=_spec(encoder, "encoder.onnx"),
        head=_spec(head, "head.onnx"),
        prefs=PrefSpec(dense_columns=PREF_DENSE_COLUMNS, history_len=HISTORY),
        id_features=tuple(IdFeatureSpec(name=n, buckets=ID_BUCKETS[n]) for n in ID_FEATURES),
        files=files,
    ).model_dump(mode="json")
    if edit_manifest is not None:
        manifest = edit_manifest(manifest)
    BundleManifest.model_validate(manifest).write(root / MANIFEST_FILE)
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--version", default="tiny-1")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--max-len", type=int, default=32)
    args = parser.parse_args()
    bucket_set = (*(b for b in (16, 24, 32, 48, 64) if b < args.max_len), args.max_len)
    print(build_tiny_bundle(args.out, args.version, dim=args.dim, layers=args.layers, buckets=bucket_set))
