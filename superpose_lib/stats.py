"""Statistics used across the book: t-intervals over a few seeds, Poisson tails.

One home for them, so that every chapter's interval means the same thing: a 95% two-sided
t-interval with ν = n − 1 degrees of freedom over seeds (`t_interval`, `t975`).
"""

from __future__ import annotations

import math

import numpy as np

from .core.checks import check_real, checked

__all__ = ["t975", "t_interval", "poisson_sf"]


# t_{0.975, ν} for ν = 1..30 (two-sided 95%); beyond 30 the normal 1.96 is within 4%.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


@checked
def t975(nu: int) -> float:
    """t_{0.975, ν}: the two-sided 95% quantile of Student's t with ν degrees of freedom."""
    if isinstance(nu, bool) or not isinstance(nu, (int, np.integer)) or nu < 1:
        raise ValueError(f"nu={nu!r} is not allowed: degrees of freedom must be an integer >= 1")
    return _T975[nu - 1] if nu <= len(_T975) else 1.96


#: Largest mean a Poisson tail is computed for (the sum below has ≈ λ terms).
POISSON_LAM_MAX = 1e6


@checked
def poisson_sf(lam: float, k: float) -> float:
    """P(X > k) for X ~ Poisson(lam) (k real: P(X ≥ ⌊k⌋ + 1)).

    Summed upward from 0 in log space; past the mode the terms fall geometrically, so the
    sum stops once they no longer change the CDF (at most ≈ λ + 40√λ + 40 terms)."""
    lam = check_real("lam", lam, 0.0, POISSON_LAM_MAX)
    k = check_real("k", k)
    if k < 0:
        return 1.0
    if lam == 0.0:
        return 0.0
    cut = lam + 40.0 * math.sqrt(lam) + 40.0  # P(X > cut) < 1e-300
    if k >= cut:
        return 0.0
    n = int(math.floor(k))
    # P(X > n) = 1 − Σ_{j ≤ n} p_j, or Σ_{j > n} p_j where that is the smaller sum
    log_p = lambda j: -lam + j * math.log(lam) - math.lgamma(j + 1)  # noqa: E731
    if n < lam:
        return max(0.0, 1.0 - math.fsum(math.exp(log_p(j)) for j in range(n + 1)))
    return min(1.0, math.fsum(math.exp(log_p(j)) for j in range(n + 1, int(cut) + 2)))


def t_interval(values) -> tuple[float, float, float]:
    """Mean and the 95% t-interval (ν = n − 1 degrees of freedom) of a few seeds' values:
    (mean, low, high); a single value has no interval (low = high = mean)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        raise ValueError("values must not be empty")
    m = float(v.mean())
    if v.size == 1:
        return m, m, m
    nu = v.size - 1
    h = t975(nu) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - h, m + h
