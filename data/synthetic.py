"""A synthetic catalogue with Home Depot's schema, so a fresh clone without the shared data runs end to end.

Products combine a brand, a product type and attributes (size, material, colour, sometimes a model number)
into a title. Each query is derived from an anchor product's fields (``"drill"``, ``"36 in. vanity"``,
``"acme drill"``, ``"hx-4120"``), sometimes with a typo. Its labelled products are drawn from the same type,
the same brand and at random; three simulated raters score each pair from field matches plus noise, and the
mean (1.0, 1.33, ..., 3.0, like the real file) is the raw relevance.
"""

from __future__ import annotations

import hashlib

import numpy as np

from data.sources import RelevanceData
from data.synthetic_vocab import BRANDS, COLORS, MATERIALS, SIZES, TYPES

ATTRS = ("brand", "size", "material", "color")
VOCABS = {"brand": BRANDS, "type": TYPES, "color": COLORS, "material": MATERIALS, "size": SIZES}
FAMILY_SIZE = 5  # a product line: same brand, type and material in several sizes and colours


def _typo(rng: np.random.Generator, text: str) -> str:
    """Drop or double one character of a word longer than 3 letters (queries are often misspelled)."""
    words = text.split()
    long_words = [i for i, w in enumerate(words) if len(w) > 3]
    if not long_words:
        return text
    i = long_words[rng.integers(len(long_words))]
    j = int(rng.integers(1, len(words[i]) - 1))
    w = words[i]
    words[i] = w[:j] + w[j + 1 :] if rng.random() < 0.5 else w[:j] + w[j] + w[j:]
    return " ".join(words)


