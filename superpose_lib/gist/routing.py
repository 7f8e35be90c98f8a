"""On-indicators computed inside the network: a language model's residual after attention 0
switches the circuits of a superposed network on and off (the mixture-of-experts use that the
LessWrong comment thread of RiS imagined).

Set-up. C context classes (genres) own ``per_class`` RiS rotation circuits each,
T = C·per_class; circuit c·per_class + s belongs to class c. At a token, slot s (from the
current token) names one candidate circuit per class, and all C candidates receive the token's
payload x. Their on-indicator inputs come from the residual r (after attention 0) through one
linear map fit on other documents than the ones routed (`cv_indicator_logits`),

    ℓ_c = U_c · r + b_c          (one-vs-rest logistic regression: ℓ_c is the log-odds of class c)
    α_c = clip(½ + (ℓ_c − τ)/w, 0, 1)      (the indicator neuron: ReLU(u) − ReLU(u − 1))

and the circuits' own first-layer step ReLU(2α − 0.5) − ReLU(2α − 1.5) then decides which of
them run: a candidate is on when its layer-L readout α̂ exceeds ½. τ moves the threshold (and
so how many circuits run per token, the z the network must carry), w is the width in
log-odds of the ramp. The target is what the true class's circuit computes; every other
circuit should output 0. Errors are those of `toy.topic_circuits_errors` (layer L).

Switching circuits off, the question of the comment thread: a class's circuits are switched
off where ℓ_c < τ and otherwise kept on (abstaining when unsure); `switch_off_curve` gives the
trade-off between circuits saved and needed circuits lost, `budget_threshold` the τ at which
at most a given fraction of the needed ones is lost.
"""

from __future__ import annotations

import pandas as pd
import torch

from ..core.checks import checked
from ..core.circuits import decode, encode_input, run_circuits
from ..core.config import CiSConfig
from ..core.experiment import build_network, sample_unit_vectors
from .probes import fit_logistic

__all__ = [
    "cv_indicator_logits",
    "switch_off_curve",
    "budget_threshold",
    "IndicatorMap",
    "fit_indicator_map",
    "indicator_inputs",
    "routed_circuits_errors",
]


class IndicatorMap:
    """ℓ = X U + b (log-odds per class): the affine map of the residual to on-indicator
    pre-activations."""

    def __init__(self, U: torch.Tensor, b: torch.Tensor):
        self.U, self.b = U, b

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        return X.double() @ self.U + self.b


@checked
def fit_indicator_map(X: torch.Tensor, y, n_classes: int, *, l2: float = 1e-2, steps: int = 100) -> IndicatorMap:
    """One-vs-rest logistic regressions of "class c" on X (class-balanced, L2 on standardised
    features, `gpt2.fit_logistic` with two classes), folded back into one affine map of the
    raw features: ℓ_c(x) = ((x − μ)/σ)·(W₁ − W₀) + (b₁ − b₀)."""

    y = torch.as_tensor(y, dtype=torch.long)
    Us, bs = [], []
    for c in range(n_classes):
        p = fit_logistic(X, (y == c).long(), 2, l2=l2, steps=steps)
        w = (p.W[:, 1] - p.W[:, 0]).double() / p.sd.double()
        Us.append(w)
        bs.append(float(p.b[1] - p.b[0]) - float(p.mu.double() @ w))
    return IndicatorMap(torch.stack(Us, 1), torch.tensor(bs, dtype=torch.float64))


@checked
def indicator_inputs(logits: torch.Tensor, tau: float = 0.0, width: float = 4.0) -> torch.Tensor:
    """α_c = clip(½ + (ℓ_c − τ)/w, 0, 1): the indicator neuron's output (a ReLU pair)."""
    return (0.5 + (logits - tau) / width).clamp(0.0, 1.0)


