"""Plots of the regime chapter: RiS Figures 8–11 with seeds, the measured/theory ratio, the
large-D sweep, the superposition boundary, tails, seizures, spurious fractions per layer,
error terms, the boundary's scaling and the causal checks. Each takes data and `ax=None`
(a list of axes where it draws several panels) and returns the axes."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..core.checks import checked, integer
from ..plots import COLORS, LABELS, tidy_log_axis
from .analysis import add_regime_columns, binned_medians, seed_summary

__all__ = [
    "plot_ris_figure",
    "plot_ratio",
    "plot_tail",
    "plot_spurious_layers",
    "plot_error_terms",
    "plot_capacity_by_z",
    "plot_causal",
    "plot_causal_checks",
    "plot_spurious_all",
    "plot_onset",
    "z_axes",
    "d_ticks",
]


# ---- plots -----------------------------------------------------------------------------------
def _tidy_log_axes(ax):
    """Readable log axes: x ticks at 1, 2, 5 × 10ⁿ written as plain numbers (0.002), no
    minor labels (matplotlib's 2×10⁻³ 3×10⁻³ ... overlap)."""

    for axis, scale, lim in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale != "log":
            continue
        axis.set_minor_formatter(NullFormatter())
        if axis is ax.xaxis or (min(lim) > 0 and max(lim) / min(lim) < 100):  # short spans: 1-2-5 ticks
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _d_colors(Ds):
    Ds = sorted(set(Ds))
    cmap = plt.get_cmap("viridis")
    return {D: cmap(i / max(len(Ds) - 1, 1)) for i, D in enumerate(Ds)}


@checked
def plot_ris_figure(df: pd.DataFrame, quantity: str = "active_x", axes=None, d: int = 4):
    """RiS Figures 8–11 layout: rows layer 1..L, columns z. x = T(d/D)², y = the mean over
    seeds of `quantity` with error bars min–max over seeds; colour = D, marker o for
    T ≤ D/d and ^ for T > D/d; dashed theory curve per D. Creates the figure (at most 7.2 in
    wide, 2.2 in per layer) unless `axes` (a grid [layer, z]) is given; returns the axes."""

    s = seed_summary(df[df["quantity"] == quantity])
    zs, layers = sorted(s["z"].unique()), sorted(s["layer"].unique())
    if axes is None:
        fig, axes = plt.subplots(
            len(layers), len(zs), figsize=(min(3.2 * len(zs), 7.2), 2.2 * len(layers)), sharex=True, squeeze=False
        )
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
                        ax.errorbar(
                            gd.loc[m, "x"],
                            y,
                            yerr=err,
                            fmt=marker,
                            ms=3.5,
                            color=colors[D],
                            elinewidth=0.8,
                            capsize=1.5,
                        )
            pos = g["measured_mean"] > 0
            if pos.any() and g.loc[pos, "measured_max"].max() / g.loc[pos, "measured_mean"].min() > 30:
                ax.set_yscale("log")
            ax.set_xscale("log")
            if i == 0:
                ax.set_title(f"z = {z}")
            if j == 0:
                ax.set_ylabel(f"layer {layer}\n{LABELS['quantity'].get(quantity, quantity)}", fontsize=8)
            if i == len(layers) - 1:
                ax.set_xlabel(r"$T(d/D)^2$")
            ax.tick_params(labelsize=7)
            _tidy_log_axes(ax)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f"D={D}") for D, c in colors.items()]
    handles += [
        plt.Line2D([], [], marker="^", ls="", color="gray", label="T > D/d"),
        plt.Line2D([], [], ls="--", color="gray", label="theory"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 10), fontsize=7, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return axes


def _z_panels(g: pd.DataFrame, axes=None):
    """One panel per z of `g` (shared y axis; created unless `axes` is given: two per row,
    7.2 in wide), with the layers of `g` and the colour map that tells them apart."""

    zs = sorted(g["z"].unique())
    if axes is None:
        axes = z_axes(len(zs))
    return axes[0].figure, axes, zs, sorted(g["layer"].unique()), plt.get_cmap("plasma")


@checked(n=integer(1, 64), cols=integer(1, 8))
def z_axes(n: int, cols: int = 2):
    """`n` panels sharing their y axis, `cols` per row (figures at most 7.2 in wide);
    returns the first `n` axes as a flat array."""
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    _, axs = plt.subplots(rows, cols, figsize=(7.2, 2.6 * rows), sharey=True, squeeze=False)
    return axs.ravel()[:n]


def d_ticks(axes, Ds):
    """D axes: ticks at every other size of the grid `Ds`, written in full; no minor labels.
    Returns the axes."""
    for ax in np.atleast_1d(axes):
        ax.set_xticks(list(Ds)[::2], [str(D) for D in list(Ds)[::2]])
        ax.xaxis.set_minor_formatter(NullFormatter())
    return axes


@checked
def plot_ratio(
    df: pd.DataFrame, bounds: pd.DataFrame | None = None, quantity: str = "active_x", axes=None, n_bins: int = 8
):
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
            bx, br = binned_medians(h["x"].to_numpy(), h["ratio"].to_numpy(), n_bins)
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
    axes[0].set_ylabel(f"measured / theory\n{LABELS['quantity'].get(quantity, quantity)}", fontsize=8)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return axes


@checked
def plot_tail(df: pd.DataFrame, threshold: float, axes=None):
    """Fraction of active circuits with |δx|² > threshold against T(d/D)², one panel per z,
    colour = layer (mean over seeds per configuration)."""
    df = add_regime_columns(df) if "x" not in df else df
    g = df[df["quantity"] == f"active_x_frac>{threshold:g}"]
    fig, axes, zs, layers, cmap = _z_panels(g, axes)
    for ax, z in zip(axes, zs):
        for k, layer in enumerate(layers):
            h = (
                g[(g["z"] == z) & (g["layer"] == layer)]
                .groupby(["D", "T"])
                .agg(x=("x", "first"), f=("measured", "mean"))
            )
            ax.scatter(h["x"], h["f"], s=8, color=cmap(k / max(len(layers), 1)), label=f"layer {layer}")
        ax.axvline(0.004, color="gray", lw=0.8, ls="-.")
        ax.set(xscale="log", title=f"z = {z}", xlabel=r"$T(d/D)^2$")
        _tidy_log_axes(ax)
    axes[0].set_ylabel(rf"fraction of active circuits, $|\delta x|^2 > {threshold:g}$", fontsize=8)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return axes


@checked
def plot_spurious_layers(df: pd.DataFrame, x: float, z: int, layers=(2, 3, 4), axes=None, Ds=None):
    """Spurious-on fraction against D at one T(d/D)² and z, one panel per layer: every seed
    (dots), the median (line), the neuron-level theory (dashed); D ticks at every other of
    `Ds` if given (`d_ticks`)."""

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
    if Ds is not None:
        d_ticks(axes, Ds)
    axes[0].figure.tight_layout()
    return axes


@checked
def plot_error_terms(df: pd.DataFrame, quantity: str, layer: int, axes=None, Ds=None):
    """measured/RiS (open) and measured/(RiS + spurious terms) (filled) against D, one
    panel per z, colour = T(d/D)² (median over seeds); D ticks at every other of `Ds` if
    given (`d_ticks`)."""

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
    if Ds is not None:
        d_ticks(axes, Ds)
    axes[0].figure.tight_layout()
    return axes


def plot_capacity_by_z(summary: pd.DataFrame, ax=None, Ds=None):
    """The baseline's capacity on criterion (b) per D, one colour per z (`COLORS["z"]`):
    mean over seeds with its 95 % t-interval (open markers: censored), and the neuron-level
    theory's boundary (dashed); `summary` from `analysis.boundary_capacity`."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 3.2))
    for z, g in summary.groupby("z"):
        g = g.sort_values("D")
        colour = COLORS["z"][z]
        ok = g["censor"] == ""
        ax.errorbar(
            g["D"][ok],
            g["mean"][ok],
            yerr=[g["mean"][ok] - g["low"][ok], g["high"][ok] - g["mean"][ok]],
            fmt="o",
            ms=4,
            capsize=2,
            color=colour,
            label=f"z = {z}",
        )
        ax.plot(g["D"][~ok], g["mean"][~ok], ls="none", marker="o", mfc="none", color=colour)
        ax.plot(g["D"], g["theory"], "--", color=colour, lw=1)
    ax.set(xscale="log", yscale="log", xlabel="D", ylabel="capacity $T(d/D)^2$, criterion (b)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if Ds is not None:
        tidy_log_axis(ax)
        d_ticks(ax, Ds)
    return ax


def _variant_colour(variant: str) -> str:
    """The book's scheme colour of a causal-check variant, by its name or its label."""
    for key, scheme in (("baseline", "baseline"), ("oracle", "oracle"), ("sharp", "E1"), ("E1", "E1")):
        if variant.startswith(key):
            return COLORS["scheme"][scheme]
    return "#777777"


@checked
def plot_causal(df: pd.DataFrame, layer: int, quantity: str = "active_x", ax=None):
    """The active error at `layer` against D for each variant (median over seeds, bars
    min–max): baseline, oracle, E1 (column `variant`)."""

    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 3.2))
    g = df[(df["quantity"] == quantity) & (df["layer"] == layer)]
    for v, h in g.groupby("variant", sort=False):
        s = h.groupby("D")["measured"].agg(["median", "min", "max"])
        ax.errorbar(
            s.index,
            s["median"],
            yerr=np.vstack([s["median"] - s["min"], s["max"] - s["median"]]),
            marker="o",
            ms=3,
            capsize=2,
            color=_variant_colour(v),
            label=v,
        )
    ax.set(
        xscale="log", yscale="log", xlabel="D", ylabel=f"{LABELS['quantity'].get(quantity, quantity)}, layer {layer}"
    )
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=8)
    return ax


