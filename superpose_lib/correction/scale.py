"""Error correction of on-indicators at scale: design rule, capacity search, summaries.

Chapter "Error correction of on-indicators". The pieces the chapter would otherwise
write inline:

* `indicator_redundancy`: the neuron-level design rule for an indicator group of M_α
  neurons per block with redundancy S_α and dead zone θ. At layer 2 an unused indicator
  neuron n collects 1/S_α (times the step's gain) from every neuron m of an active
  circuit that some circuit connects to n. The number k of such m is ≈ Poisson with mean
  λ_n = z·S_α³·x_α, x_α = T/M_α² (each of the ≈ T·S_α/M_α circuits through n uses S_α
  neurons at the previous layer, each one an active neuron with probability z·S_α/M_α),
  and n turns on when k/S_α > θ. The layer-2 spurious fraction
  p = P(Poisson(λ_n) > θ·S_α) does not depend on M_α at fixed x_α. From layer 3 on every
  neuron sums over ≈ S_α²·x_α·M_α connected neurons, each weighted 1/S_α, so the spurious
  ones among them feed it a mean input ≈ p·S_α·x_α·M_α (in units of one neuron's output),
  which grows with M_α. Keeping it below a budget b·θ needs p to fall like 1/M_α, i.e. a
  threshold θ·S_α growing like log M_α; but λ_n grows like S_α³ while the threshold grows
  like S_α, so the tail falls with S_α only while e·z·S_α²·x_α/θ < 1. Circuit level: an
  inactive circuit shares ≈ Poisson(z·S_α²/M_α) neurons with the active set, at most one
  with each active circuit (prime-step), so its layer-1 readout is at most z/S_α.
* A fair tuning budget: `family_settings` (a knob grid of the same size for every scheme
  family), `tuning_rows` (one probe per setting), `best_settings` (the best per family
  and D), and the `sweep` grids built from them (`tuning_grid`, `capacity_grid`,
  `fixed_x_grid`).
* `capacity_rows`: the capacity of one scheme at one (D, z, seed) by bisection over a
  geometric grid of the control parameter x = T(d/D)² (pass/fail at depth L is assumed
  monotone in T), for both criteria from one set of probes, with censoring.
* Summaries: t-intervals over seeds (`t_interval`), censored formatting
  (`format_capacity`), best setting per family and D (`best_settings`), gains over the
  baseline and fractions of the oracle as functions of D (`capacity_vs_D`), the width
  from which spending it on indicators pays (`crossover_D`), and plots with one colour
  and marker per scheme family (`SCHEME_STYLE`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..capacity import RESOLUTION, bisect_capacity
from ..core.checks import check_int, checked
from ..core.criteria import CRITERIA, Q90_DX_MAX, RATE_MAX, STAT_KEYS, certain_failure, failures
from ..core.theory import T_at, control_parameter
from ..plots import LABELS
from ..report import format_bound, format_capacity
from ..stats import poisson_sf, t975, t_interval
from .scaling import max_load, scaling_boundary
from .schemes import make_scheme, scheme_rows, scheme_run
from .wide_rule import indicator_boundary, wide_rule_design

__all__ = [
    "scheme_capacity",
    "theory_start",
    "CAPACITY_CRITERIA",
    "indicator_redundancy",
    "capacity_rows",
    "named_capacity_rows",
    "tuning_grid",
    "named_scheme_rows",
    "fixed_x_grid",
    "crossover_D",
    "capacity_grid",
    "FAMILIES",
    "WIDTH_FREE",
    "family_settings",
    "tuning_rows",
    "redundancy_rows",
    "best_settings",
    "capacity_summary",
    "headline",
    "scaling_exponents",
    "capacity_vs_D",
]

#: Families that spend no width on indicators (the others carve extra or wider indicator blocks out of D).
WIDTH_FREE = ("baseline", "E1", "E3")


@checked
def indicator_redundancy(M_alpha: int, x_alpha: float, z: int, theta: float, *, budget: float = 0.25,
                         S_max: int = 40) -> dict:
    """The smallest indicator redundancy S_α ∈ [S_min, S_max] that keeps both the
    circuit-level quantum and the neuron-level pile-up below the dead zone θ (module
    docstring), for z active circuits, x_α = T/M_α²:

        circuit: z/S < θ   (an inactive circuit shares at most one neuron with each active
                 circuit under the prime-step assignment, so its layer-1 readout is k/S
                 with k ≤ z: the largest quantum must stay below θ),
        neuron:  pile = P(Poisson(z·S³·x_α) > θS) · S·x_α·M_α ≤ budget·θ.

    The neuron-level condition is the binding one at large M_α: its tail falls with S only
    while e·z·S²·x_α/θ < 1, so at fixed x_α it is met up to some M_α and then by no S. Returns a dict: S (the
    chosen S_α; where no S qualifies, the one with the smallest pile-up), feasible, p (the
    predicted layer-2 spurious fraction), pile, circuit (the predicted fraction of inactive
    circuits whose layer-1 readout passes θ).
    """
    M_alpha = check_int("M_alpha", M_alpha, 2)
    z = check_int("z", z, 1)
    if not 0.0 < float(theta) < 1.0:
        raise ValueError(f"theta={theta} is out of range: allowed 0 < theta < 1")
    if not (math.isfinite(x_alpha) and x_alpha > 0):
        raise ValueError(f"x_alpha={x_alpha} is out of range: allowed x_alpha > 0")
    if not budget > 0:
        raise ValueError(f"budget={budget} is out of range: allowed budget > 0")
    S_min = int(math.floor(z / theta)) + 1  # smallest S with z/S < θ
    S_max = check_int("S_max", S_max, 1)
    best = None
    for S in range(S_min, min(S_max, M_alpha) + 1):
        p = poisson_sf(z * S**3 * x_alpha, theta * S)
        pile = p * S * x_alpha * M_alpha
        circ = poisson_sf(z * S * S / M_alpha, theta * S)
        cand = {"S": S, "feasible": pile <= budget * theta, "p": p, "pile": pile, "circuit": circ}
        if cand["feasible"]:
            return cand
        if best is None or pile < best["pile"]:
            best = cand
    if best is None:
        raise ValueError(f"S_max={S_max} (or M_alpha={M_alpha}) is below the smallest S with z/S < theta ({S_min})")
    return best


# ---- capacity by bisection -----------------------------------------------------------------
def _passes(res: dict, L: int, criterion: str, eps: float, on_rate: float) -> bool:
    if criterion == "accuracy":
        return res["worst_dx"][L] <= eps
    return res["false_on"][L] <= on_rate and res["false_off"][L] <= on_rate


@checked
def capacity_rows(kind: str, D: int, z: int, L: int, seed: int, *, x_grid, batch: int = 32, eps: float = 1.0,
                  on_rate: float = 1e-3, criteria=("accuracy", "indicator"), device: str = "cpu", **knobs) -> list[dict]:
    """T_max of `make_scheme(kind, D, **knobs)` at depth L with z active circuits: the
    largest T = round(x·(D/4)²), x in the increasing grid `x_grid`, that passes, found by
    a galloping search from the grid's bottom and bisection (pass/fail assumed monotone
    in T; one fresh network per probe, seeded by `seed`, shared by both criteria).

    criterion "accuracy": the worst active |δx| over the batch ≤ eps at layer L;
    "indicator": the fractions of inactive circuits reading α̂ > 1/2 and of active ones
    reading α̂ < 1/2 both ≤ on_rate at layer L. One row per criterion: T_max, x_max
    (T_max·(d/D)², 0 when censored below), censor ("" measured; "below": even the smallest
    grid point fails; "above": the largest passes; "capped": the largest constructible T
    passes and the scheme's assignment holds no more), probes (networks run), params (one
    layer's weights and biases), spurious (the layer-L spurious-on fraction at the last
    passing probe, NaN if none), label.
    """

    xs = [float(x) for x in x_grid]
    if not xs or any(b <= a for a, b in zip(xs, xs[1:])) or xs[0] <= 0:
        raise ValueError(f"x_grid={x_grid!r} must be a non-empty increasing list of positive values")
    scheme = make_scheme(kind, D, **knobs)
    Ts = [int(round(x * (D / 4) ** 2)) for x in xs]
    ok_T = [z < T <= scheme.max_T for T in Ts]
    cache: dict[int, dict] = {}

    def run(i):
        if i not in cache:
            cache[i] = scheme_run(scheme, Ts[i], z=z, L=L, batch=batch, seed=seed, device=device, layers=(L,))
        return cache[i]

    rows = []
    for crit in criteria:
        if crit not in ("accuracy", "indicator"):
            raise ValueError(f"criterion={crit!r} must be 'accuracy' or 'indicator'")

        def passes(i):
            if not ok_T[i]:
                return Ts[i] <= z  # T ≤ z is trivial (counts as passing); above max_T is not constructible
            return _passes(run(i), L, crit, eps, on_rate)

        # Galloping search from the bottom of the grid (indices 0, 2, 6, 14, …), then
        # bisection in the last bracket: a probe costs ∝ T, so the cost is ≈ a few times
        # that of the largest passing probe, and at large D capacities sit near the grid's
        # bottom. lo: largest index known to pass; hi: smallest known to fail.
        lo, hi, step = -1, len(xs), 1
        while lo + step < hi:  # hi ≤ len(xs), so every probe is on the grid
            if passes(lo + step):
                lo, step = lo + step, 2 * step
            else:
                hi = lo + step
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if passes(mid):
                lo = mid
            else:
                hi = mid
        censor = ""
        if lo < 0:
            censor = "below"
        elif lo == len(xs) - 1:
            censor = "above"
        elif not ok_T[lo + 1] and Ts[lo + 1] > scheme.max_T:
            censor = "capped"
        T_max = Ts[lo] if lo >= 0 else 0
        rows.append({
            "criterion": crit, "T_max": T_max, "x_max": T_max * (4 / D) ** 2, "censor": censor,
            "probes": len(cache), "params": scheme.parameters(2) - scheme.parameters(1), "label": scheme.label,
            "max_T": scheme.max_T, "spurious": cache[lo]["spurious_on"][L] if lo in cache else float("nan"),
        })
    return rows


def named_capacity_rows(name: str, family: str, setting: str, **kw) -> list[dict]:
    """`capacity_rows` for `sweep` grids that carry the scheme's name, family and setting
    (bookkeeping columns, not arguments of the construction)."""
    return capacity_rows(**kw)


@checked
def tuning_grid(families, D_list, *, z: int, L: int, x: float, batch: int, x_design: float = 0.002,
                z_design: int = 2) -> list[dict]:
    """`sweep` configurations for `tuning_rows`: every family's settings at every D."""
    grid = []
    for D in D_list:
        for fam in families:
            for st in family_settings(fam, D, x_design=x_design, z_design=z_design):
                grid.append({"family": fam, **st, "D": int(D), "z": int(z), "L": int(L), "x": float(x),
                             "batch": int(batch)})
    return grid


