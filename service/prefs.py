"""The preference store as the service sees it: the cross-helper Protocol plus a hard backstop.

The store (``preference_cache.store``) enforces its own deadline and never raises, by contract. The
service still wraps every lookup: a store that hangs or raises anyway costs one degraded answer
(preference defaults, ``degraded: ["preferences_unavailable"]``), never a failed request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from features.prefs import QueryPref, UserPref
from service.settings import RedisSettings

log = logging.getLogger("prectr.service")
BACKSTOP_GRACE_S = 0.002  # the store's own deadline should win; this only catches a store that ignores it


class PrefLookup(Protocol):
    """Read-only view of ``preference_cache.store.PrefLookup`` (the part the service uses)."""

    @property
    def qpref(self) -> QueryPref | None: ...

    @property
    def upref(self) -> UserPref | None: ...

    @property
    def outcome(self) -> str:
        """hit | miss | partial | timeout | error | malformed"""
        ...

    @property
    def degraded(self) -> bool: ...


class PreferenceStore(Protocol):
    async def lookup(self, query: str, user_id: str) -> PrefLookup: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PrefResult:
    qpref: QueryPref | None
    upref: UserPref | None
    outcome: str
    degraded: bool
    elapsed_ms: float


async def lookup_with_backstop(
    store: PreferenceStore, query: str, user_id: str, deadline_s: float
) -> PrefResult:
    """Look preferences up; on timeout or any error answer defaults (None) flagged as degraded."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(deadline_s + BACKSTOP_GRACE_S):
            found = await store.lookup(query, user_id)
        result = (found.qpref, found.upref, found.outcome, bool(found.degraded))
    except TimeoutError:
        result = (None, None, "timeout", True)
    except Exception as exc:  # a broken store must not break scoring
        log.warning("preference lookup failed: %s: %s", type(exc).__name__, exc)
        result = (None, None, "error", True)
    return PrefResult(*result, elapsed_ms=(time.perf_counter() - start) * 1000)


async def ping_with_backstop(store: PreferenceStore, timeout_s: float = 1.5) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            return bool(await store.ping())
    except Exception:
        return False


@dataclass(frozen=True, slots=True)
class _Miss:
    qpref: QueryPref | None = None
    upref: UserPref | None = None
    outcome: str = "miss"
    degraded: bool = False


class NoPreferences:
    """The store when none is configured: every lookup is a miss, so every request uses the defaults."""

    async def lookup(self, query: str, user_id: str) -> PrefLookup:
        return _Miss()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def open_configured_store(settings: RedisSettings) -> PreferenceStore:
    """Redis when ``redis.url`` is set, else the embedded in-process store over ``redis.prefs_path``."""
    from preference_cache.factory import open_store

    if settings.url is not None:
        return open_store(settings.reader_settings())
    if settings.prefs_path is not None:
        return open_store(settings.prefs_path)
    log.warning("no preference store configured (redis.url, redis.prefs_path): every request uses defaults")
    return NoPreferences()
