"""Validation that is part of export: a bundle whose graphs fail any check is never written.

Per graph: the ONNX signature matches the manifest spec (names, dtypes, named dynamic axes), and the ORT
outputs match PyTorch at probe shapes other than the export example within the variant's tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from export.checkpoint import ExportableModel
from export.graph_specs import encoder_spec, head_spec
from export.onnx_export import ExportError
from export.parity import TOLERANCES, ParityCheck, failures, graph_parity, worst
from export.probe_inputs import (
    ENCODER_PROBE_BATCHES,
    EXAMPLE_BATCH,
    HEAD_PROBE_BATCHES,
    encoder_feeds,
    head_feeds,
    probe_lengths,
)
from export.variants import Variant, cpu_session
from features.graph_check import graph_problems
from features.head_inputs import ENCODER_OUTPUT_NAMES, HEAD_OUTPUT_NAMES


@dataclass(frozen=True)
class GraphValidation:
    """Every parity check of one (variant of a) bundle; summary numbers go into the manifest metrics."""

    variant: str
    checks: tuple[ParityCheck, ...]

    def summary(self, prefix: str = "parity") -> dict[str, float]:
        probs = ("p_rel_level", "p_ctr_given_level", "p_level", "score")
        return {
            f"{prefix}_{self.variant}_encoder_max_abs_diff_prob": worst(
                self.checks, lambda c: c.graph == "encoder" and c.output in probs
            ),
            f"{prefix}_{self.variant}_head_max_abs_diff_prob": worst(
                self.checks, lambda c: c.graph == "head" and c.output in probs
            ),
            f"{prefix}_{self.variant}_rel_vec_max_abs_diff": worst(
                self.checks, lambda c: c.output == "rel_vec"
            ),
        }


def example_inputs(model: ExportableModel, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Export examples: batch 2 at the first length bucket; head inputs from the encoder's own outputs."""
    rng = np.random.default_rng(seed)
    tokens = encoder_feeds(EXAMPLE_BATCH, model.text.length_buckets[0], model.vocab_size, rng)
    enc_args = [torch.from_numpy(v) for v in tokens.values()]
    with torch.no_grad():
        rel_vec, rel_logits = model.encoder(*enc_args)
    feeds = head_feeds(rel_vec.numpy(), rel_logits.numpy(), model.buckets, model.history_len, rng)
    return enc_args, [torch.from_numpy(v) for v in feeds.values()]


def probe_batches(model: ExportableModel, seed: int = 1) -> tuple[list[dict], list[dict]]:
    """Encoder probes (batch x length, none equal to the example) and head probes from encoder outputs."""
    rng = np.random.default_rng(seed)
    lengths = probe_lengths(model.text.length_buckets, model.text.length_buckets[0])
    enc = [
        encoder_feeds(batch, lengths[i % len(lengths)], model.vocab_size, rng)
        for i, batch in enumerate(ENCODER_PROBE_BATCHES)
    ]
    enc += [encoder_feeds(3, length, model.vocab_size, rng) for length in lengths]
    head = []
    for batch in HEAD_PROBE_BATCHES:
        tokens = encoder_feeds(batch, lengths[0], model.vocab_size, rng)
        with torch.no_grad():
            rel_vec, rel_logits = model.encoder(*(torch.from_numpy(v) for v in tokens.values()))
        head.append(head_feeds(rel_vec.numpy(), rel_logits.numpy(), model.buckets, model.history_len, rng))
    return enc, head


def validate_graphs(
    model: ExportableModel, encoder_path: Path, head_path: Path, variant: Variant
) -> GraphValidation:
    """Signature + parity of both graphs; raises :class:`ExportError` listing every failure."""
    specs = {
        "encoder": encoder_spec(model.rel_dim, model.num_levels, encoder_path.name),
        "head": head_spec(model.rel_dim, model.num_levels, model.history_len, file=head_path.name),
    }
    sessions = {"encoder": cpu_session(encoder_path), "head": cpu_session(head_path)}
    problems = [f"{name}: {p}" for name, s in sessions.items() for p in graph_problems(s, specs[name])]
    if problems:
        raise ExportError(f"{variant} graphs do not match their signature: " + "; ".join(problems))
    enc_feeds, head_feed_list = probe_batches(model)
    tol = TOLERANCES[variant]
    checks = graph_parity("encoder", model.encoder, sessions["encoder"], enc_feeds, ENCODER_OUTPUT_NAMES, tol)
    checks += graph_parity("head", model.head, sessions["head"], head_feed_list, HEAD_OUTPUT_NAMES, tol)
    failed = failures(checks)
    if failed:
        raise ExportError(f"{variant} graphs differ from PyTorch beyond {tol}: " + "; ".join(failed[:8]))
    return GraphValidation(variant, tuple(checks))
