"""PNG plots of the benchmark (matplotlib, Agg backend): metrics with error bars, gains by user slice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PANELS = (
    ("auc", "AUC"),
    ("gauc", "GAUC"),
    ("coarse_auc", "Coarse AUC"),
    ("coarse_ndcg10", "Coarse NDCG@10"),
    ("low_gauc", "Low-active GAUC"),
    ("rel_ndcg10", "Relevance NDCG@10"),
    ("irrelevant10", "Irrelevant@10"),
    ("rela_impr", "RelaImpr vs Wide&Deep"),
)
SLICES = ("new", "low", "active")


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(payload: dict[str, Any], key: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    rows = [r for r in payload["rows"] if r in payload["summary"]]
    stats = [payload["summary"][r].get(key, {"mean": np.nan, "std": 0.0}) for r in rows]
    return rows, np.array([s["mean"] for s in stats]), np.array([s["std"] for s in stats])


def plot_metrics(payload: dict[str, Any], path: Path) -> Path:
    """One horizontal bar panel per table metric, error bars = std over seeds."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(18, 7.5), sharey=True)
    for ax, (key, title) in zip(axes.flat, PANELS, strict=True):
        rows, mean, std = _series(payload, key)
        y = np.arange(len(rows))
        colors = ["#4c72b0" if r in ("LR", "DNN", "Wide&Deep", "DeepFM", "DIN") else "#dd8452" for r in rows]
        ax.barh(y, np.nan_to_num(mean), xerr=std, color=colors, capsize=3)
        finite = mean[np.isfinite(mean)]
        if finite.size and key != "rela_impr":
            lo, hi = finite.min(), finite.max()
            pad = max(1e-3, 0.15 * (hi - lo))
            ax.set_xlim(max(0.0, lo - 3 * pad), min(1.0, hi + 2 * pad))
        ax.set_yticks(y, rows)
        ax.invert_yaxis()
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Model benchmark ({payload['profile']} profile, {len(payload['seeds'])} seeds, mean ± std)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_slices(payload: dict[str, Any], path: Path) -> Path:
    """AUC gain over Wide&Deep (RelaImpr) per user-activity slice: new / low-active / active."""
    plt = _pyplot()
    rows = [r for r in payload["rows"] if r in payload["summary"] and r != payload.get("base_row")]
    fig, ax = plt.subplots(figsize=(13, 4.8))
    width = 0.8 / len(SLICES)
    x = np.arange(len(rows))
    for i, seg in enumerate(SLICES):
        stats = [payload["summary"][r].get(f"rela_impr_{seg}", {"mean": np.nan, "std": 0.0}) for r in rows]
        mean = 100 * np.array([s["mean"] for s in stats])
        std = 100 * np.array([s["std"] for s in stats])
        ax.bar(x + (i - 1) * width, np.nan_to_num(mean), width, yerr=std, capsize=2, label=f"{seg} users")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, rows, rotation=25, ha="right")
    ax.set_ylabel("AUC RelaImpr vs Wide&Deep (%)")
    ax.set_title("Gains by user-activity slice (test day; mean ± std over seeds)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
