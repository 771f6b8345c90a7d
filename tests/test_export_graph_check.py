"""features.graph_check without torch: every kind of signature mismatch is named (the service runs this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from export.graph_specs import encoder_spec, head_spec
from features.graph_check import graph_problems


@dataclass
class Arg:
    name: str
    type: str
    shape: list[Any]


@dataclass
class FakeSession:
    inputs: list[Arg]
    outputs: list[Arg] = field(default_factory=list)

    def get_inputs(self) -> list[Arg]:
        return self.inputs

    def get_outputs(self) -> list[Arg]:
        return self.outputs


def _matching_encoder() -> FakeSession:
    ints = [
        Arg(n, "tensor(int64)", ["batch", "seq"]) for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    outs = [Arg("rel_vec", "tensor(float)", ["batch", 16]), Arg("rel_logits", "tensor(float)", ["batch", 4])]
    return FakeSession(ints, outs)


def test_a_matching_graph_has_no_problems() -> None:
    assert graph_problems(_matching_encoder(), encoder_spec(16, 4)) == []


def test_each_mismatch_is_named() -> None:
    session = _matching_encoder()
    session.inputs[0] = Arg("input_ids", "tensor(int32)", ["batch", "seq"])
    session.inputs[1] = Arg("attention_mask", "tensor(int64)", ["batch", 32])
    session.inputs[2] = Arg("segment_ids", "tensor(int64)", ["batch", "seq"])
    session.outputs[0] = Arg("rel_vec", "tensor(float)", ["batch", 8])
    session.outputs[1] = Arg("rel_logits", "tensor(float)", ["n", 4])
    problems = graph_problems(session, encoder_spec(16, 4))
    assert problems == [
        "inputs ['token_type_ids'] declared in the manifest are missing from the graph",
        "graph has inputs ['segment_ids'] the manifest does not declare",
        "input 'input_ids': dtype int32 in the graph, int64 in the manifest",
        "input 'attention_mask' axis 1: dynamic axis 'seq' in the manifest, fixed to 32 in the graph",
        "output 'rel_vec' axis 1: size 8 in the graph, 16 in the manifest",
        "output 'rel_logits' axis 0: dynamic axis 'batch' in the manifest, named 'n' in the graph",
    ]


def test_rank_mismatch_is_named_for_the_head() -> None:
    spec = head_spec(16, 4, history_len=10)
    args = {
        t.name: Arg(t.name, "tensor(float)" if t.dtype == "float32" else "tensor(int64)", list(t.shape))
        for t in spec.inputs
    }
    args["score"] = Arg("score", "tensor(float)", ["batch", 1])
    outs = [Arg(t.name, "tensor(float)", list(t.shape)) for t in spec.outputs[:3]] + [args.pop("score")]
    problems = graph_problems(FakeSession(list(args.values()), outs), spec)
    assert problems == ["output 'score': rank 2 in the graph, 1 in the manifest"]
