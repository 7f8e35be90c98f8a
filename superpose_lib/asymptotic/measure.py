"""Chapter "Does it work asymptotically?": the constructions' boundaries across D, the
switch-off construction's mechanism and payload, and the summaries the chapter states.

* `theory_table`: per D, the theories' predicted boundaries in T(d/D)² on criterion (b):
  RiS's baseline and E1 (the neuron-level recursion of their indicators), the indicator
  redundancy grown by rule (`correction.wide_rule`) and the switch-off construction
  (`correction.scaling`, with the rule's register at its boundary), and the bound on every
  switch-off construction (`correction.family_boundary`).
* `mechanism_rows`: one switch-off network with a given register (S_r, share) at a given
  load: the measured false-gate rate and the payload's q90 against its own oracle, beside
  the theory (`gate_false_rate`, `noise_ratio`, `variance_ratio`).
* `payload_rows`: at one load, the q90 |δx| of the switch-off construction, of its own
  oracle (perfect gates: the simplex payload's own noise) and of RiS's oracle.
* `mechanism_facts`, `payload_facts`: what the chapter states of those rows.
* `fit_summary`: the measured slopes (`capacity.slopes`) beside the theory's.
* `headline`: every number the chapter's prose states, from those tables.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from ..capacity import capacity_summary
from ..core.checks import check_int, check_real, checked
from ..core.theory import T_at
from ..correction.scale import theory_start
from ..correction.scaling import (
    S_PAYLOAD,
    SwitchOffScheme,
    family_boundary,
    gate_false_rate,
    noise_ratio,
    scaling_boundary,
    scaling_design,
    scaling_run,
    tolerated_noise,
    variance_ratio,
)
from ..correction.schemes import make_scheme, scheme_run
from ..correction.wide_rule import wide_rule_design
from ..report import format_capacity

__all__ = [
    "theory_table",
    "mechanism_rows",
    "payload_rows",
    "mechanism_facts",
    "payload_facts",
    "fit_summary",
    "headline",
    "goal_facts",
    "z_table",
]


@checked
def theory_table(D_list, *, z: int, L: int, E1_theta: float = 0.55) -> pd.DataFrame:
    """Per D and construction, the theory's boundary x* in T(d/D)² on criterion (b): name
    ("baseline", "E1", "wide_rule", "scaling", and "scaling_bound": the most any switch-off
    construction holds, `family_boundary`), D, lnM (M = D/4), x_star, and for the
    rule-designed ones their setting at x* (S: S_α or S_r; share: the share of D that holds
    on-indicator information: the indicator blocks, or the gate block and the register)."""
    rows = []
    for D in D_list:
        D = check_int("D", D, 64)
        lnM = math.log(D / 4)
        rows.append(
            {"name": "baseline", "D": D, "lnM": lnM, "x_star": theory_start("baseline", D, z, L), "S": 6, "share": 0.5}
        )
        rows.append(
            {
                "name": "E1",
                "D": D,
                "lnM": lnM,
                "x_star": theory_start("sharp", D, z, L, theta=E1_theta),
                "S": 6,
                "share": 0.5,
            }
        )
        w = wide_rule_design(D, z=z, L=L)
        rows.append({"name": "wide_rule", "D": D, "lnM": lnM, "x_star": w.x_star, "S": w.S_alpha, "share": w.share})
        x = scaling_boundary(D, z=z, L=L)
        s = scaling_design(D, z=z, L=L, x=x)
        rows.append(
            {"name": "scaling", "D": D, "lnM": lnM, "x_star": x, "S": s.S_r, "share": s.share, "register": s.M_r / D}
        )
        rows.append({"name": "scaling_bound", "D": D, "lnM": lnM, "x_star": family_boundary(D, z=z, L=L)})
    return pd.DataFrame(rows)


@checked
def mechanism_rows(
    S_r: int,
    D: int,
    z: int,
    L: int,
    seed: int,
    *,
    x_M: float,
    share: float = 0.25,
    batch: int = 128,
    device: str = "cpu",
) -> list[dict]:
    """One switch-off network with a register of `share`·D neurons and redundancy S_r at the
    payload load x_M = T/M² (one row, for `sweep`): the measured false-gate rate (gates open
    at positions no active circuit uses, mean over layers 2..L) and the payload's layer-L
    q90 |δx| over its own oracle's, beside the theory: p_g (`gate_false_rate`), y
    (`noise_ratio`) and the predicted q90 ratio √`variance_ratio`(y, L)."""
    share = check_real("share", share, 0.0, 0.9, open_low=True)
    M_r = int(round(share * D))
    M = (D - M_r) // 4
    scheme = SwitchOffScheme(D, M, M_r, 2, S_r)
    T = max(z, int(round(check_real("x_M", x_M, 0.0, open_low=True) * M * M)))
    r = scaling_run(scheme, T, z=z, L=L, batch=batch, seed=seed, device=device, with_oracle=True)
    p = gate_false_rate(M, M_r, T, S=2, S_r=S_r, z=z)
    y = noise_ratio(p, T, M)
    return [
        {
            "x_M": x_M,
            "share": share,
            "T": T,
            "M": M,
            "M_r": M_r,
            "p_gate": float(np.mean(r["spurious_on"][2:])),
            "p_gate_theory": p,
            "q90": r["q90_dx"][L],
            "q90_oracle": r["oracle"]["q90_dx"][L],
            "ratio": r["q90_dx"][L] / r["oracle"]["q90_dx"][L],
            "y": y,
            "ratio_theory": math.sqrt(variance_ratio(y, L)) if y < 1 else math.inf,
            "n_gates": (L - 1) * batch * M,
        }
    ]


@checked
def payload_rows(D: int, z: int, L: int, seed: int, *, x: float, batch: int = 128, device: str = "cpu") -> list[dict]:
    """At the load x = T(d/D)² (one row, for `sweep`): the layer-L payload q90 |δx| of the
    switch-off construction designed for x (`q90`), of its own oracle (`q90_own`: perfect
    gates, the simplex payload's own noise) and of RiS's oracle at the same T and seed
    (`q90_ris`: RiS's payload with every unused neuron switched off)."""
    T = max(z + 1, T_at(x, D))
    s = scaling_design(D, z=z, L=L, x=x)
    r = scheme_run(s, T, z=z, L=L, batch=batch, seed=seed, device=device, layers=(L,), with_oracle=True)
    ris = scheme_run(make_scheme("oracle", D), T, z=z, L=L, batch=batch, seed=seed, device=device, layers=(L,))
    return [
        {
            "x": x,
            "T": T,
            "q90": r["q90_dx"][L],
            "q90_own": r["oracle"]["q90_dx"][L],
            "q90_ris": ris["q90_dx"][L],
            "worst_own": r["oracle"]["worst_dx"][L],
            "worst_ris": ris["worst_dx"][L],
        }
    ]


#: False gates a network must count before its rate is compared with the theory's: a count
#: of 100 has a 10 % relative standard deviation.
GATES_COUNTED = 100


@checked
def mechanism_facts(rows: pd.DataFrame, *, c: float, share: float) -> dict:
    """What the chapter states of `mechanism_rows` (one row per S_r, D and seed): the
    networks that counted at least GATES_COUNTED false gates ("counted", a DataFrame) and
    their measured over predicted false-gate rate ("fit", a Series), and the glue strings
    "as-mech-*": c, the register's share, the rate at the smallest and the largest S_r
    (means over D and seeds) and the range of the fit."""
    counted = rows[rows.p_gate * rows.n_gates >= GATES_COUNTED]
    fit = counted.p_gate / counted.p_gate_theory
    by_S = rows.groupby("S_r").p_gate.mean()
    m0, m1 = by_S.iloc[0], by_S.iloc[-1]
    glue = {
        "as-mech-c": f"{c:g}",
        "as-mech-share": f"{share:.0%}",
        "as-mech-p0": f"{m0:.1e}",
        "as-mech-p1": f"{m1:.1e}" if m1 > 0 else "0 (none counted)",
        "as-mech-S0": f"{by_S.index[0]}",
        "as-mech-S1": f"{by_S.index[-1]}",
        "as-mech-fit": f"{fit.min():.2f} to {fit.max():.2f}" if len(fit) else "not measured",
        "as-mech-n": f"{len(counted)}",
    }
    return {"counted": counted, "fit": fit, "glue": glue}


@checked
def payload_facts(rows: pd.DataFrame, *, x: float) -> dict:
    """What the chapter states of `payload_rows`: per D the mean q90 |δx| of the construction
    ("q90"), its own oracle ("q90_own") and RiS's oracle ("q90_ris") as a DataFrame
    ("by_D"), and the glue strings "as-pay-*" at the smallest and the largest D."""
    pay = rows.groupby("D")[["q90", "q90_own", "q90_ris"]].mean()
    glue = {
        "as-pay-x": f"{x:g}",
        "as-pay-D0": f"{pay.index[0]}",
        "as-pay-D1": f"{pay.index[-1]}",
        "as-pay-own0": f"{pay.q90_own.iloc[0]:.2g}",
        "as-pay-own1": f"{pay.q90_own.iloc[-1]:.2g}",
        "as-pay-ris0": f"{pay.q90_ris.iloc[0]:.2g}",
        "as-pay-ris1": f"{pay.q90_ris.iloc[-1]:.2g}",
        "as-pay-n": f"{rows.seed.nunique()}",
    }
    return {"by_D": pay, "glue": glue}


def fit_summary(fits: pd.DataFrame, theory: pd.DataFrame, *, criterion: str | None = None) -> pd.DataFrame:
    """The measured slopes beside the theory's over the same widths: per (name, criterion)
    row of `fits`, the slope of the theory's x* (`theory_table`, the same name; NaN where the
    theory has none, and on criteria other than `criterion`, the one the theory predicts)
    between D_min and D_max of the fit."""
    out = fits.copy()
    th = []
    for _, r in fits.iterrows():
        if criterion is not None and r.get("criterion", criterion) != criterion:
            th.append(float("nan"))
            continue
        t = theory[(theory["name"] == r["name"]) & theory["D"].between(r["D_min"], r["D_max"])]
        th.append(float(np.polyfit(np.log(t["D"]), np.log(t["x_star"]), 1)[0]) if len(t) >= 2 else float("nan"))
    out["theory"] = th
    return out


def _cap(r) -> str:
    return format_capacity(r["mean"], r["low"], r["high"], r["censor"], n=r["n"])


@checked
def headline(
    summary: pd.DataFrame,
    fits: pd.DataFrame,
    theory: pd.DataFrame,
    *,
    criterion_b: str,
    criterion_a: str,
    z: int,
    L: int,
) -> dict:
    """The chapter's glued numbers (strings) from the capacity summary, the fitted slopes
    (`fit_summary`) and the theory table: capacities of the scaling construction, the
    baseline, E1, E5 and the oracle at the smallest and largest D and at the comparison
    width Dc (the largest D at which the baseline is measured) on both criteria, the slopes
    with their intervals beside the theory's, the fractions of the oracle and of E5 (at E5-D,
    the largest D at which E5 is measured), the
    theory's boundary to the largest D of the table, and the price: the register's share,
    the payload's blocks, S_r, T·ln D/D² and the non-zero weights of the network at the
    largest D's boundary (`SwitchOffScheme.weights`) as a fraction of a dense layer's D²."""
    out = {}
    b = summary[summary["criterion"] == criterion_b]
    a = summary[summary["criterion"] == criterion_a]
    D0, D1 = int(b["D"].min()), int(b["D"].max())
    out["D0"], out["D1"] = f"{D0}", f"{D1}"
    Ds = sorted(b["D"].unique())
    Dm = 16384 if 16384 in Ds else int(Ds[len(Ds) // 2])  # a middle width for the (a) curve
    out["Dm"] = f"{Dm}"

    def at(tab, name, D):
        r = tab[(tab["name"] == name) & (tab["D"] == D)]
        return r.iloc[0] if len(r) else None

    # the comparison width: the largest D at which the baseline is measured on (b)
    Dc = int(b[b["name"] == "baseline"]["D"].max()) if (b["name"] == "baseline").any() else D1
    out["Dc"] = f"{Dc}"
    for crit, tab in (("b", b), ("a", a)):
        for name in ("scaling", "baseline", "E1", "E5", "oracle"):
            for tag, D in (("0", D0), ("1", D1), ("c", Dc), ("m", Dm)):
                r = at(tab, name, D)
                out[f"{crit}-{name}-{tag}"] = _cap(r) if r is not None else "not measured"
    for crit in ("b", "a"):
        for name in ("scaling", "baseline", "E1", "E5", "oracle", "wide_rule"):
            out[f"slope-{crit}-{name}"] = "not fitted (fewer than 3 widths with an uncensored capacity)"
    for _, r in fits.iterrows():
        crit = "b" if r["criterion"] == criterion_b else "a"
        th = "" if math.isnan(r["theory"]) else f"; theory {r['theory']:.2f}"
        out[f"slope-{crit}-{r['name']}"] = (
            f"{r['slope']:.2f} [{r['low']:.2f}, {r['high']:.2f}] "
            f"(D = {int(r['D_min'])} to {int(r['D_max'])}, {int(r['n'])} seeds{th})"
        )
    sc1, or_b = at(b, "scaling", D1), b[b["name"] == "oracle"]
    # E5 against the scaling construction at the largest D where E5 is measured on (b)
    e5 = b[(b["name"] == "E5") & (b["censor"] != "below")]
    if len(e5):
        De5 = int(e5["D"].max())
        sce, e5e = at(b, "scaling", De5), at(b, "E5", De5)
        out["E5-D"] = f"{De5}"
        if sce is not None:
            out["over-E5"] = f"{sce['mean'] / e5e['mean']:.0f}"
    if len(or_b):
        ref = or_b.sort_values("D").iloc[-1]
        out["oracle-D"] = f"{int(ref['D'])}"
        out["over-oracle"] = f"{sc1['mean'] / ref['mean']:.2f}" if sc1 is not None else "n/a"
    sc0 = at(b, "scaling", D0)
    out["fall"] = f"{sc0['mean'] / sc1['mean']:.1f}" if sc0 is not None and sc1 is not None else "n/a"
    ts = theory[theory["name"] == "scaling"].sort_values("D")
    out["theory-Dlast"] = f"{int(ts['D'].iloc[-1])}"
    out["theory-xlast"] = f"{ts['x_star'].iloc[-1]:.4f}"
    out["theory-x1"] = f"{float(ts[ts['D'] == D1]['x_star'].iloc[0]):.4f}" if (ts["D"] == D1).any() else "n/a"
    if sc1 is not None:
        out["TdD"] = f"{sc1['mean'] * D1 / 4:.0f}"  # T·d/D = x·D/d: circuits per dedicated slot
        out["T1"] = f"{T_at(sc1['mean'], D1):.2e}"
    # the parameter-counting bound's form: T·ln D / D² = x·ln D / d², flat if T ∝ D²/ln D
    for tag, r, D in (("0", sc0, D0), ("1", sc1, D1)):
        if r is not None:
            out[f"bound-{tag}"] = f"{r['mean'] * math.log(D) / 16:.4f}"
    if sc1 is not None:  # the rule's network at the boundary: its non-zero weights per layer, of D²
        s1 = scaling_design(D1, z=z, L=L, x=sc1["mean"])
        out["weights-1"] = f"{s1.weights(T_at(sc1['mean'], D1)) / D1**2:.1%}"
    last = ts[ts["D"] <= D1].iloc[-1]
    out["share-1"] = f"{last['register']:.0%}"
    out["payload-1"] = f"{(1 - last['register']) / 4:.3f}"  # M/D of the payload's blocks (RiS: 0.25)
    out["Sr-1"] = f"{int(last['S'])}"
    out["Sr-0"] = f"{int(ts.iloc[0]['S'])}"
    return out


@checked
def goal_facts(
    summary: pd.DataFrame,
    *,
    criterion_b: str,
    z: int,
    L: int,
    D_from: int = 1024,
    D_to: int = 131072,
    goal: float = 2.0,
) -> dict:
    """The goal "a capacity on criterion (b) that falls by at most `goal`× from D_from to
    D_to", tested against the whole switch-off family rather than one design.
    `family_boundary`(D, S) bounds every member with payload redundancy S (S = 1, no plane;
    S = 2, the rule's; S = 3). The bound falls by at least fall_min = min over S of
    bound(D_from)/bound(D_to), a slope in ln D of at most slope_max = ln(1/fall_min)/ln(D_to/
    D_from); no member holds more than best_to = max over S of bound(D_to) at D_to, so a
    member that meets the goal holds at D_from at most most_from = max over S of goal·
    bound_S(D_to)/bound_S(D_from) of its own bound there. Local slopes at both widths: the
    bound's own (S = 2, from D to 2D: bound_local) and the derivation's estimate
    −1/(1 + ln(T/(y*·M))) at the rule's boundary (local).
    `summary` (capacity_summary rows) gives the measured construction beside it: its mean
    over the S = 2 bound at each D where it was measured (ratio, which must stay ≤ 1 up to
    the seeds' spread), and headroom = best_to / its mean at D_to (nan if not measured).
    Returns those numbers, the bounds {S: (at D_from, at D_to)}, a table of them and the
    chapter's glue."""
    if D_to <= D_from:
        raise ValueError(f"D_to={D_to!r} is out of range: allowed D_to > D_from={D_from!r}")
    b = summary[(summary["criterion"] == criterion_b) & (summary["name"] == "scaling")].set_index("D")["mean"]
    if not len(b):
        raise ValueError("summary has no criterion-(b) capacity of the scaling construction")

    @functools.cache
    def bound(D, S):  # each (D, S) computed once: the table, the ratios and the slopes share them
        return family_boundary(int(D), z=z, L=L, S=S)

    bounds = {S: (bound(D_from, S), bound(D_to, S)) for S in (1, 2, 3)}
    fall_min = min(b0 / b1 for b0, b1 in bounds.values())
    slope_max = -math.log(fall_min) / math.log(D_to / D_from)
    best_to = max(b1 for _, b1 in bounds.values())
    ratio = pd.Series({D: v / bound(D, S_PAYLOAD) for D, v in b.items()})
    y_star = tolerated_noise(L)

    def argument(D):  # T/(y*·M) at the rule's boundary: the logarithm's argument
        x = scaling_boundary(D, z=z, L=L)
        return T_at(x, D) / (y_star * scaling_design(D, z=z, L=L, x=x).M)

    args = {D: argument(D) for D in (D_from, D_to)}
    local = {D: -1 / (1 + math.log(a)) for D, a in args.items()}
    bound_local = {D: math.log(bound(2 * D, S_PAYLOAD) / bound(D, S_PAYLOAD)) / math.log(2) for D in (D_from, D_to)}
    most_from = max(goal * b1 / b0 for b0, b1 in bounds.values())
    headroom = best_to / b[D_to] if D_to in b.index else float("nan")
    glue = {
        "as-fam-D0": f"{D_from}",
        "as-fam-D1": f"{D_to}",
        "as-fam-goal": f"{goal:g}",
        "as-fam-fall": f"{fall_min:.1f}",
        "as-fam-slope": f"{slope_max:.2f}",
        "as-fam-best": f"{best_to:.4f}",
        "as-fam-head": f"{headroom:.1f}×" if headroom == headroom else "not measured",
        "as-fam-ratio": f"{ratio.min():.2f}–{ratio.max():.2f}",
        "as-fam-ystar": f"{y_star:.2f}",
        "as-fam-arg0": f"{args[D_from]:.0f}",
        "as-fam-arg1": f"{args[D_to]:.0f}",
        "as-fam-local0": f"{local[D_from]:.2f}",
        "as-fam-local1": f"{local[D_to]:.2f}",
        "as-fam-blocal0": f"{bound_local[D_from]:.2f}",
        "as-fam-blocal1": f"{bound_local[D_to]:.2f}",
        "as-fam-most": f"{most_from:.0%}",
    }
    for S, (b0, b1) in bounds.items():
        glue |= {f"as-fam-S{S}-0": f"{b0:.4f}", f"as-fam-S{S}-1": f"{b1:.4f}", f"as-fam-S{S}-fall": f"{b0 / b1:.1f}"}
    table = pd.DataFrame(
        {
            f"bound at D = {D_from}": {S: f"{b0:.4f}" for S, (b0, _) in bounds.items()},
            f"bound at D = {D_to}": {S: f"{b1:.4f}" for S, (_, b1) in bounds.items()},
            "fall": {S: f"{b0 / b1:.1f}×" for S, (b0, b1) in bounds.items()},
        }
    ).rename_axis("payload S")
    return {
        "table": table,
        "fall_min": fall_min,
        "slope_max": slope_max,
        "best_to": best_to,
        "headroom": headroom,
        "local": local,
        "bound_local": bound_local,
        "most_from": most_from,
        "ratio": ratio,
        "bounds": bounds,
        "glue": glue,
    }


@checked
def z_table(cap: pd.DataFrame, *, z: int, L: int) -> dict:
    """Capacities on one criterion at another z (`cap`: scheme_capacity rows with a name
    column): the summary per (name, D) with the theory's boundary for the switch-off
    construction (`scaling_boundary`) and for the baseline (`correction.scale.theory_start`),
    a table in words and the glue (as-z4-*: the switch-off construction at the smallest and
    largest D, its theory, and the baseline at the largest D it was measured at)."""
    summary = capacity_summary(cap)
    th = {("scaling", D): scaling_boundary(D, z=z, L=L) for D in summary.D.unique()}
    th |= {("baseline", D): theory_start("baseline", D, z, L) for D in summary.D.unique()}
    summary["theory"] = [th.get((r.name, r.D), float("nan")) for r in summary.itertuples()]
    fmt = lambda r: format_capacity(r["mean"], r["low"], r["high"], r["censor"], n=r["n"], x_min=r["mean"])  # noqa: E731
    table = summary.assign(capacity=summary.apply(fmt, axis=1), theory=summary.theory.map(lambda v: f"{v:.5f}"))
    table = table.pivot_table(index="D", columns="name", values=["capacity", "theory"], aggfunc="first").fillna("–")
    sc = summary[summary.name == "scaling"].sort_values("D")
    ba = summary[summary.name == "baseline"].sort_values("D")
    glue = {
        "as-z4-D0": f"{int(sc.D.iloc[0])}",
        "as-z4-D1": f"{int(sc.D.iloc[-1])}",
        "as-z4-sc-0": fmt(sc.iloc[0]),
        "as-z4-sc-1": fmt(sc.iloc[-1]),
        "as-z4-th-1": f"{sc.theory.iloc[-1]:.4f}",
        "as-z4-ba-1": fmt(ba.iloc[-1]) if len(ba) else "not measured",
        "as-z4-ba-D": f"{int(ba.D.iloc[-1])}" if len(ba) else "–",
    }
    return {"summary": summary, "table": table, "glue": glue}
