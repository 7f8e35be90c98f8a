"""Error-correction schemes for on-indicators (superpose_lib.correction)."""

import math

import pandas as pd
import pytest
import torch

from superpose_lib.core.circuits import encode_input, scheme_weights
from superpose_lib.core.experiment import sample_active, sample_unit_vectors
from superpose_lib.core.network import SuperposedNetwork, balance_chi, connectivity
from superpose_lib.correction import (
    SCHEMES,
    BlockGroup,
    Scheme,
    build_corrected,
    general_chi,
    make_scheme,
    scheme_rows,
    scheme_run,
)

F64 = torch.float64


def _inputs(T, z, B, g):
    active = sample_active(T, z, B, g)
    x0 = sample_unit_vectors((B, z), g)
    return active, encode_input(torch.ones(B, z, dtype=F64), x0)


def test_baseline_equals_superposed_network():
    sch = make_scheme("baseline", 400)
    g = torch.Generator().manual_seed(1)
    net, _ = build_corrected(sch, 80, 5, g, dtype=F64)
    ref = SuperposedNetwork(net.w, net.idx[0], 100, net.w_bar, net.bias)
    active, a0 = _inputs(80, 3, 16, g)
    A_ref = ref.forward(ref.embed(active, a0))
    for l, A, R in net.layers_iter(net.embed(active, a0)):
        # same maths, different summation order than the structured RiS network: float64 rounding only
        assert torch.allclose(A[0], A_ref[l], rtol=0, atol=1e-12), l
        assert torch.allclose(R, ref.readout(A_ref[l], l))


def test_tied_groups_equal_one_group():
    """Cross-group connections (own χ, own connectivity per pair) reduce to RiS when the
    indicator and payload groups share one assignment."""
    M, S = 100, 6
    sch = Scheme("tied", (BlockGroup((0, 1), M, S, lead=1, shift=0), BlockGroup((2, 3), M, S)))
    g = torch.Generator().manual_seed(2)
    net, _ = build_corrected(sch, 80, 5, g, dtype=F64)
    assert torch.equal(net.idx[0], net.idx[1])
    ref = SuperposedNetwork(net.w, net.idx[1], M, net.w_bar, net.bias)
    active, a0 = _inputs(80, 2, 16, g)
    A_ref = ref.forward(ref.embed(active, a0))
    for l, A, _ in net.layers_iter(net.embed(active, a0)):
        assert torch.allclose(A[0], A_ref[l][:, 0:2], atol=1e-12)
        assert torch.allclose(A[1], A_ref[l][:, 2:4], atol=1e-12)


def test_general_chi_equals_balance_chi_for_equal_groups():
    from superpose_lib.core.assignment import layer_assignments

    idx = layer_assignments(170, 150, 6, 2, torch.Generator().manual_seed(0))
    n, m, _ = connectivity(idx[1], idx[0], 150)
    assert general_chi(idx[1], idx[0], 150, 150, n, m) == pytest.approx(
        balance_chi(idx[1], idx[0], 150, n, m), rel=1e-12
    )


def _no_overlap_scheme(kind, T):
    if kind in ("redundant", "register"):
        return make_scheme(kind, 6 * T, S=1, S_alpha=1, share=1 / 3)
    if kind in ("independent", "wide"):
        return make_scheme(kind, 4 * T, S=1, S_alpha=1, share=0.5)
    return make_scheme(kind, 4 * T, S=1)


@pytest.mark.parametrize("kind", [k for k in SCHEMES if k not in ("scaling", "wide_rule")])
def test_no_overlap_is_exact(kind):
    """S = 1 and one neuron per circuit and block (D = T·d): nothing is shared, so every
    scheme computes every circuit exactly, active or not, at every layer. ("wide_rule" is
    `wide`'s layout with the rule's S_α, which cannot be 1; `wide` covers it. The scaling
    construction's affine planes need S ≥ 2: tests/correction/test_scaling.py pins it to a
    dense reference.)"""
    T = 24
    sch = _no_overlap_scheme(kind, T)
    assert sch.max_T >= T
    res = scheme_run(sch, T, z=3, L=6, batch=20, seed=3, dtype=F64)
    for l in range(1, 7):
        assert res["worst_dx"][l] < 1e-9, (kind, l)
        assert res["active_on"][l] < 1e-18
        assert res["inactive_on"][l] < 1e-18 and res["inactive_x"][l] < 1e-18


@pytest.mark.parametrize("kind", SCHEMES)
def test_active_exact_at_layer_one_with_z1(kind):
    kw = {
        "redundant": dict(share=0.2, S_alpha=4),
        "register": dict(share=0.2, S_alpha=4),
        "wide_rule": dict(z=1, L=2),
        "scaling": dict(z=1, L=2, x=0.001),
    }
    sch = make_scheme(kind, 800, **kw.get(kind, {}))
    res = scheme_run(sch, min(60, sch.max_T), z=1, L=2, batch=30, seed=4, dtype=F64)
    assert res["worst_dx"][1] < 1e-12 and res["active_on"][1] < 1e-24


@pytest.mark.parametrize("lo,hi", [(0.25, 0.75), (0.4, 0.75), (0.45, 0.9), (0.1, 0.3)])
def test_step_dead_zone(lo, hi):
    """The indicator rows: readout α̂ < θ_lo -> 0 exactly; α̂ > θ_hi -> 1 exactly; RiS's
    circuit at (0.25, 0.75)."""
    w, w_bar, b = scheme_weights(torch.tensor([0.7]), lo, hi)
    if (lo, hi) == (0.25, 0.75):
        from superpose_lib.core.circuits import BIAS, rotation_weights

        assert torch.equal(w, rotation_weights(torch.tensor([0.7])).to(w.dtype))
        assert b.tolist() == list(BIAS)
    alpha = torch.linspace(-0.5, 1.5, 401, dtype=w.dtype)
    a = torch.zeros(401, 4, dtype=w.dtype)
    a[:, 0], a[:, 1] = alpha + 0.3, 0.3  # readout α̂ = a0 − a1
    out = torch.relu(a @ w[0].T + b)
    step = out[:, 0] - out[:, 1]
    assert torch.all(step[alpha < lo] == 0)
    assert torch.allclose(step[alpha > hi], torch.ones(1, dtype=w.dtype))
    assert torch.all((step >= 0) & (step <= 1 + 1e-12))


def test_extra_pair_weights():
    w, w_bar, b = scheme_weights(torch.tensor([0.2, 1.3]), extra="average", rho=0.5)
    assert w.shape == (2, 6, 6) and w_bar.shape == (6, 6) and b.shape == (6,)
    assert torch.allclose(w[:, 0], torch.tensor([1.0, -1.0, 0, 0, 1.0, -1.0], dtype=w.dtype))
    w, _, _ = scheme_weights(torch.tensor([0.2]), extra="register")
    assert torch.allclose(w[0, 0], torch.tensor([0, 0, 0, 0, 2.0, -2.0], dtype=w.dtype))  # copy of the register
    assert torch.allclose(w[0, 4], w[0, 0])


def test_mechanism_at_layer_one_is_exact():
    """Layer 1 is exact, so an inactive circuit's α̂ is (number of indicator neurons it
    shares with the active set)/S: it passes RiS's step (> 0.25) iff it shares ≥ 2."""
    res = scheme_run(make_scheme("baseline", 600), 150, z=3, L=1, batch=100, seed=5, dtype=F64)
    assert res["leak"][1] == res["overlap2"][1] > 0


def test_oracle_has_no_false_activation_for_z2():
    res = scheme_run(make_scheme("oracle", 400), 86, z=2, L=6, batch=50, seed=6)
    assert max(res["false_on"]) == 0.0


