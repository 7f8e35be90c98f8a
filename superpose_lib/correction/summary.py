"""The error-correction chapter's measurement plan and summaries.

* Which scheme is measured where: `tuning_cells` (every family setting at one width, for
  the pick on a held-out seed), `pick_settings`, `chapter_schemes` (the picks, the oracle
  and the controls that separate what E5 changes), `comparison_plan` and `redundancy_plan`
  (the cells of the book's capacity search, `scale.scheme_capacity`, and their seeds),
  `run_plan` (the sweeps, cached under the same key as every other chapter's).
* The summaries the prose states: `paired_ratio` (a ratio of two schemes' capacities seed
  by seed, with its t-interval), `theory_slopes` (each fitted slope beside the slope of
  the theory's predicted boundary over the same widths), `overview` (the schemes at equal
  width), and the glue of each section: `mechanism_facts`, `tuning_facts`,
  `capacity_facts`, `control_facts`, `redundancy_facts`.

Every capacity here is a row of `scheme_capacity`: one seed's x_max bisected to the stated
resolution on criterion (a) "works" or (b) "indicators hold", censored at both ends.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..capacity import capacity_summary, slopes
from ..core.checks import check_int, checked
from ..core.criteria import CRITERIA
from ..plots import LABELS
from ..report import format_capacity
from ..stats import t_interval
from ..sweep import sweep
from .scale import FAMILIES, family_settings, indicator_redundancy, scheme_capacity, theory_start
from .schemes import make_scheme

__all__ = [
    "TUNED",
    "CONTROLS",
    "capacity_config",
    "tuning_cells",
    "pick_settings",
    "chapter_schemes",
    "tuned_redundancy",
    "comparison_plan",
    "redundancy_plan",
    "run_plan",
    "RATE_SERIES",
    "rates_cells",
    "theory_lines",
    "paired_ratio",
    "theory_slopes",
    "THEORY_KINDS",
    "fit_slopes",
    "redundancy_summary",
    "capacity_table",
    "slope_table",
    "overview",
    "mechanism_facts",
    "tuning_facts",
    "tuning_table",
    "capacity_facts",
    "control_facts",
    "redundancy_facts",
]

WORKS, HOLDS = CRITERIA
#: The kinds whose boundary `theory_start` predicts from the recursion of their indicator
#: group (the others start from a fixed guess).
THEORY_KINDS = ("baseline", "sharp", "wide", "independent")
#: The families with knobs, tuned on a held-out seed.
TUNED = ("E1", "E2", "E3", "E4", "E5")
#: Controls that separate E5's changes (untied indicator positions, the dead zone with its
#: own S_α, the share f): RiS's indicator rows moved to blocks of their own at f = 1/2 with
#: RiS's S = 6 and step, and E5's dead zone and S_α = 4 at f = 1/2.
CONTROLS = {
    "untied": ("independent", {"share": 0.5, "S_alpha": 6}),
    "E5 f=0.5": ("wide", {"share": 0.5, "S_alpha": 4, "theta": 0.55}),
}


def _label(name: str) -> str:
    return LABELS["scheme"].get(name, name)


def _slug(name: str) -> str:
    """A scheme's name as part of a glue key (letters and digits only: "E5 f=0.5" -> "E5f05")."""
    return re.sub(r"[^A-Za-z0-9]+", "", name)


