"""Plots of the gist chapter: attention kernels, probe tables, selectivity, gating errors,
routing, the toy's influence curves and the language model's training."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..core.checks import checked

__all__ = [
    "plot_kernels",
    "plot_probe_table",
    "plot_selectivity",
    "plot_gating_errors",
    "plot_routing",
    "plot_influence",
    "plot_lm_training",
    "plot_not_computed",
]


# ----------------------------------------------------------------------------- plots
@checked
def plot_kernels(kernels: dict, ax=None, *, max_heads: int | None = None):
    """Attention mass against distance, one line per head, one colour per model.
    kernels: {label: [H, K] tensor}."""

    ax = ax or plt.subplots(figsize=(6.5, 3.5))[1]
    for (label, ker), color in zip(kernels.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        ker = torch.as_tensor(ker)[: max_heads]
        k = np.arange(ker.shape[1])
        for h, row in enumerate(ker):
            ax.plot(k, row.numpy(), color=color, alpha=0.6, lw=1, label=label if h == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("distance k (tokens back)")
    ax.set_ylabel("mean attention")
    ax.legend(frameon=False)
    return ax


def plot_probe_table(df, ax=None, *, value="bacc", lo="lo", hi="hi", row="features", col="task", chance=None):
    """Grouped bars of probe balanced accuracy with CI whiskers: df has one row per
    (features, task)."""

    ax = ax or plt.subplots(figsize=(7.5, 3.8))[1]
    rows, cols = list(dict.fromkeys(df[row])), list(dict.fromkeys(df[col]))
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        sub = df[df[row] == r].set_index(col).reindex(cols)
        x = np.arange(len(cols)) + (i - (len(rows) - 1) / 2) * width
        err = np.vstack([sub[value] - sub[lo], sub[hi] - sub[value]])
        ax.bar(x, sub[value], width, yerr=err, capsize=2, label=r)
    if chance is not None:
        for j, c in enumerate(cols):
            ax.hlines(chance[c] if isinstance(chance, dict) else chance, j - 0.45, j + 0.45, colors="k", linestyles=":")
    ax.set_xticks(np.arange(len(cols)), cols)
    ax.set_ylabel("balanced accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside the bars
    return ax


def plot_selectivity(pairs: dict, ax=None, *, what: str = "topic"):
    """η² of every MLP0 neuron with attention (y) against without it (x), one colour per
    model: points above the diagonal are neurons whose topic information comes from
    attention 0. pairs: {label: (eta_without, eta_with)}; `what` names the labels in the axis
    titles ("topic", "genre group")."""

    ax = ax or plt.subplots(figsize=(4.5, 4.5))[1]
    for label, (without, with_) in pairs.items():
        ax.scatter(np.asarray(without), np.asarray(with_), s=4, alpha=0.5, label=label)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"η² by {what}, attention 0 removed")
    ax.set_ylabel(f"η² by {what}, with attention 0")
    ax.legend(frameon=False, fontsize=8, markerscale=3)
    return ax


def plot_gating_errors(df, ax=None, *, source="source", quantities=("active_x", "active_on", "inactive_x")):
    """Grouped bars: layer-L errors of a topic-gated superposed network for each source of
    on-indicators (one row of df per source)."""

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    width = 0.8 / len(quantities)
    x = np.arange(len(df))
    for i, qn in enumerate(quantities):
        ax.bar(x + (i - (len(quantities) - 1) / 2) * width, df[qn], width, label=qn)
    ax.set_xticks(x, df[source], rotation=15)
    ax.set_ylabel("mean squared error at the last layer")
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_routing(df, axes=None):
    """Two panels against the circuits running per token (n_on): the false-on and false-off
    rates (left) and the last-layer errors of the true circuit and of the others (right), one
    line per indicator source, one point per threshold τ; the oracle as a marker."""

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(7.5, 3.3), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, sub) in enumerate(df.groupby("source", sort=False)):
        sub = sub.sort_values("n_on")
        col = colors[i % len(colors)]
        if name == "oracle":
            axes[1].plot(sub["n_on"], sub["active_x"], "k*", ms=9, label="oracle: true circuit")
            continue
        axes[0].plot(sub["n_on"], sub["false_on"], "-o", ms=3, color=col, label=f"{name}: false-on")
        axes[0].plot(sub["n_on"], sub["false_off"], "--s", ms=3, color=col, label=f"{name}: false-off")
        axes[1].plot(sub["n_on"], sub["active_x"], "-o", ms=3, color=col, label=f"{name}: true circuit")
        axes[1].plot(sub["n_on"], sub["inactive_x"], "--s", ms=3, color=col, label=f"{name}: others")
    axes[0].set_xlabel("circuits running per token")
    axes[0].set_ylabel("rate")
    axes[1].set_xlabel("circuits running per token")
    axes[1].set_ylabel("mean squared error, layer L")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.legend(frameon=False, fontsize=7)
    return axes


def plot_influence(curves: dict, ax=None, *, ylabel="mean |Δ readout| (normalised)", outside: bool = False):
    """Influence of the token k back on a summary, one line per label; each curve is
    normalised to its value at k = 1. curves: {label: (ks, values)}. `outside`: the legend
    right of the axes (for many curves)."""

    ax = ax or plt.subplots(figsize=(6.5, 3.5))[1]
    for label, (ks, vals) in curves.items():
        vals = torch.as_tensor(vals, dtype=torch.float64)
        ax.plot(np.asarray(ks), (vals / vals[0]).numpy(), marker=".", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("distance k of the replaced token")
    ax.set_ylabel(ylabel)
    if outside:
        ax.legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    else:
        ax.legend(frameon=False, fontsize=8)
    return ax


def plot_lm_training(losses, baselines: dict, ax=None):
    """Training loss per step (a running mean over 10 steps) with the held-out losses of the
    baselines and of the trained model as horizontal lines. baselines: {label: nats}."""

    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    x = np.asarray(losses, dtype=float)
    if len(x):
        k = min(10, len(x))
        sm = np.convolve(x, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k - 1, len(x)), sm, color="0.2", lw=1.2, label="training loss (10-step mean)")
    styles = ["--", ":", "-."]
    for i, (label, v) in enumerate(baselines.items()):
        ax.axhline(v, ls=styles[i % 3], color=f"C{i}", lw=1.2, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("nats per token")
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    return ax


def plot_not_computed(why: str, ax=None):
    """A placeholder panel that states plainly what a build could not compute ("Not computed
    in this build: <why>"), so that a glued figure exists in every build."""

    ax = ax or plt.subplots(figsize=(5, 1.2))[1]
    ax.axis("off")
    ax.text(0.5, 0.5, f"Not computed in this build: {why}", ha="center", va="center", fontsize=10, wrap=True)
    return ax
