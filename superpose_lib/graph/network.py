"""Cross-circuit computation: a circuit graph, its superposed network, and its error theory.

Chapter "Cross-circuit computation" of the book. CiS/RiS superpose *independent* circuits: the
large weight matrix is a sum of per-circuit blocks Δw_t ⊗ |e_t^l⟩⟨e_t^{l−1}|. Here a
circuit may read other circuits' outputs. At every layer l ≥ 2 an edge set ℰ^l of
(reader u, source t) pairs with d × d weights W_{ut}; the small-network ground truth is

    a_u^l = ReLU( Σ_{t : (u,t) ∈ ℰ^l} W_{ut} a_t^{l−1} + b + δb_u^l ),

and the large network gains one block per edge:

    W^l = w̄ ⊗ 𝒲^l + (1/S) Σ_{(u,t) ∈ ℰ^l} Δw_{ut} ⊗ |e_u^l⟩⟨e_t^{l−1}|,   Δw_{ut} = W_{ut} − w̄,

with 𝒲^l = 1/S on the connectivity C^l of the edges and −χ_l elsewhere, χ_l balancing the
mean weight over every (reader, source) pair that is *not* an edge. With only self-edges
(u, u) this is exactly the RiS network. Layer 1 keeps the layer-0 trick (each input
circuit applies its own layer-1 weight; W^1 = identity).

On-indicators are Boolean functions of parents' indicators through the two-ReLU step
ReLU(2y − 0.5) − ReLU(2y − 1.5): a child with mean-weight edges (W = w̄, rows [2, −2, 0, 0])
from parents a, b has pre-activation 2(α_a + α_b) on every row, so with the shared bias it
computes OR = step(α_a + α_b); moving its thresholds by one input (δb = −2 on every row)
computes AND = step(α_a + α_b − 1). A bias shift lives on the child's own S neurons, which
other circuits share: it is not free (see `predict_graph_errors`).

Everything is batched over edges: edges are index tensors (readers, sources) and a weight
tensor [E, d, d]; the forward pass is gather (sources) → bmm (edges) → scatter (readers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..core.assignment import assignment_bytes, layer_assignments, max_circuits
from ..core.checks import BATCH_MAX, check_d, check_device, check_dtype, check_fits, check_int, checked, integer
from ..core.circuits import (
    BIAS,
    MEAN_WEIGHT,
    decode,
    encode_input,
    rotation_weights,
    sample_thetas,
)
from ..core.criteria import ON_THRESHOLD, STAT_KEYS
from ..core.experiment import sample_unit_vectors
from ..core.network import (
    StructuredNetwork,
    connectivity,
    csr_users,
    dense_blocks,
    flat,
    gather_sum,
    scatter_sum,
)
from ..core.theory import EPSILON, epsilon

__all__ = [
    "CircuitGraph",
    "GraphNetwork",
    "balance_chi_edges",
    "active_bound",
    "run_graph",
    "chain_graph",
    "gate_graph",
    "random_graph",
    "surviving_inputs",
    "sample_inputs",
    "sample_gate_inputs",
    "build_graph_network",
    "graph_bytes",
    "layer0_states",
    "graph_errors",
    "computed_circuits",
    "oracle_mask",
    "predict_graph_errors",
    "graph_chain_theory",
    "graph_rows",
    "D_X",
    "D_ALPHA",
    "exactness_checks",
    "gate_summary",
    "parameter_glue",
]

# Decode maps from a circuit's d = 4 readout to α = a0 − a1 and x = a[2:4] − α (linear).
D_ALPHA = torch.tensor([[1.0, -1.0, 0.0, 0.0]], dtype=torch.float64)
D_X = torch.tensor([[-1.0, 1.0, 1.0, 0.0], [-1.0, 1.0, 0.0, 1.0]], dtype=torch.float64)


@dataclass(frozen=True)
class CircuitGraph:
    """T circuits of d neurons over L layers, wired by per-layer edge lists.

    layer1: [T, d, d], each circuit's own layer-1 weight (the layer-0 trick's input map).
    readers, sources: L−1 LongTensors [E_l] (index l−2 is layer l = 2..L): edge (u, t) means
    a_u^l reads a_t^{l−1}. weights: L−1 tensors [E_l, d, d] (W_{ut}). shifts: L−1 tensors
    [T, d] of per-circuit bias shifts δb_u^l (gate thresholds), or None for none.
    z: the most circuits allowed active at once (checked by `active_bound`).

    Raises ValueError for: an edge naming a circuit that does not exist, a repeated edge,
    a cycle among distinct circuits within one layer, or an active set that can exceed z.
    """

    T: int
    L: int
    z: int
    layer1: torch.Tensor
    readers: tuple
    sources: tuple
    weights: tuple
    shifts: tuple | None = None
    bias: tuple = BIAS
    w_bar: tuple = MEAN_WEIGHT
    d: int = field(init=False)

    def __post_init__(self):
        T = check_int("T", self.T, 1)
        L = check_int("L", self.L, 1)
        check_int("z", self.z, 1, T)
        if self.layer1.ndim != 3 or self.layer1.shape[0] != T or self.layer1.shape[1] != self.layer1.shape[2]:
            raise ValueError(f"layer1 must have shape [T={T}, d, d], got {tuple(self.layer1.shape)}")
        d = self.layer1.shape[-1]
        object.__setattr__(self, "d", d)
        for name in ("readers", "sources", "weights"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            if len(getattr(self, name)) != L - 1:
                raise ValueError(f"{name} must list L-1={L - 1} layers (l = 2..L), got {len(getattr(self, name))}")
        shifts = self.shifts
        if shifts is None:
            shifts = tuple(torch.zeros(T, d, dtype=self.layer1.dtype) for _ in range(L - 1))
        shifts = tuple(shifts)
        if len(shifts) != L - 1 or any(tuple(s.shape) != (T, d) for s in shifts):
            raise ValueError(f"shifts must be L-1={L - 1} tensors of shape [T={T}, d={d}]")
        object.__setattr__(self, "shifts", shifts)
        for l, (r, s, w) in enumerate(zip(self.readers, self.sources, self.weights), start=2):
            if r.ndim != 1 or r.shape != s.shape or w.shape != (r.shape[0], d, d):
                raise ValueError(
                    f"layer {l}: readers/sources must be [E] and weights [E, {d}, {d}]; got "
                    f"{tuple(r.shape)}, {tuple(s.shape)}, {tuple(w.shape)}"
                )
            for name, v in (("reader", r), ("source", s)):
                bad = (v < 0) | (v >= T)
                if bad.any():
                    raise ValueError(
                        f"layer {l}: an edge names {name} circuit {int(v[bad][0])}, which does not exist "
                        f"(allowed: 0 <= circuit < T={T})"
                    )
            keys = r * T + s
            if torch.unique(keys).numel() != keys.numel():
                raise ValueError(f"layer {l}: repeated edge (reader, source); each pair may appear once")
            cyc = _find_cycle(r.cpu().numpy(), s.cpu().numpy())
            if cyc is not None:
                raise ValueError(
                    f"layer {l}: cycle among distinct circuits {cyc} within one layer; a layer's edges "
                    "(self-edges aside) must form a DAG"
                )
        bound = active_bound(self)
        if max(bound) > self.z:
            l = int(np.argmax(bound)) + 1
            raise ValueError(
                f"the active set can reach {max(bound)} circuits at layer {l}, more than z={self.z} "
                f"(allowed: at most z active circuits at every layer)"
            )

    @property
    def n_edges(self) -> list[int]:
        """|ℰ^l| for l = 2..L."""
        return [int(r.numel()) for r in self.readers]


def _find_cycle(r: np.ndarray, s: np.ndarray):
    """A directed cycle among distinct circuits in the edges s → r (self-loops ignored), or None.
    Kahn's algorithm on the (small) subgraph of circuits that have such edges."""
    keep = r != s
    r, s = r[keep], s[keep]
    if r.size == 0:
        return None
    nodes, inv = np.unique(np.concatenate([r, s]), return_inverse=True)
    rr, ss = inv[: r.size], inv[r.size :]
    indeg = np.bincount(rr, minlength=nodes.size)
    order = np.argsort(ss, kind="stable")
    starts = np.searchsorted(ss[order], np.arange(nodes.size + 1))
    stack = list(np.flatnonzero(indeg == 0))
    seen = 0
    while stack:
        n = stack.pop()
        seen += 1
        for e in order[starts[n] : starts[n + 1]]:
            indeg[rr[e]] -= 1
            if indeg[rr[e]] == 0:
                stack.append(rr[e])
    if seen == nodes.size:
        return None
    return sorted(int(x) for x in nodes[indeg > 0])[:6]