@checked
def capacity_config(
    kind: str, knobs: dict, D: int, criterion: str, *, z: int, L: int, batch: int, resolution: float
) -> dict:
    """The `sweep` configuration of one `scheme_capacity` cell, keyed as every chapter keys
    it (kind, D, criterion, z, L, batch, resolution and the scheme's knobs; nothing else),
    so that equal arguments share one cache entry across chapters."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not allowed: one of {CRITERIA}")
    return dict(
        kind=kind,
        D=check_int("D", D, 16),
        criterion=criterion,
        z=check_int("z", z, 1),
        L=check_int("L", L, 2),
        batch=check_int("batch", batch, 1),
        resolution=float(resolution),
        **knobs,
    )


def _knobs(setting: dict) -> tuple[str, dict]:
    return setting["kind"], {k: v for k, v in setting.items() if k not in ("setting", "kind")}


@checked
def tuning_cells(D: int, *, z: int, L: int, batch: int, resolution: float, families=TUNED) -> list[tuple[dict, dict]]:
    """Every setting of every tuned family (`scale.family_settings`) at width D on criterion
    (b): a list of (tags: name, family, setting; `scheme_capacity` configuration)."""
    out = []
    for fam in families:
        if fam not in FAMILIES:
            raise ValueError(f"family={fam!r} must be one of {FAMILIES}")
        for st in family_settings(fam, D):
            kind, knobs = _knobs(st)
            tags = {"name": f"{fam} {st['setting']}", "family": fam, "setting": st["setting"]}
            out.append((tags, capacity_config(kind, knobs, D, HOLDS, z=z, L=L, batch=batch, resolution=resolution)))
    return out


def pick_settings(tune: pd.DataFrame) -> dict:
    """Per family, the setting with the largest capacity on the tuning seeds (mean x_max
    over them; the first listed of equals): {family: {"setting", "kind", **knobs}}."""
    g = tune.groupby(["family", "setting"], sort=False)["x_max"].mean().reset_index()
    picks = {}
    for fam, h in g.groupby("family", sort=False):
        best = h.loc[h["x_max"].idxmax(), "setting"]
        D = int(tune["D"].iloc[0])
        picks[fam] = next(st for st in family_settings(fam, D) if st["setting"] == best)
    return picks


def chapter_schemes(picks: dict) -> dict:
    """name -> (kind, knobs) of the compared schemes: the baseline, the tuned families'
    picks (E1–E5), the oracle and the controls (`CONTROLS`)."""
    out = {"baseline": ("baseline", {})}
    out.update({fam: _knobs(picks[fam]) for fam in TUNED if fam in picks})
    out["oracle"] = ("oracle", {})
    out.update(CONTROLS)
    return out


@checked
def tuned_redundancy(schemes: dict, D: int, *, z: int, L: int) -> tuple[str, dict]:
    """E5 with its indicator redundancy from the design rule at width D
    (`scale.indicator_redundancy` at E5's share and dead zone): (kind, knobs)."""
    kind, knobs = schemes["E5"]
    S = indicator_redundancy(D, share=knobs["share"], theta=knobs["theta"], z=z, L=L)["S"]
    return kind, {**knobs, "S_alpha": S}


def _cells(schemes: dict, names, D_list, criteria, **common) -> list[tuple[dict, dict]]:
    return [
        ({"name": n}, capacity_config(*schemes[n], D, c, **common))
        for D in sorted(D_list, reverse=True)
        for n in names
        for c in criteria
    ]


@checked
def comparison_plan(
    schemes: dict,
    *,
    D_list,
    D_large,
    names_large_b,
    D_oracle_max: int,
    D_family,
    D_controls: int,
    z: int,
    z_other,
    D_other,
    seeds,
    seeds_large,
    L: int,
    batch: int,
    resolution: float,
) -> list[tuple[list, list]]:
    """The capacity cells of the comparison and their seeds, as (cells, seeds) parts, the
    largest widths first within each part (a process pool then ends on small tasks):

    * at every D of D_list, z: the baseline, E1 and E5 on both criteria; the oracle on (a),
      and on (b) up to D_oracle_max (its (b) capacity, set by RiS's χ shift, holds ~0.006·D²/16
      circuits: the costliest probes of all); E2–E4 on both at the widths D_family; the
      controls on both at D_controls;
    * at every D of D_large (seeds_large): the baseline, E1 and E5 on (a), and the schemes
      in names_large_b on (b);
    * for every z in z_other, at the widths D_other: the baseline, E1, E5 and the oracle on (b).
    """
    common = dict(z=z, L=L, batch=batch, resolution=resolution)
    both = (HOLDS, WORKS)
    part = _cells(schemes, ["baseline", "E1", "E5"], D_list, both, **common)
    part += _cells(schemes, ["oracle"], D_list, (WORKS,), **common)
    part += _cells(schemes, ["oracle"], [D for D in D_list if D <= D_oracle_max], (HOLDS,), **common)
    part += _cells(schemes, ["E2", "E3", "E4"], D_family, both, **common)
    part += _cells(schemes, list(CONTROLS), [D_controls], both, **common)
    plan = [(sorted(part, key=lambda c: -c[1]["D"]), list(seeds))]
    large = _cells(schemes, ["baseline", "E1", "E5"], D_large, (WORKS,), **common)
    large += _cells(schemes, list(names_large_b), D_large, (HOLDS,), **common)
    if large:
        plan.append((sorted(large, key=lambda c: -c[1]["D"]), list(seeds_large)))
    other = [
        ({"name": n}, capacity_config(*schemes[n], D, HOLDS, z=zz, L=L, batch=batch, resolution=resolution))
        for zz in z_other
        for D in sorted(D_other, reverse=True)
        for n in ("baseline", "E1", "E5", "oracle")
    ]
    if other:
        plan.append((other, list(seeds)))
    return plan


@checked
def redundancy_plan(
    schemes: dict,
    *,
    D_S: int,
    S_list,
    D_rule,
    seeds,
    seeds_rule,
    tune_seed: int,
    z: int,
    L: int,
    batch: int,
    resolution: float,
) -> list[tuple[list, list]]:
    """The capacity cells of the S_α section on criterion (b): E5 (its share and dead zone)
    with every S_α of S_list at D_S, on the seeds and on the held-out tune_seed (for the
    pick); E5 with the design rule's S_α (`tuned_redundancy`) at every D of D_rule, on
    seeds_rule. Tags: name ("E5 S_α=k" or "E5 tuned"), S_alpha."""
    kind, knobs = schemes["E5"]
    common = dict(z=z, L=L, batch=batch, resolution=resolution)
    sweep_S = [
        (
            {"name": f"E5 S_α={S}", "S_alpha": int(S)},
            capacity_config(kind, {**knobs, "S_alpha": int(S)}, D_S, HOLDS, **common),
        )
        for S in S_list
    ]
    plan = [(sweep_S, [*seeds, tune_seed])]
    rule = []
    for D in sorted(D_rule, reverse=True):
        k, kn = tuned_redundancy(schemes, D, z=z, L=L)
        rule.append(({"name": "E5 tuned", "S_alpha": kn["S_alpha"]}, capacity_config(k, kn, D, HOLDS, **common)))
    if rule:
        plan.append((rule, list(seeds_rule)))
    return plan


#: The two loads at which `rates_cells` runs E5 against S_α.
RATE_SERIES = ("fixed x", "x_α ∝ 1/S_α²")


@checked
def rates_cells(
    schemes: dict, *, D: int, S_list, x: float, z: int, L: int, batch: int, device: str = "cpu"
) -> list[tuple[dict, dict]]:
    """Cells of `scale.redundancy_rows` for E5 (its share and dead zone) with every S_α of
    S_list at width D, at two loads (tag "series"): the fixed x = T(d/D)², and x_α = T/M_α² =
    c/S_α² with c such that S_α = min(S_list) gets the same load (the regime derivation's
    scaling, which keeps λ/(θ·S_α) fixed)."""
    _, knobs = schemes["E5"]
    f, theta = knobs["share"], knobs["theta"]
    M_a = make_scheme("wide", D, share=f, S_alpha=min(S_list), theta=theta).groups[0].M
    c = x * D * D / 16 / M_a**2 * min(S_list) ** 2
    kw = dict(D=D, z=z, L=L, batch=batch, device=device, share=f, theta=theta)
    fixed = [({"series": RATE_SERIES[0]}, dict(S_alpha=int(S), x=float(x), **kw)) for S in S_list]
    return fixed + [({"series": RATE_SERIES[1]}, dict(S_alpha=int(S), c=float(c), **kw)) for S in S_list]


@checked
def theory_lines(schemes: dict, names, D_list, *, z: int, L: int) -> pd.DataFrame:
    """The theory's predicted boundary on criterion (b) (`theory_start`) per scheme and D:
    rows name, D, x."""
    return pd.DataFrame(
        [
            {"name": n, "D": int(D), "x": theory_start(schemes[n][0], int(D), z, L, criterion=HOLDS, **schemes[n][1])}
            for n in names
            for D in D_list
        ]
    )


def run_plan(plan, *, fn=scheme_capacity, **sweep_kw) -> pd.DataFrame:
    """`fn` (default `scheme_capacity`) over every part of a plan, a list of (cells: [(tags,
    configuration)], seeds), by `sweep(..., **sweep_kw)` (cached): one table, the cells' tags
    as columns in front (name, ...), then the configuration, the seed and fn's row."""
    frames = []
    for cells, seeds in plan:
        if not cells or not seeds:
            continue
        df = sweep(fn, [c for _, c in cells], seeds, **sweep_kw)
        tags = pd.DataFrame([t for t, _ in cells for _ in seeds])
        df = df.drop(columns=[c for c in tags.columns if c in df.columns])  # a tag that is also an argument
        frames.append(pd.concat([tags.reset_index(drop=True), df.reset_index(drop=True)], axis=1))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@checked
def paired_ratio(cap: pd.DataFrame, num: str, den: str, *, D: int, criterion: str, z: int | None = None) -> dict:
    """x_max of `num` over that of `den`, seed by seed on the seeds both have at (D,
    criterion, z), with the 95 % t-interval over seeds (ν = n − 1; a pairing removes the
    seeds' common part of the spread), widened to at least a factor 1 + resolution on each
    side. bound: "≥" when num is censored above or den below
    on some seed (the ratio is then a lower bound), "≤" the reverse, "" otherwise.
    Returns mean, low, high, n, bound (NaN and n = 0 when no seed has both)."""
    c = cap[(cap["D"] == D) & (cap["criterion"] == criterion)]
    if z is not None:
        c = c[c["z"] == z]
    a = c[c["name"] == num].set_index("seed")
    b = c[c["name"] == den].set_index("seed")
    both = a.index.intersection(b.index)
    if not len(both):
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0, "bound": ""}
    m, lo, hi = t_interval((a.loc[both, "x_max"] / b.loc[both, "x_max"]).to_numpy(float))
    # each capacity is bracketed to its search's resolution, so a ratio of two is known to a
    # factor 1 + res at best: seeds that land on the same bracket do not make it exact
    res = float(max(a.loc[both, "resolution"].max(), b.loc[both, "resolution"].max())) if "resolution" in a else 0.0
    lo, hi = min(lo, m / (1 + res)), max(hi, m * (1 + res))
    up = (a.loc[both, "censor"] == "above").any() or (b.loc[both, "censor"] == "below").any()
    down = (a.loc[both, "censor"] == "below").any() or (b.loc[both, "censor"] == "above").any()
    bound = "" if up == down else ("≥" if up else "≤")
    return {"mean": m, "low": lo, "high": hi, "n": len(both), "bound": bound}


