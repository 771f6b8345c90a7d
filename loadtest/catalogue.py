"""The catalogue payloads are drawn from: the benchmark tables when a data dir is given, else a synthetic one.

Load-test realism rests on three things the service is sensitive to: query popularity (it drives the
relevance-cache hit ratio), title length (it drives tokenisation and encoder cost) and the share of users
with stored preferences. The data dir written by ``prectr data build`` has all three; the synthetic
catalogue imitates them so a fresh clone can load-test without building data first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def _vocab(text: str) -> tuple[str, ...]:
    """The synthetic catalogue's vocabulary, written "|"-separated to keep it compact."""
    return tuple(text.split("|"))


_BRANDS = _vocab(
    "DEWALT|Milwaukee|RYOBI|Husky|Glacier Bay|Hampton Bay|Delta|Moen|BEHR|Rust-Oleum|Everbilt|"
    "Commercial Electric|Home Decorators Collection|Kohler|GE|Leviton|Lithonia|Makita|BLACK+DECKER|"
    "Pfister|Schlage|Kwikset|Quikrete"
)
_TYPES = _vocab(
    "Cordless Drill/Driver Kit|Circular Saw|Ceiling Fan with Light Kit|LED Flush Mount Light|"
    "Bathroom Vanity with Top|Pull-Down Kitchen Faucet|Rain Shower Head|Elongated Toilet Seat|"
    "Entry Door Knob|Single Cylinder Deadbolt|Garden Hose|Self-Propelled Lawn Mower|"
    "Cordless Leaf Blower|Paint Roller Cover|Exterior Satin Paint|Wood Screws|Drywall Anchors|"
    "PVC Pipe|Copper Pipe Fitting|Luxury Vinyl Plank Flooring|Area Rug|Wall Shelf|Rolling Tool Chest|"
    "Outdoor Extension Cord|Decorator Light Switch|Smoke Alarm|Electric Water Heater|Patio Umbrella|"
    "Cordless Window Blind|Wall Mount Mailbox"
)
_SIZES = _vocab(
    "1/2 in.|3/4 in.|1-1/4 in.|2 in.|6 in.|12 in.|24 in.|36 in.|48 in.|52 in.|1 gal.|5 gal.|25 ft.|"
    "50 ft.|100 ft.|20V|18V|40V MAX"
)
_FINISHES = _vocab(
    "White|Matte Black|Chrome|Brushed Nickel|Oil-Rubbed Bronze|Gray|Natural Oak|Espresso|"
    "Stainless Steel|Satin Nickel|Almond|Bronze"
)
_EXTRAS = _vocab(
    "(2-Pack)|(Tool-Only)|with Battery and Charger|Energy Star|(10-Pack)|with Remote Control|"
    "Water-Resistant|Heavy Duty|Lifetime Warranty|"
)


@dataclass(frozen=True)
class Catalogue:
    """Items and queries as flat arrays; ``query_weight`` sums to 1 (the Zipf sampling probability)."""

    item_ids: np.ndarray  # (I,) object str
    titles: np.ndarray  # (I,) object str
    price_bucket: np.ndarray  # (I,) int64, 0 = unknown
    pop_bucket: np.ndarray  # (I,) int64, 0 = unknown
    queries: np.ndarray  # (Q,) object str
    query_weight: np.ndarray  # (Q,) float64
    user_ids: np.ndarray  # (U,) object str, most active first (Zipf rank order)

    def __post_init__(self) -> None:
        if len(self.item_ids) == 0 or len(self.queries) == 0:
            raise ValueError("catalogue needs at least one item and one query")
        if len(set(self.item_ids.tolist())) != len(self.item_ids):
            raise ValueError("catalogue item_ids are not unique")


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Probability of rank r (1-based) proportional to r^-exponent, normalised."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def synthetic_catalogue(
    seed: int = 0,
    n_items: int = 20_000,
    n_queries: int = 2_000,
    n_users: int = 50_000,
    query_zipf: float = 1.07,
) -> Catalogue:
    """Home-improvement style titles and queries built from the same vocabulary, so queries match titles."""
    if n_items < 1 or n_queries < 1 or n_users < 1:
        raise ValueError(
            f"sizes must be positive: n_items={n_items}, n_queries={n_queries}, n_users={n_users}"
        )
    rng = np.random.default_rng(seed)
    b, t, s, f, e = (
        rng.integers(len(v), size=n_items).tolist() for v in (_BRANDS, _TYPES, _SIZES, _FINISHES, _EXTRAS)
    )
    model_no = rng.integers(100, 99_999, size=n_items)
    titles = np.array(
        [
            " ".join(p for p in (_BRANDS[bi], _SIZES[si], _TYPES[ti], "in", _FINISHES[fi], _EXTRAS[ei]) if p)
            + (f" {_BRANDS[bi][:2].upper()}{mn}" if mn % 3 == 0 else "")
            for bi, ti, si, fi, ei, mn in zip(b, t, s, f, e, model_no.tolist(), strict=True)
        ],
        dtype=object,
    )
    anchors = rng.integers(n_items, size=n_queries)
    forms = rng.integers(4, size=n_queries)
    queries = [
        (
            _TYPES[t[a]].split()[-1],
            f"{_BRANDS[b[a]]} {_TYPES[t[a]]}",
            f"{_SIZES[s[a]]} {_TYPES[t[a]]}",
            f"{_FINISHES[f[a]]} {_TYPES[t[a]].split()[-1]}",
        )[k].lower()
        for a, k in zip(anchors.tolist(), forms.tolist(), strict=True)
    ]
    queries = list(dict.fromkeys(queries))  # distinct, first (most popular) occurrence wins
    return Catalogue(
        item_ids=np.array([str(100_000 + i) for i in range(n_items)], dtype=object),
        titles=titles,
        price_bucket=rng.integers(1, 11, size=n_items),
        pop_bucket=rng.integers(1, 11, size=n_items),
        queries=np.array(queries, dtype=object),
        query_weight=zipf_weights(len(queries), query_zipf),
        user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
    )


def load_catalogue(data_dir: str | Path, n_users: int = 50_000) -> Catalogue:
    """Items, queries (with their popularity) and users from the Parquet tables of ``prectr data build``."""
    import pyarrow.parquet as pq  # only needed here; synthetic runs do not pay for it

    root = Path(data_dir)
    for name in ("items", "queries"):
        if not (root / f"{name}.parquet").is_file():
            raise FileNotFoundError(f"{root / (name + '.parquet')} is missing: run `prectr data build` first")
    items = pq.read_table(root / "items.parquet", columns=["item_id", "title", "price_bucket", "pop_bucket"])
    qs = pq.read_table(root / "queries.parquet", columns=["query", "popularity"])
    weight = np.asarray(qs.column("popularity").to_numpy(), dtype=np.float64)
    if not np.all(np.isfinite(weight)) or weight.sum() <= 0:
        raise ValueError(f"{root / 'queries.parquet'}: popularity must be finite and sum to a positive value")
    users_path = root / "users.parquet"
    if users_path.is_file():  # real ids, most active first: Zipf draws then hit stored preferences
        users = pq.read_table(users_path, columns=["user_id", "activity"]).sort_by(
            [("activity", "descending")]
        )
        user_ids = np.array([str(u) for u in users.column("user_id").to_pylist()], dtype=object)
    else:
        user_ids = np.array([f"u{i}" for i in range(n_users)], dtype=object)
    as_int = lambda col: np.nan_to_num(items.column(col).to_numpy(zero_copy_only=False)).astype(np.int64)  # noqa: E731
    return Catalogue(
        item_ids=np.array([str(i) for i in items.column("item_id").to_pylist()], dtype=object),
        titles=np.array(items.column("title").to_pylist(), dtype=object),
        price_bucket=as_int("price_bucket"),
        pop_bucket=as_int("pop_bucket"),
        queries=np.array(qs.column("query").to_pylist(), dtype=object),
        query_weight=weight / weight.sum(),
        user_ids=user_ids,
    )


def open_catalogue(data_dir: str | Path | None, seed: int = 0) -> Catalogue:
    """The benchmark tables when ``data_dir`` exists, else the synthetic catalogue (with a warning).

    A directory that exists but lacks a table is an error, not a fallback: that is a broken data build.
    """
    if data_dir is None or str(data_dir) == "":
        return synthetic_catalogue(seed)
    if not Path(data_dir).is_dir():
        logger.warning("data dir %s does not exist: using the synthetic catalogue", data_dir)
        return synthetic_catalogue(seed)
    return load_catalogue(data_dir)