def _products(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    n_families = max(1, n // FAMILY_SIZE)
    family = np.sort(rng.integers(n_families, size=n))
    f = {
        name: rng.integers(len(VOCABS[name]), size=n_families)[family]
        for name in ("brand", "type", "material")
    }
    f |= {name: rng.integers(len(VOCABS[name]), size=n) for name in ("color", "size")}
    f["family"] = family
    letters = np.array(list("ABCDEFGHJKLMNPRSTVWXZ"))
    codes = letters[rng.integers(len(letters), size=(n, 2))]
    digits = rng.integers(1000, 9999, size=n)
    f["model"] = np.array([f"{a}{b}-{d}" for (a, b), d in zip(codes, digits, strict=True)], dtype=object)
    f["shows_model"] = rng.random(n) < 0.6
    f["title"] = np.array(
        [
            f"{BRANDS[b]} {SIZES[s]} {MATERIALS[m]} {TYPES[t]} in {COLORS[c]}" + (f" #{mo}" if sm else "")
            for b, s, m, t, c, mo, sm in zip(
                f["brand"],
                f["size"],
                f["material"],
                f["type"],
                f["color"],
                f["model"],
                f["shows_model"],
                strict=True,
            )
        ],
        dtype=object,
    )
    return f


def _query_text(fields: np.ndarray, p: dict[str, np.ndarray], a: int) -> str:
    """``fields``: bool mask over (brand, size, material, color, type); all False means a model query."""
    if not fields.any():
        return str(p["model"][a]).lower()
    words = [VOCABS[name][p[name][a]] for name, on in zip((*ATTRS, "type"), fields, strict=True) if on]
    return " ".join(words).lower()


def _scores(fields: np.ndarray, anchor: np.ndarray, prod: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Latent relevance 1..3 of ``prod`` for the query built from ``anchor`` and its field mask."""
    hits = np.stack([p[name][anchor] == p[name][prod] for name in ATTRS], axis=1)
    asked = fields[:, : len(ATTRS)]
    frac = np.where(asked.any(axis=1), (hits & asked).sum(axis=1) / np.maximum(asked.sum(axis=1), 1), 1.0)
    same_type = p["type"][anchor] == p["type"][prod]
    score = np.where(same_type, 2.1 + 0.9 * frac, 1.0 + 0.3 * frac)
    brand_only = asked[:, 0] & ~fields[:, 1:].any(axis=1)
    score = np.where(brand_only, np.where(hits[:, 0], 2.8, 1.0), score)
    same_family = p["family"][anchor] == p["family"][prod]
    model_score = np.where(anchor == prod, 3.0, np.where(same_family, 2.2, np.where(same_type, 1.6, 1.0)))
    return np.where(fields.any(axis=1), score, model_score)


def _query_fields(rng: np.random.Generator, n: int, shows_model: np.ndarray) -> np.ndarray:
    """Which anchor fields each query names: model number (10%), brand alone (6%), else type + attributes."""
    fields = np.zeros((n, len(ATTRS) + 1), dtype=bool)
    fields[:, : len(ATTRS)] = rng.random((n, len(ATTRS))) < (0.35, 0.25, 0.15, 0.25)
    fields[:, -1] = True
    kind = rng.random(n)
    fields[(kind < 0.06)] = (True, False, False, False, False)
    fields[(kind >= 0.06) & (kind < 0.16) & shows_model] = False
    return fields


def generate_synthetic(n_queries: int, n_products: int, seed: int = 0) -> RelevanceData:
    """Labelled pairs for ``n_queries`` distinct queries over ``n_products`` products; deterministic in seed."""
    if n_queries < 1 or n_products < 50:
        raise ValueError(f"need n_queries >= 1 and n_products >= 50, got {n_queries}, {n_products}")
    rng = np.random.default_rng(seed)
    p = _products(rng, n_products)
    anchors = rng.integers(n_products, size=4 * n_queries)
    fields = _query_fields(rng, anchors.size, p["shows_model"][anchors])
    typos = rng.random(anchors.size) < 0.12
    texts: dict[str, int] = {}
    for i, a in enumerate(anchors.tolist()):
        text = _query_text(fields[i], p, a)
        texts.setdefault(_typo(rng, text) if typos[i] else text, i)
        if len(texts) == n_queries:
            break
    pick = np.fromiter(texts.values(), dtype=np.int64, count=len(texts))
    q_text = np.array(list(texts), dtype=object)
    return _label_pairs(rng, p, q_text, anchors[pick], fields[pick], seed)


def _label_pairs(
    rng: np.random.Generator,
    p: dict[str, np.ndarray],
    q_text: np.ndarray,
    q_anchor: np.ndarray,
    q_fields: np.ndarray,
    seed: int,
) -> RelevanceData:
    n_products = len(p["title"])
    n_lab = np.clip(rng.poisson(5.5, size=q_text.size) + 1, 1, 16)
    q = np.repeat(np.arange(q_text.size), n_lab)
    how = rng.choice(4, size=q.size, p=(0.5, 0.35, 0.1, 0.05))  # same family / type / brand / random
    prod = rng.integers(n_products, size=q.size)
    for how_id, field in ((0, "family"), (1, "type"), (2, "brand")):
        order = np.argsort(p[field], kind="stable")
        starts = np.searchsorted(p[field][order], np.arange(p[field].max() + 2))
        sel = how == how_id
        val = p[field][q_anchor[q[sel]]]
        span = starts[val + 1] - starts[val]
        prod[sel] = order[starts[val] + (rng.random(sel.sum()) * span).astype(np.int64)]
    first = np.r_[True, q[1:] != q[:-1]]
    prod = np.where(first & ~q_fields[q].any(axis=1), q_anchor[q], prod)  # a model query finds its model
    _, keep = np.unique(q * n_products + prod, return_index=True)
    q, prod = q[np.sort(keep)], prod[np.sort(keep)]
    score = _scores(q_fields[q], q_anchor[q], prod, p)
    ratings = np.clip(np.rint(score[:, None] + rng.normal(0.0, 0.5, size=(q.size, 3))), 1, 3)
    digest = hashlib.sha256(f"synthetic-v1:{q_text.size}:{n_products}:{seed}".encode()).hexdigest()
    return RelevanceData(
        pair_id=np.arange(1, q.size + 1, dtype=np.int64),
        product_uid=(100_001 + prod).astype(np.int64),
        product_title=p["title"][prod],
        search_term=q_text[q],
        relevance=np.round(ratings.mean(axis=1), 2),
        origin=f"synthetic(n_queries={q_text.size}, n_products={n_products}, seed={seed})",
        sha256=digest,
    )
