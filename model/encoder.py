"""The distilled student: a ~2M-parameter pre-LN transformer cross-encoder for (query, title) pairs.

Written by hand (no ``nn.MultiheadAttention``) so that the ONNX export is a plain graph of MatMul /
Softmax / LayerNorm with dynamic batch and sequence axes, and so that padded keys are masked with an
additive constant that is exactly zero after the softmax: the same pair gives the same output at any
padded length. Inputs follow :class:`features.text.TextEncoder` (``[CLS] q [SEP] t [SEP]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# exp(-1e4) is exactly 0 in fp32, and -1e4 still fits in fp16 (an fp16 bundle must not overflow to -inf).
MASK_VALUE = -1.0e4
FIRST_WORD_ID = 5  # ids below are [PAD] [UNK] [CLS] [SEP] [MASK] (features.tokenizer.SPECIAL_TOKENS)


def exact_match(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
) -> torch.Tensor:
    """``(N, L)`` 1 where a real word piece also occurs in the other segment (query <-> title), else 0.

    Lexical overlap is the strongest single relevance signal; handing it to a 3-layer model trained from
    scratch lets it escape the predict-the-prior plateau in a fraction of the steps. Built from the model
    inputs with Equal / And / ReduceMax, so serving inputs do not change.
    """
    real = (input_ids >= FIRST_WORD_ID) & (attention_mask > 0)  # (N, L)
    same = input_ids.unsqueeze(2) == input_ids.unsqueeze(1)  # (N, L, L)
    other = token_type_ids.unsqueeze(2) != token_type_ids.unsqueeze(1)  # (N, L, L)
    hit = (same & other & real.unsqueeze(1)).to(torch.float32).amax(dim=-1)  # (N, L)
    return (hit * real.to(torch.float32)).to(torch.long)


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of the student; stored verbatim in every checkpoint."""

    vocab_size: int
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 512
    max_len: int = 64
    rel_dim: int = 64
    num_levels: int = 4
    dropout: float = 0.1
    match_embedding: bool = True  # add a learned vector to tokens that also occur in the other segment

    def __post_init__(self) -> None:
        if self.vocab_size < 16:
            raise ValueError(f"vocab_size={self.vocab_size} is too small (need >= 16)")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.num_levels < 2:
            raise ValueError(f"num_levels={self.num_levels} must be >= 2")


@dataclass
class EncoderOutput:
    rel_vec: torch.Tensor  # (N, rel_dim)
    rel_logits: torch.Tensor  # (N, K)
    pooled: torch.Tensor  # (N, D) final-layer [CLS] state, the hidden state distillation matches


class SelfAttention(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.d_head = cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape  # (N, L, D)
        qkv = self.qkv(x).reshape(n, length, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (N, H, L, Dh)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.d_head))  # (N, H, L, L)
        weights = self.drop(torch.softmax(scores + key_bias, dim=-1))  # key_bias (N, 1, 1, L)
        ctx = torch.matmul(weights, v).transpose(1, 2).reshape(n, length, d)  # (N, L, D)
        return self.out(ctx)


class EncoderLayer(nn.Module):
    """Pre-LN block: x + attn(LN(x)), then x + ffn(LN(x))."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln_ffn = nn.LayerNorm(cfg.d_model)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff),
            nn.GELU(),
            nn.Linear(cfg.d_ff, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_attn(x), key_bias))
        return x + self.ffn(self.ln_ffn(x))


class CrossEncoder(nn.Module):
    """(input_ids, attention_mask, token_type_ids) -> (rel_vec, rel_logits) = RSL module of METHOD.md."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.seg_emb = nn.Embedding(2, cfg.d_model)
        self.match_emb = nn.Embedding(2, cfg.d_model) if cfg.match_embedding else None
        self.emb_ln = nn.LayerNorm(cfg.d_model)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layers))
        self.final_ln = nn.LayerNorm(cfg.d_model)
        # Tanh bounds rel_vec like model.rsl.FrozenEmbeddingRsl's, so the CTR head and the debias noise
        # (sigma = eta * batch std of rel_vec) see the same scale whichever encoder feeds them.
        self.compress = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, cfg.rel_dim), nn.Tanh()
        )
        self.rsl_head = nn.Linear(cfg.rel_dim, cfg.num_levels)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def classify(self, rel_vec: torch.Tensor) -> torch.Tensor:
        """``(N, rel_dim) -> (N, K)``: the RSL head alone (relabels synthetic negatives in V2 debiasing)."""
        return self.rsl_head(rel_vec)

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> EncoderOutput:
        """Full output including the pooled hidden state (used by hidden-state distillation)."""
        length = input_ids.shape[1]  # inputs (N, L) int64
        if not torch.onnx.is_in_onnx_export() and length > self.cfg.max_len:
            raise ValueError(f"sequence length {length} exceeds the encoder's max_len={self.cfg.max_len}")
        positions = torch.arange(length, device=input_ids.device).unsqueeze(0)  # (1, L)
        x = self.tok_emb(input_ids) + self.pos_emb(positions) + self.seg_emb(token_type_ids)  # (N, L, D)
        if self.match_emb is not None:
            x = x + self.match_emb(exact_match(input_ids, attention_mask, token_type_ids))
        x = self.emb_drop(self.emb_ln(x))
        key_bias = ((1.0 - attention_mask.to(x.dtype)) * MASK_VALUE)[:, None, None, :]  # (N, 1, 1, L)
        for layer in self.layers:
            x = layer(x, key_bias)
        pooled = self.final_ln(x[:, 0])  # (N, D) the [CLS] position
        rel_vec = self.compress(pooled)  # (N, rel_dim)
        return EncoderOutput(rel_vec=rel_vec, rel_logits=self.classify(rel_vec), pooled=pooled)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encode(input_ids, attention_mask, token_type_ids)
        return out.rel_vec, out.rel_logits  # (N, rel_dim), (N, K)
