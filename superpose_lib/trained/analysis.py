"""Trained versus constructed: the grid of the comparison, the construction's capacity on
criterion (a), the censored capacity of trained networks, and the chapter's figure."""

from __future__ import annotations

import pandas as pd

from ..capacity import RESOLUTION, bisect_capacity
from ..core.assignment import max_circuits
from ..core.checks import CIRCUIT_WIDTH, checked
from ..core.criteria import Q90_DX_MAX, works
from ..core.experiment import check_experiment_fits, rotation_errors
from ..core.theory import T_at, control_parameter
from ..plots import axes_or_new, color, label, marker, palette

__all__ = ["task_grid", "construction_capacity_rows", "trained_capacity", "plot_error_against_T", "plot_training"]

#: The interface's redundancy: each circuit's input and readout use S neurons per block.
S_INTERFACE = 6


@checked
def task_grid(D_list, fractions, *, z: int, L: int) -> list[dict]:
    """(D, T) with T = f·D/d for each fraction f, capped at what the S-hot interface can
    hold (`max_circuits(D/d, 6)`), without repeats."""
    out = []
    for D in D_list:
        cap = max_circuits(D // CIRCUIT_WIDTH, S_INTERFACE)
        Ts = sorted({min(cap, max(1, round(f * D / CIRCUIT_WIDTH))) for f in fractions})
        out += [{"D": int(D), "T": int(T), "z": int(z), "L": int(L)} for T in Ts]
    return out


@checked
def construction_capacity_rows(D: int, z: int, L: int, seed: int, *, batch: int = 2000,
                               resolution: float = RESOLUTION) -> list[dict]:
    """The construction's capacity on criterion (a) at layer L (bisection in x, as the rest
    of the book), also as a number of circuits T_max and as a multiple of D/d."""
    # the search's smallest probe (x = 1e-6) must fit before the capacity is counted (O(D) steps)
    check_experiment_fits(D, T_at(1e-6, D), S_INTERFACE, L, 1, CIRCUIT_WIDTH, batch, 4, "cpu",
                          what="the capacity search's smallest network and its batch")
    cap = max_circuits(D // CIRCUIT_WIDTH, S_INTERFACE)
    x_hi = control_parameter(D, cap)
    r = bisect_capacity(lambda x: works(rotation_errors(D, T_at(x, D), z=z, L=L, seed=seed, batch=batch), L),
                        x0=min(x_hi, 0.002), x_min=min(x_hi, 1e-6), x_max=x_hi, resolution=resolution)
    T_max = T_at(r["x_max"], D)
    return [{"D": D, "z": z, "L": L, "seed": seed, **r, "T_max": T_max,
             "T_over_dedicated": T_max / (D // CIRCUIT_WIDTH)}]


def trained_capacity(rows: pd.DataFrame, by=("D", "init", "loss")) -> pd.DataFrame:
    """Per group and seed, the largest T of the grid below which every T works (criterion
    (a)), as bounds: T_low ≤ capacity < T_high. T_low = 0 when the smallest T fails
    (censored below), T_high = inf when the largest passes (censored above)."""
    out = []
    for key, g in rows.groupby(list(by) + ["seed"], sort=True):
        g = g.sort_values("T")
        low, high = 0, float("inf")
        for T, ok in zip(g["T"], g["works"]):
            if not ok:
                high = int(T)
                break
            low = int(T)
        out.append({**dict(zip(list(by) + ["seed"], key)), "T_low": low, "T_high": high,
                    "T_min_tried": int(g["T"].min()), "T_max_tried": int(g["T"].max())})
    return pd.DataFrame(out)


@checked
def plot_error_against_T(rows: pd.DataFrame, dedicated: pd.DataFrame | None = None, *, D: int, ax=None):
    """q90 |δx| at layer L against T/(D/d) at one width: one line per recipe (mean over
    seeds, each seed a faint point), the no-superposition network, and Q90_DX_MAX."""
    ax = axes_or_new(ax)
    r = rows[rows.D == D]
    for i, (name, g) in enumerate(r.groupby("recipe", sort=False)):
        c = color("recipe", name)
        m = g.groupby("T_over_dedicated")["q90_dx"].mean()
        ax.plot(m.index, m.values, marker=marker(i), color=c, label=label("recipe", name))
        ax.scatter(g["T_over_dedicated"], g["q90_dx"], s=8, color=c, alpha=0.35, lw=0)
    if dedicated is not None:
        d = dedicated[dedicated.D == D].groupby("T_over_dedicated")["q90_dx"].mean()
        ax.plot(d.index, d.values, ls=":", color=color("recipe", "dedicated"), label=label("recipe", "dedicated"))
    ax.axhline(Q90_DX_MAX, color="0.5", lw=0.8, ls="--")
    ax.axvline(1.0, color="0.8", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(r"$T\,/\,(D/d)$")
    ax.set_ylabel(r"90th percentile $|\delta x|$ at layer $L$")
    ax.set_title(f"D = {D}")
    return ax


def plot_training(histories: dict, ax=None):
    """Training loss against step, one line per entry of `histories` ({label: history} with
    history as `train_superposed` returns it), each relative to its first step's loss."""
    ax = axes_or_new(ax)
    colors = palette(list(histories))
    for name, h in histories.items():
        first = h["loss"][0]
        ax.plot(h["step"], [v / first for v in h["loss"]], color=colors[name], label=str(name))
    ax.set_yscale("log")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("loss / loss at step 1")
    return ax
