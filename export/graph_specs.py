"""The two graphs' signatures as :class:`features.manifest.GraphSpec`: one definition for export and checks.

Names come from :mod:`features.head_inputs` (the cross-helper contract); dynamic axes are named
``batch`` and ``seq`` so the manifest, the ONNX files and the service agree on which sizes may vary.
Everything else (``rel_dim``, ``K``, dense width, id count, history length) is static and checked.
"""

from __future__ import annotations

from features.head_inputs import (
    ENCODER_OUTPUT_NAMES,
    HEAD_INPUT_NAMES,
    HEAD_OUTPUT_NAMES,
    ID_FEATURES,
)
from features.manifest import GraphSpec, TensorSpec
from features.prefs import PREF_DENSE_COLUMNS

BATCH_AXIS = "batch"
SEQ_AXIS = "seq"
ENCODER_INPUT_NAMES: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
ENCODER_FILE = "encoder.onnx"
HEAD_FILE = "head.onnx"


def encoder_spec(rel_dim: int, num_levels: int, file: str = ENCODER_FILE) -> GraphSpec:
    """``(input_ids, attention_mask, token_type_ids) [batch, seq] int64 -> rel_vec, rel_logits``."""
    inputs = tuple(
        TensorSpec(name=n, dtype="int64", shape=(BATCH_AXIS, SEQ_AXIS)) for n in ENCODER_INPUT_NAMES
    )
    rel_vec_name, rel_logits_name = ENCODER_OUTPUT_NAMES
    outputs = (
        TensorSpec(name=rel_vec_name, dtype="float32", shape=(BATCH_AXIS, rel_dim)),
        TensorSpec(name=rel_logits_name, dtype="float32", shape=(BATCH_AXIS, num_levels)),
    )
    return GraphSpec(file=file, inputs=inputs, outputs=outputs)


def head_spec(
    rel_dim: int,
    num_levels: int,
    history_len: int,
    n_dense: int = len(PREF_DENSE_COLUMNS),
    n_ids: int = len(ID_FEATURES),
    file: str = HEAD_FILE,
) -> GraphSpec:
    """Fusion head signature; probabilities and scores stay float32 even in an fp16 bundle (keep_io_types)."""
    widths = {
        "rel_vec": ("float32", rel_dim),
        "rel_logits": ("float32", num_levels),
        "pref_dense": ("float32", n_dense),
        "ids": ("int64", n_ids),
        "hist_items": ("int64", history_len),
        "hist_levels": ("int64", history_len),
    }
    if set(widths) != set(HEAD_INPUT_NAMES):  # pragma: no cover - guards a contract rename
        raise RuntimeError(f"head inputs {HEAD_INPUT_NAMES} drifted from the spec builder {tuple(widths)}")
    inputs = tuple(
        TensorSpec(name=n, dtype=widths[n][0], shape=(BATCH_AXIS, widths[n][1]))  # type: ignore[arg-type]
        for n in HEAD_INPUT_NAMES
    )
    p_ctr, p_level, incentive, score = HEAD_OUTPUT_NAMES
    outputs = (
        TensorSpec(name=p_ctr, dtype="float32", shape=(BATCH_AXIS, num_levels)),
        TensorSpec(name=p_level, dtype="float32", shape=(BATCH_AXIS, num_levels)),
        TensorSpec(name=incentive, dtype="float32", shape=(BATCH_AXIS,)),
        TensorSpec(name=score, dtype="float32", shape=(BATCH_AXIS,)),
    )
    return GraphSpec(file=file, inputs=inputs, outputs=outputs)


def dynamic_axes(spec: GraphSpec) -> dict[str, dict[int, str]]:
    """``torch.onnx.export`` ``dynamic_axes`` for every named (string) dimension in the spec."""
    axes: dict[str, dict[int, str]] = {}
    for tensor in (*spec.inputs, *spec.outputs):
        named = {i: d for i, d in enumerate(tensor.shape) if isinstance(d, str)}
        if named:
            axes[tensor.name] = named
    return axes
