"""Trained versus constructed: the row functions the chapter sweeps (one trained network, one
seed's capacity search), the construction's capacity on the same criterion, and the
summaries the chapter's text is glued from."""

from __future__ import annotations

import math
import os

import pandas as pd

from ..capacity import bisect_capacity, capacity_summary
from ..core.checks import CIRCUIT_WIDTH, check_int, checked
from ..core.criteria import failures, works
from ..core.experiment import rotation_errors
from ..core.theory import T_at, control_parameter
from .measure import mechanism
from .train import cached_train, max_trainable_T, trained_errors

__all__ = [
    "trained_rows",
    "trained_capacity_rows",
    "construction_capacity_rows",
    "construction_error_rows",
    "capacity_table",
    "capacity_text",
    "first_passing_step",
    "loss_summary",
]

#: The statistics at layer L that a row carries (criterion (a) reads the first four).
ROW_STATS = ("false_on", "false_off", "q90_dx", "worst_dx", "active_x", "inactive_x", "spurious_on")


def first_passing_step(history: dict) -> int:
    """The first check during training (`train.check_steps`) at which the network passed
    criterion (a) on the monitor batch and every later check passed too; -1 if none."""
    steps, ok = history.get("check_step", []), history.get("check_works", [])
    first = -1
    for s, w in zip(steps, ok):
        if w and first < 0:
            first = s
        elif not w:
            first = -1
    return int(first)


