"""Locust load test of ``POST /score`` (run it through ``loadtest/run.py`` / ``make loadtest``).

Besides the ``POST /score`` row, the CSV stats get two kinds of synthetic rows so the report can read them:
``STAGE <name>`` with the service's own ``Server-Timing`` durations per stage, and ``DEGRADED <reason>``
for answers that succeeded without full personalisation (counted apart from failures). Locust's
``Aggregated`` row therefore mixes everything: read the ``/score`` row for the client view.

    locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:8000 -u 8 -t 60s --shape step
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import orjson
from locust import FastHttpUser, LoadTestShape, events, task

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent)
)  # `locust -f` does not put the repo on the path

from loadtest.catalogue import open_catalogue
from loadtest.checks import check_score_response
from loadtest.payloads import CandidatePools, PayloadConfig, PayloadGenerator
from loadtest.shapes import SHAPES

_state: dict[str, Any] = {"pools": None}
_streams = itertools.count()


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("prectr", "payloads and load shape of the prectr load test")
    group.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="steady",
        help="steady | step | spike; sized by -u (peak users), -r and -t (duration, default 60s)",
    )
    group.add_argument("--steps", type=int, default=4, help="plateaus of the step shape")
    group.add_argument("--spike-base", type=float, default=0.25, help="spike shape: baseline share of -u")
    group.add_argument(
        "--data-dir", default="", help="prectr data dir (queries/items parquet); synthetic if empty"
    )
    group.add_argument("--payload-seed", type=int, default=0, help="seed of the payload streams")
    group.add_argument("--min-candidates", type=int, default=50)
    group.add_argument("--max-candidates", type=int, default=500)
    group.add_argument(
        "--new-user-share", type=float, default=0.1, help="share of requests from unknown users"
    )
    group.add_argument("--top-k", type=int, default=0, help="top_k in every request; 0 leaves it out")
    group.add_argument(
        "--budget-ms", type=float, default=0.0, help="budget_ms in every request; 0 leaves it out"
    )
    group.add_argument("--think-ms", type=float, default=0.0, help="pause between one user's requests")


@events.init.add_listener
def _build_pools(environment: Any, **_: Any) -> None:
    """Catalogue and candidate pools once per process, before any user starts (bad options fail here)."""
    opts = environment.parsed_options
    if opts is None:  # library use without a command line: tests set _state themselves
        return
    config = PayloadConfig(
        seed=opts.payload_seed,
        min_candidates=opts.min_candidates,
        max_candidates=opts.max_candidates,
        new_user_share=opts.new_user_share,
        top_k=opts.top_k or None,
        budget_ms=opts.budget_ms or None,
    )
    _state["pools"] = CandidatePools(open_catalogue(opts.data_dir or None, opts.payload_seed), config)


class ScoreUser(FastHttpUser):
    """A search backend calling ``/score`` back to back (closed loop; ``--think-ms`` adds a pause)."""

    connection_timeout = 5.0
    network_timeout = 30.0

    def wait_time(self) -> float:
        opts = self.environment.parsed_options
        return float(getattr(opts, "think_ms", 0.0) or 0.0) / 1000.0

    def on_start(self) -> None:
        self.generator = PayloadGenerator(_state["pools"], stream=next(_streams))

    @task
    def score(self) -> None:
        payload = self.generator.next_payload()
        headers = {"Content-Type": "application/json", "X-Request-ID": payload["request_id"]}
        body = orjson.dumps(payload)  # bytes go out as they are (the stubs only admit str)
        with self.client.post(
            "/score",
            data=body,  # type: ignore[arg-type]
            headers=headers,
            name="/score",
            catch_response=True,  # type: ignore[arg-type]
        ) as resp:
            verdict = check_score_response(
                payload,
                resp.status_code,
                resp.content,
                resp.headers.get("server-timing") if resp.headers else None,
            )
            if verdict.error is not None:
                resp.failure(verdict.error)
                return
            resp.success()
            elapsed_ms = resp.request_meta["response_time"]
        fire = self.environment.events.request.fire
        for stage, ms in verdict.stages_ms.items():
            fire(
                request_type="STAGE",
                name=stage,
                response_time=ms,
                response_length=0,
                exception=None,
                context={},
            )
        for reason in verdict.degraded:
            fire(
                request_type="DEGRADED",
                name=reason,
                response_time=elapsed_ms,
                response_length=0,
                exception=None,
                context={},
            )


class SelectedShape(LoadTestShape):
    """The shape named by ``--shape`` (locust allows one shape class per locustfile)."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options if self.runner else None
        shape = SHAPES[getattr(opts, "shape", "steady")]()
        shape.runner, shape.start_time = self.runner, self.start_time  # share the clock locust resets
        return shape.tick()
