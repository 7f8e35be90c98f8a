"""Where a circuit graph works (`superpose_lib.graph.working`): the working regime's edge and
the theory around it, the edge capacity's search on the book's criteria, and the summaries of
the chapter on hand-made rows."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import ROOT  # noqa: E402, F401  (puts this checkout first on sys.path)

import superpose_lib.graph as G  # noqa: E402
from superpose_lib import max_circuits, sample_unit_vectors  # noqa: E402
from superpose_lib.core.criteria import CRITERIA, failures  # noqa: E402
from superpose_lib.core.theory import epsilon  # noqa: E402
from superpose_lib.regime.spurious import boundary_theory  # noqa: E402


# ---- the working regime ----------------------------------------------------------------------
def test_working_edge_is_the_regime_boundary_and_falls_with_D():
    xs = [G.working_x(D, 1, 4) for D in (1000, 2000, 4000)]
    assert xs[0] == pytest.approx(boundary_theory(1000, 1, 4))
    assert xs[0] > xs[1] > xs[2]
    assert G.working_x(1000, 2, 4) > xs[0]  # more active circuits raise the linear error it is measured against
    for D, z in ((1000, 1), (4000, 2)):
        T = G.regime_T(D, z, 4)
        assert T * (4 / D) ** 2 == pytest.approx(G.working_x(D, z, 4), rel=0.5 / T + 1e-12)
    assert G.regime_T(64, 1, 4, S=6) <= max_circuits(16, 6)  # capped by the assignment


def test_neuron_factor_is_one_inside_and_two_at_the_edge():
    D, z, L = 2000, 1, 4
    M = D // 4
    n_edge = round(G.working_x(D, z, L) * M * M)
    assert G.neuron_factor(D, n_edge, z, L) == pytest.approx(2.0, abs=0.05)
    assert G.neuron_factor(D, n_edge // 8, z, L) == pytest.approx(1.0, abs=0.02)
    assert G.neuron_factor(D, 2 * n_edge, z, L) > 2.0


def test_coincidences_formula():
    p = 36 * epsilon(1000, 200, 6, 4)
    assert G.coincidences(1000, 200, 50, 4) == pytest.approx(3 * 50 * 49 * p * p)
    assert G.coincidences(1000, 200, 1, 4) == 0.0
    assert G.coincidences(1000, 200, 100, 4) > 4 * G.coincidences(1000, 200, 50, 4)


# ---- the edge capacity ------------------------------------------------------------------------
def test_edge_stats_same_draw_for_network_and_oracle():
    kw = dict(D=400, T=80, z=2, L=3, n_edges=30, seed=4, batch=32)
    net, orc = G.edge_stats(**kw), G.edge_stats(**kw, oracle=True)
    assert net == G.edge_stats(**kw)
    assert net["n_active"] == orc["n_active"]  # the same graph, inputs and ground truth
    g = torch.Generator().manual_seed(4)  # edge_stats' draws, in its order
    gr = G.random_graph(80, 3, 2, 30, g)
    built = G.build_graph_network(gr, 400, 6, g)
    inp = G.sample_inputs(G.surviving_inputs(gr), 2, 32, g)
    ref = G.graph_errors(built, inp, sample_unit_vectors((32, 2), g), theory=False, oracle=True)
    for k, v in ref.items():
        assert orc[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k
    assert orc["false_on"][3] <= net["false_on"][3]


def test_edge_capacity_brackets_the_criterion():
    D, z, L, seed = 512, 1, 3, 2
    rows = G.edge_capacity_rows(D, z, L, seed, batch=32, resolution=0.1)
    assert [r["criterion"] for r in rows] == list(CRITERIA)
    M = D // 4
    for r in rows:
        assert r["T"] == max_circuits(M, 6) and r["x_T"] == pytest.approx(r["T"] / M**2)
        assert r["censor"] in ("", "below", "above")
        if r["censor"] == "":
            assert r["x_max"] < r["x_fail"] <= r["x_max"] * 1.1 + 1.5 / M**2  # 10 %, or one edge
            n_max, n_fail = round(r["x_max"] * M * M), round(r["x_fail"] * M * M)
            assert r["n_max"] == n_max
            oracle = r["criterion"] == CRITERIA[1]

            def fails(n):
                st = G.edge_stats(D, r["T"], z, L, n, seed, batch=32)
                orc = G.edge_stats(D, r["T"], z, L, n, seed, batch=32, oracle=True) if oracle else None
                return failures(st, L, oracle=orc)

            assert not fails(n_max) and fails(n_fail) and r["why"] == "; ".join(fails(n_fail))
    # few circuits: even the most pipelines the graph holds pass (censored above)
    top = G.edge_capacity_rows(2048, 1, 3, 0, batch=32, T=24, criteria=(CRITERIA[1],))[0]
    assert top["censor"] == "above" and top["n_max"] == 12 and math.isinf(top["x_fail"])


@pytest.mark.parametrize(
    "kw,match",
    [(dict(criteria=("usable",)), "criteria"), (dict(T=10**6), "T="), (dict(batch=0), "batch"), (dict(T=3), "T=")],
)
def test_edge_capacity_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        G.edge_capacity_rows(512, 2, 3, 0, **kw)


def _cap_rows():
    rows, ind = [], []
    for seed in range(3):
        for crit in CRITERIA:
            for z in (1, 2):
                below = crit == CRITERIA[0] and z == 2
                x = 0.0 if below else (0.002 if z == 1 else 0.001) * (1 + 0.05 * seed)
                rows.append(
                    {
                        "D": 1024,
                        "z": z,
                        "seed": seed,
                        "criterion": crit,
                        "x_max": x or 2 * 16 / 1024**2,
                        "x_fail": 2 * 16 / 1024**2 if below else 1.05 * x,
                        "censor": "below" if below else "",
                        "probes": 5,
                        "resolution": 0.05,
                        "n_max": 0 if below else round(x * 256**2),
                        "T": 580,
                        "x_T": 580 / 256**2,
                        "theory": 0.0033 if not below else 2e-5,
                        "why": "q90_dx 0.5 > 0.25" if below else "false_on 0.002 > 0.001",
                    }
                )
                ind.append(
                    {
                        "D": 1024,
                        "z": z,
                        "seed": seed,
                        "criterion": crit,
                        "x_max": 0.004 * (1 + 0.01 * seed),
                        "censor": "",
                        "resolution": 0.05,
                        "why": "q90_dx 0.3 > 0.25",
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(ind)


def test_edge_capacity_summary_and_plot():
    cap, ind = _cap_rows()
    out = G.edge_capacity_summary(cap, ind)
    s = out["summary"].set_index(["criterion", "z"])
    assert s.loc[(CRITERIA[1], 1), "mean"] == pytest.approx(0.0021)
    assert s.loc[(CRITERIA[1], 1), "edges"] == pytest.approx(0.0021 * 256**2)
    assert s.loc[(CRITERIA[1], 2), "below_every_seed"] and s.loc[(CRITERIA[0], 2), "censor"] == "below"
    t = out["table"]
    assert t.loc[(CRITERIA[0], 2, 1024), "edges per layer"] == "none"
    assert t.loc[(CRITERIA[0], 2, 1024), "theory"] == "none"
    assert t.loc[(CRITERIA[1], 2, 1024), "fails first on"] == "false on"
    g = out["glue"]
    assert g["cross-cap-b-z1"].startswith("D = 1024: 0.0021 [") and g["cross-cap-b-z1"].endswith("], 138 edges")
    assert g["cross-cap-a-z2"] == "D = 1024: < 3.1e-05 (|ℰ| = z fails)"
    assert (
        g["cross-cap-TdD"] == "0.0089"
        and g["cross-cap-why-b"] == "the false-on rate at z = 1 and the false-on rate at z = 2"
    )
    assert g["cross-cap-vs-indep"] == "0.26–0.52"
    ax = G.plot_edge_capacity(out["summary"])
    assert len(ax.get_legend_handles_labels()[0]) == 6  # four (criterion, z), independent, theory
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["(a) z = 1, D = 1024", "(a) z = 2, D = 1024"]
    plt.close("all")


def _last():
    """Active-error rows at the last layer: two sets at D = 1000, z = 1 and 2; chains of depth
    1 and 16, a random graph; measured = ratio × theory."""
    rows = []
    for seed, r in ((0, 0.9), (1, 1.1)):
        for name, T in (("at the edge", 149), ("T = D/2", 500)):
            for z in (1, 2):
                for kind, k, n in (("chain", 1, T), ("chain", 16, T // 16), ("random", None, T // 2)):
                    bump = 2.0 if (name == "T = D/2" and kind == "chain" and k == 1) else 1.0
                    th = 1e-5 * n * (1 + 20 * (z - 1))
                    rows.append(
                        {
                            "circuits": name,
                            "kind": kind,
                            "k": k,
                            "z": z,
                            "D": 1000,
                            "T": T,
                            "edges": float(n),
                            "x": n * 16e-6,
                            "seed": seed,
                            "measured": th * r * bump,
                            "theory": th,
                        }
                    )
    return pd.DataFrame(rows)


def test_edge_summary():
    e = G.edge_summary(_last(), k_list=[1, 16], edge_set="at the edge", L=4)
    c = e["conf"].set_index(["circuits", "kind", "z", "k"])
    assert c.loc[("at the edge", "chain", 1, 1), "inside"]  # T = x*·(D/d)² rounded: at the edge, inside
    assert not c.loc[("T = D/2", "chain", 1, 1), "inside"]
    assert c.loc[("at the edge", "chain", 1, 16), "events"] < G.working.MIN_COINCIDENCES
    assert not c.loc[("at the edge", "chain", 1, 16), "resolved"] and c.loc[("at the edge", "chain", 2, 16), "resolved"]
    assert c.loc[("T = D/2", "chain", 1, 1), "ratio"] == pytest.approx(2.0)
    assert c.loc[("T = D/2", "chain", 1, 1), "full"] == pytest.approx(2.0 / c.loc[("T = D/2", "chain", 1, 1), "factor"])
    # the gain at z = 2 only (z = 1's deep chains are not resolved); measured = linear here
    assert list(e["gain"].index) == [(1000, 2)] and e["gain"].over_linear.iloc[0] == pytest.approx(1.0)
    assert set(e["beyond"].circuits) == {"T = D/2"}
    g = e["glue"]
    assert g["cross-ratio-hi"] == "1.00" and g["cross-n-unresolved"] == 1 and g["cross-xstar-D"] == "1000"
    assert g["cross-gain-over"] == "1.00" and g["cross-gain"].startswith(
        "16.6× at D = 1000, z = 2 (linear theory 16.6×"
    )
    assert g["cross-xstar"] == f"z = 1: {G.working_x(1000, 1, 4):.4f}; z = 2: {G.working_x(1000, 2, 4):.4f}"
    assert len(e["rows"]) == len(_last()) and e["rows"].resolved.sum() == len(_last()) - 2  # per seed
    reg = e["regime"]
    assert reg.loc[("at the edge", 1000, 1), "chains inside"] == "every k"
    assert reg.loc[("T = D/2", 1000, 1), "chains inside"] == "k ≥ 16"
    assert reg.loc[("T = D/2", 1000, 1), "random graphs inside"] == "0 of 1"
