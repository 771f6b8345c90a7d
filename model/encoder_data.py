"""(query, item) text pairs for the relevance encoders, read from the tables ``prectr data build`` writes.

Queries are always the *normalised* text (``queries.query_norm``): the service normalises before it
tokenises and caches by normalised query, so the encoders must learn on exactly that text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.tables import DataDirError, read_meta, read_table

SPLITS = ("train", "valid", "test")


class EncoderDataError(ValueError):
    """The data directory is missing, incomplete or lacks the rows a command needs."""


@dataclass(frozen=True)
class Pairs:
    """Row-aligned pairs; ``level`` is -1 where no label is known."""

    query: np.ndarray  # object, normalised query text
    item_id: np.ndarray  # int64
    title: np.ndarray  # object
    level: np.ndarray  # int64
    query_id: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.item_id)

    def subset(self, idx: np.ndarray) -> Pairs:
        return Pairs(self.query[idx], self.item_id[idx], self.title[idx], self.level[idx], self.query_id[idx])

    @staticmethod
    def concat(parts: list[Pairs]) -> Pairs:
        return Pairs(*(np.concatenate([getattr(p, f) for p in parts]) for f in Pairs.__dataclass_fields__))


class EncoderData:
    """Items, queries, relevance and impressions of one data directory (read via :mod:`model.tables`)."""

    def __init__(self, data_dir: str | Path) -> None:
        try:
            self.meta = read_meta(data_dir)
        except DataDirError as exc:
            raise EncoderDataError(str(exc)) from exc
        self.root = self.meta.root
        items = self._read("items", ("item_id", "title"))
        order = np.argsort(items["item_id"])
        self._item_ids = items["item_id"][order]
        self._titles = items["title"][order]
        queries = self._read("queries", ("query_id", "query_norm", "split"))
        order = np.argsort(queries["query_id"])
        self._query_ids = queries["query_id"][order]
        self._query_norm = queries["query_norm"][order]
        self._query_split = queries["split"][order]

    @property
    def fingerprint(self) -> str:
        return self.meta.fingerprint

    def _read(self, table: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        try:
            return read_table(self.root, table, columns)
        except DataDirError as exc:
            raise EncoderDataError(str(exc)) from exc

    @staticmethod
    def _lookup(keys: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
        pos = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
        unknown = keys[pos] != wanted
        if unknown.any():
            raise EncoderDataError(f"{int(unknown.sum())} {what} ids are unknown, e.g. {wanted[unknown][0]}")
        return pos

    def titles_for(self, item_ids: np.ndarray) -> np.ndarray:
        return self._titles[self._lookup(self._item_ids, np.asarray(item_ids), "item")]

    def catalogue_titles(self) -> np.ndarray:
        return self._titles

    def queries_of_split(self, split: str) -> list[str]:
        return self._query_norm[self._query_split == split].tolist()

    def split_of(self, query_ids: np.ndarray) -> np.ndarray:
        return self._query_split[self._lookup(self._query_ids, np.asarray(query_ids), "query")]

    def _pairs(self, query_id: np.ndarray, item_id: np.ndarray, level: np.ndarray) -> Pairs:
        query = self._query_norm[self._lookup(self._query_ids, query_id, "query")]
        return Pairs(
            query,
            item_id.astype(np.int64),
            self.titles_for(item_id),
            level.astype(np.int64),
            query_id.astype(np.int64),
        )

    def relevance_pairs(self, splits: tuple[str, ...]) -> Pairs:
        """Labelled pairs (human labels + sampled level-0 negatives) of queries in ``splits``."""
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise EncoderDataError(f"unknown split(s) {sorted(unknown)}; expected {SPLITS}")
        rel = self._read("relevance", ("query_id", "item_id", "level", "split"))
        keep = np.isin(rel["split"], list(splits))
        return self._pairs(rel["query_id"][keep], rel["item_id"][keep], rel["level"][keep])

    def impression_pairs(self, query_splits: tuple[str, ...] = ("train",)) -> Pairs:
        """Distinct (query, item) pairs exposed on training days, for queries in ``query_splits``.

        Restricting to train-split queries keeps held-out queries unseen by the student, so the relevance
        evaluation on the test split stays clean; the logged true level is kept as the pair's label.
        """
        imp = self._read("impressions", ("day", "query_id", "item_id", "level"))
        keep = (imp["day"] <= self.meta.train_days) & np.isin(
            self.split_of(imp["query_id"]), list(query_splits)
        )
        keys = np.stack([imp["query_id"][keep], imp["item_id"][keep]], axis=1).astype(np.int64)
        uniq, first = np.unique(keys, axis=0, return_index=True)
        return self._pairs(uniq[:, 0], uniq[:, 1], imp["level"][keep][first])
