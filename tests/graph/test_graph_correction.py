"""Wide on-indicators in a circuit graph (`superpose_lib.graph.correction`): the block-group
graph network against `GraphNetwork` (one tied assignment, RiS's step), against
`CorrectedNetwork` (self-edges only), and against a naive dense reference built by explicit
loops over edges, groups and neurons; the dead-zone step's ground truth; seeds; validation."""

import numpy as np
import pytest
import torch
from conftest import ROOT  # noqa: F401  (puts this checkout first on sys.path)

import superpose_lib.graph as G
import superpose_lib.graph.correction as GC
from superpose_lib import encode_input, rotation_weights, sample_thetas, sample_unit_vectors
from superpose_lib.correction import BlockGroup, Scheme, build_corrected, make_scheme

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _gate_inputs(P, z, B, g):
    inp = G.sample_gate_inputs(P, z, B, g)
    return inp, encode_input(torch.ones(B, z, dtype=F64), sample_unit_vectors((B, z), g))


def _random_inputs(gr, z, B, g):
    inp = G.sample_inputs(G.surviving_inputs(gr), z, B, g)
    return inp, encode_input(torch.ones(B, z, dtype=F64), sample_unit_vectors((B, z), g))


def _self_graph(theta, L, z):
    """Every circuit reads only itself (RiS's independent circuits) as a CircuitGraph."""
    T = theta.shape[0]
    w = rotation_weights(theta)
    t = torch.arange(T)
    return G.CircuitGraph(T, L, z, w, (t,) * (L - 1), (t,) * (L - 1), (w,) * (L - 1))


# ---- exactness pins ------------------------------------------------------------------------
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("family", ["gate", "random"])
def test_one_assignment_and_ris_step_equals_graph_network(tied, family):
    """One group of the four rows, or indicator and payload groups tied to one assignment,
    with RiS's step: the same network as `GraphNetwork` (float64 rounding only)."""
    M, S, L = 60, 3, 4
    g = _gen(3)
    if family == "gate":
        gr = G.gate_graph(12, L, 2, g, and_fraction=0.5)
        inp, a0 = _gate_inputs(12, 2, 16, g)
    else:
        gr = G.random_graph(40, L, 2, 12, g)
        inp, a0 = _random_inputs(gr, 2, 16, g)
    if tied:
        sch = Scheme("tied", (BlockGroup((0, 1), M, S, lead=1, shift=0), BlockGroup((2, 3), M, S)))
    else:
        sch = Scheme("one", (BlockGroup((0, 1, 2, 3), M, S),))
    idx = GC.graph_assignments(sch, gr.T, L, g)
    net = GC.GraphCorrectedNetwork(gr, sch, idx)
    ref = G.GraphNetwork(gr, idx[-1], M)
    A_ref = ref.forward(ref.embed(inp, a0))
    for l, A, R in net.layers_iter(net.embed(inp, a0)):
        full = torch.cat(A, dim=1) if tied else A[0]
        assert torch.allclose(full, A_ref[l], rtol=0, atol=1e-12), l
        assert torch.allclose(R, ref.readout(A_ref[l], l), rtol=0, atol=1e-12), l


@pytest.mark.parametrize(
    "kind,knobs", [("baseline", {}), ("sharp", {"theta": 0.5}), ("wide", {"share": 0.6, "S_alpha": 4, "theta": 0.55})]
)
def test_self_edges_equal_corrected_network(kind, knobs):
    """With only self-edges (every circuit reads itself) the graph network of a scheme is
    `CorrectedNetwork` of that scheme: same assignments from the same generator, same χ."""
    L, T = 5, 150
    sch = make_scheme(kind, 800, **knobs)
    g = _gen(4)
    net_c, theta = build_corrected(sch, T, L, g, dtype=F64)
    g2 = _gen(4)
    theta2 = sample_thetas(T, g2)
    assert torch.equal(theta, theta2)
    net_g = GC.build_graph_corrected(_self_graph(theta, L, 3), sch, g2, dtype=F64)
    for a, b in zip(net_c.idx, net_g.idx):
        assert torch.equal(a, b)
    g3 = _gen(5)
    active = torch.rand(16, T, generator=g3).argsort(1)[:, :3]
    a0 = encode_input(torch.ones(16, 3, dtype=F64), sample_unit_vectors((16, 3), g3))
    it_c = net_c.layers_iter(net_c.embed(active, a0))
    for (l, A, R), (lc, Ac, Rc) in zip(net_g.layers_iter(net_g.embed(active, a0)), it_c):
        assert l == lc
        for x, y in zip(A, Ac):
            assert torch.allclose(x, y, rtol=0, atol=1e-12), l
        assert torch.allclose(R, Rc, rtol=0, atol=1e-12), l