@checked
def capacity_grid(best, families, D_list, z_list, *, L: int, x_grid, batch: int, eps: float, on_rate: float,
                  x_design: float = 0.002, z_design: int = 2, x_top: float | None = None,
                  criteria=("accuracy", "indicator")) -> list[dict]:
    """`sweep` configurations for `named_capacity_rows`: the best setting of each family at
    each D (rows of `best_settings`), every z. name = family. x_top: search only the grid
    points ≤ x_top (a capacity above it is then censored "above" at the last point kept:
    a cheaper lower bound, e.g. for the oracle, whose probes at the top of the grid are
    the most expensive of all)."""
    if x_top is not None:
        x_grid = [x for x in x_grid if x <= x_top]
        if not x_grid:
            raise ValueError(f"x_top={x_top} is below the grid's first point")
    grid = []
    for D in D_list:
        for fam in families:
            st = _pick(best, fam, D, family_settings(fam, D, x_design=x_design, z_design=z_design))
            setting, kind = st.pop("setting"), st.pop("kind")
            for z in z_list:
                grid.append({"name": fam, "family": fam, "setting": setting, "kind": kind, "D": int(D), "z": int(z),
                             "L": int(L), "x_grid": [float(x) for x in x_grid], "batch": int(batch),
                             "eps": float(eps), "on_rate": float(on_rate), "criteria": list(criteria), **st})
    return grid


