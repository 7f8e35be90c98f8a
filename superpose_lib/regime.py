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
floor; the boundary per D with a bootstrap over seeds (`per_d_boundary`), its exponent
(`scaling_exponent`) and the seizure onset against the floor (`seizure_table`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .assignment import max_circuits
from .config import check_int
from .experiment import rotation_run, seeded_experiment
from .theory import ris_pairs, rotation_theory  # ris_pairs: the one home of the 41 RiS pairs

__all__ = [
    "ris_pairs", "large_d_grid", "regime_rows", "inactive_on_layer1", "add_regime_columns", "seed_summary",
    "crossing", "boundary_table", "large_d_boundaries", "seizure_onset", "tail_table",
    "plot_ris_figure", "plot_ratio", "plot_large_d", "plot_superposition", "plot_tail", "plot_seizure",
    "QUANTITY_LABELS",
    # at scale (section "At scale")
    "LARGE_QUANTITIES", "large_rows", "fixed_x_sweep", "per_d_boundary", "scaling_exponent", "seizure_table",
    "plot_spurious_layers", "plot_error_terms", "plot_boundary_scaling", "plot_causal",
]

QUANTITY_LABELS = {
    "active_x": r"active $\langle|\delta x|^2\rangle$",
    "inactive_x": r"inactive $\langle|\hat x|^2\rangle$",
    "active_on": r"active $\langle(1-\hat\alpha)^2\rangle$",
    "inactive_on": r"inactive $\langle\hat\alpha^2\rangle$",
}
MEANS = tuple(QUANTITY_LABELS)
QUANTILES = {"q50": 0.5, "q90": 0.9, "q99": 0.99, "max": 1.0}


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
                raise ValueError(f"T(d/D)^2={x} at D={D} needs T={T} > max_circuits={cap}: allowed x <= {cap * (d / D) ** 2:.4g}")
            out.append((D, T))
    return out


def regime_rows(
    D, T, *, S=6, L=4, z=1, batch=500, seed=0, device="cpu", d=4, thresholds=(0.01, 0.1, 1.0),
    seizure_factor: float = 2.0,
) -> list[dict]:
    """Tidy rows (module docstring) for one fresh network: the RiS means with their theory,
    the tail of the active errors and the switched-on neuron counts, per layer 1..L.

    Same draws as `rotation_errors(D, T, ..., seed=seed)`: the means are identical.
    """
    run = rotation_run(*seeded_experiment(D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device, d=d), per_sample=True)
    mse, theory, ps = run.mse(), rotation_theory(D, T, S=S, L=L, z=z, d=d), run.per_sample
    nan = float("nan")
    rows = []
    for l in range(1, L + 1):
        rows += [{"layer": l, "quantity": q, "measured": mse[q][l], "theory": theory[q][l]} for q in MEANS]
        e = ps["err_x"][:, :, l].reshape(-1)
        for name, q in QUANTILES.items():
            rows.append({"layer": l, "quantity": f"active_x_{name}", "measured": float(torch.quantile(e, q)), "theory": nan})
        for thr in thresholds:
            rows.append({"layer": l, "quantity": f"active_x_frac>{thr:g}", "measured": float((e > thr).double().mean()), "theory": nan})
        on, expl = ps["on"][:, l], ps["explained"][:, l]
        rows += [
            {"layer": l, "quantity": "on_frac", "measured": float(on.mean()) / D, "theory": nan},
            {"layer": l, "quantity": "explained_frac", "measured": float(expl.mean()) / D, "theory": nan},
            {"layer": l, "quantity": "outside_frac", "measured": float(ps["outside"][:, l].mean()) / D, "theory": nan},
            {"layer": l, "quantity": "on_ratio", "measured": float((on / expl).mean()), "theory": nan},
            {"layer": l, "quantity": "seized_frac", "measured": float((on > seizure_factor * expl).double().mean()), "theory": nan},
            {"layer": l, "quantity": "phantoms", "measured": float(ps["phantoms"][:, l].mean()), "theory": nan},
        ]
    return rows


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


# ---- analysis ------------------------------------------------------------------------------
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
    agg = {"measured": ["mean", "std", "min", "max", "count"], "theory": "first", "x": "first", "superposition": "first"}
    if "ratio" in df:
        agg["ratio"] = ["median", "mean"]
    s = df.groupby(list(by), sort=True).agg(agg)
    s.columns = ["_".join(c) if c[1] not in ("first",) else c[0] for c in s.columns]
    return s.reset_index()


def _binned_medians(x, ratio, n_bins: int):
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


def crossing(x, ratio, level: float, n_bins: int = 8) -> float:
    """T(d/D)² from which the median ratio stays ≥ `level`.

    The points are binned in log x (n_bins equal bins over their range); the median ratio
    of each non-empty bin sits at the bin's median x. The boundary is interpolated (log x
    against log ratio) between the last bin below `level` and the next one. Returns the
    smallest x if every bin is at or above `level` (the boundary lies at or below the
    data) and +inf if the last bin is still below it (above the data).
    """
    x, ratio = np.asarray(x, float), np.asarray(ratio, float)
    ok = np.isfinite(x) & np.isfinite(ratio) & (x > 0) & (ratio > 0)
    x, ratio = x[ok], ratio[ok]
    if x.size == 0:
        return float("nan")
    bx, br = _binned_medians(x, ratio, n_bins)
    cx, cr, ll = np.log(bx), np.log(br), math.log(level)
    below = np.nonzero(cr < ll)[0]
    if below.size == 0:
        return float(x.min())
    k = below[-1]
    if k == len(cx) - 1:
        return float("inf")
    t = (ll - cr[k]) / (cr[k + 1] - cr[k])
    return float(np.exp(cx[k] + t * (cx[k + 1] - cx[k])))


def boundary_table(
    df: pd.DataFrame, quantity: str = "active_x", levels=(1.5, 2.0), *, n_boot: int = 200, n_bins: int = 8,
    seed: int = 0, ci: float = 0.95,
) -> pd.DataFrame:
    """Boundary x* (where the median ratio measured/theory passes each level, `crossing`)
    per z and layer, with a hierarchical bootstrap confidence interval: resample the
    (D, T) configurations with replacement, then the seeds within each.

    Columns: z, layer, level, x_star, lo, hi, n_configs, n_seeds.
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
            out.append({"z": z, "layer": layer, "level": level, "x_star": est, "lo": lo, "hi": hi, "n_configs": nc, "n_seeds": ns})
    return pd.DataFrame(out)


def large_d_boundaries(df: pd.DataFrame, quantity: str = "active_x", levels=(1.5, 2.0), d: int = 4) -> pd.DataFrame:
    """For each D, z and layer of a fixed-x grid: x* where the ratio passes each level,
    interpolated in log-log on the x grid (`crossing` with one bin per grid value), from
    the median over seeds and from each seed alone (lo/hi = min/max over seeds).

    Columns: D, z, layer, level, x_star, lo, hi, superposition (= x*·D/d, circuit neurons
    per network neuron at the boundary).
    """
    df = add_regime_columns(df, d) if "ratio" not in df else df
    df = df[(df["quantity"] == quantity) & df["ratio"].notna()]
    out = []
    for (D, z, layer), g in df.groupby(["D", "z", "layer"], sort=True):
        n = g["x"].nunique()
        for level in levels:
            med = g.groupby("x")["ratio"].median()
            est = crossing(med.index, med.to_numpy(), level, n_bins=n)
            per = [crossing(s["x"], s["ratio"], level, n_bins=n) for _, s in g.groupby("seed")]
            out.append({"D": D, "z": z, "layer": layer, "level": level, "x_star": est, "lo": min(per), "hi": max(per),
                        "superposition": est * D / d})
    return pd.DataFrame(out)


def seizure_onset(df: pd.DataFrame, majority: float = 0.5) -> pd.DataFrame:
    """Per configuration and seed, the first layer at which more than `majority` of the
    samples have more than `seizure_factor` times as many neurons switched on as their z
    active circuits use (seized_frac; the circuits use d·|∪ e_t^l| ≤ z·S·d neurons);
    L + 1 when no layer does (no seizure within the network). Columns: D, T, z, seed, x,
    onset, and the fraction of neurons on/explained at the last layer."""
    df = add_regime_columns(df) if "x" not in df else df
    s = df[df["quantity"] == "seized_frac"]
    L = int(df["layer"].max())
    out = []
    for (D, T, z, seed), g in s.groupby(["D", "T", "z", "seed"], sort=True):
        g = g.sort_values("layer")
        hit = g.loc[g["measured"] > majority, "layer"]
        out.append({"D": D, "T": T, "z": z, "seed": seed, "x": g["x"].iloc[0], "onset": int(hit.min()) if len(hit) else L + 1})
    return pd.DataFrame(out)


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


# ---- plots -----------------------------------------------------------------------------------
def _tidy_log_axes(ax):
    """Readable log axes: x ticks at 1, 2, 5 × 10ⁿ written as plain numbers (0.002), no
    minor labels (matplotlib's 2×10⁻³ 3×10⁻³ ... overlap)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, scale, lim in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale != "log":
            continue
        axis.set_minor_formatter(NullFormatter())
        if axis is ax.xaxis or (min(lim) > 0 and max(lim) / min(lim) < 100):  # short spans: 1-2-5 ticks
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _d_colors(Ds):
    import matplotlib.pyplot as plt

    Ds = sorted(set(Ds))
    cmap = plt.get_cmap("viridis")
    return {D: cmap(i / max(len(Ds) - 1, 1)) for i, D in enumerate(Ds)}


def plot_ris_figure(df: pd.DataFrame, quantity: str = "active_x", axes=None, d: int = 4):
    """RiS Figures 8–11 layout: rows layer 1..L, columns z. x = T(d/D)², y = the mean over
    seeds of `quantity` with error bars min–max over seeds; colour = D, marker o for
    T ≤ D/d and ^ for T > D/d; dashed theory curve per D. Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    s = seed_summary(df[df["quantity"] == quantity])
    zs, layers = sorted(s["z"].unique()), sorted(s["layer"].unique())
    if axes is None:
        fig, axes = plt.subplots(len(layers), len(zs), figsize=(3.2 * len(zs), 2.6 * len(layers)), sharex=True, squeeze=False)
    else:
        axes = np.atleast_2d(axes)
        fig = axes[0, 0].figure
    colors = _d_colors(s["D"])
    for i, layer in enumerate(layers):
        for j, z in enumerate(zs):
            ax = axes[i, j]
            g = s[(s["z"] == z) & (s["layer"] == layer)]
            for D, gd in g.groupby("D"):
                gd = gd.sort_values("x")
                if (gd["theory"] > 0).any():
                    ax.plot(gd["x"], gd["theory"], "--", color=colors[D], lw=1)
                for big, marker in ((False, "o"), (True, "^")):
                    m = (gd["T"] > gd["D"] / d) == big
                    if m.any():
                        y = gd.loc[m, "measured_mean"]
                        err = np.vstack([y - gd.loc[m, "measured_min"], gd.loc[m, "measured_max"] - y])
                        ax.errorbar(gd.loc[m, "x"], y, yerr=err, fmt=marker, ms=3.5, color=colors[D], elinewidth=0.8, capsize=1.5)
            pos = g["measured_mean"] > 0
            if pos.any() and g.loc[pos, "measured_max"].max() / g.loc[pos, "measured_mean"].min() > 30:
                ax.set_yscale("log")
            ax.set_xscale("log")
            if i == 0:
                ax.set_title(f"z = {z}")
            if j == 0:
                ax.set_ylabel(f"layer {layer}\n{QUANTITY_LABELS.get(quantity, quantity)}", fontsize=8)
            if i == len(layers) - 1:
                ax.set_xlabel(r"$T(d/D)^2$")
            ax.tick_params(labelsize=7)
            _tidy_log_axes(ax)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f"D={D}") for D, c in colors.items()]
    handles += [plt.Line2D([], [], marker="^", ls="", color="gray", label="T > D/d"), plt.Line2D([], [], ls="--", color="gray", label="theory")]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 10), fontsize=7, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig, axes


def _z_panels(g: pd.DataFrame, axes=None):
    """One panel per z of `g` (shared y axis; created unless `axes` is given), with the
    layers of `g` and the colour map that tells them apart."""
    import matplotlib.pyplot as plt

    zs = sorted(g["z"].unique())
    if axes is None:
        _, axes = plt.subplots(1, len(zs), figsize=(3.3 * len(zs), 3.0), sharey=True, squeeze=False)
        axes = axes[0]
    return axes[0].figure, axes, zs, sorted(g["layer"].unique()), plt.get_cmap("plasma")


def plot_ratio(df: pd.DataFrame, bounds: pd.DataFrame | None = None, quantity: str = "active_x", axes=None,
               n_bins: int = 8):
    """Ratio measured/theory against T(d/D)², one panel per z (colour = layer): every
    configuration and seed (dots), the binned medians `crossing` uses (lines), the levels
    and the level-2 boundaries from `boundary_table` (dotted)."""
    df = add_regime_columns(df) if "ratio" not in df else df
    g = df[(df["quantity"] == quantity) & df["ratio"].notna()]
    fig, axes, zs, layers, cmap = _z_panels(g, axes)
    for ax, z in zip(axes, zs):
        for k, layer in enumerate(layers):
            c = cmap(k / max(len(layers), 1))
            h = g[(g["z"] == z) & (g["layer"] == layer)]
            if h.empty:
                continue
            ax.scatter(h["x"], h["ratio"], s=5, color=c, alpha=0.35, lw=0)
            bx, br = _binned_medians(h["x"].to_numpy(), h["ratio"].to_numpy(), n_bins)
            ax.plot(bx, br, "-o", ms=3, color=c, lw=1.2, label=f"layer {layer}")
            if bounds is not None:
                b = bounds[(bounds["z"] == z) & (bounds["layer"] == layer) & (bounds["level"] == 2.0)]
                for _, r in b.iterrows():
                    if np.isfinite(r["x_star"]):
                        ax.axvline(r["x_star"], color=c, ls=":", lw=1)
        for lev in (1.5, 2.0):
            ax.axhline(lev, color="k", lw=0.6, ls="--")
        ax.axvline(0.004, color="gray", lw=0.8, ls="-.")
        ax.set(xscale="log", yscale="log", title=f"z = {z}", xlabel=r"$T(d/D)^2$")
        ax.tick_params(labelsize=7)
        _tidy_log_axes(ax)
    axes[0].set_ylabel(f"measured / theory\n{QUANTITY_LABELS.get(quantity, quantity)}", fontsize=8)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig, axes


def plot_large_d(df: pd.DataFrame, quantity: str = "active_x", layer: int = 4, axes=None):
    """Ratio measured/theory against T(d/D)² at fixed-x grid points, one line per D
    (median over seeds, error bars min–max), one panel per z, at `layer`."""
    import matplotlib.pyplot as plt

    df = add_regime_columns(df) if "ratio" not in df else df
    g = df[(df["quantity"] == quantity) & (df["layer"] == layer) & df["ratio"].notna()]
    zs = sorted(g["z"].unique())
    if axes is None:
        fig, axes = plt.subplots(1, len(zs), figsize=(3.6 * len(zs), 3.0), sharey=True, squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    colors = _d_colors(g["D"])
    for ax, z in zip(axes, zs):
        for D, h in g[g["z"] == z].groupby("D"):
            s = h.groupby("x")["ratio"].agg(["median", "min", "max"]).reset_index()
            err = np.vstack([s["median"] - s["min"], s["max"] - s["median"]])
            ax.errorbar(s["x"], s["median"], yerr=err, marker="o", ms=3, color=colors[D], label=f"D={D}", capsize=2)
        for lev in (1.5, 2.0):
            ax.axhline(lev, color="k", lw=0.6, ls="--")
        ax.set(xscale="log", yscale="log", title=f"z = {z}, layer {layer}", xlabel=r"$T(d/D)^2$")
        _tidy_log_axes(ax)
    axes[0].set_ylabel("measured / theory")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig, axes


def plot_superposition(bounds: pd.DataFrame, level: float = 2.0, axes=None, d: int = 4, layers=None):
    """Left: boundary x* against D (per z and layer, `layers` only if given); right: the
    superposition it allows, T·d/D = x*·D/d circuit neurons per network neuron, with the
    seed's 0.004 for reference."""
    import matplotlib.pyplot as plt

    b = bounds[(bounds["level"] == level) & np.isfinite(bounds["x_star"])]
    if layers is not None:
        b = b[b["layer"].isin(layers)]
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    fig = axes[0].figure
    markers = "osD^v"
    cmap = plt.get_cmap("plasma")
    layers = sorted(b["layer"].unique())
    for (z, layer), h in b.groupby(["z", "layer"]):
        c, m = cmap(layers.index(layer) / max(len(layers), 1)), markers[(z - 1) % len(markers)]
        h = h.sort_values("D")
        err = np.vstack([h["x_star"] - h["lo"], h["hi"] - h["x_star"]]).clip(0)
        axes[0].errorbar(h["D"], h["x_star"], yerr=np.where(np.isfinite(err), err, 0), marker=m, color=c, ms=4, capsize=2,
                         label=f"z={z}, layer {layer}")
        axes[1].plot(h["D"], h["superposition"], marker=m, color=c, ms=4)
    Ds = np.array(sorted(bounds["D"].unique()), float)
    axes[0].axhline(0.004, color="gray", ls="-.", lw=0.8, label="seed: 0.004")
    axes[1].plot(Ds, 0.004 * Ds / d, color="gray", ls="-.", lw=0.8, label="T(d/D)² = 0.004")
    axes[0].set(xscale="log", yscale="log", xlabel="D", ylabel=f"boundary $T(d/D)^2$ (ratio {level:g})")
    axes[1].set(xscale="log", yscale="log", xlabel="D", ylabel="superposition $T d/D$ at the boundary")
    axes[0].legend(fontsize=6, ncol=2)
    axes[1].legend(fontsize=7)
    for ax in axes:
        _tidy_log_axes(ax)
    fig.tight_layout()
    return fig, axes


def plot_tail(df: pd.DataFrame, threshold: float, axes=None):
    """Fraction of active circuits with |δx|² > threshold against T(d/D)², one panel per z,
    colour = layer (mean over seeds per configuration)."""
    df = add_regime_columns(df) if "x" not in df else df
    g = df[df["quantity"] == f"active_x_frac>{threshold:g}"]
    fig, axes, zs, layers, cmap = _z_panels(g, axes)
    for ax, z in zip(axes, zs):
        for k, layer in enumerate(layers):
            h = g[(g["z"] == z) & (g["layer"] == layer)].groupby(["D", "T"]).agg(x=("x", "first"), f=("measured", "mean"))
            ax.scatter(h["x"], h["f"], s=8, color=cmap(k / max(len(layers), 1)), label=f"layer {layer}")
        ax.axvline(0.004, color="gray", lw=0.8, ls="-.")
        ax.set(xscale="log", title=f"z = {z}", xlabel=r"$T(d/D)^2$")
        _tidy_log_axes(ax)
    axes[0].set_ylabel(rf"fraction of active circuits, $|\delta x|^2 > {threshold:g}$", fontsize=8)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig, axes


def plot_seizure(df: pd.DataFrame, z: int, axes=None):
    """Left: fraction of neurons switched on (solid) vs the fraction the z active
    circuits use (dashed) per layer, for every configuration at this z (colour = x, log);
    right: the seizure onset layer against T(d/D)² (L + 1 = none within the network)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    df = add_regime_columns(df) if "x" not in df else df
    g = df[df["z"] == z]
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    fig = axes[0].figure
    norm = LogNorm(g["x"].min(), g["x"].max())
    cmap = plt.get_cmap("viridis")
    for (D, T), h in g.groupby(["D", "T"]):
        on = h[h["quantity"] == "on_frac"].groupby("layer")["measured"].mean()
        ex = h[h["quantity"] == "explained_frac"].groupby("layer")["measured"].mean()
        c = cmap(norm(h["x"].iloc[0]))
        axes[0].plot(on.index, on.values, color=c, lw=0.8)
        axes[0].plot(ex.index, ex.values, color=c, lw=0.6, ls="--")
    axes[0].set(yscale="log", xlabel="layer", ylabel="fraction of D neurons with A > 0", title=f"z = {z}")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[0], label=r"$T(d/D)^2$")
    on = seizure_onset(g)
    jitter = (np.random.default_rng(0).random(len(on)) - 0.5) * 0.2
    axes[1].scatter(on["x"], on["onset"] + jitter, s=8, c=np.log(on["D"]), cmap="viridis")
    axes[1].axvline(0.004, color="gray", lw=0.8, ls="-.")
    L = int(g["layer"].max())
    axes[1].set(xscale="log", xlabel=r"$T(d/D)^2$", ylabel="seizure onset layer", yticks=range(1, L + 2),
                yticklabels=[str(i) for i in range(1, L + 1)] + ["none"])
    _tidy_log_axes(axes[1])
    fig.tight_layout()
    return fig, axes


# ---- at scale: fixed-x sweeps, the neuron-level theory beside them (section "At scale") ----

LARGE_QUANTITIES = MEANS + ("spurious_on",)


def large_rows(D, T, *, S=6, L=4, z=1, batch=200, seed=0, device="cpu", d=4, variant="baseline",
               theta_lo: float = 0.4) -> list[dict]:
    """Tidy rows for one network at scale: per layer 1..L and quantity (the four RiS means
    and spurious_on), `measured`, `theory` (RiS §6; for spurious_on the neuron-level
    prediction `spurious_on_theory`), `theory_total` (RiS + the spurious neurons' terms,
    `spurious.spurious_theory`) and `floor` (the seizure floor: the layer-2 spurious
    prediction). variant: "baseline", "oracle" or "sharp" (E1, dead zone from theta_lo),
    `experiment.variant_experiment`: same draws for every variant. Only the batch means
    are measured (no per-sample tensors: the large networks need nothing else)."""
    from .experiment import variant_experiment
    from .spurious import spurious_theory

    net, active, x0, oracle = variant_experiment(D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device, d=d,
                                                 variant=variant, theta_lo=theta_lo)
    mse = rotation_run(net, active, x0, oracle=oracle).mse()
    th = spurious_theory(D, T, S=S, L=L, z=z, d=d)
    theory = dict(th["ris"], spurious_on=th["spurious_on"])
    total = dict(th["total"], spurious_on=th["spurious_on"])
    floor = th["spurious_on"][2] if L >= 2 else 0.0
    return [{"layer": l, "quantity": q, "measured": mse[q][l], "theory": theory[q][l], "theory_total": total[q][l],
             "floor": floor} for l in range(1, L + 1) for q in LARGE_QUANTITIES]


def fixed_x_sweep(Ds, xs, zs, seeds, *, S=6, L=4, batch=200, stop_ratio: float = 2.0, d=4, device="cpu",
                  variant="baseline", **sweep_kw) -> pd.DataFrame:
    """`sweep(large_rows, ...)` over D × x × z × seeds, x = T(d/D)² in ascending order, with
    one monotone skip rule: once, for a (D, z), the median over seeds of measured/RiS of
    the active error at the last layer L exceeds `stop_ratio` (the boundary level: the
    boundary is then bracketed by this x and the one before), the larger x are not run
    for that (D, z) (None: run every x). The rule assumes the ratio grows with x past the
    boundary (the chapter checks it where the full x range was run). Same batch size at
    every D. `df.attrs["skipped"]` lists the (D, z, x) not run; `df.attrs["sweep"]` sums
    the sweeps' task counts."""
    from .sweep import sweep

    check_int("batch", batch, 1)
    if stop_ratio is not None and not stop_ratio > 0:
        raise ValueError(f"stop_ratio={stop_ratio!r} is out of range: allowed stop_ratio > 0 (or None)")
    xs = sorted(float(x) for x in xs)
    live = {(int(D), int(z)) for D in Ds for z in zs}
    frames, skipped, stats = [], [], {"tasks": 0, "computed": 0, "cached": 0}
    for x in xs:
        grid = []
        for D, T in large_d_grid(sorted({D for D, _ in live}), [x], d=d, S=S):
            grid += [dict(D=D, T=T, z=z, S=S, L=L, batch=batch, device=device, variant=variant)
                     for z in zs if (D, z) in live and z < T]
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


def _first_crossing(x, r, level: float) -> float:
    """Smallest x where r (ordered by x) reaches `level`, interpolated in log-log with the
    point before; x[0] if r[0] already does; +inf if none does (censored above the grid)."""
    x, r = np.asarray(x, float), np.asarray(r, float)
    hit = np.nonzero(r >= level)[0]
    if hit.size == 0:
        return math.inf
    k = hit[0]
    if k == 0:
        return float(x[0])
    lr0, lr1 = math.log(max(r[k - 1], 1e-300)), math.log(r[k])
    t = (math.log(level) - lr0) / (lr1 - lr0) if lr1 > lr0 else 1.0
    return float(math.exp(math.log(x[k - 1]) + t * (math.log(x[k]) - math.log(x[k - 1]))))


def per_d_boundary(df: pd.DataFrame, *, layer: int, quantity: str = "active_x", level: float = 2.0,
                   against: str = "theory", n_boot: int = 200, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Boundary x* per D and z (never pooled over D): the smallest T(d/D)² where the median
    over seeds of measured/`against` (a column: "theory" = RiS, or "floor" for the seizure
    criterion on spurious_on) reaches `level`, interpolated in log-log between grid points
    (`_first_crossing`). 95 % interval: bootstrap over seeds (resample the seeds with
    replacement, recompute the medians and the crossing); order statistics, so censored
    resamples (+inf: no crossing on the grid) count as above. Columns: D, z, layer, x_star,
    lo, hi, censored (no crossing on the measured grid), n_seeds, boot (the replicates).
    """
    g = df[(df["quantity"] == quantity) & (df["layer"] == layer) & (df[against] > 0)]
    rng = np.random.default_rng(seed)
    out = []
    for (D, z), h in g.groupby(["D", "z"], sort=True):
        piv = (h["measured"] / h[against]).groupby([h["x"], h["seed"]]).first().unstack()  # [x, seed]
        xs, R = piv.index.to_numpy(float), piv.to_numpy()
        ns = R.shape[1]
        est = _first_crossing(xs, np.nanmedian(R, axis=1), level)
        boots = np.array([_first_crossing(xs, np.nanmedian(R[:, rng.integers(ns, size=ns)], axis=1), level)
                          for _ in range(n_boot)])
        srt, a = np.sort(boots), (1 - ci) / 2
        lo, hi = srt[int(math.floor(a * (n_boot - 1)))], srt[int(math.ceil((1 - a) * (n_boot - 1)))]
        out.append({"D": D, "z": z, "layer": layer, "x_star": est, "lo": lo, "hi": hi,
                    "censored": not math.isfinite(est), "n_seeds": ns, "boot": boots})
    return pd.DataFrame(out)


def scaling_exponent(bounds: pd.DataFrame, ci: float = 0.95) -> pd.DataFrame:
    """Per z: slope of log x* against log D (least squares over the D with a finite
    boundary) and its interval from the bootstrap replicates of `per_d_boundary` (the
    slope of each joint replicate, D's resampled independently; replicates with a
    censored D dropped). Columns: z, slope, lo, hi, n_D, D_min, D_max."""
    out = []
    for z, b in bounds.groupby("z"):
        b = b[np.isfinite(b["x_star"])].sort_values("D")
        if len(b) < 2:
            continue
        lD = np.log(b["D"].to_numpy(float))
        slope = float(np.polyfit(lD, np.log(b["x_star"].to_numpy(float)), 1)[0])
        B = np.vstack(b["boot"].to_numpy())  # [n_D, n_boot]
        ok = np.isfinite(B).all(axis=0)
        slopes = np.sort([np.polyfit(lD, np.log(B[:, i]), 1)[0] for i in np.nonzero(ok)[0]])
        a = (1 - ci) / 2
        lo = float(slopes[int(math.floor(a * (len(slopes) - 1)))]) if len(slopes) else math.nan
        hi = float(slopes[int(math.ceil((1 - a) * (len(slopes) - 1)))]) if len(slopes) else math.nan
        out.append({"z": z, "slope": slope, "lo": lo, "hi": hi, "n_D": len(b), "D_min": int(b["D"].min()),
                    "D_max": int(b["D"].max())})
    return pd.DataFrame(out)


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


def plot_spurious_layers(df: pd.DataFrame, x: float, z: int, layers=(2, 3, 4), axes=None):
    """Spurious-on fraction against D at one T(d/D)² and z, one panel per layer: every seed
    (dots), the median (line), the neuron-level theory (dashed)."""
    import matplotlib.pyplot as plt

    g = df[(df["quantity"] == "spurious_on") & np.isclose(df["x"], x) & (df["z"] == z)]
    if axes is None:
        _, axes = plt.subplots(1, len(layers), figsize=(7.2, 2.5), sharey=True, squeeze=False)
        axes = axes[0]
    for ax, l in zip(axes, layers):
        h = g[g["layer"] == l]
        ax.scatter(h["D"], h["measured"], s=6, color="C0", alpha=0.5, lw=0)
        m = h.groupby("D").agg(med=("measured", "median"), th=("theory", "first"))
        ax.plot(m.index, m["med"], "-o", ms=3, color="C0", label="measured")
        ax.plot(m.index, m["th"], "--", color="k", lw=1, label="theory")
        ax.set(xscale="log", title=f"layer {l}", xlabel="D")
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("spurious-on fraction")
    axes[0].legend(fontsize=7)
    axes[0].figure.tight_layout()
    return axes


def plot_error_terms(df: pd.DataFrame, quantity: str, layer: int, axes=None):
    """measured/RiS (open) and measured/(RiS + spurious terms) (filled) against D, one
    panel per z, colour = T(d/D)² (median over seeds)."""
    import matplotlib.pyplot as plt

    g = df[(df["quantity"] == quantity) & (df["layer"] == layer) & (df["theory"] > 0)].copy()
    g["r_ris"], g["r_tot"] = g["measured"] / g["theory"], g["measured"] / g["theory_total"]
    zs = sorted(g["z"].unique())
    if axes is None:
        _, axes = plt.subplots(1, len(zs), figsize=(7.2, 2.6), sharey=True, squeeze=False)
        axes = axes[0]
    xs = sorted(g["x"].unique())
    cmap = plt.get_cmap("viridis")
    for ax, z in zip(axes, zs):
        for i, x in enumerate(xs):
            m = g[(g["z"] == z) & (g["x"] == x)].groupby("D")[["r_ris", "r_tot"]].median()
            c = cmap(i / max(len(xs) - 1, 1))
            ax.plot(m.index, m["r_ris"], "o:", mfc="none", ms=3.5, color=c, lw=0.8)
            ax.plot(m.index, m["r_tot"], "o-", ms=3.5, color=c, lw=1, label=f"{x:g}")
        ax.axhline(1, color="k", lw=0.6)
        ax.set(xscale="log", yscale="log", xlabel="D", title=f"z = {z}, layer {layer}")
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("measured / theory", fontsize=9)
    axes[-1].legend(title="T(d/D)²", fontsize=6, title_fontsize=7)
    axes[0].figure.tight_layout()
    return axes


def plot_boundary_scaling(bounds: pd.DataFrame, theory: pd.DataFrame | None = None, ax=None):
    """Boundary x* per D (bars: bootstrap 95 % over seeds; censored ones omitted), one
    colour per z, with the theory's x*(D) (dashed) if given (columns D, z, x_star)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 3.2))
    for i, (z, b) in enumerate(bounds.groupby("z")):
        b = b[np.isfinite(b["x_star"])].sort_values("D")
        hi = np.where(np.isfinite(b["hi"]), b["hi"], b["x_star"])
        err = np.vstack([b["x_star"] - b["lo"], hi - b["x_star"]]).clip(0)
        ax.errorbar(b["D"], b["x_star"], yerr=err, fmt="o", ms=4, capsize=2, color=f"C{i}", label=f"z = {z}")
        if theory is not None:
            t = theory[theory["z"] == z].sort_values("D")
            ax.plot(t["D"], t["x_star"], "--", color=f"C{i}", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="D", ylabel="boundary $T(d/D)^2$")
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=8)
    return ax


def plot_causal(df: pd.DataFrame, layer: int, quantity: str = "active_x", ax=None):
    """The active error at `layer` against D for each variant (median over seeds, bars
    min–max): baseline, oracle, E1 (column `variant`)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 3.2))
    g = df[(df["quantity"] == quantity) & (df["layer"] == layer)]
    for i, (v, h) in enumerate(g.groupby("variant", sort=False)):
        s = h.groupby("D")["measured"].agg(["median", "min", "max"])
        ax.errorbar(s.index, s["median"], yerr=np.vstack([s["median"] - s["min"], s["max"] - s["median"]]),
                    marker="o", ms=3, capsize=2, color=f"C{i}", label=v)
    ax.set(xscale="log", yscale="log", xlabel="D", ylabel=f"{QUANTITY_LABELS.get(quantity, quantity)}, layer {layer}")
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=8)
    return ax
