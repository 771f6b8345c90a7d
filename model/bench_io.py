"""Benchmark state on disk: the results JSON (atomic writes, resume checks) and the student checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model.config import config_hash


class BenchError(ValueError):
    """Bad benchmark input (unknown profile/row, results of another run in the output folder)."""


def load_previous(path: Path, identity: dict[str, Any], restart: bool) -> dict[str, Any]:
    """The previous payload of the same run (cells, data stats, timings), or {} for a fresh start."""
    if restart or not path.is_file():
        return {}
    prev = json.loads(path.read_text())
    mismatch = [k for k, v in identity.items() if prev.get(k) != v]
    if mismatch:
        raise BenchError(
            f"{path} holds results of another run (different {', '.join(mismatch)}); "
            "pass --restart to discard them or choose another --out"
        )
    return prev


def write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, allow_nan=True) + "\n")
    tmp.replace(path)


def check_cells(
    cells: dict[str, Any], specs: dict[tuple[str, int], Any], json_path: Path, student: str
) -> None:
    """A finished cell is reused only under the exact config (and student checkpoint) it was trained with."""
    for key, cell in cells.items():
        spec = specs.get((cell["row"], cell["seed"]))
        if spec is None:
            continue
        if cell.get("spec_hash") != config_hash(spec):
            raise BenchError(
                f"{json_path}: cell {key} was trained with another config; pass --restart to discard old results"
            )
        if spec.encoder == "student" and cell.get("student") != student:
            raise BenchError(
                f"{json_path}: cell {key} was trained with another student checkpoint; pass --restart or the same "
                "--student"
            )


def student_id(student_dir: Path | None) -> str:
    if student_dir is None:
        return ""
    from features.bundle import sha256_file

    return sha256_file(Path(student_dir) / "encoder.safetensors")[:16]


def load_student_or_fail(student_dir: Path | None) -> Any:
    if student_dir is None:
        raise BenchError(
            "the V2 rows need the distilled student: pass --student DIR (from `prectr encoder distill`) "
            "or select rows without it with --row"
        )
    from model.student import load_student

    return load_student(student_dir)
