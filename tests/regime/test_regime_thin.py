"""The regime chapter's summaries (the numbers its claims test and its prose glues) and its
plot functions' convention (data in, axes out), on small hand-made inputs."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from superpose_lib import regime as rg  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_boundary_word_and_words():
    assert rg.boundary_word(0.00123) == "0.0012"
    assert rg.boundary_word(math.inf) == "not reached"
    b = pd.DataFrame(
        {
            "z": [1, 1],
            "layer": [4, 4],
            "level": [1.5, 2.0],
            "x_star": [0.002, math.inf],
            "lo": [0.001, 0.003],
            "hi": [0.003, math.inf],
        }
    )
    t = rg.boundary_words(b)
    assert list(t.columns) == ["ratio 1.5", "ratio 2"]
    assert t.loc[(1, 4), "ratio 1.5"] == "0.0020 [0.0010, 0.0030]"
    assert t.loc[(1, 4), "ratio 2"] == "not reached [0.0030, not reached]"


def _ris():
    rows = []
    for z in (1, 2):
        for layer in (1, 2, 4):
            for D in (1000, 2000):
                for x, r in ((0.001, 1.0 + 0.01 * layer), (0.008, 3.0 * z + D / 1000)):
                    rows.append(dict(quantity="active_x", z=z, layer=layer, D=D, x=x, ratio=r))
    return pd.DataFrame(rows)


def test_ratio_summary_medians_and_verdict():
    bounds = pd.DataFrame(
        {
            "z": [1, 2],
            "layer": [4, 4],
            "level": [2.0, 2.0],
            "x_star": [0.003, 0.0035],
            "lo": [0.002, 0.0030],
            "hi": [0.0039, 0.005],
        }
    )
    p = rg.ratio_summary(_ris(), bounds, L=4)
    assert p["low_med"].loc[(1, 2)] == pytest.approx(1.02)
    assert set(p["early"].index.get_level_values("layer")) == {1, 2}
    assert p["high_med"].to_dict() == pytest.approx({1: 4.5, 2: 7.5})  # median over D of 3z + D/1000
    assert (p["by_d"][2000] > p["by_d"][1000]).all()
    # 0.004 is inside z = 2's interval, above z = 1's whole interval
    assert p["inside"] == [2] and p["above"] == [1]
    g = p["glue"]
    assert g["regime-verdict"].startswith("inside the 95 % interval for z = 2, and above the whole interval")
    assert g["regime-x2-z1"] == "0.0030 (95 % CI 0.0020–0.0039)" and g["regime-x2-z2"].endswith("0.0030–0.0050)")
    censored = rg.ratio_summary(_ris(), bounds.assign(censor=["below", ""]), L=4)["glue"]
    assert censored["regime-x2-z1"] == "≤ 0.0030"  # passed already at the grid's smallest x: a bound
    assert g["regime-low-med-min"] == pytest.approx(1.01) and g["regime-low-med-max"] == pytest.approx(1.02)


def test_inactive_summary_second_order_ratio():
    D, T, S = 1000, 300, 6
    rows = [
        dict(
            quantity="inactive_on",
            layer=1,
            D=D,
            T=T,
            z=z,
            measured=rg.inactive_on_layer1(D, T, S=S, z=z) * f,
            ratio=f * z,
        )
        for z in (1, 2)
        for f in (0.9, 1.1)
    ]
    bounds_in = pd.DataFrame({"z": [1, 2], "layer": [4, 4], "level": [2.0, 2.0], "x_star": [0.002, 0.001]})
    p = rg.inactive_summary(pd.DataFrame(rows), bounds_in, S=S, L=4)
    assert p["l1"][("ratio2", "min")].to_numpy() == pytest.approx([0.9, 0.9])
    assert p["l1"][("ratio2", "max")].to_numpy() == pytest.approx([1.1, 1.1])
    assert p["glue"] == pytest.approx(
        {"regime-in-x2-z2": 0.001, "regime-in-l1-max": 2.2, "regime-in2-l1-min": 0.9, "regime-in2-l1-max": 1.1}
    )


def test_tail_summary_shared_neuron_prediction():
    S, D, T = 6, 1000, 100  # x = T(d/D)^2 = 0.0016, below the split 0.002
    tail = pd.DataFrame(
        {"z": [1, 1, 2, 2, 3, 3], "layer": [1, 4] * 3, "below": [0.0, 0.001, 0.05, 0.2, 0.1, 0.4], "above": [0.1] * 6}
    )
    ris = pd.DataFrame([dict(quantity="active_x", layer=1, D=D, T=T, z=z, x=T * (4 / D) ** 2) for z in (1, 2, 3)])
    p = rg.tail_summary(ris, tail, S=S, L=4)
    eps = 4 / D - 1 / (S * T)
    assert p["z_many"] == [2, 3]
    assert p["pred"].loc[3] == pytest.approx(1 - (1 - S**2 * eps) ** 2)
    assert p["table"]["measured"].to_dict() == {2: 0.05, 3: 0.1}
    assert p["glue"] == {"regime-tail-z2-l1": 0.05, "regime-tail-zmax-lL": 0.4}
    one = rg.tail_summary(ris, tail[tail.z == 1], S=S, L=4)
    assert one["z_many"] == [] and one["glue"] == {} and one["table"] is None


def _large():
    rows = []
    for D in (1024, 2048, 4096):
        for seed in (0, 1, 2):
            for layer, m, th in ((2, 0.1, 0.1), (3, 0.01 * D / 1024, 0.02)):
                rows.append(
                    dict(
                        quantity="spurious_on",
                        D=D,
                        x=0.001,
                        z=2,
                        layer=layer,
                        seed=seed,
                        measured=m + 0.001 * seed,
                        theory=th,
                        floor=0.0,
                    )
                )
    return pd.DataFrame(rows)


def test_spurious_summary_medians_and_glue():
    p = rg.spurious_summary(_large(), x_show=0.001, z_show=2)
    assert p["Ds"] == [1024, 2048, 4096]
    assert p["f"].loc[(3, 4096)] == pytest.approx(0.041)  # median over seeds 0.04 + 0.001 * seed
    assert p["r2"] == pytest.approx(0.101 / 0.1)
    assert p["glue"]["regime-l3-hi"] == pytest.approx(0.041) and p["glue"]["regime-l2-lo"] == pytest.approx(0.101)
    assert p["table"].loc[2, "count"] == 3


def test_terms_summary_gaps():
    rows = [
        dict(quantity="active_x", layer=4, measured=m, theory=1.0, theory_total=t)
        for m, t in ((4.0, 2.0), (0.5, 1.0), (2.0, 2.0))
    ]
    p = rg.terms_summary(pd.DataFrame(rows), L=4)
    assert p["gap_ris"] == pytest.approx(math.log(2))  # |log| of 4, 0.5, 2: median log 2
    assert p["gap_tot"] == pytest.approx(math.log(2))  # ratios 2, 0.5, 1
    assert p["glue"]["regime-gap-ris"] == pytest.approx(2.0)


def test_onset_summary_raises_the_floor_by_one_neuron():
    # floor 0: the criterion is spurious > 2 * (0 + 2/D) = 4/D, one neuron per block (M = D/4)
    D = 400
    rows = [
        dict(quantity="spurious_on", D=D, x=x, z=1, seed=0, layer=l, floor=0.0, measured=m)
        for x, ms in ((0.001, (0.0, 0.005, 0.009)), (0.002, (0.0, 0.02, 0.5)))
        for l, m in zip((2, 3, 4), ms)
    ]
    p = rg.onset_summary(pd.DataFrame(rows), L=4)
    assert p["onset"].set_index("x")["onset"].to_dict() == {0.001: 5, 0.002: 3}  # 0.009 < 0.01 = 4/D; 0.02 > it
    assert p["sx"].loc[1, D] == 0.002 and p["table"].loc[1, D] == "0.002"


def test_causal_summary_smallest_overlapping_d():
    Ds = [200, 400, 800]  # at x = 0.001: T = 2, 10, 40; d/D - 1/(ST) > 0 only at D = 800
    rows = [
        dict(quantity="active_x", layer=4, variant=v, D=D, seed=s, measured=base * (1 + 0.1 * s))
        for D in Ds
        for s in (0, 1)
        for v, base in (("baseline", 3.0 * D / 800), ("oracle", 1.0), ("sharp", 1.5))
    ]
    p = rg.causal_summary(pd.DataFrame(rows), Ds, x_causal=0.001, z_causal=2, n_seeds=2, S=6, L=4)
    assert p["D_lo"] == 800
    assert p["excess"].loc["baseline", 800] == pytest.approx(3.0)
    assert p["glue"]["regime-ex-sharp"] == pytest.approx(1.5) and p["glue"]["regime-causal-Dlo"] == 800
    assert list(p["table"].columns) == [200, 400, 800, "× oracle, D=800"]  # D_lo is the largest D: one column
    assert p["table"].loc["baseline", 800] == "3.15" and p["table"].loc["baseline", "× oracle, D=800"] == "3.00"


def test_boundary_capacity_summary_exponent_and_censoring():
    rows = []
    for D, x in ((1024, 0.004), (2048, 0.002), (4096, 0.001)):  # x ∝ D^-1 exactly, 3 seeds
        for s in (0, 1, 2):
            rows.append(
                {
                    "D": D,
                    "z": 2,
                    "seed": s,
                    "x_max": x * (1 + 0.01 * s),
                    "censor": "",
                    "resolution": 0.05,
                    "why": "false_on 0.002 > 0.001",
                }
            )
    rows.append({"D": 8192, "z": 2, "seed": 0, "x_max": 2e-5, "censor": "below", "resolution": 0.05, "why": ""})
    theory = pd.DataFrame({"D": [1024, 2048, 4096, 8192], "z": [2] * 4, "x_star": [0.004, 0.002, 0.001, 0.0005]})
    p = rg.boundary_capacity(pd.DataFrame(rows), theory, L=4)
    e = p["expo"].set_index("z").loc[2]
    assert e.slope == pytest.approx(-1.0, abs=0.01) and e.theory == pytest.approx(-1.0) and e.D_max == 4096
    assert p["fac"] == pytest.approx(1.01, abs=0.02)  # the censored width stays out
    g = p["glue"]
    assert g["regime-expo-z"] == "2" and g["regime-Dlo-z2"] == "1024" and g["regime-L"] == 4
    assert g["regime-xs-hi-z2"] == "< 0.00002"  # the largest D fails the search's floor: a bound
    assert "D^-1.00" in p["table"].loc[(2, "1024..4096"), "x* [95 % interval]"]


def test_run_note():
    df = pd.DataFrame({"a": [1]})
    df.attrs["sweep"] = {"tasks": 4, "computed": 1, "cached": 3}
    df.attrs["skipped"] = [(1, 2, 3)]
    note = rg.run_note(10.0, {"grid": (2.5, df), "other": (1.0, None)}, workers=2)
    assert note.splitlines() == [
        "this run: 10.0 s in all, workers=2",
        "  grid: 2.5 s, 4 networks (1 computed, 3 from the cache); skipped past the boundary (D, z, x): 1",
        "  other: 1.0 s",
    ]


def test_plots_return_axes():
    large = _large().assign(quantity="spurious_on")
    med = rg.spurious_summary(large, x_show=0.001, z_show=2)["med"]
    axes = rg.plot_spurious_all(med, [2, 3], [1024, 4096])
    assert len(axes) == 2 and all(isinstance(a, plt.Axes) for a in axes)
    onset = pd.DataFrame({"z": [1, 1, 2], "x": [0.001, 0.002, 0.001], "D": [400, 400, 400], "onset": [5, 3, 4]})
    axes = rg.plot_onset(onset, [1, 2], 4)
    assert len(axes) == 2 and [t.get_text() for t in axes[0].get_yticklabels()][-1] == "none"
    causal = pd.DataFrame(
        [
            dict(quantity=q, layer=4, variant=v, D=D, measured=0.1)
            for q in ("active_x", "spurious_on")
            for v in ("a", "b")
            for D in (400, 800, 1600)
        ]
    )
    axes = rg.plot_causal_checks(causal, 4, Ds=[400, 800, 1600])
    assert axes[1].get_yscale() == "symlog"
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["400", "1600"]  # every other D
    axs = rg.z_axes(3)
    assert len(axs) == 3 and axs[0].figure.get_size_inches()[0] == pytest.approx(7.2)
    ris = pd.DataFrame(
        [
            dict(quantity="active_x", z=z, layer=l, D=1000, T=T, S=6, measured=0.01 * T, theory=0.01 * T)
            for z in (1, 2, 3)
            for l in (1, 2)
            for T in (200, 400)
        ]
    )
    axes = rg.plot_ratio(ris)
    assert len(axes) == 3 and axes[0].get_title() == "z = 1"
