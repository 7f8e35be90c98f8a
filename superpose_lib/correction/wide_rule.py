"""Wide indicators grown by rule (kind "wide_rule"): the first family built to keep working
as D grows, and why it cannot (chapter "Does it work asymptotically?"; the family that does
is `correction.scaling`).

The on-indicators get a group of their own (rows 0–1 of every circuit, untied from the
payload's positions, as E5), with redundancy S_α, a dead-zone step [θ, θ_hi] and an
affine-plane assignment. The share is f = 1/2: the indicator blocks and the payload
blocks both have M = D/4 neurons, the oracle's geometry, so the payload's own noise is
RiS's and criterion (b) ("indicators hold") tests the indicator group alone. Its load is
then x_α = T/M² = T(d/D)² = x.

Why S_α must grow. An unused indicator neuron n at layer 2 is connected to K ~ Poisson(λ)
neurons of the active circuits, λ = z·S³·x, and turns on when K/S passes θ. With
x = c/S² the ratio λ/(θS) = zc/θ is fixed, and the tail P(Poisson(zcS) > θS) falls
geometrically in S: ≈ exp(−S·I), I = θ·ln(θ/zc) − θ + zc. The spurious neurons feed the
next layer through N_c ≈ S²·x·M = c·M connections each; the balance χ cancels their mean,
so they act through the variance of that input, c²·N_c·p·E[α²] ∝ p·M/S². The cascade
stays sub-critical while p·M is bounded, so p must fall like 1/M: S·I ≳ ln M, S_α ∝ ln M,
and the capacity x* = c/S_α² ∝ 1/ln² M, i.e. T ∝ D²/ln² D — a slope of
d ln x*/d ln D ≈ −2/ln M (≈ −0.2 at M = 10⁴), not a power of D.

The rule (`wide_rule_design`) does not use that asymptotic form: it runs the neuron-level
recursion of `regime.spurious.indicator_theory` (the same approximations A1–A5 the regime
chapter checks against measurement, generalised to a dead zone θ and an indicator group of
its own) for every candidate (θ, S_α), finds each candidate's predicted boundary x* (the
largest load at which the predicted layer-L false-on and false-off rates stay ≤ `rate`
and the spurious fraction does not cascade), and takes the candidate with the largest x*.
Everything is a function of (D, z, L): no per-D tuning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..capacity import log_bisect
from ..core.assignment import capacity
from ..core.checks import check_int, checked, real
from ..core.criteria import RATE_MAX
from ..regime.spurious import indicator_theory

__all__ = [
    "WideRuleDesign",
    "wide_rule_design",
    "indicator_holds",
    "indicator_boundary",
    "THETAS",
    "S_ALPHA_MAX",
    "SHARE",
]

#: Dead zones the rule chooses from (θ_hi = 3/4 as RiS): below 0.45 the dead zone passes
#: the z/S quantum of an inactive circuit sharing a neuron with each active one at small S;
#: above 0.65 the active neurons' margin to θ_hi (χ pulls them down by (z−1)Sχ) is gone.
THETAS = (0.45, 0.55, 0.65)
#: Largest indicator redundancy the rule considers: S_α ∝ ln M stays below it up to
#: D ≈ 10⁶ (the rule reports when its choice hits this cap).
S_ALPHA_MAX = 16
#: The indicators' share of D: blocks of D/4 for both groups (the oracle's geometry).
SHARE = 0.5
_GRID = 60  # α grid of the recursion (design only: the boundary moves < 1 % from 60 to 200)


@dataclass(frozen=True)
class WideRuleDesign:
    """The rule's choice at width D for z active circuits and depth L: indicator redundancy
    S_alpha, dead zone [theta, theta_hi], share, assignment design, the predicted boundary
    x_star in T(d/D)² and M (neurons per block), capped (the best S_α is the rule's cap)."""

    D: int
    z: int
    L: int
    S_alpha: int
    theta: float
    theta_hi: float
    share: float
    design: str
    x_star: float
    M: int
    capped: bool

    @property
    def knobs(self) -> dict:
        """`make_scheme("wide", D, **knobs)` builds this design."""
        return {
            "share": self.share,
            "S_alpha": self.S_alpha,
            "theta": self.theta,
            "theta_hi": self.theta_hi,
            "design": self.design,
        }


@checked(x=real(0.0, 1.0, open_low=True))  # a load T/M² (T ≤ the capacity < M²)
def indicator_holds(
    M: int,
    x: float,
    *,
    S: int,
    z: int,
    L: int,
    theta: float,
    theta_hi: float = 0.75,
    rate: float = RATE_MAX,
    grid: int = _GRID,
) -> bool:
    """Does the recursion predict that an indicator group (M neurons per block, redundancy
    S, dead zone θ) at load x = T/M² holds at layer L: false-on and false-off ≤ rate, and
    the spurious fraction at L at most twice its layer-2 value (no cascade)?"""
    T = max(z, int(round(x * M * M)))
    kw = {"S": S, "z": z, "L": L, "theta": theta, "theta_hi": theta_hi, "grid": grid}
    r = indicator_theory(M, T, stop_above=0.05, **kw)
    if r["stopped"] is not None:
        if r["spurious_on"][2] < 0.025:
            return False  # past 5 % of the block from below 2.5 % at layer 2: more than doubled, a cascade
        r = indicator_theory(M, T, **kw)
    sp = r["spurious_on"]
    return r["false_on"][L] <= rate and r["false_off"][L] <= rate and sp[L] <= 2 * sp[2] + 1e-12


@checked(x_cap=real(0.0, 1.0, open_low=True))
def indicator_boundary(
    M: int, S: int, z: int, L: int, theta: float, rate: float, x_cap: float, tol: float = 0.03
) -> float:
    """Largest x ≤ x_cap at which `indicator_holds` for an indicator group of M neurons per
    block, redundancy S and dead zone [θ, 3/4] (0 if none from 1e-5): a galloping search
    up from 1e-5 in factors of 2, then bisection in log x to `tol` (a single crossing is
    assumed; the probes past the boundary are the expensive ones, so few are made)."""
    hold = lambda x: indicator_holds(M, x, S=S, z=z, L=L, theta=theta, rate=rate)  # noqa: E731
    lo = 1e-5
    if not hold(lo):
        return 0.0
    hi = lo
    while True:
        hi = min(2 * lo, x_cap)
        if not hold(hi):
            break
        if hi >= x_cap:
            return x_cap
        lo = hi
    return log_bisect(hold, lo, hi, tol)[0]


@lru_cache(maxsize=256)
def _design(D: int, z: int, L: int, rate: float) -> WideRuleDesign:
    M = D // 4
    x_payload = capacity(M, 6, "affine") / M**2  # the payload's assignment (S = 6) caps every candidate
    best = None
    for theta in THETAS:
        S_min = int(math.floor(z / theta)) + 1  # an inactive circuit's largest quantum z/S stays below θ
        trail = []  # x* of this θ's last candidates: x*(S) is unimodal in S, stop two past its peak
        for S in range(S_min, S_ALPHA_MAX + 1):
            if len(trail) >= 3 and trail[-1] < trail[-2] < trail[-3]:
                break
            try:
                cap = capacity(M, S, "affine")  # an affine plane of order p >= S needs M >= S·p
            except ValueError:
                break
            if cap < z:
                break
            x = indicator_boundary(M, S, z, L, theta, rate, min(cap / M**2, x_payload))
            trail.append(x)
            if best is None or x > best[0]:
                best = (x, S, theta)
    if best is None or best[0] <= 0:
        raise ValueError(f"D={D}: no indicator redundancy S_alpha <= {S_ALPHA_MAX} holds at any load for z={z}, L={L}")
    x, S, theta = best
    return WideRuleDesign(D, z, L, S, theta, 0.75, SHARE, "affine", x, M, S == S_ALPHA_MAX)


@checked
def wide_rule_design(D: int, *, z: int, L: int, rate: float = RATE_MAX) -> WideRuleDesign:
    """The scaling construction's settings at width D (module docstring): the (θ, S_α)
    with the largest predicted boundary for z active circuits at depth L. D must be a
    multiple of 4, at least 64 (an affine plane of S_α ≥ 2 lines per block)."""
    D = check_int("D", D, 64)
    if D % 4:
        raise ValueError(f"D={D} must be a multiple of 4 (allowed: D in {{64, 68, ...}})")
    z = check_int("z", z, 1, 8)
    L = check_int("L", L, 2, 64)
    rate = float(rate)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate={rate!r} is out of range: allowed 0 < rate < 1")
    return _design(D, z, L, rate)
