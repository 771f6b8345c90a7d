"""Turn a locust run (CSV) and the service's ``/metrics`` into ``report.md`` + ``report.png``, gated on SLOs.

    python -m loadtest.report --csv-prefix artifacts/loadtest/run/locust \\
        --metrics-before artifacts/loadtest/run/metrics_before.prom \\
        --metrics-after artifacts/loadtest/run/metrics_after.prom --max-error-rate 0.01 --max-p99-ms 250

Exit status: 0 when every given SLO holds, 1 when one is broken, 2 when the inputs are unusable.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from loadtest.locust_csv import LocustRun, read_locust_csv
from loadtest.plot import render_png
from loadtest.promtext import Scrape
from loadtest.service_view import ServiceView, service_view


@dataclass(frozen=True)
class SloResult:
    name: str
    limit: str
    measured: str
    ok: bool


def check_slos(
    run: LocustRun,
    max_error_rate: float | None,
    max_p99_ms: float | None,
    max_degraded_rate: float | None = None,
) -> list[SloResult]:
    """Client-side SLOs over the ``POST /score`` row (failures include sheds: the caller saw no scores)."""
    n = max(run.score.requests, 1)
    out = []
    if max_error_rate is not None:
        rate = run.score.failures / n
        out.append(SloResult("error rate", f"<= {max_error_rate:.2%}", f"{rate:.2%}", rate <= max_error_rate))
    if max_p99_ms is not None:
        p99 = run.score.p99
        out.append(
            SloResult(
                "p99 latency",
                f"<= {max_p99_ms:g} ms",
                f"{p99:g} ms",
                not math.isnan(p99) and p99 <= max_p99_ms,
            )
        )
    if max_degraded_rate is not None:
        rate = sum(run.degraded.values()) / n
        out.append(
            SloResult(
                "degraded rate", f"<= {max_degraded_rate:.2%}", f"{rate:.2%}", rate <= max_degraded_rate
            )
        )
    return out


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _counts(title: str, counts: dict[str, float]) -> list[str]:
    if not counts:
        return []
    return [
        f"**{title}:** " + ", ".join(f"{k} {v:g}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    ]


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2%}"


def _service_md(run: LocustRun, view: ServiceView) -> list[str]:
    m = view.model
    lines = [
        "## Service view (/metrics, increase over the run)",
        "",
        f"Model `{m.get('version', '?')}` on `{m.get('provider', '?')}` ({m.get('variant', '?')}). "
        f"2xx `/score` answers within 250 ms: {_pct(view.score_within_slo)}. "
        "Service quantiles are estimated from histogram buckets, as PromQL does; locust rounds client "
        "times to whole ms, so sub-millisecond stages read 0 on the client side.",
        "",
    ]
    if view.requests:
        lines += ["| route | status | requests | p50 ms | p99 ms |", "|---|---|---:|---:|---:|"]
        lines += [
            f"| {k.split(' ')[0]} | {k.split(' ')[1]} | {q.count:g} | {_fmt(q.p50_ms)} | {_fmt(q.p99_ms)} |"
            for k, q in view.requests.items()
        ]
        lines.append("")
    lines += [
        "| stage | client p50 ms (Server-Timing) | client p99 ms | service p50 ms | service p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for stage in dict.fromkeys([*view.stages, *run.stages]):
        c, s = run.stages.get(stage), view.stages.get(stage)
        lines.append(
            f"| {stage} | {_fmt(c.p50) if c else 'n/a'} | {_fmt(c.p99) if c else 'n/a'} | "
            f"{_fmt(s.p50_ms) if s else 'n/a'} | {_fmt(s.p99_ms) if s else 'n/a'} |"
        )
    lines += [
        "",
        *(
            f"Batch rows `{g}`: p50 {_fmt(q.p50_ms)}, p99 {_fmt(q.p99_ms)} over {q.count:g} batches."
            for g, q in view.batch_rows.items()
            if q.count
        ),
    ]
    lines += [
        f"Relevance cache hit ratio: {_pct(view.cache_hit_ratio)} "
        f"({view.cache.get('hit', 0):g} hits, {view.cache.get('miss', 0):g} misses).",
        "",
    ]
    for title, counts in (
        ("Shed", view.shed),
        ("Degraded", view.degraded),
        ("Errors", view.errors),
        ("Preference lookups", view.preferences),
    ):
        lines += _counts(title, {k: v for k, v in counts.items() if v})
    return lines


def render_markdown(run: LocustRun, view: ServiceView | None, slos: list[SloResult], title: str) -> str:
    s = run.score
    n = max(s.requests, 1)
    h = run.history
    lines = [f"# Load test: {title}", ""]
    if slos:
        lines += ["| SLO | limit | measured | verdict |", "|---|---|---|---|"]
        lines += [f"| {r.name} | {r.limit} | {r.measured} | {'pass' if r.ok else '**FAIL**'} |" for r in slos]
        lines.append("")
    lines += [
        "## Client view (locust, POST /score)",
        "",
        f"{_fmt(h.t[-1] if h.t else math.nan, 0)} s, up to {_fmt(max(h.users, default=math.nan), 0)} users.",
        "",
        "| requests | failures | error rate | req/s | p50 ms | p90 ms | p99 ms | max ms | degraded |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s.requests} | {s.failures} | {s.failures / n:.2%} | {_fmt(s.rps)} | {_fmt(s.p50, 0)} | "
        f"{_fmt(s.p90, 0)} | {_fmt(s.p99, 0)} | {_fmt(s.max, 0)} | {sum(run.degraded.values())} "
        f"({sum(run.degraded.values()) / n:.2%}) |",
        "",
    ]
    lines += _counts("Degraded by reason", {k: float(v) for k, v in run.degraded.items()})
    if run.failures:
        lines += ["", "| failure | count |", "|---|---:|", *(f"| {e} | {c} |" for e, c in run.failures)]
    lines.append("")
    if view is not None:
        lines += _service_md(run, view)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Locust CSVs + /metrics scrapes -> report.md, report.png, SLO gate."
    )
    ap.add_argument("--csv-prefix", required=True, help="the --csv prefix given to locust")
    ap.add_argument("--metrics-before", type=Path, help="/metrics text scraped before the run")
    ap.add_argument("--metrics-after", type=Path, help="/metrics text scraped after the run")
    ap.add_argument(
        "--out-dir", type=Path, help="where report.md and report.png go (default: next to the CSVs)"
    )
    ap.add_argument("--title", default="prectr POST /score")
    ap.add_argument("--max-error-rate", type=float, help="fraction, e.g. 0.01 for 1 %")
    ap.add_argument("--max-p99-ms", type=float, help="client-side p99 of POST /score")
    ap.add_argument("--max-degraded-rate", type=float, help="fraction of answers marked degraded")
    args = ap.parse_args(argv)
    try:
        run = read_locust_csv(args.csv_prefix)
        view = None
        if args.metrics_after is not None:
            before = Scrape.parse(args.metrics_before.read_text()) if args.metrics_before else None
            view = service_view(Scrape.parse(args.metrics_after.read_text()), before)
    except (OSError, ValueError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    slos = check_slos(run, args.max_error_rate, args.max_p99_ms, args.max_degraded_rate)
    out_dir = args.out_dir or Path(args.csv_prefix).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(render_markdown(run, view, slos, args.title))
    render_png(run, view, out_dir / "report.png", args.title, args.max_p99_ms)
    print(f"report: wrote {out_dir / 'report.md'} and {out_dir / 'report.png'}")
    for r in slos:
        print(f"report: {r.name} {r.measured} (limit {r.limit}): {'pass' if r.ok else 'FAIL'}")
    return 0 if all(r.ok for r in slos) else 1


if __name__ == "__main__":
    raise SystemExit(main())
