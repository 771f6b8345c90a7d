"""Request and response models of ``POST /score``: the OpenAPI documentation users read.

Field limits here are the hard caps; settings may configure tighter ones (checked in the pipeline with
the same field-naming 422).
"""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, with_config
from pydantic.json_schema import JsonDict
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from service.settings import HARD_MAX_CANDIDATES, HARD_MAX_TEXT_CHARS

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Text = Annotated[str, StringConstraints(max_length=HARD_MAX_TEXT_CHARS)]

_EXAMPLE_REQUEST: JsonDict = {
    "user_id": "u-1842",
    "query": "cordless drill 18v",
    "candidates": [
        {
            "item_id": "100001",
            "title": "DEWALT 20V MAX Cordless Drill/Driver Kit",
            "price_bucket": 6,
            "pop_bucket": 9,
        },
        {"item_id": "100002", "title": "Ryobi 18V ONE+ Lithium-Ion Cordless Drill"},
    ],
    "request_id": "req-7f3a",
    "top_k": 10,
}


@with_config(ConfigDict(extra="forbid"))
class Candidate(TypedDict):
    """One coarse-ranking candidate. A TypedDict, not a model: 200 of them validate ~30 % faster as plain
    dicts (no model instance per candidate); the JSON schema is the same."""

    item_id: Annotated[Id, Field(description="catalogue item id, unique within the request")]
    title: Annotated[Text, Field(description="item title as shown to users (the relevance model reads it)")]
    price_bucket: NotRequired[
        Annotated[int | None, Field(ge=0, le=10, description="observable price bucket 1..10; 0/None unknown")]
    ]
    pop_bucket: NotRequired[
        Annotated[int | None, Field(ge=0, le=10, description="popularity bucket 1..10; 0/None unknown")]
    ]


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE_REQUEST]})

    user_id: Id = Field(..., description="user id as the search backend knows it (hashed by the service)")
    query: Text = Field(..., min_length=1, description="the search query as typed")
    candidates: list[Candidate] = Field(
        ..., min_length=1, max_length=HARD_MAX_CANDIDATES, description="coarse-ranking candidates to score"
    )
    request_id: Id | None = Field(default=None, description="echoed in logs and the X-Request-ID header")
    budget_ms: float | None = Field(
        default=None,
        gt=0,
        le=60_000,
        description="latency budget; default from settings, capped by max_budget_ms",
    )
    top_k: int | None = Field(
        default=None, ge=1, le=HARD_MAX_CANDIDATES, description="return only the k best scores"
    )
    sort: bool = Field(default=True, description="order results by score, best first (else request order)")

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("query is empty")
        return v

    @field_validator("candidates")
    @classmethod
    def _unique_item_ids(cls, v: list[Candidate]) -> list[Candidate]:
        ids = [cand["item_id"] for cand in v]
        if len(set(ids)) < len(ids):  # rare: then find the first repeat to name it
            seen: set[str] = set()
            for i, item_id in enumerate(ids):
                if item_id in seen:
                    raise ValueError(f"duplicate item_id {item_id!r} at candidates[{i}]")
                seen.add(item_id)
        return v


class ScoredItem(BaseModel):
    item_id: str
    score: float = Field(..., description="fused click probability including the personal incentive")
    p_click: float = Field(
        ..., description="sum over levels of P(click | level) * P(level), before incentive"
    )
    p_level: list[float] = Field(..., description="P(relevance level), one per manifest level, sums to 1")
    expected_level: float = Field(..., description="sum of level index * P(level): 0 irrelevant .. K-1")
    incentive: float = Field(..., description="personalised relevance incentive added to the fused logit")


class StageTimings(BaseModel):
    features: float = Field(..., description="ms: cache lookup, tokenisation, feature building")
    prefs: float = Field(..., description="ms: preference lookup")
    queue: float = Field(..., description="ms: waiting in the encoder and head batchers")
    encoder: float = Field(..., description="ms: encoder inference (0 when every pair was cached)")
    head: float = Field(..., description="ms: head inference")
    total: float = Field(..., description="ms: whole request inside the service")


class ScoreResponse(BaseModel):
    model_version: str
    level_names: list[str] = Field(..., description="names of the p_level entries, in order")
    results: list[ScoredItem]
    degraded: list[str] = Field(
        default_factory=list, description="why scores are less personalised than usual; empty when none"
    )
    timings: StageTimings
    request_id: str | None = None
