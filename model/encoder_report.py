"""``reports/encoder_benchmark.{md,json}``: the encoder table plus how it was produced and what it cost."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HEADER = "| model | params | accuracy | macro-F1 | NDCG@10 | ms / 200 pairs | forward ms / 200 | notes |"


def _row(m: dict[str, Any]) -> str:
    params = f"{m['parameters'] / 1e6:.2f}M" if m["parameters"] else "—"
    return (
        f"| {m['name']} | {params} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | {m['ndcg_at_10']:.3f} "
        f"| {m['ms_per_200']:.1f} | {m['forward_ms_per_200']:.1f} | {m['notes'].replace('|', '/')} |"
    )


def _read_json(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def write_encoder_report(
    result: dict[str, Any], out_dir: Path, command: str, student_dir: Path, teacher_dir: Path | None
) -> tuple[Path, Path]:
    """Write markdown + JSON; training summaries found beside the checkpoints are included."""
    out_dir.mkdir(parents=True, exist_ok=True)
    distill = _read_json(student_dir / "distill_summary.json")
    teacher = _read_json(teacher_dir / "teacher_summary.json") if teacher_dir is not None else None
    result = {
        **result,
        "command": command,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "training": {"teacher": teacher, "student": distill},
    }
    json_path = out_dir / "encoder_benchmark.json"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    d = result["data"]
    lines = [
        "# Relevance encoders: student vs teacher vs baselines",
        "",
        f"Data: `{d['source']}` / `{d['profile']}` (fingerprint `{d['fingerprint'][:12]}`), held-out TEST-split "
        f"queries: {d['test_queries']} queries, {d['test_pairs']} labelled pairs (levels 0..3: "
        f"{d['test_level_counts']}).",
        "",
        HEADER,
        "|" + "---|" * 8,
        *(_row(m) for m in result["models"]),
        "",
        "Accuracy / macro-F1: argmax level. NDCG@10: per query, ranking its labelled pairs by expected level "
        "(BM25: by score), gains 2^level − 1. Latency: one query × 200 catalogue titles, torch eager on CPU, "
        f"{result['models'][0]['threads'] if result['models'] else '?'} threads, median of "
        f"{result['models'][0]['repeats'] if result['models'] else '?'} runs; 'ms / 200' includes tokenisation. "
        f"The machine is shared: 1-minute load average {result['load_average_1min']['start']} at the start and "
        f"{result['load_average_1min']['end']} at the end on {result['machine']['cpus']} CPUs; with other work "
        "running, multi-threaded torch timings are inflated several-fold.",
    ]
    if teacher or distill:
        lines += ["", "## Training cost", ""]
    if teacher:
        lines.append(
            f"- teacher: {teacher['train_pairs']} train pairs, {teacher['train_seconds']} s "
            f"({teacher['train_pairs_per_second']} pairs/s), valid macro-F1 {teacher['valid']['macro_f1']:.3f}"
        )
    if distill:
        soft_pairs = (distill["soft_labels"] or {}).get("pairs", 0)
        after = distill["valid_macro_f1_after_distill"]
        lines.append(
            f"- student: {distill['parameters']:,} parameters, {soft_pairs} soft-label pairs + "
            f"{distill['sft_pairs']} SFT pairs, {distill['train_seconds']} s, valid macro-F1 after distillation "
            f"{'—' if after is None else f'{after:.3f}'}, final {distill['valid_macro_f1']:.3f} "
            f"(SFT kept: {distill['sft_kept']})"
        )
    lines += ["", f"Produced by: `{command}`", ""]
    md_path = out_dir / "encoder_benchmark.md"
    md_path.write_text("\n".join(lines))
    return md_path, json_path
