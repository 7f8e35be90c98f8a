"""One capacity search for the book: the largest load x = T(d/D)² at which a network still
passes a criterion, per seed, by bisection to a stated resolution.

The search starts from a guess x0 (the theory's predicted boundary, so that a capacity
costs a few probes rather than a grid), gallops until it brackets the boundary, and bisects
in log x until the bracket's ratio is at most 1 + resolution. The gallop's first factor is
`step` and each later one the square of the last, up to max(2, step): a good guess is
bracketed in a probe or two, a guess k ≫ 2 times off in about log₂ k probes and four of
bisection (not ln k/ln step), and no probe lands more than max(2, step) past the boundary
(a probe far past it is a seized network, the most expensive kind to run). The
interval over seeds is then the real uncertainty; the resolution is stated beside it.
Pass/fail is assumed monotone in x (one crossing).

Censoring is written at both ends: "below" when even x_min fails (the capacity is < x_min,
x_max is then x_min as a bound), "above" when x_max passes (the capacity is ≥ x_max: for a
scheme whose assignment holds no more circuits, x_max is that limit).

The summaries of a table of per-seed capacities (one row per name, D, seed and, where
several, criterion): `capacity_summary` (t-intervals over seeds, censoring carried along),
`slopes` (d ln x_max / d ln D per seed, then over seeds) and `boundary_fraction`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from .core.checks import checked
from .stats import t_interval

__all__ = ["bisect_capacity", "log_bisect", "RESOLUTION", "capacity_summary", "slopes", "boundary_fraction"]

#: Default resolution of a capacity: the bracket [x_max, x_fail] is at most 5 % wide, a
#: quarter of the seed-to-seed spread the book measures (≈ 20 %), so the interval over
#: seeds is not set by the search.
RESOLUTION = 0.05


def _check_x(name: str, value) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}={value!r} is out of range: allowed 0 < {name} < inf")
    return v


@checked
def log_bisect(
    holds: Callable[[float], bool], lo: float, hi: float, tol: float, *, max_steps: int = 200
) -> tuple[float, float]:
    """Bisection in log x of a bracket: lo a load at which `holds`, hi one at which it does
    not (one crossing assumed). Halves the bracket's log-width until hi/lo ≤ 1 + tol, or for
    at most max_steps calls of `holds`, and returns (lo, hi). Every boundary search of the
    library (capacities, the theories' boundaries) ends in this loop."""
    lo, hi = _check_x("lo", lo), _check_x("hi", hi)
    if hi < lo:
        raise ValueError(f"hi={hi!r} is out of range: allowed hi >= lo = {lo!r}")
    if not 0.0 < float(tol) < 1.0:
        raise ValueError(f"tol={tol!r} is out of range: allowed 0 < tol < 1")
    if int(max_steps) < 0:
        raise ValueError(f"max_steps={max_steps!r} is out of range: allowed max_steps >= 0")
    for _ in range(int(max_steps)):
        if hi / lo <= 1 + tol:
            break
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if holds(mid) else (lo, mid)
    return lo, hi


@checked
def bisect_capacity(
    passes: Callable[[float], bool],
    *,
    x0: float,
    x_min: float,
    x_max: float,
    resolution: float = RESOLUTION,
    max_probes: int = 24,
    step: float = 2.0,
) -> dict:
    """The largest x in [x_min, x_max] with passes(x) (module docstring). Returns x_max (the
    largest passing load found; x_min when censored below), x_fail (the smallest failing
    load found; inf when censored above), censor ("", "below", "above"), probes (calls of
    `passes`) and resolution."""
    lo_b, hi_b = _check_x("x_min", x_min), _check_x("x_max", x_max)
    if hi_b < lo_b:
        raise ValueError(f"x_max={x_max!r} is out of range: allowed x_max >= x_min = {x_min!r}")
    x = min(max(_check_x("x0", x0), lo_b), hi_b)
    res = float(resolution)
    if not 0.0 < res < 1.0:
        raise ValueError(f"resolution={resolution!r} is out of range: allowed 0 < resolution < 1")
    step = float(step)
    if not (math.isfinite(step) and step > 1.0 + res):
        raise ValueError(f"step={step!r} is out of range: allowed step > 1 + resolution = {1 + res}")
    if int(max_probes) < 2:
        raise ValueError(f"max_probes={max_probes!r} is out of range: allowed max_probes >= 2")
    n = 0

    def probe(v):
        nonlocal n
        n += 1
        return bool(passes(v))

    out = {"resolution": res}
    top = max(2.0, step)  # the gallop's largest factor
    if probe(x):
        lo, hi = x, None
        while hi is None:
            if lo >= hi_b:
                return out | {"x_max": lo, "x_fail": math.inf, "censor": "above", "probes": n}
            v = min(step * lo, hi_b)
            lo, hi = (v, None) if probe(v) else (lo, v)
            step = min(step * step, top)
    else:
        lo, hi = None, x
        while lo is None:
            if hi <= lo_b:
                return out | {"x_max": lo_b, "x_fail": lo_b, "censor": "below", "probes": n}
            v = max(hi / step, lo_b)
            lo, hi = (v, hi) if probe(v) else (None, v)
            step = min(step * step, top)
    lo, hi = log_bisect(probe, lo, hi, res, max_steps=max(max_probes - n, 0))
    return out | {"x_max": lo, "x_fail": hi, "censor": "", "probes": n}


def capacity_summary(cap: pd.DataFrame) -> pd.DataFrame:
    """Per (name, criterion, D): mean x_max over seeds and its 95 % t-interval
    (`stats.t_interval`), widened to at least the search's resolution on each side (seeds
    whose searches pass and fail at the same probes return the same x_max: their spread is
    then below what the search resolves, not zero), n seeds, censor ("" all measured,
    "above"/"below" all censored that way, "some-above"/"some-below" mixed), the resolution
    and the most frequent failure."""
    rows = []
    keys = ["name", "criterion", "D"] if "criterion" in cap else ["name", "D"]
    for key, g in cap.groupby(keys, sort=False):
        m, lo, hi = t_interval(g["x_max"])
        res = float(g["resolution"].max())
        lo, hi = max(min(lo, m / (1 + res)), 0.0), max(hi, m * (1 + res))  # a capacity is never negative
        cens = set(g["censor"])
        censor = (
            ""
            if cens == {""}
            else (cens.pop() if len(cens) == 1 else ("some-above" if "above" in cens else "some-below"))
        )
        why = g["why"].map(lambda w: w.split(" ")[0] if w else "").mode()
        rows.append(
            dict(zip(keys, key))
            | {
                "D": int(key[-1]),
                "mean": m,
                "low": lo,
                "high": hi,
                "n": len(g),
                "censor": censor,
                "resolution": res,
                "why": why.iloc[0] if len(why) else "",
            }
        )
    return pd.DataFrame(rows)


def slopes(cap: pd.DataFrame) -> pd.DataFrame:
    """d ln x_max / d ln D per scheme (and criterion): a least-squares slope per seed over
    the D at which that seed's capacity is measured (uncensored; at least 3 D), then the
    mean and 95 % t-interval over seeds. Columns name, (criterion,) slope, low, high, n
    (seeds), D_min, D_max."""
    rows = []
    keys = ["name", "criterion"] if "criterion" in cap else ["name"]
    for key, g in cap.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        per_seed = []
        for _, h in g[g["censor"] == ""].groupby("seed"):
            if h["D"].nunique() >= 3:
                per_seed.append(float(np.polyfit(np.log(h["D"]), np.log(h["x_max"]), 1)[0]))
        if not per_seed:
            continue
        m, lo, hi = t_interval(per_seed)
        ok = g[g["censor"] == ""]
        rows.append(
            dict(zip(keys, key))
            | {
                "slope": m,
                "low": lo,
                "high": hi,
                "n": len(per_seed),
                "D_min": int(ok["D"].min()),
                "D_max": int(ok["D"].max()),
            }
        )
    return pd.DataFrame(rows)


def boundary_fraction(summary: pd.DataFrame, name: str, ref: str) -> pd.DataFrame:
    """Per D where both are measured: the mean capacity of `name` over that of `ref`."""
    a = summary[summary["name"] == name].set_index("D")["mean"]
    b = summary[summary["name"] == ref].set_index("D")["mean"]
    both = a.index.intersection(b.index)
    return pd.DataFrame({"D": both, "ratio": (a[both] / b[both]).to_numpy()})
