"""The T(d/D)² regime: where the RiS error theory holds, where it fails, how it scales.

RiS §6 predicts the active rotating vector's error E|δx|² ≈ (l−1)·T·ε²·(z + 8(z−1)) +
9·l·ε·(z−1) with ε = d/D − 1/(ST): the propagation term makes x = T(d/D)² the control
parameter. RiS Figures 8–11 compare it with measurements on 41 (D, T) pairs; the seed
discussion reads them as "the framework works for T(d/D)² < 0.004". This module holds
the measurements (one network per configuration and seed, tidy rows for `sweep`), the
analysis (ratio measured/theory, the boundary where it passes a level with a bootstrap
confidence interval, worst-case errors, seizure onset) and the plots.

Tidy rows (`regime_rows`): one per layer and quantity, with `measured` and `theory`
(NaN where the theory says nothing). Quantities:
  active_x, inactive_x, active_on, inactive_on   the four RiS means (as `rotation_rows`);
  active_x_q50 / _q90 / _q99 / _max             quantiles of |δx|² over active circuits;
  active_x_frac>{thr}                             fraction of active circuits with |δx|² > thr;
  on_frac, explained_frac, outside_frac           mean fraction of the D neurons switched on
                                                  (A > 0), used by the active circuits
                                                  (d·|∪ e_t^l|), and on outside that union;
  on_ratio                                        mean over samples of on / explained;
  seized_frac                                     fraction of samples with more than
                                                  `seizure_factor` (default 2) times as many
                                                  neurons on as the active circuits use (the
                                                  old criterion: it counts a constant spurious
                                                  fraction of a growing block as a seizure; the
                                                  chapter uses `seizure_table` instead);
  phantoms                                        mean number of inactive circuits whose
                                                  α̂ > 0.25 (their step switches on).

At scale (`large_rows`, `fixed_x_sweep`): the four means and the spurious-on fraction with
RiS's theory, RiS + the neuron-level term (`spurious.spurious_theory`) and the seizure
floor, and the seizure onset against the floor (`analysis.seizure_table`). The working
boundary per D is the book's capacity on criterion (b) (`correction.scheme_capacity`,
summarised by `analysis.boundary_capacity`).
"""

from __future__ import annotations

import pandas as pd
import torch

from ..core.assignment import max_circuits
from ..core.checks import check_int, checked
from ..core.experiment import rotation_run, seeded_experiment, variant_experiment
from ..core.theory import (  # ris_pairs: the one home of the 41 RiS pairs
    rotation_theory,
)
from ..sweep import sweep
from .spurious import spurious_theory

__all__ = [
    "large_d_grid",
    "regime_rows",
    "inactive_on_layer1",
    "MEANS",
    "LARGE_QUANTITIES",
    "large_rows",
    "fixed_x_sweep",
]

#: RiS's four mean errors (labels in `superpose_lib.plots.LABELS["quantity"]`).
MEANS = ("active_x", "inactive_x", "active_on", "inactive_on")
QUANTILES = {"q50": 0.5, "q90": 0.9, "q99": 0.99, "max": 1.0}


