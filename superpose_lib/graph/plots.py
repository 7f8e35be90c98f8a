"""Plots of the cross-circuit chapter: error against edges, the measured/theory ratio, gate
error rates, edge capacity, and error correction inside a circuit graph."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..core.checks import checked
from ..core.criteria import CRITERIA
from ..plots import MAX_WIDTH, axes_or_new, color, figure, label, legend_outside, marker, tidy_log_axis
from .correction import graph_correction_summary
from .working import THEORY_FLOOR

__all__ = [
    "plot_edges_pair",
    "plot_graph_correction_grid",
    "plot_edges",
    "plot_edge_ratio",
    "plot_gates",
    "plot_edge_capacity",
    "plot_graph_correction",
]


# ---- plots ---------------------------------------------------------------------------------
# Colours and labels come from the book's one table (superpose_lib.plots): z by colour,
# family (chain / random) by marker, theory in black. Legends are left to the caller
# (`legend=False`) when several panels share one, so that it can sit outside the data.
_FAMILY_MARKER = {"chain": "o", "random": "s", "gate": "^"}
_CRITERION_MARKER = {CRITERIA[0]: "o", CRITERIA[1]: "s"}


@checked
def plot_edges(df, ax=None, *, layer: int | None = None, legend: bool = True):
    """Active ⟨|δx|²⟩ at the last layer against |ℰ|(d/D)²: measured (markers by family, colour
    by z) and predicted (the per-sample theory, black bars). df: tidy rows of `graph_rows`
    for chains and random graphs (columns kind, z, D, ...). Returns the axes."""

    ax = axes_or_new(ax)
    layer = layer or int(df["layer"].max())
    d = df[(df.quantity == "active_x") & (df.layer == layer)]
    d = d.groupby(["kind", "z", "D", "x"], as_index=False)[["measured", "theory"]].mean()
    for (kind, z), g in d.groupby(["kind", "z"]):
        ax.scatter(
            g.x,
            g.measured,
            marker=_FAMILY_MARKER.get(kind, "^"),
            color=color("z", int(z)),
            alpha=0.85,
            s=22,
            label=f"{label('family', kind)}, z = {z}",
        )
    ax.scatter(d.x, d.theory, marker="_", color="k", s=60, label="prediction")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$|\mathcal{E}|\,(d/D)^2$")
    ax.set_ylabel(rf"active $\langle|\delta x|^2\rangle$, layer {layer}")
    tidy_log_axis(ax)
    if legend:
        legend_outside(ax, where="right")
    return ax


@checked
def plot_edge_ratio(df, ax=None, *, layer: int | None = None, legend: bool = True):
    """Measured / predicted active ⟨|δx|²⟩ at the last layer per network and seed against
    |ℰ|(d/D)² / x*, the load relative to the working regime's edge (df needs column x_star,
    `capacity.working_x`; markers by family, colour by z; dotted: the edge). Returns the axes."""

    ax = axes_or_new(ax)
    layer = layer or int(df["layer"].max())
    d = df[(df.quantity == "active_x") & (df.layer == layer)]
    for (kind, z), g in d.groupby(["kind", "z"]):
        ax.scatter(
            g.x / g.x_star,
            g.measured / g.theory,
            marker=_FAMILY_MARKER.get(kind, "^"),
            color=color("z", int(z)),
            alpha=0.75,
            s=18,
            label=f"{label('family', kind)}, z = {z}",
        )
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axvline(1.0, color="0.4", ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$|\mathcal{E}|\,(d/D)^2\,/\,x^*(D, z)$")
    ax.set_ylabel("measured / predicted")
    tidy_log_axis(ax)
    if legend:
        legend_outside(ax, where="right")
    return ax


@checked
def plot_gates(df, ax=None, *, floor: float = 1e-6, legend: bool = True):
    """Gate experiment: indicator error rate, active ⟨δα²⟩ and active ⟨|δx|²⟩ at layer 2
    against the bias collateral n_AND·S/M (AND thresholds on shared neurons); mean over
    seeds, zeros drawn at `floor`. Returns the axes."""

    ax = axes_or_new(ax)
    d = df[df.layer == 2]
    for k, q in enumerate(("flip_rate", "active_on", "active_x")):
        g = d[d.quantity == q].groupby("collateral", as_index=False)["measured"].mean()
        ax.plot(
            g.collateral,
            g.measured.clip(lower=floor),
            marker=marker(k),
            color=color("quantity", q),
            label=label("quantity", q),
        )
    ax.set_yscale("log")
    ax.set_xlabel(r"AND gates $\times S/M$ (expected shifted neighbours per neuron)")
    ax.set_ylabel("layer 2 (gate outputs)")
    tidy_log_axis(ax)
    if legend:
        legend_outside(ax, where="bottom", ncol=1)
    return ax


@checked
def plot_edge_capacity(summary, ax=None, *, legend: bool = True):
    """The edge capacity in |ℰ|(d/D)² (`working.edge_capacity_summary`'s summary), one row
    per criterion, z and D: filled, the graphs' (mean over seeds with its 95 % interval;
    colour by z, circle: works, square: indicators hold); hollow, independent circuits'
    capacity in T(d/D)² on the same criterion (where given); black tick, the theory's start.
    Censored-below rows show no point. Returns the axes."""
    ax = axes_or_new(ax)
    rows = summary.reset_index(drop=True)
    y = -rows.index.to_numpy(dtype=float) - 0.6 * rows.criterion.map({c: i for i, c in enumerate(CRITERIA)}).to_numpy()
    for (crit, z), g in rows.groupby(["criterion", "z"], sort=False):
        c, m, yy = color("z", int(z)), _CRITERION_MARKER[crit], y[g.index]
        ok = (g.censor != "below").to_numpy()
        ax.errorbar(
            g["mean"][ok],
            yy[ok],
            xerr=[(g["mean"] - g.low)[ok], (g.high - g["mean"])[ok]],
            color=c,
            marker=m,
            ls="none",
            ms=5,
            capsize=2,
            label=f"z = {z}, {crit}",
        )
        if "indep" in g:
            ax.scatter(g.indep, yy, marker=m, facecolors="none", edgecolors=c, s=40, zorder=3)
        th = g.theory > THEORY_FLOOR
        ax.scatter(g.theory[th], yy[th.to_numpy()], marker="|", color="k", s=80, zorder=4)
    if "indep" in rows:
        ax.scatter([], [], marker="o", facecolors="none", edgecolors="0.3", label="independent circuits")
    ax.scatter([], [], marker="|", color="k", s=80, label="theory")
    ax.set_yticks(
        y, [f"({'a' if r.criterion == CRITERIA[0] else 'b'}) z = {int(r.z)}, D = {int(r.D)}" for r in rows.itertuples()]
    )
    ax.set_xscale("log")
    ax.set_xlabel(r"capacity $|\mathcal{E}|\,(d/D)^2$")
    tidy_log_axis(ax)
    if legend:
        legend_outside(ax, where="right")
    return ax


# ---- plot -----------------------------------------------------------------------------------
# Colours and labels from the book's one table (`plots`, kind "scheme"); one marker per scheme.
_SCHEME_MARKER = {"baseline": "o", "E1": "s", "E5": "D"}


@checked
def plot_graph_correction(
    df,
    quantity: str = "false_on",
    ax=None,
    *,
    layer: int | None = None,
    z: int | None = None,
    D: int | None = None,
    floor: float = 1e-5,
    legend: bool = True,
    labels: dict | None = None,
):
    """`quantity` at one layer (default: the last) against T(d/D)², one line per scheme name
    (colour and marker from `plots`' "scheme" table), mean over seeds with 95% t-intervals,
    for one z and one D (None: every one); values below `floor` (zeros on a log axis) drawn
    at `floor`. labels: {name: legend text}. Returns the axes."""

    ax = axes_or_new(ax)
    d = df if z is None else df[df["z"] == z]
    d = d if D is None else d[d["D"] == D]
    summ = graph_correction_summary(d, quantity, layer=layer)
    for name, g in summ.groupby("name", sort=False):
        g = g.sort_values("x")
        m = g["mean"].clip(lower=floor)
        lo = (g["mean"] - g["low"]).clip(lower=0)
        hi = (g["high"] - g["mean"]).clip(lower=0)
        lo = np.minimum(lo, m - floor * 0.999)  # keep the bar on the log axis
        ax.errorbar(
            g["x"],
            m,
            yerr=[lo, hi],
            color=color("scheme", name),
            marker=_SCHEME_MARKER.get(name, "^"),
            ms=4,
            capsize=2,
            lw=1.2,
            label=(labels or {}).get(name, label("scheme", name)),
        )
    ax.set_yscale("log")  # the load axis stays linear: the grid spans a factor of a few
    ax.set_xlabel(r"$T\,(d/D)^2$")
    ax.set_ylabel(label("quantity", quantity))
    tidy_log_axis(ax)
    if legend:
        legend_outside(ax, where="right")
    return ax


@checked
def plot_graph_correction_grid(df, z_list, *, D: int, on_rate: float, axes=None):
    """One row per z at width D: the last-layer false-on rate (left, dotted: the budget
    `on_rate`) and the worst active |δx| (right, drawn from 10⁻²) against the load, one
    legend below. Returns the axes [len(z_list), 2]."""
    if axes is None:
        _, axes = figure(2, len(z_list), panel_height=2.5)
    axes = np.atleast_2d(axes)
    for i, zz in enumerate(z_list):
        plot_graph_correction(df, "false_on", axes[i, 0], z=zz, D=D, legend=False)
        plot_graph_correction(df, "worst_dx", axes[i, 1], z=zz, D=D, legend=False, floor=1e-2)
        axes[i, 0].set_title(f"z = {zz}", loc="left")
        axes[i, 0].axhline(on_rate, color="0.5", ls=":", lw=0.8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].figure.legend(handles, labels, loc="outside lower center", ncol=len(handles))
    return axes


@checked
def plot_edges_pair(df, *, axes=None):
    """Two panels of the chain and random-graph sweep: the last layer's active error against
    |E|(d/D)² (`plot_edges`) and measured/predicted against the load relative to the working
    regime's edge (`plot_edge_ratio`; df needs column x_star), one legend below. Returns the
    two axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.6), layout="constrained")
    plot_edges(df, axes[0], legend=False)
    plot_edge_ratio(df, axes[1], legend=False)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].figure.legend(handles, labels, loc="outside lower center", ncol=len(handles))
    return axes
