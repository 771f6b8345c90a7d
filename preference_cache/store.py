"""The interface every preference backend implements, and what a lookup returns.

A lookup never raises into the request: failures become ``None`` records (``features.prefs`` turns them
into the manifest defaults) plus an :class:`Outcome` per record, which the service counts (e.g. a
Prometheus counter passed in as an :data:`OutcomeCallback`) and turns into a ``degraded`` reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from features.prefs import QueryPref, UserPref

log = logging.getLogger(__name__)

RecordKind = Literal["query", "user"]


class Outcome(StrEnum):
    HIT = "hit"
    MISS = "miss"  # no record (new user, unseen query, or nothing published yet): normal, not degraded
    TIMEOUT = "timeout"  # the deadline passed
    ERROR = "error"  # connection / protocol error
    MALFORMED = "malformed"  # a stored value that does not decode

    @property
    def degraded(self) -> bool:
        return self in (Outcome.TIMEOUT, Outcome.ERROR, Outcome.MALFORMED)


OutcomeCallback = Callable[[RecordKind, Outcome], None]
"""Called once per record and lookup, e.g. ``lambda kind, o: counter.labels(kind, o.value).inc()``."""


@dataclass(frozen=True, slots=True)
class PrefLookup:
    """One request's preference records; ``None`` means "use defaults"."""

    qpref: QueryPref | None
    upref: UserPref | None
    query_outcome: Outcome
    user_outcome: Outcome
    namespace: str | None = None  # the published namespace read (None for misses before any publish)

    @property
    def degraded(self) -> bool:
        """True when defaults were used because of a failure (not merely a miss)."""
        return self.query_outcome.degraded or self.user_outcome.degraded

    @property
    def outcome(self) -> str:
        """One word for the pair: the failure if any, ``partial`` for one hit and one miss, else the common one."""
        pair = (self.query_outcome, self.user_outcome)
        failed = [o for o in pair if o.degraded]
        if failed:
            return failed[0].value
        return pair[0].value if pair[0] == pair[1] else "partial"

    @property
    def reasons(self) -> tuple[str, ...]:
        """Distinct failure outcomes, for the service's ``degraded`` list (e.g. ``("timeout",)``)."""
        return tuple(dict.fromkeys(o.value for o in (self.query_outcome, self.user_outcome) if o.degraded))


@runtime_checkable
class PreferenceStore(Protocol):
    """Redis, Redis Cluster and the in-process store all look the same to the service."""

    async def lookup(self, query: str, user_id: str) -> PrefLookup:
        """Records for a raw query (normalised inside) and a user id; never raises."""
        ...

    async def ping(self) -> bool:
        """True when the backend answers (readiness); never raises."""
        ...

    async def close(self) -> None: ...


def report_outcomes(callback: OutcomeCallback | None, lookup: PrefLookup) -> PrefLookup:
    """Feed both outcomes to ``callback``; a broken callback is logged, never propagated."""
    if callback is not None:
        try:
            callback("query", lookup.query_outcome)
            callback("user", lookup.user_outcome)
        except Exception:  # a metrics bug must not fail a request
            log.exception("preference outcome callback failed")
    return lookup