# ---- the naive dense reference ---------------------------------------------------------------
def _dense_reference(net: GC.GraphCorrectedNetwork, inputs, a0):
    """Activations of every layer from dense weight matrices built by explicit Python loops
    over edges, groups, rows and neurons (numpy float64), written from the maths of the module
    docstring, not from the structured code. Flat layout: group g, local row i, neuron n at
    offset_g + i·M_g + n. Returns per layer the flat activation [B, D]."""
    gr = net.graph
    groups = net.groups
    Mg, Sg = net.Mg, net.Sg
    rows = [list(g.rows) for g in groups]
    off = np.cumsum([0] + [len(r) * M for r, M in zip(rows, Mg)])
    D = int(off[-1])
    wbar = np.array(gr.w_bar, dtype=float)
    bias = np.array(gr.bias, dtype=float)
    idx = [x.numpy() for x in net.idx]
    T = gr.T

    def flat_index(gi, i, n):
        return int(off[gi] + i * Mg[gi] + n)

    B = inputs.shape[0]
    # layer 0 (the layer-0 trick): A^0 = Σ_{t active} (w^1_t a_t^0) on e^{g,1}_t
    A = np.zeros((B, D))
    w1 = gr.layer1.double().numpy()
    for b in range(B):
        for k in range(inputs.shape[1]):
            t = int(inputs[b, k])
            v = w1[t] @ a0[b, k].numpy()
            for gi in range(len(groups)):
                for i, row in enumerate(rows[gi]):
                    for n in idx[gi][0][t]:
                        A[b, flat_index(gi, i, n)] += v[row]
    out = [A]
    b1 = np.zeros(D)
    for gi in range(len(groups)):
        for i, row in enumerate(rows[gi]):
            for n in range(Mg[gi]):
                b1[flat_index(gi, i, n)] = bias[row]
    out.append(np.maximum(out[-1] + b1, 0))
    for l in range(2, gr.L + 1):
        r = gr.readers[l - 2].numpy()
        s = gr.sources[l - 2].numpy()
        W = gr.weights[l - 2].double().numpy()
        sh = gr.shifts[l - 2].double().numpy()
        edges = set(zip(r.tolist(), s.tolist()))
        Wd = np.zeros((D, D))
        for gi in range(len(groups)):
            for hi in range(len(groups)):
                # connectivity C_gh of the edges and χ_gh from its definition: the mean of 𝒲 over
                # the neuron pairs of all non-edge (reader, source) pairs is zero
                C = np.zeros((Mg[gi], Mg[hi]))
                for u, t in zip(r, s):
                    for n in idx[gi][l - 1][u]:
                        for m in idx[hi][l - 2][t]:
                            C[n, m] = 1.0
                on_c = off_c = 0.0
                for u in range(T):
                    for t in range(T):
                        if (u, t) in edges:
                            continue
                        for n in idx[gi][l - 1][u]:
                            for m in idx[hi][l - 2][t]:
                                on_c += C[n, m]
                                off_c += 1.0 - C[n, m]
                chi = (on_c / Sg[hi]) / off_c if off_c > 0 else 0.0
                mix = np.where(C > 0, 1.0 / Sg[hi], -chi)
                for i, row in enumerate(rows[gi]):
                    for j, col in enumerate(rows[hi]):
                        for n in range(Mg[gi]):
                            for m in range(Mg[hi]):
                                Wd[flat_index(gi, i, n), flat_index(hi, j, m)] += wbar[row, col] * mix[n, m]
                # one Δw block per edge
                for e, (u, t) in enumerate(zip(r, s)):
                    for i, row in enumerate(rows[gi]):
                        for j, col in enumerate(rows[hi]):
                            dw = W[e, row, col] - wbar[row, col]
                            for n in idx[gi][l - 1][u]:
                                for m in idx[hi][l - 2][t]:
                                    Wd[flat_index(gi, i, n), flat_index(hi, j, m)] += dw / Sg[hi]
        bl = b1.copy()
        for u in range(T):
            for gi in range(len(groups)):
                for i, row in enumerate(rows[gi]):
                    for n in idx[gi][l - 1][u]:
                        bl[flat_index(gi, i, n)] += sh[u, row]
        out.append(np.maximum(out[-1] @ Wd.T + bl, 0))
    return out


