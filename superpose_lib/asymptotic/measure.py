"""Chapter "Does it work asymptotically?": the scaling construction against the other
schemes across D, the mechanism test, and the summaries the chapter states.

* `design_table`: the rule's choice (S_α, θ) and predicted boundary x* at every D, and the
  predicted boundary of every fixed S_α (`correction.scaling`).
* `mechanism_rows`: one network of the scaling layout (share 1/2, affine, dead zone θ)
  with redundancy S_α at the load x = c/S_α², measured beside the recursion's prediction
  (`regime.spurious.indicator_theory`): with x ∝ 1/S_α² the layer-2 spurious fraction
  and the false-on rate should fall geometrically in S_α.
* `layout_rows`: at one load, the payload's q90 |δx| of the scaling construction, of its
  own oracle (same network, unused neurons off) and of RiS's oracle: what the untied
  layout costs the payload, apart from what the indicators add.
* `capacity_summary`: per scheme and D, the t-interval over seeds of the per-seed
  capacities (`correction.scale.scheme_capacity`), censoring carried along.
* `slopes`: d ln x*/d ln D per scheme, fitted per seed (seed k at every D is one
  replicate of the curve), with the t-interval over seeds; censored capacities are kept
  out of the fit.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..core.assignment import capacity
from ..core.checks import checked
from ..correction.schemes import make_scheme, scheme_run
from ..correction.wide_rule import S_ALPHA_MAX, indicator_boundary, wide_rule_design
from ..regime.spurious import indicator_theory
from ..stats import t_interval

__all__ = ["design_table", "mechanism_rows", "layout_rows", "capacity_summary", "slopes", "boundary_fraction"]


@checked
def design_table(D_list, *, z: int, L: int, fixed_S=(4, 8, 12), theta: float = 0.65) -> pd.DataFrame:
    """Per D: the rule's S_α, θ and predicted boundary x* ("rule"), and the predicted
    boundary of the layout with a fixed S_α at dead zone θ (one row per (D, S_α); NaN where
    the affine plane of that S_α does not fit the block). Columns D, M, lnM, kind
    ("rule" / "fixed"), S_alpha, theta, x_star, capped."""
    rows = []
    for D in D_list:
        d = wide_rule_design(D, z=z, L=L)
        rows.append({"D": D, "M": d.M, "lnM": math.log(d.M), "kind": "rule", "S_alpha": d.S_alpha,
                     "theta": d.theta, "x_star": d.x_star, "capped": d.capped})
        for S in fixed_S:
            try:
                cap = min(capacity(d.M, S, "affine"), capacity(d.M, 6, "affine")) / d.M**2
                x = indicator_boundary(d.M, S, z, L, theta, 1e-3, cap)
            except ValueError:
                x = float("nan")
            rows.append({"D": D, "M": d.M, "lnM": math.log(d.M), "kind": "fixed", "S_alpha": S, "theta": theta,
                         "x_star": x, "capped": False})
    return pd.DataFrame(rows)


@checked
def mechanism_rows(S_alpha: int, D: int, z: int, L: int, seed: int, *, c: float, theta: float = 0.65,
                   batch: int = 128, device: str = "cpu") -> list[dict]:
    """The scaling layout with redundancy S_alpha at x = c/S_alpha² (one row, for `sweep`):
    measured spurious-on fraction at layers 2 and L, false-on and false-off rates at L,
    beside the recursion's predictions of the same quantities."""
    if not S_alpha <= S_ALPHA_MAX:
        raise ValueError(f"S_alpha={S_alpha!r} is out of range: allowed S_alpha <= {S_ALPHA_MAX}")
    scheme = make_scheme("wide", D, share=0.5, S_alpha=S_alpha, theta=theta, design="affine")
    M = scheme.groups[0].M
    x = c / S_alpha**2
    T = int(round(x * M * M))
    r = scheme_run(scheme, T, z=z, L=L, batch=batch, seed=seed, device=device, layers=(2, L))
    th = indicator_theory(M, T, S=S_alpha, z=z, L=L, theta=theta)
    return [{"x": x, "T": T, "M": M, "spurious2": r["spurious_on"][2], "spuriousL": r["spurious_on"][L],
             "false_on": r["false_on"][L], "false_off": r["false_off"][L],
             "spurious2_theory": th["spurious_on"][2], "spuriousL_theory": th["spurious_on"][L],
             "false_on_theory": th["false_on"][L], "n_inactive": batch * (T - z)}]


