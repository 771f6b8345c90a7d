"""The report's PNG: latency percentiles, throughput and users, errors and degraded answers, stage latency."""

from __future__ import annotations

import math
from pathlib import Path

from loadtest.locust_csv import LocustRun
from loadtest.service_view import ServiceView


def render_png(
    run: LocustRun, view: ServiceView | None, path: Path, title: str, max_p99_ms: float | None
) -> None:
    """Four panels; the p99 SLO (when given) is drawn on the latency panel so a breach is visible at a glance."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on CI or load-generator hosts
    import matplotlib.pyplot as plt

    h = run.history
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    fig.suptitle(title)

    ax = axes[0][0]
    for series, label in ((h.p50, "p50"), (h.p95, "p95"), (h.p99, "p99")):
        ax.plot(h.t, series, label=label)
    if max_p99_ms is not None:
        ax.axhline(max_p99_ms, color="red", linestyle="--", linewidth=1, label=f"p99 SLO {max_p99_ms:g} ms")
    ax.set(title="POST /score latency (client, 10 s window)", xlabel="s", ylabel="ms")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")

    ax = axes[0][1]
    ax.plot(h.t, h.rps, label="requests/s", color="tab:blue")
    ax.set(title="throughput and users", xlabel="s", ylabel="requests/s")
    ax.set_ylim(bottom=0)
    users = ax.twinx()
    users.step(h.t, h.users, where="post", color="tab:gray", linestyle=":", label="users")
    users.set_ylabel("users")
    users.set_ylim(bottom=0, top=max(h.users, default=1) * 1.2 + 1)
    ax.legend(loc="upper left")
    users.legend(loc="upper right")

    ax = axes[1][0]
    ax.plot(h.t, h.fail_rps, label="failures/s", color="tab:red")
    ax.plot(h.t, h.degraded_rps, label="degraded/s", color="tab:orange")
    ax.set(
        title=f"failures ({run.score.failures}) and degraded ({sum(run.degraded.values())})",
        xlabel="s",
        ylabel="per second",
    )
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")

    _stage_panel(axes[1][1], run, view)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _stage_panel(ax, run: LocustRun, view: ServiceView | None) -> None:  # type: ignore[no-untyped-def]
    """Stage p50/p99: the service's histograms when scraped, else the client's Server-Timing rows."""
    if view is not None and view.stages:
        source = "service histograms"
        stages = {s: (q.p50_ms, q.p99_ms) for s, q in view.stages.items() if q.count > 0}
    else:
        source = "Server-Timing"
        stages = {s: (r.p50, r.p99) for s, r in run.stages.items()}
    names = list(stages)
    xs = range(len(names))
    p50 = [0.0 if math.isnan(stages[n][0]) else stages[n][0] for n in names]
    p99 = [0.0 if math.isnan(stages[n][1]) else stages[n][1] for n in names]
    ax.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], p99, width=0.4, label="p99")
    ax.set_xticks(list(xs), names)
    ax.set(title=f"stage latency ({source})", ylabel="ms")
    ax.legend(loc="upper left")
