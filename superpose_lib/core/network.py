"""The large network: T small circuits in superposition (book: "Notation", eq-weights).

For layers l ≥ 2

    W^l = w̄ ⊗ 𝒲^l + (1/S) Σ_t Δw_t ⊗ |e_t^l⟩⟨e_t^{l−1}|,
    𝒲^l = 1/S on the connectivity C^l (some circuit connects n to m), −χ_l elsewhere,

and A^l = ReLU(W^l A^{l−1} + b ⊗ 1). Layer 1 uses the layer-0 trick: the input is the
embedded first pre-activation A^0 = Σ_t (w_t a_t^0) ⊗ e_t^1 and W^1 = 1, so layer 1
carries no propagation error.

The forward pass never forms W (D × D). With K^l = Σ_t |e_t^l⟩⟨e_t^{l−1}| (C^l = [K^l > 0],
X^l = K^l − C^l the few pairs that several circuits connect), 𝒲 = (1/S + χ)C − χ 11ᵀ and
the mean weight factored as w̄ = P Q (rank r; r = 1 for rotation circuits, all rows equal):

    W^l A = Σ_t e_t^l ⊗ (V_t G_t) − P ⊗ [(1/S + χ) X^l u + χ 1 (1ᵀu)],   u = Q A  [M, r, B],
    G_t = ⟨e_t^{l−1}|A⟩ (per block, a gather-sum over S neurons),
    V_t = Δw_t / S + (1/S + χ) w̄.

The gathers G_t are S × the readouts â_t: the readouts of every circuit, active or not,
come from the same gathers. Per layer and batch row: gather T·S·d + scatter T·S·d
additions, T·d² multiply-adds (the small circuits), |X|·r for the excess and O(M·d·r) for
the rest; memory O(T·S + B·D) (plus O(T·d·B) work tensors, chunked by the caller).

Internal activation layout: [M, d, B] (neuron position in the block, block, batch), so
a gather or scatter moves contiguous rows of d·B numbers. `flat` converts to [B, D] with
large-network neuron (i, n) at index i·M + n. ([M, B, d] would gather the same rows and turn
rotation_run's per-circuit Gram matrices into one GEMM, but callers index A as [M, d, B].)

Primitives: `F.embedding_bag` (fbgemm's fused gather-sum) does the gather and the scatter
(over the CSR lists of users); on the CPU it beat a sparse CSR mm, S index_selects or
`index_add_`s and `segment_reduce` at both the RiS size and the D = 32768 size (the figures
are `bench/bench.py`'s). On CUDA `embedding_bag` is also a fused gather-sum kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checks import checked, integer

__all__ = [
    "LayerStructure",
    "StructuredNetwork",
    "SuperposedNetwork",
    "dense_blocks",
    "gather_sum",
    "scatter_sum",
    "flat",
    "csr_users",
    "csr_expand",
    "scatter_rows",
    "connectivity",
    "excess_pairs",
    "balance_chi",
    "chi_from_excess",
]


def gather_sum(A: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """G_t = Σ_{n ∈ e_t} A[n] for every circuit: A [M, d, B], idx [T, S] -> [T, d, B]."""
    M, d, B = A.shape
    return F.embedding_bag(idx, A.reshape(M, d * B), mode="sum").view(-1, d, B)


def scatter_sum(Y: torch.Tensor, users: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """P[n] = Σ_{t : n ∈ e_t} Y[t]: Y [T, d, B] -> [M, d, B].

    (users, offsets) list, neuron by neuron, the circuits using it (CSR of e^ᵀ); a
    segment sum, computed as an embedding_bag over those lists.
    """
    T, d, B = Y.shape
    out = F.embedding_bag(users, Y.reshape(T, d * B), offsets, mode="sum")
    return out.view(-1, d, B)


def flat(A: torch.Tensor) -> torch.Tensor:
    """Internal [M, d, B] -> [B, D], neuron (block i, position n) at index i·M + n."""
    M, d, B = A.shape
    return A.permute(2, 1, 0).reshape(B, d * M)


@dataclass(frozen=True)
class LayerStructure:
    """What layer l ≥ 2 needs besides the circuits' weights.

    chi: χ_l; users/offsets: CSR lists of the circuits using each neuron at layer l;
    excess_n/excess_m/excess_k: pairs (n, m) connected by k+1 ≥ 2 circuits and their
    excess k (X^l = K^l − C^l, in the network's dtype), sorted by (n, m); excess_offsets:
    where each n's pairs start (CSR over n, for a weighted embedding_bag; None: use
    index_add_); connected: |C^l| (number of connected neuron pairs).
    """

    chi: float
    users: torch.Tensor
    offsets: torch.Tensor
    excess_n: torch.Tensor
    excess_m: torch.Tensor
    excess_k: torch.Tensor
    connected: int
    excess_offsets: torch.Tensor | None = None


@checked
def csr_users(idx: torch.Tensor, M: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each neuron, the circuits that use it (sorted), as (users, offsets)."""
    S = idx.shape[1]
    flat_idx = idx.reshape(-1)
    if flat_idx.device.type == "cpu" and M <= 2**16:
        # numpy's stable argsort of 16-bit keys is a radix sort, faster than
        # torch.argsort(stable=True) on the millions of neuron positions of a large network
        order = torch.from_numpy(np.argsort(flat_idx.numpy().astype(np.uint16), kind="stable"))
    else:
        order = torch.argsort(flat_idx, stable=True)
    counts = torch.bincount(flat_idx, minlength=M)
    offsets = torch.cumsum(counts, 0) - counts
    return order // S, offsets