def _pick(best, fam: str, D: int, settings: list[dict]) -> dict:
    """The tuned setting of `fam` at D; at an untuned D (beyond the tuning grid) the
    setting in the same position of the grid as at the largest tuned D."""
    pick = best[(best["family"] == fam) & (best["D"] == D)]
    names = [s["setting"] for s in settings]
    if len(pick) and pick["setting"].iloc[0] in names:
        return dict(settings[names.index(pick["setting"].iloc[0])])
    fb = best[best["family"] == fam].sort_values("D")
    if not len(fb):
        return dict(settings[0])
    ref = fb.iloc[-1]
    ref_names = [s["setting"] for s in family_settings(fam, int(ref["D"]))]
    return dict(settings[ref_names.index(ref["setting"])])


def named_scheme_rows(name: str, family: str, setting: str, **kw) -> list[dict]:
    """`correction.scheme_rows` (one row per layer) for grids that carry bookkeeping columns."""

    return scheme_rows(**kw)


@checked
def fixed_x_grid(best, families, D_list, *, x: float, z: int, L: int, batch: int) -> list[dict]:
    """`sweep` configurations for `named_scheme_rows`: every family's tuned setting at
    T = x·(D/4)², every D (the control parameter T(d/D)² held fixed as D grows)."""
    grid = []
    for D in D_list:
        T = int(round(x * (D / 4) ** 2))
        for fam in families:
            st = _pick(best, fam, D, family_settings(fam, D))
            setting, kind = st.pop("setting"), st.pop("kind")
            grid.append({"name": fam, "family": fam, "setting": setting, "kind": kind, "D": int(D), "T": T,
                         "z": int(z), "L": int(L), "batch": int(batch), **st})
    return grid


def crossover_D(vs, *, spenders=("E2", "E4", "E5"), free=WIDTH_FREE):
    """The smallest D from which on the best scheme that spends width on indicators
    (extra or wider indicator neurons) has a larger mean capacity than every width-free
    scheme (`WIDTH_FREE`: baseline, E1, E3), at every larger D of the table too; None if there is none.
    vs: rows of `capacity_vs_D` (one criterion, one z). Returns (D or None, the table of
    best spender and best free scheme per D)."""

    rows = []
    for D, g in vs.groupby("D"):
        sp = g[g["name"].isin(spenders)]
        fr = g[g["name"].isin(free)]
        if not len(sp) or not len(fr):
            continue
        a, b = sp.loc[sp["mean"].idxmax()], fr.loc[fr["mean"].idxmax()]
        rows.append({"D": int(D), "spender": a["name"], "spender_x": a["mean"], "free": b["name"],
                     "free_x": b["mean"], "pays": bool(a["mean"] > b["mean"])})
    tab = pd.DataFrame(rows).sort_values("D") if rows else pd.DataFrame(rows)
    cross = None
    for i in range(len(tab)):
        if tab["pays"].iloc[i:].all():
            cross = int(tab["D"].iloc[i])
            break
    return cross, tab


