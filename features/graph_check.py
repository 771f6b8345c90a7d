"""Does each ONNX graph in a bundle have exactly the signature its manifest declares?

:func:`features.bundle.open_bundle` checks files, hashes and the schema; this module checks the graphs
themselves against the manifest: input/output names, dtypes, ranks, static sizes and named dynamic axes,
and that the two graphs and the manifest agree with each other (``rel_dim``, ``K``, feature widths).
Torch-free: export runs it before writing a bundle and the service runs it at start-up and reload, on the
sessions it already opened. Any mismatch raises :class:`features.bundle.BundleError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from features.bundle import BundleError, BundleFiles
from features.manifest import BundleManifest, GraphSpec, TensorSpec

# ONNX Runtime type strings -> manifest dtype names.
ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}


class _NodeArg(Protocol):
    name: str
    type: str
    shape: Sequence[Any]


class GraphSession(Protocol):
    """The part of ``onnxruntime.InferenceSession`` this check needs (so tests may pass any session)."""

    def get_inputs(self) -> Sequence[_NodeArg]: ...

    def get_outputs(self) -> Sequence[_NodeArg]: ...


def _tensor_problems(label: str, spec: TensorSpec, arg: _NodeArg) -> list[str]:
    problems = []
    dtype = ORT_DTYPES.get(arg.type, arg.type)
    if dtype != spec.dtype:
        problems.append(f"{label} {spec.name!r}: dtype {dtype} in the graph, {spec.dtype} in the manifest")
    shape = list(arg.shape)
    if len(shape) != len(spec.shape):
        problems.append(
            f"{label} {spec.name!r}: rank {len(shape)} in the graph, {len(spec.shape)} in the manifest"
        )
        return problems
    for axis, (want, have) in enumerate(zip(spec.shape, shape, strict=True)):
        if isinstance(want, int) and have != want:
            problems.append(
                f"{label} {spec.name!r} axis {axis}: size {have} in the graph, {want} in the manifest"
            )
        elif isinstance(want, str) and have != want:
            fixed = "fixed to " if isinstance(have, int) else "named "
            problems.append(
                f"{label} {spec.name!r} axis {axis}: dynamic axis {want!r} in the manifest, "
                f"{fixed}{have!r} in the graph"
            )
    return problems


def _side_problems(label: str, specs: Sequence[TensorSpec], args: Sequence[_NodeArg]) -> list[str]:
    by_name = {a.name: a for a in args}
    wanted = [s.name for s in specs]
    problems = []
    missing = [n for n in wanted if n not in by_name]
    extra = [n for n in by_name if n not in wanted]
    if missing:
        problems.append(f"{label}s {missing} declared in the manifest are missing from the graph")
    if extra:
        problems.append(f"graph has {label}s {extra} the manifest does not declare")
    for spec in specs:
        if spec.name in by_name:
            problems.extend(_tensor_problems(label, spec, by_name[spec.name]))
    return problems


def graph_problems(session: GraphSession, spec: GraphSpec) -> list[str]:
    """Every way the graph's signature differs from ``spec`` (empty when it matches)."""
    return _side_problems("input", spec.inputs, session.get_inputs()) + _side_problems(
        "output", spec.outputs, session.get_outputs()
    )


def manifest_problems(manifest: BundleManifest) -> list[str]:
    """Cross-checks inside the manifest: what the encoder emits is what the head and the service expect."""
    problems = []
    enc = {t.name: t for t in manifest.encoder.outputs}
    head = {t.name: t for t in manifest.head.inputs}
    expected = {
        "rel_vec": manifest.rel_dim,
        "rel_logits": manifest.num_levels,
    }
    for name, width in expected.items():
        for side, tensors in (("encoder output", enc), ("head input", head)):
            tensor = tensors.get(name)
            if tensor is None or tensor.shape[-1:] != (width,):
                shape = None if tensor is None else tensor.shape
                problems.append(f"{side} {name!r} has shape {shape}, manifest says last axis {width}")
    widths = {
        "pref_dense": len(manifest.prefs.dense_columns),
        "ids": len(manifest.id_features),
        "hist_items": manifest.prefs.history_len,
        "hist_levels": manifest.prefs.history_len,
    }
    for name, width in widths.items():
        tensor = head.get(name)
        if tensor is not None and tensor.shape[-1:] != (width,):
            problems.append(f"head input {name!r} has shape {tensor.shape}, manifest features say {width}")
    return problems


def check_bundle_graphs(
    bundle: BundleFiles, sessions: dict[str, GraphSession] | None = None, providers: Sequence[str] = ()
) -> None:
    """Raise :class:`BundleError` listing every signature mismatch of ``encoder``/``head`` vs the manifest.

    Pass the service's own ``sessions`` (keys ``encoder``, ``head``) to avoid loading the graphs twice;
    otherwise they are opened here with ``providers`` (CPU by default).
    """
    manifest = bundle.manifest
    problems = [f"manifest: {p}" for p in manifest_problems(manifest)]
    graphs = {"encoder": (manifest.encoder, bundle.encoder_path), "head": (manifest.head, bundle.head_path)}
    for key, (spec, path) in graphs.items():
        session = (sessions or {}).get(key) or open_session(path, providers)
        problems.extend(f"{spec.file}: {p}" for p in graph_problems(session, spec))
    if problems:
        raise BundleError(f"bundle {bundle.root} does not match its manifest: " + "; ".join(problems))


def open_session(path: str | Path, providers: Sequence[str] = ()) -> GraphSession:
    """A CPU (or ``providers``) ONNX Runtime session; an unreadable graph is a :class:`BundleError`."""
    import onnxruntime as ort  # lazily: importing features must stay cheap

    try:
        return ort.InferenceSession(str(path), providers=list(providers) or ["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for corrupt or unsupported graphs
        raise BundleError(f"cannot load ONNX graph {path}: {exc}") from exc
