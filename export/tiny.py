"""The tiny bundle: a small model really trained for seconds on a data directory, for tests and ``make run``.

This is a *quick fit*, deterministic for a given data directory (seeded torch, a deterministic tokenizer),
not the paper's pipeline (no distillation, no debias, no semantic consistency
beyond stage 1): (1) a WordPiece tokenizer on the catalogue titles and train-split queries, (2) stage 1:
the 2-layer d64 encoder learns the human relevance levels of train-split pairs (cross-entropy), (3) stage 2:
with the encoder frozen, the head learns test-free clicks of the last training days (BCE on the fused
score; point-in-time preferences from ``model.dataset``). The weights are real, so scores move with
relevance, preferences and ids, and every export check runs on a trained model; accuracy is modest.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from export.quick_fit import TinyFit, fit_encoder, fit_head
from features.head_inputs import NUM_VALUE_BUCKETS
from features.prefs import HISTORY_LEN
from features.text import TextEncoder
from features.tokenizer import train_wordpiece
from model.config import HeadConfig
from model.encoder import CrossEncoder, EncoderConfig
from model.head import PrectrHead


class StudentHolder(torch.nn.Module):
    """A fitted student as ``PrectrModel.source`` for saving: ``save_checkpoint`` reads ``encoder`` (the
    CrossEncoder) and ``student`` (tokenizer + text settings); the quick fit needs no training pair cache."""

    def __init__(self, encoder: CrossEncoder, student: object) -> None:
        super().__init__()
        self.encoder = encoder
        self.student = student


TINY_MAX_LEN = 32
TINY_VOCAB = 2000
TINY_MAX_QUERY_LEN = 12
TINY_LENGTH_BUCKETS = (16, 24, TINY_MAX_LEN)
TINY_BUCKETS = {
    "user": 4096,
    "item": 8192,
    "query": 2048,
    "price_bucket": NUM_VALUE_BUCKETS,
    "pop_bucket": NUM_VALUE_BUCKETS,
}


def tiny_modules(vocab_size: int, rel_dim: int = 16) -> tuple[CrossEncoder, PrectrHead]:
    """2 layers x d64 encoder (max_len 32) and a narrow head; untrained, in eval mode."""
    encoder = CrossEncoder(
        EncoderConfig(
            vocab_size=vocab_size,
            d_model=64,
            n_layers=2,
            n_heads=4,
            d_ff=128,
            max_len=TINY_MAX_LEN,
            rel_dim=rel_dim,
            dropout=0.0,
        )
    )
    head = PrectrHead(
        HeadConfig(
            rel_dim=rel_dim,
            history_len=HISTORY_LEN,
            buckets=dict(TINY_BUCKETS),
            emb_dim=8,
            hidden=(32, 16),
            incentive_hidden=16,
        )
    )
    return encoder.eval(), head.eval()


def train_tiny(data_dir: str | Path, work_dir: str | Path, fit: TinyFit | None = None) -> Path:
    """Quick-fit tokenizer, encoder and head on ``data_dir``; save a ``model.checkpoint`` directory.

    The checkpoint is the trainer's own format (``model.checkpoint.save_checkpoint``), so the tiny bundle
    is exported through exactly the loader a full-profile checkpoint goes through.
    """
    from model.checkpoint import save_checkpoint
    from model.config import ModelSpec
    from model.dataset import ViewSpec, load_dataset
    from model.encoder_data import EncoderData
    from model.prectr import PrectrModel
    from model.student import Student, predict_student, tokenize_for_student

    fit = fit or TinyFit()
    torch.manual_seed(fit.seed)
    torch.set_num_threads(fit.threads)
    started = time.perf_counter()
    data = EncoderData(data_dir)
    tokenizer = train_wordpiece(
        [*data.catalogue_titles().tolist(), *data.queries_of_split("train")], TINY_VOCAB
    )
    encoder, head = tiny_modules(tokenizer.get_vocab_size())
    text = TextEncoder(tokenizer, TINY_MAX_LEN, TINY_MAX_QUERY_LEN, TINY_LENGTH_BUCKETS)
    pairs = data.relevance_pairs(("train",))
    rel_loss = fit_encoder(encoder, tokenize_for_student(text, pairs.query, pairs.title), pairs.level, fit)
    ds = load_dataset(
        data_dir,
        ViewSpec(ctr_days=2, max_train_rows=fit.max_ctr_rows, max_coarse_requests=1, seed=fit.seed),
        TINY_BUCKETS,
    )
    view = ds.views["train"]
    distinct, row_pair = np.unique(view.pair, return_inverse=True)
    rel_vec, rel_logits = predict_student(
        encoder, tokenize_for_student(text, ds.pairs.query_norm[distinct], ds.pairs.title[distinct])
    )
    row_pair = row_pair.reshape(-1)
    inputs = [
        rel_vec[row_pair],
        rel_logits[row_pair],
        view.pref_dense,
        view.ids,
        view.hist_items,
        view.hist_levels,
    ]
    ctr_loss = fit_head(head, inputs, view.target, fit)
    text_meta = {
        "max_len": TINY_MAX_LEN,
        "max_query_len": TINY_MAX_QUERY_LEN,
        "length_buckets": list(TINY_LENGTH_BUCKETS),
    }
    student = Student(encoder, text, {"text": text_meta, "data_fingerprint": data.fingerprint})
    spec = ModelSpec(name="tiny-quick-fit", kind="prectr", encoder="student", cold_start=True, head=head.cfg)
    model = PrectrModel(spec, StudentHolder(encoder, student))
    model.head.load_state_dict(head.state_dict())
    metrics = {
        "tiny_fit_seconds": time.perf_counter() - started,
        "tiny_fit_rel_ce": rel_loss,
        "tiny_fit_click_bce": ctr_loss,
    }
    return save_checkpoint(model, Path(work_dir) / "checkpoint", data.fingerprint, metrics)


def build_tiny_bundle(
    data_dir: str | Path,
    out: str | Path,
    variant: str = "fp32",
    force: bool = False,
    fit: TinyFit | None = None,
    with_data_checks: bool = True,
):
    """Quick fit, save a checkpoint, export it with every validation; returns the ``ExportResult``."""
    import tempfile
    from functools import partial

    from export.bundle_writer import export_bundle
    from export.checkpoint import load_checkpoint
    from export.evaluate import data_checks

    with tempfile.TemporaryDirectory(prefix="prectr-tiny-") as work:
        model = load_checkpoint(train_tiny(data_dir, work, fit))
        checks = partial(data_checks, data_dir=Path(data_dir)) if with_data_checks else None
        return export_bundle(model, out, variant=variant, data_checks=checks, force=force)  # type: ignore[arg-type]
