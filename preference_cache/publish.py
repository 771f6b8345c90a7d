"""Atomic, idempotent publication of mined preferences to Redis or Redis Cluster.

1. Take ``{prefix}:publish-lock`` (token + TTL, renewed every chunk), so two publishers never interleave.
2. Unless the registry already marks the namespace ``complete``, mark it ``writing`` and write every
   record in chunks (MSET on a single node; ``mset_nonatomic`` on a cluster, one pipeline split by node).
3. Mark it ``complete``, then flip ``{prefix}:current`` with one SET. Readers follow the pointer, so they
   see the old namespace until this command and the complete new one after it. A publish killed before
   the flip leaves the pointer, and so every reader, on the old namespace.
4. Mark every other registered namespace ``expiring``, give each of its keys the grace TTL (found by a
   SCAN of every node; ``EXPIRE NX`` never extends a TTL), then forget it. The SCAN also catches keys of
   publishes that died half-way.

The namespace is the content hash, so re-publishing the same file writes nothing and flips nothing.
``grace_seconds`` must exceed the readers' ``pointer_refresh_s`` plus the longest in-flight request.
Redis must not evict keys by itself (``maxmemory-policy noeviction`` or ``volatile-*``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from preference_cache import bulk_codec, keys
from preference_cache.mined import MinedPrefs

ChunkCallback = Callable[[int, int], None]  # (records written so far, total records)


class PublishInProgress(RuntimeError):
    """Another publisher holds the lock."""


@dataclass(frozen=True)
class PublishReport:
    namespace: str
    previous: str | None
    records_written: int  # 0 when the namespace was already complete (idempotent re-run)
    flipped: bool
    keys_expiring: int  # keys of older namespaces that got the grace TTL in this run
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records_written / self.seconds if self.seconds > 0 else 0.0


def publish(
    mined: MinedPrefs,
    client: Any,
    *,
    prefix: str = keys.DEFAULT_PREFIX,
    grace_seconds: int = 600,
    chunk_size: int = 2000,
    lock_ttl_s: float = 60.0,
    lock_wait_s: float = 0.0,
    after_chunk: ChunkCallback | None = None,
) -> PublishReport:
    """Publish ``mined`` through a sync ``redis.Redis`` or ``redis.cluster.RedisCluster`` client."""
    keys.check_prefix(prefix)
    if grace_seconds < 1 or chunk_size < 1 or lock_ttl_s <= 0:
        raise ValueError("grace_seconds and chunk_size must be >= 1 and lock_ttl_s > 0")
    start, namespace = time.perf_counter(), mined.namespace
    lock = client.lock(keys.lock_key(prefix), timeout=lock_ttl_s, thread_local=False)
    if not lock.acquire(blocking=lock_wait_s > 0, blocking_timeout=lock_wait_s or None):
        raise PublishInProgress(
            f"another publish holds {keys.lock_key(prefix)!r}; if it died, the lock expires within {lock_ttl_s}s"
        )
    try:
        previous = _text(client.get(keys.pointer_key(prefix)))
        written = 0
        if _text(client.hget(keys.registry_key(prefix), namespace)) != "complete":
            client.hset(keys.registry_key(prefix), namespace, "writing")
            written = _write_records(client, mined, prefix, chunk_size, lock, after_chunk)
            client.hset(keys.registry_key(prefix), namespace, "complete")
        if previous != namespace:
            client.set(keys.pointer_key(prefix), namespace)  # the flip: one command
        expiring = expire_other_namespaces(
            client, prefix, namespace, grace_seconds, chunk_size, force_scan=previous not in (None, namespace)
        )
    finally:
        _release(lock)
    return PublishReport(
        namespace, previous, written, previous != namespace, expiring, time.perf_counter() - start
    )


def expire_other_namespaces(
    client: Any, prefix: str, keep: str, grace_seconds: int, batch: int = 2000, force_scan: bool = True
) -> int:
    """Give every record key outside namespace ``keep`` a TTL of ``grace_seconds``; returns how many.

    Other registered namespaces are marked ``expiring`` first (never taken for complete again) and
    forgotten only after their keys have a TTL, so a run killed in between is finished by the next one.
    Without ``force_scan`` and with no other namespace registered, the SCAN is skipped (no-op re-runs).
    """
    registry = keys.registry_key(prefix)
    others = [o for o in client.hkeys(registry) if _text(o) != keep]
    for other in others:
        client.hset(registry, other, "expiring")
    if not others and not force_scan:
        return 0
    pending, expiring = [], 0
    for key in client.scan_iter(match=keys.record_pattern(prefix), count=1000):
        ns = keys.namespace_of(_text(key) or "", prefix)
        if ns is not None and ns != keep:
            pending.append(key)
        if len(pending) >= batch:
            expiring += _expire(client, pending, grace_seconds)
            pending = []
    expiring += _expire(client, pending, grace_seconds) if pending else 0
    if others:
        client.hdel(registry, *others)
    return expiring


def _write_records(
    client: Any, mined: MinedPrefs, prefix: str, chunk_size: int, lock: Any, after_chunk: ChunkCallback | None
) -> int:
    total, written = mined.num_queries + mined.num_users, 0
    cluster = is_cluster(client)
    for chunk in _chunks(_encoded_records(mined, prefix), chunk_size):
        lock.reacquire()  # renews the TTL; raises if another publisher took over after a stall
        if cluster:
            client.mset_nonatomic(chunk)
        else:
            client.mset(chunk)
        written += len(chunk)
        if after_chunk is not None:
            after_chunk(written, total)
    return written


def _encoded_records(mined: MinedPrefs, prefix: str, rows: int = 10_000) -> Iterator[tuple[str, bytes]]:
    """(key, value) for every record, encoded ``rows`` at a time with the vectorised encoders."""
    ns = mined.namespace
    for start in range(0, mined.num_queries, rows):
        part = slice(start, start + rows)
        values = bulk_codec.encode_queries(mined.q_exposures[part], mined.q_clicks[part], mined.q_users[part])
        for query, value in zip(mined.query_norm[part].tolist(), values, strict=True):
            yield keys.query_record_key(prefix, ns, query), value
    for start in range(0, mined.num_users, rows):
        part = slice(start, start + rows)
        values = bulk_codec.encode_users(
            mined.u_exposures[part],
            mined.u_clicks[part],
            mined.u_activity[part],
            mined.u_history_items[part],
            mined.u_history_levels[part],
            mined.u_history_count[part],
        )
        for user_id, value in zip(mined.user_id[part].tolist(), values, strict=True):
            yield keys.user_record_key(prefix, ns, str(user_id)), value


def _chunks(items: Iterator[tuple[str, bytes]], size: int) -> Iterator[dict[str, bytes]]:
    chunk: dict[str, bytes] = {}
    for key, value in items:
        chunk[key] = value
        if len(chunk) >= size:
            yield chunk
            chunk = {}
    if chunk:
        yield chunk


def _expire(client: Any, record_keys: list[Any], grace_seconds: int) -> int:
    pipe = client.pipeline(transaction=False)  # the cluster client splits it by node
    for key in record_keys:
        pipe.expire(key, grace_seconds, nx=True)
    return sum(bool(r) for r in pipe.execute())


def _release(lock: Any) -> None:
    from redis.exceptions import LockError

    with contextlib.suppress(LockError):  # it expired meanwhile; nothing to release
        lock.release()


def is_cluster(client: Any) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def make_sync_client(url: str, cluster: bool = False) -> Any:
    """Client for the offline publisher (generous timeouts: throughput matters here, not latency)."""
    import redis
    from redis.cluster import RedisCluster

    opts = {"socket_timeout": 30.0, "socket_connect_timeout": 5.0}
    return RedisCluster.from_url(url, **opts) if cluster else redis.Redis.from_url(url, **opts)
