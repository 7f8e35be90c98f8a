"""Plots of the error-correction chapter: capacities against D, fixed-load rates, readout
histograms, the cascade and the redundancy sweep. One colour and marker per scheme family
(`SCHEME_STYLE`, from the book's table in `superpose_lib.plots`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..core.checks import checked
from ..plots import COLORS, LABELS, PALETTE, THEORY_STYLE, sequential

__all__ = [
    "SCHEME_STYLE",
    "plot_capacity_vs_D",
    "plot_fixed_x",
    "plot_inactive_readouts",
    "plot_cascade",
    "plot_redundancy",
]


# ---- plots -------------------------------------------------------------------------------
# One colour and marker per scheme family, in every figure of the chapter.
_MARK = {"baseline": "o", "E1": "s", "E2": "^", "E3": "P", "E4": "v", "E5": "D", "E5 affine": "d", "baseline affine": "h",
         "oracle": "*", "scaling": "X", "wide_rule": "p"}


#: (colour, marker) of every scheme family; the colours are the book's (`plots.COLORS["scheme"]`).
SCHEME_STYLE = {k: (COLORS["scheme"][k], m) for k, m in _MARK.items()}


def _style(name: str):
    if name in SCHEME_STYLE:
        return SCHEME_STYLE[name]
    for k in sorted(SCHEME_STYLE, key=len, reverse=True):  # "E5 f=0.6 …" is E5's
        if name.startswith(k):
            return SCHEME_STYLE[k]
    raise ValueError(f"no style for scheme {name!r}: add it to plots.COLORS['scheme']")


@checked
def plot_capacity_vs_D(summary, *, criterion: str, z: int, ax=None, labels=None, x_min=None, x_max=None):
    """Capacity x_max = T_max(d/D)² against D (log-log), one line per scheme, 95%
    t-intervals; censored points drawn hollow at their bound with an arrow-like marker
    (▲ at the grid's top: a lower bound; ▼ at the grid's first point: not reached)."""

    if ax is None:
        _, ax = plt.subplots()
    s = summary[(summary["criterion"] == criterion) & (summary["z"] == z)]
    rank = {k: i for i, k in enumerate(_MARK)}  # one legend order in every figure: the table's
    for name, g in sorted(s.groupby("name", sort=False), key=lambda kv: rank.get(kv[0], len(rank))):
        g = g.sort_values("D")
        c, m = _style(name)
        lab = (labels or LABELS["scheme"]).get(name, name)
        meas = g[~g["censor"].isin(["below", "above", "capped"])]
        y = g["mean"].where(g["censor"] != "below", x_min if x_min else float("nan"))
        ax.plot(g["D"], y, "-", color=c, lw=1, alpha=0.7)
        ax.plot([], [], "-" + m, color=c, ms=5, label=lab)  # one legend entry per scheme
        low = meas["low"].clip(lower=meas["mean"] * 1e-2)  # a log axis: a t-interval reaching 0 is drawn to mean/100
        ax.errorbar(meas["D"], meas["mean"], yerr=[meas["mean"] - low, meas["high"] - meas["mean"]],
                    fmt=m, color=c, ms=5, capsize=2)
        up = g[g["censor"].isin(["above", "capped"])]
        if len(up):
            ax.plot(up["D"], up["mean"], "^", mfc="none", color=c, ms=7)
        dn = g[g["censor"] == "below"]
        if len(dn) and x_min:
            ax.plot(dn["D"], [x_min] * len(dn), "v", mfc="none", color=c, ms=7)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("D")
    ax.set_ylabel(r"capacity $T_{max}(d/D)^2$")
    if x_min:
        ax.axhline(x_min, color="0.8", lw=0.8, ls=":")
    if x_max:
        ax.axhline(x_max, color="0.8", lw=0.8, ls=":")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


@checked
def plot_fixed_x(df, quantity: str, *, ax=None, labels=None, floor: float = 1e-6):
    """A per-layer quantity at one fixed x against D (log-log): one line per scheme,
    mean over seeds with min–max bars; values below `floor` drawn at `floor`. df: columns
    name, D, seed, value."""

    if ax is None:
        _, ax = plt.subplots()
    for name, g in df.groupby("name", sort=False):
        c, m = _style(name)
        s = g.groupby("D")["value"].agg(["mean", "min", "max"]).clip(lower=floor)
        yerr = np.stack([s["mean"] - s["min"], s["max"] - s["mean"]]).clip(min=0)
        ax.errorbar(s.index, s["mean"], yerr=yerr, fmt=m + "-", color=c, ms=5, capsize=2,
                    label=(labels or LABELS["scheme"]).get(name, name))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("D")
    ax.set_ylabel(quantity)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


@checked
def plot_inactive_readouts(alpha_by_layer: dict, S: int, *, ax=None, threshold: float = 0.25, bins=None):
    """Histogram (log counts) of inactive circuits' indicator readouts α̂_u at a few
    layers (alpha_by_layer: {layer: 1-d tensor or array}), with the quanta 1/S, 2/S
    (dotted) and the step threshold (dashed): at layer 1 the readouts sit exactly on the
    quanta k/S."""

    if ax is None:
        _, ax = plt.subplots()
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

    if ax is None:
        _, ax = plt.subplots()

    shades = sequential(list(runs))
    for T, r in runs.items():
        L = len(r["false_on"]) - 1
        c = shades[T]
        ax.semilogy(range(1, L + 1), np.maximum(r["false_on"][1:], floor), "o-", color=c, ms=3, label=f"false on, T={T}")
        ax.semilogy(range(1, L + 1), np.maximum(r["leak"][1:], floor), "x:", color=c, label=f"passes step, T={T}")
    ax.set_xlabel("layer l")
    ax.set_ylabel("fraction of inactive circuits")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.25), ncol=2, frameon=False)
    return ax


@checked
def plot_redundancy(df, *, ax=None, floor: float = 1e-6):
    """`redundancy_rows` against S_α (mean over seeds, min–max bars): the measured layer-2
    spurious-on fraction beside the design rule's prediction (dashed), and the false-on
    rate at layer L; values below `floor` drawn at `floor` on the log axis."""


    if ax is None:
        _, ax = plt.subplots()
    g = df.groupby("S_alpha")
    for col, lab, c, m in (("spurious2", "spurious-on fraction, layer 2", PALETTE[0], "o"),
                           ("false_on", "false-on rate, layer L", PALETTE[1], "s")):
        st = g[col].agg(["mean", "min", "max"]).clip(lower=floor)
        yerr = np.stack([st["mean"] - st["min"], st["max"] - st["mean"]]).clip(min=0)
        ax.errorbar(st.index, st["mean"], yerr=yerr, fmt=m + "-", color=c, ms=5, capsize=2, label=lab)
    th = g["p_theory"].mean().clip(lower=floor)
    ax.plot(th.index, th.values, color=PALETTE[0], **THEORY_STYLE, label="design rule, layer 2")
    ax.set_yscale("log")
    ax.set_xlabel(r"indicator redundancy $S_\alpha$")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax
