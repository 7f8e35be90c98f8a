"""Analysis of the regime sweeps: ratio measured/theory, the boundary where it passes a
level with a bootstrap interval over seeds, worst-case tails, seizure onset, and the
boundary's scaling exponent in D."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..capacity import capacity_summary, slopes
from ..core.checks import checked, measured
from ..report import format_capacity
from .measure import MEANS, inactive_on_layer1, large_d_grid

__all__ = [
    "add_regime_columns",
    "seed_summary",
    "crossing",
    "crossing_censor",
    "boundary_table",
    "tail_table",
    "seizure_table",
    "binned_medians",
    "boundary_word",
    "boundary_words",
    "ratio_summary",
    "inactive_summary",
    "tail_summary",
    "spurious_summary",
    "terms_summary",
    "boundary_capacity",
    "onset_summary",
    "causal_summary",
    "run_note",
]


# ---- analysis ------------------------------------------------------------------------------
@checked
def add_regime_columns(df: pd.DataFrame, d: int = 4) -> pd.DataFrame:
    """Copy of `df` with x = T(d/D)², superposition T·d/D (circuit neurons per network
    neuron), eps = d/D − 1/(ST), and ratio = measured/theory (NaN where the theory is 0 or
    NaN, or where ε ≤ 0: with T ≤ D/(dS) the overlap estimate ε, and so the theory, is
    meaningless; S from the `S` column, default 6)."""
    out = df.copy()
    S = out["S"] if "S" in out else 6
    out["x"] = out["T"] * (d / out["D"]) ** 2
    out["superposition"] = out["T"] * d / out["D"]
    out["eps"] = d / out["D"] - 1.0 / (S * out["T"])
    th = out["theory"].where((out["theory"] > 0) & (out["eps"] > 0))
    out["ratio"] = out["measured"] / th
    return out


def seed_summary(df: pd.DataFrame, by=("D", "T", "z", "layer", "quantity")) -> pd.DataFrame:
    """Mean, standard deviation, min, max and count over seeds of `measured` (and of
    `ratio` if present), with the theory, one row per `by` group."""
    df = add_regime_columns(df) if "x" not in df else df
    agg = {
        "measured": ["mean", "std", "min", "max", "count"],
        "theory": "first",
        "x": "first",
        "superposition": "first",
    }
    if "ratio" in df:
        agg["ratio"] = ["median", "mean"]
    s = df.groupby(list(by), sort=True).agg(agg)
    s.columns = ["_".join(c) if c[1] not in ("first",) else c[0] for c in s.columns]
    return s.reset_index()


@checked
def binned_medians(x, ratio, n_bins: int):
    """Median x and median ratio of the points in each of n_bins equal bins of log x
    (empty bins dropped); medians of logs, returned exponentiated."""
    x, ratio = np.asarray(x, float), np.asarray(ratio, float)
    ok = np.isfinite(x) & np.isfinite(ratio) & (x > 0) & (ratio > 0)
    lx, lr = np.log(x[ok]), np.log(ratio[ok])
    if lx.size == 0:
        return np.array([]), np.array([])
    edges = np.linspace(lx.min(), lx.max() + 1e-12, n_bins + 1)
    b = np.clip(np.digitize(lx, edges) - 1, 0, n_bins - 1)
    keep = [k for k in range(n_bins) if (b == k).any()]
    return (np.exp([np.median(lx[b == k]) for k in keep]), np.exp([np.median(lr[b == k]) for k in keep]))


@checked
def crossing_censor(x, ratio, level: float, n_bins: int = 8) -> str:
    """Whether `crossing` is censored: "below" when every bin is at or above `level` (the
    boundary lies at or below the data's smallest x, which `crossing` then returns as an
    upper bound), "above" when the last bin is still below it (+inf), else ""."""
    x, ratio = np.asarray(x, float), np.asarray(ratio, float)
    ok = np.isfinite(x) & np.isfinite(ratio) & (x > 0) & (ratio > 0)
    if not ok.any():
        return ""
    _, br = binned_medians(x[ok], ratio[ok], n_bins)
    below = np.nonzero(np.log(br) < math.log(level))[0]
    return "below" if below.size == 0 else ("above" if below[-1] == len(br) - 1 else "")


@checked
def crossing(x, ratio, level: float, n_bins: int = 8) -> float:
    """T(d/D)² from which the median ratio stays ≥ `level`.

    The points are binned in log x (n_bins equal bins over their range); the median ratio
    of each non-empty bin sits at the bin's median x. The boundary is interpolated (log x
    against log ratio) between the last bin below `level` and the next one. Returns the
    smallest x if every bin is at or above `level` (the boundary lies at or below the
    data: an upper bound, flagged by `crossing_censor`) and +inf if the last bin is still
    below it (above the data).
    """
    x, ratio = np.asarray(x, float), np.asarray(ratio, float)
    ok = np.isfinite(x) & np.isfinite(ratio) & (x > 0) & (ratio > 0)
    x, ratio = x[ok], ratio[ok]
    if x.size == 0:
        return float("nan")
    bx, br = binned_medians(x, ratio, n_bins)
    cx, cr, ll = np.log(bx), np.log(br), math.log(level)
    below = np.nonzero(cr < ll)[0]
    if below.size == 0:
        return float(x.min())
    k = below[-1]
    if k == len(cx) - 1:
        return float("inf")
    t = (ll - cr[k]) / (cr[k + 1] - cr[k])
    return float(np.exp(cx[k] + t * (cx[k + 1] - cx[k])))


@checked
def boundary_table(
    df: pd.DataFrame,
    quantity: str = "active_x",
    levels=(1.5, 2.0),
    *,
    n_boot: int = 200,
    n_bins: int = 8,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Boundary x* (where the median ratio measured/theory passes each level, `crossing`)
    per z and layer, with a hierarchical bootstrap confidence interval: resample the
    (D, T) configurations with replacement, then the seeds within each.

    Columns: z, layer, level, x_star, lo, hi, censor (`crossing_censor` of the estimate:
    "below" = at or below the grid, "above" = not reached), n_configs, n_seeds.
    """
    df = add_regime_columns(df) if "ratio" not in df else df
    df = df[(df["quantity"] == quantity) & df["ratio"].notna()]
    rng = np.random.default_rng(seed)
    out = []
    for (z, layer), g in df.groupby(["z", "layer"], sort=True):
        piv = g.pivot_table(index=["D", "T"], columns="seed", values="ratio")
        xs = g.groupby(["D", "T"])["x"].first().reindex(piv.index).to_numpy()
        R = piv.to_numpy()  # [configs, seeds] (NaN where a seed is missing)
        nc, ns = R.shape
        for level in levels:
            est = crossing(np.repeat(xs, ns), R.reshape(-1), level, n_bins)
            boots = np.empty(n_boot)
            for i in range(n_boot):
                c = rng.integers(nc, size=nc)
                s = rng.integers(ns, size=(nc, ns))
                boots[i] = crossing(np.repeat(xs[c], ns), R[c[:, None], s].reshape(-1), level, n_bins)
            # Order statistics (not np.quantile): resamples with no crossing are +inf.
            srt, a = np.sort(boots), (1 - ci) / 2
            lo, hi = srt[int(math.floor(a * (n_boot - 1)))], srt[int(math.ceil((1 - a) * (n_boot - 1)))]
            cens = crossing_censor(np.repeat(xs, ns), R.reshape(-1), level, n_bins)
            out.append(
                {
                    "z": z,
                    "layer": layer,
                    "level": level,
                    "x_star": est,
                    "lo": lo,
                    "hi": hi,
                    "censor": cens,
                    "n_configs": nc,
                    "n_seeds": ns,
                }
            )
    return pd.DataFrame(out)