def _ratio_text(r: dict) -> str:
    if not r["n"]:
        return "not measured"
    if r["bound"]:
        return f"{r['bound']} {r['mean']:.2f}"
    if r["n"] == 1:
        return f"{r['mean']:.2f} (one seed)"
    return f"{r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"


@checked
def theory_slopes(fits: pd.DataFrame, cap: pd.DataFrame, schemes: dict, *, z: int, L: int) -> pd.DataFrame:
    """The fitted slopes (`capacity.slopes`: d ln x_max / d ln D per seed, then over seeds)
    with, on criterion (b), the slope of the theory's predicted boundary (`theory_start`:
    the neuron-level recursion of the scheme's indicator group, for the kinds in
    `THEORY_KINDS`) fitted over the same widths (the D at which the scheme's capacities
    entered the fit); NaN for other kinds and on (a) (there the start is the payload's
    bound, not a prediction of the seizure)."""
    out = fits.copy()
    th = []
    for _, r in fits.iterrows():
        if r.get("criterion", HOLDS) != HOLDS or r["name"] not in schemes or schemes[r["name"]][0] not in THEORY_KINDS:
            th.append(math.nan)
            continue
        used = cap[(cap["name"] == r["name"]) & (cap["criterion"] == r.get("criterion", HOLDS)) & (cap["censor"] == "")]
        Ds = sorted(int(D) for D in used["D"].unique())
        kind, knobs = schemes[r["name"]]
        x = [theory_start(kind, D, z, L, criterion=HOLDS, **knobs) for D in Ds]
        th.append(float(np.polyfit(np.log(Ds), np.log(x), 1)[0]) if len(Ds) >= 2 else math.nan)
    out["theory"] = th
    return out


