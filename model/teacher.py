"""The teacher: all-MiniLM-L6-v2 fine-tuned as a K-way cross-encoder over (normalised query, title) pairs.

A checkpoint directory holds ``minilm/`` (``save_pretrained`` of the fine-tuned BERT + its tokenizer) and
``head.safetensors`` (the K-way head, with the resolved :class:`TeacherConfig` in its metadata). Its
content hash identifies the teacher in the soft-label cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from model.encoder_loop import TokenizedPairs, inference_batches
from model.minilm import HIDDEN_SIZE, load_minilm

HEAD_FILE = "head.safetensors"
BERT_DIR = "minilm"


class TeacherCheckpointError(RuntimeError):
    """The teacher directory is missing or was not written by ``prectr teacher train``."""


@dataclass(frozen=True)
class TeacherConfig:
    num_levels: int = 4
    max_len: int = 64
    pooling: str = "mean"  # mean over real tokens, or "cls"
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {self.pooling!r}")


class TeacherModel(nn.Module):
    def __init__(self, bert: nn.Module, cfg: TeacherConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.bert = bert
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(HIDDEN_SIZE, cfg.num_levels)

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, K), pooled (N, 384)); the pooled state is what hidden-state distillation matches."""
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (N, L, 384)
        if self.cfg.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (N, L, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.drop(pooled)), pooled

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        return self.encode(input_ids, attention_mask, token_type_ids)[0]


def new_teacher(cfg: TeacherConfig) -> tuple[TeacherModel, Any]:
    """Pretrained MiniLM from the installed package with a fresh K-way head, and its tokenizer."""
    bert, tokenizer = load_minilm()
    return TeacherModel(bert, cfg), tokenizer


def tokenize_for_teacher(
    tokenizer: Any, queries: np.ndarray, titles: np.ndarray, max_len: int
) -> TokenizedPairs:
    """MiniLM's own pair layout ``[CLS] q [SEP] t [SEP]``; the title is truncated first."""
    enc = tokenizer(
        [str(q) for q in queries],
        [str(t) for t in titles],
        truncation="longest_first",
        max_length=max_len,
        padding="max_length",
        return_tensors="np",
        return_token_type_ids=True,
    )
    as32 = lambda a: np.asarray(a, dtype=np.int32)  # noqa: E731 - halves the memory of a 100k-pair label run
    return TokenizedPairs(as32(enc["input_ids"]), as32(enc["attention_mask"]), as32(enc["token_type_ids"]))


def save_teacher(model: TeacherModel, tokenizer: Any, out_dir: str | Path, extra: dict[str, Any]) -> Path:
    out_dir = Path(out_dir)
    model.bert.save_pretrained(str(out_dir / BERT_DIR), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir / BERT_DIR))
    metadata = {"config": json.dumps(asdict(model.cfg)), "extra": json.dumps(extra, default=str)}
    save_file(
        {k: v.contiguous() for k, v in model.head.state_dict().items()}, str(out_dir / HEAD_FILE), metadata
    )
    return out_dir


def load_teacher(ckpt_dir: str | Path) -> tuple[TeacherModel, Any, dict[str, Any]]:
    """(model in eval mode, tokenizer, extra metadata) from a ``prectr teacher train`` output."""
    ckpt_dir = Path(ckpt_dir)
    head_path = ckpt_dir / HEAD_FILE
    if not head_path.is_file() or not (ckpt_dir / BERT_DIR / "config.json").is_file():
        raise TeacherCheckpointError(f"{ckpt_dir} is not a teacher checkpoint (run `prectr teacher train`)")
    with safe_open(str(head_path), framework="pt") as fh:
        metadata = fh.metadata() or {}
    cfg = TeacherConfig(**json.loads(metadata["config"]))
    bert, tokenizer = load_minilm(ckpt_dir / BERT_DIR)
    model = TeacherModel(bert, cfg)
    model.head.load_state_dict(load_file(str(head_path)))
    return model.eval(), tokenizer, json.loads(metadata.get("extra", "{}"))


def teacher_hash(ckpt_dir: str | Path) -> str:
    """sha256 over the teacher's weight files: two checkpoints label alike iff their hashes agree."""
    ckpt_dir = Path(ckpt_dir)
    h = hashlib.sha256()
    for path in [ckpt_dir / HEAD_FILE, *sorted((ckpt_dir / BERT_DIR).glob("*.safetensors"))]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@torch.inference_mode()
def predict_teacher(
    model: TeacherModel,
    pairs: TokenizedPairs,
    batch_size: int = 128,
    with_pooled: bool = False,
    progress: Any = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (N, K) float32 and optionally pooled states (N, 384) float16, in the input row order."""
    model.eval()
    n = len(pairs)
    logits = np.zeros((n, model.cfg.num_levels), dtype=np.float32)
    pooled = np.zeros((n, HIDDEN_SIZE), dtype=np.float16) if with_pooled else None
    for idx in inference_batches(pairs.lengths, batch_size):
        out, emb = model.encode(**pairs.batch(idx))
        logits[idx] = out.float().numpy()
        if pooled is not None:
            pooled[idx] = emb.float().numpy().astype(np.float16)
        if progress is not None:
            progress(len(idx))
    return logits, pooled
