"""Spurious on-indicator neurons: the measured fraction (against a naive loop over neurons
and circuits, through the dense reference network) and the neuron-level theory
(`superpose_lib.regime.spurious`: validation, limits, agreement with measurement)."""

import math

import pytest
import torch
from conftest import ROOT  # noqa: F401

from superpose_lib import CiSConfig, build_network, rotation_errors, rotation_run, sample_active, sample_unit_vectors
from superpose_lib.core.circuits import encode_input
from superpose_lib.core.network import flat


def _net(D=400, T=86, z=4, batch=12, seed=5, L=4):
    cfg = CiSConfig(D=D, T=T, z=z, L=L)
    g = torch.Generator().manual_seed(seed)
    net, _ = build_network(cfg, g, dtype=torch.float64)
    active = sample_active(T, z, batch, g)
    x0 = sample_unit_vectors((batch, z), g)
    return net, active, x0


def test_spurious_on_matches_a_naive_loop_over_the_dense_network():
    """Naive definition: for every batch row, layer and block-0 neuron n (flat index n),
    count n when its dense activation is > 0 and no active circuit lists n in e_t^l;
    divide by M and average over the batch. The network is at capacity (T = max_circuits(100, 6))
    that neurons are spurious from layer 2, so the test can fail."""
    net, active, x0 = _net()
    B, z = active.shape
    run = rotation_run(net, active, x0)
    a0 = encode_input(torch.ones(B, z, dtype=torch.float64), x0)
    acts = net.forward_dense(net.embed(active, a0))  # [A^0, ..., A^L], each [B, D]
    naive = [0.0] * (net.L + 1)
    for l in range(1, net.L + 1):
        total = 0
        for b in range(B):
            used = set()
            for t in active[b].tolist():
                used.update(net.idx[l - 1][t].tolist())
            for n in range(net.M):
                if acts[l][b, n] > 0 and n not in used:
                    total += 1
        naive[l] = total / net.M / B
    measured = run.mse()["spurious_on"]
    assert measured[0] == 0.0
    assert max(naive[1:]) > 0.01, naive  # the check has teeth
    for l in range(1, net.L + 1):
        assert measured[l] == pytest.approx(naive[l], abs=1e-12), (l, measured, naive)


def test_spurious_on_is_zero_at_layer_one_and_reported_by_rotation_errors():
    """Layer 1 (layer-0 trick): only the active circuits' neurons are on."""
    r = rotation_errors(800, 300, z=2, batch=20, seed=1)
    assert len(r["spurious_on"]) == 5
    assert r["spurious_on"][0] == 0.0 and r["spurious_on"][1] == 0.0
    assert all(0.0 <= v <= 1.0 for v in r["spurious_on"])


@pytest.mark.parametrize("variant", ["oracle", "sharp"])
def test_fast_variants_match_the_dense_reference(variant):
    """The oracle and E1 on the structured network (`variant_experiment`) against the dense
    forward pass of the same weights (`forward_dense`), the oracle masking by hand: the
    active circuits' errors agree to float64 rounding; the oracle has no spurious neuron."""
    from superpose_lib.core.circuits import decode, run_circuits
    from superpose_lib.core.experiment import variant_experiment

    D, T, z, L, B = 400, 86, 3, 4, 10
    net, active, x0, oracle = variant_experiment(D, T, z=z, L=L, batch=B, seed=2, variant=variant, dtype=torch.float64)
    fast = rotation_run(net, active, x0, oracle=oracle).mse()
    a0 = encode_input(torch.ones(B, z, dtype=torch.float64), x0)
    truth = run_circuits(net.w[active], a0, L, net.bias)
    A = flat(net.embed(active, a0))
    bias = net.bias.repeat_interleave(net.M)
    for l in range(1, L + 1):
        A = torch.relu((A if l == 1 else A @ net.dense_weight(l).T) + bias)
        if oracle:
            keep = torch.zeros(B, net.d, net.M, dtype=A.dtype)
            for b in range(B):
                for t in active[b].tolist():
                    keep[b, :, net.idx[l - 1][t]] = 1
            A = A * keep.reshape(B, -1)
        blocks = A.reshape(B, net.d, net.M)
        n = net.idx[l - 1][active]  # [B, z, S]
        g = torch.stack([blocks[b][:, n[b]].sum(-1).T for b in range(B)]) / net.S  # [B, z, d]
        (a_al, a_x), (t_al, t_x) = decode(g), decode(truth[l])
        assert fast["active_x"][l] == pytest.approx(float(((a_x - t_x) ** 2).sum(-1).mean()), rel=1e-9, abs=1e-14)
        assert fast["active_on"][l] == pytest.approx(float(((a_al - t_al) ** 2).mean()), rel=1e-9, abs=1e-14)
    if oracle:
        assert max(fast["spurious_on"]) == 0.0
    else:
        base = rotation_run(*variant_experiment(D, T, z=z, L=L, batch=B, seed=2, dtype=torch.float64)[:3]).mse()
        assert fast["spurious_on"][L] < base["spurious_on"][L]  # the wider dead zone switches fewer on


