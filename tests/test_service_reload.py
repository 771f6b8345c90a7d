"""Hot reload on real bundles: swap under concurrent load with zero failures; bad bundles refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bundle_factory import build_tiny_bundle
from service_fakes import FakeStore, running, score_body

from service.app import create_app
from service.settings import Settings

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    return {
        "v1": build_tiny_bundle(root / "v1", "tiny-v1", seed=1),
        "v2": build_tiny_bundle(root / "v2", "tiny-v2", seed=2),
    }


def _settings(bundle: Path, token: str | None = TOKEN) -> Settings:
    return Settings(bundle={"path": bundle}, admin={"token": token}, batching={"encoder": {"max_rows": 8}})


async def test_reload_under_concurrent_requests_fails_none(bundles: dict[str, Path]) -> None:
    app = create_app(_settings(bundles["v1"]), store=FakeStore())
    async with running(app) as client:
        stop, swapped = asyncio.Event(), asyncio.Event()
        answers: list[tuple[int, str | None]] = []
        started_after_swap: list[str | None] = []

        async def hammer(worker: int) -> None:
            i = 0
            while not stop.is_set():
                after = swapped.is_set()
                body = score_body(6, query=f"drill {worker} {i % 5}", budget_ms=5000)
                resp = await client.post("/score", json=body)
                answers.append((resp.status_code, resp.json().get("model_version")))
                if after:
                    started_after_swap.append(answers[-1][1])
                i += 1

        workers = [asyncio.create_task(hammer(w)) for w in range(6)]
        while len(answers) < 20:
            await asyncio.sleep(0.005)
        reload = await client.post("/admin/reload", json={"bundle_path": str(bundles["v2"])}, headers=AUTH)
        swapped.set()
        while len(started_after_swap) < 30:
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.gather(*workers)
        final = (await client.post("/score", json=score_body(3))).json()["model_version"]
        metrics = (await client.get("/metrics")).text
    assert reload.status_code == 200, reload.text
    assert reload.json()["model_version"] == "tiny-v2" and reload.json()["previous_version"] == "tiny-v1"
    assert [code for code, _ in answers if code != 200] == []
    versions = [v for _, v in answers]
    assert "tiny-v1" in versions and "tiny-v2" in versions
    # in-flight requests may finish on v1; every request started after the swap gets v2
    assert set(started_after_swap) == {"tiny-v2"}
    assert final == "tiny-v2"
    assert 'prectr_model_info{provider="cpu",variant="fp32",version="tiny-v2"} 1.0' in metrics
    assert 'version="tiny-v1"' not in metrics


async def test_bad_bundle_is_refused_and_the_old_one_keeps_serving(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    corrupt = build_tiny_bundle(tmp_path / "corrupt", "tiny-bad")
    (corrupt / "head.onnx").write_bytes(b"not an onnx file")
    app = create_app(_settings(bundles["v1"]), store=FakeStore())
    async with running(app) as client:
        for path in (corrupt, tmp_path / "does-not-exist"):
            resp = await client.post("/admin/reload", json={"bundle_path": str(path)}, headers=AUTH)
            assert resp.status_code == 422, resp.text
            assert resp.json()["error"]["code"] == "bundle_rejected"
            assert "still serving the previous model" in resp.json()["error"]["message"]
        again = await client.post("/admin/reload", json={"bundle_path": str(corrupt)}, headers=AUTH)
        assert "sha256 mismatch for head.onnx" in again.json()["error"]["message"]
        after = await client.post("/score", json=score_body(3))
        assert (await client.get("/readyz")).status_code == 200
    assert after.status_code == 200 and after.json()["model_version"] == "tiny-v1"


async def test_reload_needs_the_bearer_token(bundles: dict[str, Path]) -> None:
    app = create_app(_settings(bundles["v1"]), store=FakeStore())
    async with running(app) as client:
        missing = await client.post("/admin/reload")
        wrong = await client.post("/admin/reload", headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_reload_is_404_when_no_admin_token_is_configured(bundles: dict[str, Path]) -> None:
    app = create_app(_settings(bundles["v1"], token=None), store=FakeStore())
    async with running(app) as client:
        resp = await client.post("/admin/reload", headers={"Authorization": "Bearer anything-at-all-here"})
    assert resp.status_code == 404


async def test_reloading_the_same_version_drops_its_cached_relevance(bundles: dict[str, Path]) -> None:
    app = create_app(_settings(bundles["v1"]), store=FakeStore())
    async with running(app) as client:
        for _ in range(2):  # the query's second request stores its pairs (cache.admit_after)
            await client.post("/score", json=score_body(4))
            await asyncio.sleep(0)  # new pairs are cached on the loop iteration after the response
        assert len(app.state.service.cache) == 4
        resp = await client.post("/admin/reload", headers=AUTH)  # no path: the configured bundle again
        assert resp.status_code == 200 and resp.json()["model_version"] == "tiny-v1"
        assert len(app.state.service.cache) == 0