def active_bound(graph: CircuitGraph) -> list[int]:
    """Upper bound U_l on the number of active circuits at layers l = 1..L.

    A circuit with no active parent is off (inactive parents contribute 0 and biases are
    negative), so every active child has an active parent: U_1 = z and U_l is the sum of the
    U_{l−1} largest out-degrees at layer l (capped by the number of readers). Conservative
    for AND gates (which need two active parents)."""
    U = [graph.z]
    for r, s in zip(graph.readers, graph.sources):
        if r.numel() == 0:
            U.append(0)
            continue
        outdeg = torch.bincount(s, minlength=graph.T).sort(descending=True).values
        U.append(int(min(outdeg[: U[-1]].sum(), torch.unique(r).numel())))
    return U


# ---- the small-network ground truth ------------------------------------------------------
def run_graph(graph: CircuitGraph, a0: torch.Tensor, *, pre: bool = False):
    """Run the circuit graph directly: a0 [T, d, B] (inactive circuits 0) -> [L+1, T, d, B].

    Layer 1: a^1 = ReLU(w_t a^0 + b). Layer l ≥ 2: every edge's W_{ut} a_t^{l−1} (one bmm over
    edges), summed onto readers (index_add), plus b and the readers' shifts. With pre=True
    also returns the pre-activations without any bias, p^l = Σ_t W_{ut} a_t^{l−1} ([L+1, ...]).
    """
    dtype, dev = a0.dtype, a0.device
    b = torch.tensor(graph.bias, dtype=dtype, device=dev)[None, :, None]
    p = torch.bmm(graph.layer1.to(dev, dtype), a0)
    outs, pres = [a0, torch.relu(p + b)], [torch.zeros_like(a0), p]
    for r, s, w, sh in zip(graph.readers, graph.sources, graph.weights, graph.shifts):
        r, s = r.to(dev), s.to(dev)
        y = torch.bmm(w.to(dev, dtype), outs[-1][s])  # [E, d, B]
        p = torch.zeros_like(a0).index_add_(0, r, y)
        pres.append(p)
        outs.append(torch.relu(p + b + sh.to(dev, dtype)[:, :, None]))
    return (torch.stack(outs), torch.stack(pres)) if pre else torch.stack(outs)


# ---- the large network ------------------------------------------------------------------
@checked
def balance_chi_edges(cur: torch.Tensor, prev: torch.Tensor, n_edges: int, M: int, n, m) -> float:
    """χ_l such that Σ_{(u,t) ∉ ℰ^l} ⟨e_u^l|𝒲^l|e_t^{l−1}⟩ = 0 (the mean-weight balance over
    every reader/source pair that is not an edge).

    cur, prev: [T, S] assignments of all circuits at layers l and l−1; (n, m) the connected
    pairs C^l of the edges. With E = Σ_t e_t, U = Σ_{(n,m)∈C} E^l_n E^{l−1}_m − |ℰ|·S² (each edge
    connects its own S² pairs) and P = S²(T² − |ℰ|) pairs in the non-edge blocks:
    (1/S)·U − χ·(P − U) = 0. With ℰ = {(t, t)} this is `network.balance_chi`.
    """
    T, S = cur.shape
    E_cur = torch.bincount(cur.reshape(-1), minlength=M).double()
    E_prev = torch.bincount(prev.reshape(-1), minlength=M).double()
    U = float((E_cur[n] * E_prev[m]).sum()) - n_edges * S * S
    P = float(S * S) * (T * T - n_edges)
    return U / (S * (P - U)) if P > U else 0.0


@dataclass(frozen=True)
class _EdgeLayer:
    chi: float
    readers: torch.Tensor
    sources: torch.Tensor
    V: torch.Tensor  # [E, d, d] = Δw/S + (1/S + χ) w̄
    dw: torch.Tensor  # [E, d, d]
    users: torch.Tensor
    offsets: torch.Tensor
    excess_n: torch.Tensor
    excess_m: torch.Tensor
    excess_k: torch.Tensor
    bias: torch.Tensor  # [M, d] = b + Σ_u δb_u ⊗ e_u^l


