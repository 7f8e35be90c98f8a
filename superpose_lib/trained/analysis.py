"""Trained versus constructed: the row functions the chapter sweeps (one trained network, one
seed's capacity search), the construction's capacity on the same criterion, and the
summaries the chapter's text is glued from."""

from __future__ import annotations

import math
import os

import pandas as pd

from ..capacity import RESOLUTION, bisect_capacity, capacity_summary
from ..core.checks import CIRCUIT_WIDTH, check_int, checked
from ..core.criteria import failures, works
from ..core.experiment import check_experiment_fits, rotation_errors
from ..core.theory import T_at, control_parameter
from ..stats import t_interval
from .measure import mechanism
from .train import S_INTERFACE, cached_train, max_trainable_T, trained_errors

__all__ = [
    "trained_rows",
    "trained_capacity_rows",
    "construction_capacity_rows",
    "construction_error_rows",
    "capacity_table",
    "capacity_text",
    "first_passing_step",
    "loss_summary",
    "loss_facts",
    "capacity_facts",
    "transfer_verdict",
    "mechanism_facts",
    "width_lr",
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
def trained_rows(
    D: int,
    T: int,
    z: int,
    L: int,
    seed: int,
    *,
    init: str = "random",
    loss: str = "hinge",
    variant: str = "dense",
    steps: int = 1500,
    batch: int = 256,
    lr: float = 3e-3,
    noise: float = 0.5,
    eval_batch: int = 2000,
    device="cpu",
    root: str | os.PathLike | None = None,
) -> list[dict]:
    """One trained network as a tidy row (for `sweep`): the task (D, T, x = T(d/D)², T over
    D/d, z, L), the recipe, the first and final loss, the training's seconds (those of the
    run that made the checkpoint) and samples per circuit (steps·batch·z/T), the first
    step from which the monitor passed criterion (a) (`first_passing_step`), the layer-L
    statistics on the evaluation draws with (a) "works" and its failures, and `mechanism`'s
    measures. steps = 0 with init "construction" is the construction itself, measured by
    the same code."""
    net, hist = cached_train(
        D,
        T,
        z=z,
        L=L,
        init=init,
        loss=loss,
        variant=variant,
        steps=steps,
        seed=seed,
        batch=batch,
        lr=lr,
        noise=noise,
        device=device,
        root=root,
    )
    st = trained_errors(net, batch=eval_batch)
    fails = failures(st, L)
    row = {
        "D": D,
        "T": T,
        "x": control_parameter(D, T),
        "T_over_dedicated": T / (D // CIRCUIT_WIDTH),
        "z": z,
        "L": L,
        "seed": seed,
        "init": init,
        "loss": loss,
        "variant": variant,
        "steps": steps,
        "samples_per_circuit": steps * batch * z / T,
        "first_loss": hist["loss"][0] if hist["loss"] else float("nan"),
        "final_loss": hist["loss"][-1] if hist["loss"] else float("nan"),
        "seconds": hist["seconds"][-1] if hist["seconds"] else 0.0,
        "first_pass_step": first_passing_step(hist),
        "works": not fails,
        "why": "; ".join(fails),
    }
    row |= {k: float(st[k][L]) for k in ROW_STATS}
    row |= mechanism(net, batch=eval_batch)
    return [row]


@checked
def trained_capacity_rows(
    D: int,
    z: int,
    L: int,
    seed: int,
    *,
    T_start: int | None = None,
    T_min: int | None = None,
    resolution: float = 0.5,
    step: float = 2.0,
    max_probes: int = 24,
    init: str = "random",
    loss: str = "hinge",
    variant: str = "dense",
    steps: int = 1500,
    batch: int = 256,
    lr: float = 3e-3,
    noise: float = 0.5,
    eval_batch: int = 2000,
    device="cpu",
    root: str | os.PathLike | None = None,
) -> list[dict]:
    """One seed's capacity of a training recipe on criterion (a) at width D: the book's
    capacity search (`capacity.bisect_capacity` in x = T(d/D)²) where every probe trains a
    network at that T (`trained_rows`; checkpoints cached). It starts at T_start (default
    D/d, where dedicated neurons run out), gallops by `step` and bisects to `resolution`;
    the largest T tried is what the interface holds (`max_trainable_T`: passing there is
    censored "above"), the smallest T_min (default D/(8d): failing there is censored
    "below"); at most `max_probes` trainings (2: the start and one gallop, where a probe is
    costly). Returns one row per probe (its `trained_rows` row and its order), each with
    the seed's result: x_max, x_fail, censor, probes, resolution (the bracket actually
    reached, x_fail/x_max − 1, where both ends are measured), T_max (0 when censored
    below), T_fail (-1 when censored above) and why_fail (the failures at T_fail)."""
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
            row = trained_rows(
                D,
                T,
                z,
                L,
                seed,
                init=init,
                loss=loss,
                variant=variant,
                steps=steps,
                batch=batch,
                lr=lr,
                noise=noise,
                eval_batch=eval_batch,
                device=device,
                root=root,
            )[0]
            probes[T] = row | {"probe": len(probes)}
        return probes[T]["works"]

    r = bisect_capacity(
        passes,
        x0=control_parameter(D, T_start),
        x_min=control_parameter(D, T_min),
        x_max=control_parameter(D, cap),
        resolution=resolution,
        step=step,
        max_probes=max_probes,
    )
    T_fail = T_of(r["x_fail"]) if math.isfinite(r["x_fail"]) else -1
    reached = r["x_fail"] / r["x_max"] - 1 if r["censor"] == "" else r["resolution"]
    res = {
        "x_max": r["x_max"],
        "x_fail": r["x_fail"] if math.isfinite(r["x_fail"]) else -1.0,
        "censor": r["censor"],
        "probes": r["probes"],
        "resolution": max(reached, r["resolution"]),
        "T_max": T_of(r["x_max"]) if r["censor"] != "below" else 0,
        "T_fail": T_fail,
        "why_fail": probes[T_fail]["why"] if T_fail in probes else "",
    }
    return [row | res for row in probes.values()]


@checked
def construction_capacity_rows(
    D: int, z: int, L: int, seed: int, *, batch: int = 2000, resolution: float = RESOLUTION
) -> list[dict]:
    """The construction's capacity on criterion (a) at layer L (bisection in x, as the rest
    of the book), also as a number of circuits T_max and as a multiple of D/d; the largest
    load tried is what the S-hot interface holds."""
    # the search's smallest probe (T = z circuits) must fit before the capacity is counted
    check_experiment_fits(
        D,
        z,
        S_INTERFACE,
        L,
        z,
        CIRCUIT_WIDTH,
        batch,
        4,
        "cpu",
        what="the capacity search's smallest network and its batch",
    )
    cap = max_trainable_T(D)
    x_hi = control_parameter(D, cap)
    why = {}

    def passes(x):
        T = max(z, T_at(x, D))
        f = failures(rotation_errors(D, T, z=z, L=L, seed=seed, batch=batch), L)
        why[x] = "; ".join(f)
        return not f

    r = bisect_capacity(
        passes, x0=min(x_hi, 0.002), x_min=min(x_hi, control_parameter(D, z)), x_max=x_hi, resolution=resolution
    )
    T_max = T_at(r["x_max"], D) if r["censor"] != "below" else 0
    return [
        {
            "D": D,
            "z": z,
            "L": L,
            "seed": seed,
            **{k: v for k, v in r.items() if k != "x_fail"},
            "x_fail": r["x_fail"] if math.isfinite(r["x_fail"]) else -1.0,
            "T_max": T_max,
            "T_over_dedicated": T_max / (D // CIRCUIT_WIDTH),
            "why": why.get(r["x_fail"], ""),
        }
    ]


@checked
def construction_error_rows(D: int, T: int, z: int, L: int, seed: int, *, batch: int = 2000) -> list[dict]:
    """The construction's layer-L statistics at (D, T) on the draws the trained networks are
    evaluated on (`rotation_errors` at the same seed), with criterion (a)."""
    st = rotation_errors(D, T, z=z, L=L, seed=seed, batch=batch)
    return [
        {
            "D": D,
            "T": T,
            "T_over_dedicated": T / (D // CIRCUIT_WIDTH),
            "z": z,
            "L": L,
            "seed": seed,
            "works": works(st, L),
            **{k: float(st[k][L]) for k in ROW_STATS},
        }
    ]


@checked
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
    (name, z, D, seed) with x_max, x_fail (≤ 0 or inf: censored above), resolution, censor
    and why. Each seed's capacity lies in [T at x_max, T at x_fail), so the interval is
    clipped to the union of the seeds' brackets: a t-interval over three coarse brackets can
    reach below 0, the brackets cannot."""
    rows = []
    for z, g in cap.groupby("z", sort=True):
        s = capacity_summary(g.drop(columns=[c for c in ("z", "x_fail") if c in g]))
        for _, r in s.iterrows():
            D = int(r["D"])
            scale = D * D / CIRCUIT_WIDTH**2
            T = {k: r[k] * scale for k in ("mean", "low", "high")}
            seeds = g[(g["name"] == r["name"]) & (g["D"] == D)]
            if "x_fail" in seeds and r["censor"] == "":
                top = seeds["x_fail"].where((seeds["x_fail"] > 0) & (seeds["x_fail"] < math.inf), seeds["x_max"])
                T["low"] = max(T["low"], seeds["x_max"].min() * scale)
                T["high"] = min(T["high"], top.max() * scale)
            rows.append(
                {
                    "name": r["name"],
                    "z": int(z),
                    "D": D,
                    **{f"T_{k}": v for k, v in T.items()},
                    "over_dedicated": T["mean"] / (D // CIRCUIT_WIDTH),
                    "censor": r["censor"],
                    "n": r["n"],
                    "text": capacity_text(T["mean"], T["low"], T["high"], r["censor"], r["n"]),
                    "why": r["why"],
                }
            )
    return pd.DataFrame(rows)


def loss_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per loss (and T): the share of seeds that work on (a), the mean q90 |δx|, false-off
    rate and inactive payload readout at layer L."""
    return (
        rows.groupby(["loss", "T"])
        .agg(
            works=("works", "mean"),
            q90_dx=("q90_dx", "mean"),
            false_off=("false_off", "mean"),
            inactive_x=("inactive_x", "mean"),
            n=("seed", "nunique"),
        )
        .reset_index()
    )


def _mean_ci(values) -> str:
    v = [float(x) for x in values]
    if len(v) == 1:
        return f"{v[0]:.2f} (one seed)"
    m, lo, hi = t_interval(v)
    return f"{m:.2f} [{lo:.2f}, {hi:.2f}]"


def loss_facts(rows: pd.DataFrame) -> dict:
    """The section "Which loss trains" as glue strings (rows: `trained_rows` of the three
    losses at one (D, T, z)): per loss, "k of n" seeds that work, q90 |δx| (mean and 95 %
    t-interval over seeds), the inactive circuits' rms payload readout; and the names of
    the losses that train (every seed works) and of those that do not (no seed works)."""
    out = {}
    for loss, g in rows.groupby("loss", sort=False):
        out[f"works-{loss}"] = f"{int(g.works.sum())} of {len(g)}"
        out[f"q90-{loss}"] = _mean_ci(g.q90_dx)
        out[f"inactive-{loss}"] = f"{g.inactive_x.mean():.2f}"
    ok = rows.groupby("loss", sort=False).works.agg(["all", "any"])
    out["trains"] = ", ".join(ok.index[ok["all"]]) or "none"
    out["fails"] = ", ".join(ok.index[~ok["any"]]) or "none"
    return out


def capacity_facts(table: pd.DataFrame) -> dict:
    """The capacities as glue strings (`capacity_table` rows), each listed over the widths
    measured, so that the keys do not depend on D: "cap-{name}-{z}" ("91 [80, 102] at D =
    512; ≥ 588 at D = 1024"), "ratio-{z}" the trained networks' mean over the construction's
    (RiS), "≥ 3.1" where the trained one is censored above, and "beyond-{z}" the widths at
    which trained networks hold more than D/d circuits on every seed ("at no width" if none)."""
    out = {}
    for (name, z), g in table.groupby(["name", "z"], sort=False):
        out[f"cap-{name}-{z}"] = "; ".join(
            f"{r['text']} at D = {int(r['D'])}" for _, r in g.sort_values("D").iterrows()
        )
    t = table.set_index(["name", "z", "D"])
    for z, g in table[table["name"] == "trained"].groupby("z"):
        parts = []
        for _, r in g.sort_values("D").iterrows():
            D = int(r["D"])
            if ("construction", z, D) not in t.index:
                continue
            c = t.loc[("construction", z, D)]
            if c["censor"] == "below":
                parts.append(f"unbounded at D = {D} (the construction holds none)")
                continue
            pre = "≥ " if r["censor"] in ("above", "some-above") or c["censor"] == "some-below" else ""
            pre = "≤ " if c["censor"] in ("above", "some-above") and not pre else pre
            parts.append(f"{pre}{r['T_mean'] / c['T_mean']:.1f} at D = {D}")
        out[f"ratio-{z}"] = "; ".join(parts) or "not measured"
        beyond = [
            int(r["D"])
            for _, r in g.iterrows()
            if r["T_low"] > r["D"] / CIRCUIT_WIDTH or (r["censor"] == "above" and r["T_mean"] > r["D"] / CIRCUIT_WIDTH)
        ]
        out[f"beyond-{z}"] = ", ".join(f"D = {D}" for D in beyond) if beyond else "at no width"
    return out


def transfer_verdict(levels, values) -> str:
    """What an on-indicator transfer curve (`measure.indicator_transfer`) is, in words: "a
    step" when inputs at s ≤ 0.2 come out below 0.1 and inputs at s ≥ 0.8 above 0.9 (noise
    near off and on is removed, as by RiS's step), "close to the identity" when every output
    is within 0.1 of its input, else "a ramp, not a step" (noise is passed on in part)."""
    pairs = list(zip([float(s) for s in levels], [float(v) for v in values]))
    if not pairs:
        raise ValueError("levels is empty: allowed a list of on-levels in [0, 1]")
    low = [v for s, v in pairs if s <= 0.2]
    high = [v for s, v in pairs if s >= 0.8]
    if low and high and max(low) < 0.1 and min(high) > 0.9:
        return "a step"
    if all(abs(v - s) <= 0.1 for s, v in pairs):
        return "close to the identity"
    return "a ramp, not a step"


def mechanism_facts(trained: pd.DataFrame, construction: pd.DataFrame) -> dict:
    """The mechanism measures (`measure.mechanism` columns of `trained_rows`) as glue
    strings: mean span share, participation, fraction of unused neurons on and inactive
    payload readout of the trained networks and of the construction (same cells), the
    chance span share (T + 1)/M² of a Gaussian matrix, the largest excess of circuits served
    over D/d among working networks with T > D/d, and the share of working networks with a
    positive on-indicator gap. A verdict on silence: "silent" when under 1 % of the unused
    neurons are on, else "not silent"."""
    w = trained[trained["works"]]
    beyond = w[w["T"] > w["D"] / CIRCUIT_WIDTH]
    out = {
        "span-trained": f"{trained['span'].mean():.3f}",
        "span-cons": f"{construction['span'].mean():.2f}",
        "span-chance": f"{((trained['T'] + 1) / (trained['D'] / CIRCUIT_WIDTH) ** 2).mean():.4f}",
        "part-trained": f"{trained['participation'].mean():.2f}",
        "part-cons": f"{construction['participation'].mean():.2f}",
        "outside-trained": f"{trained['outside_on'].mean():.2f}",
        "outside-cons": f"{construction['outside_on'].mean():.2f}",
        "inactive-trained": f"{trained['inactive_x'].mean():.2f}",
        "inactive-cons": f"{construction['inactive_x'].mean():.2f}",
        "served-max": f"{int((beyond['served'] - beyond['dedicated']).max())}" if len(beyond) else "none",
        "n-beyond": f"{len(beyond)}",
        "gap-share": f"{100 * (w['on_gap'] > 0).mean():.0f}" if len(w) else "–",
        "silent": "silent" if trained["outside_on"].mean() < 0.01 else "not silent",
    }
    return out


@checked
def width_lr(D: int, lr: float = 3e-3, *, D_ref: int = 512) -> float:
    """Adam's peak learning rate at width D: `lr` up to D_ref, then lr·D_ref/D. Adam moves
    every weight by about the learning rate, so a pre-activation with D inputs moves by
    ∝ lr·D: at a fixed lr, wider networks take larger steps in what the ReLUs see and
    switch circuits' neurons off for good (measured at D = 1024, z = 1: 2-7 % of the active
    circuits read as off at lr = 3·10⁻³, none at 1.5·10⁻³)."""
    D = check_int("D", D, 1)
    D_ref = check_int("D_ref", D_ref, 1)
    return float(lr) * min(1.0, D_ref / D)
