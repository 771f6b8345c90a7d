"""The soft-label file: the only thing distillation reads from a teacher.

Parquet, one row per (query, item) pair the student will train on:

    query      string   normalised query text (features.normalize.normalize_query)
    item_id    int64    items.item_id
    p_0..p_{K-1}       float32  teacher probabilities at temperature 1 (rows sum to 1)
    logit_0..logit_{K-1} float32  optional; without them log(p) is used, which gives the same softmax at
                                  any temperature
    source     string   optional, where the pair came from (relevance / impression)

Schema metadata key ``prectr`` holds JSON: num_levels, teacher, teacher_hash, data_fingerprint and, when
present, ``hidden_file`` (a float16 .npy of the teacher's pooled states, row-aligned). Any teacher — the
MiniLM cross-encoder here, or an LLM asked for level probabilities — plugs in by writing this file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

META_KEY = b"prectr"
FORMAT = "prectr-soft-labels/1"


class SoftLabelError(ValueError):
    """The soft-label file is missing or malformed; the message names the column or value at fault."""


@dataclass
class SoftLabels:
    query: np.ndarray  # (N,) object
    item_id: np.ndarray  # (N,) int64
    logits: np.ndarray  # (N, K) float32
    meta: dict[str, Any] = field(default_factory=dict)
    hidden: np.ndarray | None = None  # (N, H) float16, teacher pooled states

    def __len__(self) -> int:
        return len(self.item_id)

    @property
    def num_levels(self) -> int:
        return self.logits.shape[1]

    def probs(self, temperature: float = 1.0) -> np.ndarray:
        z = self.logits / temperature
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def write_soft_labels(
    path: str | Path,
    query: np.ndarray,
    item_id: np.ndarray,
    logits: np.ndarray,
    meta: dict[str, Any],
    source: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    k = logits.shape[1]
    probs = SoftLabels(query, item_id, logits.astype(np.float32)).probs(1.0)
    cols: dict[str, Any] = {
        "query": pa.array(query.tolist(), pa.string()),
        "item_id": pa.array(item_id, pa.int64()),
    }
    cols.update({f"p_{i}": pa.array(probs[:, i], pa.float32()) for i in range(k)})
    cols.update({f"logit_{i}": pa.array(logits[:, i].astype(np.float32), pa.float32()) for i in range(k)})
    if source is not None:
        cols["source"] = pa.array(source.tolist(), pa.string())
    meta = {**meta, "format": FORMAT, "num_levels": k}
    if hidden is not None:
        hidden_path = path.with_suffix(".hidden.npy")
        np.save(hidden_path, hidden.astype(np.float16))
        meta["hidden_file"] = hidden_path.name
    table = pa.table(cols).replace_schema_metadata({META_KEY: json.dumps(meta, default=str).encode()})
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_soft_label_meta(path: str | Path) -> dict[str, Any]:
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata.get(META_KEY, b"{}"))


def read_soft_labels(
    path: str | Path, num_levels: int | None = None, load_hidden: bool = False
) -> SoftLabels:
    """Read and validate a soft-label file written by any teacher."""
    path = Path(path)
    if not path.is_file():
        raise SoftLabelError(f"soft-label file not found: {path} (run `prectr teacher label`)")
    table = pq.read_table(path)
    names = set(table.column_names)
    missing = {"query", "item_id"} - names
    k = sum(1 for n in names if n.startswith("p_") and n[2:].isdigit())
    if missing or k < 2 or any(f"p_{i}" not in names for i in range(k)):
        raise SoftLabelError(f"{path}: needs columns query, item_id, p_0..p_(K-1); found {sorted(names)}")
    if num_levels is not None and k != num_levels:
        raise SoftLabelError(f"{path}: has {k} levels (p_0..p_{k - 1}) but the student predicts {num_levels}")
    probs = np.stack([table.column(f"p_{i}").to_numpy() for i in range(k)], axis=1).astype(np.float64)
    if np.isnan(probs).any() or (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise SoftLabelError(f"{path}: p_0..p_{k - 1} must be non-negative and sum to 1 in every row")
    if all(f"logit_{i}" in names for i in range(k)):
        logits = np.stack([table.column(f"logit_{i}").to_numpy() for i in range(k)], axis=1)
    else:
        logits = np.log(np.clip(probs, 1e-8, 1.0))
    meta = read_soft_label_meta(path)
    hidden = None
    if load_hidden and meta.get("hidden_file"):
        hidden = np.load(path.parent / meta["hidden_file"])
        if hidden.shape[0] != table.num_rows:
            raise SoftLabelError(
                f"{meta['hidden_file']} has {hidden.shape[0]} rows, {path} has {table.num_rows}"
            )
    query = np.asarray(table.column("query").to_pylist(), dtype=object)
    item_id = table.column("item_id").to_numpy().astype(np.int64)
    return SoftLabels(query, item_id, logits.astype(np.float32), meta, hidden)
