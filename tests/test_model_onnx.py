"""PrectrHead is exportable: head.onnx names, dynamic batch, parity with PyTorch at other batch sizes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from model_inputs import SMALL, head_inputs  # noqa: E402

from features.head_inputs import HEAD_INPUT_NAMES, HEAD_OUTPUT_NAMES  # noqa: E402
from model.head import PrectrHead  # noqa: E402

pytestmark = pytest.mark.train


def test_head_exports_with_dynamic_batch_and_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = PrectrHead(SMALL).eval()
    example = head_inputs(3)
    path = tmp_path / "head.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head,
            tuple(example[name] for name in HEAD_INPUT_NAMES),
            str(path),
            input_names=list(HEAD_INPUT_NAMES),
            output_names=list(HEAD_OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in (*HEAD_INPUT_NAMES, *HEAD_OUTPUT_NAMES)},
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(HEAD_INPUT_NAMES)
    assert [o.name for o in session.get_outputs()] == list(HEAD_OUTPUT_NAMES)
    for n in (1, 17, 256):
        feeds = head_inputs(n, seed=n)
        got = session.run(None, {k: v.numpy() for k, v in feeds.items()})
        with torch.no_grad():
            want = head(**feeds)
        for name, g, w in zip(HEAD_OUTPUT_NAMES, got, want, strict=True):
            assert g.shape == tuple(w.shape), name
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4, err_msg=f"{name} at batch {n}")
