"""Figures of the chapter "Does it work asymptotically?" (colours, markers and labels of the
schemes from the book's table: `correction.plots.SCHEME_STYLE`, `plots.LABELS`)."""

from __future__ import annotations

import math

from matplotlib.ticker import LogFormatterSciNotation

from ..correction.plots import SCHEME_STYLE
from ..plots import LABELS, PALETTE, THEORY_STYLE, axes_or_new

__all__ = ["plot_theory", "plot_gate_rate", "plot_payload_ratio", "plot_payload", "plot_capacities"]


def _label(name: str) -> str:
    return LABELS["scheme"].get(name, name)


def _log_axes(ax, ylabel: str):
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("D (neurons per layer)")
    ax.set_ylabel(ylabel)
    ax.yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def plot_theory(table, *, ax=None):
    """The theories' predicted boundaries on criterion (b) against D, one line per
    construction (`measure.theory_table`); the switch-off construction's points carry the
    rule's register redundancy S_r, and the bound on every switch-off construction
    ("scaling_bound") is dashed."""
    ax = axes_or_new(ax)
    for name, g in table.groupby("name", sort=False):
        colour, marker = SCHEME_STYLE.get(name, ("#777777", "o"))
        g = g.sort_values("D")
        if name == "scaling_bound":  # a bound, not a design: dashed, no markers
            ax.plot(g["D"], g["x_star"], color=colour, ls="--", lw=1.0, label=_label(name))
            continue
        ax.plot(g["D"], g["x_star"], color=colour, marker=marker, ms=4, lw=1.4, label=_label(name))
        if name == "scaling":
            for _, r in g.iterrows():
                ax.annotate(
                    f"{int(r['S'])}",
                    (r["D"], r["x_star"]),
                    textcoords="offset points",
                    xytext=(0, 5),
                    fontsize=7,
                    ha="center",
                    color=colour,
                )
    _log_axes(ax, "predicted boundary T(d/D)²")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def _by_D_styles(rows):
    Ds = sorted(rows["D"].unique())
    return {D: (c, m) for D, c, m in zip(Ds, [PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[3]], "osD^")}


def plot_gate_rate(rows, *, ax=None):
    """The false-gate rate against the register redundancy S_r (`measure.mechanism_rows`):
    measured (markers; one per seed, a zero drawn at the resolution floor 1/n_gates) and the
    theory's P(Poisson(μ) ≥ S_r) (lines), one colour per D."""
    ax = axes_or_new(ax)
    for D, (colour, marker) in _by_D_styles(rows).items():
        g = rows[rows["D"] == D]
        floor = 1.0 / g["n_gates"]
        ax.plot(
            g["S_r"],
            g["p_gate"].where(g["p_gate"] > 0, floor),
            ls="none",
            marker=marker,
            mfc="none",
            color=colour,
            label=f"D = {D}: measured",
        )
        m = g.groupby("S_r")["p_gate_theory"].mean()
        ax.plot(m.index, m, color=colour, **THEORY_STYLE, label=f"D = {D}: theory")
    ax.set_yscale("log")
    ax.set_xlabel("register redundancy $S_r$ (load $x_M = c/S_r$)")
    ax.set_ylabel("false-gate rate")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_payload_ratio(rows, *, ax=None):
    """The payload's q90 |δx| over its own oracle's against the theory's √variance_ratio,
    one marker per network (`measure.mechanism_rows`), with the diagonal over their range.
    A network past the theory's boundary (y ≥ 1: no finite prediction) has no place on the
    x axis and is left out."""
    ax = axes_or_new(ax)
    styles = _by_D_styles(rows)  # from every network, so that each D keeps the left panel's style
    rows = rows[rows["ratio_theory"].map(math.isfinite)]
    for D, (colour, marker) in styles.items():
        g = rows[rows["D"] == D]
        ax.plot(g["ratio_theory"], g["ratio"], ls="none", marker=marker, mfc="none", color=colour, label=f"D = {D}")
    lo = min(1.0, rows["ratio"].min())
    hi = max(rows["ratio_theory"].max(), rows["ratio"].max())
    ax.plot([lo, hi], [lo, hi], color="#777777", lw=0.8, ls=":", label="equal")
    ax.axhline(1.5, color="#777777", lw=0.8, ls="--", label="criterion (b): 1.5")
    ax.set_xlabel("theory: $\\sqrt{\\mathrm{variance\\ ratio}}$")
    ax.set_ylabel("measured q90 |δx| / own oracle's")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_payload(rows, *, ax=None):
    """The payload's layer-L q90 |δx| at one load against D (`measure.payload_rows`; mean over
    seeds, their range as error bars): RiS's oracle, the switch-off construction's own oracle
    (its simplex payload with perfect gates) and the construction itself."""
    ax = axes_or_new(ax)
    series = (
        ("q90_ris", "oracle", "RiS's oracle (RiS's payload, unused neurons off)"),
        ("q90_own", "E1", "switch-off, own oracle (simplex payload, perfect gates)"),
        ("q90", "scaling", _label("scaling")),
    )
    for col, style, lab in series:
        colour, marker = SCHEME_STYLE[style]
        g = rows.groupby("D")[col].agg(["mean", "min", "max"])
        ax.errorbar(
            g.index,
            g["mean"],
            yerr=[g["mean"] - g["min"], g["max"] - g["mean"]],
            color=colour,
            marker=marker,
            ms=5,
            capsize=2,
            lw=1.2,
            label=lab,
        )
    ax.axhline(0.25, color="#777777", lw=0.8, ls="--", label="criterion (a): 1/4")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("D (neurons per layer)")
    ax.set_ylabel("payload q90 |δx| at layer L")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_capacities(summary, *, theory=None, ax=None):
    """Capacity T(d/D)² against D per scheme on one criterion (mean over seeds, 95 %
    t-interval as error bars; censored values as open markers: "below" at the search's
    floor, "above" at its top), and the theory's prediction for the switch-off construction
    (dashed)."""
    ax = axes_or_new(ax)
    for name, g in summary.groupby("name", sort=False):
        colour, marker = SCHEME_STYLE.get(name, ("#777777", "o"))
        g = g.sort_values("D")
        ok = g["censor"] == ""
        ax.errorbar(
            g["D"][ok],
            g["mean"][ok],
            yerr=[g["mean"][ok] - g["low"][ok], g["high"][ok] - g["mean"][ok]],
            color=colour,
            marker=marker,
            ms=5,
            capsize=2,
            lw=1.2,
            label=_label(name),
        )
        if (~ok).any():
            ax.plot(
                g["D"][~ok],
                g["mean"][~ok],
                ls="none",
                marker=marker,
                mfc="none",
                color=colour,
                ms=7,
                label=None if ok.any() else _label(name) + " (censored)",
            )
    if theory is not None:
        ax.plot(
            theory["D"], theory["x_star"], **THEORY_STYLE, color=SCHEME_STYLE["scaling"][0], label="switch-off: theory"
        )
    _log_axes(ax, "capacity T(d/D)²")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax
