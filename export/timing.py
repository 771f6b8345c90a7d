"""Timing helpers: what export records as speed-ups and what ``bench/export_bench.py`` measures and runs on."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from export.probe_inputs import encoder_feeds
from export.variants import cpu_session
from model.encoder_timing import N_CANDIDATES as CANDIDATES  # one coarse-ranking request (DESIGN.md)
from model.encoder_timing import median_ms


def encoder_ms_per_request(
    path: str | Path, vocab_size: int, seq: int = 32, threads: int = 2, repeats: int = 11, seed: int = 0
) -> float:
    """Median ms for one request of :data:`CANDIDATES` pairs padded to ``seq`` on the CPU provider."""
    session = cpu_session(path, threads=threads)
    feeds = encoder_feeds(CANDIDATES, seq, vocab_size, np.random.default_rng(seed))
    return median_ms(lambda: session.run(None, feeds), repeats=repeats)


def interleaved_medians(
    cases: dict[str, Callable[[int], object]], n_inputs: int, repeats: int
) -> dict[str, float]:
    """Median ms per case; every repeat runs every case on every input in a shuffled order.

    On a shared machine the load drifts over a run; interleaving gives every case the same drift, so
    ratios between cases stay meaningful even when absolute times wander.
    """
    rng = np.random.default_rng(0)
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: first-run allocations and ORT's lazy initialisation
        cases[name](0)
    for _ in range(repeats):
        for i in range(n_inputs):
            for name in rng.permutation(names):
                start = time.perf_counter()
                cases[name](i)
                samples[name].append((time.perf_counter() - start) * 1000.0)
    return {name: float(np.median(v)) for name, v in samples.items()}


def row_buckets(enc, buckets: Sequence[int]) -> list[dict[str, np.ndarray]]:
    """Split a request's rows by their own length bucket: one smaller batch per bucket."""
    lengths = enc.attention_mask.sum(axis=1)
    width = np.asarray([next(b for b in buckets if n <= b) for n in lengths])
    feeds = enc.as_feeds(("input_ids", "attention_mask", "token_type_ids"))
    return [{k: np.ascontiguousarray(v[width == b, :b]) for k, v in feeds.items()} for b in np.unique(width)]


def real_requests(data_dir: Path, n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Raw test-day queries with their logged candidates' titles, topped up to 200 with catalogue titles."""
    from export.e2e import raw_test_requests
    from model.tables import read_meta, read_table

    meta = read_meta(data_dir)
    rng = np.random.default_rng(seed)
    catalogue = read_table(meta.root, "items", ("title",))["title"]
    out = []
    for req in raw_test_requests(meta.root, meta.test_day, n):
        extra = rng.choice(catalogue, size=CANDIDATES - len(req.titles), replace=False).tolist()
        out.append((req.query, [*req.titles, *extra][:CANDIDATES]))
    return out


def default_arch(data_dir: Path, work: Path):
    """The shipped model's shapes (3 x d128 student, max_len 64, default head) with random weights."""
    from export.checkpoint import from_modules
    from features.tokenizer import save_tokenizer, train_wordpiece
    from model.config import HeadConfig
    from model.encoder import CrossEncoder, EncoderConfig
    from model.encoder_data import EncoderData
    from model.head import PrectrHead

    data = EncoderData(data_dir)
    tok = train_wordpiece([*data.catalogue_titles().tolist(), *data.queries_of_split("train")], 2000)
    path = save_tokenizer(tok, work / "tokenizer.json")
    encoder = CrossEncoder(EncoderConfig(vocab_size=tok.get_vocab_size()))
    return from_modules(encoder, PrectrHead(HeadConfig()), path, source="untrained default architecture")