def test_own_oracle_is_the_same_draw_switched_off():
    """with_oracle runs the same network and draw with unused neurons off: for RiS's
    layout that is the oracle scheme exactly; for a real scheme the oracle's statistics
    equal a run of the same scheme with `oracle=True` at the same seed."""
    import dataclasses

    base = make_scheme("baseline", 400)
    r = scheme_run(base, 60, z=2, L=4, batch=16, seed=5, dtype=F64, with_oracle=True)
    o = scheme_run(make_scheme("oracle", 400), 60, z=2, L=4, batch=16, seed=5, dtype=F64)
    assert r["oracle"]["q90_dx"] == o["q90_dx"] and r["oracle"]["false_on"] == o["false_on"]
    wide = make_scheme("wide", 512, share=0.5, S_alpha=4, theta=0.65, design="affine")
    r = scheme_run(wide, 200, z=2, L=4, batch=16, seed=1, dtype=F64, with_oracle=True)
    o = scheme_run(dataclasses.replace(wide, oracle=True), 200, z=2, L=4, batch=16, seed=1, dtype=F64)
    assert r["oracle"]["q90_dx"] == o["q90_dx"] and r["oracle"]["active_x"] == o["active_x"]
    assert r["q90_dx"] != r["oracle"]["q90_dx"]  # the switch-off changes the real network's errors


def test_determinism():
    sch = make_scheme("sharp", 400, theta=0.4)
    a = scheme_run(sch, 60, z=2, L=4, batch=20, seed=7)
    b = scheme_run(sch, 60, z=2, L=4, batch=20, seed=7)
    c = scheme_run(sch, 60, z=2, L=4, batch=20, seed=8)
    assert a == b and a != c


def test_widths_and_parameters():
    for kind in SCHEMES:
        s = make_scheme(
            kind, 1000, **{"scaling": {"z": 2, "L": 6, "x": 0.002}, "wide_rule": {"z": 2, "L": 6}}.get(kind, {})
        )
        assert 996 < s.D <= 1000
    base = make_scheme("baseline", 1000)
    # 12 of the 16 block pairs are touched (indicator rows never read payload): 12·M² + D biases
    assert base.parameters(2) - base.parameters(1) == 12 * 250**2 + 1000
    gated = make_scheme("gated", 1000)
    assert gated.parameters(2) - gated.parameters(1) == 12 * 250**2 + 1000 + 500


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_scheme("nope", 400),
        lambda: make_scheme("sharp", 400, theta=0.8, theta_hi=0.7),
        lambda: make_scheme("sharp", 400, theta=-0.1),
        lambda: make_scheme("baseline", 402),
        lambda: make_scheme("redundant", 400, share=0.0),
        lambda: make_scheme("redundant", 400, r=0),
        lambda: BlockGroup((0, 7), 10, 2),
        lambda: BlockGroup((0, 1), 10, 11),
        lambda: Scheme("x", (BlockGroup((0, 1, 2), 10, 2),)),
        lambda: Scheme("x", (BlockGroup((0, 1, 2, 3), 10, 2),), gate=1.0),
        lambda: Scheme("x", (BlockGroup((0, 1, 2, 3), 10, 2),), extra="other"),
        lambda: scheme_run(make_scheme("baseline", 400), 87, z=1, L=2, batch=2),
        lambda: scheme_run(make_scheme("baseline", 400), 50, z=0, L=2, batch=2),
    ],
)
def test_validation(call):
    with pytest.raises(ValueError):
        call()


def test_validation_names_parameter():
    with pytest.raises(ValueError, match="theta_hi"):
        make_scheme("sharp", 400, theta=0.8, theta_hi=0.7)
    with pytest.raises(ValueError, match="T=87"):
        scheme_run(make_scheme("baseline", 400), 87)


def test_rows():
    rows = scheme_rows("baseline", 400, 40, z=2, L=3, batch=10, seed=0)
    assert [r["layer"] for r in rows] == [1, 2, 3] and rows[0]["width"] == 400
    assert scheme_rows("baseline", 400, 87) == []  # above the assignment capacity (86)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    sch = make_scheme("redundant", 400, share=0.2, S_alpha=4, theta=0.4)
    a = scheme_run(sch, 40, z=2, L=4, batch=20, seed=9, dtype=F64)
    b = scheme_run(sch, 40, z=2, L=4, batch=20, seed=9, dtype=F64, device="cuda")
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k


