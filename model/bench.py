"""``prectr bench-model``: every row of METHOD.md §5 x seeds, resumable, written to reports/.

The data, point-in-time features and text inputs are built once; each (row, seed) cell then trains,
evaluates, saves a checkpoint (with its resolved config) and is appended to ``model_benchmark.json``
atomically. A re-run skips finished cells of the same data + profile + code config; a different one is
refused unless ``restart`` is set, so a table never mixes runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.bench_cells import Status, run_cell, setup_inputs, table_buckets, work_rows
from model.bench_config import BASE_ROW, PROFILES, ROWS, Row, row_spec
from model.bench_io import (
    BenchError,
    check_cells,
    load_previous,
    load_student_or_fail,
    student_id,
    write_json,
)
from model.config import config_dict, config_hash

__all__ = ["BenchError", "BenchPlan", "run_bench"]

FORMAT = "prectr-bench/1"
JSON_NAME = "model_benchmark.json"


@dataclass
class BenchPlan:
    data_dir: Path
    profile: str
    seeds: tuple[int, ...]
    out_dir: Path
    ckpt_dir: Path
    student_dir: Path | None = None
    rows: tuple[str, ...] = tuple(r.name for r in ROWS)
    restart: bool = False
    threads: int = 2
    minilm_cache: Path | None = None
    json_name: str = JSON_NAME
    report: bool = True  # markdown + plots (off for `prectr train`)


def _rows(names: tuple[str, ...]) -> list[Row]:
    known = {r.name: r for r in ROWS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BenchError(f"unknown rows {unknown}; known rows: {list(known)}")
    return [known[n] for n in names]


Progress = Callable[[str, int], Callable[[int], None]]


def _rel_dim(row: Row, profile: Any, student: Any) -> int:
    """The student's rel_dim for student rows, the frozen-embedding RSL's otherwise."""
    return int(student.model.cfg.rel_dim) if row.encoder == "student" else profile.rsl.rel_dim


def run_bench(plan: BenchPlan, progress: Progress | None = None, status: Status | None = None) -> dict:
    """Run (or resume) the benchmark of ``plan``; returns the JSON payload also written to disk."""
    import torch

    from model.bench_summary import summarise
    from model.report import write_report
    from model.tables import read_meta

    say = status or (lambda _msg: None)
    if plan.profile not in PROFILES:
        raise BenchError(f"unknown profile {plan.profile!r}; choose one of {list(PROFILES)}")
    if not plan.seeds:
        raise BenchError("need at least one seed")
    rows, profile = _rows(plan.rows), PROFILES[plan.profile]
    started = time.perf_counter()
    torch.set_num_threads(plan.threads)
    meta = read_meta(plan.data_dir)
    student = load_student_or_fail(plan.student_dir) if any(r.encoder == "student" for r in rows) else None
    sid = student_id(plan.student_dir) if student is not None else ""
    buckets = table_buckets(meta.root)
    specs = {
        (r.name, s): row_spec(r, profile, s, buckets, _rel_dim(r, profile, student))
        for r in rows
        for s in plan.seeds
    }
    identity = {
        "format": FORMAT,
        "profile": plan.profile,
        "data_fingerprint": meta.fingerprint,
        "config_hash": config_hash(profile),
    }
    json_path = plan.out_dir / plan.json_name
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    previous = load_previous(json_path, identity, plan.restart)
    cells: dict[str, Any] = previous.get("cells", {})
    check_cells(cells, specs, json_path, sid)
    todo = [(r, s) for r in rows for s in plan.seeds if f"{r.name}|{s}" not in cells]
    payload: dict[str, Any] = {**previous, **identity, "profile_config": config_dict(profile), "cells": cells}
    invocations = [
        *previous.get("invocations", []),
        {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "cells": len(todo)},
    ]
    say(f"{len(cells)} finished cells reused, {len(todo)} to run")
    if todo:
        data, text = setup_inputs(plan, meta, profile, rows, todo, student, payload, say)
        for r, seed in todo:
            label = f"{r.name} · seed {seed}"
            advance = (
                progress(label, work_rows(specs[(r.name, seed)], data)) if progress else (lambda n: None)
            )
            cell = run_cell(specs[(r.name, seed)], data, text, plan, meta.fingerprint, advance)
            cells[f"{r.name}|{seed}"] = cell | ({"student": sid} if r.encoder == "student" else {})
            write_json(json_path, payload)
    invocations[-1]["wall_seconds"] = time.perf_counter() - started
    payload |= {
        "invocations": invocations,
        "wall_seconds_this_run": invocations[-1]["wall_seconds"],
        "machine": {"cpus": os.cpu_count(), "torch_threads": plan.threads},
        "base_row": BASE_ROW,
        "rows": [r.name for r in rows],
        "seeds": list(plan.seeds),
        "summary": summarise(cells, [r.name for r in rows], BASE_ROW),
    }
    write_json(json_path, payload)
    if plan.report:
        write_report(payload, plan.out_dir)
    return payload
