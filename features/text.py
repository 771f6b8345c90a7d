"""(query, [titles]) -> padded pair inputs for the cross-encoder, identical in training and serving.

Layout of one row: ``[CLS] query [SEP] title [SEP] [PAD]...``; ``token_type_ids`` is 0 for the query
segment and 1 for the title segment. The query is tokenised once per request. Rows are padded to the
smallest length bucket that fits the longest row, so shapes stay in a small warmed set.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from features.tokenizer import CLS_ID, PAD_ID, SEP_ID, load_tokenizer

DEFAULT_BUCKETS = (16, 24, 32, 48, 64)
TokenRow = Sequence[int] | np.ndarray  # one text's token ids: a list, or an integer array (cached titles)


@dataclass(frozen=True, slots=True)
class EncodedPairs:
    """Named int64 arrays, shape ``(N, L)``, ready for ONNX Runtime or torch."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.input_ids.shape  # type: ignore[return-value]

    def as_feeds(self, names: Sequence[str] = ("input_ids", "attention_mask")) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in names}

    def block(self, first: int, end: int, width: int) -> EncodedPairs:
        """Rows ``first:end``, the first ``width`` columns (views, not copies)."""
        return EncodedPairs(
            self.input_ids[first:end, :width],
            self.attention_mask[first:end, :width],
            self.token_type_ids[first:end, :width],
        )


