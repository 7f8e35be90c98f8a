"""The capacity summaries (`superpose_lib.capacity`) on tables with known answers."""

import math

import pandas as pd

from superpose_lib.capacity import boundary_fraction, capacity_summary, slopes


def _table(slope=-0.4, seeds=(0, 1, 2), jitter=0.03):
    rows = []
    for s in seeds:
        for D in (1024, 2048, 4096, 8192):
            x = 0.005 * (D / 1024) ** slope * (1 + jitter * (s - 1))
            rows.append(
                {"name": "a", "D": D, "seed": s, "x_max": x, "censor": "", "resolution": 0.05, "why": "q90_dx 1"}
            )
    return pd.DataFrame(rows)


def test_slopes_recover_a_power_law():
    f = slopes(_table()).set_index("name")
    assert math.isclose(f.loc["a", "slope"], -0.4, abs_tol=1e-9)
    assert f.loc["a", "n"] == 3 and f.loc["a", "D_min"] == 1024 and f.loc["a", "D_max"] == 8192


def test_censored_capacities_stay_out_of_the_fit():
    t = _table()
    t.loc[t.D == 8192, "x_max"] = 1.0
    t.loc[t.D == 8192, "censor"] = "above"
    f = slopes(t).set_index("name")
    assert math.isclose(f.loc["a", "slope"], -0.4, abs_tol=1e-9) and f.loc["a", "D_max"] == 4096


def test_summary_interval_is_at_least_the_resolution():
    t = _table(jitter=0.0)  # every seed the same: a zero t-interval
    s = capacity_summary(t)
    r = s.iloc[0]
    assert math.isclose(r["high"] / r["mean"], 1.05) and math.isclose(r["mean"] / r["low"], 1.05)
    assert r["why"] == "q90_dx" and r["censor"] == ""
    t.loc[(t.D == 1024) & (t.seed == 0), "censor"] = "above"
    assert capacity_summary(t).iloc[0]["censor"] == "some-above"


def test_boundary_fraction():
    s = pd.DataFrame({"name": ["a", "b", "a"], "D": [1024, 1024, 2048], "mean": [1.0, 4.0, 2.0]})
    f = boundary_fraction(s, "a", "b")
    assert list(f["D"]) == [1024] and list(f["ratio"]) == [0.25]
