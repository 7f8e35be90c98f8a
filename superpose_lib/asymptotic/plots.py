"""Figures of the chapter "Does it work asymptotically?" (colours and markers of the
schemes from the book's table, `correction.plots.SCHEME_STYLE`)."""

from __future__ import annotations

from matplotlib.ticker import LogFormatterSciNotation

from ..correction.plots import SCHEME_STYLE
from ..plots import THEORY_STYLE, axes_or_new, sequential

__all__ = ["plot_capacities", "plot_design", "plot_mechanism", "plot_layout"]


def plot_capacities(summary, *, theory=None, ax=None):
    """Capacity x* = T(d/D)² against D per scheme (mean over seeds, 95 % t-interval as
    error bars; censored values as open markers), and the rule's predicted x* (dashed)."""
    ax = axes_or_new(ax)
    for name, g in summary.groupby("name", sort=False):
        colour, marker = SCHEME_STYLE.get(name, ("#777777", "o"))
        g = g.sort_values("D")
        ok = g["censor"] == ""
        ax.errorbar(g["D"][ok], g["mean"][ok], yerr=[g["mean"][ok] - g["low"][ok], g["high"][ok] - g["mean"][ok]],
                    color=colour, marker=marker, ms=5, capsize=2, lw=1.2, label=name)
        if (~ok).any():
            ax.plot(g["D"][~ok], g["mean"][~ok], ls="none", marker=marker, mfc="none", color=colour, ms=7)
    if theory is not None:
        ax.plot(theory["D"], theory["x_star"], **THEORY_STYLE, color=SCHEME_STYLE["scaling"][0],
                label="scaling: rule's prediction")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("D (neurons per layer)")
    ax.set_ylabel("capacity T(d/D)²")
    ax.yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 0.5)))  # < 2 decades
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_design(table, *, ax=None):
    """The predicted boundary of every fixed S_α (one line each, lighter for smaller S_α)
    and the rule's envelope, against D."""
    ax = axes_or_new(ax)
    fixed = table[table["kind"] == "fixed"]
    Ss = sorted(fixed["S_alpha"].unique())
    colours = sequential(Ss)
    for S in Ss:
        colour = colours[S]
        g = fixed[fixed["S_alpha"] == S]
        ax.plot(g["D"], g["x_star"], color=colour, marker=".", label=f"S_α = {S} (θ = {g['theta'].iloc[0]:g})")
    rule = table[table["kind"] == "rule"]
    ax.plot(rule["D"], rule["x_star"], color=SCHEME_STYLE["scaling"][0], lw=2.2, marker=SCHEME_STYLE["scaling"][1],
            label="the rule (best S_α, θ per D)")
    for _, r in rule.iterrows():
        ax.annotate(f"{int(r['S_alpha'])}", (r["D"], r["x_star"]), textcoords="offset points", xytext=(0, 6),
                    fontsize=7, ha="center")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("D (neurons per layer)")
    ax.set_ylabel("predicted boundary T(d/D)²")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_mechanism(rows, *, ax=None):
    """Measured (markers, one per seed) and predicted (line) layer-2 spurious-on fraction
    and layer-L false-on rate against S_α at x = c/S_α²; zeros are drawn at the axis floor."""
    ax = axes_or_new(ax)
    floor = 1e-7
    for col, th, colour, lab in (("spurious2", "spurious2_theory", SCHEME_STYLE["scaling"][0], "spurious-on, layer 2"),
                                 ("false_on", "false_on_theory", SCHEME_STYLE["E5"][0], "false-on rate, layer L")):
        for D, g in rows.groupby("D"):
            ax.plot(g["S_alpha"], g[col].clip(lower=floor), ls="none", marker="o" if D == rows["D"].min() else "s",
                    color=colour, mfc="none", label=f"{lab}, D = {D}: measured")
            m = g.groupby("S_alpha")[th].mean()
            ax.plot(m.index, m.clip(lower=floor), color=colour, ls="--" if D == rows["D"].min() else ":",
                    label=f"{lab}, D = {D}: recursion")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor / 2)
    ax.set_xlabel("indicator redundancy S_α (load x = c/S_α²)")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_layout(rows, *, ax=None):
    """The payload's layer-L q90 |δx| against D at one load (`measure.layout_rows`, mean over
    seeds with its range as error bars): RiS's oracle, the scaling construction's own oracle
    (its layout, unused neurons switched off) and the construction itself."""
    ax = axes_or_new(ax)
    series = (("q90_ris_oracle", "oracle", "RiS's oracle (tied α)"),
              ("q90_own_oracle", "E5", "scaling layout, own oracle (untied α)"),
              ("q90", "scaling", "scaling construction"))
    for col, style, lab in series:
        colour, marker = SCHEME_STYLE[style]
        g = rows.groupby("D")[col].agg(["mean", "min", "max"])
        ax.errorbar(g.index, g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]], color=colour,
                    marker=marker, ms=5, capsize=2, lw=1.2, label=lab)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("D (neurons per layer)")
    ax.set_ylabel("payload q90 |δx| at layer L")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax
