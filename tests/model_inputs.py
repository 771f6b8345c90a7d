"""Random but valid ``head.onnx`` inputs for model tests (a small HeadConfig)."""

from __future__ import annotations

from pathlib import Path

import torch

from features.head_inputs import ID_FEATURES
from features.prefs import PREF_DENSE_COLUMNS
from model.config import HeadConfig

SMALL = HeadConfig(
    buckets={"user": 97, "item": 211, "query": 53, "price_bucket": 11, "pop_bucket": 11},
    hidden=(32, 16),
    rel_dim=8,
)


def head_inputs(n: int, cfg: HeadConfig = SMALL, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randint(1, cfg.buckets[f], (n,), generator=g) for f in ID_FEATURES], dim=1)
    levels = torch.randint(0, cfg.num_levels + 1, (n, cfg.history_len), generator=g)
    levels[0] = 0  # one row with an empty history
    return {
        "rel_vec": torch.randn(n, cfg.rel_dim, generator=g),
        "rel_logits": torch.randn(n, cfg.num_levels, generator=g),
        "pref_dense": torch.rand(n, len(PREF_DENSE_COLUMNS), generator=g) * 0.2,
        "ids": ids,
        "hist_items": torch.randint(1, cfg.buckets["item"], (n, cfg.history_len), generator=g) * (levels > 0),
        "hist_levels": levels,
    }


def make_random_student(data_dir: Path, out_dir: Path, vocab_size: int = 2000) -> Path:
    """An untrained student checkpoint (tokenizer trained on the catalogue): tests exercise the V2 code
    path in seconds; its relevance quality is that of a random encoder, which the tests never assert on."""
    from features.tokenizer import save_tokenizer, train_wordpiece
    from model.encoder import CrossEncoder, EncoderConfig
    from model.encoder_ckpt import TOKENIZER_FILE, save_encoder
    from model.tables import read_table

    titles = read_table(data_dir, "items", ("title",))["title"].tolist()
    tok = train_wordpiece(titles, vocab_size=vocab_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tok, out_dir / TOKENIZER_FILE)
    torch.manual_seed(0)
    cfg = EncoderConfig(
        vocab_size=tok.get_vocab_size(), d_model=32, n_layers=1, n_heads=2, d_ff=64, rel_dim=16
    )
    text = {"max_len": 64, "max_query_len": 16, "length_buckets": [16, 24, 32, 48, 64]}
    save_encoder(CrossEncoder(cfg), out_dir, extra={"text": text})
    return out_dir


def build_tiny_data(out_dir: Path, seed: int = 0) -> Path:
    """A synthetic data directory small enough for unit tests (~40k impressions, seconds to build)."""
    from data.build import build_dataset
    from data.config import profile_config

    cfg = profile_config(
        "small", n_users=800, n_requests=4000, max_queries=300, synthetic_queries=300, synthetic_products=1500
    )
    build_dataset("synthetic", cfg, seed, out_dir)
    return out_dir