@checked
def layout_rows(D: int, z: int, L: int, seed: int, *, x: float, batch: int = 128, device: str = "cpu") -> list[dict]:
    """At the load x = T(d/D)² (one row, for `sweep`): the layer-L payload q90 |δx| of the
    scaling construction (`q90`), of the same network with every unused neuron switched
    off (`q90_own_oracle`, criterion (b)'s reference) and of RiS's oracle with the same
    affine assignment at the same T and seed (`q90_ris_oracle`); `layout` =
    own oracle / RiS oracle (what reading α from other neurons than the payload's costs),
    `indicators` = q90 / own oracle (what the indicators add: criterion (b) asks ≤ 1.5)."""
    scheme = make_scheme("wide_rule", D, z=z, L=L)
    M = D // 4
    T = max(z + 1, int(round(x * M * M)))
    r = scheme_run(scheme, T, z=z, L=L, batch=batch, seed=seed, device=device, layers=(L,), with_oracle=True)
    ris = scheme_run(make_scheme("oracle", D, design="affine"), T, z=z, L=L, batch=batch, seed=seed, device=device,
                     layers=(L,))
    q, own, ref = r["q90_dx"][L], r["oracle"]["q90_dx"][L], ris["q90_dx"][L]
    return [{"x": x, "T": T, "q90": q, "q90_own_oracle": own, "q90_ris_oracle": ref, "layout": own / ref,
             "indicators": q / own, "false_on": r["false_on"][L]}]


def capacity_summary(cap: pd.DataFrame) -> pd.DataFrame:
    """Per (name, D): mean x_max over seeds and its 95 % t-interval (`stats.t_interval`),
    widened to at least the search's resolution on each side (seeds whose searches pass
    and fail at the same probes return the same x_max: their spread is then below what
    the search resolves, not zero), n seeds, censor ("" all measured, "above"/"below" all censored that way, "some-above"/
    "some-below" mixed), the resolution of the search, and the most frequent failure."""
    rows = []
    for (name, D), g in cap.groupby(["name", "D"], sort=False):
        m, lo, hi = t_interval(g["x_max"])
        res = float(g["resolution"].max())
        lo, hi = min(lo, m / (1 + res)), max(hi, m * (1 + res))
        cens = set(g["censor"])
        censor = "" if cens == {""} else (cens.pop() if len(cens) == 1 else
                                          ("some-above" if "above" in cens else "some-below"))
        why = g["why"].map(lambda w: w.split(" ")[0] if w else "").mode()
        rows.append({"name": name, "D": int(D), "mean": m, "low": lo, "high": hi, "n": len(g), "censor": censor,
                     "resolution": res, "why": why.iloc[0] if len(why) else ""})
    return pd.DataFrame(rows)


def slopes(cap: pd.DataFrame) -> pd.DataFrame:
    """d ln x_max / d ln D per scheme: a least-squares slope per seed over the D at which
    that seed's capacity is measured (uncensored; at least 3 D), then the mean and 95 %
    t-interval over seeds. Columns name, slope, low, high, n (seeds), D_min, D_max."""
    rows = []
    for name, g in cap.groupby("name", sort=False):
        per_seed = []
        for _, h in g[g["censor"] == ""].groupby("seed"):
            if h["D"].nunique() >= 3:
                per_seed.append(float(np.polyfit(np.log(h["D"]), np.log(h["x_max"]), 1)[0]))
        if not per_seed:
            continue
        m, lo, hi = t_interval(per_seed)
        ok = g[g["censor"] == ""]
        rows.append({"name": name, "slope": m, "low": lo, "high": hi, "n": len(per_seed),
                     "D_min": int(ok["D"].min()), "D_max": int(ok["D"].max())})
    return pd.DataFrame(rows)


def boundary_fraction(summary: pd.DataFrame, name: str, ref: str) -> pd.DataFrame:
    """Per D where both are measured: the mean capacity of `name` over that of `ref`."""
    a = summary[summary["name"] == name].set_index("D")["mean"]
    b = summary[summary["name"] == ref].set_index("D")["mean"]
    both = a.index.intersection(b.index)
    return pd.DataFrame({"D": both, "ratio": (a[both] / b[both]).to_numpy()})
