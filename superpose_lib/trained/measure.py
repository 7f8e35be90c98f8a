"""What a trained network does, measured against the construction (book: "Trained versus
constructed", section "Mechanism"): the baselines without superposition and the mechanism
measures of the learned layers.

Every measure reads the decoded quantities of `core.circuits.decode` (α̂ = â_0 − â_1,
x̂ = â_{2:4} − α̂) at layer L, on the evaluation draws of `trained_errors` (those of
`rotation_errors` at the network's seed).
"""

from __future__ import annotations

import math

import torch

from ..core.checks import CIRCUIT_WIDTH, check_int, checked
from ..core.circuits import encode_input
from ..core.criteria import ON_THRESHOLD, Q90_DX_MAX
from ..core.experiment import seeded_experiment
from .train import DenseNetwork, circuit_targets, eval_draws

__all__ = ["mechanism", "span_share", "indicator_transfer", "dedicated_errors"]


def _decoded(net: DenseNetwork, active: torch.Tensor, x0: torch.Tensor):
    """Layer-L activations [B, D], every circuit's α̂ [B, T] and x̂ [B, T, 2], the targets'
    α [B, T] and x [B, T, 2] (inactive: 0), and the on mask [B, T]."""
    a0, truth, on = circuit_targets(net, active, x0)
    A = net.forward_flat(active, a0)[-1]
    a_hat = net.readouts_flat(A, net.L).double()  # [B, T, d]
    B, z = active.shape
    rows = torch.arange(B, device=active.device)[:, None].expand(B, z)
    target = torch.zeros_like(a_hat).index_put_((rows, active), truth[net.L].double())
    alpha_hat = a_hat[..., 0] - a_hat[..., 1]
    alpha = target[..., 0] - target[..., 1]
    return A, alpha_hat, a_hat[..., 2:] - alpha_hat[..., None], alpha, target[..., 2:] - alpha[..., None], on


@checked
def span_share(net: DenseNetwork) -> float:
    """The share of Σ_l ‖W^l‖² (l = 2..L) in the span of the construction's blocks: the
    least-squares projection of each d × d grid of M × M sub-matrices W^l_{ij} onto the T
    circuit blocks |e_t^l⟩⟨e_t^{l−1}| and the all-ones matrix (the mean-weight direction).
    The construction lies there but for the few neuron pairs that several circuits connect
    (its share is ≈ 1); a Gaussian matrix has (T + 1)/M² of its weight there.

    The blocks' Gram matrix is (P_l P_lᵀ) ∘ (P_{l−1} P_{l−1}ᵀ) (two circuits' blocks meet in
    |e_t ∩ e_u|·|e'_t ∩ e'_u| entries), bordered by S² against the ones and M² for the
    ones themselves; the right-hand sides are the sums of W_{ij} over each block."""
    with torch.no_grad():
        d, M, S = net.d, net.M, net.S
        num, den = 0.0, 0.0
        for l in range(2, net.L + 1):
            Pc, Pp = net.P[l - 1].double(), net.P[l - 2].double()
            W = net.W[l - 2].double().view(d, M, d, M)
            T = Pc.shape[0]
            G = torch.empty(T + 1, T + 1, dtype=torch.float64)
            G[:T, :T] = (Pc @ Pc.T) * (Pp @ Pp.T)
            G[:T, T] = G[T, :T] = S * S
            G[T, T] = M * M
            r = torch.empty(T + 1, d * d, dtype=torch.float64)
            r[:T] = torch.einsum("tn,injm,tm->tij", Pc, W, Pp).reshape(T, d * d)
            r[T] = W.sum((1, 3)).reshape(d * d)
            coef = torch.linalg.lstsq(G, r).solution
            num += float((coef * r).sum())
            den += float(W.pow(2).sum())
        return num / den


@checked
def indicator_transfer(net: DenseNetwork, levels, *, n_samples: int = 256, seed: int = 0) -> list[float]:
    """The on-indicator that the first trained layer computes, as a function of its input:
    one active circuit's layer-1 state scaled by s (s = 0: off, s = 1: on, the only two
    that training shows the layer), through layer 2, read as α̂^2; the mean over
    `n_samples` random circuits and payloads for each s in `levels`. The construction's
    layer is RiS's step: 0 below s = 1/4, 1 above 3/4; a layer that passes s on unchanged
    has no step to remove indicator noise."""
    n = check_int("n_samples", n_samples, 1, 2**16)
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(net.T, (n, 1), generator=g)
    phi = 2 * torch.pi * torch.rand(n, 1, generator=g, dtype=torch.float64)
    x = torch.stack([phi.cos(), phi.sin()], -1)
    a0 = encode_input(torch.ones(n, 1, dtype=torch.float64), x).to(net.w.dtype)
    out = []
    with torch.no_grad():
        A0 = net._embed_flat(t, a0)
        A1 = torch.relu(A0 + net._b1())
        for s in levels:
            A2 = net._act(float(s) * A1 @ net.Ws[0].T + net.bs[0])
            a = net.readouts_flat(A2, 2)[torch.arange(n), t[:, 0]].double()
            out.append(float((a[:, 0] - a[:, 1]).mean()))
    return out