def csr_expand(users: torch.Tensor, offsets: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every circuit using the neurons pos [N], from `csr_users`' lists: (row [K] into pos,
    circuit [K]), the circuits of pos[0] first. The sparse forward passes' way from the
    neurons that are on to the circuits that read them."""
    total = torch.tensor([users.numel()], device=offsets.device)
    counts = torch.diff(offsets, append=total)[pos]
    row = torch.repeat_interleave(torch.arange(pos.numel(), device=pos.device), counts)
    within = torch.arange(row.numel(), device=pos.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    return row, users[offsets[pos][row] + within]


@checked(n_rows=integer(0, 2**40))
def scatter_rows(index: torch.Tensor, src: torch.Tensor, n_rows: int) -> torch.Tensor:
    """out[r] = Σ_{i : index[i] = r} src[i] for src [N, d] -> [n_rows, d] in src's dtype: one
    `torch.bincount` with weights per column (accumulated in float64; on the CPU several times
    faster than `index_add_` for the short rows of the sparse forward passes)."""
    out = torch.zeros(src.shape[1], n_rows, dtype=src.dtype, device=src.device)
    if src.shape[0]:
        for j in range(src.shape[1]):
            out[j] = torch.bincount(index, weights=src[:, j], minlength=n_rows)
    return out.T


def _sorted_pair_keys(cur: torch.Tensor, prev: torch.Tensor, M: int) -> torch.Tensor:
    """The T·S² pairs (n ∈ e_t^l, m ∈ e_t^{l−1}) of K as keys n·M + m, sorted.

    On the CPU numpy's sort (x86-simd-sort) is used, on 32-bit keys where M² allows: for the
    9.7M keys of the D = 32768 network, 0.26 s against 0.44 s (int64), torch.sort's 0.51 s
    and torch.unique's 0.81 s.
    """
    if cur.device.type == "cpu":
        dt = np.int32 if M * M < 2**31 else np.int64
        c, p = cur.numpy().astype(dt), prev.numpy().astype(dt)
        keys = (c[:, :, None] * M + p[:, None, :]).reshape(-1)
        keys.sort()
        return torch.from_numpy(keys)
    return torch.sort((cur[:, :, None] * M + prev[:, None, :]).reshape(-1)).values


@checked
def connectivity(cur: torch.Tensor, prev: torch.Tensor, M: int):
    """Unique connected pairs of K = Σ_t |e_t^l⟩⟨e_t^{l−1}| and their multiplicities.

    Returns (n, m, k) with n, m the connected neurons (sorted by n·M + m) and k = K_nm ≥ 1.
    Vectorised: the T·S² pairs are encoded as n·M + m, sorted and run-length counted.
    """
    uniq, k = torch.unique_consecutive(_sorted_pair_keys(cur, prev, M), return_counts=True)
    uniq = uniq.long()
    return uniq // M, uniq % M, k


@checked
def excess_pairs(cur: torch.Tensor, prev: torch.Tensor, M: int):
    """The pairs that several circuits connect: (n, m, k) with K_nm = k ≥ 2, sorted by (n, m).

    Only these are needed to apply C^l (the rest is in the circuits' own gathers), so the
    network never keeps the |C^l| ≈ T·S² connected pairs.
    """
    s = _sorted_pair_keys(cur, prev, M)
    repeats = s[1:][s[1:] == s[:-1]]  # every occurrence of a pair after its first
    uniq, extra = torch.unique_consecutive(repeats, return_counts=True)
    uniq = uniq.long()
    return uniq // M, uniq % M, extra + 1


@checked
def balance_chi(cur: torch.Tensor, prev: torch.Tensor, M: int, n, m) -> float:
    """χ_l such that Σ_{t≠u} ⟨e_t^l|𝒲^l|e_u^{l−1}⟩ = 0 (RiS's mean-weight balance).

    With U = Σ_{t≠u} ⟨e_t^l|C|e_u^{l−1}⟩ = Σ_{(n,m)∈C} E^l_n E^{l−1}_m − T·S² (E = Σ_t e_t;
    every circuit connects its own S² pairs) and P = S²·T(T−1) pairs of neurons in all:
    (1/S)·U − χ·(P − U) = 0.

    The sum runs over ordered pairs t ≠ u. RiS's code sums over t < u, which depends on
    the arbitrary circuit labels and cannot be computed in O(T·S²); with independent
    uniformly random layer permutations the two agree in expectation (the chapter
    "Constructing circuits in superposition" measures the difference).
    """
    T, S = cur.shape
    E_cur = torch.bincount(cur.reshape(-1), minlength=M).double()
    E_prev = torch.bincount(prev.reshape(-1), minlength=M).double()
    U = float((E_cur[n] * E_prev[m]).sum()) - T * S * S
    P = float(S * S) * T * (T - 1)
    return U / (S * (P - U)) if P > U else 0.0


def _balance_chi_from_excess(cur, prev, M: int, ex_n, ex_m, ex_k) -> float:
    """`balance_chi` without listing C (`chi_from_excess` with one block size)."""
    return chi_from_excess(cur, prev, M, M, ex_n, ex_m, ex_k)


@checked
def chi_from_excess(cur: torch.Tensor, prev: torch.Tensor, M_cur: int, M_prev: int, ex_n, ex_m, ex_k) -> float:
    """χ with Σ_{t≠u} ⟨e_t|𝒲|e'_u⟩ = 0 for 𝒲 = 1/S' on the connectivity C of (e, e') and −χ
    elsewhere (cur [T, S] in blocks of M_cur, prev [T, S'] in blocks of M_prev), without
    listing C: Σ_{(n,m)∈C} E_n E'_m = Σ_t ⟨E|e_t⟩⟨E'|e'_t⟩ − Σ_X (k − 1) E_n E'_m over the
    pairs X that k ≥ 2 circuits connect (`excess_pairs`), in exact integer arithmetic; then
    U = that − T·S·S', P = S·S'·T(T − 1) and (1/S')·U = χ·(P − U) (`balance_chi`'s
    derivation). O(T·S + |X|)."""
    T, S = cur.shape
    Sp = prev.shape[1]
    E_cur = torch.bincount(cur.reshape(-1), minlength=M_cur)
    E_prev = torch.bincount(prev.reshape(-1), minlength=M_prev)
    on_K = int((E_cur[cur].sum(1) * E_prev[prev].sum(1)).sum())
    on_X = int(((ex_k - 1) * E_cur[ex_n] * E_prev[ex_m]).sum())
    U = on_K - on_X - T * S * Sp
    P = S * Sp * T * (T - 1)
    return U / (Sp * (P - U)) if P > U else 0.0


def _rank_factor(w_bar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w̄ = P Q with P [d, r], Q [r, d], r = rank(w̄) (SVD in float64; r = 1 for rotations)."""
    U, s, Vh = torch.linalg.svd(w_bar.double())
    r = int((s > s.max() * max(w_bar.shape) * torch.finfo(torch.float64).eps).sum()) if s.numel() else 0
    return (U[:, :r] * s[:r]).to(w_bar.dtype), Vh[:r].to(w_bar.dtype).contiguous()


@checked
def dense_blocks(w_bar, mixing, dw, cur, prev, M: int) -> torch.Tensor:
    """W = w̄ ⊗ 𝒲 + (1/S) Σ_k Δw_k ⊗ |e_{cur_k}⟩⟨e_{prev_k}| as a dense D × D matrix, neuron
    i·M + n (the readable reference). Row k of cur/prev [K, S] lists the neurons of the
    reader at layer l and of the source at layer l−1: a circuit and itself in the RiS
    network, the two ends of an edge in a circuit graph."""
    S = cur.shape[1]
    d = w_bar.shape[0]
    e_cur = F.one_hot(cur, M).sum(1).to(dw.dtype)  # [K, M]
    e_prev = F.one_hot(prev, M).sum(1).to(dw.dtype)
    blocks = torch.einsum("ij,nm->injm", w_bar, mixing)
    blocks = blocks + torch.einsum("kij,kn,km->injm", dw, e_cur, e_prev) / S
    return blocks.reshape(d * M, d * M)


class StructuredNetwork(nn.Module):
    """What every superposed network shares: the sizes (M, S, L, T, d), the first-layer
    circuit weights w [T, d, d], the mean weight w̄ [d, d], the bias [d], the neuron
    positions idx [L, T, S] of e_t^l (index l−1), and the forward pass around `layer`:
    the layer-0 trick (`embed`), `layers_iter`, `forward` and the readouts. Subclasses
    build `self.layers` (index l−1; None for layer 1, W^1 = identity) and define `layer`.
    All tensors follow idx's device and w's dtype.
    """

    def __init__(self, w: torch.Tensor, idx: torch.Tensor, M: int, w_bar, bias):
        super().__init__()
        L, T, S = idx.shape
        dtype, device = w.dtype, idx.device
        self.M, self.S, self.L, self.T, self.d = M, S, L, T, w.shape[-1]
        self.register_buffer("w", w.to(device))
        self.register_buffer("w_bar", torch.as_tensor(w_bar, dtype=dtype, device=device))
        self.register_buffer("bias", torch.as_tensor(bias, dtype=dtype, device=device))
        self.register_buffer("idx", idx)
        self.layers: list = [None]  # layer 1: W^1 = identity

    def layer(self, l: int, A_prev: torch.Tensor, G_prev: torch.Tensor | None = None, *, work=None) -> torch.Tensor:
        """A^l from A^{l−1} (l ≥ 1); G_prev = gather_sum(A_prev, idx[l−2]) if already known."""
        raise NotImplementedError(f"{type(self).__name__} must define layer()")

    # ---- the forward pass -------------------------------------------------------------
    def embed(self, active: torch.Tensor, a0: torch.Tensor) -> torch.Tensor:
        """A^0 = Σ_{t active} (w_t a_t^0) ⊗ e_t^1 (the layer-0 trick). active [B, z], a0 [B, z, d]
        -> [M, d, B]. Inactive circuits have a^0 = 0 and contribute nothing."""
        B, z = active.shape
        v = torch.einsum("bkij,bkj->bki", self.w[active], a0)  # [B, z, d]
        n = self.idx[0][active]  # [B, z, S]
        b = torch.arange(B, device=n.device)[:, None, None].expand_as(n)
        vals = v[:, :, None, :].expand(B, z, self.S, self.d)
        if n.device.type == "cpu":  # through a [M, B, d] view: no transposed copy of the (mostly zero) A^0
            A0 = torch.zeros(self.M, self.d, B, dtype=self.w.dtype, device=n.device)
            A0.permute(0, 2, 1).index_put_((n, b), vals, accumulate=True)
            return A0
        A0 = torch.zeros(self.M, B, self.d, dtype=self.w.dtype, device=n.device)
        return A0.index_put_((n, b), vals, accumulate=True).permute(0, 2, 1).contiguous()

    def layers_iter(self, A0: torch.Tensor):
        """Yield (l, A^l, G^l) for l = 1..L, where G^l = gather_sum(A^l, idx[l−1]) = S·â^l."""
        A = A0
        G = work = None
        for l in range(1, self.L + 1):
            if l >= 2 and work is None:
                work = torch.empty_like(G)
            A = self.layer(l, A, G, work=work)
            G = gather_sum(A, self.idx[l - 1])
            yield l, A, G

    def forward(self, A0: torch.Tensor) -> list[torch.Tensor]:
        """Every layer: [A^0, A^1, ..., A^L], each [M, d, B] (small networks; see layers_iter).
        Activations only: the last layer's readouts are not gathered."""
        out, G, work = [A0], None, None
        for l in range(1, self.L + 1):
            out.append(self.layer(l, out[-1], G, work=work))
            if l < self.L:
                G = gather_sum(out[-1], self.idx[l - 1])
                work = torch.empty_like(G) if work is None else work
        return out

    def readout(self, A: torch.Tensor, l: int) -> torch.Tensor:
        """â_t^l = (1/S)⟨e_t^l|A^l⟩ block by block, for every circuit: [T, d, B]."""
        return gather_sum(A, self.idx[l - 1]) / self.S


class SuperposedNetwork(StructuredNetwork):
    """The RiS large network, structured (never materialises D × D).

    w: [T, d, d] circuit weights; idx: [L, T, S] neuron positions of e_t^l (index l−1);
    M: neurons per block; w_bar: [d, d] mean weight (Δw_t = w_t − w̄); bias: [d].
    All tensors follow idx's device and w's dtype. Construction is O(L·T·S²) time (one
    sort of the T·S² connected pairs per layer) and keeps O(L·T·S) numbers.
    """

    def __init__(self, w: torch.Tensor, idx: torch.Tensor, M: int, w_bar, bias):
        super().__init__(w, idx, M, w_bar, bias)
        L, T, S = idx.shape
        M, dtype = self.M, self.w.dtype
        self.register_buffer("dw", self.w - self.w_bar)
        P, Q = _rank_factor(self.w_bar)
        self.register_buffer("wbar_P", P)
        self.register_buffer("wbar_Q", Q)
        for l in range(1, L):
            cur, prev = idx[l], idx[l - 1]
            n, m, k = excess_pairs(cur, prev, M)
            chi = _balance_chi_from_excess(cur, prev, M, n, m, k)
            users, offsets = csr_users(cur, M)
            counts = torch.bincount(n, minlength=M)
            self.layers.append(
                LayerStructure(
                    chi,
                    users,
                    offsets,
                    n,
                    m,
                    (k - 1).to(dtype),
                    T * S * S - int((k - 1).sum()),
                    excess_offsets=torch.cumsum(counts, 0) - counts,
                )
            )

    def layer(
        self, l: int, A_prev: torch.Tensor, G_prev: torch.Tensor | None = None, *, work: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A^l from A^{l−1} (l ≥ 1). G_prev = gather_sum(A_prev, idx[l−2]) if already known;
        work: an optional [T, d, B] buffer (same dtype/device) reused for V·G (its content is
        overwritten)."""
        b = self.bias[None, :, None]
        if l == 1:
            return torch.relu(A_prev + b)
        st = self.layers[l - 1]
        if G_prev is None:
            G_prev = gather_sum(A_prev, self.idx[l - 2])
        M, d, B = A_prev.shape
        c = 1.0 / self.S + st.chi
        V = torch.add(c * self.w_bar, self.dw, alpha=1.0 / self.S)  # [T, d, d], cheap next to the B-wide work
        # Σ_t e_t ⊗ V_t G_t as one bmm of T 4×4 blocks: faster than 4 broadcast multiply-adds,
        # a block-diagonal CSR or BSR mm, or a bmm of 16×16 blocks packing 4 circuits; it runs
        # near memory bandwidth. Writing V·G into a reused buffer saves the page faults of a
        # fresh [T, d, B] tensor at every layer.
        VG = torch.bmm(V, G_prev) if work is None else torch.bmm(V, G_prev, out=work)
        pre = scatter_sum(VG, st.users, st.offsets)
        r = self.wbar_Q.shape[0]
        # The mean-weight corrections through w̄ = P Q: u = Q A, O(M·d·r·B). Applying X to
        # u (r = 1 row per neuron) instead of gathering the d rows of A for every excess pair
        # and multiplying by w̄ there took D = T = 2000 runs from 1.19 s to 0.21 s (the old
        # excess path was 70% of the time).
        if r:
            u = torch.matmul(self.wbar_Q, A_prev)  # [M, r, B]
            corr = (-st.chi) * u.sum(0)  # −χ 1 (1ᵀu): [r, B], the same for every n
            if st.excess_n.numel():  # −(1/S + χ) X u: pairs connected by several circuits count once in C
                if st.excess_offsets is not None:  # weighted segment sum over n's excess pairs
                    Xu = F.embedding_bag(
                        st.excess_m,
                        u.reshape(M, r * B),
                        st.excess_offsets,
                        mode="sum",
                        per_sample_weights=st.excess_k,
                    ).view(M, r, B)
                else:
                    Xu = torch.zeros_like(u).index_add_(0, st.excess_n, u[st.excess_m] * st.excess_k[:, None, None])
                corr = corr - c * Xu
            for k in range(r):  # P ⊗ corr, in place (no [D, B] temporary for a matmul's result)
                pre.addcmul_(self.wbar_P[:, k].view(1, d, 1), corr[..., k : k + 1, :])
        pre += b
        return pre.relu_()

    # ---- the readable reference path ----------------------------------------------------
    def mixing_matrix(self, l: int) -> torch.Tensor:
        """𝒲^l (M × M, dense): 1/S on C^l, −χ_l elsewhere (l ≥ 2)."""
        st = self.layers[l - 1]
        n, m, _ = connectivity(self.idx[l - 1], self.idx[l - 2], self.M)
        Wc = torch.full((self.M, self.M), -st.chi, dtype=self.w.dtype, device=self.w.device)
        Wc[n, m] = 1.0 / self.S
        return Wc

    def dense_weight(self, l: int) -> torch.Tensor:
        """W^l as a dense D × D matrix (reference and pictures; l ≥ 2), neuron i·M + n."""
        return dense_blocks(self.w_bar, self.mixing_matrix(l), self.dw, self.idx[l - 1], self.idx[l - 2], self.M)

    def forward_dense(self, A0: torch.Tensor) -> list[torch.Tensor]:
        """The same forward pass through dense W^l: [A^0, ..., A^L], each [B, D]."""
        b = self.bias.repeat_interleave(self.M)
        out = [flat(A0)]
        out.append(torch.relu(out[0] + b))
        for l in range(2, self.L + 1):
            out.append(torch.relu(out[-1] @ self.dense_weight(l).T + b))
        return out
