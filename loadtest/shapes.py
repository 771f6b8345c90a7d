"""Locust load shapes steady, step and spike, sized by locust's own ``-u`` (peak users), ``-r`` and ``-t``.

The schedules live in :mod:`loadtest.schedules`. The locustfile exposes one shape, which delegates to the
class named by ``--shape``; these classes are not imported into its namespace, or locust would find three.
"""

from __future__ import annotations

from typing import ClassVar

from locust import LoadTestShape

from loadtest.schedules import Plan, Schedule, spike, steady, step

DEFAULT_DURATION_S = 60.0


class ConfiguredShape(LoadTestShape):
    """Reads peak users, spawn rate and duration from the common options (``use_common_options``)."""

    abstract = True
    use_common_options = True
    schedule: ClassVar[Schedule]

    def tick(self) -> Plan:
        opts = self.runner.environment.parsed_options if self.runner else None
        peak = max(1, int(getattr(opts, "num_users", None) or 1))
        rate = float(getattr(opts, "spawn_rate", None) or max(1.0, peak / 5))
        duration = float(getattr(opts, "run_time", None) or DEFAULT_DURATION_S)
        return type(self).schedule(
            self.get_run_time(),
            peak,
            rate,
            duration,
            steps=getattr(opts, "steps", 4),
            spike_base=getattr(opts, "spike_base", 0.25),
        )


class SteadyShape(ConfiguredShape):
    schedule = staticmethod(steady)


class StepShape(ConfiguredShape):
    schedule = staticmethod(step)


class SpikeShape(ConfiguredShape):
    schedule = staticmethod(spike)


SHAPES: dict[str, type[ConfiguredShape]] = {"steady": SteadyShape, "step": StepShape, "spike": SpikeShape}