class GraphNetwork(StructuredNetwork):
    """The superposed network of a circuit graph (structured: never forms D × D).

    Layer l ≥ 2, with K^l = Σ_{(u,t)∈ℰ} |e_u^l⟩⟨e_t^{l−1}|, C = [K > 0], X = K − C, c = 1/S + χ:

        W^l A = Σ_{(u,t)∈ℰ} e_u ⊗ (V_{ut} G_t) − c·X(w̄A) − χ·1 ⊗ (w̄ 1ᵀA),
        V_{ut} = Δw_{ut}/S + c·w̄,  G_t = ⟨e_t^{l−1}|A⟩ (gather over sources),

    the per-edge products one bmm, the sum onto readers' neurons one scatter. Layer 1 and
    the readouts are the RiS network's (`embed`, `layers_iter`, `readout` are inherited).
    """

    def __init__(self, graph: CircuitGraph, idx: torch.Tensor, M: int):
        L, T, S = idx.shape
        if L != graph.L or T != graph.T:
            raise ValueError(f"idx must have shape [L={graph.L}, T={graph.T}, S], got {tuple(idx.shape)}")
        super().__init__(graph.layer1, idx, M, graph.w_bar, graph.bias)  # w = the layer-1 circuit weights
        dtype, device, w_bar = self.w.dtype, idx.device, self.w_bar
        self.graph = graph
        for l in range(2, L + 1):
            r, s = graph.readers[l - 2].to(device), graph.sources[l - 2].to(device)
            W = graph.weights[l - 2].to(device, dtype)
            cur, prev = idx[l - 1], idx[l - 2]
            n, m, k = connectivity(cur[r], prev[s], M)
            chi = balance_chi_edges(cur, prev, int(r.numel()), M, n, m)
            users, offsets = csr_users(cur[r], M)
            dw = W - w_bar
            many = k > 1
            sh = graph.shifts[l - 2].to(device, dtype)
            bias = self.bias[None, :].repeat(M, 1)
            nz = (sh != 0).any(1).nonzero().squeeze(1)
            if nz.numel():  # δb_u on each of u's S neurons
                bias.index_add_(0, cur[nz].reshape(-1), sh[nz].repeat_interleave(S, 0))
            self.layers.append(
                _EdgeLayer(
                    chi,
                    r,
                    s,
                    dw / S + (1.0 / S + chi) * w_bar,
                    dw,
                    users,
                    offsets,
                    n[many],
                    m[many],
                    (k[many] - 1).to(dtype),
                    bias,
                )
            )

    def layer(
        self, l: int, A_prev: torch.Tensor, G_prev: torch.Tensor | None = None, *, work: torch.Tensor | None = None
    ) -> torch.Tensor:
        # `work` (the shared layers_iter's reusable [T, d, B] buffer) does not fit the [E, d, B]
        # edge products: accepted for the shared layers_iter/forward, unused here.
        if l == 1:
            return torch.relu(A_prev + self.bias[None, :, None])
        st = self.layers[l - 1]
        if G_prev is None:
            G_prev = gather_sum(A_prev, self.idx[l - 2])
        c = 1.0 / self.S + st.chi
        if st.readers.numel():
            pre = scatter_sum(torch.bmm(st.V, G_prev[st.sources]), st.users, st.offsets)
        else:
            pre = torch.zeros_like(A_prev)
        if st.excess_n.numel():
            U = torch.einsum("ij,njb->nib", self.w_bar, A_prev[st.excess_m])
            pre.index_add_(0, st.excess_n, U * (-c * st.excess_k)[:, None, None])
        pre -= st.chi * torch.einsum("ij,jb->ib", self.w_bar, A_prev.sum(0))[None]
        return torch.relu(pre + st.bias[:, :, None])

    # ---- the readable reference path ----------------------------------------------------
    def mixing_matrix(self, l: int) -> torch.Tensor:
        st = self.layers[l - 1]
        cur, prev = self.idx[l - 1][st.readers], self.idx[l - 2][st.sources]
        n, m, _ = connectivity(cur, prev, self.M)
        Wc = torch.full((self.M, self.M), -st.chi, dtype=self.w.dtype, device=self.w.device)
        Wc[n, m] = 1.0 / self.S
        return Wc

    def dense_weight(self, l: int) -> torch.Tensor:
        """W^l = w̄ ⊗ 𝒲^l + (1/S) Σ_e Δw_e ⊗ |e_u^l⟩⟨e_t^{l−1}|, dense D × D (reference)."""
        st = self.layers[l - 1]
        cur, prev = self.idx[l - 1][st.readers], self.idx[l - 2][st.sources]
        return dense_blocks(self.w_bar, self.mixing_matrix(l), st.dw, cur, prev, self.M)

    def forward_dense(self, A0: torch.Tensor) -> list[torch.Tensor]:
        b = self.bias.repeat_interleave(self.M)
        out = [flat(A0)]
        out.append(torch.relu(out[0] + b))
        for l in range(2, self.L + 1):
            bl = self.layers[l - 1].bias.T.reshape(-1)  # [M, d] -> neuron i·M + n
            out.append(torch.relu(out[-1] @ self.dense_weight(l).T + bl))
        return out


# ---- graph builders --------------------------------------------------------------------
def _mean(graph_dtype=torch.float64):
    return torch.tensor(MEAN_WEIGHT, dtype=graph_dtype)


