"""Figures of the chapter "Trained versus constructed": each takes data and `ax=None` and
returns the axes; colours and labels from `superpose_lib.plots` (kind "recipe")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.checks import checked
from ..core.criteria import Q90_DX_MAX
from ..plots import axes_or_new, color, label, sequential, tidy_log_axis

__all__ = ["MARKERS", "plot_capacity_vs_D", "plot_error_against_T", "plot_training", "plot_transfer"]

#: One marker per recipe, the same in every figure of the chapter.
MARKERS = {
    "trained": "o",
    "linear": "s",
    "construction": "^",
    "switch-off": "D",
    "code": "P",
    "fine-tuned": "v",
    "noisy": "X",
}


@checked
def plot_capacity_vs_D(table: pd.DataFrame, *, z: int, ax=None):
    """Capacity in circuits against D at one z (`analysis.capacity_table` rows, column
    name a recipe): the mean over seeds with its 95 % interval; censored values drawn open
    (▲ above: a lower bound at the interface's limit, ▼ below), and D/d dotted."""
    ax = axes_or_new(ax)
    t = table[table.z == z]
    for name, g in t.groupby("name", sort=False):
        g = g.sort_values("D")
        c = color("recipe", name)
        ax.plot(g.D, g.T_mean, color=c, marker=MARKERS.get(name, "o"), label=label("recipe", name), ms=5)
        ok = g[g.censor == ""]
        ax.errorbar(
            ok.D, ok.T_mean, yerr=[ok.T_mean - ok.T_low, ok.T_high - ok.T_mean], fmt="none", ecolor=c, capsize=3
        )
        for cens, m in (("above", "^"), ("some-above", "^"), ("below", "v"), ("some-below", "v")):
            h = g[g.censor == cens]
            ax.scatter(h.D, h.T_mean, marker=m, s=60, facecolor="white", edgecolor=c, zorder=3)
    D = np.array(sorted(t.D.unique()))
    ax.plot(D, D / 4, ls=":", color=color("recipe", "dedicated"), label=label("recipe", "dedicated"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(D, [str(v) for v in D])
    ax.set_xlabel("D")
    ax.set_ylabel("circuits T that work (criterion (a))")
    ax.set_title(f"z = {z}")
    tidy_log_axis(ax, "y")
    return ax


@checked
def plot_error_against_T(
    trained: pd.DataFrame, construction: pd.DataFrame, *, D: int, z: int, ax=None, floor: float = 0.01
):
    """q90 |δx| at layer L against T/(D/d) at one width and z: every trained network (one
    point per seed and T, filled when it works on (a)), the construction's mean over seeds
    on a grid of T, the criterion's bound 1/4 (dashed) and D/d (grey). Values below `floor`
    (the construction is exact while no neuron is shared) are drawn at the floor."""
    ax = axes_or_new(ax)
    c = construction[(construction.D == D) & (construction.z == z)].groupby("T_over_dedicated").q90_dx.mean()
    ax.plot(
        c.index,
        c.clip(lower=floor).values,
        color=color("recipe", "construction"),
        marker=MARKERS["construction"],
        ms=4,
        label=label("recipe", "construction"),
    )
    for name, g in trained[(trained.D == D) & (trained.z == z)].groupby("recipe", sort=False):
        col = color("recipe", name)
        ok = g[g.works]
        ax.scatter(
            ok.T_over_dedicated,
            ok.q90_dx.clip(lower=floor),
            color=col,
            s=22,
            label=label("recipe", name),
            marker=MARKERS.get(name, "o"),
            zorder=3,
        )
        bad = g[~g.works]
        ax.scatter(
            bad.T_over_dedicated,
            bad.q90_dx.clip(lower=floor),
            facecolor="white",
            edgecolor=col,
            s=22,
            marker=MARKERS.get(name, "o"),
            zorder=3,
        )
    ax.set_ylim(floor / 1.3, 3.0)
    ax.axhline(Q90_DX_MAX, color="0.4", lw=0.8, ls="--")
    ax.axvline(1.0, color="0.75", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(r"$T\,/\,(D/d)$")
    ax.set_ylabel(r"q90 $|\delta x|$ at layer $L$")
    ax.set_title(f"D = {D}, z = {z}")
    tidy_log_axis(ax)
    return ax


def plot_training(curves: pd.DataFrame, *, ax=None):
    """q90 |δx| on the monitor batch against Adam steps (the checks during training): one
    line per (D, T) of `curves` (columns D, T, seed, step, q90), the mean over seeds; filled
    markers where every seed passed criterion (a) at that check (column works)."""
    ax = axes_or_new(ax)
    cols = sequential(curves.D.unique())
    for (D, T), g in curves.groupby(["D", "T"], sort=True):
        m = g.groupby("step").agg(q90=("q90", "mean"), works=("works", "all"))
        ax.plot(m.index, m.q90, color=cols[D], label=f"D = {D}, T = {T}")
        ok = m[m.works]
        ax.scatter(ok.index, ok.q90, color=cols[D], s=16, zorder=3)
    ax.axhline(Q90_DX_MAX, color="0.4", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Adam steps (batch 256)")
    ax.set_ylabel(r"q90 $|\delta x|$ (monitor batch)")
    tidy_log_axis(ax)
    return ax


def plot_transfer(levels, curves: dict, *, ax=None):
    """The first trained layer's on-indicator as a function of its input's on-level s
    (`measure.indicator_transfer`): one line per recipe ({recipe: α̂ values}), the identity
    dotted."""
    ax = axes_or_new(ax)
    for name, vals in curves.items():
        ax.plot(
            levels, vals, color=color("recipe", name), marker=MARKERS.get(name, "o"), ms=4, label=label("recipe", name)
        )
    ax.plot([0, 1], [0, 1], ls=":", color="0.6", lw=0.8)
    ax.set_xlabel(r"on-level $s$ of the layer-1 state")
    ax.set_ylabel(r"$\hat\alpha$ after layer 2")
    return ax
