"""Failure paths against a real Redis: a publish failing or killed half-way, a Redis outage and restart."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from preference_cache import keys
from preference_cache.publish import PublishInProgress, publish
from preference_cache.redis_store import RedisPreferenceStore
from preference_cache.settings import PrefReaderSettings
from preference_cache.storage import save_mined
from preference_cache.store import PrefLookup
from preference_cache.synthetic import two_versions

if TYPE_CHECKING:
    from conftest import RedisServer

pytestmark = pytest.mark.redis
NQ, NU = 40, 120
OLD, NEW = two_versions(NQ, NU, seed=1)  # same keys, every record different


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"prectr-test-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{name}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def reader(url: str, prefix: str, **overrides: object) -> RedisPreferenceStore:
    settings = {"url": url, "key_prefix": prefix, "deadline_ms": 1000, "pointer_refresh_s": 0, **overrides}
    return RedisPreferenceStore(PrefReaderSettings(**settings))


def version_of(found: PrefLookup, user: int, query: int) -> str:
    """Which publish a pair of records came from: 'old', 'new', or 'mixed/missing'."""
    for name, mined in (("old", OLD), ("new", NEW)):
        if found.qpref == mined.query_record(query) and found.upref == mined.user_record(user):
            return name
    return "mixed/missing"


async def test_a_publish_failing_half_way_leaves_readers_on_the_old_namespace(
    redis_url: str, prefix: str, client: redis.Redis
) -> None:
    publish(OLD, client, prefix=prefix)

    def fail_after_three_chunks(written: int, total: int) -> None:
        if written >= 30:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected failure"):
        publish(NEW, client, prefix=prefix, chunk_size=10, after_chunk=fail_after_three_chunks)
    assert client.get(keys.pointer_key(prefix)).decode() == OLD.namespace
    store = reader(redis_url, prefix)
    assert all(
        [version_of(await store.lookup(f"query {i % NQ}", str(i)), i, i % NQ) == "old" for i in range(NU)]
    )
    partial_key = keys.query_record_key(prefix, NEW.namespace, "query 0")
    cleanup = publish(OLD, client, prefix=prefix, grace_seconds=60)  # a no-op re-run still expires leftovers
    assert (cleanup.records_written, cleanup.keys_expiring) == (0, 30) and 0 < client.ttl(partial_key) <= 60
    retry = publish(NEW, client, prefix=prefix)  # the lock was released; the namespace is rewritten in full
    assert (retry.records_written, retry.flipped) == (NQ + NU, True)
    assert client.ttl(partial_key) == -1  # rewritten keys lost the leftover TTL: they will not vanish
    assert await store.ping()  # re-reads the pointer now instead of after pointer_refresh_s
    assert version_of(await store.lookup("query 3", "3"), 3, 3) == "new"
    await store.close()


KILLABLE_PUBLISH = """
import sys, time, redis
from preference_cache.publish import publish
from preference_cache.storage import load_mined
publish(load_mined(sys.argv[1]), redis.Redis.from_url(sys.argv[2]), prefix=sys.argv[3], chunk_size=5,
        lock_ttl_s=1.0, after_chunk=lambda done, total: time.sleep(0.05))
"""


async def test_a_killed_publisher_process_leaves_readers_on_the_old_namespace(
    redis_url: str, prefix: str, client: redis.Redis, tmp_path: Path
) -> None:
    publish(OLD, client, prefix=prefix)
    path = save_mined(NEW, tmp_path / "new")
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE_PUBLISH, str(path), redis_url, prefix])
    try:
        deadline = time.monotonic() + 30
        while client.exists(keys.user_record_key(prefix, NEW.namespace, "0")) == 0:  # users follow queries
            assert proc.poll() is None and time.monotonic() < deadline, "publisher ended before it was killed"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    assert client.hget(keys.registry_key(prefix), NEW.namespace) == b"writing"
    assert client.get(keys.pointer_key(prefix)).decode() == OLD.namespace
    store = reader(redis_url, prefix)
    assert all(
        [version_of(await store.lookup(f"query {i % NQ}", str(i)), i, i % NQ) == "old" for i in range(NU)]
    )
    with pytest.raises(PublishInProgress):
        publish(NEW, client, prefix=prefix)  # the dead publisher's lock is still held for lock_ttl_s
    report = publish(NEW, client, prefix=prefix, lock_wait_s=10)
    assert (report.records_written, report.flipped) == (NQ + NU, True)
    assert await store.ping()
    assert version_of(await store.lookup("query 3", "3"), 3, 3) == "new"
    await store.close()


async def test_redis_outage_gives_defaults_within_the_deadline_then_reads_recover(
    own_redis: RedisServer,
) -> None:
    prefix = "prectr-outage"
    client = redis.Redis.from_url(own_redis.url)
    publish(OLD, client, prefix=prefix)
    client.close()
    store = reader(own_redis.url, prefix, deadline_ms=50, pointer_refresh_s=3600)
    assert (await store.lookup("query 2", "2")).outcome == "hit"
    own_redis.stop()
    start = time.perf_counter()
    down = await store.lookup("query 2", "2")
    elapsed = time.perf_counter() - start
    assert (down.qpref, down.upref, down.degraded) == (None, None, True)
    assert down.outcome in ("error", "timeout") and elapsed < 1.0  # 50 ms deadline; 1 s only guards a hang
    assert not await store.ping()
    own_redis.start()  # same port; the server kept no data, so publish again
    client = redis.Redis.from_url(own_redis.url)
    publish(OLD, client, prefix=prefix)
    client.close()
    back = await store.lookup("query 2", "2")  # same reader object: it reconnects by itself
    assert back.outcome == "hit" and version_of(back, 2, 2) == "old"
    await store.close()
