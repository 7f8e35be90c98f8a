"""Wide indicators grown by rule: the design rule, make_scheme("wide_rule"), the generalised recursion."""

import math

import numpy as np
import pytest

from superpose_lib.correction import make_scheme, scale, scheme_capacity, scheme_run, wide_rule_design
from superpose_lib.regime.spurious import _power_pmf, indicator_theory, spurious_theory


def test_power_pmf_matches_repeated_convolution():
    rng = np.random.default_rng(0)
    p = rng.random(7)
    p /= p.sum()
    naive = np.array([1.0])
    for _ in range(5):
        out = np.zeros(naive.size + p.size - 1)
        for i, a in enumerate(naive):  # the naive loop the FFT must reproduce
            for j, b in enumerate(p):
                out[i + j] += a * b
        naive = out
    assert np.allclose(_power_pmf(p, 5), naive, atol=1e-12)


def test_indicator_theory_is_spurious_theory_for_ris_step():
    D, T = 4096, 5000
    a = spurious_theory(D, T, S=6, L=5, z=2)
    b = indicator_theory(D // 4, T, S=6, z=2, L=5, theta=0.25, theta_hi=0.75)
    assert a["spurious_on"] == b["spurious_on"]
    assert a["sigma2"] == b["sigma2"]


def test_indicator_theory_rates_rise_with_load():
    lo = indicator_theory(1024, 1000, S=6, z=2, L=6, theta=0.55)
    hi = indicator_theory(1024, 6000, S=6, z=2, L=6, theta=0.55)
    assert lo["false_on"][6] < hi["false_on"][6]
    assert lo["spurious_on"][2] < hi["spurious_on"][2]
    assert all(0.0 <= v <= 1.0 for v in hi["false_on"] + hi["false_off"])


@pytest.mark.parametrize(
    "kw, name",
    [({"S": 0}, "S"), ({"theta": 1.5}, "theta"), ({"theta_hi": 0.5}, "theta_hi"), ({"L": 1}, "L"), ({"z": 0}, "z")],
)
def test_indicator_theory_refuses_bad_input(kw, name):
    args = {"S": 6, "z": 2, "L": 4, "theta": 0.55} | kw
    with pytest.raises(ValueError, match=name):
        indicator_theory(1024, 1000, **args)


def test_design_rule_is_deterministic_and_grows_S_with_D():
    small, large = wide_rule_design(1024, z=2, L=10), wide_rule_design(65536, z=2, L=10)
    assert wide_rule_design(1024, z=2, L=10) == small
    assert large.S_alpha > small.S_alpha
    assert large.x_star < small.x_star  # the family's boundary falls with D (chapter "Does it work asymptotically?")
    assert small.M == 256 and small.share == 0.5 and small.design == "affine"


@pytest.mark.parametrize(
    "kw, name", [({"D": 1026}, "D"), ({"D": 32}, "D"), ({"z": 0}, "z"), ({"L": 1}, "L"), ({"rate": 0.0}, "rate")]
)
def test_design_rule_refuses_bad_input(kw, name):
    args = {"D": 1024, "z": 2, "L": 10} | kw
    D = args.pop("D")
    with pytest.raises(ValueError, match=name):
        wide_rule_design(D, **args)


def test_make_scheme_wide_rule():
    rule = wide_rule_design(1024, z=2, L=6)
    s = make_scheme("wide_rule", 1024, z=2, L=6, x=rule.x_star / 2)
    assert s.name == "wide_rule" and s.D <= 1024 and s.theta_lo == rule.theta
    ind, pay = s.groups
    assert (ind.S, ind.M, pay.S, pay.M) == (rule.S_alpha, 256, 6, 256)
    with pytest.raises(ValueError, match="x="):
        make_scheme("wide_rule", 1024, z=2, L=6, x=2 * rule.x_star)
    with pytest.raises(ValueError, match="needs z and L"):
        make_scheme("wide_rule", 1024)
    r = scheme_run(s, round(rule.x_star / 2 * 256**2), z=2, L=6, batch=16, seed=0)  # half the predicted boundary
    assert r["false_on"][6] <= 1e-3


def test_scheme_capacity_row_is_seeded_and_bracketed():
    kw = dict(criterion="indicators hold", batch=32, resolution=0.1)
    a = scheme_capacity("baseline", 512, 2, 4, 0, **kw)[0]
    scale._RUNS.clear()  # no memoised probes: the second search reruns every network
    b = scheme_capacity("baseline", 512, 2, 4, 0, **kw)[0]
    assert {k: v for k, v in a.items() if k != "knob"} == {k: v for k, v in b.items() if k != "knob"}
    assert a["censor"] in ("", "above") and a["x_max"] > 0
    if a["censor"] == "":
        assert a["x_fail"] / a["x_max"] <= 1.1 and a["why"]
    with pytest.raises(ValueError, match="criterion"):
        scheme_capacity("baseline", 512, 2, 4, 0, criterion="indicator")
    assert math.isnan(a["knob"])  # the baseline has no knob
