"""The affine-plane (transversal design) assignment (superpose_lib.core.assignment.assign_affine)
against a naive loop-based reference, and its use in the error-correction schemes."""

import itertools

import pytest
import torch

from superpose_lib.core.assignment import (
    affine_capacity,
    affine_prime,
    assign,
    assign_affine,
    capacity,
    layer_assignments,
    max_circuits,
    mean_squared_overlap,
    neuron_counts,
)
from superpose_lib.core.circuits import encode_input
from superpose_lib.core.experiment import sample_active, sample_unit_vectors
from superpose_lib.core.network import SuperposedNetwork
from superpose_lib.correction import BlockGroup, build_corrected, make_scheme, scheme_run
from superpose_lib.correction.scale import family_settings

# (M, S) with S ≤ p = the largest prime with S·p ≤ M; (30, 6) has p = 5 < S and is refused
VALID = [(M, S) for M in (30, 50, 77) for S in (3, 4, 6) if (M, S) != (30, 6)]


def _naive_prime(M, S):
    """Largest prime p with S·p ≤ M, by trial division of every candidate."""
    for p in range(M // S, 1, -1):
        if all(p % q for q in range(2, p)):
            return p
    return 0


def _naive_lines(T, M, S):
    """The first T lines, slope-major, built point by point in Python."""
    p = _naive_prime(M, S)
    out = []
    for a in range(p):
        for b in range(p):
            out.append([i * p + (a * i + b) % p for i in range(S)])
    return out[:T], p


@pytest.mark.parametrize("M,S", VALID)
def test_matches_naive_reference_and_overlaps_at_most_one(M, S):
    p = _naive_prime(M, S)
    assert affine_prime(M, S) == p and affine_capacity(M, S) == p * p == capacity(M, S, "affine")
    for T in sorted({1, p, p + 3, p * p}):
        idx = assign_affine(T, M, S)
        ref, _ = _naive_lines(T, M, S)
        assert idx.dtype == torch.int64 and idx.shape == (T, S)
        assert idx.tolist() == ref
        assert int(idx.min()) >= 0 and int(idx.max()) < S * p <= M  # in range; neurons ≥ S·p unused
        rows = [set(r) for r in idx.tolist()]
        assert all(len(r) == S for r in rows)  # distinct positions within a circuit
        # brute force over all pairs of circuits: at most one shared neuron
        assert max((len(u & v) for u, v in itertools.combinations(rows, 2)), default=0) <= 1


@pytest.mark.parametrize("M,S", VALID)
def test_capacity_against_bounds(M, S):
    cap = affine_capacity(M, S)
    assert cap <= M * (M - 1) / (S * (S - 1))  # pair-counting bound for pairwise overlaps ≤ 1
    if S >= 4:  # for S ≥ 4 (M ≤ 2000 checked) the affine plane holds at least as many as prime-step;
        assert cap >= max_circuits(M, S)  # at S = 3 and M ≤ 32 prime-step can hold more (30: 57 > 49)


def test_capacity_at_the_chapter_sizes():
    """E5's payload blocks at D = 1024 (M = 230, 205, 154, S = 6): p = 37, 31, 23."""
    assert [affine_capacity(M, 6) for M in (230, 205, 154)] == [37**2, 31**2, 23**2]
    assert [max_circuits(M, 6) for M in (230, 205, 154)] == [465, 334, 184]
    # at large M the affine plane reaches ≈ (S−1)/S = 0.83 of the pair-counting bound
    # M(M−1)/(S(S−1)) (p = 1663 here; the M − S·p = 22 unused neurons cost the rest), prime-step ≈ 1/4
    bound = 10_000 * 9_999 / 30
    assert affine_capacity(10_000, 6) / bound > 0.82 and max_circuits(10_000, 6) / bound < 0.3


@pytest.mark.parametrize("M,S", VALID)
def test_usage_uniform(M, S):
    p = affine_prime(M, S)
    c = neuron_counts(assign_affine(p * p, M, S), M)
    assert (c[: S * p] == p).all() and (c[S * p :] == 0).all()  # every line count T/p = p
    # exact mean squared overlap: pairs of different slopes meet once iff the meeting column
    # i is one of the S used, Σ_n c_n(c_n − 1) = S·p·p(p − 1) ⇒ 1/(S(p + 1))
    assert mean_squared_overlap(assign_affine(p * p, M, S), M) == pytest.approx(1 / (S * (p + 1)), rel=1e-12)
    for T in (p - 1, 2 * p + 1, p * p - 2):  # whole slope classes first: counts q or q + 1
        c = neuron_counts(assign_affine(T, M, S), M)[: S * p]
        assert int(c.max() - c.min()) <= 1 and int(c.sum()) == T * S
        # and each column i holds the same number of uses (one neuron per line per column)
        assert (c.reshape(S, p).sum(1) == T).all()


def test_layer_assignments_affine_permutes_lines_and_is_seeded():
    M, S, L = 77, 6, 4  # p = 11: capacity 121
    T = affine_capacity(M, S) - 5
    base = assign_affine(T, M, S)
    a = layer_assignments(T, M, S, L, torch.Generator().manual_seed(3), design="affine")
    b = layer_assignments(T, M, S, L, torch.Generator().manual_seed(3), design="affine")
    c = layer_assignments(T, M, S, L, torch.Generator().manual_seed(4), design="affine")
    assert torch.equal(a, b) and not torch.equal(a, c)  # same seed, same tensors
    assert a.shape == (L, T, S) and not torch.equal(a[0], a[1])  # a fresh permutation per layer
    for l in range(L):
        assert sorted(map(tuple, a[l].tolist())) == sorted(map(tuple, base.tolist()))
    # both designs draw the same L permutations from the generator (circuit -> row map)
    T2 = min(T, max_circuits(M, S))
    g = torch.Generator().manual_seed(5)
    perms = torch.stack([torch.randperm(T2, generator=g) for _ in range(L)])
    af = layer_assignments(T2, M, S, L, torch.Generator().manual_seed(5), design="affine")
    assert torch.equal(af, assign_affine(T2, M, S)[perms])


def test_default_design_is_prime_step_bit_for_bit():
    """The default and the explicit "prime_step" draw exactly what the old code drew: the
    rows of `assign` under L generator permutations."""
    T, M, S, L = 200, 250, 6, 3
    old_g = torch.Generator().manual_seed(0)
    perms = torch.stack([torch.randperm(T, generator=old_g) for _ in range(L)])
    expect = assign(T, M, S)[perms]
    assert torch.equal(layer_assignments(T, M, S, L, torch.Generator().manual_seed(0)), expect)
    assert torch.equal(layer_assignments(T, M, S, L, torch.Generator().manual_seed(0), design="prime_step"), expect)
    assert make_scheme("wide", 1024, share=0.6, S_alpha=4, theta=0.55).label == "E5 wide f=0.6 S_α=4 θ=0.55"


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: assign_affine(50, 30, 3), "T"),  # p = 7: capacity 49
        (lambda: assign_affine(0, 30, 3), "T"),
        (lambda: affine_capacity(30, 6), "M"),  # p = 5 < S = 6
        (lambda: affine_capacity(8, 3), "M"),  # M // S = 2 < 3
        (lambda: affine_capacity(30, 1), "S"),  # one-point lines of equal intercept coincide
        (lambda: affine_capacity(30, 31), "S"),
        (lambda: capacity(30, 3, "random"), "design"),
        (lambda: layer_assignments(10, 30, 3, 2, torch.Generator(), design="prime-step"), "design"),
        (lambda: layer_assignments(50, 30, 3, 2, torch.Generator(), design="affine"), "T"),
        (lambda: BlockGroup((0, 1), 30, 3, design="projective"), "design"),
        (lambda: BlockGroup((0, 1), 30, 6, design="affine"), "M"),
        (lambda: make_scheme("wide", 1024, design="Affine"), "design"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name}="):
        call()