@checked
def large_d_grid(Ds, xs, *, d: int = 4, S: int = 6) -> list[tuple[int, int]]:
    """(D, T) with T = round(x·(D/d)²) for each D and each x = T(d/D)²; raises ValueError
    when a T exceeds the embedding's capacity max_circuits(D/d, S)."""
    out = []
    for D in Ds:
        D = check_int("D", D, d)
        for x in xs:
            if not x > 0:
                raise ValueError(f"x = T(d/D)^2 must be > 0, got {x!r}")
            T = max(1, round(x * (D / d) ** 2))
            cap = max_circuits(D // d, S)
            if T > cap:
                raise ValueError(
                    f"T(d/D)^2={x} at D={D} needs T={T} > max_circuits={cap}: allowed x <= {cap * (d / D) ** 2:.4g}"
                )
            out.append((D, T))
    return out


@checked
def regime_rows(
    D,
    T,
    *,
    S=6,
    L=4,
    z=1,
    batch=500,
    seed=0,
    device="cpu",
    d=4,
    thresholds=(0.01, 0.1, 1.0),
    seizure_factor: float = 2.0,
) -> list[dict]:
    """Tidy rows (module docstring) for one fresh network: the RiS means with their theory,
    the tail of the active errors and the switched-on neuron counts, per layer 1..L.

    Same draws as `rotation_errors(D, T, ..., seed=seed)`: the means are identical.
    """
    run = rotation_run(
        *seeded_experiment(D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device, d=d), per_sample=True
    )
    mse, theory, ps = run.mse(), rotation_theory(D, T, S=S, L=L, z=z, d=d), run.per_sample
    nan = float("nan")
    rows = []
    for l in range(1, L + 1):
        rows += [{"layer": l, "quantity": q, "measured": mse[q][l], "theory": theory[q][l]} for q in MEANS]
        e = ps["err_x"][:, :, l].reshape(-1)
        for name, q in QUANTILES.items():
            rows.append(
                {"layer": l, "quantity": f"active_x_{name}", "measured": float(torch.quantile(e, q)), "theory": nan}
            )
        for thr in thresholds:
            rows.append(
                {
                    "layer": l,
                    "quantity": f"active_x_frac>{thr:g}",
                    "measured": float((e > thr).double().mean()),
                    "theory": nan,
                }
            )
        on, expl = ps["on"][:, l], ps["explained"][:, l]
        rows += [
            {"layer": l, "quantity": "on_frac", "measured": float(on.mean()) / D, "theory": nan},
            {"layer": l, "quantity": "explained_frac", "measured": float(expl.mean()) / D, "theory": nan},
            {"layer": l, "quantity": "outside_frac", "measured": float(ps["outside"][:, l].mean()) / D, "theory": nan},
            {"layer": l, "quantity": "on_ratio", "measured": float((on / expl).mean()), "theory": nan},
            {
                "layer": l,
                "quantity": "seized_frac",
                "measured": float((on > seizure_factor * expl).double().mean()),
                "theory": nan,
            },
            {"layer": l, "quantity": "phantoms", "measured": float(ps["phantoms"][:, l].mean()), "theory": nan},
        ]
    return rows


@checked
def inactive_on_layer1(D: int, T: int, *, S: int = 6, z: int = 1, d: int = 4) -> float:
    """E α̂² of an inactive circuit at layer 1 to second order in ε.

    At layer 1 (no propagation) an inactive circuit's on-indicator reads 1/S for each of
    its k neurons shared with an active circuit (α block: (1.5 − 0.5)/S). Circuits share
    at most one neuron, so P(share) = S²ε and k ~ Binomial(z, S²ε):
    E α̂² = E k²/S² = (z·S²ε·(1 − S²ε) + (z·S²ε)²)/S² = z·ε·(1 + (z − 1)·S²·ε).
    RiS's z·ε is the first-order term; the correction is pairs of active circuits that
    overlap the same inactive one.
    """
    eps = d / D - 1.0 / (S * T)
    p = S * S * eps
    return z * eps * (1 + (z - 1) * p)


# ---- at scale: fixed-x sweeps, the neuron-level theory beside them (section "At scale") ----

LARGE_QUANTITIES = MEANS + ("spurious_on",)


@checked
def large_rows(
    D, T, *, S=6, L=4, z=1, batch=200, seed=0, device="cpu", d=4, variant="baseline", theta_lo: float = 0.4
) -> list[dict]:
    """Tidy rows for one network at scale: per layer 1..L and quantity (the four RiS means
    and spurious_on), `measured`, `theory` (RiS §6; for spurious_on the neuron-level
    prediction `spurious_on_theory`), `theory_total` (RiS + the spurious neurons' terms,
    `spurious.spurious_theory`) and `floor` (the seizure floor: the layer-2 spurious
    prediction). variant: "baseline", "oracle" or "sharp" (E1, dead zone from theta_lo),
    `experiment.variant_experiment`: same draws for every variant. Only the batch means
    are measured (no per-sample tensors: the large networks need nothing else)."""

    net, active, x0, oracle = variant_experiment(
        D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device, d=d, variant=variant, theta_lo=theta_lo
    )
    mse = rotation_run(net, active, x0, oracle=oracle).mse()
    th = spurious_theory(D, T, S=S, L=L, z=z, d=d)
    theory = dict(th["ris"], spurious_on=th["spurious_on"])
    total = dict(th["total"], spurious_on=th["spurious_on"])
    floor = th["spurious_on"][2] if L >= 2 else 0.0
    return [
        {
            "layer": l,
            "quantity": q,
            "measured": mse[q][l],
            "theory": theory[q][l],
            "theory_total": total[q][l],
            "floor": floor,
        }
        for l in range(1, L + 1)
        for q in LARGE_QUANTITIES
    ]


@checked
def fixed_x_sweep(
    Ds,
    xs,
    zs,
    seeds,
    *,
    S=6,
    L=4,
    batch=200,
    stop_ratio: float | None = 2.0,
    d=4,
    device="cpu",
    variant="baseline",
    **sweep_kw,
) -> pd.DataFrame:
    """`sweep(large_rows, ...)` over D × x × z × seeds, x = T(d/D)² in ascending order, with
    one monotone skip rule: once, for a (D, z), the median over seeds of measured/RiS of
    the active error at the last layer L exceeds `stop_ratio` (the boundary level: the
    boundary is then bracketed by this x and the one before), the larger x are not run
    for that (D, z) (None: run every x). The rule assumes the ratio grows with x past the
    boundary (the chapter checks it where the full x range was run). Same batch size at
    every D. `df.attrs["skipped"]` lists the (D, z, x) not run; `df.attrs["sweep"]` sums
    the sweeps' task counts."""

    check_int("batch", batch, 1)
    if stop_ratio is not None and not stop_ratio > 0:
        raise ValueError(f"stop_ratio={stop_ratio!r} is out of range: allowed stop_ratio > 0 (or None)")
    xs = sorted(float(x) for x in xs)
    live = {(int(D), int(z)) for D in Ds for z in zs}
    frames, skipped, stats = [], [], {"tasks": 0, "computed": 0, "cached": 0}
    for x in xs:
        grid = []
        for D, T in large_d_grid(sorted({D for D, _ in live}), [x], d=d, S=S):
            grid += [
                dict(D=D, T=T, z=z, S=S, L=L, batch=batch, device=device, variant=variant)
                for z in zs
                if (D, z) in live and z < T
            ]
        skipped += [(D, z, x) for D in Ds for z in zs if (D, z) not in live]
        if not grid:
            continue
        df = sweep(large_rows, grid, seeds, desc=f"{variant} x={x:g}", **sweep_kw)
        for k in stats:
            stats[k] += df.attrs["sweep"][k]
        df["x"] = x
        frames.append(df)
        if stop_ratio is not None:
            last = df[(df["quantity"] == "active_x") & (df["layer"] == L) & (df["theory"] > 0)]
            med = (last["measured"] / last["theory"]).groupby([last["D"], last["z"]]).median()
            live -= {(int(D), int(z)) for (D, z), r in med.items() if r > stop_ratio}
    out = pd.concat(frames, ignore_index=True)
    out["superposition"] = out["x"] * out["D"] / d
    out.attrs["sweep"], out.attrs["skipped"] = stats, skipped
    return out
