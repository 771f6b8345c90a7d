"""Test doubles for the service tests: a preference store with failure modes, request builders, an app client.

The store follows the cross-helper ``PreferenceStore`` contract (``lookup``/``ping``/``close``) but can be
told to raise or hang, which the real one never does by contract: the service must survive both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from features.normalize import normalize_query
from features.prefs import QueryPref, UserPref

TITLES = [
    "cordless drill 18v lithium battery kit",
    "white interior paint gallon satin finish",
    "copper pipe fitting 1/2 in elbow",
    "led light bulb 60w soft white",
    "garden hose 50 ft",
]


@dataclass
class FakeLookup:
    qpref: QueryPref | None
    upref: UserPref | None
    outcome: str
    degraded: bool


class FakeStore:
    """``mode``: ok (records when known, else miss) | raise | hang | degraded (store-reported timeout)."""

    def __init__(self, mode: str = "ok", ping_ok: bool = True) -> None:
        self.mode, self.ping_ok = mode, ping_ok
        self.queries: dict[str, QueryPref] = {}
        self.users: dict[str, UserPref] = {}
        self.calls = 0
        self.closed = False

    async def lookup(self, query: str, user_id: str) -> FakeLookup:
        self.calls += 1
        if self.mode == "raise":
            raise ConnectionError("redis is down")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "degraded":
            return FakeLookup(None, None, "timeout", True)
        q, u = self.queries.get(normalize_query(query)), self.users.get(user_id)
        outcome = "hit" if q and u else "partial" if q or u else "miss"
        return FakeLookup(q, u, outcome, False)

    async def ping(self) -> bool:
        return self.ping_ok

    async def close(self) -> None:
        self.closed = True


def score_body(
    n: int = 5, query: str = "cordless drill", user_id: str = "u1", **extra: Any
) -> dict[str, Any]:
    cands = [{"item_id": f"item-{i}", "title": f"{TITLES[i % len(TITLES)]} model {i}"} for i in range(n)]
    return {"user_id": user_id, "query": query, "candidates": cands, **extra}


@asynccontextmanager
async def running(app: FastAPI, wait_ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client bound to it (in-process ASGI, no sockets)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://prectr.test") as client:
            if wait_ready:
                await wait_until_ready(client)
            yield client


async def wait_until_ready(client: httpx.AsyncClient, attempts: int = 500) -> None:
    for _ in range(attempts):
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never ready: {(await client.get('/readyz')).json()}")