def capacity_table(cap: pd.DataFrame, *, criterion: str, names=None, by=("D",)) -> pd.DataFrame:
    """Capacities on one criterion as text (`report.format_capacity`: mean [95 % t-interval]
    over seeds, censored values as bounds): one row per scheme (its label), one column per
    value of `by` (e.g. D, or z and D); "–" where not measured."""
    c = cap[cap["criterion"] == criterion]
    cells = {}
    for key, g in c.groupby(["name", *by], sort=False):
        r = capacity_summary(g).iloc[0]
        col = ", ".join(f"{b} = {int(v)}" for b, v in zip(by, key[1:]))
        cells.setdefault(_label(key[0]), {})[col] = format_capacity(
            r["mean"], r["low"], r["high"], r["censor"], n=int(r["n"])
        )
    order = [_label(n) for n in (names or c["name"].unique()) if _label(n) in cells]
    cols = [
        ", ".join(f"{b} = {int(v)}" for b, v in zip(by, k))
        for k in sorted({tuple(int(x) for x in t) for t in c[list(by)].itertuples(index=False)})
    ]
    return pd.DataFrame.from_dict(cells, orient="index").reindex(index=order, columns=cols).fillna("–")


def _signed(v: float) -> str:
    """A slope with two decimals and a true minus sign; never "-0.00"."""
    text = f"{v:.2f}"
    return "0.00" if text in ("-0.00", "0.00") else text.replace("-", "−")


def slope_table(fits: pd.DataFrame) -> pd.DataFrame:
    """`theory_slopes` as text: per scheme and criterion the measured slope d ln x_max /
    d ln D with its 95 % t-interval over seeds, the theory's over the same widths, the
    seeds and widths of the fit."""
    return pd.DataFrame(
        [
            {
                "scheme": _label(r["name"]),
                "criterion": r["criterion"],
                "measured slope [95 % CI]": f"{_signed(r['slope'])} [{_signed(r['low'])}, {_signed(r['high'])}]",
                "theory": "–" if math.isnan(r["theory"]) else _signed(r["theory"]),
                "seeds": int(r["n"]),
                "widths": f"{int(r['D_min'])} to {int(r['D_max'])}",
            }
            for _, r in fits.iterrows()
        ]
    ).set_index(["scheme", "criterion"])


