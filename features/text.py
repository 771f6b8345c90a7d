"""(query, [titles]) -> padded pair inputs for the cross-encoder, identical in training and serving.

Layout of one row: ``[CLS] query [SEP] title [SEP] [PAD]...``; ``token_type_ids`` is 0 for the query
segment and 1 for the title segment. The query is tokenised once per request. Rows are padded to the
smallest length bucket that fits the longest row, so shapes stay in a small warmed set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from features.tokenizer import CLS_ID, PAD_ID, SEP_ID, load_tokenizer

DEFAULT_BUCKETS = (16, 24, 32, 48, 64)


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

    def bucket_for(self, length: int) -> int:
        """Smallest bucket >= ``length`` (lengths above max_len were already truncated)."""
        for bucket in self.buckets:
            if length <= bucket:
                return bucket
        return self.buckets[-1]

    def tokenize_query(self, query: str) -> list[int]:
        ids = self.tokenizer.encode(query, add_special_tokens=False).ids
        return ids[: self.max_query_len]

    def tokenize_titles(self, titles: Sequence[str]) -> list[list[int]]:
        return [enc.ids for enc in self.tokenizer.encode_batch(list(titles), add_special_tokens=False)]

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

    def assemble(self, query_ids: list[int], title_ids: Sequence[list[int]]) -> EncodedPairs:
        return self._assemble_rows([query_ids] * len(title_ids), title_ids)

    def _assemble_rows(
        self, query_rows: Sequence[list[int]], title_rows: Sequence[list[int]]
    ) -> EncodedPairs:
        n = len(title_rows)
        rows: list[list[int]] = []
        types: list[int] = []
        longest = 0
        for q, t in zip(query_rows, title_rows, strict=True):
            room = self.max_len - len(q) - 3
            row = [CLS_ID, *q, SEP_ID, *t[:room], SEP_ID]
            rows.append(row)
            types.append(len(q) + 2)
            longest = max(longest, len(row))
        width = self.bucket_for(longest) if n else self.buckets[0]
        input_ids = np.full((n, width), PAD_ID, dtype=np.int64)
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
        positions = np.arange(width)[None, :]
        attention_mask = (positions < lengths[:, None]).astype(np.int64)
        query_span = np.asarray(types, dtype=np.int64)[:, None] if n else np.zeros((0, 1), np.int64)
        token_type_ids = ((positions >= query_span) & (attention_mask == 1)).astype(np.int64)
        return EncodedPairs(input_ids, attention_mask, token_type_ids)