class TextEncoder:
    """Turns a query and its candidate titles into cross-encoder pair inputs."""

    def __init__(
        self,
        tokenizer: Tokenizer | str | Path,
        max_len: int = 64,
        max_query_len: int = 16,
        buckets: Sequence[int] = DEFAULT_BUCKETS,
    ) -> None:
        self.tokenizer = tokenizer if isinstance(tokenizer, Tokenizer) else load_tokenizer(tokenizer)
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        buckets = tuple(sorted(int(b) for b in buckets))
        if not buckets or buckets[-1] != max_len:
            raise ValueError(f"length buckets {buckets} must end at max_len={max_len}")
        if not 1 <= max_query_len <= max_len - 4:
            raise ValueError(
                f"max_query_len={max_query_len} must leave room for a title in max_len={max_len}"
            )
        self.max_len = max_len
        self.max_query_len = max_query_len
        self.buckets = buckets
        self._bucket_array = np.asarray(buckets, dtype=np.int64)

    def bucket_for(self, length: int) -> int:
        """Smallest bucket >= ``length`` (lengths above max_len were already truncated)."""
        for bucket in self.buckets:
            if length <= bucket:
                return bucket
        return self.buckets[-1]

    def buckets_for(self, lengths: np.ndarray) -> np.ndarray:
        """:meth:`bucket_for` of every length at once."""
        at = np.searchsorted(self._bucket_array, lengths, side="left")
        return self._bucket_array[np.minimum(at, len(self.buckets) - 1)]

    def tokenize_query(self, query: str) -> list[int]:
        ids = self.tokenizer.encode(query, add_special_tokens=False).ids
        return ids[: self.max_query_len]

    def tokenize_titles(self, titles: Sequence[str]) -> list[list[int]]:
        return [enc.ids for enc in self.tokenizer.encode_batch(list(titles), add_special_tokens=False)]

    def tokenize_titles_compact(self, titles: Sequence[str]) -> list[np.ndarray]:
        """:meth:`tokenize_titles` as int32 arrays: a fraction of a list's memory in a cache, and joined
        without a Python loop when rows are assembled."""
        return [np.asarray(ids, dtype=np.int32) for ids in self.tokenize_titles(titles)]

    def encode(self, query: str, titles: Sequence[str]) -> EncodedPairs:
        """Encode one query against many titles (the query is tokenised once)."""
        return self.assemble(self.tokenize_query(query), self.tokenize_titles(titles))

    def encode_pairs(self, queries: Sequence[str], titles: Sequence[str]) -> EncodedPairs:
        """Encode row-aligned (query, title) pairs, tokenising each distinct query once (training path)."""
        if len(queries) != len(titles):
            raise ValueError(f"{len(queries)} queries but {len(titles)} titles")
        distinct = list(dict.fromkeys(queries))
        q_ids = dict(zip(distinct, (self.tokenize_query(q) for q in distinct), strict=True))
        return self._assemble_rows([q_ids[q] for q in queries], self.tokenize_titles(titles))

    def assemble(self, query_ids: TokenRow, title_ids: Sequence[TokenRow]) -> EncodedPairs:
        """One query's token ids against every title's (lists or integer arrays), padded to one bucket."""
        if not len(title_ids):
            return self._empty()
        return _pairs(*self._one_query_layout(query_ids, title_ids))

    def assemble_by_bucket(
        self, query_ids: TokenRow, title_ids: Sequence[TokenRow]
    ) -> list[tuple[int, np.ndarray, EncodedPairs]]:
        """:meth:`assemble`, rows grouped by their own length bucket: ``(bucket, row positions, pairs
        padded to that bucket)`` per bucket, shortest first, so a short title never pays for a long one's
        width (the serving path). The arrays are views of one matrix (strided, not contiguous)."""
        if not len(title_ids):
            return []
        input_ids, row_len, q_len = self._one_query_layout(query_ids, title_ids)
        row_buckets = self.buckets_for(row_len)
        order = np.argsort(row_buckets, kind="stable")  # rows of one bucket become one slice
        pairs = _pairs(input_ids[order], row_len[order], q_len)
        buckets, starts = np.unique(row_buckets[order], return_index=True)
        ends = [*starts[1:].tolist(), len(order)]
        return [
            (bucket, order[a:b], pairs.block(a, b, bucket))
            for bucket, a, b in zip(buckets.tolist(), starts.tolist(), ends, strict=True)
        ]

    def _empty(self) -> EncodedPairs:
        empty = np.zeros((0, self.buckets[0]), dtype=np.int64)
        return EncodedPairs(empty, empty.copy(), empty.copy())

    def _one_query_layout(
        self, query_ids: TokenRow, title_rows: Sequence[TokenRow]
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """``input_ids`` padded to the longest row's bucket, each row's length, and the query length.

        Every row starts with the same ``[CLS] q [SEP]``, so the titles go in as one block: ragged titles
        become a padded matrix with one boolean-mask write (row-major order is concatenation order), and
        the block is copied into place after the query; then each row's closing ``[SEP]``.
        """
        n = len(title_rows)
        q = np.asarray(query_ids, dtype=np.int64)
        q_len = len(q)
        t_full = np.fromiter(map(len, title_rows), dtype=np.int64, count=n)
        t_len = np.minimum(t_full, self.max_len - q_len - 3)  # room after CLS, SEP, SEP
        row_len = t_len + (q_len + 3)
        input_ids = np.full((n, self.bucket_for(int(row_len.max()))), PAD_ID, dtype=np.int64)
        input_ids[:, 0] = CLS_ID
        input_ids[:, 1 : 1 + q_len] = q
        input_ids[:, q_len + 1] = SEP_ID
        longest, kept = int(t_full.max()), int(t_len.max())
        if kept:
            titles = np.full((n, longest), PAD_ID, dtype=np.int64)
            titles[np.arange(longest) < t_full[:, None]] = _concatenate(title_rows, int(t_full.sum()))
            input_ids[:, q_len + 2 : q_len + 2 + kept] = titles[:, :kept]
        input_ids[np.arange(n), row_len - 1] = SEP_ID
        return input_ids, row_len, q_len

    def _assemble_rows(self, query_rows: Sequence[TokenRow], title_rows: Sequence[TokenRow]) -> EncodedPairs:
        """Row-aligned pairs ``[CLS] q [SEP] t [SEP]``, each with its own query, titles cut to the room the
        query leaves, padded to one bucket."""
        if len(query_rows) != len(title_rows):
            raise ValueError(f"{len(query_rows)} query rows but {len(title_rows)} title rows")
        n = len(title_rows)
        if not n:
            return self._empty()
        q_flat, q_len = _flatten(query_rows)
        t_flat, t_full = _flatten(title_rows)
        t_len = np.minimum(t_full, self.max_len - q_len - 3)  # room after CLS, SEP, SEP
        row_len = q_len + t_len + 3
        # Vectorised: token ids are scattered into the padded matrix with flat (row, column) indices
        # instead of one Python list per row.
        input_ids = np.full((n, self.bucket_for(int(row_len.max()))), PAD_ID, dtype=np.int64)
        rows = np.arange(n)
        input_ids[:, 0] = CLS_ID
        _scatter(input_ids, q_flat, q_len, q_len, np.ones(n, np.int64))
        input_ids[rows, q_len + 1] = SEP_ID
        _scatter(input_ids, t_flat, t_full, t_len, q_len + 2)
        input_ids[rows, row_len - 1] = SEP_ID
        return _pairs(input_ids, row_len, q_len)


def _pairs(input_ids: np.ndarray, row_len: np.ndarray, q_len: int | np.ndarray) -> EncodedPairs:
    """The masks of ``[CLS] q [SEP] t [SEP]`` rows: attention over each row's length, token type 1 on the
    title part (``q_len``: one query's length, or each row's)."""
    positions = np.arange(input_ids.shape[1])
    attention = positions < row_len[:, None]
    title_part = attention & (positions >= np.reshape(np.asarray(q_len) + 2, (-1, 1)))
    return EncodedPairs(input_ids, attention.astype(np.int64), title_part.astype(np.int64))


def _concatenate(rows: Sequence[TokenRow], total: int) -> np.ndarray:
    """Every token of every row in order (integer arrays are joined without a Python loop)."""
    if len(rows) and all(isinstance(r, np.ndarray) for r in rows):
        return np.concatenate(rows)
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=total)


def _flatten(rows: Sequence[TokenRow]) -> tuple[np.ndarray, np.ndarray]:
    """(every token of every row in order as int64, each row's length)."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    return _concatenate(rows, int(lengths.sum())).astype(np.int64, copy=False), lengths


def _scatter(
    out: np.ndarray, flat: np.ndarray, full: np.ndarray, keep: np.ndarray, start: np.ndarray
) -> None:
    """Write the first ``keep[i]`` of row i's ``full[i]`` tokens (rows concatenated in ``flat``) into
    ``out[i, start[i]:]``, for every row at once."""
    offset = np.arange(len(flat)) - np.repeat(np.cumsum(full) - full, full)  # index within its own row
    row_of = np.repeat(np.arange(len(full)), full)
    kept = offset < np.repeat(keep, full)
    out[row_of[kept], start[row_of[kept]] + offset[kept]] = flat[kept]
