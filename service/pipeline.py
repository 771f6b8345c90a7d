"""``POST /score`` end to end: limits, cache, admission, tokenisation || prefs, encoder, head, fusion.

The relevance cache is looked up first (microseconds) so that only cache misses are tokenised and so that
admission control (:mod:`service.admission`) knows how many encoder rows the request really needs. The
preference lookup (network) then overlaps tokenisation when that runs in a worker thread (titles not
seen before; HF tokenizers release the GIL) and always the encoder, which starts as soon as its rows
exist. Everything after that is named numpy arrays handed to the two batchers; while the encoder workers
run, this thread builds the preference feeds. New encoder outputs are cached after the response is
written."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from features.head_inputs import preference_feeds, request_id_matrix
from features.text import TextEncoder
from service.admission import CompletionCalibration, admit, check_limits
from service.fusion import fuse_results
from service.metrics import PREF_OUTCOMES, ServiceMetrics
from service.prefs import PreferenceStore, lookup_with_backstop
from service.relevance_cache import RelevanceCache
from service.runtime import ModelRuntime
from service.schemas import ScoreRequest
from service.scorer import TOKEN_INPUTS, Feeds
from service.settings import Settings

log = logging.getLogger("prectr.service")


@dataclass
class ScoreOutcome:
    body: dict
    timings_ms: dict[str, float]
    degraded: list[str] = field(default_factory=list)
    # Work that may wait until the response is written (the relevance-cache put): the route schedules it
    # on the event loop just before handing the response over, so it runs once the bytes are out.
    after_response: Callable[[], None] | None = None


def encode_by_bucket(
    text: TextEncoder, query: str, titles: Sequence[str], known: Sequence[np.ndarray | None] | None = None
) -> tuple[list[tuple[int, np.ndarray, Feeds]], list[np.ndarray]]:
    """Tokenise the query once and every title not in ``known``, then group rows by their length bucket.

    Returns the bucket groups ``(bucket, row positions, feeds padded to the bucket)`` and every title's
    token ids (for the title token cache).
    """
    known = known if known is not None else [None] * len(titles)
    todo = [i for i, ids in enumerate(known) if ids is None]
    fresh = iter(text.tokenize_titles_compact([titles[i] for i in todo]) if todo else [])
    title_ids = [ids if ids is not None else next(fresh) for ids in known]
    groups = [
        (bucket, rows, pairs.as_feeds(TOKEN_INPUTS))
        for bucket, rows, pairs in text.assemble_by_bucket(text.tokenize_query(query), title_ids)
    ]
    return groups, title_ids


class ScoringPipeline:
    def __init__(
        self,
        settings: Settings,
        store: PreferenceStore,
        cache: RelevanceCache,
        metrics: ServiceMetrics,
        cpu_pool: Executor,
    ) -> None:
        self.server, self.metrics, self.cache, self.store, self.cpu_pool = (
            settings.server,
            metrics,
            cache,
            store,
            cpu_pool,
        )
        self.pref_deadline_s = settings.redis.deadline_ms / 1000.0
        self.calibration = CompletionCalibration()

    async def score(
        self, req: ScoreRequest, rt: ModelRuntime, deadline: float, started: float
    ) -> ScoreOutcome:
        """Score one request on runtime ``rt``; ``deadline`` is in loop time, ``started`` a perf_counter."""
        t0 = time.perf_counter()
        query_norm = check_limits(req, self.server)
        n, info = len(req.candidates), rt.info
        item_ids = [c["item_id"] for c in req.candidates]
        titles = [c["title"] for c in req.candidates]
        degraded: list[str] = []
        rel_vec = np.empty((n, info.rel_dim), np.float32)  # (N, D)
        rel_logits = np.empty((n, len(info.level_names)), np.float32)  # (N, K)
        cache_works, miss_idx = self._lookup_cache(
            info.version, query_norm, item_ids, titles, rel_vec, rel_logits, degraded
        )
        predicted = admit(
            rt, len(miss_idx), n, deadline, fixed_s=self.pref_deadline_s, calibration=self.calibration
        )
        admitted, completed = time.perf_counter(), False
        # Until this request's rows reach the batchers, later requests' admission counts them as ahead.
        enc_hold, head_hold = rt.encoder.hold(len(miss_idx)), rt.head.hold(n)
        try:
            ms = {"features": time.perf_counter() - t0, "queue": 0.0, "encoder": 0.0}

            # The preference lookup (a network round trip) overlaps the encoder, and the tokenizer when new
            # titles send it to a worker thread: the encoder starts before the lookup is awaited.
            prefs_task = asyncio.ensure_future(
                lookup_with_backstop(self.store, req.query, req.user_id, self.pref_deadline_s)
            )
            encoding = None
            try:
                t_tok = time.perf_counter()
                # Built before the encoder starts, so that afterwards this thread holds the GIL only
                # briefly and the woken encoder workers start at once.
                ids = self._id_feed(rt, req, query_norm, item_ids)
                groups = (
                    await self._tokenise(rt, req.query, [titles[i] for i in miss_idx])
                    if len(miss_idx)
                    else []
                )
                t_enc = time.perf_counter()
                ms["features"] += t_enc - t_tok
                if groups:
                    encoding = rt.encoder.enqueue([(f, len(r), b) for b, r, f in groups], deadline)
                enc_hold.release()
                prefs = await prefs_task
                # While the workers run the encoder, this thread builds the head's other inputs.
                t_ctx = time.perf_counter()
                hc = rt.scorer.head_config
                feeds = {
                    "ids": ids,
                    **preference_feeds(
                        prefs.qpref, prefs.upref, n, hc.buckets["item"], hc.smoothing, hc.history_len
                    ),
                }
                ms["features"] += time.perf_counter() - t_ctx
                encoded = await encoding.results() if encoding is not None else []
            except BaseException:
                if encoding is not None:
                    encoding.cancel()
                raise
            finally:
                prefs_task.cancel()  # no-op once done; stops the lookup if anything before it failed
            self.metrics.pref_lookups.labels(
                prefs.outcome if prefs.outcome in PREF_OUTCOMES else "error"
            ).inc()
            if prefs.degraded:
                self.metrics.degraded.labels("preferences_unavailable").inc()
                degraded.append("preferences_unavailable")
            if encoded:
                ms["queue"] = max(r.queue_s for r in encoded)
                ms["encoder"] = time.perf_counter() - t_enc - ms["queue"]
            for (_, rows, _), res in zip(groups, encoded, strict=True):
                dest = miss_idx[rows]
                rel_vec[dest], rel_logits[dest] = res.outputs["rel_vec"], res.outputs["rel_logits"]
            feeds |= {"rel_vec": rel_vec, "rel_logits": rel_logits}

            t_head = time.perf_counter()
            heading = rt.head.enqueue([(feeds, n, None)], deadline)
            head_hold.release()
            try:
                (head,) = await heading.results()
            except BaseException:
                heading.cancel()
                raise
            after_response = None
            if cache_works and encoded and self._admit(info.version, query_norm):
                # Off the latency path, and not while the head worker needs the GIL: see after_response.
                after_response = functools.partial(
                    self._remember,
                    (info.version, query_norm),
                    item_ids,
                    titles,
                    rel_vec,
                    rel_logits,
                    miss_idx,
                )
            t_fuse = time.perf_counter()
            results_body = fuse_results(head.outputs, item_ids, sort=req.sort, top_k=req.top_k)
            done = time.perf_counter()
            ms["features"] += done - t_fuse
            ms |= {
                "prefs": prefs.elapsed_ms / 1000,
                "head": t_fuse - t_head - head.queue_s,
                "total": done - started,
            }
            ms["queue"] += head.queue_s
            body = {
                "model_version": info.version,
                "level_names": list(info.level_names),
                "results": results_body,
                "degraded": degraded,
            }
            completed = True
        finally:
            enc_hold.release()
            head_hold.release()
            if completed or asyncio.get_running_loop().time() >= deadline:  # done, or timed out
                self.calibration.observe(predicted, time.perf_counter() - admitted)
        order = ("features", "prefs", "queue", "encoder", "head", "total")
        return ScoreOutcome(body, {k: ms[k] * 1000 for k in order}, degraded, after_response)

    def _admit(self, version: str, query_norm: str) -> bool:
        """Whether a request's new encoder outputs go into the relevance cache (counted either way, unless
        the cache is off)."""
        if not self.cache.capacity:
            return False
        admitted = self.cache.admit(version, query_norm)
        self.metrics.cache_admissions.labels("stored" if admitted else "deferred").inc()
        return admitted

    def _remember(
        self,
        version_query: tuple[str, str],
        item_ids: list[str],
        titles: list[str],
        rel_vec: np.ndarray,
        rel_logits: np.ndarray,
        rows: np.ndarray,
    ) -> None:
        """Store a request's new encoder outputs (its ``rows``) in the relevance cache."""
        try:
            new = rows.tolist()
            self.cache.put_request(
                *version_query,
                [item_ids[i] for i in new],
                [titles[i] for i in new],
                rel_vec[rows],
                rel_logits[rows],
            )
        except Exception:  # the cache is an optimisation; the request was answered already
            log.exception("relevance cache put failed")

    async def _tokenise(
        self, rt: ModelRuntime, query: str, titles: list[str]
    ) -> list[tuple[int, np.ndarray, Feeds]]:
        """Pair inputs for the cache misses; known titles skip the tokenizer.

        The tokenizer runs in a worker thread (it releases the GIL); when every title is known only the
        query is tokenised and rows assembled (~0.2 ms for 200), cheaper inline than a thread round trip.
        """
        known = rt.title_tokens.get_many(titles)
        if all(k is not None for k in known):
            groups, title_ids = encode_by_bucket(rt.scorer.text, query, titles, known)
        else:
            groups, title_ids = await asyncio.get_running_loop().run_in_executor(
                self.cpu_pool, encode_by_bucket, rt.scorer.text, query, titles, known
            )
        new = [i for i, k in enumerate(known) if k is None]
        rt.title_tokens.put_many([titles[i] for i in new], [title_ids[i] for i in new])
        return groups

    @staticmethod
    def _id_feed(rt: ModelRuntime, req: ScoreRequest, query_norm: str, item_ids: list[str]) -> np.ndarray:
        """The head's ``ids`` input: hashed user, items and query, price and popularity buckets."""
        n, cands = len(item_ids), req.candidates
        return request_id_matrix(
            req.user_id,
            item_ids,
            query_norm,
            np.fromiter((c.get("price_bucket") or 0 for c in cands), np.int64, n),
            np.fromiter((c.get("pop_bucket") or 0 for c in cands), np.int64, n),
            rt.scorer.head_config.buckets,
        )

    def _lookup_cache(
        self,
        version: str,
        query_norm: str,
        item_ids: list[str],
        titles: list[str],
        rel_vec: np.ndarray,
        rel_logits: np.ndarray,
        degraded: list[str],
    ) -> tuple[bool, np.ndarray]:
        """Copy cached rows into ``rel_vec``/``rel_logits``; returns whether the cache works (new rows are
        worth storing) and the positions missed."""
        n = len(item_ids)
        try:
            hit, vec, logits = self.cache.get_request(version, query_norm, item_ids, titles)
        except Exception:  # the cache is an optimisation: never fail a request because of it
            log.exception("relevance cache lookup failed")
            self.metrics.degraded.labels("relevance_cache_error").inc()
            degraded.append("relevance_cache_error")
            return False, np.arange(n, dtype=np.int64)
        if len(hit):
            rel_vec[hit], rel_logits[hit] = vec, logits
        self.metrics.cache_lookups.labels("hit").inc(len(hit))
        self.metrics.cache_lookups.labels("miss").inc(n - len(hit))
        missed = np.ones(n, dtype=bool)
        missed[hit] = False
        return True, np.flatnonzero(missed)
