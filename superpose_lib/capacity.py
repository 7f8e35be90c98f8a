"""One capacity search for the book: the largest load x = T(d/D)² at which a network still
passes a criterion, per seed, by bisection to a stated resolution.

The search starts from a guess x0 (the theory's predicted boundary, so that a capacity
costs a few probes rather than a grid), gallops in factors of `step` until it brackets the
boundary, and bisects in log x until the bracket's ratio is at most 1 + resolution. A small
step suits a good guess: a probe far past the boundary is a seized network, the most
expensive kind to run. The
interval over seeds is then the real uncertainty; the resolution is stated beside it.
Pass/fail is assumed monotone in x (one crossing).

Censoring is written at both ends: "below" when even x_min fails (the capacity is < x_min,
x_max is then x_min as a bound), "above" when x_max passes (the capacity is ≥ x_max: for a
scheme whose assignment holds no more circuits, x_max is that limit).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .core.checks import checked

__all__ = ["bisect_capacity", "RESOLUTION"]

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
def bisect_capacity(passes: Callable[[float], bool], *, x0: float, x_min: float, x_max: float,
                    resolution: float = RESOLUTION, max_probes: int = 24, step: float = 2.0) -> dict:
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
    if probe(x):
        lo, hi = x, None
        while hi is None:
            if lo >= hi_b:
                return out | {"x_max": lo, "x_fail": math.inf, "censor": "above", "probes": n}
            v = min(step * lo, hi_b)
            lo, hi = (v, None) if probe(v) else (lo, v)
    else:
        lo, hi = None, x
        while lo is None:
            if hi <= lo_b:
                return out | {"x_max": lo_b, "x_fail": lo_b, "censor": "below", "probes": n}
            v = max(hi / step, lo_b)
            lo, hi = (v, hi) if probe(v) else (None, v)
    while hi / lo > 1 + res and n < max_probes:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if probe(mid) else (lo, mid)
    return out | {"x_max": lo, "x_fail": hi, "censor": "", "probes": n}
