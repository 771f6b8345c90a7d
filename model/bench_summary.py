"""Aggregating benchmark cells over seeds: mean ± std per metric, RelaImpr per seed against the base row."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from model.metrics import rela_impr

SLICES = ("new", "low", "active")


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def summarise(cells: dict[str, dict[str, Any]], rows: list[str], base_row: str) -> dict[str, dict[str, Any]]:
    """Per row and metric: mean, std, n over seeds; RelaImpr (overall and per slice) against ``base_row``."""
    by_row: dict[str, dict[int, dict[str, float]]] = {}
    for cell in cells.values():
        by_row.setdefault(cell["row"], {})[int(cell["seed"])] = cell["metrics"]
    base = by_row.get(base_row, {})
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        seeds = by_row.get(row, {})
        if not seeds:
            continue
        metrics = sorted({k for m in seeds.values() for k in m})
        summary = {k: _stats([m.get(k, float("nan")) for m in seeds.values()]) for k in metrics}
        for suffix, key in (("", "auc"), *((f"_{s}", f"auc_{s}") for s in SLICES)):
            gains = [
                rela_impr(m[key], base[s][key])
                for s, m in seeds.items()
                if s in base
                and not math.isnan(m.get(key, math.nan))
                and not math.isnan(base[s].get(key, math.nan))
            ]
            summary[f"rela_impr{suffix}"] = _stats(gains)
        cell_list = [c for c in cells.values() if c["row"] == row]
        summary["train_seconds"] = _stats([c["train_seconds"] for c in cell_list])
        summary["eval_seconds"] = _stats([c["eval_seconds"] for c in cell_list])
        out[row] = summary
    return out


PARTS = (
    ("cold-start mining", "V2 - cold-start mining"),
    ("debias", "V2 - debias"),
    ("distilled encoder", "V2 - distilled encoder"),
)
PART_METRICS = (
    "auc",
    "gauc",
    "coarse_auc",
    "coarse_ndcg10",
    "auc_new",
    "low_gauc",
    "irrelevant10",
    "rel_ndcg10",
)


def part_effects(cells: dict[str, dict[str, Any]], full_row: str = "PRECTR-V2") -> dict[str, dict[str, Any]]:
    """What each V2 part adds: V2 minus the ablation without it, paired by seed (mean ± std of differences)."""
    by_row: dict[str, dict[int, dict[str, float]]] = {}
    for cell in cells.values():
        by_row.setdefault(cell["row"], {})[int(cell["seed"])] = cell["metrics"]
    full = by_row.get(full_row, {})
    out: dict[str, dict[str, Any]] = {}
    for part, ablation in PARTS:
        other = by_row.get(ablation, {})
        seeds = sorted(set(full) & set(other))
        if seeds:
            out[part] = {
                m: _stats([full[s].get(m, math.nan) - other[s].get(m, math.nan) for s in seeds])
                for m in PART_METRICS
            }
    return out