def _flat(A):
    return torch.cat([a.permute(2, 1, 0).reshape(a.shape[-1], -1) for a in A], dim=1)


@pytest.mark.parametrize(
    "kind,knobs", [("sharp", {"theta": 0.45}), ("wide", {"share": 0.6, "S_alpha": 3, "theta": 0.5})]
)
def test_structured_equals_naive_dense_reference(kind, knobs):
    """Tiny gate graph (T = 21, with AND shifts) and a tiny random graph: the structured
    forward equals the loop-built dense network."""
    L = 4
    g = _gen(7)
    sch = make_scheme(kind, 120, S=3, **knobs)
    for gr, inp_a0 in ((G.gate_graph(7, L, 2, g, and_fraction=0.5), None), (G.random_graph(20, L, 2, 6, g), 1)):
        inp, a0 = _gate_inputs(7, 2, 5, g) if inp_a0 is None else _random_inputs(gr, 2, 5, g)
        net = GC.build_graph_corrected(gr, sch, g, dtype=F64)
        ref = _dense_reference(net, inp, a0)
        got = [net.embed(inp, a0)] + [A for _, A, _ in net.layers_iter(net.embed(inp, a0))]
        assert _flat(got[0]).shape[1] == sch.D
        for l in range(1, L + 1):
            err = float((_flat(got[l]).numpy() - ref[l]).__abs__().max())
            assert err < 1e-12, (kind, l, err)
        # and something actually happened: active circuits read their ground truth roughly
        assert float(np.abs(ref[L]).max()) > 0.5


def test_chi_edges_reduces_to_both_parents():
    from superpose_lib import layer_assignments
    from superpose_lib.core.network import connectivity
    from superpose_lib.correction import general_chi

    g = _gen(8)
    idx = layer_assignments(60, 50, 4, 2, g)
    cur, prev = idx[1], idx[0]
    r = torch.randperm(60, generator=g)[:20]
    s = torch.randperm(60, generator=g)[:20]
    n, m, _ = connectivity(cur[r], prev[s], 50)
    assert GC.chi_edges(cur, prev, 20, 50, 50, n, m) == G.balance_chi_edges(cur, prev, 20, 50, n, m)
    t = torch.arange(60)
    n, m, _ = connectivity(cur[t], prev[t], 50)
    assert GC.chi_edges(cur, prev, 60, 50, 50, n, m) == pytest.approx(general_chi(cur, prev, 50, 50, n, m), rel=1e-14)


# ---- the dead-zone step's circuits ---------------------------------------------------------
def test_stepped_gates_compute_or_and_exactly():
    """OR = step(α_a + α_b), AND = step(α_a + α_b − 1) with any dead zone: the stepped graph run
    directly gives the same on-indicators as RiS's step for Boolean parents."""
    g = _gen(9)
    gr = G.gate_graph(6, 3, 2, g, and_fraction=0.5)
    P = 6
    for lo, hi in ((0.25, 0.75), (0.55, 0.75), (0.4, 0.6)):
        sg = GC.stepped_graph(gr, lo, hi)
        for pa, pb in ((0, 0), (1, 0), (0, 1), (1, 1)):
            a0 = torch.zeros(gr.T, 4, 1, dtype=F64)
            for gate in range(P):
                a0[2 * gate] = encode_input(torch.tensor([float(pa)]), torch.zeros(1, 2)).T
                a0[2 * gate + 1] = encode_input(torch.tensor([float(pb)]), torch.zeros(1, 2)).T
            out = G.run_graph(sg, a0)
            alpha = out[2, 2 * P :, 0, 0] - out[2, 2 * P :, 1, 0]
            n_and = 3
            want_and, want_or = float(pa and pb), float(pa or pb)
            assert torch.allclose(alpha[:n_and], torch.full((n_and,), want_and, dtype=F64))
            assert torch.allclose(alpha[n_and:], torch.full((P - n_and,), want_or, dtype=F64))