def test_baseline_affine_equals_superposed_network():
    """The generalised network with the affine design is RiS's network on those positions
    (neurons beyond S·p unused, own χ): same activations as `SuperposedNetwork`."""
    sch = make_scheme("baseline", 400, design="affine")  # M = 100, p = 13: capacity 169 > prime-step's
    assert sch.max_T == 169 > make_scheme("baseline", 400).max_T
    g = torch.Generator().manual_seed(1)
    T = 160
    net, _ = build_corrected(sch, T, 5, g, dtype=torch.float64)
    ref = SuperposedNetwork(net.w, net.idx[0], 100, net.w_bar, net.bias)
    active = sample_active(T, 3, 16, g)
    a0 = encode_input(torch.ones(16, 3, dtype=torch.float64), sample_unit_vectors((16, 3), g))
    A_ref = ref.forward(ref.embed(active, a0))
    for l, A, R in net.layers_iter(net.embed(active, a0)):
        assert torch.allclose(A[0], A_ref[l], rtol=0, atol=1e-12), l  # float64 summation order only
        assert torch.allclose(R, ref.readout(A_ref[l], l))


def test_e5_affine_lifts_the_cap_at_the_chapter_settings():
    """Every E5 setting of the chapter's tuning grid at D = 1024 holds more circuits with the
    affine design, for both of its groups, and runs through `scheme_run` above the old cap."""
    for st in family_settings("E5", 1024):
        kw = {k: v for k, v in st.items() if k not in ("setting", "kind")}
        ps, af = make_scheme("wide", 1024, **kw), make_scheme("wide", 1024, **kw, design="affine")
        assert af.max_T > ps.max_T and af.D == ps.D and af.parameters(2) == ps.parameters(2)
        assert all(g.design == "affine" for g in af.groups) and af.label == ps.label + " affine"
    T = ps.max_T + 20  # the last setting (f = 0.7): prime-step holds 184
    with pytest.raises(ValueError, match="^T="):
        scheme_run(ps, T, z=2, L=2, batch=4)
    res = scheme_run(af, T, z=2, L=3, batch=8, seed=0)
    assert all(0.0 <= res["false_on"][l] <= 1.0 for l in (1, 2, 3))
    assert all(res["worst_dx"][l] == res["worst_dx"][l] for l in (1, 2, 3))  # finite numbers, no NaN