@checked
def tail_table(df: pd.DataFrame, threshold: float, x_split: float) -> pd.DataFrame:
    """Fraction of active circuits with |δx|² > threshold, per z and layer, averaged over
    the configurations below and above x = T(d/D)² = x_split (columns below, above)."""
    df = add_regime_columns(df) if "x" not in df else df
    q = f"active_x_frac>{threshold:g}"
    s = df[df["quantity"] == q].copy()
    if s.empty:
        raise ValueError(f"threshold={threshold!r} was not measured: the rows hold {sorted(set(df['quantity']))}")
    s["side"] = np.where(s["x"] < x_split, "below", "above")
    return s.pivot_table(index=["z", "layer"], columns="side", values="measured", aggfunc="mean").reset_index()


@checked
def seizure_table(df: pd.DataFrame, factor: float = 2.0) -> pd.DataFrame:
    """Per (D, x, z, seed): the seizure onset, the first layer l whose spurious-on fraction
    exceeds `factor` × the floor (the layer-2 prediction: what the active circuits alone
    switch on, a constant at fixed T(d/D)² as D grows); L + 1 when no layer does."""
    s = df[df["quantity"] == "spurious_on"]
    L = int(s["layer"].max())
    out = []
    for (D, x, z, seed), g in s.groupby(["D", "x", "z", "seed"], sort=True):
        hit = g.loc[g["measured"] > factor * g["floor"], "layer"]
        out.append({"D": D, "x": x, "z": z, "seed": seed, "onset": int(hit.min()) if len(hit) else L + 1})
    return pd.DataFrame(out)