# ---- the neuron-level theory ------------------------------------------------------------
from superpose_lib import spurious_on_theory  # noqa: E402
from superpose_lib.regime.spurious import boundary_theory, layer2_threshold, seizure_floor, spurious_theory  # noqa: E402


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(D=1002, T=100), "D"),
        (dict(D=1000, T=0), "T"),
        (dict(D=1000, T=10**6), "T"),
        (dict(D=1000, T=100, z=0), "z"),
        (dict(D=1000, T=100, L=0), "L"),
        (dict(D=1000, T=100, S=0), "S"),
        (dict(D=1000, T=100, d=0), "d"),
        (dict(D=2**20, T=10**12), "T"),
    ],
)
def test_spurious_on_theory_validates_its_parameters(kwargs, name):
    D, T = kwargs.pop("D"), kwargs.pop("T")
    with pytest.raises(ValueError, match=name):
        spurious_on_theory(D, T, **kwargs)


def test_boundary_theory_validates():
    with pytest.raises(ValueError, match="kind"):
        boundary_theory(4096, 1, 3, kind="bogus")
    with pytest.raises(ValueError, match="level"):
        boundary_theory(4096, 1, 3, level=0.5)
    with pytest.raises(ValueError, match="l="):
        boundary_theory(4096, 1, 1)


def test_theory_limits_and_layer2_closed_form():
    """Layers 0 and 1 are exactly 0; at layer 2 with χ small the fraction is
    (1 − U/M)·P(Poisson(λ) ≥ 2), λ = z(S³x − S²/M); the χ shift raises the threshold to
    K ≥ 3 at T(d/D)² = 0.004 (z = 1) and the prediction converges in D at fixed x."""
    D, z = 65536, 1
    M = D // 4
    T = round(0.001 * M * M)
    th = spurious_theory(D, T, z=z)
    assert th["spurious_on"][0] == 0.0 and th["spurious_on"][1] == 0.0
    lam = z * (216 * T / M**2 - 36 / M)
    assert th["lam"] == pytest.approx(lam, rel=1e-9)
    assert th["threshold2"] == 2 == layer2_threshold(D, T, z=z)
    closed = (1 - th["U"] / M) * (1 - math.exp(-lam) * (1 + lam))
    assert th["spurious_on"][2] == pytest.approx(closed, rel=1e-9)
    assert layer2_threshold(D, round(0.004 * M * M), z=1) == 3
    p2 = [spurious_on_theory(D, round(0.002 * (D / 4) ** 2), L=2)[2] for D in (16384, 65536, 262144)]
    assert abs(p2[2] - p2[1]) < abs(p2[1] - p2[0]) + 1e-12 and abs(p2[2] - p2[1]) / p2[2] < 0.02
    assert seizure_floor(D, T, z=z) == pytest.approx(th["spurious_on"][2])


def test_theory_layer3_grows_with_D_at_fixed_x():
    """The background: each neuron sums ≈ S²·x·M connected neurons, so at fixed x the
    layer-3 fraction grows with M while layer 2 converges."""
    l3 = [spurious_on_theory(D, round(0.002 * (D / 4) ** 2))[3] for D in (4096, 16384, 65536)]
    assert l3[0] < l3[1] < l3[2] and l3[2] > 2 * l3[0]


def test_theory_matches_measurement_at_layers_2_and_3():
    """One network, D = 16384, T(d/D)² = 0.002, z = 1, batch 64: the measured spurious
    fraction within 25 % of the prediction at layers 2 and 3 (the approximations A1–A4
    and the batch's sampling error, ~5 % here, are the tolerance's reason)."""
    D = 16384
    T = round(0.002 * (D / 4) ** 2)
    measured = rotation_errors(D, T, z=1, batch=64, seed=0, L=3)["spurious_on"]
    theory = spurious_on_theory(D, T, z=1, L=3)
    for l in (2, 3):
        assert measured[l] == pytest.approx(theory[l], rel=0.25), (l, measured, theory)


def test_predicted_boundary_falls_with_D():
    x = [boundary_theory(D, 1, 4) for D in (4096, 16384, 65536)]
    assert x[0] > x[1] > x[2]
