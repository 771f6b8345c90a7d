"""The in-process store (embedded default) and the ``open_store`` factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from preference_cache import Outcome, PreferenceStore, PrefReaderSettings, open_store
from preference_cache.memory_store import InProcessPreferenceStore
from preference_cache.storage import save_mined
from preference_cache.synthetic import random_mined


async def test_lookup_normalises_the_query_and_reports_outcomes() -> None:
    mined = random_mined(num_queries=20, num_users=50, seed=1)
    seen: list[tuple[str, Outcome]] = []
    store = open_store(mined, on_outcome=lambda kind, outcome: seen.append((kind, outcome)))
    assert isinstance(store, PreferenceStore)
    found = await store.lookup("  QUERY   3 ", "7")
    assert found.qpref == mined.query_record(3) and found.upref == mined.user_record(7)
    assert found.outcome == "hit" and not found.degraded and found.namespace == mined.namespace
    missing = await store.lookup("no such query", "100000")
    assert (missing.qpref, missing.upref, missing.outcome) == (None, None, "miss")
    partial = await store.lookup("query 3", "100000")
    assert partial.outcome == "partial" and not partial.degraded
    assert seen[:2] == [("query", Outcome.HIT), ("user", Outcome.HIT)] and len(seen) == 6


async def test_a_broken_counter_callback_never_fails_the_lookup() -> None:
    def broken(kind: str, outcome: Outcome) -> None:
        raise RuntimeError("metrics backend down")

    store = InProcessPreferenceStore(random_mined(5, 5), on_outcome=broken)
    assert (await store.lookup("query 1", "1")).outcome == "hit"


def test_factory_opens_each_backend_from_its_spec(tmp_path: Path) -> None:
    path = save_mined(random_mined(5, 5), tmp_path / "mined")
    assert isinstance(open_store(path), InProcessPreferenceStore)
    assert isinstance(open_store(str(path)), InProcessPreferenceStore)
    redis_store = open_store("redis://127.0.0.1:1/0")
    assert type(redis_store).__name__ == "RedisPreferenceStore"
    assert open_store(PrefReaderSettings(url="redis://127.0.0.1:1/0", cluster=True)).settings.cluster
    with pytest.raises(ValueError, match="cannot open a preference store from"):
        open_store(tmp_path / "nothing-here")


def test_settings_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="must start with redis://"):
        PrefReaderSettings(url="http://localhost:6379")
    with pytest.raises(ValueError, match="key prefix"):
        PrefReaderSettings(key_prefix="bad:prefix")
    with pytest.raises(ValueError, match="greater than 0"):
        PrefReaderSettings(deadline_ms=0)
