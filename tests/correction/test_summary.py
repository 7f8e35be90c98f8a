"""The error-correction chapter's design rule, measurement plan and summaries
(superpose_lib.correction.scale, .summary, .plots)."""

import math

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import superpose_lib.correction as cs  # noqa: E402
from superpose_lib import capacity, plots  # noqa: E402
from superpose_lib.core.criteria import CRITERIA  # noqa: E402

WORKS, HOLDS = CRITERIA
COMMON = dict(z=2, L=10, batch=128, resolution=0.05)


def test_capacity_config_is_keyed_as_every_chapter_keys_it():
    """The asymptotic chapter's cells are dict(kind=, D=, criterion=, **common, **knobs): the
    same dict here, so that the sweep cache is shared."""
    knobs = {"share": 0.6, "S_alpha": 4, "theta": 0.55}
    theirs = dict(kind="wide", D=65536, criterion=HOLDS, **COMMON, **knobs)
    assert cs.capacity_config("wide", knobs, 65536, HOLDS, **COMMON) == theirs
    with pytest.raises(ValueError, match="criterion"):
        cs.capacity_config("wide", knobs, 4096, "accuracy", **COMMON)


def test_design_rule_tunes_S_alpha_on_the_recursion():
    r = cs.indicator_redundancy(16384, share=0.6, theta=0.55, z=2, L=10)
    assert min(r["table"]) == 4  # z/S < θ: S ≥ 4 at z = 2, θ = 0.55
    assert r["x_star"] == max(r["table"].values()) == r["table"][r["S"]]
    # the old rule (mean pile-up) always returned its floor S_α = 4; the recursion does not
    assert r["S"] > 4 and r["x_star"] > 1.2 * r["table"][4]
    # the predicted boundary falls with D at fixed S_α (the pile-up's variance grows like M_α)
    small = cs.indicator_redundancy(4096, share=0.6, theta=0.55, z=2, L=10)
    assert small["table"][6] > r["table"][6]
    assert min(cs.indicator_redundancy(4096, share=0.6, theta=0.3, z=2, L=10)["table"]) == 7
    for bad in ({"theta": 1.5}, {"share": 0.0}, {"S_max": 3}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            cs.indicator_redundancy(4096, **{"share": 0.6, "theta": 0.55, "z": 2, "L": 10, **bad})


def test_family_settings_equal_grid_sizes():
    sizes = {f: len(cs.family_settings(f, 4096)) for f in cs.FAMILIES}
    assert {sizes[f] for f in cs.TUNED} == {3} and sizes["baseline"] == sizes["oracle"] == 1
    for st in cs.family_settings("E5", 4096):
        sch = cs.make_scheme(st["kind"], 4096, **{k: v for k, v in st.items() if k not in ("setting", "kind")})
        assert sch.groups[0].M * 2 > 4096 // 2 and 4095 < sch.D <= 4096  # wider than RiS's, equal width
    with pytest.raises(ValueError, match="family"):
        cs.family_settings("E9", 4096)


def test_tuning_cells_and_pick():
    cells = cs.tuning_cells(4096, z=2, L=10, batch=128, resolution=0.05)
    assert len(cells) == 15 and all(c["criterion"] == HOLDS and c["D"] == 4096 for _, c in cells)
    tags = pd.DataFrame([t for t, _ in cells])
    x = {"E1 θ=0.45": 0.003, "E5 f=0.7 S_α=4": 0.004}
    tune = tags.assign(D=4096, seed=100, x_max=[x.get(n, 0.002) for n in tags["name"]])
    picks = cs.pick_settings(tune)
    table = cs.tuning_table(tune.assign(censor="", why="false_on 0.002 > 0.001"))
    assert len(table) == 15 and table.loc[("E1", "θ=0.45"), "capacity T(d/D)²"] == "0.00300"
    assert table.loc[("E1", "θ=0.45"), "fails next by"] == "false_on 0.002"
    assert (
        cs.summary._why("false_off 0.0312 > 0.001; q90_dx 2.26 > 1.5 × the oracle's 1.29")
        == "false_off 0.031; q90_dx 2.3 (oracle 1.3)"
    )
    assert picks["E1"]["theta"] == 0.45 and picks["E5"]["share"] == 0.7
    assert picks["E3"]["setting"] == "G=2"  # equal capacities: the first listed
    schemes = cs.chapter_schemes(picks)
    assert schemes["E1"] == ("sharp", {"theta": 0.45}) and schemes["oracle"] == ("oracle", {})
    assert set(cs.CONTROLS) <= set(schemes)


def _schemes():
    return cs.chapter_schemes({f: cs.family_settings(f, 4096)[-1] for f in cs.TUNED})


def test_comparison_plan_measures_what_it_says():
    plan = cs.comparison_plan(
        _schemes(),
        D_list=[1024, 4096, 16384],
        D_large=[65536],
        names_large_b=["baseline"],
        D_oracle_max=4096,
        D_family=[1024, 4096],
        D_controls=4096,
        z=2,
        z_other=[1, 4],
        D_other=[1024, 4096],
        seeds=[0, 1, 2],
        seeds_large=[0],
        L=10,
        batch=128,
        resolution=0.05,
    )
    (main, s0), (large, s1), (other, s2) = plan
    assert s0 == [0, 1, 2] and s1 == [0] and s2 == [0, 1, 2]
    cells = {(t["name"], c["D"], c["criterion"]) for t, c in main}
    assert ("oracle", 16384, WORKS) in cells and ("oracle", 16384, HOLDS) not in cells
    assert ("E2", 4096, HOLDS) in cells and ("E2", 16384, HOLDS) not in cells
    assert ("untied", 4096, WORKS) in cells and ("untied", 1024, HOLDS) not in cells
    assert [c["D"] for _, c in main] == sorted((c["D"] for _, c in main), reverse=True)  # largest first
    assert {(t["name"], c["criterion"]) for t, c in large} == {
        ("baseline", HOLDS),
        ("baseline", WORKS),
        ("E1", WORKS),
        ("E5", WORKS),
    }
    assert {(c["z"], c["D"]) for _, c in other} == {(1, 1024), (1, 4096), (4, 1024), (4, 4096)}
    assert all(c["z"] == 2 for _, c in main + large)


def test_redundancy_plan_holds_out_the_tuning_seed():
    plan = cs.redundancy_plan(
        _schemes(),
        D_S=4096,
        S_list=[4, 5, 6],
        D_rule=[16384],
        seeds=[0, 1],
        seeds_rule=[0],
        tune_seed=100,
        z=2,
        L=10,
        batch=128,
        resolution=0.05,
    )
    (sweep_S, seeds), (rule, seeds_rule) = plan
    assert seeds == [0, 1, 100] and seeds_rule == [0]
    assert [t["S_alpha"] for t, _ in sweep_S] == [4, 5, 6] and all(c["share"] == 0.7 for _, c in sweep_S)
    S = cs.indicator_redundancy(16384, share=0.7, theta=0.55, z=2, L=10)["S"]
    assert rule[0][0] == {"name": "E5 tuned", "S_alpha": S} and rule[0][1]["S_alpha"] == S


def test_run_plan_tags_every_row_with_its_cell(tmp_path):
    cells = [
        ({"name": "baseline"}, cs.capacity_config("baseline", {}, 256, HOLDS, z=2, L=3, batch=8, resolution=0.1)),
        ({"name": "E1"}, cs.capacity_config("sharp", {"theta": 0.45}, 256, WORKS, z=2, L=3, batch=8, resolution=0.1)),
    ]
    cap = cs.run_plan([(cells, [0, 1])], cache_dir=tmp_path, executor="serial", progress=False)
    assert cap["name"].tolist() == ["baseline", "baseline", "E1", "E1"] and cap["seed"].tolist() == [0, 1, 0, 1]
    direct = cs.scheme_capacity("sharp", 256, 2, 3, 1, criterion=WORKS, batch=8, resolution=0.1, theta=0.45)[0]
    assert cap.iloc[3]["x_max"] == direct["x_max"]
    again = cs.run_plan([(cells, [0, 1])], cache_dir=tmp_path, executor="serial", progress=False)
    assert again.attrs == {} and again["x_max"].tolist() == cap["x_max"].tolist()


def _cap(rows):
    out = []
    for name, D, seed, x, censor in rows:
        out.append(
            {
                "name": name,
                "D": D,
                "z": 2,
                "criterion": HOLDS,
                "seed": seed,
                "x_max": x,
                "censor": censor,
                "resolution": 0.05,
                "why": "false_on 0.002 > 0.001" if censor == "" else "",
            }
        )
    return pd.DataFrame(out)


def test_paired_ratio_and_its_bounds():
    cap = _cap(
        [("E5", 4096, s, 0.003 * (1 + 0.1 * s), "") for s in range(3)]
        + [("E1", 4096, s, 0.002 * (1 + 0.1 * s), "") for s in range(4)]
    )
    r = cs.paired_ratio(cap, "E5", "E1", D=4096, criterion=HOLDS)
    # identical ratios on every seed: the interval is the resolution's, not zero
    res = float(cap["resolution"].max())
    assert r["n"] == 3 and r["mean"] == pytest.approx(1.5) and r["bound"] == ""
    assert r["low"] == pytest.approx(1.5 / (1 + res)) and r["high"] == pytest.approx(1.5 * (1 + res))
    cap.loc[0, "censor"] = "above"
    assert cs.paired_ratio(cap, "E5", "E1", D=4096, criterion=HOLDS)["bound"] == "≥"
    assert cs.paired_ratio(cap, "E1", "E5", D=4096, criterion=HOLDS)["bound"] == "≤"
    assert cs.paired_ratio(cap, "E5", "oracle", D=4096, criterion=HOLDS)["n"] == 0


def test_theory_slopes_sit_beside_the_fits():
    Ds = [1024, 4096, 16384]
    cap = _cap([("baseline", D, s, 0.1 * D**-0.5 * (1 + 0.02 * s), "") for D in Ds for s in range(3)])
    fits = cs.theory_slopes(capacity.slopes(cap), cap, {"baseline": ("baseline", {})}, z=2, L=10)
    r = fits.iloc[0]
    assert r["slope"] == pytest.approx(-0.5, abs=0.01) and -0.7 < r["theory"] < -0.3
    works = cs.theory_slopes(
        capacity.slopes(cap.assign(criterion=WORKS)),
        cap.assign(criterion=WORKS),
        {"baseline": ("baseline", {})},
        z=2,
        L=10,
    )
    assert math.isnan(works.iloc[0]["theory"])


def test_tables_and_theory_lines():
    cap = _full_cap()
    tab = cs.capacity_table(cap, criterion=HOLDS, names=["baseline", "E5", "E2"])
    assert list(tab.index) == [plots.LABELS["scheme"][n] for n in ("baseline", "E5")]
    assert list(tab.columns) == ["D = 1024", "D = 4096", "D = 16384"] and tab.iloc[1, 0].startswith("≥")
    by_z = cs.capacity_table(pd.concat([cap, cap.assign(z=4)]), criterion=HOLDS, by=("z", "D"))
    assert "z = 4, D = 4096" in by_z.columns
    fits = cs.theory_slopes(capacity.slopes(cap), cap, {"baseline": ("baseline", {})}, z=2, L=10)
    st = cs.slope_table(fits)
    assert st.loc[(plots.LABELS["scheme"]["baseline"], HOLDS), "theory"] != "–"
    th = cs.theory_lines({"baseline": ("baseline", {})}, ["baseline"], [1024, 4096], z=2, L=10)
    assert th["x"].iloc[0] > th["x"].iloc[1] > 0
    cells = cs.rates_cells(_schemes(), D=4096, S_list=[4, 6], x=0.002, z=2, L=10, batch=128)
    assert [t["series"] for t, _ in cells] == [cs.RATE_SERIES[0]] * 2 + [cs.RATE_SERIES[1]] * 2
    c4 = cells[2][1]  # at the smallest S_α both series have the same load
    M_a = cs.make_scheme("wide", 4096, share=0.7, S_alpha=4, theta=0.55).groups[0].M
    assert c4["c"] / 16 * M_a**2 == pytest.approx(0.002 * 4096**2 / 16)


def test_overview_counts_equal_widths():
    ov = cs.overview(_schemes(), 4096)
    assert (ov["width"] <= 4096).all() and (ov["width"] > 4092).all()
    assert ov.index[0] == plots.LABELS["scheme"]["baseline"]


def test_mechanism_facts_from_a_small_run():
    base = cs.make_scheme("baseline", 400)
    runs = {T: cs.scheme_run(base, T, z=2, L=4, batch=16, seed=1, keep_alpha=True) for T in (40, 60, 80)}
    f = cs.mechanism_facts(runs, S=6)
    assert f["ec-Tmid"] == "60" and f["ec-big"] == "80" and f["ec-leak1"].endswith("%")
    assert isinstance(f["layer1_exact"], bool) and isinstance(f["grows"], bool)


def _full_cap():
    rows = []
    for D, b, e1, e5, o in (
        (1024, 0.003, 0.004, 0.005, 0.006),
        (4096, 0.0015, 0.0024, 0.0035, 0.006),
        (16384, 0.0007, 0.0015, 0.0018, 0.006),
    ):
        for s in range(3):
            j = 1 + 0.03 * s
            for name, x in (
                ("baseline", b),
                ("E1", e1),
                ("E5", e5),
                ("oracle", o),
                ("untied", b),
                ("E5 f=0.5", 0.8 * e5),
            ):
                rows.append((name, D, s, x * j, "above" if name == "E5" and D == 1024 else ""))
    cap = _cap(rows)
    works = cap.assign(criterion=WORKS, x_max=lambda c: 0.0002 * (1 + 0.02 * c["seed"]))
    return pd.concat([cap, works], ignore_index=True)


def test_capacity_and_control_facts():
    cap = _full_cap()
    schemes = {"baseline": ("baseline", {}), "E1": ("sharp", {"theta": 0.55})}
    fits = cs.theory_slopes(capacity.slopes(cap), cap, schemes, z=2, L=10)
    f = cs.capacity_facts(cap, fits, z=2, D_list=[1024, 4096, 16384], D_large=[])
    assert f["ec-b-E5-1024"].startswith("≥") and f["ec-b-baseline-4096"].startswith("0.00155 [")
    assert f["ec-gain-E5-E1-4096"].startswith("1.46") and f["ec-gain-E5-E1-1024"].startswith("≥")
    assert "theory" in f["ec-slope-b-baseline"] and "theory" not in f["ec-slope-a-baseline"]
    assert f["ec-slope-b-baseline"].startswith("−0.")  # a true minus sign
    assert f["ec-a-spread-4096"] == "1.00" and f["checks"]["ratios"][("E5", "E1", 16384, HOLDS)][
        "mean"
    ] == pytest.approx(1.2)
    assert f["checks"]["fall"]["baseline"] == pytest.approx(0.003 / 0.0007)
    assert f["checks"]["ratios"][("oracle", "baseline", 4096, WORKS)]["mean"] == pytest.approx(1.0)
    assert f["ec-b-E5-max"] == f["ec-b-E5-16384"] and f["ec-gain-E1-baseline-min"] == f["ec-gain-E1-baseline-1024"]
    assert f["ec-b-baseline-large"] == "not measured in this run"
    assert f["ec-gain-E5-E1-range"].startswith("1.46") and f["ec-gain-E5-E1-range"].endswith("D = 16384")
    c = cs.control_facts(cap, D=4096, z=2)
    assert c["ratios"][("E5", "E5 f=0.5")]["mean"] == pytest.approx(1.25)
    assert c["ec-ctl-untied-over-baseline"].startswith("1.00") and c["ec-ctl-b-E5"].startswith("0.00361 [")


def test_redundancy_facts():
    cap = _full_cap()
    rows = []
    for s in (0, 1, 2, 100):
        for S, x in ((4, 0.0035), (5, 0.0036), (6, 0.0038), (8, 0.003)):
            rows.append((f"E5 S_α={S}", 4096, s, x * (1 + 0.01 * s) * (0.9 if s == 100 and S == 6 else 1), ""))
        rows.append(("E5 tuned", 16384, s, 0.0021, ""))
    cap_S = _cap(rows)
    cap_S["S_alpha"] = [int(n.split("=")[-1]) if "=" in n else 5 for n in cap_S["name"]]
    runs = pd.DataFrame(
        [
            {
                "series": ser,
                "S_alpha": S,
                "seed": s,
                "x": 0.0018,
                "spuriousL": 1e-3 / S,
                "th_spuriousL": 2e-3 / S,
                "false_on": 0.0,
            }
            for ser in cs.RATE_SERIES
            for S in (4, 6)
            for s in (0, 1)
        ]
    )
    rule = {4096: cs.indicator_redundancy(4096, share=0.6, theta=0.55, z=2, L=10)}
    f = cs.redundancy_facts(cap_S, cap, runs, rule, tune_seed=100, D_S=4096)
    assert f["pick"] == 5 and f["ec-S-pick"] == "5"  # the held-out seed picks 5 (6 is worse there)
    assert f["gains"][4096]["mean"] == pytest.approx(0.0036 / 0.0035) and f["gains"][4096]["n"] == 3
    assert f["gains"][16384]["mean"] == pytest.approx(0.0021 / 0.0018, rel=0.05)
    assert f["ec-S-cap-8"].startswith("0.003") and f["ec-rule-S-4096"] == str(rule[4096]["S"])
    assert f["ec-fix-S"] == "4 to 6" and f["ec-sq-sp"] == "2.5e-04 to 1.7e-04"


def test_redundancy_rows_at_a_fixed_load_and_at_c_over_S_squared():
    (r,) = cs.redundancy_rows(4, 1024, 2, 3, 0, x=0.002, batch=4)
    assert r["T"] == round(0.002 * 256**2) and r["M_alpha"] == round(0.6 * 1024 / 2)
    assert 0 <= r["spurious2"] <= 1 and 0 <= r["th_spurious2"] <= 1 and 0 <= r["th_false_on"] <= 1
    (q,) = cs.redundancy_rows(6, 1024, 2, 3, 0, c=0.02, batch=4)
    assert q["x_alpha"] == pytest.approx(0.02 / 36, rel=0.01)
    for kw in ({}, {"x": 0.002, "c": 0.02}):
        with pytest.raises(ValueError, match="x="):
            cs.redundancy_rows(4, 1024, 2, 3, 0, batch=4, **kw)


def test_plots_return_axes():
    summ = capacity.capacity_summary(_full_cap())
    b = summ[summ["criterion"] == HOLDS]
    theory = pd.DataFrame({"name": "baseline", "D": [1024, 16384], "x": [0.003, 0.0008]})
    ax = cs.plot_capacity_vs_D(b, theory=theory)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == sorted(plots.LABELS["scheme"][k] for k in b["name"].unique())  # censored E5 included
    S = pd.DataFrame(
        {"S_alpha": [4, 6], "D": 4096, "mean": [0.003, 0.0032], "low": [0.0028, 0.003], "high": [0.0032, 0.0034]}
    )
    rule = {
        4096: {"S": 6, "x_star": 0.0033, "table": {4: 0.0025, 6: 0.0033}},
        16384: {"S": 6, "x_star": 0.0019, "table": {4: 0.0013, 6: 0.0019}},
    }
    assert len(cs.plot_redundancy(S, rule).get_lines()) >= 4
    rows = pd.DataFrame(
        [
            {"series": ser, "S_alpha": s_, "seed": k, "spuriousL": 0.01 / s_, "th_spuriousL": 0.02 / s_}
            for ser in cs.RATE_SERIES
            for s_ in (4, 6)
            for k in range(2)
        ]
    )
    assert cs.plot_redundancy_rates(rows) is not None
    plt.close("all")
