"""The chapter "Does it work asymptotically?": its measurements and summaries, on small
networks and on tables with known answers."""

import math

import pandas as pd
import pytest

from superpose_lib import asymptotic
from superpose_lib.capacity import capacity_summary, slopes
from superpose_lib.correction import gate_false_rate, noise_ratio, variance_ratio


def test_theory_table_orders_the_constructions():
    t = asymptotic.theory_table([1024, 4096, 16384], z=2, L=10).set_index(["name", "D"])
    for D in (1024, 4096, 16384):
        assert t.loc[("scaling", D), "x_star"] > t.loc[("wide_rule", D), "x_star"] > t.loc[("baseline", D), "x_star"]
    # the switch-off construction falls by less than the baseline over the same widths
    fall = lambda n: t.loc[(n, 1024), "x_star"] / t.loc[(n, 16384), "x_star"]  # noqa: E731
    assert fall("scaling") < fall("baseline")
    assert 0 < t.loc[("scaling", 16384), "register"] < 1


def test_mechanism_rows_pair_the_network_with_its_theory():
    r = asymptotic.mechanism_rows(4, 2048, 2, 4, 0, x_M=0.02, share=0.25, batch=16)[0]
    assert r["ratio"] == pytest.approx(r["q90"] / r["q90_oracle"])
    p = gate_false_rate(r["M"], r["M_r"], r["T"], S=2, S_r=4, z=2)
    assert r["p_gate_theory"] == p and r["y"] == noise_ratio(p, r["T"], r["M"])
    assert r["ratio_theory"] == pytest.approx(math.sqrt(variance_ratio(r["y"], 4)))
    assert r["n_gates"] == 3 * 16 * r["M"] and 0 <= r["p_gate"] < 1
    assert r == asymptotic.mechanism_rows(4, 2048, 2, 4, 0, x_M=0.02, share=0.25, batch=16)[0]  # seeded


def test_payload_rows():
    r = asymptotic.payload_rows(1024, 2, 4, 0, x=0.001, batch=16)[0]
    assert r["T"] == 66 and r["q90"] > 0 and r["q90_own"] > 0 and r["q90_ris"] > 0


def _cap(slope, name, criterion="b", seeds=(0, 1, 2), Ds=(1024, 4096, 16384), x0=0.01):
    return [
        {
            "name": name,
            "criterion": criterion,
            "D": D,
            "seed": s,
            "x_max": x0 * (D / 1024) ** slope * (1 + 0.01 * s),
            "censor": "",
            "resolution": 0.05,
            "why": "q90_dx 1 > 1",
        }
        for D in Ds
        for s in seeds
    ]


def test_fit_summary_puts_the_theory_beside_the_measured_slope():
    cap = pd.DataFrame(_cap(-0.2, "scaling") + _cap(-0.5, "baseline"))
    theory = pd.DataFrame(
        [
            {"name": n, "D": D, "x_star": 0.01 * (D / 1024) ** s}
            for n, s in (("scaling", -0.25), ("baseline", -0.5))
            for D in (1024, 4096, 16384, 65536)
        ]
    )
    f = asymptotic.fit_summary(slopes(cap), theory).set_index("name")
    assert f.loc["scaling", "slope"] == pytest.approx(-0.2, abs=0.01)
    assert f.loc["scaling", "theory"] == pytest.approx(-0.25) and f.loc["baseline", "theory"] == pytest.approx(-0.5)


def test_headline_from_known_tables():
    cap = pd.DataFrame(
        _cap(-0.2, "scaling")
        + _cap(-0.5, "baseline")
        + _cap(-0.9, "E5")
        + _cap(-0.5, "E1")
        + _cap(0.0, "oracle", Ds=(1024, 4096), x0=0.006)
        + _cap(0.0, "scaling", "a", x0=0.0013)
    )
    summary = capacity_summary(cap)
    theory = pd.DataFrame(
        [
            {"name": "scaling", "D": D, "x_star": 0.01 * (D / 1024) ** -0.2, "S": 3 + i, "register": 0.3 + 0.02 * i}
            for i, D in enumerate((1024, 4096, 16384, 65536))
        ]
    )
    fits = asymptotic.fit_summary(slopes(cap), theory)
    h = asymptotic.headline(summary, fits, theory, criterion_b="b", criterion_a="a", z=2, L=10)
    assert h["D0"] == "1024" and h["D1"] == "16384"
    assert h["slope-b-scaling"].startswith("-0.20 [") and "theory -0.20" in h["slope-b-scaling"]
    assert h["over-E5"] == f"{16**0.7:.0f}"  # 16^(-0.2) / 16^(-0.9)
    assert h["oracle-D"] == "4096" and h["a-baseline-1"] == "not measured" and h["Dc"] == "16384"
    assert h["share-1"] == "34%" and h["Sr-0"] == "3" and h["Sr-1"] == "5"
    assert h["bound-0"] == f"{0.01 * 1.01 * math.log(1024) / 16:.4f}"
    assert h["weights-1"].endswith("%") and float(h["weights-1"][:-1]) < 100


