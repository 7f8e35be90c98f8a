"""Plots of the error-correction chapter: capacities against D, readout histograms, the
cascade, and E5's capacity and spurious fraction against its indicator redundancy. One
colour and marker per scheme (`SCHEME_STYLE`, from the book's table in
`superpose_lib.plots`)."""

from __future__ import annotations

import numpy as np

from ..core.checks import checked
from ..plots import COLORS, LABELS, PALETTE, THEORY_STYLE, axes_or_new, sequential

__all__ = [
    "SCHEME_STYLE",
    "plot_capacity_vs_D",
    "plot_inactive_readouts",
    "plot_cascade",
    "plot_redundancy",
    "plot_redundancy_rates",
]


# One colour and marker per scheme, in every figure of the chapter.
_MARK = {
    "baseline": "o",
    "E1": "s",
    "E2": "^",
    "E3": "P",
    "E4": "v",
    "E5": "D",
    "E5 affine": "d",
    "baseline affine": "h",
    "oracle": "*",
    "scaling": "X",
    "scaling_bound": "",
    "wide_rule": "p",
    "untied": "<",
    "E5 f=0.5": ">",
    "E5 tuned": "H",
}


#: (colour, marker) of every scheme; the colours are the book's (`plots.COLORS["scheme"]`).
SCHEME_STYLE = {k: (COLORS["scheme"][k], m) for k, m in _MARK.items()}


def _style(name: str):
    if name in SCHEME_STYLE:
        return SCHEME_STYLE[name]
    for k in sorted(SCHEME_STYLE, key=len, reverse=True):  # "E5 S_α=6" is E5's
        if name.startswith(k):
            return SCHEME_STYLE[k]
    raise ValueError(f"no style for scheme {name!r}: add it to plots.COLORS['scheme']")


def plot_capacity_vs_D(summary, *, ax=None, theory=None, names=None, labels=None):
    """Capacity x_max = T_max(d/D)² against D (log-log), one line per scheme (one criterion
    of `capacity.capacity_summary`: name, D, mean, low, high, censor): the mean over seeds
    with its 95 % t-interval; a censored mean drawn hollow at its bound (▲ a lower bound:
    some seed passed the largest load its assignment holds; ▼ an upper bound: some seed
    failed the search's smallest load). theory: rows name, D, x drawn dashed in the
    scheme's colour. names: the schemes to draw, in legend order (default: all, in the
    book's order)."""
    ax = axes_or_new(ax)
    rank = {k: i for i, k in enumerate(_MARK)}
    order = names if names is not None else sorted(summary["name"].unique(), key=lambda n: rank.get(n, len(rank)))
    for name in order:
        g = summary[summary["name"] == name].sort_values("D")
        if not len(g):
            continue
        c, m = _style(name)
        lab = (labels or LABELS["scheme"]).get(name, name)
        ax.plot(g["D"], g["mean"], "-", color=c, lw=1, alpha=0.7)
        ax.plot([], [], "-" + m, color=c, ms=5, label=lab)  # one legend entry per scheme
        meas = g[g["censor"] == ""]
        low = meas["low"].clip(lower=meas["mean"] * 1e-2)  # a log axis: an interval reaching 0 is drawn to mean/100
        ax.errorbar(
            meas["D"],
            meas["mean"],
            yerr=[meas["mean"] - low, meas["high"] - meas["mean"]],
            fmt=m,
            color=c,
            ms=5,
            capsize=2,
        )
        for cens, mk in (("above", "^"), ("some-above", "^"), ("below", "v"), ("some-below", "v")):
            h = g[g["censor"] == cens]
            if len(h):
                ax.plot(h["D"], h["mean"], mk, mfc="none", color=c, ms=7)
        if theory is not None:
            t = theory[theory["name"] == name].sort_values("D")
            if len(t):
                ax.plot(t["D"], t["x"], color=c, **THEORY_STYLE)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("D")
    ax.set_ylabel(r"capacity $T_{max}(d/D)^2$")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


