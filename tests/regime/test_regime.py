"""The T(d/D)² regime analysis: grids, per-sample errors and neuron counts (exact where
the construction is exact), the boundary estimator on synthetic data, plots run."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import ROOT  # noqa: E402,F401

import superpose_lib as sp  # noqa: E402
from superpose_lib import CiSConfig, build_network, rotation_errors, rotation_run, sample_active, sample_unit_vectors  # noqa: E402
from superpose_lib import regime as rg  # noqa: E402


def test_ris_pairs_are_the_41_of_figures_8_to_11():
    pairs = sp.ris_pairs()
    assert len(pairs) == 41 and len(set(pairs)) == 41
    by_d = pd.Series([D for D, _ in pairs]).value_counts().to_dict()
    assert by_d == {800: 2, 1000: 4, 1200: 6, 1400: 5, 1600: 6, 1800: 8, 2000: 10}
    assert (2000, 2000) in pairs and (1800, 1700) in pairs and (800, 300) in pairs


def test_large_d_grid_hits_the_requested_x_and_checks_capacity():
    grid = rg.large_d_grid([2000, 8192], [0.001, 0.004])
    assert grid == [(2000, 250), (2000, 1000), (8192, 4194), (8192, 16777)]
    for D, T in grid:
        x = T * (4 / D) ** 2
        assert min(abs(x - 0.001), abs(x - 0.004)) < 1e-6
    with pytest.raises(ValueError, match="max_circuits"):
        rg.large_d_grid([800], [0.02])
    with pytest.raises(ValueError, match="T\\(d/D\\)"):
        rg.large_d_grid([800], [0.0])


def _run(D=400, T=60, z=2, batch=40, seed=3, per_sample=True):
    cfg = CiSConfig(D=D, T=T, z=z)
    g = torch.Generator().manual_seed(seed)
    net, _ = build_network(cfg, g)
    active = sample_active(T, z, batch, g)
    x0 = sample_unit_vectors((batch, z), g)
    return net, active, rotation_run(net, active, x0, per_sample=per_sample)


def test_per_sample_is_backwards_compatible_and_sums_to_the_means():
    _, _, plain = _run(per_sample=False)
    net, active, run = _run()
    assert plain.per_sample is None
    assert plain.sums == run.sums, "per_sample must not change the accumulated sums"
    ps = run.per_sample
    B, z = active.shape
    assert ps["err_x"].shape == (B, z, net.L + 1) and ps["on"].shape == (B, net.L + 1)
    for l in range(1, net.L + 1):
        assert math.isclose(float(ps["err_x"][:, :, l].sum()), run.sums["active_x"][l], rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(float(ps["err_on"][:, :, l].sum()), run.sums["active_on"][l], rel_tol=1e-12, abs_tol=1e-15)


def test_neuron_counts_are_exact_at_layer_one():
    """Layer 1 carries no propagation error (layer-0 trick): exactly the neurons of the
    active circuits are on (a^1 = [1.5, 0.5, x + 1] > 0 for |x| = 1, x ≠ −1), none outside,
    and `explained` is d·|∪ e_t^1| computed here by brute force."""
    net, active, run = _run(z=3)
    ps = run.per_sample
    for b in range(active.shape[0]):
        union = set()
        for t in active[b].tolist():
            union |= set(net.idx[0][t].tolist())
        assert ps["explained"][b, 1] == net.d * len(union)
    assert torch.equal(ps["on"][:, 1], ps["explained"][:, 1])
    assert (ps["outside"][:, 1] == 0).all()
    assert (ps["outside"] <= ps["on"]).all()


def test_regime_rows_means_equal_rotation_errors():
    rows = pd.DataFrame(rg.regime_rows(400, 60, z=2, batch=30, seed=5, L=3))
    ref = rotation_errors(400, 60, z=2, batch=30, seed=5, L=3)
    for q in ("active_x", "inactive_x", "active_on", "inactive_on"):
        got = rows[rows.quantity == q].sort_values("layer")["measured"].tolist()
        assert got == ref[q][1:]
    q = rows.set_index(["layer", "quantity"])["measured"]
    for l in (1, 2, 3):
        assert q[(l, "active_x_q50")] <= q[(l, "active_x_q90")] <= q[(l, "active_x_q99")] <= q[(l, "active_x_max")]
        assert 0 <= q[(l, "active_x_frac>0.1")] <= q[(l, "active_x_frac>0.01")] <= 1
        assert q[(l, "outside_frac")] <= q[(l, "on_frac")] <= 1
    assert rows.loc[rows.quantity == "active_x_max", "theory"].isna().all()


def test_z1_has_no_active_error_at_layer_one():
    rows = pd.DataFrame(rg.regime_rows(400, 60, z=1, batch=30, seed=0, L=2))
    q = rows.set_index(["layer", "quantity"])["measured"]
    assert q[(1, "active_x")] < 1e-10 and q[(1, "active_x_max")] < 1e-10 and q[(1, "seized_frac")] == 0


def test_crossing_recovers_a_known_boundary():
    x = np.geomspace(1e-4, 1e-2, 21)
    x0 = 1e-3
    ratio = np.maximum(1.0, (x / x0) ** 2)
    # ratio = 2 at x0·√2; exact in log-log when each point is its own bin
    assert math.isclose(rg.crossing(x, ratio, 2.0, n_bins=len(x)), x0 * math.sqrt(2), rel_tol=1e-9)
    assert rg.crossing(x, ratio, 0.5, n_bins=5) == pytest.approx(x.min(), rel=0.3)  # boundary below the data
    assert rg.crossing(x, ratio, 1e6, n_bins=5) == math.inf  # never crosses
    assert math.isnan(rg.crossing([], [], 2.0))
    # It reports where the ratio *stays* above the level: an early outlier is ignored.
    r2 = ratio.copy()
    r2[1] = 10.0
    assert math.isclose(rg.crossing(x, r2, 2.0, n_bins=len(x)), x0 * math.sqrt(2), rel_tol=1e-9)


def _synthetic(x0=2e-3, seeds=4, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for D, T in sp.ris_pairs():
        x = T * (4 / D) ** 2
        for s in range(seeds):
            r = max(1.0, (x / x0) ** 2) * math.exp(noise * rng.standard_normal())
            for z in (1, 2):
                rows.append(
                    {
                        "D": D,
                        "T": T,
                        "z": z,
                        "seed": s,
                        "layer": 3,
                        "quantity": "active_x",
                        "measured": r * 0.01,
                        "theory": 0.01,
                    }
                )
    return pd.DataFrame(rows)


def test_boundary_table_ci_covers_the_truth():
    df = _synthetic()
    b = rg.boundary_table(df, levels=(2.0,), n_boot=100)
    assert len(b) == 2 and set(b["n_configs"]) == {41}
    truth = 2e-3 * math.sqrt(2)
    for _, r in b.iterrows():
        assert r["lo"] <= r["x_star"] <= r["hi"]
        assert r["lo"] < truth < r["hi"]
        assert abs(math.log(r["x_star"] / truth)) < 0.25


def test_tail_table():
    rows = []
    for T in (200, 300, 400):
        for l in (1, 2, 3, 4):
            rows.append(
                {
                    "D": 1000,
                    "T": T,
                    "z": 1,
                    "seed": 0,
                    "layer": l,
                    "quantity": "active_x_frac>0.1",
                    "measured": T / 1000,
                    "theory": float("nan"),
                }
            )
    df = pd.DataFrame(rows)
    t = rg.tail_table(df, 0.1, x_split=0.004)
    assert set(t.columns) >= {"z", "layer", "below", "above"}
    with pytest.raises(ValueError, match="threshold"):
        rg.tail_table(df, 0.5, x_split=0.004)


@pytest.fixture(scope="module")
def tiny():
    import superpose_lib as sp

    grid = [dict(D=D, T=T, z=z, batch=10, L=2) for D, T in [(400, 40), (400, 80), (800, 200)] for z in (1, 2)]
    return sp.sweep(rg.regime_rows, grid, seeds=[0, 1], executor="serial", progress=False)


def test_plots_run_on_real_rows(tiny):
    axes = rg.plot_ris_figure(tiny, "active_x")
    assert axes.shape == (2, 2)
    for axes in (rg.plot_ratio(tiny), rg.plot_tail(tiny, 0.1)):
        assert len(axes) == 2
    plt.close("all")
    s = rg.seed_summary(tiny[tiny.quantity == "active_x"])
    assert (s["measured_count"] == 2).all()
    assert (s["measured_min"] <= s["measured_mean"]).all() and (s["measured_mean"] <= s["measured_max"]).all()


def test_inactive_on_layer1_second_order():
    # z = 1: exactly z*eps; z > 1: the binomial second moment.
    D, T, S = 1000, 300, 6
    eps = 4 / D - 1 / (S * T)
    assert rg.inactive_on_layer1(D, T, S=S, z=1) == pytest.approx(eps)
    p = S * S * eps
    for z in (2, 3, 4):
        ek2 = sum(k * k * math.comb(z, k) * p**k * (1 - p) ** (z - k) for k in range(z + 1))
        assert rg.inactive_on_layer1(D, T, S=S, z=z) == pytest.approx(ek2 / S**2, rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_regime_rows_on_cuda_match_cpu():
    cpu = pd.DataFrame(rg.regime_rows(400, 60, z=2, batch=30, seed=2, L=3))
    gpu = pd.DataFrame(rg.regime_rows(400, 60, z=2, batch=30, seed=2, L=3, device="cuda"))
    m = cpu.quantity.isin(["active_x", "inactive_x", "active_on", "inactive_on"])
    np.testing.assert_allclose(gpu[m].measured, cpu[m].measured, rtol=1e-4, atol=1e-6)


def test_ratio_is_undefined_where_epsilon_is_not_positive():
    df = pd.DataFrame(
        [
            {"D": 4096, "T": 131, "S": 6, "quantity": "active_x", "measured": 1e-12, "theory": 1e-6},  # eps < 0
            {"D": 4096, "T": 4194, "S": 6, "quantity": "active_x", "measured": 2e-3, "theory": 1e-3},
            {"D": 4096, "T": 4194, "S": 6, "quantity": "active_on", "measured": 0.0, "theory": 0.0},
        ]
    )
    out = rg.add_regime_columns(df)
    assert math.isnan(out["ratio"][0]) and out["ratio"][1] == 2.0 and math.isnan(out["ratio"][2])
    assert out["eps"][0] < 0 < out["eps"][1]
    assert out["x"][1] == pytest.approx(4194 * (4 / 4096) ** 2)


# ---- at scale: fixed-x sweeps, per-D boundaries, seizure onset ----------------------------
def _synthetic_large(x_star_by_d, seeds=range(5), xs=(0.00025, 0.0005, 0.001, 0.002, 0.004), L=4, noise=0.05):
    """Rows shaped like large_rows': active_x ratio measured/theory = (x/x*)^2 (so ratio 1
    at x*, 2 at x*·√2) times seed noise; spurious_on with floor 0.01."""
    rng = np.random.default_rng(0)
    rows = []
    for D, xs_star in x_star_by_d.items():
        for s in seeds:
            for x in xs:
                r = (x / xs_star) ** 2 * math.exp(noise * rng.standard_normal())
                rows.append(
                    {
                        "D": D,
                        "z": 1,
                        "seed": s,
                        "x": x,
                        "layer": L,
                        "quantity": "active_x",
                        "measured": r * 0.01,
                        "theory": 0.01,
                        "floor": 0.01,
                    }
                )
                for l in range(2, L + 1):
                    rows.append(
                        {
                            "D": D,
                            "z": 1,
                            "seed": s,
                            "x": x,
                            "layer": l,
                            "quantity": "spurious_on",
                            "measured": 0.01 * (1 + (l - 2) * r),
                            "theory": 0.01,
                            "floor": 0.01,
                        }
                    )
    return pd.DataFrame(rows)


def test_seizure_table_uses_the_floor():
    df = _synthetic_large({4096: 0.001})
    on = rg.seizure_table(df).set_index("x")["onset"]
    # layer l has 1 + (l − 2)·r times the floor: > 2 at layer 3 once r > 1 (x > x*)
    assert (on[on.index < 0.001] == 5).all() and (on[on.index > 0.001] == 3).all()


def test_fixed_x_sweep_skips_past_the_boundary_and_validates(tmp_path):
    df = rg.fixed_x_sweep(
        [1024], [0.004, 0.001], [2], [0, 1], batch=8, L=4, stop_ratio=1e-6, executor="serial", progress=False
    )
    assert sorted(df.x.unique()) == [0.001]  # ascending; 0.004 skipped once the ratio passed 1e-6
    assert df.attrs["skipped"] == [(1024, 2, 0.004)]
    assert set(df.quantity) == set(rg.LARGE_QUANTITIES)
    full = rg.fixed_x_sweep(
        [1024], [0.004, 0.001], [2], [0], batch=8, stop_ratio=None, executor="serial", progress=False
    )
    assert sorted(full.x.unique()) == [0.001, 0.004]
    with pytest.raises(ValueError, match="stop_ratio"):
        rg.fixed_x_sweep([1024], [0.001], [2], [0], stop_ratio=-1.0)
    with pytest.raises(ValueError, match="batch"):
        rg.fixed_x_sweep([1024], [0.001], [2], [0], batch=0)
    with pytest.raises(ValueError, match="variant"):
        rg.large_rows(1024, 262, variant="bogus", batch=4)


def test_crossing_flags_censoring_at_both_ends():
    x = [0.001, 0.002, 0.004, 0.008]
    assert rg.crossing_censor(x, [2.5, 3, 4, 5], 2.0, n_bins=4) == "below"
    assert rg.crossing(x, [2.5, 3, 4, 5], 2.0, n_bins=4) == 0.001  # an upper bound, flagged above
    assert rg.crossing_censor(x, [1, 1.2, 1.4, 1.5], 2.0, n_bins=4) == "above"
    assert rg.crossing_censor(x, [1, 1.5, 2.5, 4], 2.0, n_bins=4) == ""
    assert rg.boundary_word(0.001, "below") == "≤ 0.0010" and rg.boundary_word(float("inf")) == "not reached"
