"""What a correct ``POST /score`` answer looks like from the client's side (pure: unit-tested without locust).

Failure messages are low-cardinality on purpose (``HTTP 429 overloaded``, ``results: 120 for 200
candidates``): locust groups failures by message, and one row per request id would make the report useless.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

STAGES = ("features", "prefs", "queue", "encoder", "head", "total")
_TIMING = re.compile(r"\s*([A-Za-z0-9_\-]+)\s*(?:;[^,]*?dur=([0-9.eE+\-]+))?[^,]*")


@dataclass(frozen=True)
class Verdict:
    """``error`` is None for a correct answer; ``degraded`` lists the service's reasons (success, counted apart)."""

    error: str | None
    degraded: tuple[str, ...] = ()
    stages_ms: dict[str, float] = field(default_factory=dict)


def parse_server_timing(header: str | None) -> dict[str, float]:
    """``features;dur=1.2, prefs;dur=0.4`` -> ``{"features": 1.2, "prefs": 0.4}``; entries without dur skipped."""
    out: dict[str, float] = {}
    for part in (header or "").split(","):
        m = _TIMING.fullmatch(part)
        if m and m.group(2) is not None:
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                continue
    return out


def _error_code(body: bytes) -> str:
    try:
        err = orjson.loads(body).get("error", {})
        return str(err.get("code", "")) if isinstance(err, dict) else ""
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return ""


def _finite01(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and 0.0 <= x <= 1.0


def _check_item(item: Any, n_levels: int) -> str | None:
    if not isinstance(item, dict):
        return "results: entry is not an object"
    for key in ("score", "p_click"):
        if not _finite01(item.get(key)):
            return f"results: {key} missing or outside [0, 1]"
    p_level = item.get("p_level")
    if not isinstance(p_level, list) or len(p_level) != n_levels or not all(_finite01(p) for p in p_level):
        return f"results: p_level is not {n_levels} probabilities"
    if abs(sum(p_level) - 1.0) > 1e-3:
        return "results: p_level does not sum to 1"
    level = item.get("expected_level")
    if not isinstance(level, int | float) or not -1e-6 <= level <= n_levels - 1 + 1e-6:
        return "results: expected_level outside [0, K-1]"
    incentive = item.get("incentive")
    if not isinstance(incentive, int | float) or not math.isfinite(incentive):
        return "results: incentive missing or not finite"
    return None


def _check_results(payload: dict[str, Any], doc: dict[str, Any]) -> str | None:
    results, sent = doc.get("results"), [c["item_id"] for c in payload["candidates"]]
    top_k = payload.get("top_k")
    expected = min(top_k, len(sent)) if top_k else len(sent)
    if not isinstance(results, list):
        return "results is not a list"
    if len(results) != expected:
        return "results: wrong count (expected one score per candidate, or top_k)"
    n_levels = len(doc.get("level_names") or ()) or 4
    sent_ids, seen = set(sent), set()
    for item in results:
        problem = _check_item(item, n_levels)
        if problem:
            return problem
        if item.get("item_id") not in sent_ids or item["item_id"] in seen:
            return "results: item_id unknown or repeated"
        seen.add(item["item_id"])
    scores = [r["score"] for r in results]
    if payload.get("sort", True) and any(a < b for a, b in itertools.pairwise(scores)):
        return "results: not sorted by score"
    return None


def check_score_response(
    payload: dict[str, Any], status: int, body: bytes | None, server_timing: str | None
) -> Verdict:
    """Judge one answer to ``payload``: HTTP status, schema, one score per candidate, stage timings."""
    if status == 0:
        return Verdict("connection error")
    if status != 200:
        code = _error_code(body or b"")
        return Verdict(f"HTTP {status} {code}".rstrip())
    try:
        doc = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        return Verdict("body is not JSON")
    if not isinstance(doc, dict) or not isinstance(doc.get("model_version"), str):
        return Verdict("model_version missing")
    degraded = doc.get("degraded", [])
    if not isinstance(degraded, list) or not all(isinstance(d, str) for d in degraded):
        return Verdict("degraded is not a list of strings")
    if not isinstance(doc.get("timings"), dict):
        return Verdict("timings missing")
    problem = _check_results(payload, doc)
    if problem:
        return Verdict(problem)
    stages = parse_server_timing(server_timing)
    if "total" not in stages:
        return Verdict("Server-Timing header missing or without total")
    return Verdict(None, tuple(degraded), stages)