# ---- the chapter's summaries: the numbers its claims test and its prose glues ---------------
@checked(v=measured())
def boundary_word(v: float, censor: str = "") -> str:
    """A boundary value in words: "not reached" where the grid never reached it (no inf
    shown), "≤ x" where it was passed already at the grid's smallest x."""
    if not np.isfinite(v):
        return "not reached"
    return f"≤ {v:.4f}" if censor == "below" else f"{v:.4f}"


@checked
def ratio_summary(ris: pd.DataFrame, bounds: pd.DataFrame, *, L: int) -> dict:
    """Where theory and measurement part, on the RiS grid (`ris` with the regime columns,
    `bounds` from `boundary_table` on active_x). Returns low_med (median ratio per z and
    layer at T(d/D)² ≤ 0.002), early (its layers 1–2), high_med (median ratio per z at
    layer 4 for T(d/D)² ≥ 0.006), by_d (the same at layer L, per z and D), x2 / x2_lo /
    x2_hi (the level-2 boundary at layer L and its interval, per z), inside / above (the z
    whose interval holds 0.004, or lies below it), table (the boundaries in words) and
    "glue" (the verdict, the boundaries per z, the range of `early`)."""
    act = ris[(ris.quantity == "active_x") & ris.ratio.notna()]
    low_med = act[act.x <= 0.002].groupby(["z", "layer"])["ratio"].median()
    early = low_med[low_med.index.get_level_values("layer") <= 2]
    high_med = act[(act.x >= 0.006) & (act.layer == 4)].groupby("z")["ratio"].median()
    by_d = act[(act.x >= 0.006) & (act.layer == L)].groupby(["z", "D"])["ratio"].median().unstack()
    b2 = bounds[(bounds.level == 2.0) & (bounds.layer == L)].set_index("z")
    x2, x2_lo, x2_hi = b2["x_star"], b2["lo"], b2["hi"]
    inside = [z for z in x2.index if x2_lo[z] <= 0.004 <= x2_hi[z]]
    above = [z for z in x2.index if x2_hi[z] < 0.004]
    verdict = f"inside the 95 % interval for z = {', '.join(map(str, inside))}" if inside else "inside no interval"
    if above:
        verdict += f", and above the whole interval (the measurement leaves the theory earlier) for z = {', '.join(map(str, above))}"
    glue = {"regime-verdict": verdict}
    cens = b2["censor"] if "censor" in b2 else pd.Series("", index=b2.index)
    for z in x2.index:
        glue[f"regime-x2-z{z}"] = (
            f"{boundary_word(x2[z], cens[z])}"
            if cens[z] == "below"
            else f"{boundary_word(x2[z])} (95 % CI {boundary_word(x2_lo[z])}–{boundary_word(x2_hi[z])})"
        )
    glue["regime-low-med-min"] = float(early.min())
    glue["regime-low-med-max"] = float(early.max())
    return {
        "low_med": low_med,
        "early": early,
        "high_med": high_med,
        "by_d": by_d,
        "x2": x2,
        "x2_lo": x2_lo,
        "x2_hi": x2_hi,
        "inside": inside,
        "above": above,
        "table": boundary_words(bounds),
        "glue": glue,
    }


