"""Plots of the gist chapter: attention kernels, probe tables, selectivity, gating errors,
routing, the toy's influence curves and the language model's training."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D

from ..core.checks import checked
from ..plots import COLORS, LABELS, PALETTE, figure, tidy_log_axis

__all__ = [
    "plot_lm_curves",
    "plot_paired",
    "plot_seed_kernels",
    "plot_probe_rows",
    "plot_context",
    "plot_splice",
    "plot_switch_off",
    "plot_probe_table",
    "plot_selectivity",
    "plot_influence",
    "plot_not_computed",
]


# ----------------------------------------------------------------------------- plots
def plot_probe_table(df, ax=None, *, value="bacc", lo="lo", hi="hi", row="features", col="task", chance=None):
    """Grouped bars of probe balanced accuracy with CI whiskers: df has one row per
    (features, task)."""

    ax = ax or plt.subplots(figsize=(5.0, 3.4))[1]
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


def plot_influence(curves: dict, ax=None, *, ylabel="mean |Δ readout| (normalised)", outside: bool = False):
    """Influence of the token k back on a summary, one line per label; each curve is
    normalised to its value at k = 1. curves: {label: (ks, values)}. `outside`: the legend
    right of the axes (for many curves)."""

    ax = ax or plt.subplots(figsize=(5.0, 3.2) if outside else (6.5, 3.5))[1]
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


def plot_not_computed(why: str, ax=None):
    """A placeholder panel that states plainly what a build could not compute ("Not computed
    in this build: <why>"), so that a glued figure exists in every build."""

    ax = ax or plt.subplots(figsize=(5, 1.2))[1]
    ax.axis("off")
    ax.text(0.5, 0.5, f"Not computed in this build: {why}", ha="center", va="center", fontsize=10, wrap=True)
    return ax


# ----------------------------------------------------------------------------- real text, several seeds
def _row_color(key, i: int = 0):
    """The fixed colour of a gist row (`plots.COLORS["gist row"]`), else a palette entry."""
    return COLORS["gist row"].get(key, PALETTE[i % len(PALETTE)])


def _row_label(key) -> str:
    return LABELS["gist row"].get(key, str(key))


def plot_lm_curves(infos: list, baselines: dict, ax=None):
    """Held-out loss during training (dots), one colour per training seed, with the training
    loss (thin, a 60-step running mean), against the held-out losses of the n-gram baselines
    (black lines). infos: `cached_lms`' info dicts; baselines: {label: nats}."""
    ax = ax or plt.subplots(figsize=(5.0, 3.2))[1]
    lows = []
    for i, info in enumerate(infos):
        col = PALETTE[i % len(PALETTE)]
        x = np.asarray(info["losses"], dtype=float)
        if len(x) > 60:
            sm = np.convolve(x, np.ones(60) / 60, mode="valid")
            ax.plot(np.arange(59, len(x)), sm, color=col, lw=0.8, alpha=0.7)
            lows.append(sm.min())
        h = np.asarray(info["heldout"], dtype=float)
        if len(h):
            ax.plot(h[:, 0], h[:, 1], "-o", ms=3, color=col)
    styles = dict(zip(baselines, ("--", ":")))
    for lab, v in baselines.items():
        ax.axhline(v, ls=styles[lab], color="k", lw=1)
    handles = [Line2D([], [], color=PALETTE[i % len(PALETTE)], lw=2, label=f"seed {i}") for i in range(len(infos))]
    handles += [
        Line2D([], [], color="0.3", marker="o", ms=3, label="held out"),
        Line2D([], [], color="0.3", lw=0.8, label="training (60-step mean)"),
    ]
    handles += [Line2D([], [], color="k", ls=styles[lab], lw=1, label=lab) for lab in baselines]
    ax.set_xlabel("training step")
    ax.set_ylabel("nats per token")
    ax.set_ylim(min(lows + [min(baselines.values())]) - 0.15, max(baselines.values()) + 0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return ax


@checked
def plot_paired(
    table, ax=None, *, chance: float | None = None, xlabel: str = "balanced accuracy", colors=None, labels=None
):
    """One line per row: the mean over seeds with its interval over documents (thick) and over
    training seeds (thin, below it; none where the row does not depend on the seed). table:
    `paired.paired_table`'s rows; `colors`, `labels`: {name: ...} (default: the gist rows')."""
    ax = ax or plt.subplots(figsize=(6.5, 0.35 * len(table) + 0.8))[1]
    for i, r in enumerate(table.itertuples()):
        y = len(table) - 1 - i
        col = (colors or {}).get(r.name) or _row_color(r.name, i)
        ax.plot([r.doc_lo, r.doc_hi], [y + 0.1, y + 0.1], color=col, lw=4, solid_capstyle="butt")
        if np.isfinite(r.seed_lo) and r.seed_hi - r.seed_lo > 1e-9:
            ax.plot([r.seed_lo, r.seed_hi], [y - 0.22, y - 0.22], color=col, lw=1.2)
        ax.plot(r.value, y + 0.1, "o", color=col, ms=5, mec="white", mew=0.6)
    ax.set_yticks(range(len(table)), [(labels or {}).get(n) or _row_label(n) for n in table["name"]][::-1])
    ax.set_ylim(-0.7, len(table) - 0.3)
    if chance is not None:
        ax.axvline(chance, color="k", ls=":", lw=1)
    ax.set_xlabel(xlabel)
    return ax


def plot_seed_kernels(kern: dict, kern_init: dict | None = None, axes=None):
    """One panel per training seed: every layer-0 head's mean attention against distance k
    (log scale; contextual heads solid, the others dotted), the seed's random-init heads in
    grey, and the fitted exponential kernel exp(−k/ℓ) of its contextual heads (dashed)."""
    k = kern["kernels"]
    S = k.shape[0]
    if axes is None:
        _, axes = figure(S, 1, width=min(7.2, 2.4 * S), panel_height=2.6, sharey=True)
    axes = np.atleast_1d(axes)
    ks = np.arange(k.shape[-1])
    for s, ax in enumerate(axes):
        if kern_init is not None:
            for row in kern_init["kernels"][s]:
                ax.plot(ks, row.numpy(), color="0.75", lw=0.8)
        for h, row in enumerate(k[s]):
            ctx = bool(kern["contextual"][s, h])
            ax.plot(ks, row.numpy(), color=_row_color("gist"), lw=1, ls="-" if ctx else ":")
        ell = kern["ell"][s]
        if np.isfinite(ell):
            mean = k[s][kern["contextual"][s]].mean(0) if kern["contextual"][s].any() else k[s].mean(0)
            fit = np.exp(-ks / ell)
            fit = fit * float(mean[1:].sum()) / fit[1:].sum()
            ax.plot(ks[1:], fit[1:], "k--", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("distance k")
        ax.set_title(f"seed {s}: " + (f"ℓ = {ell:.0f}" if np.isfinite(ell) and ell < 1000 else "ℓ > 1000"))
    axes[0].set_ylabel("mean attention")
    for ax in axes:
        tidy_log_axis(ax, "y")
    return axes


@checked
def plot_probe_rows(table, axes=None, *, chance: float | None = None, pairs: dict | None = None, long_window=None):
    """Top: every row's balanced accuracy (`plot_paired`); bottom: the paired differences
    (kind "difference"), zero dotted, each in the colour of its first row (`pairs`: {name:
    (row a, row b)})."""
    rows, diffs = table[table.kind == "row"], table[table.kind == "difference"]
    if axes is None:
        _, axes = figure(1, 2, width=7.0, panel_height=1.0, height_ratios=[len(rows), len(diffs)])
        axes[0].figure.set_size_inches(7.0, 0.3 * (len(rows) + len(diffs)) + 1.4)
    labels = (
        {"long": _row_label("long").replace("longer window", f"last {long_window} tokens")} if long_window else None
    )
    plot_paired(rows, axes[0], chance=chance, labels=labels)
    colors = {n: _row_color(a) for n, (a, _) in (pairs or {}).items()}
    plot_paired(diffs, axes[1], chance=0.0, xlabel="paired difference in balanced accuracy", colors=colors)
    return axes


@checked
def plot_context(ctx, ax=None, *, chance: float | None = None, long_window=None):
    """Balanced accuracy against the context length a position can see (bins of q + 1), one
    line per row with its document interval as a band."""
    ax = ax or plt.subplots(figsize=(5.0, 3.2))[1]
    for i, (k, sub) in enumerate(ctx.groupby("row", sort=False)):
        x = np.sqrt(sub.lo_len * sub.hi_len)
        lab = _row_label(k).replace("longer window", f"last {long_window} tokens") if long_window else _row_label(k)
        ax.plot(x, sub.bacc, "-o", ms=3, color=_row_color(k, i), label=lab)
        ax.fill_between(x, sub.doc_lo, sub.doc_hi, color=_row_color(k, i), alpha=0.15, lw=0)
    if chance is not None:
        ax.axhline(chance, color="k", ls=":", lw=1)
    ax.set_xscale("log")
    tidy_log_axis(ax, "x")
    ax.set_xlabel("context attention can see, tokens")
    ax.set_ylabel("balanced accuracy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return ax


def plot_splice(splice: dict, ax=None):
    """Mean readout ℓ_new − ℓ_old around the splice (t = 0: the new document's first token),
    mean over pieces and seeds, one line per row, each divided by the size of its own mean
    readout before the splice (so that rows of different scales share one axis: −1 before,
    crossing 0 where the readout switches)."""
    ax = ax or plt.subplots(figsize=(5.0, 3.2))[1]
    before = splice["before"]
    for i, (k, c) in enumerate(splice["curves"].items()):
        m = torch.nanmean(c.mean(0), 0).numpy()
        pre = abs(np.nanmean(m[min(8, before - 1) : before]))
        t = np.arange(len(m)) - before
        ax.plot(t[1:], m[1:] / pre, color=_row_color(k, i), label=_row_label(k))
    ax.axhline(0, color="k", lw=0.8)
    ax.axvline(0, color="k", ls=":", lw=0.8)
    ax.set_xlabel("tokens since the splice")
    ax.set_ylabel("readout / its size before")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return ax


@checked
def plot_switch_off(curve, budget: float, ax=None, *, long_window=None):
    """Fraction of the other groups' circuits switched off against the wrongly-off rate (log
    scale), one line per row; the budget dotted."""
    ax = ax or plt.subplots(figsize=(5.0, 3.2))[1]
    for i, (k, sub) in enumerate(curve.groupby("row", sort=False)):
        lab = _row_label(k).replace("longer window", f"last {long_window} tokens") if long_window else _row_label(k)
        ax.plot(sub.rate, sub.switched_off, color=_row_color(k, i), label=lab)
    ax.axvline(budget, color="k", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("needed circuits wrongly switched off")
    ax.set_ylabel("other circuits switched off")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return ax
