"""An exact z = 1 baseline: block-structured ("ping-pong") computation, Gibson's resource counts.

Gibson (2025b in the book's bibliography) describes a zero-error construction for exactly
one active circuit: T = (D/d)² circuits, width D(1 + 2/d). We did not reproduce the post
(LessWrong g9uMJkcWj8jQDjybb) from its text: this module builds a construction *with those
resource counts*, and the chapter says so. What we build:

- The D neurons form M = D/d groups of d neurons; circuit t = (i, j), i, j < M, so T = M².
- Two one-hot registers of M neurons each, R_A = e_i and R_B = e_j (width D + 2M = D(1 + 2/d)),
  copied unchanged every layer (ReLU of a 0/1 value is itself).
- The active circuit's state "ping-pongs": it sits in group i at even layers and in group j
  at odd layers. At odd layer l the block from group g to group g' holds w^l_{(g, g')}; at even
  layer l the block from g to g' holds w^l_{(g', g)}. Every group receives a candidate update
  (only the occupied group is non-zero); a gate −G·(1 − R[g']) with G above any
  pre-activation switches off every output group but the right one (R_B at odd layers, R_A at
  even layers). The surviving group holds ReLU(w^l_t a^{l−1} + b), exactly.

So every weight block of the D × D part is one circuit's d × d weight: D² parameters for
T·d² = D² circuit parameters, plus the gate (D weights) and register copies (2M).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ..core.assignment import max_circuits
from ..core.checks import check_d, check_int, checked
from ..core.circuits import BIAS, encode_input, rotation_weights, sample_thetas
from ..core.experiment import sample_unit_vectors

__all__ = ["BlockNetwork", "block_cost", "block_exactness", "cost_table"]


class BlockNetwork(nn.Module):
    """The ping-pong network. w: [L, M, M, d, d], w[l−1, i, j] = layer-l weight of circuit (i, j);
    bias: [d] (every circuit's); gate: G (default: a bound on |pre-activation| + 1, computed
    from the weights for states bounded by `state_bound`)."""

    def __init__(self, w: torch.Tensor, bias, *, gate: float | None = None, state_bound: float = 10.0):
        super().__init__()
        if w.ndim != 5 or w.shape[1] != w.shape[2] or w.shape[3] != w.shape[4]:
            raise ValueError(f"w must have shape [L, M, M, d, d], got {tuple(w.shape)}")
        self.L, self.M, _, self.d, _ = w.shape
        self.register_buffer("w", w)
        self.register_buffer("bias", torch.as_tensor(bias, dtype=w.dtype, device=w.device))
        if gate is None:  # |w a + b| ≤ ‖w‖_∞·max|a| + max|b| for every circuit
            row = w.abs().sum(-1).amax()
            gate = float(row * state_bound + self.bias.abs().max() + 1.0)
        self.G = gate

    @property
    def T(self) -> int:
        return self.M * self.M

    @property
    def width(self) -> int:
        """Neurons per layer: D + 2M = D(1 + 2/d)."""
        return self.M * self.d + 2 * self.M

    def embed(self, circuit: torch.Tensor, a0: torch.Tensor):
        """circuit [B] (t = i·M + j), a0 [B, d] -> (X [M, d, B] with a0 in group i, R_A, R_B [M, B])."""
        B = circuit.shape[0]
        check_int("circuit", int(circuit.max()), 0, self.T - 1)
        i, j = circuit // self.M, circuit % self.M
        cols = torch.arange(B, device=circuit.device)
        X = torch.zeros(self.M, self.d, B, dtype=self.w.dtype, device=self.w.device)
        X[i, :, cols] = a0.to(X)
        RA = torch.zeros(self.M, B, dtype=X.dtype, device=X.device)
        RB = torch.zeros_like(RA)
        RA[i, cols] = 1.0
        RB[j, cols] = 1.0
        return X, RA, RB

    def layer(self, l: int, X, RA, RB):
        """Layer l ≥ 1: candidate updates of every group, gated to the group named by the register."""
        w = self.w[l - 1]
        if l % 2:  # odd: state in group i -> group j; block (g -> g') = w_{(g, g')}
            Y = torch.einsum("ghij,gjb->hib", w, X)
            R = RB
        else:  # even: state in group j -> group i; block (g -> g') = w_{(g', g)}
            Y = torch.einsum("hgij,gjb->hib", w, X)
            R = RA
        pre = Y + self.bias[None, :, None] + self.G * (R - 1.0)[:, None, :]
        return torch.relu(pre), torch.relu(RA), torch.relu(RB)

    def forward(self, X, RA, RB) -> list:
        """Every layer's (X, R_A, R_B), index = layer."""
        out = [(X, RA, RB)]
        for l in range(1, self.L + 1):
            out.append(self.layer(l, *out[-1]))
        return out

    def readout(self, l: int, state, circuit: torch.Tensor) -> torch.Tensor:
        """The active circuit's state at layer l: group j (odd l) or i (even l) -> [B, d]."""
        X = state[0]
        g = circuit % self.M if l % 2 else circuit // self.M
        return X[g, :, torch.arange(circuit.shape[0], device=X.device)]

    def off_group_max(self, l: int, state, circuit: torch.Tensor) -> float:
        """Largest |activation| anywhere but the active circuit's group at layer l (exactly 0:
        the gate drives every other group below zero)."""
        X = state[0].clone()
        g = circuit % self.M if l % 2 else circuit // self.M
        X[g, :, torch.arange(circuit.shape[0], device=X.device)] = 0.0
        return float(X.abs().max())

    # ---- the readable reference path ----------------------------------------------------
    def dense_weight(self, l: int):
        """(W^l, b^l) as a dense (D + 2M)² matrix and bias; neuron order: group g position k at
        g·d + k, then R_A, then R_B."""
        M, d = self.M, self.d
        D = M * d
        N = D + 2 * M
        W = torch.zeros(N, N, dtype=self.w.dtype, device=self.w.device)
        w = self.w[l - 1]
        blocks = w.permute(1, 2, 0, 3) if l % 2 else w.permute(0, 2, 1, 3)  # [g', i, g, j]: out, in
        W[:D, :D] = blocks.reshape(D, D)
        reg = D + M if l % 2 else D  # R_B gates odd layers, R_A even
        g = torch.arange(D, device=W.device) // d
        W[torch.arange(D), reg + g] = self.G
        W[D:, D:] = torch.eye(2 * M, dtype=W.dtype, device=W.device)
        b = torch.zeros(N, dtype=W.dtype, device=W.device)
        b[:D] = self.bias.repeat(M) - self.G
        return W, b

    def forward_dense(self, X, RA, RB) -> list[torch.Tensor]:
        """The same forward pass through dense matrices: [B, D + 2M] per layer."""
        v = torch.cat([X.permute(2, 0, 1).reshape(X.shape[-1], -1), RA.T, RB.T], 1)
        out = [v]
        for l in range(1, self.L + 1):
            W, b = self.dense_weight(l)
            out.append(torch.relu(out[-1] @ W.T + b))
        return out


