"""One benchmark invocation's shared setup and one (row, seed) cell: train, evaluate, checkpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from model.bench_config import PROFILES, Row, buckets_for
from model.config import config_hash

Status = Callable[[str], None]


def table_buckets(root: Path) -> dict[str, int]:
    """Hash table sizes from the number of users, items and queries of a data build."""
    from model.tables import read_table

    count = lambda t, c: len(read_table(root, t, (c,))[c])  # noqa: E731
    return buckets_for(count("users", "user_id"), count("items", "item_id"), count("queries", "query_id"))


def setup_inputs(
    plan: Any,
    meta: Any,
    profile: Any,
    rows: list[Row],
    todo: list,
    student: Any,
    payload: dict[str, Any],
    say: Status,
) -> tuple[Any, Any]:
    """Views, text inputs and encoder timings, once per invocation; timings go into ``payload``."""
    from model.bench_latency import measure_encoders
    from model.dataset import load_dataset
    from model.text_inputs import build_text_inputs

    say(f"loading {meta.root} (point-in-time preferences for each training day)")
    t0 = time.perf_counter()
    data = load_dataset(meta.root, profile.view, table_buckets(meta.root))  # same sizes as the specs
    setup = {"dataset": time.perf_counter() - t0}
    need_minilm = any(r.encoder == "minilm_frozen" for r, _ in todo)
    say(
        f"text inputs for {len(data.pairs)} pairs: lexical"
        + (", MiniLM" if need_minilm else "")
        + (", student" if student is not None else "")
    )
    text = build_text_inputs(data, need_minilm=need_minilm, student=student, minilm_cache=plan.minilm_cache)
    payload["setup_seconds"] = setup | text.seconds
    payload["data"] = {"dir": str(meta.root), "source": meta.raw.get("source"), **data.stats}
    if "encoder_ms_per_200" not in payload:
        say("timing the encoders (one query x 200 candidates)")
        payload["encoder_ms_per_200"] = measure_encoders(data, {r.encoder for r in rows}, student)
    return data, text


def run_cell(spec: Any, data: Any, text: Any, plan: Any, fingerprint: str, advance: Any) -> dict[str, Any]:
    """Train, evaluate and checkpoint one (row, seed) cell."""
    from model.checkpoint import save_checkpoint
    from model.evaluate import evaluate
    from model.train import build_model, fit

    model = build_model(spec, text)
    log = fit(model, data, text, advance)
    t0 = time.perf_counter()
    metrics = evaluate(model, data, text)
    eval_s = time.perf_counter() - t0
    getattr(advance, "finish", lambda: None)()
    view = asdict(PROFILES[plan.profile].view)  # export re-measures the test metrics on this same view
    ckpt = save_checkpoint(
        model, plan.ckpt_dir / slug(spec.name, spec.train.seed), fingerprint, metrics, view
    )
    return {
        "row": spec.name,
        "seed": spec.train.seed,
        "metrics": metrics,
        "train_seconds": log.seconds,
        "eval_seconds": eval_s,
        "steps": log.steps,
        "e2e_steps": log.e2e_steps,
        "bce_curve": log.bce,
        "rsl_loss": log.rsl_loss,
        "valid_auc": log.valid_auc,
        "best_epoch": log.best_epoch,
        "e2e_valid_auc": log.e2e_valid_auc,
        "e2e_kept": log.e2e_kept,
        "checkpoint": str(ckpt),
        "spec_hash": config_hash(spec),
    }


def work_rows(spec: Any, data: Any) -> int:
    """Rows a cell's training loops process at most (the progress bar's total; early stopping ends sooner)."""
    rows = int(spec.train.epochs * len(data.views["train"]) * (1 - spec.train.valid_share))
    if spec.encoder == "minilm_frozen":
        rows += spec.train.rsl_epochs * len(data.rel_train.pair)
    if spec.encoder == "student":
        rows += spec.train.e2e_steps * spec.train.batch_size
    return rows


def slug(name: str, seed: int) -> str:
    clean = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"{'-'.join(p for p in clean.split('-') if p)}-s{seed}"