@checked
def headline(summ, *, z: int, x_min: float, spenders=("E2", "E4", "E5"), labels=None) -> dict:
    """The chapter's headline numbers, as text for glue (`capacity_summary` rows; indicator
    criterion unless named "-acc"): capacities of the baseline, E1, the best width-spending
    scheme and the oracle at the smallest and largest D measured at this z; the best
    spender's gain over the baseline and fraction of the oracle at the largest D (both
    criteria); the crossover D on both criteria; where E2/E4 beat both width-free schemes;
    and, per z, whether the best spender beats them at that z's largest D; the best
    spender's gain at every D. Returns {"glue": {key: text}, "best": name, "pays_z": {z:
    bool}, "D_min", "D_max", "gains": {D: (gain, bound)}}."""
    labels = labels or LABELS["scheme"]
    s = summ[summ["z"] == z]
    D_min, D_max = int(s["D"].min()), int(s["D"].max())

    def cell(name, D, crit="indicator"):
        r = s[(s["name"] == name) & (s["D"] == D) & (s["criterion"] == crit)]
        if not len(r):
            return "not measured"
        r = r.iloc[0]
        return format_capacity(r["mean"], r["low"], r["high"], r["censor"], x_min=x_min, n=int(r["n"]))

    def mean(name, D, crit="indicator"):
        r = s[(s["name"] == name) & (s["D"] == D) & (s["criterion"] == crit)]
        return float(r["mean"].iloc[0]) if len(r) else float("nan")

    at_max = [n for n in spenders if ((s["name"] == n) & (s["D"] == D_max)).any()]
    best = max(at_max, key=lambda n: mean(n, D_max))
    out = {"Dmin": str(D_min), "Dmax": str(D_max), "bestsp": labels.get(best, best)}
    for key, nm in (("baseline", "baseline"), ("E1", "E1"), ("best", best), ("oracle", "oracle")):
        out[f"capmin-{key}"] = cell(nm, D_min)
        out[f"capmax-{key}"] = cell(nm, D_max)
        out[f"capmax-acc-{key}"] = cell(nm, D_max, "accuracy")
    vs = capacity_vs_D(summ, criterion="indicator", z=z)
    vs_acc = capacity_vs_D(summ, criterion="accuracy", z=z)
    row = lambda v, nm: v[(v["name"] == nm) & (v["D"] == D_max)].iloc[0]
    r, r1, ra = row(vs, best), row(vs, "E1"), row(vs_acc, best)
    out["gain-max"] = format_bound(r["gain_bound"], r["gain"], 1)
    out["gain-e1-max"] = format_bound(r1["gain_bound"], r1["gain"], 1)
    out["frac-max"] = format_bound(r["fraction_bound"], r["fraction"])
    out["frac-e1-max"] = format_bound(r1["fraction_bound"], r1["fraction"])
    out["gain-acc-max"] = format_bound(ra["gain_bound"], ra["gain"])
    out["frac-acc-max"] = format_bound(ra["fraction_bound"], ra["fraction"])
    gb = vs[vs["name"] == best].sort_values("D")
    gains = {int(r["D"]): (float(r["gain"]), r["gain_bound"]) for _, r in gb.iterrows()}
    out["gain-by-D"] = ", ".join(f"{D}: {format_bound(b, g, 1)}" for D, (g, b) in gains.items())
    cross, _ = crossover_D(vs, spenders=spenders)
    cross_acc, _ = crossover_D(vs_acc, spenders=spenders)
    out["cross"] = f"D = {cross}" if cross is not None else f"no D up to {D_max}"
    out["cross-acc"] = f"D = {cross_acc}" if cross_acc is not None else f"no D up to {D_max}"
    out["cross-sentence"] = (
        f"from D = {cross} on, the best scheme that spends width on indicators ({labels.get(best, best)}) holds "
        f"more circuits than the baseline and the sharp step" if cross is not None else
        f"at no D up to {D_max} does a scheme that spends width on indicators beat the width-free ones")
    wins = []
    ind = summ[summ["criterion"] == "indicator"]
    for (D, zz), g in ind.groupby(["D", "z"]):
        m = g.set_index("name")["mean"]
        for nm in ("E2", "E4"):
            if nm in m and m[nm] > max(m.get(f, 0) for f in WIDTH_FREE):
                wins.append(f"{nm} at D = {D}, z = {zz}")
    out["e2e4"] = "at no D and z measured" if not wins else "only " + "; ".join(wins)
    pays_z = {}
    for zz in sorted(summ["z"].unique()):
        v = capacity_vs_D(summ, criterion="indicator", z=int(zz))
        _, tab = crossover_D(v, spenders=spenders)
        if len(tab):
            pays_z[int(zz)] = (int(tab["D"].max()), bool(tab.iloc[-1]["pays"]))
    out["pays-z"] = ", ".join(f"z = {zz} (D = {D_}): {'yes' if p else 'no'}" for zz, (D_, p) in pays_z.items())
    return {"glue": out, "best": best, "pays_z": {zz: p for zz, (_, p) in pays_z.items()}, "D_min": D_min,
            "D_max": D_max, "gains": gains}