@checked
def block_cost(D: int, d: int = 4) -> dict:
    """Resources of the ping-pong network at D: circuits T = (D/d)², neurons per layer
    D(1 + 2/d), dense and non-zero parameters per layer (weights + biases)."""
    D, d = check_int("D", D, 1), check_d(d)
    M = D // d
    N = D + 2 * M
    return {
        "T": M * M,
        "neurons": N,
        "params_dense": N * N + N,
        "params_nonzero": M * M * d * d + D + 2 * M + D,
    }


@checked
def block_exactness(D_list, L: int, seed: int) -> dict:
    """The block construction run on every one of its (D/4)² rotation circuits at each D of
    D_list (float64 inputs, generator `seed` per D), against the circuits run on their own.
    Returns err {D: the largest readout error over circuits and layers}, stray {D: the
    largest value off the active circuit's groups, over layers} and "glue"."""
    err, stray = {}, {}
    for Db in D_list:
        Mb = Db // 4
        gb = torch.Generator().manual_seed(seed)
        wb = rotation_weights(sample_thetas(Mb * Mb * L, gb)).view(L, Mb, Mb, 4, 4)
        bn = BlockNetwork(wb, BIAS)
        t_all = torch.arange(Mb * Mb)  # every circuit, once
        a0b = encode_input(torch.ones(Mb * Mb, dtype=torch.float64), sample_unit_vectors((Mb * Mb,), gb))
        states = bn.forward(*bn.embed(t_all, a0b))
        a, werr, smax = a0b, 0.0, 0.0
        for l in range(1, L + 1):
            bias = torch.tensor(BIAS, dtype=a.dtype)
            a = torch.relu(torch.einsum("tij,tj->ti", wb[l - 1].reshape(-1, 4, 4), a) + bias)
            werr = max(werr, float((bn.readout(l, states[l], t_all) - a).abs().max()))
            smax = max(smax, bn.off_group_max(l, states[l], t_all))
        err[Db], stray[Db] = werr, smax
    worst = max(err.values())
    return {"err": err, "stray": stray, "glue": {"cross-block-err": f"{worst:.0e}" if worst > 0 else "exactly 0"}}


@checked
def cost_table(D_list, S: int):
    """Per layer at each D: circuits, neurons, parameters (dense and non-zero) and the share
    of parameters that are circuit weights, for the block construction (z = 1 only) and the
    superposed one (T = max_circuits(D/4, S)), formatted for the page."""
    rows = []
    for Dc in D_list:
        bc = block_cost(Dc)
        rows.append(
            {
                "D": Dc,
                "construction": "block (z = 1 only)",
                "T": bc["T"],
                "neurons": bc["neurons"],
                "params": bc["params_dense"],
                "non-zero": bc["params_nonzero"],
                "circuit share": 16 * bc["T"] / bc["params_dense"],
            }
        )
        Tc = max_circuits(Dc // 4, S)
        rows.append(
            {
                "D": Dc,
                "construction": "superposed (z ≥ 1)",
                "T": Tc,
                "neurons": Dc,
                "params": Dc * Dc + Dc,
                "non-zero": Dc * Dc + Dc,
                "circuit share": 16 * Tc / (Dc * Dc + Dc),
            }
        )
    return (
        pd.DataFrame(rows)
        .style.hide(axis="index")
        .format({"T": "{:,d}", "neurons": "{:,d}", "params": "{:,d}", "non-zero": "{:,d}", "circuit share": "{:.3f}"})
        .set_caption(
            "Per layer: circuits, neurons, parameters (dense and non-zero), and the share of parameters "
            "that are circuit weights"
        )
    )