@torch.no_grad()
@checked
def routed_circuits_errors(
    alpha_in: torch.Tensor,
    true_class: torch.Tensor,
    slot: torch.Tensor,
    per_class: int,
    *,
    D: int = 1000,
    L: int = 4,
    S: int = 6,
    seed: int = 0,
    device="cpu",
) -> dict:
    """Run the superposed network with every class's candidate circuit fed α_in [B, C] and the
    payload x; measure at layer L. Returns false_on (fraction of wrong-class candidates that
    run), false_off (fraction of tokens whose true circuit does not run), n_on (circuits running
    per token), phantom (non-candidate circuits with α̂ > ½, per token: superposition noise),
    and the mean squared errors active_x, active_on (the true circuit), inactive_x,
    inactive_on (all T − 1 others); q90_dx and worst_dx, the 90th percentile and the largest
    |x̂ − x| of the true circuit (a dropped circuit has |δx| = 1: the book's criterion (a)
    asks q90_dx ≤ 1/4 and worst_dx < 1)."""

    B, C = alpha_in.shape
    if (slot < 0).any() or (slot >= per_class).any():
        raise ValueError(f"slot must lie in [0, {per_class - 1}]")
    if (true_class < 0).any() or (true_class >= C).any():
        raise ValueError(f"true_class must lie in [0, {C - 1}]")
    T = C * per_class
    g = torch.Generator().manual_seed(int(seed))
    net, _ = build_network(CiSConfig(D=D, T=T, S=S, L=L, z=C), g, device=device, dtype=torch.float64)
    cand = (torch.arange(C)[None, :] * per_class + slot[:, None]).to(device)  # [B, C]
    x0 = sample_unit_vectors((B, 1), g).expand(B, C, 2)
    a0 = encode_input(alpha_in.double(), x0).to(device)  # [B, C, d]
    for _, _, G in net.layers_iter(net.embed(cand, a0)):
        pass
    alpha, x = decode((G / net.S).double().permute(0, 2, 1))  # [T, B], [T, B, 2]
    true_circ = (true_class * per_class + slot).to(device)
    truth = run_circuits(
        net.w[true_circ].double(), encode_input(torch.ones(B, dtype=torch.float64), x0[:, 0]).to(device), L
    )[L]
    t_alpha, t_x = decode(truth)  # [B], [B, 2]
    cols = torch.arange(B, device=alpha.device)
    a_alpha, a_x = alpha[true_circ, cols], x[true_circ, cols]
    on = alpha[cand, cols[:, None]] > 0.5  # [B, C]: candidates that run
    is_true = torch.arange(C, device=on.device)[None, :] == true_class.to(on.device)[:, None]
    running = alpha > 0.5  # [T, B]
    running[cand.T, cols[None, :]] = False
    n_in = B * (T - 1)
    return {
        "false_on": float(on[~is_true].double().mean()) if C > 1 else 0.0,
        "false_off": float((~on[is_true]).double().mean()),
        "n_on": float(on.double().sum(1).mean()),
        "phantom": float(running.double().sum(0).mean()),
        "active_x": float(((a_x - t_x) ** 2).sum(-1).mean()),
        "q90_dx": float(((a_x - t_x) ** 2).sum(-1).sqrt().quantile(0.9)),
        "worst_dx": float(((a_x - t_x) ** 2).sum(-1).sqrt().max()),
        "active_on": float(((a_alpha - t_alpha) ** 2).mean()),
        "inactive_x": float(((x**2).sum() - (a_x**2).sum()) / n_in),
        "inactive_on": float(((alpha**2).sum() - (a_alpha**2).sum()) / n_in),
    }


# ----------------------------------------------------------------------------- switching circuits off
@checked
def cv_indicator_logits(
    X, y: torch.Tensor, folds: list, n_classes: int, *, l2: float = 1e-2, steps: int = 100
) -> torch.Tensor:
    """Out-of-fold one-vs-rest log-odds [n, C] (float64): at each position, the indicator
    map (`fit_indicator_map`) fit on the other folds' documents. X dense [n, d] or a
    `features.Bag`."""
    out = torch.zeros(len(y), n_classes, dtype=torch.float64)
    for tr, te in folds:
        tr, te = torch.as_tensor(tr), torch.as_tensor(te)
        Xtr = X[tr] if torch.is_tensor(X) else X.rows(tr.numpy())
        Xte = X[te] if torch.is_tensor(X) else X.rows(te.numpy())
        out[te] = fit_indicator_map(Xtr, y[tr], n_classes, l2=l2, steps=steps).logits(Xte)
    return out


def switch_off_curve(logits: torch.Tensor, y, taus) -> pd.DataFrame:
    """Circuits switched off against circuits wrongly switched off, one row per threshold τ.

    Group c's circuits are switched off at a position when its log-odds ℓ_c < τ; otherwise
    they stay on (abstaining: a group the summary is unsure about keeps its circuits).
    wrongly_off: fraction of positions whose own group is switched off (a needed circuit
    lost); switched_off: fraction of the other C − 1 groups switched off (circuits saved);
    on: groups left on per position (the z the superposed network must carry)."""
    y = torch.as_tensor(y, dtype=torch.long)
    C = logits.shape[1]
    own = logits.gather(1, y[:, None])[:, 0]
    other = logits.masked_fill(torch.nn.functional.one_hot(y, C).bool(), float("inf"))
    rows = []
    for tau in taus:
        off = other < tau
        rows.append(
            {
                "tau": float(tau),
                "wrongly_off": float((own < tau).double().mean()),
                "switched_off": float(off.double().sum(1).mean() / (C - 1)),
                "on": float(C - off.double().sum(1).mean() - (own < tau).double().mean()),
            }
        )
    return pd.DataFrame(rows)


@checked
def budget_threshold(logits: torch.Tensor, y, budget: float) -> float:
    """The largest τ whose wrongly-off rate on these positions is at most `budget`: the
    ⌊budget·n⌋-th smallest log-odds of the positions' own groups (counting from 0): no more
    than ⌊budget·n⌋ of them lie strictly below it."""
    if not (0 < budget < 1):
        raise ValueError(f"budget={budget} must lie in (0, 1)")
    own = logits.gather(1, torch.as_tensor(y, dtype=torch.long)[:, None])[:, 0].sort().values
    k = int(budget * len(own))
    return float(own[k]) if k < len(own) else float("inf")
