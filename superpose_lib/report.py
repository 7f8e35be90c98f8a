"""Formatters for numbers in the prose: intervals, censored bounds, lengths, comparisons.

Every chapter writes a number the same way through these: a censored value as a bound
("≥ 0.004", "< 0.0005"), never as a measurement, and an interval as [low, high].
"""

from __future__ import annotations

import math

from .core.checks import checked, measured

__all__ = [
    "format_bound",
    "format_capacity",
    "compare_phrase",
    "fmt_length",
]


# ---- summaries -------------------------------------------------------------------------
@checked(value=measured())
def format_bound(bound: str, value: float, digits: int = 2) -> str:
    """A gain or fraction with its censoring bound ("≥", "≤" or "") as text; "–" when there
    is none ("n/a") and "not reached by the baseline" when only the scheme passes."""
    if bound == "n/a" or value != value and bound != "≥∞":
        return "–"
    if bound == "≥∞":
        return "unbounded (the baseline reaches no grid point)"
    if bound == "<":
        return "0"
    return f"{bound}{value:.{digits}f}"


@checked(mean=measured(), low=measured(), high=measured(), x_min=measured())
def format_capacity(
    mean: float,
    low: float,
    high: float,
    censor: str = "",
    *,
    x_min: float | None = None,
    digits: int = 5,
    n: int | None = None,
) -> str:
    """A capacity in x = T(d/D)² as text, censored values written as such: "< x_min" (the
    grid's first point fails), "≥ m" (every seed passed the grid's last point or the
    assignment's capacity: only a lower bound), "≥ m (some seeds at the grid's end)",
    otherwise "m [low, high]" (95% t-interval), or "m (one seed)" when n = 1."""
    f = lambda v: f"{v:.{digits}f}".rstrip("0").rstrip(".") if v == v else "–"
    if censor == "below":
        return f"< {f(x_min)}" if x_min is not None else "not reached"
    if censor in ("above", "capped"):
        return f"≥ {f(mean)}" + (" (assignment full)" if censor == "capped" else "")
    if censor == "some-above":
        return f"≥ {f(mean)} (some seeds at the grid's end or with a full assignment)"
    if censor == "some-below":
        return f"≤ {f(mean)} (some seeds below the grid)"
    if n == 1:
        return f"{f(mean)} (one seed)"
    return f"{f(mean)} [{f(low)}, {f(high)}]"


def compare_phrase(row, other: str, unit: str) -> str:
    """A difference with its interval as words: row has "nats per token" (or the first value),
    "lo", "hi" of (this − other). "lower than the bigram model's by 0.31 nats per token (95 %
    CI 0.28–0.34)", "higher than …", or "not distinguishable from …" when the interval holds 0."""
    v, lo, hi = float(row.iloc[0]), float(row["lo"]), float(row["hi"])
    if hi < 0:
        return f"lower than {other} by {-v:.2f} {unit} (95 % CI {-hi:.2f}–{-lo:.2f})"
    if lo > 0:
        return f"higher than {other} by {v:.2f} {unit} (95 % CI {lo:.2f}–{hi:.2f})"
    return f"not distinguishable from {other} (difference {v:+.2f} {unit}, 95 % CI {lo:+.2f} to {hi:+.2f})"


@checked(ell=measured(), lo=measured(), hi=measured(), cap=measured())
def fmt_length(ell: float, lo: float | None = None, hi: float | None = None, *, cap: float = 1000.0) -> str:
    """A decay length as text, censored: beyond `cap` tokens (or not decaying at all) it is
    "> cap" — a flat kernel has no measurable decay length inside a finite window."""

    def one(v):
        return f"> {cap:.0f}" if not math.isfinite(v) or v > cap else f"{v:.1f}"

    if lo is None:
        return one(ell)
    if not math.isfinite(ell) or ell > cap:
        return (
            f"> {cap:.0f} (no decay resolved)"
            if not math.isfinite(lo) or lo > cap
            else f"≥ {lo:.0f} (upper end not resolved)"
        )
    return f"{ell:.1f} [{lo:.1f}, {one(hi)}]"