def test_sparse_truth_equals_run_graph():
    g = _gen(10)
    gr = GC.stepped_graph(G.gate_graph(15, 5, 4, g, and_fraction=0.4), 0.5, 0.75)
    inp, a0 = _gate_inputs(15, 4, 12, g)
    full = G.run_graph(gr, G.layer0_states(gr, inp, a0[..., 2:4] - 1.0, F64)[0])
    for l, (ids, a) in enumerate(GC.sparse_truth(gr, inp, a0)):
        dense = torch.zeros_like(full[l])
        dense[ids] = a
        assert torch.allclose(dense, full[l], rtol=0, atol=1e-12), l


# ---- measurement ---------------------------------------------------------------------------
def test_run_is_reproducible_and_rows_are_tidy():
    kw = dict(z=2, L=4, batch=16, seed=3)
    a = GC.graph_correction_rows("wide", 2000, 100, share=0.6, S_alpha=4, theta=0.55, **kw)
    b = GC.graph_correction_rows("wide", 2000, 100, share=0.6, S_alpha=4, theta=0.55, **kw)
    assert a == b
    assert [r["layer"] for r in a] == [1, 2, 3, 4]
    for r in a:
        assert 0 <= r["false_on"] <= 1 and 0 <= r["false_off"] <= 1 and 0 <= r["spurious_on"] <= 1
        assert r["T"] == 300 and r["n_active"] > 0
    c = GC.graph_correction_rows("wide", 2000, 100, share=0.6, S_alpha=4, theta=0.55, z=2, L=4, batch=16, seed=4)
    assert a != c