@checked
def fit_slopes(cap: pd.DataFrame, schemes: dict, *, z: int, L: int, D_b, D_a) -> pd.DataFrame:
    """`capacity.slopes` at z, on criterion (b) over the widths D_b and on (a) over D_a, each
    beside the theory's slope (`theory_slopes`). Rows name, criterion, slope, low, high, n
    (seeds), D_min, D_max, theory."""
    c = cap[cap["z"] == z]
    parts = [c[(c["criterion"] == HOLDS) & c["D"].isin(D_b)], c[(c["criterion"] == WORKS) & c["D"].isin(D_a)]]
    fits = [theory_slopes(slopes(p), p, schemes, z=z, L=L) for p in parts if len(p)]
    return pd.concat([f for f in fits if len(f)], ignore_index=True) if fits else pd.DataFrame()


@checked
def redundancy_summary(cap_S: pd.DataFrame, cap: pd.DataFrame, *, tune_seed: int) -> pd.DataFrame:
    """E5's capacity on (b) against S_α: `capacity.capacity_summary` of the S_α sweep
    (`redundancy_plan`, without the held-out tune_seed), of E5 tuned, and of E5 (S_α = 4,
    from the comparison `cap`) at the widths of E5 tuned; with columns S_alpha and D."""
    rest = cap_S[cap_S["seed"] != tune_seed]
    tuned_D = rest.loc[rest["name"] == "E5 tuned", "D"].unique()
    e5 = cap[
        (cap["name"] == "E5") & (cap["criterion"] == HOLDS) & cap["D"].isin(tuned_D) & (cap["z"] == rest["z"].iloc[0])
    ].assign(S_alpha=4)
    both = pd.concat([rest, e5], ignore_index=True)
    summ = capacity_summary(both)
    S = both.drop_duplicates(["name", "D"]).set_index(["name", "D"])["S_alpha"]
    summ["S_alpha"] = [int(S[(n, D)]) for n, D in zip(summ["name"], summ["D"])]
    return summ


@checked
def overview(schemes: dict, D: int) -> pd.DataFrame:
    """The schemes at width D: their construction's label, width (every indicator neuron
    counted), parameters of one layer (the dense equivalent: weights in every block pair
    some circuit touches, plus biases) and the assignment's capacity as a load T(d/D)²."""
    rows = []
    for name, (kind, knobs) in schemes.items():
        s = make_scheme(kind, D, **knobs)
        rows.append(
            {
                "scheme": _label(name),
                "construction": s.label,
                "width": s.D,
                "parameters per layer": f"{s.parameters(2) - s.parameters(1):,}",
                "assignment holds T(d/D)² ≤": f"{s.max_T * 16 / D**2:.4f}",
            }
        )
    return pd.DataFrame(rows).set_index("scheme")


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}g}" if x >= 1e-3 or x == 0 else f"{x:.1e}"


