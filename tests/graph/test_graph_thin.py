"""The cross-circuit chapter's checks, summaries and figures, on small hand-made inputs."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from superpose_lib import graph  # noqa: E402
from superpose_lib.sweep import sweep  # noqa: E402


def test_exactness_checks():
    ex = graph.exactness_checks(0, 3)
    assert ex["max_s1"] < 1e-24 and ex["max_dense"] < 1e-12
    assert ex["rejected"] and ex["glue"]["cross-rejected"] == ex["rejected"]
    assert ex["glue"]["cross-max-s1"] == ("exactly 0" if ex["max_s1"] == 0 else f"{ex['max_s1']:.0e}")


def test_block_exactness_and_cost_table():
    b = graph.block_exactness([8, 16], 3, 0)
    assert set(b["err"]) == {8, 16} and max(b["err"].values()) < 1e-12
    assert all(v == 0.0 for v in b["stray"].values())
    t = graph.cost_table([16], S=2).data
    assert list(t["construction"]) == ["block (z = 1 only)", "superposed (z ≥ 1)"]
    assert t["T"].iloc[0] == 16 and t["neurons"].iloc[0] == 16 + 8  # (D/d)² circuits, D(1 + 2/d) neurons
    assert t["circuit share"].iloc[1] == pytest.approx(16 * t["T"].iloc[1] / (16 * 16 + 16))


def test_gate_summary():
    S, D = 6, 400  # M = 100: n_and · S / M = 0.06 n_and
    rows = []
    for seed in (0, 1):
        for n in (0, 1, 10):
            vals = {
                "flip_rate": 0.001 * n,
                "active_on": 0.002 * n**2,
                "active_x": 0.01 * (1 + n),
                "inactive_on": 0.01,
                "n_active": 2.0,
            }
            for q, v in vals.items():
                rows.append(
                    {
                        "seed": seed,
                        "n_and": n,
                        "layer": 2,
                        "quantity": q,
                        "measured": v,
                        "theory": 0.01,
                        "collateral": n * S / (D // 4),
                    }
                )
    gs = graph.gate_summary(pd.DataFrame(rows), S=S, D=D, and_counts=[0, 1, 10], few_collateral=0.1)
    assert gs["worst"] == 10 and gs["small"] == [1]
    assert gs["aon"][10].tolist() == [pytest.approx(0.2)] * 2
    assert gs["glue"]["cross-gate-worst"] == "0.0100" and gs["glue"]["cross-gate-worst-coll"] == "0.60"
    assert gs["glue"]["cross-or-phantom"] == "0 (none in these runs)"
    assert gs["glue"]["cross-or-on-range"] == "1.00–1.00" and gs["glue"]["cross-or-x-hi"] == "1.0"
    assert list(gs["table"].data.columns)[0] == "wrong-side rate"


def _gwdf():
    rows = []
    for P, x in ((100, 0.001), (200, 0.002)):
        for seed in (0, 1, 2):
            for name, fo in (("baseline", 0.05), ("E1", 0.02), ("E5", 1e-4 * (1 + seed))):
                rows.append(
                    {
                        "D": 4096,
                        "z": 2,
                        "layer": 4,
                        "name": name,
                        "P": P,
                        "T": 3 * P,
                        "x": x,
                        "seed": seed,
                        "false_on": fo * P / 200,
                        "worst_dx": 0.1 + 0.01 * seed,
                    }
                )
    return pd.DataFrame(rows)


def test_tuned_schemes_and_headline():
    best = pd.DataFrame({"family": ["E1", "E5"], "D": [4096, 4096], "setting": ["θ=0.45", "f=0.55 S_α=4"]})
    settings, schemes = graph.tuned_schemes(best, [4096])
    assert settings["E1"][4096]["theta"] == 0.45 and schemes["E1"][4096] == {"kind": "sharp", "theta": 0.45}
    assert schemes["baseline"] == {"kind": "baseline"} and "setting" not in schemes["E5"][4096]
    df = _gwdf()
    top = graph.top_load_table(df, on_rate=1e-3)
    h = graph.graph_correction_headline(
        top,
        df,
        settings,
        L=4,
        on_rate=1e-3,
        x_tune=0.0045,
        D_list=[4096],
        z_list=[2],
        x_grid=[0.001, 0.002],
        n_seeds=3,
        batch=32,
    )
    g = h["glue"]
    assert h["Dmax"] == 4096 and len(h["hard"]) == 1
    assert g["cross-gw-ratio"] == "z = 2: 100×"  # 0.02 / mean(1e-4, 2e-4, 3e-4)
    assert g["cross-gw-load"] == "T = 600, T(d/D)² = 0.0020"
    assert g["cross-gw-e5ok"] == "D = 4096, z = 2" and g["cross-gw-e5bad"] == "none"
    assert g["cross-gw-E1"] == "θ=0.45" and g["cross-gw-Dmax"] == "4,096" and g["cross-gw-xs"] == "0.001, 0.002"
    assert g["cross-gw-light"].startswith("z = 2, T(d/D)² = 0.0010: E1 0.11 [")
    assert graph.ci_text(0, 0, 0) == "0 (in every seed)" and graph.ci_text(0.5, -0.1, 12) == "0.50 [0, 12]"
    axes = graph.plot_graph_correction_grid(df, [2], D=4096, on_rate=1e-3)
    assert axes.shape == (1, 2) and axes[0, 0].get_title(loc="left") == "z = 2"
    assert len(axes[0, 0].figure.legends) == 1
    plt.close("all")


def test_parameter_glue():
    g = graph.parameter_glue(
        S=6,
        L=4,
        gate_D=2000,
        gate_P=60,
        D_list=[1000, 2000],
        z_list=[1, 2],
        n_seeds=3,
        cap_D=[1024],
        block_D=[40, 200],
        k_list=[1, 16, 4],
        batch_cap=128,
        n_cap_seeds=5,
    )
    assert g["cross-Ds"] == "1000, 2000" and g["cross-block-D"] == "40, 200" and g["cross-cap-D"] == "1024"
    assert (g["cross-kmin"], g["cross-kmax"], g["cross-kratio"]) == (1, 16, 16)
    assert g["cross-batch-cap"] == 128 and g["cross-ncapseeds"] == 5 and all(k.startswith("cross-") for k in g)


def test_plot_edges_pair():
    common = dict(D=64, T=16, z=1, L=3, S=3, batch=8, device="cpu")
    grid = [dict(kind="chain", k=2, **common), dict(kind="random", n_edges=4, **common)]
    df = sweep(graph.graph_rows, grid, [0], executor="serial", progress=False).assign(x_star=0.02)
    axes = graph.plot_edges_pair(df)
    assert len(axes) == 2 and len(axes[0].figure.legends) == 1
    assert any(abs(line.get_xdata()[0] - 1.0) < 1e-12 for line in axes[1].get_lines())  # the dotted edge at 1
    x = np.concatenate([c.get_offsets()[:, 0] for c in axes[1].collections])
    assert np.allclose(sorted(set(np.round(x, 9))), sorted({round(v, 9) for v in df.x / 0.02}))
    plt.close("all")
