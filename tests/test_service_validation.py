"""422 answers name the offending field; limits come from the schema caps and from settings."""

from __future__ import annotations

from typing import Any

import pytest
from service_fakes import FakeStore, running, score_body

from service.app import create_app
from service.fake_scorer import FakeScorer
from service.settings import Settings


def _fields(resp: Any) -> list[str]:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_request"
    return [f["field"] for f in error["fields"]]


def _bad_bodies() -> list[tuple[str, dict[str, Any], str]]:
    dup = score_body(3)
    dup["candidates"][2]["item_id"] = dup["candidates"][0]["item_id"]
    wrong_id_type = score_body(2)
    wrong_id_type["candidates"][1]["item_id"] = 12345
    bad_bucket = score_body(2)
    bad_bucket["candidates"][0]["price_bucket"] = "cheap"
    missing_title = score_body(2)
    del missing_title["candidates"][1]["title"]
    unknown_candidate_field = score_body(2)
    unknown_candidate_field["candidates"][0]["colour"] = "red"
    return [
        ("duplicate_item_ids", dup, "candidates"),
        ("empty_query", score_body(2, query=""), "query"),
        ("blank_query", score_body(2, query="   "), "query"),
        ("query_without_searchable_characters", score_body(2, query="!!! ???"), "query"),
        ("item_id_not_a_string", wrong_id_type, "candidates.1.item_id"),
        ("price_bucket_not_an_int", bad_bucket, "candidates.0.price_bucket"),
        ("missing_title", missing_title, "candidates.1.title"),
        ("candidates_not_a_list", {**score_body(1), "candidates": "abc"}, "candidates"),
        ("no_candidates", {**score_body(1), "candidates": []}, "candidates"),
        ("over_the_hard_cap", score_body(2001), "candidates"),
        ("unknown_field", {**score_body(1), "explain": True}, "explain"),
        ("unknown_candidate_field", unknown_candidate_field, "candidates.0.colour"),
        ("negative_budget", score_body(1, budget_ms=-5), "budget_ms"),
        ("top_k_zero", score_body(1, top_k=0), "top_k"),
    ]


@pytest.mark.parametrize(("case", "body", "field"), _bad_bodies(), ids=[c[0] for c in _bad_bodies()])
async def test_bad_request_is_422_naming_the_field(case: str, body: dict[str, Any], field: str) -> None:
    app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore())
    async with running(app) as client:
        resp = await client.post("/score", json=body)
        assert field in _fields(resp), resp.json()
        assert resp.json()["error"]["request_id"]


async def test_configured_limits_are_tighter_than_the_schema_caps() -> None:
    settings = Settings(server={"max_candidates": 3, "max_title_chars": 60, "max_query_chars": 10})
    app = create_app(settings, scorer=FakeScorer(), store=FakeStore())
    async with running(app) as client:
        assert _fields(await client.post("/score", json=score_body(4))) == ["candidates"]
        assert _fields(await client.post("/score", json=score_body(2, query="a" * 11))) == ["query"]
        long_title = score_body(2, query="drill")
        long_title["candidates"][1]["title"] = "x" * 61
        assert _fields(await client.post("/score", json=long_title)) == ["candidates.1.title"]
        assert (await client.post("/score", json=score_body(3, query="drill"))).status_code == 200


async def test_malformed_json_is_422_not_500() -> None:
    app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore())
    async with running(app) as client:
        resp = await client.post("/score", content=b"{not json", headers={"content-type": "application/json"})
        assert resp.status_code == 422


async def test_openapi_documents_limits_descriptions_and_an_example() -> None:
    app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore())
    async with running(app, wait_ready=False) as client:
        schema = (await client.get("/openapi.json")).json()
    body = schema["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ScoreRequest"}
    request = schema["components"]["schemas"]["ScoreRequest"]
    assert request["properties"]["candidates"]["items"] == {"$ref": "#/components/schemas/Candidate"}
    assert "description" in schema["components"]["schemas"]["Candidate"]["properties"]["title"]
    assert request["properties"]["candidates"]["maxItems"] == 2000
    assert request["examples"][0]["candidates"]
    assert "description" in request["properties"]["budget_ms"]
    responses = schema["paths"]["/score"]["post"]["responses"]
    assert {"200", "422", "429", "503", "504"} <= responses.keys()
    assert "/admin/reload" not in schema["paths"]  # no token configured: the route is hidden and disabled