@checked
def scaling_exponents(cap, *, criterion: str, z: int, names=None):
    """How capacity scales with width: per scheme, the least-squares slope of
    log x_max against log D over every seed's measured (uncensored) capacity, with its 95%
    t-interval (ν = n − 2). A width at which some seed's capacity is censored is left out
    (a bound is not a measurement) and listed in `left_out`. Returns name, slope, low,
    high, n (points), D_min, D_max, left_out; slope NaN where fewer than two widths remain.

    Theory for the baseline: `spurious.boundary_theory` falls like D^-1/2 (the neuron-level
    pile-up, √M spurious inputs against a fixed threshold); a scheme that holds a fixed
    T(d/D)² has slope 0."""

    c = cap[(cap["criterion"] == criterion) & (cap["z"] == z)]
    rows = []
    for name, g in c.groupby("name", sort=False):
        if names is not None and name not in names:
            continue
        bad = sorted(int(D) for D, h in g.groupby("D") if (h["censor"] != "").any())
        ok = g[~g["D"].isin(bad)]
        slope = low = high = float("nan")
        if ok["D"].nunique() >= 2:
            x, y = np.log(ok["D"].to_numpy(float)), np.log(ok["x_max"].to_numpy(float))
            n = x.size
            xm = x - x.mean()
            slope = float((xm * (y - y.mean())).sum() / (xm**2).sum())
            if n > 2:
                resid = y - y.mean() - slope * xm
                se = math.sqrt(float((resid**2).sum()) / (n - 2) / float((xm**2).sum()))
                t = t975(n - 2)
                low, high = slope - t * se, slope + t * se
            else:
                low = high = slope
        rows.append({"name": name, "slope": slope, "low": low, "high": high, "n": int(len(ok)),
                     "D_min": int(ok["D"].min()) if len(ok) else 0, "D_max": int(ok["D"].max()) if len(ok) else 0,
                     "left_out": bad})
    return pd.DataFrame(rows)


def capacity_summary(cap, by=("name", "D", "z", "criterion")):
    """Per group of seeds: n, mean x_max with its t-interval, and the censoring: "below"
    when every seed fails the grid's first point, "above"/"capped" when every seed passes
    its last; "some-above" when some do (the mean is then a lower bound), "some-below"
    (an upper bound). Columns: mean, low, high, n, censor, T_mean, params, label."""

    rows = []
    for key, g in cap.groupby(list(by), sort=False):
        m, lo, hi = t_interval(g["x_max"])
        c = set(g["censor"])
        if c == {"below"}:
            censor = "below"
        elif c <= {"above", "capped"} and c:
            censor = "capped" if "capped" in c else "above"
        elif c & {"above", "capped"}:
            censor = "some-above"
        elif "below" in c:
            censor = "some-below"
        else:
            censor = ""
        rows.append({**dict(zip(by, key)), "mean": m, "low": lo, "high": hi, "n": len(g), "censor": censor,
                     "T_mean": float(g["T_max"].mean()), "params": int(g["params"].iloc[0]),
                     "label": g["label"].iloc[0]})
    return pd.DataFrame(rows)


FAMILIES = ("baseline", "E1", "E2", "E3", "E4", "E5", "oracle")


@checked
def family_settings(family: str, D: int, *, x_design: float = 0.002, z_design: int = 2) -> list[dict]:
    """The tuning grid of one scheme family at width D: the same number of settings (3) for
    every family with knobs (E1–E5), one for the baseline and the oracle. Each setting is
    {"setting": short name, "kind": make_scheme kind, **knobs}.

    E1 sharp step θ ∈ {0.35, 0.45, 0.55}; E3 the payload gated neuron by neuron by the
    indicator block (which leads it by one layer), gate strength G ∈ {2, 4, 8}; E2 an extra indicator pair averaged with
    inverse-variance weights, step θ = 0.45, share f ∈ {0.2, 0.3, 0.4}; E4 an active-set
    register (θ = 0.45) re-permuted every layer with f ∈ {0.2, 0.3}, or static (the same
    assignment every layer) with f = 0.3; E5 wide untied indicator blocks, f ∈ {0.55, 0.6,
    0.7} of D (more than RiS's 1/2), θ = 0.55, S_α from `indicator_redundancy` at the
    design point (x_design, z_design) — the payload keeps S = 6.
    """
    D = check_int("D", D, 16)
    if family in ("baseline", "oracle"):
        return [{"setting": family, "kind": family}]
    if family == "E1":
        return [{"setting": f"θ={t:g}", "kind": "sharp", "theta": t} for t in (0.35, 0.45, 0.55)]
    if family == "E3":
        return [{"setting": f"G={g:g}", "kind": "gated", "gate": g} for g in (2.0, 4.0, 8.0)]
    if family == "E2":
        return [{"setting": f"f={f:g}", "kind": "redundant", "share": f, "S_alpha": 6, "theta": 0.45, "ivw": True}
                for f in (0.2, 0.3, 0.4)]
    if family == "E4":
        return [{"setting": f"f={f:g}" + (" static" if st else ""), "kind": "register", "share": f, "S_alpha": 6,
                 "theta": 0.45, "static": st} for f, st in ((0.2, False), (0.3, False), (0.3, True))]
    if family == "E5":
        out = []
        for f in (0.55, 0.6, 0.7):
            M_alpha = int(round(f * D / 2))
            x_alpha = x_design * (D / 4) ** 2 / M_alpha**2
            S_a = indicator_redundancy(M_alpha, x_alpha, z_design, 0.55)["S"]
            out.append({"setting": f"f={f:g} S_α={S_a}", "kind": "wide", "share": f, "S_alpha": S_a, "theta": 0.55})
        return out
    raise ValueError(f"family={family!r} must be one of {FAMILIES}")


