"""Plots of the construction chapter: weight blocks, the mixing zoom, the step, single
trajectories and errors per layer, and the chapter's figures of several panels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..core.checks import checked
from ..plots import (
    MAX_WIDTH,
    THEORY_STYLE,
    axes_or_new,
    color,
    label,
    legend_outside,
    tidy_log_axis,
)

__all__ = [
    "plot_weight_blocks",
    "plot_mixing_zoom",
    "plot_step",
    "plot_trajectory",
    "plot_errors_per_layer",
    "plot_weights",
    "plot_trajectories",
    "plot_error_grid",
]


@checked
def plot_weight_blocks(W, d: int = 4, ax=None, *, title=None):
    """A dense weight matrix W^l (D × D, neuron i·M + n) as an image, with the d × d block
    grid drawn: block (i, j) is w̄_ij 𝒲^l plus the circuits' Δw_t,ij corrections."""
    ax = axes_or_new(ax)
    W = torch.as_tensor(W).detach().cpu().double().numpy()
    D = W.shape[0]
    M = D // d
    vmax = float(np.quantile(np.abs(W), 0.999)) or 1.0
    im = ax.imshow(W, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    for k in range(1, d):
        ax.axhline(k * M - 0.5, color="k", lw=0.6)
        ax.axvline(k * M - 0.5, color="k", lw=0.6)
    ticks = [(k + 0.5) * M for k in range(d)]
    ax.set_xticks(ticks, [f"block {k}" for k in range(d)])
    ax.set_yticks(ticks, [f"block {k}" for k in range(d)])
    ax.set_xlabel("input neuron (layer l − 1)")
    ax.set_ylabel("output neuron (layer l)")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label="weight")
    return ax


@checked
def plot_mixing_zoom(Wc, n: int = 40, ax=None, *, S=None):
    """The top-left n × n corner of 𝒲^l: 1/S where a circuit connects two neurons, −χ elsewhere."""
    ax = axes_or_new(ax)
    Z = torch.as_tensor(Wc).detach().cpu().double().numpy()[:n, :n]
    vmax = float(np.abs(Z).max()) or 1.0
    im = ax.imshow(Z, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xlabel("neuron m (layer l − 1)")
    ax.set_ylabel("neuron n (layer l)")
    label = r"$\mathcal{W}_{nm}$" + (f" (1/S = {1 / S:.3f})" if S else "")
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=label)
    return ax


