"""The construction chapter's analysis and figure functions, on small hand-made inputs."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import superpose_lib as sp  # noqa: E402
from superpose_lib import construction  # noqa: E402


def _rows(values, *, quantity, theory):
    """Tidy rows as `rotation_error_rows` makes them: {(z, seed, layer): mean}, worst = 2 * mean."""
    return [
        {"z": z, "seed": s, "layer": l, "quantity": quantity, "mean": v, "worst": 2 * v, "theory": theory}
        for (z, s, l), v in values.items()
    ]


def test_parameter_glue_keys_and_values():
    cfg = sp.CiSConfig(D=1000, T=557, d=4, S=6, L=5)
    g = construction.parameter_glue(
        cfg,
        zs=[1, 2],
        D_below=2000,
        T_below=300,
        D_small=64,
        T_small=16,
        S_small=3,
        n_seeds=5,
        batch=500,
        n_trajectories=2,
    )
    assert g["construction-M"] == 250 and g["construction-twoDd"] == 500 and g["construction-zs"] == "1, 2"
    assert g["construction-x"] == f"{557 * (4 / 1000) ** 2:.4f}"
    assert g["construction-xbelow"] == f"{300 * (4 / 2000) ** 2:.4f}"
    assert all(k.startswith("construction-") for k in g)


def test_step_check_restores_the_on_indicator():
    chk = construction.step_check(0)
    assert torch.equal(chk["alpha1"], torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    assert torch.allclose(chk["x1_clean"][:2], chk["x_rot"][:2]) and torch.all(chk["x1_clean"][2] == 0)
    assert torch.all(chk["x1"][2] == 0)
    # x_rot is a rotation: lengths kept
    assert torch.allclose(chk["x_rot"].norm(dim=-1), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))


def test_overlap_summary_on_a_hand_made_assignment():
    # M = 4 neurons, three circuits of S = 2: 0-1 and 1-2 share one neuron, 0-2 none.
    cfg = sp.CiSConfig(D=16, T=3, d=4, S=2, L=2)
    base = torch.tensor([[0, 1], [1, 2], [2, 3]])
    o = construction.overlap_summary(base, cfg, cap=4, tol=0.1)
    assert o["c"].tolist() == [1.0, 2.0, 2.0, 1.0]
    assert o["msq"] == pytest.approx(1 / 6)  # 4 ordered sharing pairs of (1/2)² over 6 ordered pairs
    assert o["uniform"] + o["spread"] == pytest.approx(o["msq"], abs=1e-12)
    assert o["glue"]["construction-cn"] == "1–2" and o["glue"]["construction-cap"] == 4
    assert o["glue"]["construction-first"] == "[0, 1]; [1, 2]; [2, 3]"
    assert o["glue"]["construction-last"] == "[1, 2]; [2, 3]"
    assert o["glue"]["construction-overlap-tol"] == "10%"


def test_theory_ratios_and_seizure_summary():
    vals = {(z, s, l): z * l * (1 + s) for z in (1, 2) for s in (0, 1) for l in (1, 2, 3)}
    df = pd.DataFrame(
        _rows(vals, quantity="inactive_x", theory=1.0)
        + _rows(vals, quantity="inactive_on", theory=1.0)
        + _rows(vals, quantity="active_x", theory=1.0)
        + _rows({k: 0.0 for k in vals}, quantity="active_on", theory=0.0)
    )
    r = construction.theory_ratios(df, "inactive_x")
    assert r[(2, 3)] == pytest.approx(2 * 3 * 1.5)  # seed mean of z·l·(1 + s) over s = 0, 1
    assert construction.theory_ratios(df, "active_on").empty  # theory 0: no ratio
    summ = construction.seizure_summary(df, L=3)
    assert summ["glue"]["construction-seizure-l2"] == "3.0–6.0"
    assert summ["glue"]["construction-seizure-lL"] == "4–9"
    assert summ["glue"]["construction-on-L"] == "0.00–0.00"
    assert summ["worst_l1"].tolist() == [4.0, 8.0]  # 2 · max over seeds at layer 1
    assert set(summ["layer1"]) == {"inactive_x", "inactive_on", "active_x"}


def test_below_summary():
    vals = {(z, s, l): 1.0 + 0.1 * l for z in (1,) for s in (0,) for l in (1, 2)}
    df = pd.DataFrame(
        _rows(vals, quantity="active_x", theory=1.0)
        + _rows(vals, quantity="inactive_x", theory=2.0)
        + _rows(vals, quantity="inactive_on", theory=1.0)
        + _rows({k: 1e-12 for k in vals}, quantity="active_on", theory=0.0)
    )
    b = construction.below_summary(df, D=64, T=8, factor=2.0)
    assert b["ratios"].min() == pytest.approx(0.55) and b["ratios"].max() == pytest.approx(1.2)
    assert b["on_worst"] == pytest.approx(2e-12)
    assert b["glue"] == {
        "construction-below-range": "0.55–1.20",
        "construction-below-on": "2e-12",
        "construction-factor-below": "2",
    }


@pytest.fixture(scope="module")
def small_net():
    cfg = sp.CiSConfig(D=64, T=16, S=3, L=3)
    net, _ = sp.build_network(cfg, torch.Generator().manual_seed(0), dtype=torch.float64)
    return net


def test_identity_table_holds_on_a_small_network(small_net):
    ident = construction.identity_table(small_net)
    assert len(ident["diag_err"]) == 2 and max(ident["diag_err"]) < 1e-12
    assert all(abs(o) < 1e-9 * p for o, p in zip(ident["off"], ident["pos"]))
    assert ident["glue"]["construction-chi2"] == f"{small_net.layers[1].chi:.4f}"
    assert list(ident["styled"].data.index) == [2, 3]


def test_chi_conventions_and_layer1(small_net):
    chi = construction.chi_conventions(small_net, [1, 2], batch=8, seed=0)
    assert np.allclose(chi["chi_ne"], chi["chi_lib"], rtol=1e-12)
    assert len(chi["effect"]) == 4 and set(chi["glue"]) == {"construction-chi-rel", "construction-chi-err"}
    l1 = construction.layer1_checks(small_net, [1, 2], batch=8, seed=0)
    t = l1["table"]
    assert t.loc[1, "max |x−x̂|², active"] < 1e-12  # one active circuit: layer 1 exact
    assert (t["max |S·α̂ − k_u|, inactive"] < 1e-9).all()
    assert all(l1["k_max"][z] <= z for z in (1, 2))
    assert l1["glue"]["construction-2S"] == f"{2 / 3:.3f}"


def test_figures_return_axes(small_net):
    traj = construction.trajectory_samples(small_net, [1, 2], 2, seed=0)
    assert [s["z"] for s in traj] == [1, 2] and traj[1]["active"].shape == (2, 2)
    axes = construction.plot_trajectories(traj)
    assert axes.shape == (2, 2) and axes[0][0].get_title().startswith("z = 1: circuit ")
    df = construction.error_sweep(64, 16, S=3, L=3, zs=[1, 2], batch=8, seeds=[0])
    assert set(df["quantity"]) == set(construction.QUANTITIES) and set(df["layer"]) >= {1, 2, 3}
    grid = construction.plot_error_grid(df, "mean", True)
    assert grid.shape == (2, 2) and grid[0, 0].get_yscale() == "log"
    assert "RiS theory" in [t.get_text() for t in grid[0, 0].figure.legends[0].get_texts()]
    w = construction.plot_weights(
        small_net.dense_weight(2), small_net.mixing_matrix(2), d=4, S=3, small=(64, 16, 3), D=64, n=10
    )
    assert len(w) == 2 and "first 10 neurons" in w[1].get_title()
    assert construction.mean_table(df).data.index.get_level_values("quantity")[0] == "active_x"
    plt.close("all")
