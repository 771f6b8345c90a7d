"""Personalised relevance incentive (PRI) and V2's activity gate over personal vs query-level preference.

A preference vector says how a user's clicks rise with the relevance level: the centred log of the smoothed
per-level click rates in ``pref_dense`` (all zeros = no preference known). V1 uses the user's own rates; V2
blends them with the cross-user rates mined under the query, weighted by the user's activity so that a new
user (no history) gets the query-level preference with full weight.
"""

from __future__ import annotations

import torch
from torch import nn

from features.prefs import NUM_LEVELS, PREF_DENSE_COLUMNS


def _cols(prefix: str) -> list[int]:
    return [PREF_DENSE_COLUMNS.index(f"{prefix}{k}") for k in range(NUM_LEVELS)]


Q_RATE_COLS = _cols("q_rate_l")
U_RATE_COLS = _cols("u_rate_l")
U_ACTIVITY_COL = PREF_DENSE_COLUMNS.index("u_log_activity")
U_IS_NEW_COL = PREF_DENSE_COLUMNS.index("u_is_new")
QUERY_PREF_COLS = [
    i for i, name in enumerate(PREF_DENSE_COLUMNS) if name.startswith("q_")
]  # cross-user mined


def preference_shape(rates: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` smoothed click rates -> centred log rates (how clicks rise with level; scale-free)."""
    logs = torch.log(rates.clamp_min(1e-6))
    return logs - logs.mean(dim=1, keepdim=True)


class ActivityGate(nn.Module):
    """alpha = sigmoid(w * log(1 + n_u) + b) * (1 - is_new): weight of the personal preference."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.0))
        self.b = nn.Parameter(torch.tensor(-1.0))

    def forward(self, log_activity: torch.Tensor, is_new: torch.Tensor) -> torch.Tensor:
        """``(N,), (N,) -> (N,)`` alpha in [0, 1); exactly 0 for a new user."""
        return torch.sigmoid(self.w.abs() * log_activity + self.b) * (1.0 - is_new)


class PreferenceVector(nn.Module):
    """pref_dense ``(N, P)`` -> (preference ``(N, K)``, alpha ``(N,)``) for V1 (personal) or V2 (blend)."""

    def __init__(self, blend: bool) -> None:
        super().__init__()
        self.blend = blend
        self.gate = ActivityGate()

    def forward(self, pref_dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        personal = preference_shape(pref_dense[:, U_RATE_COLS])  # (N, K)
        if not self.blend:
            return personal, torch.ones_like(personal[:, 0])
        alpha = self.gate(pref_dense[:, U_ACTIVITY_COL], pref_dense[:, U_IS_NEW_COL])  # (N,)
        global_ = preference_shape(pref_dense[:, Q_RATE_COLS])  # (N, K)
        a = alpha.unsqueeze(1)
        return a * personal + (1.0 - a) * global_, alpha


class RelevanceIncentive(nn.Module):
    """tau(x) from (p_level, preference): a mixture of +softplus / -softplus / zero experts.

    The gate is a noisy Gumbel-softmax while training (exploration, no expert starves) and a plain softmax
    in eval and export, so the exported graph is deterministic.
    """

    NUM_EXPERTS = 3  # positive, negative, zero

    def __init__(self, num_levels: int, hidden: int, temperature: float = 1.0) -> None:
        super().__init__()
        in_dim = 2 * num_levels + num_levels * num_levels + 2
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.gate_logits = nn.Linear(hidden, self.NUM_EXPERTS)
        self.experts = nn.Linear(hidden, 2)  # raw magnitudes of the positive and negative experts
        self.temperature = temperature

    def forward(
        self, p_level: torch.Tensor, pref: torch.Tensor, log_activity: torch.Tensor, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """p_level ``(N, K)``, pref ``(N, K)``, ``(N,)``, ``(N,)`` -> tau ``(N,)``, gate probs ``(N, 3)``."""
        outer = (p_level.unsqueeze(2) * pref.unsqueeze(1)).flatten(1)  # (N, K*K)
        x = torch.cat([p_level, pref, outer, log_activity.unsqueeze(1), alpha.unsqueeze(1)], dim=1)
        z = self.trunk(x)  # (N, hidden)
        logits = self.gate_logits(z)  # (N, 3)
        if self.training:
            u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
            logits = logits - torch.log(-torch.log(u))
        gate = torch.softmax(logits / self.temperature, dim=1)  # (N, 3)
        mags = nn.functional.softplus(self.experts(z))  # (N, 2)
        tau = gate[:, 0] * mags[:, 0] - gate[:, 1] * mags[:, 1]  # zero expert contributes 0
        return tau, gate
