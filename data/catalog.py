"""The simulated world's static part: items, queries with latent strictness, labelled pairs, near misses.

Built from any :class:`~data.sources.RelevanceData`. Items and queries are addressed by dense indices here;
the written tables carry the external ids (``item_id`` = product_uid, ``query_id`` = query index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.config import SimConfig
from data.lexical import TitleIndex, brand_vocabulary, query_traits, words
from data.schema import SPLITS
from data.sources import RelevanceData
from features.normalize import normalize_query


@dataclass(frozen=True)
class Catalog:
    item_id: np.ndarray  # (I,) int64
    title: np.ndarray  # (I,) object
    price_bucket: np.ndarray  # (I,) int8 1..10
    pop_bucket: np.ndarray  # (I,) int8 1..10
    appeal: np.ndarray  # (I,) float32, latent
    query: np.ndarray  # (Q,) object, as typed
    query_norm: np.ndarray  # (Q,) object
    popularity: np.ndarray  # (Q,) float64, sums to 1
    strictness: np.ndarray  # (Q,) float32, latent s_q
    split: np.ndarray  # (Q,) object
    lab_ptr: np.ndarray  # (Q+1,) CSR offsets into lab_item / lab_level / lab_raw
    lab_item: np.ndarray  # item indices of the human-labelled products per query
    lab_level: np.ndarray  # int8 0..3
    lab_raw: np.ndarray  # float32 mean rater score
    near_ptr: np.ndarray  # (Q+1,) CSR offsets into near_item
    near_item: np.ndarray  # unlabelled items sharing content words with the query (level 0)

    @property
    def n_items(self) -> int:
        return len(self.item_id)

    @property
    def n_queries(self) -> int:
        return len(self.query)


def _buckets(latent: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Deciles 1..10 of a noisy copy of ``latent``: observable, correlated, never exact."""
    noisy = latent / max(latent.std(), 1e-9) + rng.normal(0.0, noise, latent.size)
    ranks = np.argsort(np.argsort(noisy, kind="stable"), kind="stable")
    return (1 + (10 * ranks) // max(latent.size, 1)).astype(np.int8)


def _subset(rel: RelevanceData, max_queries: int | None, catalog_seed: int) -> RelevanceData:
    terms, codes = np.unique(rel.search_term, return_inverse=True)
    if max_queries is None or max_queries >= terms.size:
        return rel
    keep = np.random.default_rng(catalog_seed).choice(terms.size, size=max_queries, replace=False)
    rows = np.isin(codes, keep)  # on integer codes: isin over Python strings is quadratic
    return RelevanceData(
        rel.pair_id[rows],
        rel.product_uid[rows],
        rel.product_title[rows],
        rel.search_term[rows],
        rel.relevance[rows],
        rel.origin,
        rel.sha256,
    )


def _strictness(
    query_words: list[list[str]], title_words: list[list[str]], cfg: SimConfig, rng: np.random.Generator
) -> np.ndarray:
    """Model-number, size and brand queries are strict, short generic ones lenient, plus noise."""
    traits = query_traits(query_words, brand_vocabulary(title_words))
    w = cfg.strictness_weights
    log_s = (
        cfg.strictness_log_base
        + w["model_number"] * traits["model_number"]
        + w["has_digit"] * traits["has_digit"]
        + w["brand"] * traits["brand"]
        + w["n_words"] * (np.clip(traits["n_words"], 1, 6) - 3)
    )
    return np.exp(log_s + rng.normal(0.0, cfg.strictness_noise, len(query_words))).astype(np.float32)


def _split_by_norm(query_norm: np.ndarray, shares: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Queries that normalise alike share a split, so held-out relevance queries are truly unseen."""
    norms, inverse = np.unique(query_norm, return_inverse=True)
    u = rng.random(norms.size)
    group = np.searchsorted(np.cumsum(shares)[:-1], u, side="right")
    return np.asarray(SPLITS, dtype=object)[group[inverse]]


def _item_latents(n: int, cfg: SimConfig, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Latent appeal (cheaper items slightly more appealing) and its noisy observable buckets."""
    price = rng.normal(size=n)
    appeal = rng.normal(0.0, cfg.appeal_sigma, n) - 0.15 * cfg.appeal_sigma * price
    return (
        appeal.astype(np.float32),
        _buckets(price, cfg.bucket_noise, rng),
        _buckets(appeal, cfg.bucket_noise, rng),
    )


def _near_misses(
    title_words: list[list[str]],
    query_words: list[list[str]],
    lab_ptr: np.ndarray,
    lab_item: np.ndarray,
    cfg: SimConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """CSR (offsets, items) of unlabelled items sharing content words with each query (one cheap loop)."""
    index = TitleIndex(title_words)
    near = [
        index.near_misses(ws, lab_item[lab_ptr[j] : lab_ptr[j + 1]], cfg.n_near, rng)
        for j, ws in enumerate(query_words)
    ]
    ptr = np.r_[0, np.cumsum([n.size for n in near])].astype(np.int64)
    return ptr, (np.concatenate(near) if near else np.zeros(0)).astype(np.int64)


def build_catalog(rel: RelevanceData, cfg: SimConfig, rngs: dict[str, np.random.Generator]) -> Catalog:
    """Items, queries and labelled/near-miss candidate lists from labelled pairs (METHOD.md §4)."""
    rel = _subset(rel, cfg.max_queries, cfg.catalog_seed)
    item_id, first, item_of = np.unique(rel.product_uid, return_index=True, return_inverse=True)
    query, query_of = np.unique(rel.search_term, return_inverse=True)
    titles = rel.product_title[first]
    appeal, price_bucket, pop_bucket = _item_latents(item_id.size, cfg, rngs["items"])
    order = np.lexsort((item_of, query_of))
    lab_ptr = np.searchsorted(query_of[order], np.arange(query.size + 1))
    lab_item = item_of[order].astype(np.int64)
    popularity = (rngs["queries"].permutation(query.size) + cfg.zipf_offset) ** -cfg.zipf_exponent
    query_norm = np.array([normalize_query(q) for q in query], dtype=object)
    query_words = [words(q) for q in query_norm]
    title_words = [words(normalize_query(t)) for t in titles]
    near_ptr, near_item = _near_misses(title_words, query_words, lab_ptr, lab_item, cfg, rngs["near"])
    return Catalog(
        item_id=item_id.astype(np.int64),
        title=titles,
        price_bucket=price_bucket,
        pop_bucket=pop_bucket,
        appeal=appeal,
        query=query,
        query_norm=query_norm,
        popularity=popularity / popularity.sum(),
        strictness=_strictness(query_words, title_words, cfg, rngs["queries"]),
        split=_split_by_norm(query_norm, cfg.split_shares, rngs["split"]),
        lab_ptr=lab_ptr,
        lab_item=lab_item,
        lab_level=rel.level[order],
        lab_raw=rel.relevance[order].astype(np.float32),
        near_ptr=near_ptr,
        near_item=near_item,
    )


def pair_keys(query_idx: np.ndarray, item_idx: np.ndarray, n_items: int) -> np.ndarray:
    """One int64 per (query, item) pair, for vectorised membership tests."""
    return np.asarray(query_idx, dtype=np.int64) * n_items + np.asarray(item_idx, dtype=np.int64)


def labelled_keys(cat: Catalog) -> np.ndarray:
    """Sorted pair keys of every labelled or near-miss (query, item): random draws must avoid them."""
    lab_q = np.repeat(np.arange(cat.n_queries), np.diff(cat.lab_ptr))
    near_q = np.repeat(np.arange(cat.n_queries), np.diff(cat.near_ptr))
    keys = np.concatenate(
        [pair_keys(lab_q, cat.lab_item, cat.n_items), pair_keys(near_q, cat.near_item, cat.n_items)]
    )
    return np.sort(keys)


def relevance_rows(cat: Catalog, n_negatives: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Human-labelled pairs plus ``n_negatives`` random unlabelled items per query (level 0, raw NaN)."""
    lab_q = np.repeat(np.arange(cat.n_queries), np.diff(cat.lab_ptr))
    neg_q = np.repeat(np.arange(cat.n_queries), n_negatives)
    neg_i = rng.integers(cat.n_items, size=neg_q.size)
    keys = pair_keys(neg_q, neg_i, cat.n_items)
    _, first = np.unique(keys, return_index=True)
    ok = np.zeros(keys.size, dtype=bool)
    ok[first] = True
    ok &= ~np.isin(keys, labelled_keys(cat))
    q = np.concatenate([lab_q, neg_q[ok]])
    return {
        "query_id": q.astype(np.int64),
        "item_id": cat.item_id[np.concatenate([cat.lab_item, neg_i[ok]])],
        "level": np.concatenate([cat.lab_level, np.zeros(int(ok.sum()), np.int8)]).astype(np.int8),
        "relevance_raw": np.concatenate([cat.lab_raw, np.full(int(ok.sum()), np.nan, np.float32)]),
        "split": cat.split[q],
    }
