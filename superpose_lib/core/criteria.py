"""When a network works: the one definition every capacity in the book uses.

Two failure modes are kept apart. The payload's own propagation noise follows RiS's theory:
it is set by T(d/D)², the depth and z, and is flat in D at fixed T(d/D)². The on-indicator
failure (a seizure: inactive circuits read as on, their noise written into every neuron
they use) grows with D. Two criteria at layer l, read from the statistics that
`rotation_errors` and `correction.scheme_run` return:

(a) **works** (`works(stats, l)`): the on-indicators are right and the payload is usable
    in absolute terms:
    - false_on ≤ RATE_MAX and false_off ≤ RATE_MAX;
    - q90_dx ≤ Q90_DX_MAX and worst_dx < WORST_DX_MAX.

(b) **indicators hold** (`works(stats, l, oracle=oracle_stats)`): the on-indicators are
    right and cost the payload nothing beyond its own noise:
    - false_on ≤ RATE_MAX and false_off ≤ RATE_MAX;
    - q90_dx ≤ ORACLE_FACTOR × the oracle's q90_dx on the same draw: the same network,
      active sets and inputs, with every neuron that no active circuit uses switched off
      after each layer (`scheme_run(..., with_oracle=True)`; for RiS's layout this is
      RiS's oracle). The reference is the construction's own oracle, not RiS's: a layout
      that reads α from other neurons than its payload's (E5, the scaling construction)
      has a payload noise of its own, and (b) asks only what the indicators add to it.

(b) answers the scaling question; (a) says what is usable at a given depth. `failures`
names the conditions a network misses, as a diagnostic of why it fails.
"""

from __future__ import annotations

import math

from .checks import check_int, check_real, checked

__all__ = [
    "ON_THRESHOLD",
    "RATE_MAX",
    "Q90_DX_MAX",
    "WORST_DX_MAX",
    "ORACLE_FACTOR",
    "CRITERIA",
    "STAT_KEYS",
    "failures",
    "works",
    "certain_failure",
]

#: An on-indicator readout α̂ above 1/2 reads as on: halfway between off (0) and on (1), and
#: above the step's dead zone (RiS's step passes α̂ > 1/4 and saturates at 3/4).
ON_THRESHOLD = 0.5

#: At most one circuit in 1000 with its on-indicator on the wrong side of ON_THRESHOLD, in
#: either direction: the book's on-indicator budget. A wrongly-off circuit is a dropped
#: output; a wrongly-on one writes its noise into the S·d neurons it uses at the next layer.
#: With batch ≥ 128 the B·(T − z) inactive readouts resolve 10⁻³ at every T in the book; the
#: B·z active ones resolve it only as "none wrong", which is what it then requires.
RATE_MAX = 1e-3

#: 90 % of the active circuits' payloads within a quarter of their length (|x| = 1): an
#: angle error below ≈ 14°, which a rotation circuit's readout can still be used for.
Q90_DX_MAX = 0.25

#: A dropped circuit (output 0) has |δx| = 1 exactly, so worst |δx| < 1 excludes any
#: dropped circuit in the batch; a strict bound, since a dropped one must not pass.
WORST_DX_MAX = 1.0

#: Criterion (b): the payload's 90th-percentile error within 1.5× the oracle's on the same
#: draw. The oracle switches every unused neuron off, so its error is the payload's own
#: propagation noise; 1.5× leaves room for the indicator noise that a real construction
#: adds below a seizure, and the 90th percentile (not the mean) keeps a few phantom
#: circuits' large errors from deciding alone.
ORACLE_FACTOR = 1.5

CRITERIA = ("works", "indicators hold")
STAT_KEYS = ("false_on", "false_off", "q90_dx", "worst_dx")


def _value(stats, key: str, layer: int, what: str = "stats") -> float:
    if not isinstance(stats, dict) or key not in stats:
        raise ValueError(
            f"{what} has no {key!r}: pass the dict that rotation_errors or scheme_run returns "
            f"(keys {', '.join(STAT_KEYS)})"
        )
    seq = stats[key]
    try:
        v = seq[layer]
    except (IndexError, TypeError, KeyError):
        raise ValueError(
            f"layer={layer} is out of range for {what}[{key!r}] (length {len(seq) if hasattr(seq, '__len__') else '?'})"
        ) from None
    return float(v)


@checked
def failures(stats: dict, layer: int, *, oracle: dict | None = None) -> list[str]:
    """The conditions of the criterion that `stats` misses at `layer`: [] when it works.
    Criterion (a) without `oracle`, (b) with the oracle's statistics of the same draw."""
    layer = check_int("layer", layer, 1)
    v = {k: _value(stats, k, layer) for k in STAT_KEYS}
    if any(math.isnan(x) for x in v.values()):
        return [f"{k} is not a number" for k, x in v.items() if math.isnan(x)]
    out = []
    if v["false_on"] > RATE_MAX:
        out.append(f"false_on {v['false_on']:.3g} > {RATE_MAX:g}")
    if v["false_off"] > RATE_MAX:
        out.append(f"false_off {v['false_off']:.3g} > {RATE_MAX:g}")
    if oracle is None:
        if v["q90_dx"] > Q90_DX_MAX:
            out.append(f"q90_dx {v['q90_dx']:.3g} > {Q90_DX_MAX:g}")
        if not v["worst_dx"] < WORST_DX_MAX:
            out.append(f"worst_dx {v['worst_dx']:.3g} >= {WORST_DX_MAX:g}")
    else:
        ref = check_real("oracle q90_dx", _value(oracle, "q90_dx", layer, "oracle"), 0.0)
        if v["q90_dx"] > ORACLE_FACTOR * ref:
            out.append(f"q90_dx {v['q90_dx']:.3g} > {ORACLE_FACTOR:g} × the oracle's {ref:.3g}")
    return out


@checked
def works(stats: dict, layer: int, *, oracle: dict | None = None) -> bool:
    """Criterion (a) "works" at `layer`, or (b) "indicators hold" when the oracle's
    statistics of the same draw are given (see the module's docstring for both)."""
    return not failures(stats, layer, oracle=oracle)


@checked
def certain_failure(
    false_on: int, false_off: int, dx, *, n_inactive: int, n_active: int, oracle_q90: float | None = None
) -> bool:
    """Whether a network must fail the criterion ((a), or (b) given the oracle's q90_dx on the
    full draw) once all n_inactive + n_active readouts are in, from a part of them: the
    wrong-side counts so far (false_on, false_off) and the active circuits' |δx| so far (dx, a
    1-d tensor). Counts only grow, and q90 of n values exceeds a bound once more than
    0.1·n + 1 of them do (the quantile's interpolation points then both lie above it), so a
    True here is the full run's verdict; a capacity probe stops there."""
    if false_on > RATE_MAX * n_inactive or false_off > RATE_MAX * n_active:
        return True
    bound = Q90_DX_MAX if oracle_q90 is None else ORACLE_FACTOR * float(oracle_q90)
    if int((dx > bound).sum()) > 0.1 * n_active + 1:
        return True
    return oracle_q90 is None and bool((dx >= WORST_DX_MAX).any())