def boundary_words(bounds: pd.DataFrame) -> pd.DataFrame:
    """`boundary_table` rows as a table in words, one row per (z, layer) and one column per
    level: "x* [lo, hi]" ("not reached" where the grid never reached the level, "≤ x" where
    it was passed at the grid's smallest x)."""
    b = bounds.assign(
        text=[
            boundary_word(r.x_star, getattr(r, "censor", ""))
            if getattr(r, "censor", "") == "below"
            else f"{boundary_word(r.x_star)} [{boundary_word(r.lo)}, {boundary_word(r.hi)}]"
            for r in bounds.itertuples()
        ]
    )
    out = b.pivot_table(index=["z", "layer"], columns="level", values="text", aggfunc="first")
    out.columns = [f"ratio {lev:g}" for lev in out.columns]
    return out


@checked
def inactive_summary(ris: pd.DataFrame, bounds_in: pd.DataFrame, *, S: int, L: int) -> dict:
    """The inactive on-indicators on the RiS grid (`bounds_in`: `boundary_table` on
    inactive_on). Returns l1 (per z at layer 1: min/median/max over configurations and
    seeds of measured / z·ε ("ratio") and of measured / the second-order theory
    `inactive_on_layer1` ("ratio2")), xin (the level-2 boundary at layer L per z) and "glue"."""

    ina = ris[(ris.quantity == "inactive_on") & (ris.layer == 1)].copy()
    ina["ratio2"] = ina.measured / [inactive_on_layer1(D, T, S=S, z=z) for D, T, z in zip(ina.D, ina["T"], ina.z)]
    l1 = ina.groupby("z")[["ratio", "ratio2"]].agg(["min", "median", "max"])
    xin = bounds_in[(bounds_in.level == 2.0) & (bounds_in.layer == L)].set_index("z")["x_star"]
    glue = {}
    if 2 in xin.index:
        glue["regime-in-x2-z2"] = float(xin[2])
    glue["regime-in-l1-max"] = float(l1[("ratio", "max")].max())
    glue["regime-in2-l1-min"] = float(l1[("ratio2", "min")].min())
    glue["regime-in2-l1-max"] = float(l1[("ratio2", "max")].max())
    return {"l1": l1, "xin": xin, "glue": glue}


@checked
def tail_summary(ris: pd.DataFrame, tail: pd.DataFrame, *, S: int, L: int, d: int = 4) -> dict:
    """The worst active circuits (`tail` from `tail_table` with x_split = 0.002). Returns
    tb (the fraction below the split, per z and layer), z_many (the z ≥ 2), worst_l1 (tb at
    layer 1 for those z), pred (per z: the probability 1 − (1 − S²ε)^(z−1) that an active
    circuit shares a layer-1 neuron with another, mean over the configurations below
    0.002), table (the two side by side, per z), sides (`tail` indexed by z and layer) and "glue"
    (the fraction at layer 1 for the smallest such z, at layer L for the largest)."""
    tb = tail.set_index(["z", "layer"])["below"]
    z_many = sorted(z for z in set(tail.z) if z >= 2)
    out = {
        "tb": tb,
        "z_many": z_many,
        "worst_l1": None,
        "pred": None,
        "table": None,
        "sides": tail.set_index(["z", "layer"]),
        "glue": {},
    }
    if z_many:
        out["worst_l1"] = tb.loc[(z_many, 1)]
        b1 = ris[(ris.quantity == "active_x") & (ris.layer == 1) & (ris.x < 0.002)]
        eps = d / b1.D - 1 / (S * b1["T"])
        out["pred"] = (1 - (1 - S**2 * eps) ** (b1.z - 1)).groupby(b1.z).mean()
        out["table"] = pd.DataFrame(
            {"measured": out["worst_l1"].to_numpy(), "shared-neuron prediction": out["pred"].loc[z_many].to_numpy()},
            index=pd.Index(z_many, name="z"),
        )
        out["glue"] = {
            "regime-tail-z2-l1": float(tb.loc[(min(z_many), 1)]),
            "regime-tail-zmax-lL": float(tb.loc[(max(z_many), L)]),
        }
    return out


