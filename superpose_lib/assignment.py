"""Which large-network neurons each circuit uses: CiS2's prime-step assignment.

CiS2's prime-step assignment (book: "Notation", eq-readout). Circuit t uses, in every block, the S neurons of an
arithmetic progression {i, i+s, ..., i+(S−1)s} ⊂ {0..M−1} (its S-hot vector e_t).
Steps s are divisible by no prime p < S, so two progressions meet in at most one
neuron: two circuits share at most one neuron per block. Each layer reshuffles which
circuit gets which progression (a random permutation of the rows).

Index tensors of shape [T, S] (neuron positions within a block) stand for e_t.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .checks import check_int, check_memory

__all__ = [
    "admissible_steps",
    "max_circuits",
    "assign",
    "layer_assignments",
    "neuron_counts",
    "mean_squared_overlap",
]


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


def assign(T: int, M: int, S: int) -> torch.Tensor:
    """The first T progressions in CiS2 order, as a LongTensor [T, S] of neuron positions.

    Deterministic (no randomness: the per-layer permutations carry it). Vectorised over
    progressions; the Python loop runs over steps only (at most ~M/(S−1) of them).
    """
    M = check_int("M", M, 1)
    S = check_int("S", S, 1, M)
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


def layer_assignments(
    T: int, M: int, S: int, L: int, generator: torch.Generator, device="cpu"
) -> torch.Tensor:
    """e_t^l for l = 1..L as a LongTensor [L, T, S] (index 0 is layer 1).

    Every layer gets an independent uniformly random permutation of the rows of
    `assign(T, M, S)`: which circuit gets which progression.
    """
    base = assign(T, M, S)
    perms = torch.stack([torch.randperm(T, generator=generator) for _ in range(L)])
    return base[perms].to(device)


def neuron_counts(idx: torch.Tensor, M: int) -> torch.Tensor:
    """c_n = how many circuits use neuron n (idx: [T, S]) -> [M]."""
    return torch.bincount(idx.reshape(-1), minlength=M)


def mean_squared_overlap(idx: torch.Tensor, M: int) -> float:
    """E_{u≠t}[((1/S)⟨e_t|e_u⟩)²] over ordered pairs, exactly.

    Two circuits share at most one neuron, so ⟨e_t|e_u⟩ ∈ {0, 1} and the sum over pairs
    is Σ_n c_n(c_n − 1). Theory (RiS §6): ≈ d/D − 1/(ST) = 1/M − 1/(ST).
    """
    T, S = idx.shape
    c = neuron_counts(idx, M).double()
    return float((c * (c - 1)).sum() / (S * S * T * (T - 1))) if T > 1 else 0.0
