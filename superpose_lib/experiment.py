"""Build a network from a seed and measure its errors (RiS Figures 8–11 quantities).

Device and dtype are decided here, at the entry point, and flow with the tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .assignment import layer_assignments
from .circuits import BIAS, MEAN_WEIGHT, decode, encode_input, rotation_weights, run_circuits, sample_thetas
from .config import CiSConfig, check_int
from .network import SuperposedNetwork

__all__ = ["build_network", "sample_active", "sample_unit_vectors", "RotationRun", "rotation_run", "rotation_errors"]


def build_network(cfg: CiSConfig, generator: torch.Generator, *, device="cpu", dtype=torch.float32):
    """Random rotation circuits (θ_t ~ U[0, 2π)) and their superposed network.

    Draws, in order, the T angles and the L layer permutations from `generator`.
    Returns (net, theta).
    """
    theta = sample_thetas(cfg.T, generator)
    w = rotation_weights(theta).to(dtype)
    idx = layer_assignments(cfg.T, cfg.M, cfg.S, cfg.L, generator, device=device)
    net = SuperposedNetwork(w.to(device), idx, cfg.M, MEAN_WEIGHT, BIAS)
    return net, theta


def sample_active(T: int, z: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """z distinct circuits per batch row, uniformly: LongTensor [batch, z]."""
    z = check_int("z", z, 1, T)
    if T <= 64 * z:  # few circuits: a random permutation per row
        return torch.rand(batch, T, generator=generator).argsort(dim=1)[:, :z]
    active = torch.randint(T, (batch, z), generator=generator)
    while True:  # redraw rows with a repeated circuit (rare when T ≫ z)
        s = active.sort(dim=1).values
        bad = (s[:, 1:] == s[:, :-1]).any(dim=1)
        if not bad.any():
            return active
        active[bad] = torch.randint(T, (int(bad.sum()), z), generator=generator)


def sample_unit_vectors(shape, generator: torch.Generator) -> torch.Tensor:
    """x on the unit circle (|x| = 1, as in RiS's code), shape [*shape, 2], float64."""
    phi = 2 * math.pi * torch.rand(*shape, generator=generator, dtype=torch.float64)
    return torch.stack([torch.cos(phi), torch.sin(phi)], dim=-1)


@dataclass
class RotationRun:
    """One batch through a network: per layer sums of squared errors (float64).

    per_sample (only with `rotation_run(..., per_sample=True)`): float64 tensors indexed
    [..., layer] (index 0 = input, left 0):
    err_x [B, z, L+1] |δx|² of every active circuit; err_on [B, z, L+1] (1 − α̂)²;
    on [B, L+1] neurons with A > 0; explained [B, L+1] d·|∪_{t active} e_t^l|, the neurons
    the active circuits use; outside [B, L+1] switched-on neurons outside that union;
    phantoms [B, L+1] inactive circuits whose on-indicator readout α̂ > 0.25 (it passes
    the step).
    """

    sums: dict
    counts: dict
    per_sample: dict | None = None

    def mse(self) -> dict:
        return {k: [s / self.counts[k] for s in v] for k, v in self.sums.items()}


def _chunk(T: int, d: int, batch: int, budget_bytes: float = 2**29) -> int:
    """Batch rows per chunk so the [T, d, B] work tensors stay within ~0.5 GiB each."""
    return max(1, min(batch, int(budget_bytes // (T * d * 8))))


def rotation_run(
    net: SuperposedNetwork, active: torch.Tensor, x0: torch.Tensor, *, chunk=None, per_sample: bool = False
) -> RotationRun:
    """Run `net` on active sets `active` [B, z] with inputs x0 [B, z, 2] and accumulate the
    per-layer squared errors of every circuit (active vs the small circuits' truth;
    inactive against 0). per_sample=True also keeps each active circuit's errors and
    each sample's switched-on neuron counts (`RotationRun.per_sample`); the sums are the
    same either way."""
    T, L, d = net.T, net.L, net.d
    dtype, device = net.w.dtype, net.idx.device
    B, z = active.shape
    keys = ("active_x", "inactive_x", "active_on", "inactive_on")
    sums = {k: [0.0] * (L + 1) for k in keys}
    chunk = chunk or _chunk(T, d, B)
    ps = None
    if per_sample:
        ps = {k: torch.zeros(B, z, L + 1, dtype=torch.float64) for k in ("err_x", "err_on")}
        ps |= {k: torch.zeros(B, L + 1, dtype=torch.float64) for k in ("on", "explained", "outside", "phantoms")}
    for lo in range(0, B, chunk):
        act = active[lo : lo + chunk].to(device)
        b = act.shape[0]
        a0 = encode_input(torch.ones(b, z, dtype=torch.float64), x0[lo : lo + chunk]).to(device)
        truth = run_circuits(net.w[act].double(), a0.double(), L)  # [L+1, b, z, d]
        cols = torch.arange(b, device=device)[:, None].expand(b, z)
        for l, A, G in net.layers_iter(net.embed(act, a0.to(dtype))):
            R = (G / net.S).double()  # readouts of every circuit [T, d, b]
            alpha, x = decode(R.permute(0, 2, 1))  # [T, b], [T, b, 2]
            t_alpha, t_x = decode(truth[l])  # [b, z], [b, z, 2]
            a_alpha, a_x = alpha[act, cols], x[act, cols]  # active readouts [b, z(, 2)]
            sums["active_x"][l] += float(((a_x - t_x) ** 2).sum())
            sums["active_on"][l] += float(((a_alpha - t_alpha) ** 2).sum())
            sums["inactive_x"][l] += float((x**2).sum() - (a_x**2).sum())
            sums["inactive_on"][l] += float((alpha**2).sum() - (a_alpha**2).sum())
            if ps is not None:
                hi = lo + b
                ps["err_x"][lo:hi, :, l] = ((a_x - t_x) ** 2).sum(-1).cpu()
                ps["err_on"][lo:hi, :, l] = ((a_alpha - t_alpha) ** 2).cpu()
                ps["phantoms"][lo:hi, l] = ((alpha > 0.25).sum(0) - (a_alpha > 0.25).sum(1)).double().cpu()
                # Neurons the active circuits use at layer l: the union of their e_t^l (per block).
                used = torch.zeros(net.M, b, dtype=torch.bool, device=device)
                used[net.idx[l - 1][act].reshape(b, -1), cols[:, :1].expand(b, z * net.S)] = True
                on = A > 0  # [M, d, b]
                ps["on"][lo:hi, l] = on.sum((0, 1)).double().cpu()
                ps["explained"][lo:hi, l] = (d * used.sum(0)).double().cpu()
                ps["outside"][lo:hi, l] = (on & ~used[:, None, :]).sum((0, 1)).double().cpu()
    n_act, n_inact = B * z, B * (T - z)
    counts = {"active_x": n_act, "active_on": n_act, "inactive_x": max(n_inact, 1), "inactive_on": max(n_inact, 1)}
    return RotationRun(sums, counts, ps)


def rotation_errors(D, T, *, S=6, L=4, z=1, batch=500, seed=0, device="cpu", dtype=torch.float32, d=4) -> dict:
    """Per-layer MSEs of RiS Figures 8–11 for a fresh network (index = layer, 0 = input).

    Keys: active_x ⟨|x − x̂|²⟩ (summed over both components), inactive_x ⟨|x̂|²⟩,
    active_on ⟨(1 − α̂)²⟩, inactive_on ⟨α̂²⟩; averaged over the batch and the active (or all
    inactive) circuits. Active sets are z distinct circuits drawn uniformly; x is on the
    unit circle. The same seed gives the same numbers.
    """
    cfg = CiSConfig(D=D, T=T, d=d, S=S, L=L, z=z)
    batch = check_int("batch", batch, 1)
    g = torch.Generator().manual_seed(int(seed))
    net, _ = build_network(cfg, g, device=device, dtype=dtype)
    active = sample_active(cfg.T, cfg.z, batch, g)
    x0 = sample_unit_vectors((batch, cfg.z), g)
    return rotation_run(net, active, x0).mse()
