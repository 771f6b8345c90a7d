"""Setting up one benchmark cell: the model, its optimisers, data-derived initialisation, frozen stage 1."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from model.config import ModelSpec
from model.dataset import CtrView
from model.prectr import BaselineModel, PrectrModel
from model.relevance import FrozenMiniLmSource, StudentSource
from model.text_inputs import TextInputs


def build_model(spec: ModelSpec, text: TextInputs) -> nn.Module:
    """A fresh model for one benchmark cell (the student starts from the delivered checkpoint)."""
    torch.manual_seed(spec.train.seed)
    if spec.kind != "prectr":
        return BaselineModel(spec, text.lexical.shape[1])
    if spec.encoder == "minilm_frozen":
        if text.minilm is None:
            raise ValueError(f"{spec.name} needs MiniLM embeddings; build TextInputs with need_minilm=True")
        return PrectrModel(spec, FrozenMiniLmSource(spec.rsl, text.minilm))
    if spec.encoder == "student":
        if text.student is None or text.student_pooled is None:
            raise ValueError(f"{spec.name} needs the distilled student (pass --student DIR)")
        source = StudentSource(copy.deepcopy(text.student.model), text, seed=spec.train.seed)
        return PrectrModel(spec, source)
    raise ValueError(f"unknown encoder {spec.encoder!r} for {spec.name}")


@torch.no_grad()
def frozen_rsl(model: PrectrModel, text: TextInputs, n_pairs: int) -> tuple[nn.Module, torch.Tensor]:
    """(frozen stage-1 classifier, stage-1 logits of every pair ``(P, K)``) for L_sc and debias anchors."""
    classifier = copy.deepcopy(model.source.classifier).eval().requires_grad_(False)
    if isinstance(model.source, StudentSource):
        logits = torch.zeros(n_pairs, text.student_logits.shape[1])  # type: ignore[union-attr]
        encoded = np.flatnonzero(text.student_row >= 0)  # type: ignore[operator]
        logits[torch.from_numpy(encoded)] = text.student_logits[torch.from_numpy(text.student_row[encoded])]  # type: ignore[index]
        return classifier, logits
    model.source.eval()
    pairs = torch.arange(n_pairs)
    logits = torch.cat([model.source(pairs[s : s + 16384])[1] for s in range(0, n_pairs, 16384)])
    model.source.train()
    return classifier, logits


SPARSE_MIN_ROWS = 1024  # id tables at least this large get sparse gradients


def _ctr_part(model: nn.Module) -> nn.Module:
    return model.head if isinstance(model, PrectrModel) else model.net  # type: ignore[return-value]


def set_sparse(model: nn.Module, sparse: bool) -> list[nn.Parameter]:
    """Sparse gradients for the large id tables: an update then costs O(batch), not O(table)."""
    tables = [m for m in _ctr_part(model).modules() if isinstance(m, nn.Embedding)]
    big = [m for m in tables if m.num_embeddings >= SPARSE_MIN_ROWS]
    for m in big:
        m.sparse = sparse
    return [m.weight for m in big]


def optimizers(model: nn.Module, spec: ModelSpec) -> list[torch.optim.Optimizer]:
    """SparseAdam for the id tables, Adam for the rest, a lower LR for the end-to-end encoder."""
    sparse = set_sparse(model, True)
    enc = []
    if isinstance(model, PrectrModel) and isinstance(model.source, StudentSource):
        enc = model.source.trainable_encoder_parameters()
    special = {id(p) for p in (*sparse, *enc)}
    main = [p for p in model.parameters() if id(p) not in special and p.requires_grad]
    groups = [{"params": main, "lr": spec.train.lr}]
    if enc:
        groups.append({"params": enc, "lr": spec.train.encoder_lr})
    opts: list[torch.optim.Optimizer] = [
        torch.optim.Adam(groups, weight_decay=spec.train.weight_decay, foreach=True)
    ]
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=spec.train.lr))
    return opts


def init_from_data(model: nn.Module, view: CtrView, text: TextInputs, rows: np.ndarray) -> None:
    """Dense-feature standardisation and the output bias at the training click log-odds of ``rows``."""
    ctr = float(np.clip(view.target[rows].mean(), 1e-4, 1 - 1e-4))
    model.fit_input_stats(  # type: ignore[operator]
        torch.from_numpy(view.pref_dense[rows]), torch.from_numpy(text.lexical[view.pair[rows]])
    )
    model.set_click_prior(math.log(ctr / (1 - ctr)))  # type: ignore[operator]
