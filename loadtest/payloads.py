"""Seeded ``POST /score`` bodies: Zipf queries and users, retrieval-like candidate sets of 50–500 items.

A coarse-ranking caller sends mostly the same candidates for the same query (retrieval is deterministic),
so each query owns a fixed candidate pool (title-token matches first, random fill after) and a request takes
a prefix of it plus a few fresh items. That reproduces the relevance-cache hit ratio production would see;
uniformly random candidates would make every request an encoder miss and understate capacity.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from loadtest.catalogue import Catalogue, open_catalogue, zipf_weights

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset({"in", "with", "and", "the", "of", "for", "to", "a"})
MAX_CANDIDATES_HARD = 2000  # the service's schema cap


@dataclass(frozen=True)
class PayloadConfig:
    """What a request looks like; validated so a typo in a load-test option fails before the run starts."""

    seed: int = 0
    min_candidates: int = 50
    max_candidates: int = 500
    user_zipf: float = 1.1
    new_user_share: float = 0.1  # ids outside the user table: preference lookups miss, like cold-start users
    fresh_share: float = 0.1  # candidates outside the query's pool (new inventory): relevance-cache misses
    missing_bucket_share: float = 0.05  # candidates sent without price/pop buckets (optional fields)
    top_k: int | None = None
    budget_ms: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.min_candidates <= self.max_candidates <= MAX_CANDIDATES_HARD:
            raise ValueError(
                f"need 1 <= min_candidates ({self.min_candidates}) <= max_candidates "
                f"({self.max_candidates}) <= {MAX_CANDIDATES_HARD}"
            )
        for name in ("new_user_share", "fresh_share", "missing_bucket_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be within [0, 1]")
        if self.user_zipf <= 0:
            raise ValueError(f"user_zipf={self.user_zipf} must be positive")


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if len(t) > 1 and t not in _STOP]


class CandidatePools:
    """Per-query candidate pools over one catalogue, shared by every generator in a process."""

    def __init__(self, catalogue: Catalogue, config: PayloadConfig) -> None:
        if len(catalogue.item_ids) < config.max_candidates:
            raise ValueError(
                f"catalogue has {len(catalogue.item_ids)} items, fewer than max_candidates="
                f"{config.max_candidates}"
            )
        self.catalogue, self.config = catalogue, config
        index: dict[str, list[int]] = {}
        for i, title in enumerate(catalogue.titles):
            for tok in set(_tokens(title)):
                index.setdefault(tok, []).append(i)
        self._index = {tok: np.asarray(ids, dtype=np.int64) for tok, ids in index.items()}
        self._pools: dict[int, np.ndarray] = {}

    def pool(self, query_idx: int) -> np.ndarray:
        """``max_candidates`` distinct item indices: most query tokens matched first, then random fill."""
        cached = self._pools.get(query_idx)
        if cached is not None:
            return cached
        rng = np.random.default_rng([self.config.seed, 7919, query_idx])  # independent of request order
        n_items, size = len(self.catalogue.item_ids), self.config.max_candidates
        matches = [self._index[t] for t in _tokens(self.catalogue.queries[query_idx]) if t in self._index]
        ranked = np.empty(0, dtype=np.int64)
        if matches:
            ids, hits = np.unique(np.concatenate(matches), return_counts=True)
            order = np.lexsort((rng.random(len(ids)), -hits))  # most tokens matched, ties shuffled
            ranked = ids[order][: int(size * 0.6)]
        taken = np.zeros(n_items, dtype=bool)
        taken[ranked] = True
        fill = rng.permutation(np.flatnonzero(~taken))[: size - len(ranked)]
        pool = np.concatenate([ranked, fill])
        self._pools[query_idx] = pool
        return pool


class PayloadGenerator:
    """One deterministic stream of request bodies; give each concurrent locust user its own ``stream``."""

    def __init__(self, pools: CandidatePools, stream: int = 0) -> None:
        self.pools, self.config, self.stream = pools, pools.config, stream
        cat = pools.catalogue
        self._rng = np.random.default_rng([self.config.seed, stream])
        self._query_cdf = np.cumsum(cat.query_weight)
        self._user_cdf = np.cumsum(zipf_weights(len(cat.user_ids), self.config.user_zipf))
        self._count = 0

    def _draw(self, cdf: np.ndarray) -> int:
        return min(int(np.searchsorted(cdf, self._rng.random() * cdf[-1], side="right")), len(cdf) - 1)

    def _candidates(self, query_idx: int, n: int) -> list[dict[str, Any]]:
        cat, rng = self.pools.catalogue, self._rng
        items = self.pools.pool(query_idx)[:n].copy()
        n_fresh = int(rng.binomial(n, self.config.fresh_share))
        if n_fresh:
            fresh = rng.choice(len(cat.item_ids), size=min(4 * n_fresh + 8, len(cat.item_ids)), replace=False)
            fresh = fresh[~np.isin(fresh, items)][:n_fresh]
            if len(fresh):
                items[rng.choice(n, size=len(fresh), replace=False)] = fresh
        no_buckets = rng.random(n) < self.config.missing_bucket_share
        out: list[dict[str, Any]] = []
        for i, drop in zip(items.tolist(), no_buckets.tolist(), strict=True):
            cand: dict[str, Any] = {"item_id": cat.item_ids[i], "title": cat.titles[i]}
            if not drop:
                cand["price_bucket"] = int(cat.price_bucket[i])
                cand["pop_bucket"] = int(cat.pop_bucket[i])
            out.append(cand)
        return out

    def next_payload(self) -> dict[str, Any]:
        """The next request body of this stream (same seed and stream: same sequence)."""
        cat, cfg = self.pools.catalogue, self.config
        self._count += 1
        query_idx = self._draw(self._query_cdf)
        if self._rng.random() < cfg.new_user_share:
            user_id = f"new-{cfg.seed}-{self.stream}-{self._count}"
        else:
            user_id = str(cat.user_ids[self._draw(self._user_cdf)])
        n = int(self._rng.integers(cfg.min_candidates, cfg.max_candidates + 1))
        body: dict[str, Any] = {
            "user_id": user_id,
            "query": str(cat.queries[query_idx]),
            "candidates": self._candidates(query_idx, n),
            "request_id": f"lt-{cfg.seed}-{self.stream}-{self._count}",
        }
        if cfg.top_k is not None:
            body["top_k"] = cfg.top_k
        if cfg.budget_ms is not None:
            body["budget_ms"] = cfg.budget_ms
        return body


def main(argv: list[str] | None = None) -> int:
    """Write payloads as JSON lines (to inspect them, or to feed a C load generator such as wrk)."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("-n", type=int, default=3, help="how many payloads")
    ap.add_argument("--data-dir", default=None, help="prectr data dir; synthetic catalogue when absent")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-candidates", type=int, default=50)
    ap.add_argument("--max-candidates", type=int, default=500)
    args = ap.parse_args(argv)
    cfg = PayloadConfig(
        seed=args.seed, min_candidates=args.min_candidates, max_candidates=args.max_candidates
    )
    gen = PayloadGenerator(CandidatePools(open_catalogue(args.data_dir, args.seed), cfg))
    for _ in range(args.n):
        sys.stdout.buffer.write(orjson.dumps(gen.next_payload()) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
