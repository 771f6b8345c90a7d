"""Request limits from settings (422) and admission control (429) before any work is queued.

Admission predicts the request's completion from the rows ahead of it in each batcher (queued, or held by
requests admitted earlier that are still tokenising) times that batcher's measured per-row cost, plus its
own rows; if that cannot finish inside the remaining
budget, the request is refused at once with ``Retry-After`` (how long the queues need to drain), instead
of queueing only to time out and take accelerator time from requests that could still make it.
"""

from __future__ import annotations

import asyncio

from features.normalize import normalize_query
from service.errors import BadRequest, Overloaded
from service.runtime import ModelRuntime
from service.schemas import ScoreRequest
from service.settings import ServerSettings


def check_limits(req: ScoreRequest, server: ServerSettings) -> str:
    """Configured limits (tighter than the schema's hard caps); returns the normalised query."""
    if len(req.candidates) > server.max_candidates:
        raise BadRequest(
            "candidates", f"{len(req.candidates)} candidates exceed the limit of {server.max_candidates}"
        )
    if len(req.query) > server.max_query_chars:
        raise BadRequest("query", f"longer than {server.max_query_chars} characters")
    for i, cand in enumerate(req.candidates):
        if len(cand["title"]) > server.max_title_chars:
            raise BadRequest(f"candidates.{i}.title", f"longer than {server.max_title_chars} characters")
    query_norm = normalize_query(req.query)
    if not query_norm:
        raise BadRequest("query", "no searchable characters after normalisation")
    return query_norm


class CompletionCalibration:
    """How much longer admitted requests really take than admission predicted, learnt as they finish.

    The prediction covers the batchers' queues; the rest (the event loop's own work under load, the
    head's inputs, the answer) and the cost model's error are not in it, and they grow at saturation,
    where an uncalibrated prediction admits requests that then time out (504) instead of refusing them at
    once (429). An EWMA of (actual - predicted) seconds, never below 0, is added to later predictions.
    Requests that completed and requests whose deadline expired are observed (an expiry's time is a lower
    bound of what it would have taken); failures and disconnects are not.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.offset_s = 0.0

    def observe(self, predicted_s: float, actual_s: float) -> None:
        self.offset_s += self.alpha * (max(0.0, actual_s - predicted_s) - self.offset_s)


def admit(
    rt: ModelRuntime,
    misses: int,
    rows: int,
    deadline: float,
    fixed_s: float = 0.0,
    calibration: CompletionCalibration | None = None,
) -> float:
    """Raise :class:`Overloaded` (queue_full | deadline_predicted) for work that cannot finish in time;
    return the predicted seconds to completion (before calibration) for :meth:`CompletionCalibration.observe`.

    ``fixed_s`` is time spent before the batchers (the preference lookup deadline). With both batchers
    idle a request is always admitted: nothing queued means the estimate has no queue to be wrong about,
    and its batches re-measure the per-row cost, so a cost inflated by a past burst cannot refuse every
    request for ever. The caller counts the shed reason.
    """
    enc, head = rt.encoder, rt.head
    drain_s = enc.predicted_wait_s(0) + head.predicted_wait_s(0)
    if (misses and not enc.has_room(misses)) or not head.has_room(rows):
        raise Overloaded("queue full", reason="queue_full", retry_after_s=drain_s)
    predicted = fixed_s + head.predicted_wait_s(rows) + (enc.predicted_wait_s(misses) if misses else 0.0)
    expected = predicted + (calibration.offset_s if calibration else 0.0)
    remaining = deadline - asyncio.get_running_loop().time()
    if expected > remaining and not (enc.idle and head.idle):
        raise Overloaded(
            f"predicted completion {expected * 1000:.0f} ms exceeds the remaining budget "
            f"{max(remaining, 0) * 1000:.0f} ms",
            reason="deadline_predicted",
            retry_after_s=drain_s,
        )
    return predicted