@checked
def tuning_rows(family: str, setting: str, kind: str, D: int, z: int, L: int, seed: int, *, x: float,
                batch: int = 32, device: str = "cpu", **knobs) -> list[dict]:
    """One tuning probe: the setting's network at T = x·(D/4)², layer-L worst active |δx|,
    false-on and false-off rates and spurious-on fraction (one row, for `sweep`)."""

    scheme = make_scheme(kind, D, **knobs)
    T = int(round(x * (D / 4) ** 2))
    if T > scheme.max_T:
        return [{"worst_dx": float("inf"), "false_on": 1.0, "false_off": 1.0, "spurious": 1.0, "built": False}]
    r = scheme_run(scheme, T, z=z, L=L, batch=batch, seed=seed, device=device, layers=(L,))
    return [{"worst_dx": r["worst_dx"][L], "false_on": r["false_on"][L], "false_off": r["false_off"][L],
             "spurious": r["spurious_on"][L], "built": True}]


@checked
def redundancy_rows(S_alpha: int, D: int, z: int, L: int, seed: int, *, x: float, share: float = 0.6,
                    theta: float = 0.55, batch: int = 32, device: str = "cpu") -> list[dict]:
    """One E5 network with indicator redundancy S_alpha at T = x·(D/4)²: the measured
    spurious-on fraction at layer 2 and layer L, the false-on rate and worst active |δx| at
    layer L, beside the design rule's layer-2 prediction p = P(Poisson(z·S_α³·x_α) > θ·S_α),
    x_α = T/M_α² (`indicator_redundancy`). One row, for `sweep` over S_alpha and seeds:
    does raising S_α (the log M growth a fixed threshold would need) lower the spurious
    fraction at a given width?"""

    scheme = make_scheme("wide", D, share=share, S_alpha=S_alpha, theta=theta)
    T = int(round(x * (D / 4) ** 2))
    M_a = scheme.groups[0].M
    r = scheme_run(scheme, T, z=z, L=L, batch=batch, seed=seed, device=device, layers=(2, L))
    return [{"spurious2": r["spurious_on"][2], "spuriousL": r["spurious_on"][L], "false_on": r["false_on"][L],
             "worst_dx": r["worst_dx"][L], "p_theory": poisson_sf(z * S_alpha**3 * T / M_a**2, theta * S_alpha),
             "M_alpha": M_a, "T": T}]


@checked
def best_settings(tune, *, eps: float = 1.0, on_rate: float = 1e-3):
    """The tuning step: per (family, D), the setting with the best score at the tuning
    probe (rows of `tuning_rows`, averaged over tuning seeds): first those passing the
    indicator criterion (false-on and false-off ≤ on_rate), then those passing the
    accuracy criterion (worst |δx| ≤ eps), then the smallest false-on rate, then the
    smallest worst |δx|, then the first listed. Returns family, D, setting, and the score
    columns."""

    g = tune.groupby(["family", "D", "setting"], sort=False)[["worst_dx", "false_on", "false_off"]].mean().reset_index()
    g["ind_ok"] = (g["false_on"] <= on_rate) & (g["false_off"] <= on_rate)
    g["acc_ok"] = g["worst_dx"] <= eps
    g["_order"] = range(len(g))
    rows = []
    for (fam, D), h in g.groupby(["family", "D"], sort=False):
        h = h.sort_values(["ind_ok", "acc_ok", "false_on", "worst_dx", "_order"],
                          ascending=[False, False, True, True, True])
        rows.append(h.iloc[0].drop("_order").to_dict())
    return pd.DataFrame(rows)