@checked
def plot_inactive_readouts(alpha_by_layer: dict, S: int, *, ax=None, threshold: float = 0.25, bins=None):
    """Histogram (log counts) of inactive circuits' indicator readouts α̂_u at a few
    layers (alpha_by_layer: {layer: 1-d tensor or array}), with the quanta 1/S, 2/S
    (dotted) and the step threshold (dashed): at layer 1 the readouts sit exactly on the
    quanta k/S."""
    ax = axes_or_new(ax)
    bins = np.linspace(-0.3, 1.1, 113) if bins is None else bins
    for l, a in alpha_by_layer.items():
        a = a.numpy() if hasattr(a, "numpy") else np.asarray(a)
        ax.hist(a, bins=bins, histtype="step", log=True, label=f"layer {l}")
    for q in (1, 2):
        ax.axvline(q / S, color="grey", lw=0.8, ls=":")
    ax.axvline(threshold, color="k", lw=1, ls="--", label=f"step threshold {threshold:g}")
    ax.set_xlabel(r"inactive readout $\hat\alpha_u$")
    ax.set_ylabel("count")
    ax.legend(fontsize=7)
    return ax


@checked
def plot_cascade(runs: dict, *, ax=None, floor: float = 1e-6):
    """Per layer, the fraction of inactive circuits that read as on (circles) and that
    pass RiS's step (crosses), one colour per T (runs: {T: `scheme_run` result});
    zeros drawn at `floor` on the log axis."""
    ax = axes_or_new(ax)
    shades = sequential(list(runs))
    for T, r in runs.items():
        L = len(r["false_on"]) - 1
        c = shades[T]
        ax.semilogy(
            range(1, L + 1), np.maximum(r["false_on"][1:], floor), "o-", color=c, ms=3, label=f"false on, T={T}"
        )
        ax.semilogy(range(1, L + 1), np.maximum(r["leak"][1:], floor), "x:", color=c, label=f"passes step, T={T}")
    ax.set_xlabel("layer l")
    ax.set_ylabel("fraction of inactive circuits")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.25), ncol=2, frameon=False)
    return ax


def plot_redundancy(summary, rule: dict, *, ax=None):
    """E5's capacity on criterion (b) against its indicator redundancy S_α, one colour per
    width: measured (`correction.redundancy_summary` rows: S_alpha, D, mean, low, high; mean
    over seeds, 95 % t-interval) and the design rule's predicted boundary (rule: {D:
    `scale.indicator_redundancy`}; dashed, its choice circled). Legend below the axes."""
    ax = axes_or_new(ax)
    _, m = _style("E5")
    Ds = sorted({int(D) for D in summary["D"]} | {int(D) for D in rule})
    colours = dict(zip(Ds, (PALETTE[1], PALETTE[0], PALETTE[2], PALETTE[3])))
    for D in Ds:
        c = colours[D]
        g = summary[summary["D"] == D].sort_values("S_alpha")
        if len(g):
            ax.errorbar(
                g["S_alpha"],
                g["mean"],
                yerr=[g["mean"] - g["low"], g["high"] - g["mean"]],
                fmt=m + "-",
                color=c,
                ms=5,
                capsize=2,
                label=f"measured, D = {D}",
            )
        if D in rule:
            t = rule[D]["table"]
            ax.plot(list(t), list(t.values()), color=c, **THEORY_STYLE, label=f"rule's prediction, D = {D}")
            ax.plot([rule[D]["S"]], [rule[D]["x_star"]], "o", mfc="none", color=c, ms=9)
    ax.set_yscale("log")
    ax.set_xlabel(r"indicator redundancy $S_\alpha$")
    ax.set_ylabel(r"capacity $T_{max}(d/D)^2$")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    return ax


@checked
def plot_redundancy_rates(rows, *, ax=None, floor: float = 1e-6):
    """`scale.redundancy_rows` against S_α for each series (a "series" column, e.g. "fixed
    x" and "x_α ∝ 1/S_α²"): the measured layer-L spurious-on fraction (markers: mean over
    seeds, bars: their range) and the recursion's prediction (dashed); values below
    `floor` drawn at `floor` on the log axis. Legend below the axes."""
    ax = axes_or_new(ax)
    for (series, g), c, m in zip(rows.groupby("series", sort=False), (PALETTE[0], PALETTE[1]), ("o", "s")):
        st = g.groupby("S_alpha")["spuriousL"].agg(["mean", "min", "max"]).clip(lower=floor)
        yerr = np.stack([st["mean"] - st["min"], st["max"] - st["mean"]]).clip(min=0)
        ax.errorbar(st.index, st["mean"], yerr=yerr, fmt=m, color=c, ms=5, capsize=2, label=f"{series}: measured")
        th = g.groupby("S_alpha")["th_spuriousL"].mean().clip(lower=floor)
        ax.plot(th.index, th.values, color=c, **THEORY_STYLE, label=f"{series}: recursion")
    ax.set_yscale("log")
    ax.set_xlabel(r"indicator redundancy $S_\alpha$")
    ax.set_ylabel("spurious-on fraction, layer L")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    return ax
