"""The scaling (switch-off) construction: the sparse network against a dense loop reference, its
statistics against a naive loop over every circuit, the theory and the design rule."""

import math

import pytest
import torch

from superpose_lib.core.assignment import assign_affine, layer_assignments
from superpose_lib.core.experiment import sample_active, sample_unit_vectors
from superpose_lib.correction import scaling as so


def _scheme(D=208, M_r=64, S_r=3):
    return so.SwitchOffScheme(D, (D - M_r) // 4, M_r, 2, S_r)


def test_simplex_code_decodes_and_weights_rotate():
    g = torch.Generator().manual_seed(0)
    x = sample_unit_vectors((50,), g)
    h = so.simplex_code(x)
    assert (h >= -1e-12).all()
    assert torch.allclose((2 / 3) * h @ so.SIMPLEX, x, atol=1e-12)
    assert torch.allclose((2 / 3) * (h + 0.7) @ so.SIMPLEX, x, atol=1e-12)  # any common offset
    theta = torch.rand(50, generator=g, dtype=torch.float64) * 2 * math.pi
    W = so.simplex_weights(theta)
    Rx = so._rotate(theta, x)
    assert torch.allclose(torch.einsum("tkj,tj->tk", W, h), so.simplex_code(Rx) - 1, atol=1e-12)
    assert torch.allclose(W.sum(-1), torch.zeros(50, 3, dtype=torch.float64), atol=1e-12)  # W_t 1 = 0


@pytest.mark.parametrize("M,S,T", [(30, 2, 160), (40, 3, 100), (49, 7, 49)])
def test_plane_is_the_affine_assignment_and_its_inverse(M, S, T):
    pl = so._Plane(M, S, T, "cpu")
    lines = pl.points(torch.arange(T))
    assert torch.equal(lines, assign_affine(T, M, S))
    pos = torch.arange(pl.p * S)
    row, k, col = pl.lines_through(pos)
    for n in range(pl.p * S):  # brute force: every line through n, once, with n's column
        through = sorted(int(t) for t in (lines == n).any(1).nonzero().flatten())
        assert sorted(k[row == n].tolist()) == through
        assert (lines[k[row == n], col[row == n]] == n).all()


def _dense_reference(net: so.SwitchOffNetwork, active, x0, switch_off=False):
    """The network as explicit matrices, one loop over circuits: H^l per layer [B, 3, M]."""
    s, T, L = net.scheme, net.T, net.L
    M, S, dt = s.M, s.S, torch.float64
    e = [net.positions(l, torch.arange(T)) for l in range(1, L + 1)]
    eR = net.plane_r.points(net.perm_r)
    W = net.W.to(dt)
    B = active.shape[0]
    R0 = torch.zeros(B, s.M_r, dtype=dt)
    for b in range(B):
        for t in active[b].tolist():
            for m in eR[t].tolist():
                R0[b, m] += 1
    H = torch.zeros(B, 3, M, dtype=dt)
    h0 = so.simplex_code(x0.to(dt))
    for b in range(B):
        for j, t in enumerate(active[b].tolist()):
            for n in e[0][t].tolist():
                H[b, :, n] += W[t] @ h0[b, j] + 1
    H = torch.relu(H)
    out = [H]
    for l in range(2, L + 1):
        Wp = torch.zeros(3, M, 3, M, dtype=dt)
        C = torch.zeros(M, s.M_r, dtype=dt)
        for t in range(T):
            for n in e[l - 1][t].tolist():
                for m in e[l - 2][t].tolist():
                    Wp[:, n, :, m] += W[t] / S
                for m in eR[t].tolist():
                    C[n, m] += 1
        P = torch.einsum("knjm,bjm->bkn", Wp, H)
        if switch_off:
            used = torch.zeros(B, M, dtype=dt)
            for b in range(B):
                for t in active[b].tolist():
                    used[b, e[l - 1][t]] = 1
            H = torch.relu(P + 1) * used[:, None, :]
        else:
            g = torch.relu(s.S_r - R0 @ C.T)  # [B, M]
            H = torch.relu(P + 1 - (s.G + 1) * g[:, None, :])
        out.append(H)
    return out


@pytest.mark.parametrize("switch_off", [False, True])
@pytest.mark.parametrize("T", [30, 260])
def test_sparse_network_equals_dense_reference(T, switch_off):
    s = _scheme()
    g = torch.Generator().manual_seed(3)
    net = so.SwitchOffNetwork(s, T, 4, g, dtype=torch.float64)
    active = sample_active(T, 2, 6, g)
    x0 = sample_unit_vectors((6, 2), g)
    ref = _dense_reference(net, active, x0, switch_off)
    for l, H, opened, used in net.layers(active, x0, switch_off=switch_off):
        got = H.view(6, s.M, 3).permute(0, 2, 1)
        assert torch.allclose(got, ref[l - 1], atol=1e-12), l
        assert (H[~opened] == 0).all()  # a closed gate leaves nothing behind
        assert used[opened].sum() == used.sum()  # every used position is open


def test_assignments_are_the_libraries_affine_layer_assignments():
    s, T, L = _scheme(), 200, 3
    net = so.SwitchOffNetwork(s, T, L, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    torch.rand(T, generator=g, dtype=torch.float64)  # the angles come first
    ref = layer_assignments(T, s.M, s.S, L, g, design="affine")
    for l in range(1, L + 1):
        assert torch.equal(net.positions(l, torch.arange(T)), ref[l - 1])


def _naive_stats(net, active, x0, l, switch_off):
    """α̂, x̂ of every circuit at layer l by a loop, and the statistics scheme_run defines."""
    ref = _dense_reference(net, active, x0, switch_off)[l - 1]  # [B, 3, M]
    s, T = net.scheme, net.T
    e = net.positions(l, torch.arange(T))
    B, z = active.shape
    if l == 1 or switch_off:
        opened = torch.zeros(B, s.M, dtype=torch.bool)
        for b in range(B):
            for t in active[b].tolist():
                opened[b, e[t]] = True
    else:
        opened = None
        for ll, H, op, used in net.layers(active, x0):
            if ll == l:
                opened = op.view(B, s.M)
    theta = net.theta
    xt = x0.clone()
    for _ in range(l):
        xt = so._rotate(theta[active], xt)
    eR = net.plane_r.points(net.perm_r)
    dx, fo, oo, ix, n_in = [], 0, 0, 0.0, 0
    for b in range(B):
        on_bits = torch.zeros(s.M_r, dtype=torch.float64)
        for t in active[b].tolist():
            on_bits[eR[t]] += 1
        for t in range(T):
            alpha = float(on_bits[eR[t]].sum()) / s.S_r  # the register's readout
            x = (2 / 3) * (ref[b][:, e[t]].sum(1) / s.S) @ so.SIMPLEX
            if t in active[b].tolist():
                j = active[b].tolist().index(t)
                dx.append(float((x - xt[b, j]).norm()))
            else:
                n_in += 1
                fo += alpha > 0.5
                oo += float(opened[b, e[t]].double().mean()) > 0.5
                ix += float((x**2).sum())
    return torch.tensor(dx, dtype=torch.float64), fo / n_in, oo / n_in, ix / n_in


@pytest.mark.parametrize("switch_off", [False, True])
def test_statistics_equal_a_loop_over_every_circuit(switch_off):
    s, T = _scheme(), 260
    g = torch.Generator().manual_seed(11)
    net = so.SwitchOffNetwork(s, T, 3, g, dtype=torch.float64)
    active = sample_active(T, 2, 5, g)
    x0 = sample_unit_vectors((5, 2), g)
    res = so._stats(net, active, x0, {1, 2, 3}, switch_off=switch_off, on_threshold=0.5, chunk=2)
    for l in (1, 2, 3):
        dx, fo, oo, ix = _naive_stats(net, active, x0, l, switch_off)
        assert res["open_on"][l] == pytest.approx(oo, abs=1e-12)
        assert res["inactive_x"][l] == pytest.approx(ix, abs=1e-9)
        assert res["q90_dx"][l] == pytest.approx(float(torch.quantile(dx, 0.9)), abs=1e-9)
        assert res["worst_dx"][l] == pytest.approx(float(dx.max()), abs=1e-9)
        assert res["active_x"][l] == pytest.approx(float((dx**2).mean()), abs=1e-9)
        assert res["false_on"][l] == pytest.approx(fo, abs=1e-12)


def test_run_is_reproducible_and_its_oracle_is_paired():
    s = _scheme(640, 160, 4)
    a = so.scaling_run(s, 1200, z=2, L=4, batch=16, seed=7, with_oracle=True)
    b = so.scaling_run(s, 1200, z=2, L=4, batch=16, seed=7, with_oracle=True)
    assert a == b
    assert a["oracle"]["spurious_on"][4] == 0
    # The register is exact: an inactive circuit shares at most z = 2 of its S_r = 4 register
    # neurons with the active ones, so none reads above 1/2, in the network or its oracle.
    assert a["false_on"][4] == a["oracle"]["false_on"][4] == 0 and a["false_off"][4] == 0
    assert a["q90_dx"][1] == a["oracle"]["q90_dx"][1]  # layer 1 is the same exact embedding


def test_gate_false_rate_matches_the_measured_open_fraction():
    # D = 2048, a register of 1/4: at T = 0.02·M² the theory predicts p_g ≈ 2e-2; the measured
    # fraction over 64 samples × 460 positions (≈ 600 false gates) has a relative sd of ≈ 4 %
    # plus the Poisson approximation's error: a factor 1.5 either way.
    s = so.SwitchOffScheme(2048, 384, 512, 2, 4)
    T = int(0.02 * s.M**2)
    r = so.scaling_run(s, T, z=2, L=3, batch=64, seed=1, layers=[3])
    p = so.gate_false_rate(s.M, s.M_r, T, S=2, S_r=4, z=2)
    assert 1 / 1.5 < r["spurious_on"][3] / p < 1.5, (r["spurious_on"][3], p)


def test_variance_ratio():
    assert so.variance_ratio(0.0, 10) == 1.0
    assert so.variance_ratio(0.3, 2) == 1.0
    # L = 3: one false layer (2) passes y of its noise to layer 3: 1 + y/2.
    assert so.variance_ratio(0.4, 3) == pytest.approx(1.2)
    deep = so.variance_ratio(0.5, 2000)
    assert deep == pytest.approx(1 / (1 - 0.5), rel=0.01)


def test_design_rule_widens_the_register_with_the_load_and_refuses_what_cannot_fit():
    lo = so.scaling_design(16384, z=2, L=10, x=0.0005)
    hi = so.scaling_design(16384, z=2, L=10, x=0.008)
    assert lo.M_r < hi.M_r and lo.width <= 16384 and hi.width <= 16384
    assert so.scaling_design(16384, z=2, L=10, x=0.008) == hi  # a function of its arguments
    with pytest.raises(ValueError, match="x="):
        so.scaling_design(1024, z=2, L=10, x=0.5)
    with pytest.raises(ValueError, match="x="):
        so.scaling_design(1024, z=2, L=10, x=-1)


def test_scaling_boundary_falls_slowly():
    # The theory's T ∝ D²/ln D: between D = 4096 and 131072 the boundary falls by less than
    # a factor 2.5 (a D^-1/2 law would fall by 5.7).
    a, b = so.scaling_boundary(4096, z=2, L=10), so.scaling_boundary(131072, z=2, L=10)
    assert 1 < a / b < 2.5, (a, b)


def test_scheme_validates():
    with pytest.raises(ValueError, match="width"):
        so.SwitchOffScheme(1000, 240, 100)
    with pytest.raises(ValueError, match="S_r"):
        so.SwitchOffScheme(1000, 200, 100, 2, 1)


def test_weights_count_the_sparse_layer():
    s = _scheme()
    T = 100
    assert s.weights(T) == 9 * T * 4 + T * 2 * 3 + 3 * s.M + s.M_r
    net = so.SwitchOffNetwork(s, T, 3, torch.Generator().manual_seed(0), dtype=torch.float64)
    # the dense layer's non-zero payload entries: at most 9 per (circuit, pair), fewer where pairs repeat
    e2, e1 = net.positions(2, torch.arange(T)), net.positions(1, torch.arange(T))
    pairs = {(int(n), int(m)) for t in range(T) for n in e2[t] for m in e1[t]}
    assert 0 < len(pairs) <= T * 4 and 9 * len(pairs) + T * 2 * 3 + 3 * s.M + s.M_r <= s.weights(T)


@pytest.mark.parametrize(
    "n,q,k", [(20, 0.1, 3), (100, 0.05, 7), (30, 0.5, 10), (50, 0.3, 2), (1000, 0.01, 12), (5, 0.2, 0), (5, 0.2, 6)]
)
def test_binomial_tail_equals_the_sum_of_its_terms(n, q, k):
    naive = sum(math.comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(k, n + 1))
    assert so._binomial_sf(n, q, k) == pytest.approx(naive, rel=1e-9, abs=1e-15)


def test_tolerated_noise_is_where_the_variance_ratio_reaches_the_factor():
    y = so.tolerated_noise(10)
    assert 0 < y < 1 and math.sqrt(so.variance_ratio(y, 10)) == pytest.approx(1.5, rel=1e-6)
    assert so.tolerated_noise(10, factor=2.0) > y > so.tolerated_noise(40)  # deeper tolerates less
    assert so.tolerated_noise(2) == 1.0  # no layer carries false-gate noise
    with pytest.raises(ValueError, match="factor"):
        so.tolerated_noise(10, factor=1.0)


def test_family_boundary_bounds_the_rule_and_orders_its_arguments():
    for D in (1024, 4096, 16384):
        bound = so.family_boundary(D, z=2, L=10)
        # the rule's design is one member of the family, with integer primes: never above
        assert bound >= so.scaling_boundary(D, z=2, L=10) * 0.99, D
        # a larger payload redundancy only raises the gates' counts
        assert so.family_boundary(D, z=2, L=10, S=1) > bound > so.family_boundary(D, z=2, L=10, S=3)
    assert so.family_boundary(4096, z=4, L=10) < so.family_boundary(4096, z=2, L=10)
    assert so.family_boundary(4096, z=2, L=10, factor=2.0) > so.family_boundary(4096, z=2, L=10)
    # the family's best falls by more than 2x from D = 1024 to 131072 for every S
    for S in (1, 2, 3):
        assert so.family_boundary(1024, z=2, L=10, S=S) / so.family_boundary(131072, z=2, L=10, S=S) > 2, S


def test_family_boundary_no_integer_design_holds_at_the_bound():
    # Brute force over every integer register width M_r and every S_r, with the theory's
    # binomial tail written as a plain sum: at the bound no design holds (it bounds the
    # family), and 10 % below it some design does (it is not loose by more than that).
    D, z, L, S = 1024, 2, 10, 2
    y_max = so.tolerated_noise(L)

    def some_design_holds(x):
        T = max(z, round(x * (D / 4) ** 2))
        for M_r in range(1, D):
            M = (D - M_r) / 4
            if (M / S) ** 2 < T:
                continue
            n = z * int(T * S // M)
            for S_r in range(1, 200):
                if S_r * S_r > M_r or (M_r / S_r) ** 2 < T:
                    break
                q = S_r * S_r / M_r
                tail = sum(math.comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(S_r, n + 1))
                if tail * T / M <= y_max:
                    return True
        return False

    x = so.family_boundary(D, z=z, L=L, S=S)
    assert not some_design_holds(x) and some_design_holds(x / 1.1)


@pytest.mark.parametrize("kw", [dict(S=0), dict(D=10), dict(factor=1.0), dict(L=0)])
def test_family_boundary_refuses_bad_arguments(kw):
    args = dict(D=1024, z=2, L=10) | kw
    D = args.pop("D")
    with pytest.raises(ValueError, match=next(iter(kw))):
        so.family_boundary(D, **args)