@checked
def capacity_vs_D(summary, *, criterion: str, z: int, baseline: str = "baseline", oracle: str = "oracle"):
    """Per scheme and D (one criterion, one z): mean capacity x_max, its gain over the
    baseline and its fraction of the oracle's, with the censoring carried along: gain is
    a lower bound ("≥") when the scheme's capacity is censored above or the baseline's
    below the grid, fraction is an upper bound when the oracle's capacity is censored
    above. Returns name, D, mean, gain, gain_bound ('' / '≥' / '≤' / 'n/a'), fraction,
    fraction_bound."""
    s = summary[(summary["criterion"] == criterion) & (summary["z"] == z)]
    base = s[s["name"] == baseline].set_index("D")
    orc = s[s["name"] == oracle].set_index("D")
    rows = []
    for _, r in s.iterrows():
        D = r["D"]
        b, o = base.loc[D] if D in base.index else None, orc.loc[D] if D in orc.index else None
        gain, gb = float("nan"), "n/a"
        if b is not None and b["mean"] > 0 and r["censor"] != "below":
            gain = r["mean"] / b["mean"]
            up = r["censor"] in ("above", "capped", "some-above")
            down = b["censor"] in ("some-below",)
            gb = "≥" if (up or down) else ("≤" if b["censor"] in ("above", "capped", "some-above") else "")
        elif b is not None and b["censor"] == "below" and r["censor"] != "below":
            gb = "≥∞"  # the baseline fails the grid's smallest point, the scheme does not
        frac, fb = float("nan"), "n/a"
        if o is not None and o["mean"] > 0 and r["censor"] != "below":
            frac = r["mean"] / o["mean"]
            fb = "≤" if o["censor"] in ("above", "capped", "some-above") else ""
            if r["censor"] in ("above", "capped", "some-above") and fb == "":
                fb = "≥"
        elif r["censor"] == "below":
            frac, fb = 0.0, "<"
        rows.append({"name": r["name"], "D": int(D), "mean": r["mean"], "low": r["low"], "high": r["high"],
                     "n": int(r["n"]), "censor": r["censor"], "gain": gain, "gain_bound": gb, "fraction": frac, "fraction_bound": fb})

    return pd.DataFrame(rows)




# ---- the book's capacity engine ----------------------------------------------------------
#: The two criteria of `core.criteria`: "works" (a) and "indicators hold" (b, against the oracle).
CAPACITY_CRITERIA = CRITERIA
_RUNS: dict = {}  # layer-L statistics of the probes made in this process, shared by both criteria


def _layer_stats(kind: str, knobs: tuple, D: int, T: int, z: int, L: int, seed: int, batch: int,
                 oracle: bool = False) -> tuple[dict, dict | None]:
    """Layer-L statistics of one probe, and with `oracle` (criterion (b)) those of the same
    network's own oracle (`scheme_run(oracle_only=True)`: the same draw, unused neurons
    off), memoised in this process per criterion. The oracle runs first; the network then
    stops at the first chunk of samples after which its failure is certain
    (`core.criteria.certain_failure`), so a seized probe costs a fraction of a full one. The
    scaling construction is designed for the probe's load (`make_scheme("scaling", ..., x=...)`)."""
    key = (kind, knobs, D, T, z, L, seed, batch, oracle)
    if key not in _RUNS:
        scheme = _scheme_at(kind, dict(knobs), D, T, z, L)
        kw = dict(z=z, L=L, batch=batch, seed=seed, layers=(L,))
        orc = scheme_run(scheme, T, oracle_only=True, **kw) if oracle else None
        q_ref = orc["q90_dx"][L] if oracle else None

        def stop(counts, dx, done):
            return certain_failure(counts["false_on"][L], counts["false_off"][L], torch.cat(dx[L]),
                                   n_inactive=batch * (T - z), n_active=batch * z, oracle_q90=q_ref)

        r = scheme_run(scheme, T, stop=stop, **kw)
        _RUNS[key] = ({k: r[k] for k in STAT_KEYS}, {k: orc[k] for k in STAT_KEYS} if oracle else None)
        if len(_RUNS) > 4096:
            _RUNS.pop(next(iter(_RUNS)))
    return _RUNS[key]


@checked
def theory_start(kind: str, D: int, z: int, L: int, *, criterion: str = "indicators hold", **knobs) -> float:
    """The theory's predicted boundary in T(d/D)², the capacity search's starting load.

    Criterion (b): the false-gate theory for the scaling construction
    (`scaling.scaling_boundary`), the rule's x* for wide_rule, and for the schemes that
    recompute indicators through the mean weight (baseline, E1, E5, E2') the neuron-level
    recursion of their indicator group (`wide_rule.indicator_boundary`: its M, S and dead
    zone); others start at 0.002, the oracle at 0.005 (where RiS's χ shift (z − 1)·S²·x nears
    the step's 1/4). Criterion (a) also caps the start at the payload's own limit: q90 |δx| ≤
    1/4 means E|δx|² ≈ 2·(0.25/2.146)² for a 2-d Gaussian error, against (L − 1)·z·x_M for
    the simplex payload (x_M = T/M²) and RiS's (L − 1)·x·(z + 8(z − 1)) + 9·L·(d/D)·(z − 1)."""
    D = check_int("D", D, 16)
    if criterion not in CAPACITY_CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not allowed: one of {CAPACITY_CRITERIA}")
    if kind == "scaling":
        x = scaling_boundary(D, z=z, L=L)
    elif kind == "wide_rule":
        x = wide_rule_design(D, z=z, L=L).x_star
    elif kind == "oracle":
        x = 0.005
    elif kind in ("baseline", "sharp", "wide", "independent"):
        scheme = make_scheme(kind, D, **knobs)
        group = next(g for g in scheme.groups if 0 in g.rows)
        M, S = group.M * group.copies, group.S * group.copies
        x = control_parameter(D, T_at(max(indicator_boundary(M, S, z, L, scheme.theta_lo, RATE_MAX, group.max_T / M**2), 1e-5),
                                      4 * M))  # the group's load x_g = T/M² as T(d/D)²
    else:
        x = 0.002
    if criterion == CRITERIA[1]:
        return x
    budget = 2 * (Q90_DX_MAX / 2.146) ** 2
    if kind == "scaling":
        payload = budget / ((L - 1) * z)
    else:
        payload = (budget - 9 * L * (4 / D) * (z - 1)) / ((L - 1) * (z + 8 * (z - 1)))
    return max(min(x, payload), 2e-5)