@checked
def spurious_summary(large: pd.DataFrame, *, x_show: float, z_show: int) -> dict:
    """The spurious-on fraction of the large-D sweep against its theory. Returns med (per
    D, x, z and layer ≥ 2: median measured m over seeds, theory th, ratio m/th), sig (the
    rows of med with th ≥ 0.005), table (the 10/50/90 % quantiles of sig's ratio per
    layer), r2 / r3 (sig's median ratio at layers 2 and 3), f (med's m at x_show, z_show,
    by layer and D), Ds (the D of f at layer 3) and "glue"."""
    sp_rows = large[(large.quantity == "spurious_on") & (large.layer >= 2)]
    med = sp_rows.groupby(["D", "x", "z", "layer"]).agg(m=("measured", "median"), th=("theory", "first")).reset_index()
    med["ratio"] = med.m / med.th
    sig = med[med.th >= 0.005]
    table = sig.groupby("layer")["ratio"].describe(percentiles=[0.1, 0.5, 0.9])[["count", "10%", "50%", "90%"]]
    r2 = sig[sig.layer == 2]["ratio"].median()
    r3 = sig[sig.layer == 3]["ratio"].median()
    f = med[(med.x == x_show) & (med.z == z_show)].set_index(["layer", "D"])["m"]
    Ds = sorted(f.loc[3].index)
    glue = {
        "regime-x-show": x_show,
        "regime-z-show": z_show,
        "regime-r2": float(r2),
        "regime-r3": float(r3),
        "regime-l3-lo": float(f.loc[(3, Ds[0])]),
        "regime-l3-hi": float(f.loc[(3, Ds[-1])]),
        "regime-l2-lo": float(f.loc[(2, Ds[0])]),
        "regime-l2-hi": float(f.loc[(2, Ds[-1])]),
    }
    return {"med": med, "sig": sig, "table": table, "r2": r2, "r3": r3, "f": f, "Ds": Ds, "glue": glue}


@checked
def terms_summary(large_r: pd.DataFrame, *, L: int) -> dict:
    """RiS's four quantities at layers ≥ 2 against RiS ("ris" = measured/theory) and RiS +
    the spurious neurons' term ("total" = measured/theory_total). Returns table (median of
    both per quantity and layer), gap_ris / gap_tot (median |log ratio| of the active error
    at layer L) and "glue" (their exponentials: the typical factors)."""

    q = large_r[large_r.quantity.isin(list(MEANS)) & (large_r.theory > 0) & (large_r.layer >= 2)].copy()
    q["ris"] = q.measured / q.theory
    q["total"] = q.measured / q.theory_total
    table = q.groupby(["quantity", "layer"])[["ris", "total"]].median().unstack("layer")
    aL = q[(q.quantity == "active_x") & (q.layer == L)]
    gap_ris, gap_tot = np.log(aL.ris).abs().median(), np.log(aL.total).abs().median()
    return {
        "table": table,
        "gap_ris": gap_ris,
        "gap_tot": gap_tot,
        "glue": {"regime-gap-ris": float(np.exp(gap_ris)), "regime-gap-tot": float(np.exp(gap_tot))},
    }