# ---- at scale: design rule, capacity search, summaries (superpose_lib.correction.scale) ----
import numpy as np  # noqa: E402

import superpose_lib.correction as cs  # noqa: E402
from superpose_lib import (  # noqa: E402
    report,
    stats,
)


def test_poisson_sf_matches_direct_sum():
    lam = 1.7
    direct = 1 - sum(math.exp(-lam) * lam**k / math.factorial(k) for k in range(4))
    assert stats.poisson_sf(lam, 3) == pytest.approx(direct, rel=1e-12)
    assert stats.poisson_sf(lam, 3.5) == stats.poisson_sf(lam, 3)  # P(X > 3.5) = P(X ≥ 4)
    assert stats.poisson_sf(0.0, 0) == 0.0 and stats.poisson_sf(2.0, -1) == 1.0


def test_t_interval_uses_n_minus_one_degrees_of_freedom():
    m, lo, hi = stats.t_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and hi - m == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert stats.t_interval([5.0]) == (5.0, 5.0, 5.0)
    with pytest.raises(ValueError):
        stats.t_interval([])


def test_format_capacity_censoring():
    assert report.format_capacity(0.0, 0.0, 0.0, "below", x_min=0.0005) == "< 0.0005"
    assert report.format_capacity(0.008, 0.008, 0.008, "above").startswith("≥ 0.008")
    assert "assignment" in report.format_capacity(0.003, 0.003, 0.003, "capped")
    s = report.format_capacity(0.002, 0.0015, 0.0025, "")
    assert s == "0.002 [0.0015, 0.0025]" and "inf" not in s and "nan" not in s


def test_best_settings_prefers_passing_then_accuracy():
    tune = pd.DataFrame(
        [
            {"family": "E1", "D": 1024, "setting": "a", "worst_dx": 0.2, "false_on": 0.01, "false_off": 0.0},
            {"family": "E1", "D": 1024, "setting": "b", "worst_dx": 0.9, "false_on": 0.0, "false_off": 0.0},
            {"family": "E1", "D": 1024, "setting": "c", "worst_dx": 0.5, "false_on": 0.0, "false_off": 0.0},
        ]
    )
    best = cs.best_settings(tune, eps=1.0, on_rate=1e-3)
    assert best["setting"].tolist() == ["c"]


def test_spurious_on_matches_naive_count():
    """spurious_on: fraction of block-0 on-indicator neurons that are on while used by no
    active circuit (checked against an explicit recount at every layer)."""
    sch = make_scheme("baseline", 400)
    res = scheme_run(sch, 80, z=2, L=3, batch=6, seed=11, dtype=F64)
    g = torch.Generator().manual_seed(11)
    net, _ = build_corrected(sch, 80, 3, g, dtype=F64)
    active = sample_active(80, 2, 6, g)
    x0 = sample_unit_vectors((6, 2), g)
    from superpose_lib.correction import encode

    a0 = encode(torch.ones(6, 2, dtype=F64), x0)
    for l, A, _ in net.layers_iter(net.embed(active, a0), active):
        frac = []
        for b in range(6):
            used = set(net.idx[0][l - 1][active[b]].reshape(-1).tolist())
            frac.append(sum(1 for n in range(100) if A[0][n, 0, b] > 0 and n not in used) / 100)
        assert res["spurious_on"][l] == pytest.approx(np.mean(frac), abs=1e-12), l


def test_ivw_weights_and_wide_scheme():
    e = make_scheme("redundant", 1000, share=0.2, S_alpha=4, ivw=True)
    M, M_e = e.groups[0].M, e.groups[1].M
    assert e.rho == pytest.approx(M_e / (M_e + M))
    w = make_scheme("wide", 1000, share=0.7, S_alpha=4, theta=0.55)
    assert w.groups[0].rows == (0, 1) and w.groups[0].M == 350 and w.theta_lo == 0.55