def test_z_table():
    cap = pd.DataFrame(_cap(-0.2, "scaling") + _cap(-0.6, "baseline", x0=0.002))
    z = asymptotic.z_table(cap, z=4, L=10)
    assert set(z["summary"].name) == {"scaling", "baseline"} and z["summary"].theory.notna().all()
    assert z["glue"]["as-z4-D1"] == "16384" and z["glue"]["as-z4-sc-1"].startswith("0.00")


def test_mechanism_facts_count_and_compare_from_known_rows():
    rows = pd.DataFrame(
        {
            "D": [4096] * 4,
            "seed": [0, 1, 0, 1],
            "S_r": [3, 3, 6, 6],
            "p_gate": [1e-2, 3e-2, 1e-5, 0.0],
            "p_gate_theory": [2e-2, 2e-2, 1e-5, 1e-5],
            "n_gates": [20000, 20000, 20000, 20000],
        }
    )
    f = asymptotic.mechanism_facts(rows, c=0.5, share=0.25)
    # 1e-2·2e4 = 200 and 3e-2·2e4 = 600 false gates counted; 0.2 and 0 are not
    assert list(f["counted"].index) == [0, 1]
    assert list(f["fit"].round(6)) == [0.5, 1.5]
    g = f["glue"]
    assert g["as-mech-p0"] == "2.0e-02" and g["as-mech-p1"] == "5.0e-06"
    assert (g["as-mech-S0"], g["as-mech-S1"], g["as-mech-fit"], g["as-mech-n"]) == ("3", "6", "0.50 to 1.50", "2")
    assert g["as-mech-share"] == "25%" and g["as-mech-c"] == "0.5"


def test_payload_facts_average_over_seeds_per_D():
    rows = pd.DataFrame(
        {
            "D": [1024, 1024, 4096, 4096],
            "seed": [0, 1, 0, 1],
            "q90": [0.1, 0.3, 0.2, 0.2],
            "q90_own": [0.1, 0.1, 0.2, 0.2],
            "q90_ris": [0.5, 0.7, 0.9, 0.9],
        }
    )
    f = asymptotic.payload_facts(rows, x=0.004)
    assert f["by_D"].loc[1024, "q90"] == pytest.approx(0.2) and f["by_D"].loc[4096, "q90_ris"] == pytest.approx(0.9)
    g = f["glue"]
    assert (g["as-pay-D0"], g["as-pay-D1"], g["as-pay-ris0"], g["as-pay-own1"], g["as-pay-n"]) == (
        "1024",
        "4096",
        "0.6",
        "0.2",
        "2",
    )


def test_theory_table_puts_the_family_bound_above_the_rule():
    t = asymptotic.theory_table([1024, 16384], z=2, L=10).set_index(["name", "D"])
    for D in (1024, 16384):
        assert t.loc[("scaling_bound", D), "x_star"] >= 0.99 * t.loc[("scaling", D), "x_star"]


def test_goal_facts_from_a_known_summary():
    from superpose_lib.correction import family_boundary

    summary = capacity_summary(pd.DataFrame(_cap(-0.2, "scaling", x0=0.02, Ds=(1024, 4096))))
    g = asymptotic.goal_facts(summary, criterion_b="b", z=2, L=10, D_to=4096)
    bounds = {S: (family_boundary(1024, z=2, L=10, S=S), family_boundary(4096, z=2, L=10, S=S)) for S in (1, 2, 3)}
    assert g["bounds"] == bounds
    assert g["fall_min"] == pytest.approx(min(a / b for a, b in bounds.values()))
    assert g["slope_max"] == pytest.approx(-math.log(g["fall_min"]) / math.log(4))
    assert g["best_to"] == max(b for _, b in bounds.values())
    mean = summary.set_index("D")["mean"]
    assert g["ratio"][1024] == pytest.approx(mean[1024] / bounds[2][0])
    assert g["headroom"] == pytest.approx(g["best_to"] / mean[4096])
    assert list(g["table"].index) == [1, 2, 3] and g["glue"]["as-fam-D1"] == "4096"
    # x* ∝ 1/ln(T/(y*·M)): the local slope is negative and flattens as D grows
    assert g["local"][1024] < g["local"][4096] < 0
    assert g["bound_local"][1024] < 0 and g["bound_local"][4096] < 0
    assert g["most_from"] == pytest.approx(max(2 * b / a for a, b in bounds.values()))
    # D_to not measured: the headroom is unknown, the bound still computed
    assert math.isnan(asymptotic.goal_facts(summary, criterion_b="b", z=2, L=10, D_to=16384)["headroom"])
    with pytest.raises(ValueError, match="D_to"):
        asymptotic.goal_facts(summary, criterion_b="b", z=2, L=10, D_to=1024)
    with pytest.raises(ValueError, match="scaling"):
        asymptotic.goal_facts(summary, criterion_b="a", z=2, L=10)