def _scheme_at(kind: str, knobs: dict, D: int, T: int, z: int, L: int):
    """The scheme a capacity probe with T circuits runs: the scaling construction is designed
    for the load x = T(d/D)², every other scheme is fixed."""
    if kind == "scaling":
        return make_scheme("scaling", D, z=z, L=L, x=control_parameter(D, T))
    return make_scheme(kind, D, **({"z": z, "L": L} | knobs if kind == "wide_rule" else knobs))


def _largest_load(kind: str, knobs: dict, D: int, z: int, L: int) -> float:
    """The largest x = T(d/D)² the scheme's assignment holds (the scaling construction: the
    largest any register of its rule holds)."""
    if kind == "scaling":
        return max_load(D, z=z)
    return control_parameter(D, _scheme_at(kind, knobs, D, 1, z, L).max_T)


@checked
def scheme_capacity(kind: str, D: int, z: int, L: int, seed: int, *, criterion: str, batch: int = 128,
                    resolution: float = RESOLUTION, x0: float | None = None, x_min: float = 2e-5,
                    **knobs) -> list[dict]:
    """The capacity of the scheme `kind` at width D (knobs as `make_scheme`'s) at depth L
    with z active circuits on one criterion, for one seed (a row function for `sweep`): the
    largest x = T(d/D)² at which the layer-L statistics pass, found by
    `capacity.bisect_capacity` from x0 (default: `theory_start`, the theory's predicted
    boundary).

    criterion "works": `core.criteria.works` (a); "indicators hold": (b), against the
    construction's own oracle: the same network and draw with every neuron that no active
    circuit uses switched off (for the baseline, RiS's oracle). The largest load tried is
    the scheme's assignment capacity; passing there is censored "above". The scaling
    construction is designed anew for every probe's load.
    Returns one row: x_max, x_fail, censor, probes, resolution, T_max, the failures at
    x_fail (why it stops working), label (at x_max), knob (the scheme's knob at x_max:
    S_α of wide_rule, S_r of the scaling construction, else its own knob).
    """
    if criterion not in CAPACITY_CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not allowed: one of {CAPACITY_CRITERIA}")
    D = check_int("D", D, 16)
    z = check_int("z", z, 1)
    L = check_int("L", L, 2)
    batch = check_int("batch", batch, 1)
    against_oracle = criterion == CRITERIA[1]
    if x0 is None:
        x0 = theory_start(kind, D, z, L, criterion=criterion, **knobs)
    frozen = tuple(sorted(knobs.items()))
    x_top = _largest_load(kind, knobs, D, z, L)
    T_top = T_at(x_top, D)
    T_of = lambda x: max(z, min(T_at(x, D), T_top))  # noqa: E731
    why = {}

    def passes(x):
        T = T_of(x)
        st, orc = _layer_stats(kind, frozen, D, T, z, L, seed, batch, oracle=against_oracle)
        fails = failures(st, L, oracle=orc)
        why[T] = fails
        return not fails

    # the gallop's step: the false-gate theory and the baseline's and E1's recursion start within
    # ~10 % of the measured capacity (chapters "The T(d/D)² regime", "Does it work
    # asymptotically?"); other starts can be 2x off. A step must exceed the bisection's resolution.
    step = max(1.1 if kind in ("scaling", "baseline", "sharp") else 1.5, 1.0 + 1.5 * resolution)
    res = bisect_capacity(passes, x0=x0, x_min=max(x_min, control_parameter(D, z)), x_max=x_top, resolution=resolution,
                          step=step)
    T_fail = T_of(res["x_fail"]) if math.isfinite(res["x_fail"]) else None
    T_max = T_of(res["x_max"]) if res["censor"] != "below" else 0
    at = _scheme_at(kind, knobs, D, max(T_max, z), z, L)
    return [res | {"T_max": T_max, "label": at.label, "why": "; ".join(why.get(T_fail, [])) if T_fail is not None else "",
                   "knob": float(at.knob)}]
