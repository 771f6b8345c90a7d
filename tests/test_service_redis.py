"""Integration: real tiny bundle, real Redis (and the embedded store). Redis stopped mid-test -> 200
degraded; restarted -> recovers with the same scores as before the outage."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from bundle_factory import build_tiny_bundle
from conftest import RedisServer
from service_fakes import running, score_body

from preference_cache.publish import publish
from preference_cache.storage import save_mined
from preference_cache.synthetic import random_mined
from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.redis
MINED = random_mined(num_queries=20, num_users=20, seed=3)
PREFIX = "prectr-service-test"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny-1")


def _publish(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        publish(MINED, client, prefix=PREFIX, lock_wait_s=10)
    finally:
        client.close()


def _body() -> dict:
    return score_body(6, query="Query 2", user_id="2", budget_ms=5000)


async def test_redis_outage_degrades_then_recovers(bundle: Path, own_redis: RedisServer) -> None:
    _publish(own_redis.url)
    settings = Settings(
        bundle={"path": bundle},
        redis={"url": own_redis.url, "key_prefix": PREFIX, "deadline_ms": 100, "pointer_refresh_s": 3600},
    )
    app = create_app(settings)
    async with running(app) as client:
        healthy = await client.post("/score", json=_body())
        own_redis.stop()
        down = await client.post("/score", json=_body())
        unready = await client.get("/readyz")
        own_redis.start()
        _publish(own_redis.url)  # the restarted server kept no data
        back = await client.post("/score", json=_body())
        ready_again = await client.get("/readyz")
        metrics = (await client.get("/metrics")).text
    assert healthy.status_code == 200 and healthy.json()["degraded"] == []
    assert down.status_code == 200 and down.json()["degraded"] == ["preferences_unavailable"]
    assert down.json()["results"] != healthy.json()["results"]  # defaults really replaced the user's prefs
    assert unready.status_code == 503 and unready.json()["checks"]["store_reachable"] is False
    assert back.status_code == 200 and back.json()["degraded"] == []
    assert back.json()["results"] == healthy.json()["results"]
    assert ready_again.status_code == 200
    assert 'prectr_preference_lookups_total{outcome="hit"} 2.0' in metrics


async def test_embedded_store_answers_like_redis(bundle: Path, redis_url: str, tmp_path: Path) -> None:
    _publish(redis_url)
    mined_dir = save_mined(MINED, tmp_path / "prefs")
    answers = []
    for section in ({"url": redis_url, "key_prefix": PREFIX, "deadline_ms": 100}, {"prefs_path": mined_dir}):
        app = create_app(Settings(bundle={"path": bundle}, redis=section))
        async with running(app) as client:
            resp = await client.post("/score", json=_body())
            metrics = (await client.get("/metrics")).text
        assert resp.status_code == 200 and resp.json()["degraded"] == []
        assert 'prectr_preference_lookups_total{outcome="hit"} 1.0' in metrics
        answers.append(resp.json()["results"])
    assert answers[0] == answers[1]
