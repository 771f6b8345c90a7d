"""Publication and online reads against a real Redis (each test under its own random key prefix)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import redis

from preference_cache import keys
from preference_cache.memory_store import InProcessPreferenceStore
from preference_cache.publish import publish
from preference_cache.redis_store import RedisPreferenceStore
from preference_cache.settings import PrefReaderSettings
from preference_cache.store import Outcome, PrefLookup
from preference_cache.synthetic import two_versions

if TYPE_CHECKING:
    pass

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


async def test_published_records_read_back_exactly_like_the_in_process_store(
    redis_url: str, prefix: str, client: redis.Redis
) -> None:
    report = publish(OLD, client, prefix=prefix, chunk_size=25)
    assert (report.records_written, report.flipped, report.previous) == (NQ + NU, True, None)
    store, local = reader(redis_url, prefix), InProcessPreferenceStore(OLD)
    try:
        for i in range(NU):
            query = f"  Query {i % NQ} "  # raw form: normalised by both stores
            remote, expected = await store.lookup(query, str(i)), await local.lookup(query, str(i))
            assert (remote.qpref, remote.upref, remote.outcome) == (expected.qpref, expected.upref, "hit")
        assert (await store.lookup("unknown query", "no-such-user")).outcome == "miss"
    finally:
        await store.close()


def test_republishing_the_same_content_writes_nothing(prefix: str, client: redis.Redis) -> None:
    publish(OLD, client, prefix=prefix)
    again = publish(OLD, client, prefix=prefix)
    assert (again.records_written, again.flipped, again.namespace) == (0, False, OLD.namespace)
    assert client.get(keys.pointer_key(prefix)).decode() == OLD.namespace


async def test_new_content_flips_the_pointer_and_the_old_namespace_expires_after_the_grace(
    redis_url: str, prefix: str, client: redis.Redis
) -> None:
    publish(OLD, client, prefix=prefix)
    slow = reader(redis_url, prefix, pointer_refresh_s=3600)
    assert version_of(await slow.lookup("query 1", "1"), 1, 1) == "old"
    report = publish(NEW, client, prefix=prefix, grace_seconds=120)
    assert (report.previous, report.namespace, report.keys_expiring) == (
        OLD.namespace,
        NEW.namespace,
        NQ + NU,
    )
    old_key = keys.user_record_key(prefix, OLD.namespace, "1")
    assert 0 < client.ttl(old_key) <= 120
    assert client.ttl(keys.user_record_key(prefix, NEW.namespace, "1")) == -1
    assert client.hgetall(keys.registry_key(prefix)) == {NEW.namespace.encode(): b"complete"}
    # a reader still holding the old pointer keeps reading complete old records during the grace
    assert version_of(await slow.lookup("query 1", "1"), 1, 1) == "old"
    await slow.close()


async def test_readers_never_see_a_mix_or_a_gap_while_the_pointer_flips(
    redis_url: str, prefix: str, client: redis.Redis
) -> None:
    publish(OLD, client, prefix=prefix)
    seen: dict[str, int] = {}
    done = asyncio.Event()

    async def read_loop(worker: int) -> None:
        store = reader(redis_url, prefix)
        i = worker
        while not done.is_set() or seen.get("new", 0) < 50:
            found = await store.lookup(f"query {i % NQ}", str(i % NU))
            version = version_of(found, i % NU, i % NQ)
            seen[version] = seen.get(version, 0) + 1
            i += 7
        await store.close()

    def slow_publish() -> None:
        publish(
            NEW,
            redis.Redis.from_url(redis_url),
            prefix=prefix,
            chunk_size=8,
            after_chunk=lambda done_, total: time.sleep(0.01),
        )
        done.set()

    await asyncio.gather(asyncio.to_thread(slow_publish), *(read_loop(w) for w in range(6)))
    assert seen.get("mixed/missing", 0) == 0, seen
    assert seen["old"] > 0 and seen["new"] >= 50


async def test_a_malformed_value_gives_defaults_and_is_counted(
    redis_url: str, prefix: str, client: redis.Redis
) -> None:
    publish(OLD, client, prefix=prefix)
    client.set(keys.query_record_key(prefix, OLD.namespace, "query 5"), b"\x01\x01\x04garbage")
    counted: list[tuple[str, Outcome]] = []
    store = RedisPreferenceStore(
        PrefReaderSettings(url=redis_url, key_prefix=prefix, deadline_ms=1000),
        on_outcome=lambda kind, outcome: counted.append((kind, outcome)),
    )
    found = await store.lookup("query 5", "5")
    assert found.qpref is None and found.upref == OLD.user_record(5)
    assert (found.query_outcome, found.degraded, found.reasons) == (Outcome.MALFORMED, True, ("malformed",))
    assert counted == [("query", Outcome.MALFORMED), ("user", Outcome.HIT)]
    await store.close()


async def test_nothing_published_yet_is_a_miss_not_a_failure(redis_url: str, prefix: str) -> None:
    store = reader(redis_url, prefix)
    found = await store.lookup("query 1", "1")
    assert (found.outcome, found.degraded, found.namespace) == ("miss", False, None)
    assert await store.ping()
    await store.close()