@checked
def boundary_capacity(cap: pd.DataFrame, theory: pd.DataFrame, *, L: int, d: int = 4) -> dict:
    """The working boundary per D and z as the book's capacity on criterion (b)
    (`cap`: rows of `correction.scheme_capacity` for the baseline with columns D, z, seed,
    x_max, censor, resolution, why), beside the neuron-level theory's boundary (`theory`:
    D, z, x_star, from `correction.scale.theory_start`). Returns summary (per z and D:
    the mean over seeds and its t-interval, `capacity.capacity_summary`, with the theory
    and the superposition T·d/D = x·D/d at the boundary), expo (the slope in ln D per z
    with its interval over seeds, `capacity.slopes`, and the theory's over the same D),
    table (both in words, censored values as bounds, with the condition the seeds most
    often fail first: a rate of the indicators, or the payload's q90 against the oracle's,
    which the indicator theory does not model) and "glue"."""
    c = cap.assign(name=cap["z"])
    summary = capacity_summary(c).rename(columns={"name": "z"})
    summary = summary.merge(theory.rename(columns={"x_star": "theory"}), on=["D", "z"], how="left")
    summary["superposition"] = summary["mean"] * summary["D"] / d
    expo = slopes(c).rename(columns={"name": "z"})
    th = []
    for r in expo.itertuples():
        t = theory[(theory.z == r.z) & theory.D.between(r.D_min, r.D_max)]
        th.append(float(np.polyfit(np.log(t.D), np.log(t.x_star), 1)[0]) if len(t) >= 2 else float("nan"))
    expo["theory"] = th
    fac = float(np.exp(np.log(summary["theory"] / summary["mean"])[summary["censor"] == ""].abs().median()))
    rows = [
        {
            "z": r.z,
            "D": str(r.D),
            "x* [95 % interval]": format_capacity(r.mean, r.low, r.high, r.censor, n=r.n, x_min=r.mean),
            "theory": f"{r.theory:.5f}",
            "T·d/D at x*": f"{r.superposition:.1f}" if r.censor == "" else "–",
            "fails on": r.why.replace("_", " ") or "–",
        }
        for r in summary.sort_values(["z", "D"]).itertuples()
    ]
    rows += [
        {
            "z": r.z,
            "D": f"{r.D_min}..{r.D_max}",
            "x* [95 % interval]": f"~ D^{r.slope:.2f} [{r.low:.2f}, {r.high:.2f}]",
            "theory": f"D^{r.theory:.2f}",
            "T·d/D at x*": "",
            "fails on": "",
        }
        for r in expo.itertuples()
    ]
    glue = {"regime-L": L, "regime-th-fac": f"{fac:.1f}"}
    zg = 2 if 2 in set(expo.z) else (int(expo.z.iloc[0]) if len(expo) else None)
    if zg is not None:
        e = expo.set_index("z").loc[zg]
        glue |= {
            "regime-expo-z": f"{zg}",
            "regime-expo": f"{e.slope:.2f} [{e.low:.2f}, {e.high:.2f}]",
            "regime-expo-th": f"{e.theory:.2f}",
            "regime-expo-n": f"{int(e.n)}",
        }
    for z, g in summary.groupby("z"):
        g = g.sort_values("D")
        lo, hi = g.iloc[0], g.iloc[-1]
        fmt = lambda r: format_capacity(r["mean"], r["low"], r["high"], r["censor"], n=r["n"], x_min=r["mean"])  # noqa: E731
        glue |= {
            f"regime-xs-lo-z{z}": fmt(lo),
            f"regime-xs-hi-z{z}": fmt(hi),
            f"regime-sup-lo-z{z}": f"{lo['superposition']:.1f}",
            f"regime-sup-hi-z{z}": f"{hi['superposition']:.1f}",
            f"regime-Dlo-z{z}": f"{int(lo['D'])}",
            f"regime-Dhi-z{z}": f"{int(hi['D'])}",
        }
    return {
        "summary": summary,
        "expo": expo,
        "fac": fac,
        "table": pd.DataFrame(rows).set_index(["z", "D"]),
        "glue": glue,
    }