def test_run_statistics_equal_graph_errors_of_the_same_network():
    """The baseline scheme is `GraphNetwork`: `graph_correction_run`'s statistics of the
    criteria equal `graph_errors`' (pinned by naive loops) on the same graph, draw and network."""
    D, P, z, L, B, seed = 400, 28, 2, 4, 24, 5
    r = GC.graph_correction_run("baseline", D, P, z=z, L=L, batch=B, seed=seed, dtype=F64)
    g = _gen(seed)  # graph_correction_run's draws, in its order
    gr = G.gate_graph(P, L, z, g, and_fraction=0.0, dtype=F64)
    inp = G.sample_gate_inputs(P, z, B, g)
    x0 = sample_unit_vectors((B, z), g)
    sch = GC.graph_scheme("baseline", D)
    idx = GC.graph_assignments(sch, gr.T, L, g)
    e = G.graph_errors(G.GraphNetwork(gr, idx[0], D // 4), inp, x0, theory=False)
    for k in ("false_on", "false_off", "q90_dx", "worst_dx"):
        assert r[k][1:] == pytest.approx(e[k][1:], rel=1e-9, abs=1e-12), k
    assert max(r["false_on"]) > 0  # crowded enough that the rates are not all zero


def test_small_network_without_overload_is_accurate():
    """Few gates in a wide network: no false activation, and active circuits close to the truth."""
    for kind, kw in (
        ("baseline", {}),
        ("sharp", {"theta": 0.55}),
        ("wide", {"share": 0.6, "S_alpha": 4, "theta": 0.55}),
    ):
        r = GC.graph_correction_run(kind, 4000, 20, z=2, L=4, batch=32, seed=0, **kw)
        assert max(r["false_on"][1:]) == 0 and max(r["false_off"][1:]) == 0, kind
        assert max(r["worst_dx"][1:]) < 0.8, kind


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: GC.graph_correction_run("gated", 2000, 10), "kind"),
        (lambda: GC.graph_correction_run("wide", 2000, 10**6, share=0.6, S_alpha=4), "P="),
        (lambda: GC.graph_correction_run("baseline", 2000, 0), "P="),
        (lambda: GC.graph_correction_run("baseline", 2000, 10, batch=0), "batch"),
        (lambda: GC.graph_correction_run("baseline", 2000, 10, dtype="int8"), "dtype"),
        (lambda: GC.graph_correction_run("baseline", 2000, 10, seed=-1), "seed"),
        (lambda: GC.graph_correction_run("baseline", 2000, 10, batch=10**12), "batch=1000000000000 is out of range"),
        (lambda: GC.stepped_graph(G.gate_graph(3, 3, 2, _gen()), 0.8, 0.7), "theta_hi"),
        (lambda: GC.graph_scheme("register", 2000), "kind"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_scheme_without_graph_support_is_refused():
    g = _gen(11)
    gr = G.gate_graph(4, 3, 2, g)
    for sch in (make_scheme("redundant", 400, share=0.3), make_scheme("oracle", 400), make_scheme("gated", 400)):
        with pytest.raises(ValueError, match="scheme"):
            GC.build_graph_corrected(gr, sch, g)
    sch = make_scheme("baseline", 400)
    idx = GC.graph_assignments(sch, gr.T, gr.L, g)
    with pytest.raises(ValueError, match="idx"):
        GC.GraphCorrectedNetwork(gr, sch, [idx[0][:, :, :2]])


# ---- analysis: grid, tuning, the top-load comparison ----------------------------------------
def test_grid_skips_loads_beyond_the_assignment_and_keeps_per_D_settings():
    schemes = {
        "baseline": {"kind": "baseline"},
        "E5": {2000: {"kind": "wide", "share": 0.7, "S_alpha": 4, "theta": 0.55}},
    }
    grid = GC.graph_correction_grid(schemes, [2000], [2], [0.001, 0.5], L=4, batch=8)
    by = {(c["name"], c["P"]) for c in grid}
    P_small, P_big = round(0.001 * 500**2 / 3), round(0.5 * 500**2 / 3)
    assert ("baseline", P_small) in by and ("E5", P_small) in by
    assert all(c["P"] != P_big for c in grid), "3P beyond every scheme's capacity is skipped"
    e5 = next(c for c in grid if c["name"] == "E5")
    assert e5["share"] == 0.7 and e5["kind"] == "wide"
    assert GC.graph_tuning_rows("E5", "f", "wide", 2000, 2, 4, 0, x=0.5, share=0.7, S_alpha=4, theta=0.55) == [
        {"worst_dx": float("inf"), "false_on": 1.0, "false_off": 1.0, "built": False}
    ]


def test_top_load_table_on_hand_made_rows():
    import pandas as pd

    rows = []
    for name, fo in (("baseline", [0.5, 0.6, 0.7]), ("E1", [0.1, 0.2, 0.3]), ("E5", [0.0, 0.001, 0.002])):
        for seed, v in enumerate(fo):
            rows.append(
                {
                    "name": name,
                    "D": 100,
                    "z": 2,
                    "P": 10,
                    "T": 30,
                    "x": 0.03,
                    "seed": seed,
                    "layer": 4,
                    "false_on": v,
                    "worst_dx": 1.0,
                }
            )
            rows.append(
                {
                    "name": name,
                    "D": 100,
                    "z": 2,
                    "P": 5,
                    "T": 15,
                    "x": 0.015,
                    "seed": seed,
                    "layer": 4,
                    "false_on": 0.0,
                    "worst_dx": 0.5,
                }
            )
    # E5 also ran at a larger load that the others did not: the top load is the largest common one
    rows.append(
        {
            "name": "E5",
            "D": 100,
            "z": 2,
            "P": 20,
            "T": 60,
            "x": 0.06,
            "seed": 0,
            "layer": 4,
            "false_on": 0.9,
            "worst_dx": 9.0,
        }
    )
    top = GC.top_load_table(pd.DataFrame(rows), on_rate=0.01)
    r = top.iloc[0]
    assert r.P == 10 and r["T"] == 30
    assert r.baseline_false_on == pytest.approx(0.6) and r.E1_false_on == pytest.approx(0.2)
    assert r.E1_fails and r.baseline_fails and not r.E5_fails
    assert r.E5_below_E1_every_seed and r.E1_over_E5 == pytest.approx(0.2 / 0.001)
    lo, hi = r.E1_false_on_lo, r.E1_false_on_hi
    assert lo < 0.2 < hi and hi - 0.2 == pytest.approx(
        4.302653 * 0.1 / 3**0.5, rel=1e-3
    )  # t(0.975, ν=2), tabulated to 4 digits
    s = GC.graph_correction_summary(pd.DataFrame(rows), "false_on")
    assert set(s.columns) >= {"name", "D", "z", "P", "mean", "low", "high", "n"}


def test_plot_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    rows = [
        dict(r, name=n, kind=n, D=2000, P=30, z=2, seed=0)
        for n, kw in (("baseline", {}), ("E5", {"share": 0.6, "S_alpha": 4, "theta": 0.55}))
        for r in GC.graph_correction_rows("baseline" if n == "baseline" else "wide", 2000, 30, batch=8, **kw)
    ]
    ax = G.plot_graph_correction(pd.DataFrame(rows), "false_on", z=2, D=2000)
    assert ax.get_yscale() == "log" and len(ax.lines) >= 2
