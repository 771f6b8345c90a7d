"""Online reader for Redis and Redis Cluster: one round trip per request under a hard deadline.

Steady state costs one round trip: the namespace pointer is cached and refreshed in the background every
``pointer_refresh_s`` (the request keeps using the cached pointer meanwhile), and the query and user
records are fetched together (MGET on a single node; on a cluster ``mget_nonatomic`` pipelines one GET
per slot, split by node and sent concurrently). Only the very first request, or requests while the
pointer could never be read, pay a second round trip for the pointer, still inside the deadline.

Reconnection is redis-py's: a broken pooled connection is dropped and the next command opens a new one,
so reads recover by themselves when Redis comes back. One immediate retry (no backoff) lets the first
request after a restart replace its stale connection instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from preference_cache import codec, keys
from preference_cache.settings import PrefReaderSettings
from preference_cache.store import Outcome, OutcomeCallback, PrefLookup, report_outcomes

log = logging.getLogger(__name__)
WARN_EVERY_S = 5.0


class RedisPreferenceStore:
    """:class:`~preference_cache.store.PreferenceStore` over ``redis.asyncio`` (single node or cluster)."""

    def __init__(
        self, settings: PrefReaderSettings, on_outcome: OutcomeCallback | None = None, client: Any = None
    ) -> None:
        self.settings = settings
        self._on_outcome = on_outcome
        self._client = client if client is not None else make_async_client(settings)
        self._prefix = settings.key_prefix
        self._namespace: str | None = None
        self._pointer_read_at: float | None = None  # monotonic time of the last successful pointer read
        self._refresh_task: asyncio.Task[None] | None = None
        self._last_warning = -WARN_EVERY_S

    @property
    def namespace(self) -> str | None:
        """The namespace this reader currently follows (None before the pointer was read or published)."""
        return self._namespace

    async def lookup(self, query: str, user_id: str) -> PrefLookup:
        try:
            async with asyncio.timeout(self.settings.deadline_s):
                result = await self._lookup(query, user_id)
        except TimeoutError:
            result = PrefLookup(None, None, Outcome.TIMEOUT, Outcome.TIMEOUT, self._namespace)
        except Exception as exc:  # redis errors and anything unexpected: defaults, never an exception
            result = self._failed(exc)
        return report_outcomes(self._on_outcome, result)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self.settings.ping_timeout_s):
                ok = bool(await self._client.ping())
                await self._read_pointer()
                return ok
        except Exception as exc:
            log.warning("preference store ping failed: %r", exc)
            return False

    async def close(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        await self._client.aclose()

    async def _lookup(self, query: str, user_id: str) -> PrefLookup:
        namespace = await self._current_namespace()
        if namespace is None:
            return PrefLookup(None, None, Outcome.MISS, Outcome.MISS, None)
        q_key = keys.query_record_key(self._prefix, namespace, query)
        u_key = keys.user_record_key(self._prefix, namespace, str(user_id))
        if self.settings.cluster:
            q_value, u_value = await self._client.mget_nonatomic(q_key, u_key)
        else:
            q_value, u_value = await self._client.mget(q_key, u_key)
        qpref, q_outcome = self._decode(q_value, codec.decode_query, q_key)
        upref, u_outcome = self._decode(u_value, codec.decode_user, u_key)
        return PrefLookup(qpref, upref, q_outcome, u_outcome, namespace)

    async def _current_namespace(self) -> str | None:
        if self._pointer_read_at is None:
            await self._read_pointer()  # first request: inline, inside the caller's deadline
        elif time.monotonic() - self._pointer_read_at >= self.settings.pointer_refresh_s and (
            self._refresh_task is None or self._refresh_task.done()
        ):
            self._refresh_task = asyncio.create_task(self._refresh_in_background())
        return self._namespace

    async def _read_pointer(self) -> None:
        raw = await self._client.get(keys.pointer_key(self._prefix))
        namespace = raw.decode() if isinstance(raw, bytes) else raw
        if namespace != self._namespace:
            log.info("preference namespace %s -> %s", self._namespace, namespace)
        self._namespace = namespace
        self._pointer_read_at = time.monotonic()

    async def _refresh_in_background(self) -> None:
        try:
            async with asyncio.timeout(self.settings.ping_timeout_s):
                await self._read_pointer()
        except Exception as exc:  # keep the cached pointer; the next request tries again
            self._warn("preference pointer refresh failed: %r", exc)

    def _failed(self, exc: BaseException) -> PrefLookup:
        self._warn("preference lookup failed: %r", exc)
        return PrefLookup(None, None, Outcome.ERROR, Outcome.ERROR, self._namespace)

    def _decode(self, value: bytes | None, decode: Callable[[bytes], Any], key: str) -> tuple[Any, Outcome]:
        if value is None:
            return None, Outcome.MISS
        try:
            return decode(value), Outcome.HIT
        except codec.MalformedRecord as exc:
            self._warn("malformed preference record %s: %s", key, exc)
            return None, Outcome.MALFORMED

    def _warn(self, message: str, *args: object) -> None:
        """At most one warning per WARN_EVERY_S: an outage at 1k req/s must not flood the logs (counters count)."""
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning(message, *args)


def make_async_client(settings: PrefReaderSettings) -> Any:
    """``redis.asyncio`` client with a blocking pool (waits for a connection within the deadline)."""
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    common: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_connect_timeout_s,
        "retry": Retry(NoBackoff(), 1),
        "retry_on_error": [RedisConnectionError],
    }
    if settings.cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(settings.url, max_connections=settings.max_connections, **common)
    pool = BlockingConnectionPool.from_url(settings.url, max_connections=settings.max_connections, **common)
    return Redis(connection_pool=pool)