@checked
def onset_summary(large: pd.DataFrame, *, L: int) -> dict:
    """Seizure onsets of the large-D sweep: a network seizes at layer l when its spurious
    fraction exceeds 2 × the floor + 1/M (M = D/d = D/4: the background's excess over the
    floor exceeds the floor itself and one neuron per block, so that where the floor is
    ~0 a single rare neuron is not a seizure; `seizure_table` compares with factor × floor,
    so the floor is raised by 1/(2M) = 2/D). Returns onset (per D, x, z, seed), first
    (median onset per z, D, x), sx (per z and D: the smallest x with a median onset
    within the L layers, NaN where none) and table (sx in words: "—" for none)."""
    onset = seizure_table(large.assign(floor=large["floor"] + 2 / large["D"]))
    first = onset.groupby(["z", "D", "x"])["onset"].median().reset_index()
    sx = first[first.onset <= L].groupby(["z", "D"])["x"].min().unstack("D")
    table = sx.map(lambda v: "—" if not np.isfinite(v) else f"{v:g}")
    return {"onset": onset, "first": first, "sx": sx, "table": table}


@checked
def causal_summary(
    causal: pd.DataFrame, D_large, *, x_causal: float, z_causal: int, n_seeds: int, S: int, L: int, d: int = 4
) -> dict:
    """The causal checks (rows of `fixed_x_sweep` with a `variant` column: baseline, oracle,
    sharp). Returns D_lo (the smallest D where RiS's overlap estimate d/D − 1/(ST) is
    positive: below it the circuits barely overlap and every error is ~0), cm (median
    active error at layer L per variant and D), excess (cm over the oracle's), table (cm
    in words, with the excess at D_lo and the largest D) and "glue"."""

    T_c = {D: T for D, T in large_d_grid(D_large, [x_causal], S=S)}
    D_lo = min(D for D in D_large if d / D - 1 / (S * T_c[D]) > 0)
    cm = (
        causal[(causal.quantity == "active_x") & (causal.layer == L)]
        .groupby(["variant", "D"])["measured"]
        .median()
        .unstack("D")
    )
    excess = cm / cm.loc["oracle"]
    D_max = max(D_large)
    glue = {
        "regime-x-causal": x_causal,
        "regime-n-causal": n_seeds,
        "regime-z-causal": z_causal,
        "regime-theta": 0.4,
        "regime-causal-Dlo": D_lo,
        "regime-ex-base-lo": float(excess.loc["baseline", D_lo]),
        "regime-ex-base": float(excess.loc["baseline", D_max]),
        "regime-ex-sharp": float(excess.loc["sharp", D_max]),
    }
    table = cm.map(lambda v: f"{v:.3g}")
    for D in dict.fromkeys((D_lo, D_max)):
        table[f"× oracle, D={D}"] = excess[D].map(lambda v: "—" if not np.isfinite(v) else f"{v:.2f}")
    return {"D_lo": D_lo, "cm": cm, "excess": excess, "table": table, "glue": glue}


@checked
def run_note(t_total: float, parts: dict, *, workers: int) -> str:
    """The run's time and work in words: `parts` maps a name to (seconds, the sweep's rows
    or None); a sweep's `attrs["sweep"]` gives its networks computed and read from the
    cache, `attrs["skipped"]` (if any) the (D, z, x) skipped past the boundary."""
    lines = [f"this run: {t_total:.1f} s in all, workers={workers}"]
    for name, (sec, rows) in parts.items():
        line = f"  {name}: {sec:.1f} s"
        info = getattr(rows, "attrs", {}).get("sweep") if rows is not None else None
        if info:
            line += f", {info['tasks']} networks ({info['computed']} computed, {info['cached']} from the cache)"
        if rows is not None and "skipped" in rows.attrs:
            line += f"; skipped past the boundary (D, z, x): {len(rows.attrs['skipped'])}"
        lines.append(line)
    return "\n".join(lines)