@checked
def plot_causal_checks(df: pd.DataFrame, layer: int, Ds=None, axes=None):
    """The causal checks side by side: left the active error, right the spurious-on
    fraction (symlog, linear below 10⁻⁴), at `layer` against D per variant (`plot_causal`);
    D ticks at every other of `Ds` if given. Creates a 7.2 in figure unless `axes` (two) is
    given; returns the axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(7.2, 2.8))
    plot_causal(df, layer, "active_x", ax=axes[0])
    plot_causal(df, layer, "spurious_on", ax=axes[1])
    if Ds is not None:
        d_ticks(axes, Ds)
    axes[1].set_yscale("symlog", linthresh=1e-4)
    axes[1].set_ylabel(f"spurious-on fraction, layer {layer}")
    axes[0].figure.tight_layout()
    return axes


def plot_spurious_all(med: pd.DataFrame, layers, Ds, axes=None):
    """Spurious-on fraction, measured (`med`'s m: median over seeds) against the theory
    (th), every configuration of `med` (from `spurious_summary`), one panel per layer of
    `layers`; colour = D on a log scale over `Ds`, dashed: equality; axes 10⁻⁴ to 1.
    Creates a 7.2 in figure with a colour bar unless `axes` is given; returns the axes."""
    layers = list(layers)
    if axes is None:
        _, axes = plt.subplots(1, len(layers), figsize=(7.2, 2.5), sharex=True, sharey=True, squeeze=False)
        axes = axes[0]
    norm = LogNorm(min(Ds), max(Ds))
    for ax, l in zip(axes, layers):
        h = med[(med.layer == l) & (med.th > 0) & (med.m > 0)]
        ax.scatter(h.th, h.m, c=h.D, cmap="viridis", norm=norm, s=9, lw=0)
        lim = [1e-4, 1]
        ax.plot(lim, lim, "k--", lw=0.7)
        ax.set(xscale="log", yscale="log", xlim=lim, ylim=lim, title=f"layer {l}", xlabel="theory")
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("measured (median over seeds)")
    axes[0].figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes), label="D", pad=0.02)
    return axes


@checked
def plot_onset(onset: pd.DataFrame, zs, L: int, axes=None):
    """Median seizure onset over seeds (`onset` from `onset_summary`; L + 1 = none within
    the network) against T(d/D)², one line per D (viridis in the order of D), one panel
    per z of `zs`. Creates a 7.2 in figure unless `axes` is given; returns the axes."""
    zs = list(zs)
    if axes is None:
        fig, axes = plt.subplots(1, len(zs), figsize=(7.2, 2.6), sharey=True, squeeze=False)
        axes = axes[0]
    cmap = plt.get_cmap("viridis")
    for ax, z in zip(axes, zs):
        o = onset[onset.z == z].groupby(["x", "D"])["onset"].median().unstack("D")
        for i, D in enumerate(o.columns):
            ax.plot(o.index, o[D], "o-", ms=3, color=cmap(i / max(len(o.columns) - 1, 1)), label=str(D), lw=1)
        ax.set(
            xscale="log",
            xlabel=r"$T(d/D)^2$",
            title=f"z = {z}",
            yticks=range(2, L + 2),
            yticklabels=[str(i) for i in range(2, L + 1)] + ["none"],
        )
        tidy_log_axis(ax)
    axes[0].set_ylabel("seizure onset layer")
    axes[-1].legend(title="D", fontsize=6, title_fontsize=7, ncol=2)
    axes[0].figure.tight_layout()
    return axes
