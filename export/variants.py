"""Derived graphs: int8 dynamic quantisation (CPU), fp16 (GPU) and ORT offline graph optimisation.

- int8: ``onnxruntime.quantization.quantize_dynamic`` on MatMul/Gemm weights only (per-tensor s8 weights,
  u8 activations quantised per batch at run time). Embedding tables (Gather) stay fp32: a quantised Gather
  dequantises the *whole* table on every run, which costs more than it saves for a 100k-row item table.
  Measured on the trained tiny encoder (real test pairs): per-tensor 8-bit gives the smallest probability
  error (max 0.048); ``reduce_range`` (7-bit, meant for non-VNNI AVX2) 0.14, per-channel 0.06-0.09, with
  equal level accuracy; ``quant_pre_process`` changed nothing, so it is skipped. Only the encoder is
  quantised: on the V2 checkpoint an int8 head was slower (7.4 vs 1.1 ms per 200 rows: per-op activation
  quantisation dominates small Gemms) and caused most of the probability error (0.058 vs 0.005).
- fp16: ``onnxruntime.transformers.float16.convert_float_to_float16`` (ships with onnxruntime; no extra
  package) with ``keep_io_types=True`` so the service feeds and reads float32 as for fp32. Only the encoder
  is converted: it is > 90 % of the FLOPs, while the head holds the log-space fusion arithmetic and is tiny.
- Offline optimisation (:func:`optimize_offline`) writes the graph ORT builds at ``ORT_ENABLE_EXTENDED``
  (fusions that are not hardware-specific). Measured (bench/export_bench.py): it cuts session creation
  ~2.7x (46 -> 17 ms per encoder) and runs as fast as online ``all``, so bundles ship the plain graphs
  (portable across ORT versions and providers, and what quantisation/fp16 start from) and the service
  optimises at load time with ``graph_optimization="all"``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

Variant = Literal["fp32", "int8", "fp16"]
VARIANTS: tuple[Variant, ...] = ("fp32", "int8", "fp16")
# Which graphs a variant converts; the others are copied unchanged from the fp32 export.
CONVERTED_GRAPHS: dict[Variant, tuple[str, ...]] = {
    "fp32": (),
    "int8": ("encoder",),
    "fp16": ("encoder",),
}


def quantize_int8(
    src: str | Path, dst: str | Path, reduce_range: bool = False, per_channel: bool = False
) -> Path:
    """Dynamic int8 quantisation of MatMul/Gemm weights (signed; per-tensor 8-bit by default)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint through the root logger
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=per_channel,
            reduce_range=reduce_range,
        )
    finally:
        root.setLevel(level)
    return dst


def convert_fp16(src: str | Path, dst: str | Path) -> Path:
    """fp16 weights and arithmetic with float32 inputs/outputs (Cast nodes at the graph boundary)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    dst = Path(dst)
    onnx.save(model, str(dst))
    return dst


def make_variant(graph: str, src: str | Path, dst: str | Path, variant: Variant) -> Path:
    """Write graph ``graph`` ("encoder" or "head") of ``variant`` at ``dst`` from the fp32 file ``src``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if graph not in CONVERTED_GRAPHS[variant]:
        if Path(src) != Path(dst):
            shutil.copyfile(src, dst)
        return Path(dst)
    if variant == "int8":
        return quantize_int8(src, dst)
    return convert_fp16(src, dst)


OptLevel = Literal["disable", "basic", "extended", "all"]


def session_options(
    level: OptLevel = "all", threads: int = 2, optimized_path: str | Path | None = None, spin: bool = True
):
    """``SessionOptions`` at an optimisation level; ``optimized_path`` also writes the optimised graph.

    ``spin=False`` stops idle intra-op threads from busy-waiting (``session.intra_op.allow_spinning``):
    slower on an idle machine, but a spinning thread steals the core from everyone else on a busy one.
    """
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[level]
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    return opts


def optimize_offline(src: str | Path, dst: str | Path, level: OptLevel = "extended") -> Path:
    """Save the graph ONNX Runtime builds at ``level`` (CPU provider) so loading it needs no re-optimising."""
    import onnxruntime as ort

    ort.InferenceSession(
        str(src), sess_options=session_options(level, 1, dst), providers=["CPUExecutionProvider"]
    )
    return Path(dst)


def cpu_session(path: str | Path, level: OptLevel = "all", threads: int = 2, spin: bool = True):
    """A CPU-provider session (what export validates and benchmarks with)."""
    import onnxruntime as ort

    return ort.InferenceSession(
        str(path), sess_options=session_options(level, threads, spin=spin), providers=["CPUExecutionProvider"]
    )