@checked
def chain_graph(T: int, k: int, L: int, z: int, generator: torch.Generator, *, dtype=torch.float64) -> CircuitGraph:
    """Chains of k circuits handing a rotating vector along (pipelines t → u).

    Circuit c·k + j is position j of chain c (T // k chains; leftover circuits get no edges).
    Position min(l−1, k−1) holds the vector at layer l: at layer l ≥ 2 each chain has one
    edge, a hand-off (j ← j−1) while l ≤ k and a self-edge afterwards, with the reader's
    rotation weight. So |ℰ^l| = T // k; k = 1 is the RiS network of independent circuits.
    Inputs: chain heads (circuits c·k).
    """
    T, k, L = check_int("T", T, 1), check_int("k", k, 1, T), check_int("L", L, 1)
    check_fits("a chain graph", lambda T: _circuit_graph_bytes(T, L, T // k), {"T": T}, {"T": 1}, "cpu")
    theta = sample_thetas(T, generator)
    w = rotation_weights(theta).to(dtype)
    n = T // k
    c = torch.arange(n)
    readers, sources, weights = [], [], []
    for l in range(2, L + 1):
        r = c * k + min(l - 1, k - 1)
        s = c * k + min(l - 2, k - 1)
        readers.append(r)
        sources.append(s)
        weights.append(w[r])
    return CircuitGraph(T, L, z, w, tuple(readers), tuple(sources), tuple(weights))


@checked
def gate_graph(
    P: int, L: int, z: int, generator: torch.Generator, *, and_fraction: float = 0.5, dtype=torch.float64
) -> CircuitGraph:
    """Fan-in gates: T = 3P circuits; parents 0..2P−1 (rotation circuits at layer 1), children
    2P..3P−1. At layer 2 child i reads parents 2i and 2i+1 through mean-weight edges (W = w̄):
    OR = step(α_a + α_b); the first round(and_fraction·P) children are AND gates, their
    thresholds moved by one input (δb = −2 on every row): AND = step(α_a + α_b − 1). From
    layer 3 on the children rotate their own (zero or constant) vector with self-edges.
    Parents have no edges after layer 1 (they hand over to the gate).
    """
    P, L = check_int("P", P, 1), check_int("L", L, 2)
    if not 0.0 <= and_fraction <= 1.0:
        raise ValueError(f"and_fraction={and_fraction} is out of range: allowed 0 <= and_fraction <= 1")
    check_fits("a gate graph", lambda P: _circuit_graph_bytes(3 * P, L, 2 * P), {"P": P}, {"P": 1}, "cpu")
    T = 3 * P
    theta = sample_thetas(T, generator)
    w = rotation_weights(theta).to(dtype)
    child = 2 * P + torch.arange(P)
    n_and = int(round(and_fraction * P))
    readers = [child.repeat_interleave(2)]
    sources = [torch.arange(2 * P)]
    weights = [_mean(dtype).expand(2 * P, 4, 4).clone()]
    shift2 = torch.zeros(T, 4, dtype=dtype)
    shift2[child[:n_and]] = -2.0
    shifts = [shift2]
    for _ in range(3, L + 1):
        readers.append(child)
        sources.append(child)
        weights.append(w[child])
        shifts.append(torch.zeros(T, 4, dtype=dtype))
    return CircuitGraph(T, L, z, w, tuple(readers), tuple(sources), tuple(weights), tuple(shifts))


@checked
def random_graph(
    T: int, L: int, z: int, n_edges: int, generator: torch.Generator, *, handoff: float = 0.5, dtype=torch.float64
) -> CircuitGraph:
    """A random sparse circuit graph of n_edges random pipelines ("lanes").

    Layer 1: n_edges random circuits hold a lane each. At every layer l ≥ 2 each lane's
    holder t either keeps its payload (self-edge, probability 1 − handoff) or hands it to a
    random circuit that held no lane at layer l−1 (edge u ← t); all weights are rotations
    with fresh random angles. So |ℰ^l| = n_edges, every circuit has at most one in- and one
    out-edge per layer (the active set never grows) and new readers are never sources of the
    same layer (no cycles). Inputs: the layer-1 holders (`surviving_inputs`).
    """
    T, L = check_int("T", T, 1), check_int("L", L, 1)
    n_edges = check_int("n_edges", n_edges, 0, T // 2)
    check_fits("a random graph", lambda T: _circuit_graph_bytes(T, L, n_edges) + 24 * T, {"T": T}, {"T": 1}, "cpu")
    w = rotation_weights(sample_thetas(T, generator)).to(dtype)
    holders = torch.randperm(T, generator=generator)[:n_edges]
    readers, sources, weights = [], [], []
    for _ in range(2, L + 1):
        move = torch.rand(n_edges, generator=generator) < handoff
        free = torch.ones(T, dtype=torch.bool)
        free[holders] = False
        pool = free.nonzero().squeeze(1)
        fresh = pool[torch.randperm(pool.numel(), generator=generator)[: int(move.sum())]]
        new = holders.clone()
        new[move] = fresh
        readers.append(new)
        sources.append(holders)
        weights.append(rotation_weights(sample_thetas(n_edges, generator)).to(dtype))
        holders = new
    return CircuitGraph(T, L, z, w, tuple(readers), tuple(sources), tuple(weights))


def surviving_inputs(graph: CircuitGraph) -> torch.Tensor:
    """Circuits whose payload reaches layer L along edges (one backward pass per layer):
    the useful inputs of a graph whose circuits may stop."""
    alive = torch.ones(graph.T, dtype=torch.bool)
    for r, s in zip(reversed(graph.readers), reversed(graph.sources)):
        nxt = torch.zeros(graph.T, dtype=torch.bool)
        nxt[s[alive[r]]] = True
        alive = nxt
    return alive.nonzero().squeeze(1)


@checked
def sample_inputs(pool: torch.Tensor, z: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """z distinct input circuits per row, uniformly from `pool`: [batch, z]."""
    z = check_int("z", z, 1, pool.numel())
    pick = torch.rand(batch, pool.numel(), generator=generator).argsort(1)[:, :z]
    return pool[pick]


@checked
def sample_gate_inputs(P: int, z: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Inputs for `gate_graph`: in each row ⌊z/2⌋ random gates get both parents on (the AND
    fires) and the rest of the z inputs are single parents of other gates: [batch, z]."""
    z = check_int("z", z, 1, 2 * P)
    pairs = z // 2
    if pairs + (z - 2 * pairs) > P:
        raise ValueError(f"z={z} is out of range for P={P} gates: allowed z <= {P}")
    g = torch.rand(batch, P, generator=generator).argsort(1)[:, : pairs + (z - 2 * pairs)]
    both = torch.stack([2 * g[:, :pairs], 2 * g[:, :pairs] + 1], -1).reshape(batch, -1)
    side = torch.randint(2, (batch, z - 2 * pairs), generator=generator)
    single = 2 * g[:, pairs:] + side
    return torch.cat([both, single], 1)


def _circuit_graph_bytes(T, L, n_edges, d=4):
    """A `CircuitGraph`'s own tensors (float64): the [T, d, d] layer-1 weights and their
    angles, per layer ≥ 2 the edges' [E, d, d] weights, readers, sources and [T, d] shifts."""
    return 8 * 4 * T * d * d + 8 * max(L - 1, 0) * (n_edges * (d * d * 2 + 4) + T * d)


@checked(batch=integer(0, BATCH_MAX))
def graph_bytes(D: int, T: int, S: int, L: int, n_edges: int, batch: int = 0, *, itemsize: int = 4, d: int = 4) -> int:
    """Estimated peak memory (bytes) of a circuit graph's network (`build_graph_network`,
    batch = 0) and of one batch through it (`graph_errors`), for refusing sizes before
    anything is allocated. n_edges: the most edges of one layer.

    Graph: its own tensors (`_circuit_graph_bytes`). Network: the [L, T, S] assignment
    (`assignment.assignment_bytes`), per layer the n_edges·S² connected pairs (40 B each:
    sorted keys and their (n, m, k)), the CSR lists, the [M, d] biases and the edges' weights.
    Batch: the circuits' own truth and pre-activations [L+1, T, d, B] in float64 (two lists
    stacked: four copies), the layer-0 states, the [T, d, B] readouts decoded in float64
    (about eight copies), the [E, d, B] edge products and gathers, four [D, B] activations."""
    M = D // d
    net = assignment_bytes(T, M, S, L) + max(L - 1, 0) * (
        40 * n_edges * S * S + 16 * (n_edges * S + M) + 8 * M * d + 4 * 8 * n_edges * d * d
    )
    run = 0
    if batch:
        run = 8 * batch * T * d * (4 * (L + 1) + 10) + itemsize * batch * (2 * n_edges * d + 2 * T * d + 4 * D)
    return int(_circuit_graph_bytes(T, L, n_edges, d) + net + run)


def _check_graph_fits(what, device, *, D, T, S, L, n_edges, batch=0, itemsize=4, names=None):
    """`check_fits` for `graph_bytes`; names maps the sizes blamed to their values (default
    D, T, batch), e.g. P for the gates (T = 3P, E = 2P)."""
    sizes = names or {"D": D, "T": T, **({"batch": batch} if batch else {})}

    def estimate(**kw):
        args = {"D": D, "T": T, "n_edges": n_edges, "batch": batch, **kw}
        if "P" in kw:
            args.update(T=3 * kw["P"], n_edges=2 * kw["P"])
        return graph_bytes(args["D"], args["T"], S, L, args["n_edges"], args["batch"], itemsize=itemsize)

    smallest = {k: (4 if k == "D" else 1) for k in sizes}
    check_fits(what, estimate, sizes, smallest, device)


@checked
def build_graph_network(
    graph: CircuitGraph, D: int, S: int, generator: torch.Generator, *, device="cpu", dtype=torch.float32
) -> GraphNetwork:
    """The superposed network of `graph` at width D (prime-step assignment, random layer
    permutations drawn from `generator`)."""
    d = check_d(graph.d)
    if D % d:
        raise ValueError(f"D={D} must be a multiple of d={d}")
    M = D // d
    S = check_int("S", S, 1, M)
    E = max((int(r.numel()) for r in graph.readers), default=0)
    itemsize = torch.empty((), dtype=check_dtype(dtype)).element_size()
    _check_graph_fits(
        f"the network of a graph of {graph.T} circuits",
        check_device(device),
        D=D,
        T=graph.T,
        S=S,
        L=graph.L,
        n_edges=E,
        itemsize=itemsize,
    )
    check_int("T", graph.T, 1, max_circuits(M, S))
    idx = layer_assignments(graph.T, M, S, graph.L, generator, device=device)
    g = _cast(graph, dtype)
    return GraphNetwork(g, idx, M)


def _cast(graph: CircuitGraph, dtype) -> CircuitGraph:
    if graph.layer1.dtype == dtype:
        return graph
    return CircuitGraph(
        graph.T,
        graph.L,
        graph.z,
        graph.layer1.to(dtype),
        graph.readers,
        graph.sources,
        tuple(w.to(dtype) for w in graph.weights),
        tuple(s.to(dtype) for s in graph.shifts),
        graph.bias,
        graph.w_bar,
    )


# ---- measurement -----------------------------------------------------------------------
@checked
def layer0_states(graph: CircuitGraph, inputs: torch.Tensor, x0: torch.Tensor, dtype):
    """Layer-0 states of all circuits [T, d, B] and the per-input a^0 [B, z, d]."""
    B, z = inputs.shape
    a_in = encode_input(torch.ones(B, z, dtype=torch.float64), x0).to(dtype)
    a0 = torch.zeros(graph.T, graph.d, B, dtype=dtype)
    a0[inputs, :, torch.arange(B)[:, None].expand(B, z)] = a_in
    return a0, a_in


@checked
def computed_circuits(graph: CircuitGraph, l: int) -> torch.Tensor:
    """The circuits with an output at layer l ([T] bool): the readers of ℰ^l for l ≥ 2, every
    circuit at layer 1 (each applies its own layer-1 weight). Only these can be read later,
    so the on-indicator rates count only them (an idle circuit's readout is never read)."""
    if l == 1:
        return torch.ones(graph.T, dtype=torch.bool)
    out = torch.zeros(graph.T, dtype=torch.bool)
    out[graph.readers[l - 2]] = True
    return out


@checked
def oracle_mask(idx_l: torch.Tensor, act: torch.Tensor, M: int) -> torch.Tensor:
    """[M, B] 1.0 on the neurons some active circuit uses at one layer (∪_{u active} e_u^l,
    per batch row), 0.0 elsewhere: idx_l [T, S] the layer's positions, act [T, B] the
    ground truth's active circuits."""
    u, b = act.nonzero(as_tuple=True)
    keep = torch.zeros(M, act.shape[1], dtype=torch.float64, device=idx_l.device)
    n = idx_l[u.to(idx_l.device)]  # [k, S]
    keep[n, b.to(idx_l.device)[:, None].expand_as(n)] = 1.0
    return keep


def graph_errors(
    net: GraphNetwork, inputs: torch.Tensor, x0: torch.Tensor, *, theory: bool = True, oracle: bool = False
) -> dict:
    """Run the network and the circuit graph on the same inputs: per-layer statistics (index =
    layer). Active = the ground truth's α^l > ½.

    MSEs: active ⟨|δx|²⟩ and ⟨δα²⟩, inactive ⟨|x̂|²⟩ and ⟨α̂²⟩ (over every inactive circuit);
    flip_rate, the fraction of all circuits whose α̂ is on the wrong side of ½; n_active, the
    active circuits per row. The statistics `core.criteria.works` reads (as
    `rotation_errors` defines them, with the circuits that have an output at the layer,
    `computed_circuits`, in place of all T): false_on, the fraction of inactive computed
    circuits with α̂ > ON_THRESHOLD; false_off, the fraction of active circuits with α̂ <
    ON_THRESHOLD; q90_dx and worst_dx, the 90th percentile and the maximum of |δx| over the
    active circuits. With self-edges only every circuit is computed and these are
    `rotation_errors`' statistics of the same network.

    oracle=True: the network's own oracle, every neuron that no active circuit uses switched
    off after each layer (the reference of criterion (b)). theory=True (not with oracle):
    also the predictions of `predict_graph_errors`, averaged the same way ("theory_<key>")."""
    if oracle and theory:
        raise ValueError("theory=True is for the network itself: pass theory=False with oracle=True")
    graph = net.graph
    dev, dtype = net.idx.device, net.w.dtype
    E = max((int(r.numel()) for r in graph.readers), default=0)
    B = int(inputs.shape[0])
    run = lambda batch: (
        graph_bytes(
            net.d * net.M,
            graph.T,
            net.S,
            graph.L,
            E,
            batch,  # noqa: E731
            itemsize=net.w.element_size(),
        )
        - graph_bytes(net.d * net.M, graph.T, net.S, graph.L, E, 0)
    )
    check_fits(f"a batch through the network of {graph.T} circuits", run, {"batch": B}, {"batch": 1}, dev)
    a0, a_in = layer0_states(graph, inputs, x0, torch.float64)
    truth, pre = run_graph(graph, a0, pre=True)
    A0 = net.embed(inputs.to(dev), a_in.to(dev, dtype))
    keys = ("active_x", "active_on", "inactive_x", "inactive_on", "flip_rate", "n_active") + STAT_KEYS
    out = {k: [0.0] * (graph.L + 1) for k in keys}
    A, G = A0, None
    for l in range(1, graph.L + 1):
        A = net.layer(l, A, G)
        ta, tx = decode(truth[l].permute(0, 2, 1))  # [T, B], [T, B, 2]
        act = ta > 0.5
        if oracle:
            A = A * oracle_mask(net.idx[l - 1], act, net.M).to(dtype)[:, None, :]
        G = gather_sum(A, net.idx[l - 1])
        al, x = decode((G / net.S).double().cpu().permute(0, 2, 1))
        ex = ((x - tx) ** 2).sum(-1)
        ea = (al - ta) ** 2
        off = ~act & computed_circuits(graph, l)[:, None]
        out["inactive_x"][l] = float(ex[~act].mean())
        out["inactive_on"][l] = float(ea[~act].mean())
        out["flip_rate"][l] = float(((al > 0.5) != act).double().mean())
        out["n_active"][l] = float(act.sum(0).double().mean())
        out["false_on"][l] = float((al[off] > ON_THRESHOLD).double().mean()) if off.any() else 0.0
        if act.any():
            dx = ex[act].sqrt()
            out["active_x"][l] = float(ex[act].mean())
            out["active_on"][l] = float(ea[act].mean())
            out["false_off"][l] = float((al[act] < ON_THRESHOLD).double().mean())
            out["q90_dx"][l] = float(torch.quantile(dx, 0.9))
            out["worst_dx"][l] = float(dx.max())
        else:
            for k in ("active_x", "active_on", "false_off", "q90_dx", "worst_dx"):
                out[k][l] = float("nan")
    if theory:
        eps = epsilon(net.d * net.M, graph.T, net.S, net.d)
        out.update({f"theory_{k}": v for k, v in predict_graph_errors(graph, truth, pre, eps).items()})
    return out


# ---- theory ------------------------------------------------------------------------------
@checked(eps=EPSILON)
def predict_graph_errors(graph: CircuitGraph, truth: torch.Tensor, pre: torch.Tensor, eps: float) -> dict:
    """Predicted per-layer MSEs of the graph network (the chapter's derivation, RiS §6 extended).

    Inputs are the ground truth's states a^l and bias-free pre-activations p^l ([L+1, T, d, B],
    float64) and ε (mean squared overlap). For an active reader r at layer l, per sample:

      δx_r^l = carried + first-order + second-order, with
      carried      Σ_{(r,t)∈ℰ^l, t active} |D_x W_{rt} δâ_t^{l−1}|²  (κ_x E|δx_t|² + κ_α E δα_t²),
      first-order  ε Σ_{u ≠ r} |D_x (ReLU(q_r + p_u + δb_u) − a_r)|²   (circuits u writing onto a
                   neuron r shares: other active circuits, inactive ones with input, and the
                   bias shifts of gates; q_r = p_r + b + δb_r),
                 + ε Σ_{(r,t)∈ℰ^l, t inactive} Σ_{s active at l−1} |D_x W_{rt} a_s|²  (fan-in: an
                   inactive parent's readout carries its overlap with active circuits),
      second-order ε² Σ_{s active at l−1} [ a_sᵀ Q a_s + |ℰ^l| |D_x w̄ a_s|² [s ∉ parents(r)] ],
                   Q = Σ_{e∈ℰ^l} Δw_eᵀ D_xᵀ D_x Δw_e  (every weight block leaks signal out of s
                   and back into r: the propagation term, |ℰ| blocks instead of T).

    The α readout error is the first-order and second-order terms with D_α in place of D_x
    (the step makes it carry nothing). Inactive circuits: ε Σ_{u active} |D a_u|² (RiS z·ε).
    With only self-edges and rotation circuits this is RiS's
    (l−1)·T·ε²·(z + 8(z−1)) + 9·l·ε·(z−1). Returns per-layer means over (sample, active
    circuit) and (sample, inactive circuit), as `graph_errors` measures them.
    """
    L, T, d, B = truth.shape[0] - 1, truth.shape[1], truth.shape[2], truth.shape[3]
    b = torch.tensor(graph.bias, dtype=torch.float64)[None, :, None]
    wbar = torch.tensor(graph.w_bar, dtype=torch.float64)
    Dx, Da = D_X, D_ALPHA
    Jx = torch.tensor([[0.0, 0], [0, 0], [1, 0], [0, 1]], dtype=torch.float64)
    ja = torch.tensor([1.0, 0, 1, 1], dtype=torch.float64)
    out = {k: [0.0] * (L + 1) for k in ("active_x", "active_on", "inactive_x", "inactive_on")}
    ex_prev = torch.zeros(T, B, dtype=torch.float64)
    ea_prev = torch.zeros(T, B, dtype=torch.float64)
    for l in range(1, L + 1):
        a, p = truth[l], pre[l]
        sh = torch.zeros(T, d, dtype=torch.float64) if l == 1 else graph.shifts[l - 2].double()
        alpha = a[:, 0] - a[:, 1]
        act = alpha > 0.5  # [T, B]
        a_prev = truth[l - 1]
        act_prev = (a_prev[:, 0] - a_prev[:, 1]) > 0.5
        kz = int(act.sum(0).max()) if act.any() else 0
        ex = torch.zeros(T, B, dtype=torch.float64)
        ea = torch.zeros(T, B, dtype=torch.float64)
        if kz:
            # active readers per sample, padded to kz: r_idx [B, kz], valid [B, kz]
            vals, r_idx = act.T.double().topk(kz, dim=1)
            valid = vals > 0.5
            cols = torch.arange(B)[:, None].expand(B, kz)
            q_r = (p + sh[:, :, None])[r_idx, :, cols] + b[0, :, 0]  # [B, kz, d] full pre of r
            a_r = a[r_idx, :, cols]
            # the circuits writing anything (a non-zero pre-activation or a shift), per sample,
            # padded to the most in any sample: the others add exactly nothing
            loud = (p != 0).any(1) | (sh != 0).any(1)[:, None]  # [T, B]
            lv, u_idx = loud.T.double().topk(max(int(loud.sum(0).max()), 1), dim=1)  # [B, kl]
            pu = (p + sh[:, :, None])[u_idx, :, torch.arange(B)[:, None].expand_as(u_idx)]  # [B, kl, d]
            err = torch.relu(q_r[:, :, None, :] + pu[:, None, :, :]) - a_r[:, :, None, :]  # [B, kz, kl, d]
            mask = (lv > 0.5)[:, None, :] & (u_idx[:, None, :] != r_idx[:, :, None])
            err = err * mask[..., None]
            f1x = eps * ((err @ Dx.T) ** 2).sum((-1, -2))  # [B, kz]
            f1a = eps * ((err @ Da.T) ** 2).sum((-1, -2))
            if l >= 2:
                r_e, s_e = graph.readers[l - 2], graph.sources[l - 2]
                W = graph.weights[l - 2].double()
                # active states at l−1 per sample, padded
                kp = int(act_prev.sum(0).max()) if act_prev.any() else 0
                carried = torch.zeros(T, B, dtype=torch.float64)
                fan = torch.zeros(T, B, dtype=torch.float64)
                f2x = torch.zeros(B, kz, dtype=torch.float64)
                f2a = torch.zeros(B, kz, dtype=torch.float64)
                if kp and r_e.numel():
                    pv, s_idx = act_prev.T.double().topk(kp, dim=1)
                    s_ok = pv > 0.5
                    a_s = a_prev[s_idx, :, torch.arange(B)[:, None].expand(B, kp)] * s_ok[..., None]  # [B, kp, d]
                    # carried: κ_x E|δx_t|² + κ_α Eδα_t² through each edge from an active source
                    DW = Dx @ W  # [E, 2, d]
                    kx = 0.5 * ((DW @ Jx) ** 2).sum((-1, -2))  # [E]
                    ka = ((DW @ ja) ** 2).sum(-1)  # [E]
                    src_act = act_prev[s_e]  # [E, B]
                    contrib = src_act * (kx[:, None] * ex_prev[s_e] + ka[:, None] * ea_prev[s_e])
                    carried.index_add_(0, r_e, contrib)
                    keys = torch.sort(r_e * T + s_e).values

                    def is_edge(kk):
                        pos = torch.searchsorted(keys, kk.reshape(-1)).clamp(max=keys.numel() - 1)
                        return (keys[pos] == kk.reshape(-1)).view(kk.shape)

                    # fan-in: an inactive parent t's readout carries o'·a_s of each active s; r reads
                    # it through W_rt, or only Δw_rt when s is r's parent too (C is binary: the
                    # mean-weight part already reads the shared neuron once, through (r, s))
                    e_in = act[r_e] & ~src_act  # [E, B]
                    if e_in.any():
                        ee, bb = e_in.nonzero(as_tuple=True)
                        both = is_edge(r_e[ee][:, None] * T + s_idx[bb])  # [n, kp]
                        Wsel = torch.where(both[..., None, None], (W - wbar)[ee][:, None], W[ee][:, None])
                        v = torch.einsum("ij,nkjl,nkl->nki", Dx, Wsel, a_s[bb])  # [n, kp, 2]
                        fan.index_put_((r_e[ee], bb), eps * (v**2).sum((-1, -2)), accumulate=True)
                    parent = is_edge(r_idx[:, :, None] * T + s_idx[:, None, :]) & s_ok[:, None, :]  # [B, kz, kp]
                    # fan-in of two active parents s, s': a neuron they share is read once by the
                    # binary mean-weight mixing instead of twice: −o'·w̄ ReLU(p_s + p_s' + b)
                    if kp > 1:
                        sh_prev = torch.zeros(T, d, dtype=torch.float64) if l == 2 else graph.shifts[l - 3].double()
                        p_s = (pre[l - 1] + sh_prev[:, :, None])[s_idx, :, torch.arange(B)[:, None].expand(B, kp)]
                        shared = torch.relu(p_s[:, :, None] + p_s[:, None, :] + b[0, :, 0])  # [B, kp, kp, d]
                        v2 = eps * ((shared @ (Dx @ wbar).T) ** 2).sum(-1)  # [B, kp, kp]
                        pair = (
                            parent[:, :, :, None] & parent[:, :, None, :] & torch.ones(kp, kp, dtype=torch.bool).triu(1)
                        )
                        fan2 = (pair * v2[:, None]).sum((-1, -2))  # [B, kz]
                        fan[r_idx[valid], cols[valid]] += fan2[valid]
                    # second order: Q over all edges, and the w̄ term for sources that are not parents
                    dw = W - wbar
                    Qx = torch.einsum("eki,ekj->ij", Dx @ dw, Dx @ dw)
                    Qa = torch.einsum("eki,ekj->ij", Da @ dw, Da @ dw)
                    qx = torch.einsum("bki,ij,bkj->bk", a_s, Qx, a_s)  # [B, kp]
                    qa = torch.einsum("bki,ij,bkj->bk", a_s, Qa, a_s)
                    wx = ((a_s @ (Dx @ wbar).T) ** 2).sum(-1)  # [B, kp]
                    wa = ((a_s @ (Da @ wbar).T) ** 2).sum(-1)
                    nE = r_e.numel()
                    f2x = eps**2 * (qx[:, None, :] + nE * wx[:, None, :] * ~parent).mul(s_ok[:, None, :]).sum(-1)
                    f2a = eps**2 * (qa[:, None, :] + nE * wa[:, None, :] * ~parent).mul(s_ok[:, None, :]).sum(-1)
                tot_x = carried[r_idx, cols] + fan[r_idx, cols] + f1x + f2x
                tot_a = f1a + f2a
            else:
                tot_x, tot_a = f1x, f1a
            ex[r_idx[valid], cols[valid]] = tot_x[valid]
            ea[r_idx[valid], cols[valid]] = tot_a[valid]
            out["active_x"][l] = float(ex[act].mean())
            out["active_on"][l] = float(ea[act].mean())
        # inactive circuits: ε Σ_{u active} |D a_u|² (the same for every inactive circuit)
        aa = (a * act[:, None, :]).permute(2, 0, 1)  # [B, T, d]
        ix = eps * ((aa @ Dx.T) ** 2).sum((-1, -2))  # [B]
        ia = eps * ((aa @ Da.T) ** 2).sum((-1, -2))
        n_in = (~act).sum(0).double()
        out["inactive_x"][l] = float((ix * n_in).sum() / n_in.sum())
        out["inactive_on"][l] = float((ia * n_in).sum() / n_in.sum())
        ex_prev, ea_prev = ex, ea
    return out


@checked
def graph_chain_theory(n_edges, *, D: int, T: int, S: int = 6, z: int = 1, d: int = 4) -> list[float]:
    """Closed form for rotation circuits whose active payloads move along single edges
    (chains, random partial permutations): per layer l = 0..L of active ⟨|δx|²⟩,

        Σ_{l'=2}^{l} |ℰ^{l'}|·ε²·(z + 8(z−1)) + 9·l·ε·(z−1),

    i.e. RiS's formula with T·(l−1) replaced by the number of weight blocks Σ_l |ℰ^l|.
    n_edges: |ℰ^l| for l = 2..L.
    """
    eps = epsilon(D, T, S, d)
    out, acc = [0.0, 9 * eps * (z - 1)], 0.0
    for l, n in enumerate(n_edges, start=2):
        acc += n * eps**2 * (z + 8 * (z - 1))
        out.append(acc + 9 * l * eps * (z - 1))
    return out


# ---- experiments as tidy rows -------------------------------------------------------------
@checked(T=integer(0, 2**40))  # T = 0 allowed: gates ignore it (T = 3P)
def graph_rows(
    kind: str,
    D: int,
    T,
    z: int,
    *,
    L: int = 4,
    k: int = 1,
    n_edges: int = 0,
    P: int = 0,
    n_and: int = 0,
    S: int = 6,
    batch: int = 300,
    seed: int = 0,
    device="cpu",
    circuits: str = "",
) -> list[dict]:
    """One network, one batch: tidy rows (layer, quantity, measured, theory, ...) for a chain
    (kind="chain", depth k), a random graph ("random", n_edges lanes) or fan-in gates ("gate",
    P gates of which n_and are AND; T is then the graph's and the argument is ignored).
    Columns: edges = mean |ℰ^l|, x = edges·(d/D)². circuits: the name of the set of
    configurations this one belongs to (a column of the sweep's grid; not used here)."""
    if kind not in ("chain", "random", "gate"):
        raise ValueError(f"kind={kind!r} is out of range: allowed 'chain', 'random', 'gate'")
    if kind != "gate":
        T = check_int("T", T, 1)
        E = T // check_int("k", k, 1, T) if kind == "chain" else check_int("n_edges", n_edges, 0, T // 2)
        names = None
    else:
        P = check_int("P", P, 1)
        T, E, names = 3 * P, 2 * P, {"D": D, "P": P, "batch": batch}
    if D % 4:
        raise ValueError(f"D={D} must be a multiple of d=4")
    _check_graph_fits(
        f"a {kind} graph's network and one batch",
        check_device(device),
        D=D,
        T=T,
        S=check_int("S", S, 1, D // 4),
        L=L,
        n_edges=E,
        batch=batch,
        names=names,
    )
    g = torch.Generator().manual_seed(int(seed))
    if kind == "chain":
        gr = chain_graph(T, k, L, z, g)
    elif kind == "random":
        gr = random_graph(T, L, z, n_edges, g)
    else:
        gr = gate_graph(P, L, z, g, and_fraction=n_and / P)
        T = gr.T
    net = build_graph_network(gr, D, S, g, device=device)
    if kind == "gate":
        inputs = sample_gate_inputs(P, z, batch, g)
    elif kind == "chain":
        inputs = sample_inputs(torch.arange(0, (T // k) * k, k), z, batch, g)
    else:
        inputs = sample_inputs(surviving_inputs(gr), z, batch, g)

    e = graph_errors(net, inputs, sample_unit_vectors((batch, z), g))
    d = gr.d
    edges = float(np.mean(gr.n_edges)) if gr.n_edges else 0.0
    rows = []
    for q in ("active_x", "active_on", "inactive_x", "inactive_on", "flip_rate", "n_active"):
        for l in range(1, L + 1):
            rows.append(
                {
                    "layer": l,
                    "quantity": q,
                    "measured": e[q][l],
                    "theory": e.get(f"theory_{q}", [np.nan] * (L + 1))[l],
                    "edges": edges,
                    "x": edges * (d / D) ** 2,
                    "eps": epsilon(D, T, S, d),
                    "T_graph": T,
                }
            )
    return rows


# ---- the chapter's checks and summaries: the numbers its claims test and its prose glues -----
def _exact_text(v: float) -> str:
    return f"{v:.0e}" if v > 0 else "exactly 0"


@checked
def exactness_checks(seed: int, L: int) -> dict:
    """The framework's exactness checks (generator `seed`): max_s1, the largest squared error of
    a graph network without overlap (S = 1, T = M = 40, a random graph) against its circuit
    graph; max_dense, the largest difference of the structured forward from the dense float64
    reference on a gate graph with overlaps (S = 3); rejected, the ValueError message for a
    graph whose active set can exceed z (None if it was not rejected); and "glue"."""
    g = torch.Generator().manual_seed(seed)
    gr = random_graph(40, L, 2, 15, g)
    net = GraphNetwork(gr, layer_assignments(40, 40, 1, L, g), 40)
    inp = sample_inputs(surviving_inputs(gr), 2, 32, g)
    e_s1 = graph_errors(net, inp, sample_unit_vectors((32, 2), g), theory=False)
    max_s1 = max(max(v) for k, v in e_s1.items() if k in ("active_x", "active_on", "inactive_x", "inactive_on"))
    gr = gate_graph(12, L, 2, g, and_fraction=0.5)
    net = GraphNetwork(gr, layer_assignments(36, 40, 3, L, g), 40)
    inp = sample_gate_inputs(12, 2, 16, g)
    _, a_in = layer0_states(gr, inp, sample_unit_vectors((16, 2), g), torch.float64)
    A0 = net.embed(inp, a_in)
    max_dense = max(float((flat(A) - Ad).abs().max()) for A, Ad in zip(net.forward(A0), net.forward_dense(A0)))
    rejected = None
    try:
        CircuitGraph(
            6,
            3,
            1,
            gr.layer1[:6],
            [torch.tensor([1, 2]), torch.tensor([3])],
            [torch.tensor([0, 0]), torch.tensor([1])],
            [gr.layer1[:2], gr.layer1[:1]],
        )
    except ValueError as err:
        rejected = str(err)
    glue = {"cross-max-s1": _exact_text(max_s1), "cross-max-dense": _exact_text(max_dense), "cross-rejected": rejected}
    return {"max_s1": max_s1, "max_dense": max_dense, "rejected": rejected, "glue": glue}


@checked
def gate_summary(gdf: pd.DataFrame, *, S: int, D: int, and_counts, few_collateral: float) -> dict:
    """The fan-in gate sweep at layer 2 (the gate outputs; `gdf` with its collateral column).
    Per seed and number of AND gates: flips (wrong-side rate), aon (active (1 − α̂)²) and ax
    (active |x − x̂|²), [seed × n_and]; worst (the most AND gates), small (the counts with
    0 < n·S/M ≤ few_collateral); or_ratio (min/max of measured/theory of the OR-only graph's
    active_x and inactive_on); table (the seed means, formatted) and "glue"."""
    M = D // 4
    l2 = gdf[gdf.layer == 2]
    per_seed = l2.pivot_table(index=["seed", "n_and"], columns="quantity", values="measured")
    small = [n for n in and_counts if 0 < n * S / M <= few_collateral]
    worst = max(and_counts)
    flips = per_seed.flip_rate.unstack()
    aon = per_seed.active_on.unstack()
    ax_ = per_seed.active_x.unstack()
    or_only = l2[(l2.n_and == 0) & (l2.quantity.isin(["active_x", "inactive_on"]))]
    or_ratio = or_only.assign(r=or_only.measured / or_only.theory).groupby("quantity").r.agg(["min", "max"])
    phantom = float(flips[0].max())
    glue = {
        "cross-gate-worst": f"{float(flips[worst].mean()):.4f}",
        "cross-gate-worst-coll": f"{worst * S / M:.2f}",
        "cross-gate-aon": f"{float(aon[worst].mean()):.3f}",
        "cross-or-x-hi": f"{float(or_ratio.loc['active_x', 'max']):.1f}",
        "cross-or-on-range": f"{float(or_ratio.loc['inactive_on', 'min']):.2f}–"
        f"{float(or_ratio.loc['inactive_on', 'max']):.2f}",
        "cross-or-phantom": f"{phantom:.5f}" if phantom > 0 else "0 (none in these runs)",
        "cross-few-collateral": f"{few_collateral:g}",
    }
    cols = {
        "flip_rate": "wrong-side rate",
        "active_on": "active (1−α̂)²",
        "active_x": "active |x−x̂|²",
        "inactive_on": "inactive α̂²",
        "n_active": "circuits on",
    }
    tab = l2.pivot_table(index=["n_and", "collateral"], columns="quantity", values="measured", aggfunc="mean")
    table = (
        tab[list(cols)]
        .rename(columns=cols)
        .rename_axis(index=["AND gates", "n_AND·S/M"], columns=None)
        .style.format({c: ("{:.1f}" if c == "circuits on" else "{:.1e}") for c in cols.values()})
        .format_index("{:.3f}", level=1)
        .set_caption("Layer 2 (gate outputs), mean over seeds")
    )
    return {
        "flips": flips,
        "aon": aon,
        "ax": ax_,
        "worst": worst,
        "small": small,
        "or_ratio": or_ratio,
        "table": table,
        "glue": glue,
    }


@checked
def parameter_glue(
    *,
    S: int,
    L: int,
    gate_D: int,
    gate_P: int,
    D_list,
    z_list,
    n_seeds: int,
    cap_D,
    block_D,
    k_list,
    batch_cap: int,
    n_cap_seeds: int,
) -> dict:
    """The run's parameters as text for the prose, keyed "cross-<name>" (a rerun with other
    values reads correctly)."""
    params = {
        "S": S,
        "L": L,
        "gate-D": gate_D,
        "gate-P": gate_P,
        "Ds": ", ".join(map(str, D_list)),
        "zs": ", ".join(map(str, z_list)),
        "nseeds": n_seeds,
        "cap-D": ", ".join(map(str, cap_D)),
        "block-D": ", ".join(map(str, block_D)),
        "kmin": min(k_list),
        "kmax": max(k_list),
        "kratio": max(k_list) // min(k_list),
        "batch-cap": batch_cap,
        "ncapseeds": n_cap_seeds,
    }
    return {f"cross-{key}": value for key, value in params.items()}