def _quantile(t: torch.Tensor, q: float) -> float:
    return float(torch.quantile(t, q)) if t.numel() else math.nan


@checked
def mechanism(net: DenseNetwork, *, batch: int = 2000) -> dict:
    """What the learned layers do, on `trained_errors`' draws (layer L):

    - served: circuits whose mean |δx| over the samples where they are active is ≤
      Q90_DX_MAX (circuits not active in the batch do not count), beside dedicated = D/d:
      more served than D/d means more circuits computed than dedicated neurons could hold
      (the control of Bhagat et al.: a network that solves D/d circuits and ignores the
      rest serves at most D/d); dx_spread: the 90th over the 10th percentile of those
      per-circuit errors (wide for a network that solves some circuits and drops others);
    - on_gap: the 1st percentile of the active circuits' α̂ minus the 99.9th of the
      inactive ones' (> 0: a threshold separates them);
    - inactive_x: the rms payload readout |x̂| of inactive circuits (0: silent);
      outside_on: the fraction of neurons that no active circuit uses (in any block) that
      are on (0: the network is silent outside the active circuits' neurons);
    - span: `span_share`; participation: (Σ|W|)²/(N ΣW²) over the N entries of W^2..W^L
      (2/π for Gaussian entries, ≈ the fraction of entries used for a sparse matrix)."""
    active, x0 = eval_draws(net, batch)
    with torch.no_grad():
        A, alpha_hat, x_hat, alpha, x, on = _decoded(net, active, x0)
        B = active.shape[0]
        dx = (x_hat - x).norm(dim=-1)  # [B, T]
        count = on.sum(0)
        per = ((dx * on).sum(0) / count.clamp(min=1))[count > 0]
        p10, p90 = (
            torch.quantile(per, torch.tensor([0.1, 0.9], dtype=torch.float64)).tolist()
            if per.numel()
            else (math.nan, math.nan)
        )
        used = torch.zeros(B, net.M, dtype=torch.bool, device=A.device)
        cols = torch.arange(B, device=A.device)[:, None].expand(B, active.shape[1] * net.S)
        used[cols, net.idx[net.L - 1][active].reshape(B, -1)] = True
        outside = ~used[:, None, :].expand(B, net.d, net.M)
        W = net.W.double()
        return {
            "served": int((per <= Q90_DX_MAX).sum()),
            "dedicated": net.M,
            "dx_spread": p90 / max(p10, 1e-12),
            # nan where a side is empty (T = z: no circuit is ever inactive)
            "on_gap": _quantile(alpha_hat[on], 0.01) - _quantile(alpha_hat[~on], 0.999),
            "inactive_x": float(x_hat[~on].pow(2).sum(-1).mean().sqrt()) if (~on).any() else math.nan,
            "outside_on": float((A.view(B, net.d, net.M) > 0)[outside].double().mean()),
            "span": span_share(net),
            "participation": float(W.abs().sum() ** 2 / (W.numel() * W.pow(2).sum())),
            "alpha_threshold": ON_THRESHOLD,
        }


@checked
def dedicated_errors(D: int, T: int, *, z: int = 2, L: int = 3, seed: int = 0, batch: int = 500) -> dict:
    """The no-superposition network at layer L: circuits t < D/d on their own d neurons,
    computed exactly; the others left at 0 (dropped when active, silent when not). Scored
    on `rotation_errors`' active sets at this seed: false_on = 0, false_off = the fraction
    of active circuits with t ≥ D/d, |δx| = 1 for those and 0 for the rest."""
    _, active, _ = seeded_experiment(D, T, z=z, L=L, seed=seed, batch=batch)
    dropped = (active >= D // CIRCUIT_WIDTH).double().flatten()
    return {
        "false_on": 0.0,
        "false_off": float(dropped.mean()),
        "q90_dx": float(torch.quantile(dropped, 0.9)),
        "worst_dx": float(dropped.max()),
        "served": min(T, D // CIRCUIT_WIDTH),
    }
