"""A naive, readable reference for the RiS large network (book: "Notation", eq-weights).

Plain Python loops over circuits, neurons and blocks, in numpy float64, written from the
maths and NOT from `superpose_lib.core.network`: it pins the fast structured code.

Conventions (the same as the library's, so the two can be compared):
- block i (0 <= i < d) holds the i-th neuron of every circuit; large-network neuron
  (block i, position n) has flat index i*M + n;
- idx[l-1][t] lists the S positions of e_t^l (layer l = 1..L);
- w[t] is the d x d weight of circuit t, w_bar the mean weight, Δw_t = w_t − w̄.
"""

from __future__ import annotations

import numpy as np


def one_hot(positions, M: int) -> np.ndarray:
    """e_t as an M-vector of 0/1 from its list of positions."""
    e = np.zeros(M)
    for n in positions:
        e[n] = 1.0
    return e


def connectivity(cur, prev, M: int) -> np.ndarray:
    """C_nm = 1 if some circuit t has n in e_t^l and m in e_t^{l-1}, else 0."""
    C = np.zeros((M, M))
    for t in range(len(cur)):
        for n in cur[t]:
            for m in prev[t]:
                C[n, m] = 1.0
    return C


def chi(cur, prev, M: int, S: int, pairs: str = "ne") -> float:
    """χ such that Σ_{pairs (t, u)} ⟨e_t^l|𝒲|e_u^{l-1}⟩ = 0, with 𝒲 = 1/S on C, −χ off C.

    pairs="ne": ordered pairs t ≠ u (the library's choice); "lt": t < u (RiS's code).
    Each pair (t, u) contributes S*S neuron pairs (n, m), U of them inside C:
    (1/S)·U − χ·(P − U) = 0 with P the number of neuron pairs summed over.
    """
    C = connectivity(cur, prev, M)
    T = len(cur)
    U = 0.0
    P = 0.0
    for t in range(T):
        for u in range(T):
            if t == u or (pairs == "lt" and not t < u):
                continue
            for n in cur[t]:
                for m in prev[u]:
                    U += C[n, m]
                    P += 1.0
    return U / (S * (P - U)) if P > U else 0.0


def mixing_matrix(cur, prev, M: int, S: int, pairs: str = "ne") -> np.ndarray:
    """𝒲^l: 1/S where C^l = 1, −χ_l elsewhere (M x M)."""
    C = connectivity(cur, prev, M)
    x = chi(cur, prev, M, S, pairs)
    W = np.empty((M, M))
    for n in range(M):
        for m in range(M):
            W[n, m] = 1.0 / S if C[n, m] else -x
    return W


def dense_weight(w, w_bar, cur, prev, M: int, S: int, pairs: str = "ne") -> np.ndarray:
    """W^l = w̄ ⊗ 𝒲^l + (1/S) Σ_t Δw_t ⊗ |e_t^l⟩⟨e_t^{l-1}| as a dense D x D matrix."""
    T, d = len(w), len(w_bar)
    Wc = mixing_matrix(cur, prev, M, S, pairs)
    W = np.zeros((d * M, d * M))
    for i in range(d):
        for j in range(d):
            block = w_bar[i][j] * Wc
            for t in range(T):
                dw_ij = w[t][i][j] - w_bar[i][j]
                block = block + dw_ij / S * np.outer(one_hot(cur[t], M), one_hot(prev[t], M))
            W[i * M : (i + 1) * M, j * M : (j + 1) * M] = block
    return W


def embed(w, idx1, M: int, active, a0) -> np.ndarray:
    """The layer-0 trick: A^0 = Σ_{t active} (w_t a_t^0) ⊗ e_t^1, a D-vector.

    active: the active circuits; a0[k] is the input of circuit active[k].
    """
    d = len(w[0])
    A = np.zeros(d * M)
    for k, t in enumerate(active):
        v = np.asarray(w[t]) @ np.asarray(a0[k])
        for i in range(d):
            for n in idx1[t]:
                A[i * M + n] += v[i]
    return A


def bias_vector(bias, M: int) -> np.ndarray:
    """b ⊗ 1: bias b_i on every neuron of block i."""
    return np.concatenate([np.full(M, float(b)) for b in bias])


def forward(w, w_bar, bias, idx, M: int, S: int, active, a0, pairs: str = "ne") -> list[np.ndarray]:
    """[A^0, ..., A^L] for one input: A^1 = ReLU(A^0 + b⊗1) (W^1 = identity) and
    A^l = ReLU(W^l A^{l-1} + b⊗1) for l >= 2."""
    L = len(idx)
    b = bias_vector(bias, M)
    out = [embed(w, idx[0], M, active, a0)]
    out.append(np.maximum(out[0] + b, 0.0))
    for l in range(2, L + 1):
        W = dense_weight(w, w_bar, idx[l - 1], idx[l - 2], M, S, pairs)
        out.append(np.maximum(W @ out[-1] + b, 0.0))
    return out


def readout(A, idx_l, M: int, S: int, d: int) -> np.ndarray:
    """â_t^l = (1/S)⟨e_t^l|A^l⟩ block by block for every circuit: [T, d]."""
    T = len(idx_l)
    R = np.zeros((T, d))
    for t in range(T):
        for i in range(d):
            for n in idx_l[t]:
                R[t, i] += A[i * M + n]
            R[t, i] /= S
    return R


def run_small(w_t, bias, a0, L: int) -> list[np.ndarray]:
    """One small circuit run directly: a^l = ReLU(w_t a^{l-1} + b)."""
    a = [np.asarray(a0, dtype=float)]
    for _ in range(L):
        a.append(np.maximum(np.asarray(w_t) @ a[-1] + np.asarray(bias), 0.0))
    return a


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % q for q in range(2, n))


def prime_step_progressions(M: int, S: int, limit: int | None = None) -> list[list[int]]:
    """CiS2's prime-step assignment, step by step as the construction chapter states it.

    1. admissible steps s >= 1 with s(S−1) < M and no prime p < S dividing s; for S not
       prime each is followed by s·S^n (n >= 1) while s·S^n·(S−1) < M;
    2. for a step s and offset r (from 0), consecutive progressions {i, i+s, ..., i+(S−1)s}
       start at i = r and advance by S·s;
    3. when the next would pass M−1, r ← r + 1; when r >= s or r + (S−1)s >= M, next step.
    S = 1: one step (each circuit owns one neuron). Returns every progression (or `limit`).
    """
    if S == 1:
        steps = [1]
    else:
        steps = []
        s = 1
        while s * (S - 1) < M:
            if all(s % p for p in range(2, S) if _is_prime(p)):
                steps.append(s)
                if not _is_prime(S):
                    m = s * S
                    while m * (S - 1) < M:
                        steps.append(m)
                        m *= S
            s += 1
    out: list[list[int]] = []
    for s in steps:
        r = 0
        while r < s and r + (S - 1) * s < M:
            i = r
            while i + (S - 1) * s <= M - 1:
                out.append([i + k * s for k in range(S)])
                if limit is not None and len(out) == limit:
                    return out
                i += S * s
            r += 1
    return out
