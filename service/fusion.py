"""Head outputs -> per-candidate results: fused click probability, level distribution, order, top-k."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.scorer import Feeds


def fuse_results(outputs: Feeds, item_ids: Sequence[str], *, sort: bool, top_k: int | None) -> list[dict]:
    """One dict per returned candidate, in the order the client asked for.

    ``p_click`` is the conditional-probability fusion sum_k P(click | k) P(k) without the incentive;
    ``score`` is the graph's own output (fusion plus the personalised incentive on the logit).
    """
    p_level = outputs["p_level"]  # (N, K)
    p_click = (outputs["p_ctr_given_level"] * p_level).sum(axis=1)  # (N,)
    expected = p_level @ np.arange(p_level.shape[1], dtype=np.float32)  # (N,)
    score = outputs["score"]
    order = np.arange(len(item_ids))
    if sort or top_k is not None:
        order = np.argsort(-score, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        if not sort:
            order = np.sort(order)
    # tolist() once per column: converting numpy scalars one by one costs more than the math above.
    cols = (
        score[order].tolist(),
        p_click[order].tolist(),
        p_level[order].tolist(),
        expected[order].tolist(),
        outputs["incentive"][order].tolist(),
    )
    return [
        {
            "item_id": item_ids[i],
            "score": s,
            "p_click": c,
            "p_level": pl,
            "expected_level": e,
            "incentive": inc,
        }
        for i, s, c, pl, e, inc in zip(order.tolist(), *cols, strict=True)
    ]
