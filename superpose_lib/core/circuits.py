"""The small circuits: RiS rotation circuits with an on-indicator (book: "Notation", eq. eq-circuit).

Circuit t has d = 4 neurons: two carry the on-indicator α ∈ {0, 1} through the step
ReLU(2α − 0.5) − ReLU(2α − 1.5), two carry a 2-d vector x, rotated by θ_t each layer
while α = 1. Everything here is batched over circuits: circuits are one tensor axis.
"""

from __future__ import annotations

import math

import torch

from .checks import check_fits, checked

__all__ = [
    "BIAS",
    "MEAN_WEIGHT",
    "rotation_weights",
    "sample_thetas",
    "encode_input",
    "decode",
    "run_circuits",
]

# b = [-0.5, -1.5, -1, -1], the same for every circuit and every layer.
BIAS = (-0.5, -1.5, -1.0, -1.0)
# w̄ = the mean of w_t over circuits: every row is [2, -2, 0, 0].
MEAN_WEIGHT = ((2.0, -2.0, 0.0, 0.0),) * 4


@checked
def sample_thetas(T: int, generator: torch.Generator, *, dtype=torch.float64, device="cpu"):
    """Rotation angles θ_t ~ U[0, 2π), one per circuit."""
    check_fits("the circuits' angles", lambda T: 24 * T, {"T": T}, {"T": 1}, "cpu")
    u = torch.rand(T, generator=generator, dtype=torch.float64)
    return (2 * math.pi * u).to(device=device, dtype=dtype)


def rotation_weights(theta: torch.Tensor) -> torch.Tensor:
    """w_t for every circuit, shape [T, 4, 4] (book: "Notation", the matrix w_t of eq-circuit).

    Rows 0-1 implement the on-indicator step; rows 2-3 rotate x by θ_t and cancel the
    α offset: pre-activation = 2α − 1 + (R_θ x) when the readout is α, x.
    """
    c, s = torch.cos(theta), torch.sin(theta)
    two = torch.full_like(theta, 2.0)
    zero = torch.zeros_like(theta)
    rows = [
        [two, -two, zero, zero],
        [two, -two, zero, zero],
        [two - (c - s), -two + (c - s), c, -s],
        [two - (s + c), -two + (s + c), s, c],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def encode_input(alpha: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """a^0 = [1.5α, 0.5α, x0 + α, x1 + α]; alpha [...], x [..., 2] -> [..., 4]."""
    a = alpha.unsqueeze(-1)
    return torch.cat([1.5 * a, 0.5 * a, x + a], dim=-1)


def decode(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Readouts of a circuit's state: α = a[0] − a[1], x = a[2:4] − α (last axis is d)."""
    alpha = a[..., 0] - a[..., 1]
    return alpha, a[..., 2:4] - alpha.unsqueeze(-1)


@checked
def run_circuits(w: torch.Tensor, a0: torch.Tensor, L: int, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Run small circuits directly: a^l = ReLU(w a^{l-1} + b) for l = 1..L (the ground truth).

    w: [..., d, d] (per circuit), a0: [..., d], bias: [d] (default RiS's b; a scheme with
    another step passes its own). Returns [L + 1, ..., d] with index = layer.
    """
    b = torch.tensor(BIAS, dtype=a0.dtype, device=a0.device) if bias is None else bias.to(a0.device, a0.dtype)
    out = [a0]
    for _ in range(L):
        out.append(torch.relu(torch.einsum("...ij,...j->...i", w, out[-1]) + b))
    return torch.stack(out)


def scheme_weights(
    theta: torch.Tensor, theta_lo: float = 0.25, theta_hi: float = 0.75, extra: str | None = None, rho: float = 0.5
):
    """Rotation circuits with the indicator step ReLU(k(α−θ_lo)) − ReLU(k(α−θ_hi)),
    k = 1/(θ_hi − θ_lo): w_t [T, d, d], w̄ [d, d], b [d].

    Rows 0–1 become [k, −k, 0, 0] with biases −kθ_lo, −kθ_hi; payload rows read only
    a_0 − a_1 = α, so they keep RiS's weights. θ = (0.25, 0.75) is RiS's circuit exactly.

    extra adds a second indicator pair (rows 4–5, same step and biases):
    "average" (E2): both pairs step the weighted average (1−ρ)·α^{(0)} + ρ·α^{(4)};
    "register" (E4): the pair 4–5 steps only itself, and rows 0–1 copy it (α^{(0)} is
    recomputed from the register every layer, never from itself). The payload rows
    always read α^{(0)}, whose neurons share the payload's positions as in RiS.
    """
    k = 1.0 / (theta_hi - theta_lo)
    d = 4 if extra is None else 6
    T = theta.shape[0]
    w = torch.zeros(T, d, d, dtype=theta.dtype)
    w[:, :4, :4] = rotation_weights(theta)
    step = torch.zeros(d, dtype=theta.dtype)  # the indicator rows' common weights
    if extra is None:
        step[0], step[1] = k, -k
    elif extra == "average":
        step[0], step[1], step[4], step[5] = k * (1 - rho), -k * (1 - rho), k * rho, -k * rho
    else:
        step[4], step[5] = k, -k
    ind = [0, 1] if extra is None else [0, 1, 4, 5]
    w[:, ind, :] = step
    w_bar = torch.zeros(d, d, dtype=theta.dtype)
    w_bar[ind, :] = step  # indicator rows are the same for every circuit (Δw = 0)
    w_bar[2:4, 0], w_bar[2:4, 1] = 2.0, -2.0  # payload rows: RiS's w̄ (mean over θ ~ U[0, 2π))
    bias = torch.tensor([-k * theta_lo, -k * theta_hi, -1.0, -1.0, -k * theta_lo, -k * theta_hi][:d], dtype=w.dtype)
    return w, w_bar, bias