def plot_step(ax=None):
    """The on-indicator step: readout α ↦ ReLU(2α − 0.5) − ReLU(2α − 1.5) (one layer of a
    small circuit's first two neurons), against the identity; |δα| < 0.25 is removed."""
    ax = axes_or_new(ax)
    a = np.linspace(-0.5, 1.5, 801)
    step = np.maximum(2 * a - 0.5, 0) - np.maximum(2 * a - 1.5, 0)
    ax.plot(
        a,
        step,
        lw=2,
        color=color("component", "alpha"),
        label=r"$\mathrm{ReLU}(2\alpha-\frac{1}{2})-\mathrm{ReLU}(2\alpha-\frac{3}{2})$",
    )
    ax.plot(a, a, "k:", lw=1, label="identity")
    for lo, hi in ((-0.5, 0.25), (0.75, 1.5)):
        ax.axvspan(lo, hi, color="0.9", zorder=0)
    ax.set_xlabel(r"on-indicator readout $\hat\alpha$ (layer $l-1$)")
    ax.set_ylabel(r"on-indicator (layer $l$)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the axes, off the data
    return ax


def plot_trajectory(true_x, est_x, ax=None, *, true_on=None, est_on=None, legend=True):
    """One active circuit across layers: the components x_0, x_1 of its rotating vector (and,
    if given, its on-indicator α) against the layer. Truth: solid lines with circles (the
    small circuit run on its own); the large network's readout: crosses on dashed lines.
    true_x, est_x: [L + 1, 2]; true_on, est_on: [L + 1]."""
    ax = axes_or_new(ax)
    tx = torch.as_tensor(true_x).cpu().numpy()
    ex = torch.as_tensor(est_x).cpu().numpy()
    layers = np.arange(tx.shape[0])
    series = [(tx[:, 0], ex[:, 0], "x0"), (tx[:, 1], ex[:, 1], "x1")]
    if true_on is not None and est_on is not None:
        series.append((torch.as_tensor(true_on).cpu().numpy(), torch.as_tensor(est_on).cpu().numpy(), "alpha"))
    for t, e, key in series:
        c, name = color("component", key), label("component", key)
        ax.plot(layers, t, "o-", color=c, ms=4, lw=1.2, label=f"{name} true")
        ax.plot(layers, e, "x--", color=c, ms=6, lw=1, label=f"{name} readout")
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.set_xticks(layers)
    ax.set_xlabel("layer l")
    if legend:
        legend_outside(ax, ncol=len(series))
    return ax


@checked
def plot_errors_per_layer(df, ax=None, *, quantity="active_x", stat="mean", theory=True, floor=1e-8):
    """Error per layer for each z: the mean over seeds, error bars from the smallest to the
    largest seed; dashed lines: the RiS theory (when `theory` and stat == "mean").

    df: tidy rows with columns z, seed, layer, quantity, `stat` and theory (as made by
    `sweep(rotation_error_rows, ...)`). Values below `floor` (exact up to round-off) are drawn at `floor` (log axis).
    """
    ax = axes_or_new(ax)
    d = df[df["quantity"] == quantity]
    for k, (z, g) in enumerate(d.groupby("z")):
        c = color("z", int(z))
        s = g.groupby("layer")[stat].agg(["mean", "min", "max"]).clip(lower=floor)
        yerr = np.stack([s["mean"] - s["min"], s["max"] - s["mean"]]).clip(min=0)
        ax.errorbar(s.index, s["mean"], yerr=yerr, fmt="o-", color=c, ms=4, capsize=3, label=f"z = {z}")
        if theory and stat == "mean":
            th = g.groupby("layer")["theory"].mean()
            if (th > 0).any():
                ax.plot(th.index, th.clip(lower=floor), color=c, **THEORY_STYLE)
    ax.set_yscale("log")
    if (d[stat] <= floor).any():
        ax.set_ylim(bottom=floor / 3)
    ax.set_xlabel("layer l")
    ax.set_xticks(sorted(d["layer"].unique()))
    ax.set_ylabel(f"{stat} {label('quantity', quantity)}")
    tidy_log_axis(ax)
    return ax


@checked
def plot_weights(W_small, Wc, *, d: int, S: int, small: tuple, D: int, n: int = 40, axes=None):
    """Two panels: the dense W^2 of a small network (`small` = (D, T, S), for the title) with
    its d × d blocks, and the top-left n × n corner of 𝒲^2 (`Wc`) of the network of D neurons
    per layer with redundancy S. Returns the axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(7.5, 3.6), layout="constrained")
    D_small, T_small, S_small = small
    plot_weight_blocks(W_small, d=d, ax=axes[0], title=f"$W^2$, D = {D_small}, T = {T_small}, S = {S_small}")
    axes[0].tick_params(labelsize=8)
    plot_mixing_zoom(Wc, n=n, ax=axes[1], S=S)
    axes[1].set_title(rf"$\mathcal{{W}}^2$, D = {D}: first {n} neurons")
    return axes


def plot_trajectories(samples, axes=None):
    """One row per z, one panel per sample: the first active circuit of each sample against
    the layer (`plot_trajectory`), one legend below. samples: `trajectory_samples`'s list.
    Returns the axes [len(samples), n]."""
    n = samples[0]["active"].shape[0]
    if axes is None:
        _, axes = plt.subplots(
            len(samples),
            n,
            figsize=(MAX_WIDTH, 1.9 * len(samples) + 0.6),
            squeeze=False,
            sharex=True,
            sharey=True,
            layout="constrained",
        )
    for row, s in zip(axes, samples):
        z, per = s["z"], s["per"]
        for b, ax in enumerate(row):
            plot_trajectory(
                per["true_x"][:, b, 0],
                per["est_x"][:, b, 0],
                ax=ax,
                true_on=per["true_on"][:, b, 0],
                est_on=per["est_on"][:, b, 0],
                legend=False,
            )
            ax.set_title(f"z = {z}: circuit {int(s['active'][b, 0])}")
            ax.set_xlabel("layer l" if z == samples[-1]["z"] else "")
            ax.set_ylabel("value" if b == 0 else "")
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][0].figure.legend(handles, labels, loc="outside lower center", ncol=3)
    return axes


def plot_error_grid(
    df,
    stat: str = "mean",
    theory: bool = True,
    axes=None,
    quantities=("active_x", "inactive_x", "active_on", "inactive_on"),
):
    """The four quantities as a 2 × 2 grid of `plot_errors_per_layer` (log y in every panel),
    one legend below (with "RiS theory" when `theory`). Returns the axes [2, 2]."""
    if axes is None:
        _, axes = plt.subplots(2, 2, figsize=(MAX_WIDTH, 5.6), sharex=True, layout="constrained")
    for ax, q in zip(np.asarray(axes).flat, quantities):
        plot_errors_per_layer(df, ax=ax, quantity=q, stat=stat, theory=theory)
        ax.set_title(label("quantity", q))
        ax.set_ylabel(stat)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if theory:
        handles.append(plt.Line2D([], [], color="k", **THEORY_STYLE))
        labels.append("RiS theory")
    axes[0, 0].figure.legend(handles, labels, loc="outside lower center", ncol=len(handles))
    return axes
