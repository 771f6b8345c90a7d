"""``prectr encoder distill``: tokenizer, student, distillation then SFT, checkpoint + summary in one directory.

Output directory: ``tokenizer.json`` (trained here on catalogue titles + train-split queries; export copies
it into the bundle), ``encoder.safetensors`` (weights + config + text settings) and ``distill_summary.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from features.normalize import normalize_query
from features.text import DEFAULT_BUCKETS, TextEncoder
from features.tokenizer import load_tokenizer, save_tokenizer, train_wordpiece
from model.distill import PhaseConfig, PhaseData, ValidScorer, balanced_class_weights, run_phase
from model.encoder import CrossEncoder, EncoderConfig
from model.encoder_ckpt import TOKENIZER_FILE, save_encoder
from model.encoder_data import EncoderData, EncoderDataError
from model.encoder_loop import EarlyStopping, Progress
from model.soft_labels import SoftLabelError, SoftLabels, read_soft_labels
from model.student import tokenize_for_student


@dataclass(frozen=True)
class DistillConfig:
    tokenizer_vocab: int = 8000
    max_len: int = 64
    max_query_len: int = 16
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 512
    rel_dim: int = 64
    num_levels: int = 4
    dropout: float = 0.1
    distill_epochs: int = 8
    distill_lr: float = 1e-3
    sft_epochs: int = 6
    sft_lr: float = 3e-4
    batch_size: int = 128
    temperature: float = 2.0
    hidden_mse_weight: float = 0.0  # 0 switches hidden-state distillation off
    class_weights: bool = False
    patience: int = 2
    max_valid_pairs: int = 8000
    seed: int = 0
    tokenizer_file: str | None = None  # reuse this tokenizer.json instead of training one


def _teacher_hidden(soft: SoftLabels) -> np.ndarray:
    assert soft.hidden is not None
    h = soft.hidden.astype(np.float32)
    return (h - h.mean(axis=0)) / (
        h.std(axis=0) + 1e-6
    )  # per-dimension scale of ~1 keeps MSE comparable to KL


def _encoder_config(cfg: DistillConfig, vocab_size: int) -> EncoderConfig:
    keys = ("d_model", "n_layers", "n_heads", "d_ff", "max_len", "rel_dim", "num_levels", "dropout")
    return EncoderConfig(vocab_size=vocab_size, **{k: getattr(cfg, k) for k in keys})


def _read_soft(soft_labels: str | Path, data: EncoderData, cfg: DistillConfig) -> SoftLabels:
    soft = read_soft_labels(soft_labels, cfg.num_levels, load_hidden=cfg.hidden_mse_weight > 0)
    fp = soft.meta.get("data_fingerprint")
    if fp and fp != data.fingerprint:
        raise SoftLabelError(
            f"{soft_labels} was labelled on data {fp[:12]}…, not {data.fingerprint[:12]}… of {data.root}"
        )
    if cfg.hidden_mse_weight > 0 and soft.hidden is None:
        raise SoftLabelError(
            "hidden-state MSE needs teacher states: re-run `prectr teacher label --with-hidden`"
        )
    return soft


def _text_encoder(data: EncoderData, cfg: DistillConfig, out_dir: Path) -> TextEncoder:
    """WordPiece on catalogue titles + train-split queries (held-out queries stay unseen), saved for export.

    The tokenizers library's WordPiece trainer is not deterministic (huggingface/tokenizers#1794: hash-map
    order breaks count ties), so runs that must share a vocabulary (seeds, ablations) pass ``tokenizer_file``.
    """
    if cfg.tokenizer_file is not None:
        tokenizer = load_tokenizer(cfg.tokenizer_file)
    else:
        texts = [*data.catalogue_titles().tolist(), *data.queries_of_split("train")]
        tokenizer = train_wordpiece(texts, vocab_size=cfg.tokenizer_vocab)
    save_tokenizer(tokenizer, out_dir / TOKENIZER_FILE)
    return TextEncoder(tokenizer, cfg.max_len, cfg.max_query_len, DEFAULT_BUCKETS)


def distill_student(
    data: EncoderData,
    soft_labels: str | Path | None,
    out_dir: str | Path,
    cfg: DistillConfig,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train and save the student; ``soft_labels=None`` (or ``distill_epochs=0``) is SFT only, the ablation
    that shows what distillation adds."""
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    soft = _read_soft(soft_labels, data, cfg) if soft_labels is not None and cfg.distill_epochs > 0 else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = _text_encoder(data, cfg, out_dir)
    sft_pairs, valid = data.relevance_pairs(("train",)), data.relevance_pairs(("valid",))
    if len(sft_pairs) == 0 or len(valid) == 0:
        raise EncoderDataError(
            f"{data.root}: need train and valid relevance pairs for SFT and early stopping"
        )
    if len(valid) > cfg.max_valid_pairs:
        valid = valid.subset(np.sort(rng.choice(len(valid), cfg.max_valid_pairs, replace=False)))
    scorer = ValidScorer(tokenize_for_student(text, valid.query, valid.title), valid.level)
    model = CrossEncoder(_encoder_config(cfg, text.tokenizer.get_vocab_size()))
    stopper = EarlyStopping(patience=cfg.patience)
    distil_hist: list[dict[str, float]] = []
    work = (cfg.distill_epochs * len(soft) if soft is not None else 0) + cfg.sft_epochs * len(sft_pairs)
    with Progress(work, "student distill+sft", show_progress) as advance:
        if soft is not None:
            queries = np.asarray([normalize_query(q) for q in soft.query.tolist()], dtype=object)
            distil_data = PhaseData(
                tokenize_for_student(text, queries, data.titles_for(soft.item_id)),
                teacher_logits=soft.logits,
                teacher_hidden=_teacher_hidden(soft) if soft.hidden is not None else None,
            )
            phase = PhaseConfig(cfg.distill_epochs, cfg.distill_lr, cfg.batch_size)
            distil_hist = run_phase(
                model,
                distil_data,
                phase,
                scorer,
                stopper,
                rng,
                temperature=cfg.temperature,
                hidden_weight=cfg.hidden_mse_weight,
                advance=advance,
                min_epochs=max(1, cfg.distill_epochs // 2),
            )
            stopper.restore(model)
        distilled_best = stopper.best_score if distil_hist else None
        weights = balanced_class_weights(sft_pairs.level, cfg.num_levels) if cfg.class_weights else None
        sft_data = PhaseData(
            tokenize_for_student(text, sft_pairs.query, sft_pairs.title), levels=sft_pairs.level
        )
        phase = PhaseConfig(cfg.sft_epochs, cfg.sft_lr, cfg.batch_size)
        sft_hist = run_phase(
            model, sft_data, phase, scorer, stopper, rng, class_weights=weights, advance=advance
        )
    stopper.restore(model)
    summary = {
        "config": asdict(cfg),
        "encoder_config": asdict(model.cfg),
        "parameters": model.num_parameters(),
        "data_fingerprint": data.fingerprint,
        "soft_labels": None
        if soft is None
        else {
            "file": str(soft_labels),
            "pairs": len(soft),
            **{k: soft.meta.get(k) for k in ("teacher", "teacher_hash", "data_fingerprint")},
        },
        "sft_pairs": len(sft_pairs),
        "valid_pairs": len(valid),
        "distill_history": distil_hist,
        "sft_history": sft_hist,
        "valid_macro_f1_after_distill": distilled_best,
        "valid_macro_f1": stopper.best_score,
        "sft_kept": distilled_best is None or stopper.best_score > distilled_best,
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    text_meta = {
        "max_len": cfg.max_len,
        "max_query_len": cfg.max_query_len,
        "length_buckets": list(DEFAULT_BUCKETS),
    }
    extra = {
        "text": text_meta,
        "data_fingerprint": data.fingerprint,
        "valid_macro_f1": stopper.best_score,
        "distilled": soft is not None,
    }
    save_encoder(model, out_dir, extra=extra)
    (out_dir / "distill_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