def test_mechanism_plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = scheme_run(make_scheme("baseline", 400), 60, z=2, L=3, batch=8, seed=1, keep_alpha=True)
    ax = cs.plot_inactive_readouts({1: r["alpha_inactive"][1], 3: r["alpha_inactive"][3]}, 6)
    assert len(ax.patches) == 2
    ax = cs.plot_cascade({60: r})
    assert len(ax.get_lines()) == 2
    plt.close("all")


def test_scheme_run_layers_gives_the_same_statistics_at_the_requested_layers():
    """`layers=` (a capacity probe's fast path) computes the same numbers, only fewer."""
    sch = make_scheme("sharp", 800, theta=0.4)
    full = scheme_run(sch, 300, z=2, L=4, batch=8, seed=3)
    fast = scheme_run(sch, 300, z=2, L=4, batch=8, seed=3, layers=(2, 4))
    for k in ("worst_dx", "false_on", "false_off", "spurious_on", "active_x"):
        assert fast[k][2] == full[k][2] and fast[k][4] == full[k][4], k
        assert fast[k][3] == 0.0
    with pytest.raises(ValueError, match="layers"):
        scheme_run(sch, 300, z=2, L=4, batch=8, seed=3, layers=(5,))


@pytest.mark.parametrize(
    "kind,kw,T",
    [
        ("baseline", {}, 300),
        ("baseline", {}, 1500),
        ("sharp", dict(theta=0.5), 900),
        ("wide", dict(share=0.6, S_alpha=4, theta=0.55), 400),
        ("redundant", dict(share=0.2, S_alpha=4), 300),
        ("gated", {}, 600),
        ("oracle", {}, 1500),
    ],
)
def test_sparse_statistics_equal_the_dense_ones(kind, kw, T):
    """The sparse forward and statistics (the default) against the dense ones, float64: the
    same numbers to rounding, in working and in seized networks (T = 1500 at D = 1000 seizes),
    including the own oracle. The threshold is moved off 1/2, where readouts of saturated
    neurons tie exactly (3 of S = 6) and rounding in the order of the sums decides the side."""
    sch = make_scheme(kind, 1000, **kw)
    T = min(T, sch.max_T)
    args = dict(z=2, L=5, batch=24, seed=9, dtype=F64, with_oracle=kind != "oracle", on_threshold=0.47)
    d = scheme_run(sch, T, sparse=False, **args)
    s = scheme_run(sch, T, sparse=True, chunk=7, **args)
    for res_d, res_s in [(d, s)] + ([(d["oracle"], s["oracle"])] if "oracle" in d else []):
        for k, v in res_d.items():
            if k == "oracle":
                continue
            assert res_s[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (kind, k)


def test_sparse_run_stops_early_only_when_asked():
    sch = make_scheme("baseline", 1000)
    full = scheme_run(sch, 557, z=2, L=5, batch=64, seed=2, chunk=16)
    part = scheme_run(sch, 557, z=2, L=5, batch=64, seed=2, chunk=16, stop=lambda c, dx, n: c["false_on"][5] > 0)
    assert "stopped_at" not in full and part["stopped_at"] == 16
    assert part["false_on"][5] > 0


def test_chi_from_excess_equals_the_listing_of_every_connected_pair():
    """The network builds χ from the pairs several circuits connect only; the same χ as
    `general_chi`, which lists every connected pair (two groups of different sizes)."""
    from superpose_lib.core.assignment import layer_assignments
    from superpose_lib.core.network import chi_from_excess, connectivity, excess_pairs

    g = torch.Generator().manual_seed(3)
    cur = layer_assignments(300, 120, 4, 1, g, design="affine")[0]
    prev = layer_assignments(300, 90, 3, 1, g, design="affine")[0]
    n, m, _ = connectivity(cur, prev, 90)
    xn, xm, xk = excess_pairs(cur, prev, 90)
    assert chi_from_excess(cur, prev, 120, 90, xn, xm, xk) == pytest.approx(
        general_chi(cur, prev, 120, 90, n, m), rel=1e-12
    )