@checked
def trained_rows(D: int, T: int, z: int, L: int, seed: int, *, init: str = "random", loss: str = "hinge",
                 variant: str = "dense", steps: int = 1500, batch: int = 256, lr: float = 3e-3, noise: float = 0.5,
                 eval_batch: int = 2000, device="cpu", root: str | os.PathLike | None = None) -> list[dict]:
    """One trained network as a tidy row (for `sweep`): the task (D, T, x = T(d/D)², T over
    D/d, z, L), the recipe, the first and final loss, the training's seconds (those of the
    run that made the checkpoint) and samples per circuit (steps·batch·z/T), the first
    step from which the monitor passed criterion (a) (`first_passing_step`), the layer-L
    statistics on the evaluation draws with (a) "works" and its failures, and `mechanism`'s
    measures. steps = 0 with init "construction" is the construction itself, measured by
    the same code."""
    net, hist = cached_train(D, T, z=z, L=L, init=init, loss=loss, variant=variant, steps=steps, seed=seed,
                             batch=batch, lr=lr, noise=noise, device=device, root=root)
    st = trained_errors(net, batch=eval_batch)
    fails = failures(st, L)
    row = {"D": D, "T": T, "x": control_parameter(D, T), "T_over_dedicated": T / (D // CIRCUIT_WIDTH), "z": z,
           "L": L, "seed": seed, "init": init, "loss": loss, "variant": variant, "steps": steps,
           "samples_per_circuit": steps * batch * z / T,
           "first_loss": hist["loss"][0] if hist["loss"] else float("nan"),
           "final_loss": hist["loss"][-1] if hist["loss"] else float("nan"),
           "seconds": hist["seconds"][-1] if hist["seconds"] else 0.0,
           "first_pass_step": first_passing_step(hist), "works": not fails, "why": "; ".join(fails)}
    row |= {k: float(st[k][L]) for k in ROW_STATS}
    row |= mechanism(net, batch=eval_batch)
    return [row]


@checked
def trained_capacity_rows(D: int, z: int, L: int, seed: int, *, T_start: int | None = None,
                          T_min: int | None = None, resolution: float = 0.5, step: float = 2.0,
                          init: str = "random", loss: str = "hinge", variant: str = "dense", steps: int = 1500,
                          batch: int = 256, lr: float = 3e-3, noise: float = 0.5, eval_batch: int = 2000,
                          device="cpu", root: str | os.PathLike | None = None) -> list[dict]:
    """One seed's capacity of a training recipe on criterion (a) at width D: the book's
    capacity search (`capacity.bisect_capacity` in x = T(d/D)²) where every probe trains a
    network at that T (`trained_rows`; checkpoints cached). It starts at T_start (default
    D/d, where dedicated neurons run out), gallops by `step` and bisects to `resolution`;
    the largest T tried is what the interface holds (`max_trainable_T`: passing there is
    censored "above"), the smallest T_min (default D/(8d): failing there is censored
    "below"). Returns one row per probe (its `trained_rows` row and its order), each with
    the seed's result: x_max, x_fail, censor, probes, resolution, T_max (0 when censored
    below), T_fail (-1 when censored above) and why (the failures at T_fail)."""
    M = D // CIRCUIT_WIDTH
    cap = max_trainable_T(D)
    T_min = check_int("T_min", T_min if T_min is not None else max(z, M // 8), z, cap)
    T_start = check_int("T_start", T_start if T_start is not None else min(M, cap), T_min, cap)

    def T_of(x: float) -> int:
        return max(T_min, min(cap, int(round(x * D * D / CIRCUIT_WIDTH**2))))

    probes: dict[int, dict] = {}

    def passes(x: float) -> bool:
        T = T_of(x)
        if T not in probes:
            row = trained_rows(D, T, z, L, seed, init=init, loss=loss, variant=variant, steps=steps, batch=batch,
                               lr=lr, noise=noise, eval_batch=eval_batch, device=device, root=root)[0]
            probes[T] = row | {"probe": len(probes)}
        return probes[T]["works"]

    r = bisect_capacity(passes, x0=control_parameter(D, T_start), x_min=control_parameter(D, T_min),
                        x_max=control_parameter(D, cap), resolution=resolution, step=step)
    T_fail = T_of(r["x_fail"]) if math.isfinite(r["x_fail"]) else -1
    res = {"x_max": r["x_max"], "x_fail": r["x_fail"] if math.isfinite(r["x_fail"]) else -1.0,
           "censor": r["censor"], "probes": r["probes"], "resolution": r["resolution"],
           "T_max": T_of(r["x_max"]) if r["censor"] != "below" else 0, "T_fail": T_fail,
           "why_fail": probes[T_fail]["why"] if T_fail in probes else ""}
    return [row | res for row in probes.values()]


@checked
def construction_capacity_rows(D: int, z: int, L: int, seed: int, *, batch: int = 2000,
                               resolution: float = 0.05) -> list[dict]:
    """The construction's capacity on criterion (a) at layer L (bisection in x, as the rest
    of the book), also as a number of circuits T_max and as a multiple of D/d; the largest
    load tried is what the S-hot interface holds."""
    cap = max_trainable_T(D)
    x_hi = control_parameter(D, cap)
    why = {}

    def passes(x):
        T = max(z, T_at(x, D))
        f = failures(rotation_errors(D, T, z=z, L=L, seed=seed, batch=batch), L)
        why[x] = "; ".join(f)
        return not f

    r = bisect_capacity(passes, x0=min(x_hi, 0.002), x_min=min(x_hi, control_parameter(D, z)), x_max=x_hi,
                        resolution=resolution)
    T_max = T_at(r["x_max"], D) if r["censor"] != "below" else 0
    return [{"D": D, "z": z, "L": L, "seed": seed, **{k: v for k, v in r.items() if k != "x_fail"},
             "x_fail": r["x_fail"] if math.isfinite(r["x_fail"]) else -1.0, "T_max": T_max,
             "T_over_dedicated": T_max / (D // CIRCUIT_WIDTH), "why": why.get(r["x_fail"], "")}]


@checked
def construction_error_rows(D: int, T: int, z: int, L: int, seed: int, *, batch: int = 2000) -> list[dict]:
    """The construction's layer-L statistics at (D, T) on the draws the trained networks are
    evaluated on (`rotation_errors` at the same seed), with criterion (a)."""
    st = rotation_errors(D, T, z=z, L=L, seed=seed, batch=batch)
    return [{"D": D, "T": T, "T_over_dedicated": T / (D // CIRCUIT_WIDTH), "z": z, "L": L, "seed": seed,
             "works": works(st, L), **{k: float(st[k][L]) for k in ROW_STATS}}]


def capacity_text(mean: float, low: float, high: float, censor: str, n: int) -> str:
    """A capacity in circuits as text, censored values as bounds: "≥ 140" (every seed
    passed the largest T it could try), "< 32" (every seed failed the smallest), "≥ 96 (some
    seeds at the limit)", "≤ 40 (some seeds below)", else "87 [71, 104]" (95 % t-interval
    over seeds) or "87 (one seed)"."""
    f = lambda v: f"{v:.0f}"  # noqa: E731
    if censor == "above":
        return f"≥ {f(mean)}"
    if censor == "below":
        return f"< {f(mean)}"
    if censor == "some-above":
        return f"≥ {f(mean)} (some seeds at the limit)"
    if censor == "some-below":
        return f"≤ {f(mean)} (some seeds below)"
    return f"{f(mean)} (one seed)" if n == 1 else f"{f(mean)} [{f(low)}, {f(high)}]"


def capacity_table(cap: pd.DataFrame) -> pd.DataFrame:
    """Per (name, z, D): the capacity as `capacity.capacity_summary` gives it (mean x_max over
    seeds, 95 % t-interval widened to the resolution, censoring), in circuits T (mean, low,
    high), as a multiple of D/d, and as text ("≥ 140", "87 [71, 104]"). `cap` has one row per
    (name, z, D, seed) with x_max, resolution, censor and why (the failures at x_fail)."""
    rows = []
    for z, g in cap.groupby("z", sort=True):
        s = capacity_summary(g.drop(columns="z"))
        for _, r in s.iterrows():
            D = int(r["D"])
            T = {k: r[k] * D * D / CIRCUIT_WIDTH**2 for k in ("mean", "low", "high")}
            rows.append({"name": r["name"], "z": int(z), "D": D, **{f"T_{k}": v for k, v in T.items()},
                         "over_dedicated": T["mean"] / (D // CIRCUIT_WIDTH), "censor": r["censor"], "n": r["n"],
                         "text": capacity_text(T["mean"], T["low"], T["high"], r["censor"], r["n"]),
                         "why": r["why"]})
    return pd.DataFrame(rows)


def loss_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per loss (and T): the share of seeds that work on (a), the mean q90 |δx|, false-off
    rate and inactive payload readout at layer L."""
    return rows.groupby(["loss", "T"]).agg(works=("works", "mean"), q90_dx=("q90_dx", "mean"),
                                           false_off=("false_off", "mean"), inactive_x=("inactive_x", "mean"),
                                           n=("seed", "nunique")).reset_index()