@checked
def mechanism_facts(runs: dict, *, S: int) -> dict:
    """The mechanism section's numbers (runs: {T: `scheme_run` result with keep_alpha}):
    the middle T, the layer-1 fraction of inactive circuits passing RiS's step (exactly
    those with two overlaps), the largest T's false-on rate at layer 2 and L and its
    false-off rate at L; "layer1_exact": the layer-1 readouts are multiples of 1/S and the
    two fractions agree; "grows": the false-on rate grows with depth at the largest T."""
    Ts = sorted(runs)
    mid, big = runs[Ts[len(Ts) // 2]], runs[Ts[-1]]
    L = len(big["false_on"]) - 1
    a1 = mid["alpha_inactive"][1].double() * S
    return {
        "ec-Tmid": f"{Ts[len(Ts) // 2]}",
        "ec-big": f"{Ts[-1]}",
        "ec-leak1": f"{100 * mid['leak'][1]:.2f} %",
        "ec-fo2": f"{100 * big['false_on'][2]:.3f} %",
        "ec-foL": f"{100 * big['false_on'][L]:.2f} %",
        "ec-offL": f"{100 * big['false_off'][L]:.1f} %",
        "layer1_exact": bool(mid["leak"][1] == mid["overlap2"][1] > 0 and float((a1 - a1.round()).abs().max()) < 1e-4),
        "grows": bool(big["false_on"][L] > big["false_on"][2]),
    }


def tuning_facts(tune: pd.DataFrame, picks: dict) -> dict:
    """The tuning section's numbers: the held-out seed(s), the width, and per family its
    pick with the capacities of its settings ("E1 θ=0.55 (0.0023; θ=0.35: 0.0018, …)")."""
    out = {
        "ec-tune-D": f"{int(tune['D'].iloc[0])}",
        "ec-tune-seed": ", ".join(str(s) for s in sorted(tune["seed"].unique())),
    }
    g = tune.groupby(["family", "setting"], sort=False)["x_max"].mean()
    for fam, pick in picks.items():
        others = "; ".join(f"{st}: {g[(fam, st)]:.4f}" for st in g[fam].index if st != pick["setting"])
        out[f"ec-pick-{fam}"] = f"{pick['setting']} ({g[(fam, pick['setting'])]:.4f}; {others})"
    return out


def _why(why: str) -> str:
    """A search's failures, short: "false_off 0.0312 > 0.001; q90_dx 2.26 > 1.5 × the oracle's
    1.29" -> "false_off 0.031; q90_dx 2.3 (oracle 1.3)"."""
    out = []
    for part in filter(None, (p.strip() for p in why.split(";"))):
        name, value, *rest = part.split(" ")
        ref = f" (oracle {float(rest[-1]):.2g})" if "oracle's" in rest else ""
        out.append(f"{name} {float(value):.2g}{ref}")
    return "; ".join(out)


def tuning_table(tune: pd.DataFrame) -> pd.DataFrame:
    """The tuning runs as a table: per family and setting the capacity on the held-out
    seed(s) (mean, as text; "≥" where censored at the assignment's limit) and why the search
    stopped there (the criterion's conditions that the first failing load misses, with
    their values)."""
    rows = []
    for (fam, st), g in tune.groupby(["family", "setting"], sort=False):
        bound = "≥ " if (g["censor"] == "above").any() else ""
        rows.append(
            {
                "family": fam,
                "setting": st,
                "capacity T(d/D)²": f"{bound}{g['x_max'].mean():.5f}",
                "fails next by": "; ".join(sorted({_why(w) for w in g["why"] if w})) or "assignment full",
            }
        )
    return pd.DataFrame(rows).set_index(["family", "setting"])


def _cap(summ: pd.DataFrame, name: str, D: int, criterion: str) -> str:
    r = summ[(summ["name"] == name) & (summ["D"] == D) & (summ["criterion"] == criterion)]
    if not len(r):
        return "not measured"
    r = r.iloc[0]
    return format_capacity(r["mean"], r["low"], r["high"], r["censor"], n=int(r["n"]))


def _slope(fits: pd.DataFrame, name: str, criterion: str) -> str:
    r = fits[(fits["name"] == name) & (fits["criterion"] == criterion)]
    if not len(r):
        return "not fitted (fewer than 3 measured widths)"
    r = r.iloc[0]
    th = "" if math.isnan(r["theory"]) else f"; theory {_signed(r['theory'])}"
    return (
        f"{_signed(r['slope'])} [{_signed(r['low'])}, {_signed(r['high'])}] (D = {int(r['D_min'])} to "
        f"{int(r['D_max'])}, {int(r['n'])} seeds{th})"
    )


def _aliases(out: dict, widths: dict) -> dict:
    """Copies of the keys that end in a width, under a name for that width (widths: {"max":
    16384, ...}): "ec-b-E5-16384" is also "ec-b-E5-max", so that the prose reads the same at
    every size of run."""
    extra = {}
    for alias, D in widths.items():
        suffix = f"-{D}"
        extra.update({k[: -len(suffix)] + f"-{alias}": v for k, v in out.items() if k.endswith(suffix)})
    return out | extra


@checked
def capacity_facts(cap: pd.DataFrame, fits: pd.DataFrame, *, z: int, D_list, D_large) -> dict:
    """The comparison's numbers at z (cap: `run_plan` rows; fits: `theory_slopes`):
    capacities of every scheme at every D on both criteria ("ec-b-E5-16384", "ec-a-…"; a
    name in a key has letters and digits only: "E5 f=0.5" -> "E5f05"), the slopes beside the
    theory's ("ec-slope-b-E5"), the paired gains of E5 over E1 and the baseline and of E1 over
    the baseline at every D of D_list on (b) ("ec-gain-E5-E1-16384"; "…-range": from the
    smallest to the largest D where neither capacity is censored), and on (a) the spread of
    the schemes at each D ("ec-a-spread-16384": the largest mean over the smallest). Every
    key ending in a width is also given ending in "min" and "max" (of D_list) and "large"
    (the first of D_large; "not measured in this run" where there is none). "checks" for the
    chapter's assertions: "ratios", the paired ratios by (num, den, D, criterion) (on (b)
    also of the baseline and E1 over the oracle, on (a) of the oracle over the baseline), and
    "fall", each scheme's mean (b) capacity at the smallest D of D_list over that at the
    largest; "oracle_gain", per criterion and D the oracle's mean capacity over the baseline's
    (also as text, "ec-a-oracle-gain-range" and "ec-b-oracle-gain-range")."""
    c = cap[cap["z"] == z]
    summ = capacity_summary(c)
    out = {
        "ec-Dmin": f"{min(D_list)}",
        "ec-Dmax": f"{max(D_list)}",
        "ec-Dlarge": ", ".join(str(D) for D in D_large) or "(none in this run)",
    }
    for crit, tag in ((HOLDS, "b"), (WORKS, "a")):
        for (name, D), _ in summ[summ["criterion"] == crit].groupby(["name", "D"]):
            out[f"ec-{tag}-{_slug(name)}-{int(D)}"] = _cap(summ, name, int(D), crit)
        for name in {*fits["name"].unique(), "baseline", "E1", "E5"}:
            out[f"ec-slope-{tag}-{_slug(name)}"] = _slope(fits, name, crit)
            r = fits[(fits["name"] == name) & (fits["criterion"] == crit)]
            short = (
                f"{_signed(r['slope'].iloc[0])} [{_signed(r['low'].iloc[0])}, {_signed(r['high'].iloc[0])}]"
                if len(r)
                else "not fitted"
            )
            out[f"ec-slope-short{'' if tag == 'b' else '-a'}-{_slug(name)}"] = short
        if D_large:
            continue
        for name in ("baseline", "E1", "E5", "oracle"):
            out[f"ec-{tag}-{name}-large"] = "not measured in this run"
    ratios = {}
    for D in D_list:
        for num, den in (
            ("E5", "E1"),
            ("E5", "baseline"),
            ("E1", "baseline"),
            ("baseline", "oracle"),
            ("E1", "oracle"),
        ):
            r = paired_ratio(c, num, den, D=D, criterion=HOLDS)
            if r["n"]:
                out[f"ec-gain-{num}-{den}-{D}"] = _ratio_text(r)
                ratios[(num, den, D, HOLDS)] = r
        r = paired_ratio(c, "oracle", "baseline", D=D, criterion=WORKS)
        if r["n"]:
            ratios[("oracle", "baseline", D, WORKS)] = r
        a = summ[(summ["criterion"] == WORKS) & (summ["D"] == D)]
        if len(a):
            out[f"ec-a-spread-{D}"] = f"{a['mean'].max() / a['mean'].min():.2f}"
    for num, den in (("E5", "E1"), ("E5", "baseline"), ("E1", "baseline")):
        ok = sorted(D for (n, d, D, crit), r in ratios.items() if (n, d, crit) == (num, den, HOLDS) and not r["bound"])
        if ok:
            lo, hi = ratios[(num, den, ok[0], HOLDS)], ratios[(num, den, ok[-1], HOLDS)]
            out[f"ec-gain-{num}-{den}-range"] = f"{_ratio_text(lo)} at D = {ok[0]} to {_ratio_text(hi)} at D = {ok[-1]}"
    b = summ[(summ["criterion"] == HOLDS) & summ["D"].isin(D_list)].set_index(["name", "D"])["mean"]
    fall = {
        n: float(b[(n, min(D_list))] / b[(n, max(D_list))])
        for n in ("baseline", "E1", "E5")
        if (n, min(D_list)) in b.index and (n, max(D_list)) in b.index
    }
    # the oracle over the baseline as a ratio of the means over seeds: on (a) a seed's capacity
    # can drop several-fold on one rare payload with |δx| ≥ 1, which a paired ratio inherits
    gain = {}
    for crit, tag in ((WORKS, "a"), (HOLDS, "b")):
        m = summ[summ["criterion"] == crit].set_index(["name", "D"])["mean"]
        g = {
            D: float(m[("oracle", D)] / m[("baseline", D)])
            for D in D_list
            if ("oracle", D) in m.index and ("baseline", D) in m.index and m[("baseline", D)] > 0
        }
        gain[crit] = g
        if g:
            out[f"ec-{tag}-oracle-gain-range"] = (
                f"{min(g.values()):.2f} to {max(g.values()):.2f} (D = {min(g)} to {max(g)})"
            )
    checks = {"ratios": ratios, "fall": fall, "oracle_gain": gain}
    widths = {"min": min(D_list), "max": max(D_list)} | ({"large": D_large[0]} if D_large else {})
    return _aliases(out, widths) | {"checks": checks}


@checked
def control_facts(cap: pd.DataFrame, *, D: int, z: int) -> dict:
    """The controls' numbers at width D on (b), each step of the ladder baseline → untied →
    E5 f=0.5 (dead zone and S_α = 4) → E5 (share f) as a paired ratio, E1 against the
    baseline, and the controls' capacities on both criteria ("ec-ctl-…"); "ratios": the
    ratio dicts for the chapter's assertions."""
    c = cap[cap["z"] == z]
    summ = capacity_summary(c[c["D"] == D])
    steps = (("untied", "baseline"), ("E5 f=0.5", "untied"), ("E5", "E5 f=0.5"), ("E1", "baseline"), ("E5 f=0.5", "E1"))
    out, ratios = {"ec-ctl-D": f"{D}"}, {}
    for num, den in steps:
        r = paired_ratio(c, num, den, D=D, criterion=HOLDS)
        ratios[(num, den)] = r
        out[f"ec-ctl-{_slug(num)}-over-{_slug(den)}"] = _ratio_text(r)
    for name in ("baseline", "untied", "E5 f=0.5", "E5", "E1"):
        for crit, tag in ((HOLDS, "b"), (WORKS, "a")):
            out[f"ec-ctl-{tag}-{_slug(name)}"] = _cap(summ, name, D, crit)
    out["ratios"] = ratios
    return out


@checked
def redundancy_facts(
    cap_S: pd.DataFrame, cap: pd.DataFrame, rows: pd.DataFrame, rule: dict, *, tune_seed: int, D_S: int
) -> dict:
    """The S_α section's numbers. cap_S: `run_plan` rows of `redundancy_plan` ("E5 S_α=k" at
    D_S, "E5 tuned" at the rule's widths); cap: the comparison's rows (E5 with S_α = 4 at
    every width); rows: `scale.redundancy_rows` with a column "series" ("fixed x" or
    "1/S²"); rule: {D: `indicator_redundancy`}. The pick: the S_α with the largest capacity
    on the held-out tune_seed, with its capacity on the other seeds and its paired gain over
    S_α = 4 there; per D of the rule its choice, its predicted boundary and that of S_α = 4,
    and the measured gain of E5 tuned over E5; per series the measured and predicted
    layer-L spurious fraction and the false-on rate at the smallest and largest S_α, and
    the load. "pick" and "gains" (paired ratios by D) for the chapter's assertions."""
    held = cap_S[(cap_S["seed"] == tune_seed) & (cap_S["D"] == D_S)]
    rest = pd.concat(
        [cap_S[cap_S["seed"] != tune_seed], cap[(cap["name"] == "E5") & (cap["z"] == cap_S["z"].iloc[0])]],
        ignore_index=True,
    )
    pick = int(held.loc[held["x_max"].idxmax(), "S_alpha"])
    out = {
        "ec-S-D": f"{D_S}",
        "ec-S-pick": f"{pick}",
        "ec-S-seed": f"{tune_seed}",
        "ec-S-list": ", ".join(str(int(s)) for s in sorted(held["S_alpha"].unique())),
    }
    sweep_S = rest[rest["name"].str.startswith("E5 S_α=")]
    caps = {}
    for _, r in capacity_summary(sweep_S).iterrows():
        caps[int(r["name"].split("=")[-1])] = format_capacity(
            r["mean"], r["low"], r["high"], r["censor"], n=int(r["n"])
        )
        out[f"ec-S-cap-{r['name'].split('=')[-1]}"] = caps[int(r["name"].split("=")[-1])]
    out["ec-S-caps"] = "; ".join(f"S_α = {S}: {v}" for S, v in sorted(caps.items()))
    gains = {D_S: paired_ratio(rest, f"E5 S_α={pick}", "E5 S_α=4", D=D_S, criterion=HOLDS)}
    for D in sorted(rest.loc[rest["name"] == "E5 tuned", "D"].unique()):
        gains[int(D)] = paired_ratio(rest, "E5 tuned", "E5", D=int(D), criterion=HOLDS)
    for D, r in gains.items():
        out[f"ec-S-gain-{D}"] = _ratio_text(r)
    best = max(gains.values(), key=lambda r: -math.inf if math.isnan(r["mean"]) else r["mean"])
    out["ec-S-gain-best"] = f"a factor {_ratio_text(best)}"
    for D, rr in rule.items():
        out[f"ec-rule-S-{D}"] = f"{rr['S']}"
        out[f"ec-rule-x-{D}"] = f"{rr['x_star']:.4f}"
        out[f"ec-rule-x4-{D}"] = f"{rr['table'][min(rr['table'])]:.4f}"
    for series, g in rows.groupby("series"):
        m = g.groupby("S_alpha")[["spuriousL", "th_spuriousL", "false_on", "x"]].mean()
        key = "fix" if series == RATE_SERIES[0] else "sq"
        lo, hi = m.index.min(), m.index.max()
        out[f"ec-{key}-S"] = f"{lo} to {hi}"
        for col, tag in (("spuriousL", "sp"), ("th_spuriousL", "th"), ("false_on", "fo")):
            out[f"ec-{key}-{tag}"] = f"{_fmt(m.loc[lo, col])} to {_fmt(m.loc[hi, col])}"
        out[f"ec-{key}-x"] = f"{m.loc[lo, 'x']:.4f}" + ("" if key == "fix" else f" to {m.loc[hi, 'x']:.4f}")
    rule_D = sorted(D for D in gains if D != D_S)
    out = _aliases(out, {"DS": D_S} | ({"Drule": rule_D[-1]} if rule_D else {}))
    out["ec-Drule"] = f"{rule_D[-1]}" if rule_D else "(none in this run)"
    out["pick"], out["gains"] = pick, gains
    return out
