"""The book's capacity search: bisection to its resolution, censoring at both ends."""

import math

import pytest

from superpose_lib.capacity import RESOLUTION, bisect_capacity, log_bisect


@pytest.mark.parametrize("x0", [1e-4, 0.003, 0.05])
@pytest.mark.parametrize("true", [2.3e-4, 0.0031, 0.0199])
def test_brackets_the_threshold_to_the_resolution(x0, true):
    calls = []

    def passes(x):
        calls.append(x)
        return x <= true

    r = bisect_capacity(passes, x0=x0, x_min=1e-5, x_max=0.1)
    assert r["censor"] == ""
    assert r["x_max"] <= true < r["x_fail"]
    assert r["x_fail"] / r["x_max"] <= 1 + RESOLUTION
    assert r["probes"] == len(calls) <= 16


def test_a_good_start_costs_few_probes():
    r = bisect_capacity(lambda x: x <= 0.00312, x0=0.003, x_min=1e-5, x_max=0.1)
    assert r["probes"] <= 6


@pytest.mark.parametrize("direction", [1, -1])
def test_a_far_guess_gallops_in_growing_steps_never_more_than_2x_past(direction):
    true, calls = 0.002, []

    def passes(x):
        calls.append(x)
        return x <= true

    x0 = true / 33 if direction == 1 else true * 33
    r = bisect_capacity(passes, x0=x0, x_min=1e-6, x_max=1.0, step=1.1)
    assert r["x_max"] <= true < r["x_fail"] <= r["x_max"] * (1 + RESOLUTION)
    # fixed steps of 1.1 would take ln 33 / ln 1.1 = 37 probes to bracket it
    assert r["probes"] <= 14
    if direction == 1:  # no probe beyond 2x the boundary: a seized network is the costliest
        assert max(calls) <= 2 * true
    else:
        assert min(calls) >= true / 2 / (1 + RESOLUTION)


def test_censored_at_both_ends():
    below = bisect_capacity(lambda x: False, x0=0.01, x_min=1e-4, x_max=0.1)
    assert below["censor"] == "below" and below["x_max"] == 1e-4
    above = bisect_capacity(lambda x: True, x0=0.01, x_min=1e-4, x_max=0.1)
    assert above["censor"] == "above" and above["x_max"] == 0.1 and math.isinf(above["x_fail"])


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"x0": 0.0}, "x0"),
        ({"x_min": -1.0}, "x_min"),
        ({"x_max": 1e-6}, "x_max"),
        ({"resolution": 0.0}, "resolution"),
        ({"max_probes": 1}, "max_probes"),
        ({"x0": float("nan")}, "x0"),
    ],
)
def test_bad_arguments_name_the_parameter(kw, name):
    args = {"x0": 0.01, "x_min": 1e-5, "x_max": 0.1} | kw
    with pytest.raises(ValueError, match=name):
        bisect_capacity(lambda x: True, **args)


def test_log_bisect_brackets_the_crossing_in_log_x():
    calls = []

    def holds(x):
        calls.append(x)
        return x <= 0.0123

    lo, hi = log_bisect(holds, 1e-4, 1.0, 0.01)
    assert lo <= 0.0123 < hi and hi / lo <= 1.01
    assert calls[0] == pytest.approx(0.01)  # the geometric midpoint of the bracket
    calls.clear()
    lo3, hi3 = log_bisect(holds, 1e-4, 1.0, 0.01, max_steps=3)
    assert len(calls) == 3 and lo3 <= 0.0123 < hi3 and hi3 / lo3 == pytest.approx(1e4 ** (1 / 8))
    calls.clear()
    assert log_bisect(holds, 0.01, 0.0101, 0.05) == (0.01, 0.0101) and not calls  # within tol already
    for kw in (dict(lo=0.0), dict(hi=1e-5), dict(tol=1.0), dict(max_steps=-1)):
        args = dict(lo=1e-4, hi=1.0, tol=0.01) | kw
        with pytest.raises(ValueError, match=next(iter(kw))):
            log_bisect(holds, args.pop("lo"), args.pop("hi"), args.pop("tol"), **args)
