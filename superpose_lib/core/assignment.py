"""Which large-network neurons each circuit uses: CiS2's prime-step assignment, and the
affine-plane (transversal design) assignment.

CiS2's prime-step assignment (book: "Notation", eq-readout). Circuit t uses, in every block, the S neurons of an
arithmetic progression {i, i+s, ..., i+(S−1)s} ⊂ {0..M−1} (its S-hot vector e_t).
Steps s are divisible by no prime p < S, so two progressions meet in at most one
neuron: two circuits share at most one neuron per block. Each layer reshuffles which
circuit gets which progression (a random permutation of the rows).

Its capacity `max_circuits(M, S)` is only about a quarter of the pair-counting bound
M(M−1)/(S(S−1)) (each of the M(M−1)/2 neuron pairs lies in at most one circuit, each
circuit covers S(S−1)/2 pairs). The affine-plane assignment (`assign_affine`) reaches
p² ≈ (M/S)² circuits, a fraction ≈ (S−1)/S of that bound: with p the largest prime with
S·p ≤ M, neuron i·p + j is the point (i, j) ∈ {0..S−1} × GF(p), and circuit (a, b) uses
the line {(i, a·i + b mod p) : i = 0..S−1}. Two lines of different slopes a ≠ a' meet
where (a − a')·i ≡ b' − b (mod p), at exactly one i ∈ GF(p) (at most one of the S used),
and two lines of equal slope never meet: any two circuits share at most one neuron.

Index tensors of shape [T, S] (neuron positions within a block) stand for e_t.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from .checks import L_MAX, check_fits, check_int, check_memory, checked, integer

__all__ = [
    "DESIGNS",
    "admissible_steps",
    "max_circuits",
    "assign",
    "affine_prime",
    "affine_capacity",
    "assign_affine",
    "check_design",
    "capacity",
    "layer_assignments",
    "assignment_bytes",
    "neuron_counts",
    "mean_squared_overlap",
]


DESIGNS = ("prime_step", "affine")
"""The assignments `layer_assignments` can draw: CiS2's prime-step progressions, or the
lines of an affine plane over GF(p) (module docstring)."""


def _primes_below(n: int) -> list[int]:
    return [p for p in range(2, n) if all(p % q for q in range(2, int(p**0.5) + 1))]


@lru_cache(maxsize=256)
def admissible_steps(M: int, S: int) -> tuple[int, ...]:
    """Steps in CiS2 order: admissible s (s(S−1) < M, no prime p < S divides s), each
    followed, when S is not prime, by s·S^n (n ≥ 1) while s·S^n·(S−1) < M.

    S = 1 has the single step 1 (one neuron per circuit, no sharing at all): a step
    that repeated neurons would make circuits identical in the network.
    Vectorised over s (O(M/S) numbers); for composite S, s·S^n has S's prime factors
    (all < S), so it is never itself admissible and no step appears twice.
    """
    M = check_int("M", M, 1)
    S = check_int("S", S, 1, M)
    if S == 1:
        return (1,)
    s_max = (M - 1) // (S - 1)  # s(S−1) < M  ⟺  s ≤ ⌊(M−1)/(S−1)⌋
    check_memory("M", M, 48 * s_max, what=f"the {s_max} candidate steps of the prime-step assignment")
    primes = _primes_below(S)
    s = np.arange(1, s_max + 1, dtype=np.int64)
    keep = np.ones(s.size, dtype=bool)
    for p in primes:
        keep &= s % p != 0
    base = s[keep]
    if S in _primes_below(S + 1) or base.size == 0:
        return tuple(base.tolist())
    bases, powers, steps = [base], [np.zeros(base.size, dtype=np.int64)], [base]
    b, m, n = base, base * S, 1
    while True:
        ok = m <= s_max
        if not ok.any():
            break
        b, m = b[ok], m[ok]
        bases.append(b)
        powers.append(np.full(b.size, n, dtype=np.int64))
        steps.append(m)
        m, n = m * S, n + 1
    order = np.lexsort((np.concatenate(powers), np.concatenate(bases)))
    return tuple(np.concatenate(steps)[order].tolist())


def _progressions_per_offset(M: int, S: int, s: int) -> np.ndarray:
    """Number of disjoint length-S progressions of step s at each offset r < s."""
    r = np.arange(s)
    positions = (M - 1 - r) // s + 1  # neurons r, r+s, ... ≤ M−1
    return positions // S


@lru_cache(maxsize=256)
def max_circuits(M: int, S: int) -> int:
    """Capacity of the prime-step assignment: how many circuits fit in blocks of M neurons
    with redundancy S (RiS: max_circuits(250, 6) == 557).

    Closed form per step s: with M = a·s + b (0 ≤ b < s), the b offsets r < b hold a + 1
    neurons and the s − b others a, so step s holds b·⌊(a+1)/S⌋ + (s−b)·⌊a/S⌋ disjoint
    progressions (O(1) per step instead of O(s); M = 10⁶ took minutes before).
    """
    steps = np.asarray(admissible_steps(M, S), dtype=np.int64)
    a, b = M // steps, M % steps
    return int((b * ((a + 1) // S) + (steps - b) * (a // S)).sum())


@checked(L=integer(0, L_MAX))
def assignment_bytes(T: int, M: int, S: int, L: int = 1, design: str = "prime_step") -> int:
    """Estimated peak memory (bytes) of `layer_assignments(T, M, S, L, design=design)`, or of
    `assign` / `assign_affine` with L = 0: a closed form of the sizes, for refusing before
    anything is allocated.

    prime_step: the progressions of every step used (at most T + M/S rows of S int64, held
    three times: the per-step blocks, their concatenation and the final copy) and the
    candidate steps (48 B each, about M/(S − 1)); affine: five T·S int64 tensors. Then L
    random permutations of T rows (two int64 copies) and the [L, T, S] result."""
    if check_design(design) == "prime_step":
        base = 24 * S * (T + M // S + 1) + 48 * (M // max(S - 1, 1) + 1)
    else:
        base = 40 * T * S
    return int(base + 16 * L * T + 8 * L * T * S)


def _check_assignment_fits(T, M, S, L, design, device="cpu", what="the assignment of circuits to neurons"):
    check_fits(
        what,
        lambda T, M, L: assignment_bytes(T, M, S, L, design),
        {"T": T, "M": M, "L": L},
        {"T": 1, "M": S, "L": 0},
        device,
    )


@checked
def assign(T: int, M: int, S: int) -> torch.Tensor:
    """The first T progressions in CiS2 order, as a LongTensor [T, S] of neuron positions.

    Deterministic (no randomness: the per-layer permutations carry it). Vectorised over
    progressions; the Python loop runs over steps only (at most ~M/(S−1) of them). Sizes
    whose arrays cannot fit in memory are refused first (`assignment_bytes`).
    """
    M = check_int("M", M, 1)
    S = check_int("S", S, 1, M)
    _check_assignment_fits(T, M, S, 0, "prime_step")
    T = check_int("T", T, 1, max_circuits(M, S))
    k = np.arange(S)
    blocks, have = [], 0
    for s in admissible_steps(M, S):
        per_r = _progressions_per_offset(M, S, s)
        r = np.repeat(np.arange(s), per_r)  # offset of each progression
        # j-th progression at offset r starts at r + j·S·s (consecutive, disjoint)
        first = np.cumsum(per_r) - per_r
        j = np.arange(r.size) - np.repeat(first, per_r)
        starts = r + j * S * s
        blocks.append(starts[:, None] + k[None, :] * s)
        have += starts.size
        if have >= T:
            break
    return torch.from_numpy(np.concatenate(blocks)[:T].astype(np.int64))


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % q for q in range(3, math.isqrt(n) + 1, 2))


@lru_cache(maxsize=256)
def affine_prime(M: int, S: int) -> int:
    """p of the affine-plane assignment: the largest prime with S·p ≤ M. It needs p ≥ S
    (the S points i = 0..S−1 of a line must be distinct in GF(p), else two lines could
    meet twice) and S ≥ 2 (with S = 1 every line is one point, and lines of equal
    intercept would be identical circuits); a ValueError names the smallest M that works."""
    M = check_int("M", M, 1)
    S = check_int("S", S, 2, M)
    p = M // S
    while p >= S and not _is_prime(p):  # prime gaps near n are O(log² n): a short walk down
        p -= 1
    if p < S:
        p_min = next(q for q in range(S, 2 * S + 1) if _is_prime(q))  # Bertrand: a prime in [S, 2S]
        raise ValueError(
            f"M={M} is out of range for the affine assignment with S={S}: allowed M >= S·p = "
            f"{S * p_min} (p = {p_min}, the smallest prime >= S)"
        )
    return p


@checked
def affine_capacity(M: int, S: int) -> int:
    """Capacity of the affine-plane assignment: p² lines (p = `affine_prime(M, S)`), any two
    sharing at most one of their S neurons. ≈ (M/S)², against the pair-counting bound
    M(M−1)/(S(S−1)) and prime-step's `max_circuits(M, S)` (about a quarter of the bound):
    ≈ 3× prime-step at S = 6, M ≳ 200 (1369 against 465 at M = 230). Not always larger:
    at S = 2 prime-step takes every pair of neurons (the bound itself, ≈ 2× p²), and at
    S = 3 with M ≤ 32 it can hold more (57 against 49 at M = 30); for 4 ≤ S ≤ 8 and
    M ≤ 2000 the affine plane never holds fewer."""
    return affine_prime(M, S) ** 2


@checked
def assign_affine(T: int, M: int, S: int) -> torch.Tensor:
    """The first T lines of the affine plane over GF(p), as a LongTensor [T, S] of neuron
    positions i·p + j (module docstring); neurons S·p..M−1 stay unused.

    Line k has slope a = ⌊k/p⌋ and intercept b = k mod p: whole slope classes first. The p
    lines of one slope partition the S·p neurons, so with T = q·p + r every neuron is used
    q or q + 1 times (exactly T/p times when p divides T), and within each column i the r
    lines of the last slope class use r distinct j. Deterministic and vectorised (no loop
    over circuits); the per-layer permutations of `layer_assignments` carry the randomness.
    """
    p = affine_prime(M, S)
    T = check_int("T", T, 1, p * p)
    _check_assignment_fits(T, M, S, 0, "affine")
    k = torch.arange(T, dtype=torch.int64)
    a, b = k // p, k % p
    i = torch.arange(S, dtype=torch.int64)
    j = (a[:, None] * i[None, :] + b[:, None]) % p  # a·i < p·S ≤ M: no overflow
    return i[None, :] * p + j


def check_design(design) -> str:
    """`design` must name one of `DESIGNS`."""
    if design not in DESIGNS:
        raise ValueError(f"design={design!r} is not allowed: one of {', '.join(map(repr, DESIGNS))}")
    return design


@checked
def capacity(M: int, S: int, design: str = "prime_step") -> int:
    """Most circuits the assignment `design` holds in blocks of M neurons with redundancy S:
    `max_circuits` (prime-step) or `affine_capacity`."""
    return max_circuits(M, S) if check_design(design) == "prime_step" else affine_capacity(M, S)


@checked
def layer_assignments(
    T: int, M: int, S: int, L: int, generator: torch.Generator, device="cpu", design: str = "prime_step"
) -> torch.Tensor:
    """e_t^l for l = 1..L as a LongTensor [L, T, S] (index 0 is layer 1).

    Every layer gets an independent uniformly random permutation of the rows of
    `assign(T, M, S)` (design "prime_step": which circuit gets which progression) or of
    `assign_affine(T, M, S)` (design "affine": which circuit gets which line). The
    generator draws the same L permutations for either design. Sizes whose arrays cannot
    fit in memory are refused first (`assignment_bytes`, naming T, M or L).
    """
    S = check_int("S", S, 1, M)
    _check_assignment_fits(T, M, S, L, check_design(design), device)
    base = assign(T, M, S) if design == "prime_step" else assign_affine(T, M, S)
    perms = torch.stack([torch.randperm(T, generator=generator) for _ in range(L)])
    return base[perms].to(device)


@checked
def neuron_counts(idx: torch.Tensor, M: int) -> torch.Tensor:
    """c_n = how many circuits use neuron n (idx: [T, S]) -> [M]."""
    return torch.bincount(idx.reshape(-1), minlength=M)


@checked
def mean_squared_overlap(idx: torch.Tensor, M: int) -> float:
    """E_{u≠t}[((1/S)⟨e_t|e_u⟩)²] over ordered pairs, exactly.

    Two circuits share at most one neuron, so ⟨e_t|e_u⟩ ∈ {0, 1} and the sum over pairs
    is Σ_n c_n(c_n − 1). Theory (RiS §6): ≈ d/D − 1/(ST) = 1/M − 1/(ST).
    """
    T, S = idx.shape
    c = neuron_counts(idx, M).double()
    return float((c * (c - 1)).sum() / (S * S * T * (T - 1))) if T > 1 else 0.0
