"""Error-corrected on-indicators inside a circuit graph (chapter "Cross-circuit computation",
section "Wide on-indicators in a circuit graph").

The error-correction chapter's constructions (`correction.Scheme`: block groups with their own
block size M_g, redundancy S_g and assignment e^{g,l}_t, and the indicator step's dead zone)
are built there for independent circuits only. Here they host a circuit graph
(`graph.CircuitGraph`: edges (u, t), reader u reads source t with d × d weights W_{ut}, the
on-indicators of gates computed from their parents'). Between groups h → g at layer l ≥ 2

    W^l_{gh} = w̄_{gh} ⊗ 𝒲^l_{gh} + (1/S_h) Σ_{(u,t)∈ℰ^l} Δw_{ut,gh} ⊗ |e^{g,l}_u⟩⟨e^{h,l−1}_t|,

with Δw_{ut} = W_{ut} − w̄, 𝒲_{gh} = 1/S_h on the connectivity C^l_{gh} of the pairs
(e^{g,l}_u, e^{h,l−1}_t) of the edges and −χ_{gh} elsewhere. Every edge then reads exactly,
(1/S_g)⟨e^g_u| W_{gh} |a_t ⊗ e^h_t⟩ = W_{ut,gh} a_t, and χ_{gh} balances the mean weight over
every (reader, source) pair that is *not* an edge:

    Σ_{(u,t)∉ℰ^l} ⟨e^{g,l}_u|𝒲_{gh}|e^{h,l−1}_t⟩ = 0  ⟺  U/S_h = χ_{gh}(P − U),
    U = Σ_{(n,m)∈C_{gh}} E^g_n E^h_m − |ℰ^l| S_g S_h,   P = S_g S_h (T² − |ℰ^l|),

E^g = Σ_t e^{g,l}_t (`chi_edges`): `graph.balance_chi_edges` for one group (S_g = S_h = S),
`correction.general_chi` for self-edges only (|ℰ| = T). Bias shifts δb_u (AND thresholds) sit
on u's neurons of every group. Layer 1 is the layer-0 trick (`embed`), as in both parents.

The indicator step. The graph's circuits carry RiS's step: indicator rows 0 and 1 are one
linear function p = w_0·a + δb with biases (−0.5, −1.5), so α' = clip(p − ½, 0, 1) =
step(s) with s = p/2 and thresholds (¼, ¾). The dead-zone step
α' = ReLU(k(s − θ_lo)) − ReLU(k(s − θ_hi)), k = 1/(θ_hi − θ_lo), is the same circuit with
rows 0–1 and their shifts scaled by k/2 and biases (−kθ_lo, −kθ_hi) (`stepped_graph`); for a
gate, s = α_a + α_b (OR) or α_a + α_b − 1 (AND), so OR and AND stay exact with any
θ_lo < θ_hi < 1. Payload rows read only a_0 − a_1 and keep their weights.

Schemes (`graph_scheme`, from `correction.make_scheme`): baseline (RiS: one group of the four
rows, M = D/4, S = 6: the network is `graph.GraphNetwork`), sharp (E1: the same blocks, the
dead-zone step) and wide (E5: the indicator rows 0–1 in their own blocks of M_α = f·D/2
neurons with redundancy S_α, the payload rows 2–3 in blocks of (1 − f)D/2 with S = 6, the
dead-zone step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.assignment import layer_assignments
from ..core.checks import check_device, check_dtype, check_fits, check_int, check_real, check_seed, checked
from ..core.circuits import encode_input
from ..core.experiment import sample_unit_vectors
from ..core.network import connectivity, csr_users, gather_sum, scatter_sum
from ..correction.scale import family_settings
from ..correction.schemes import Scheme, make_scheme
from ..stats import t_interval
from .network import CircuitGraph, gate_graph, sample_gate_inputs

__all__ = [
    "tuned_schemes",
    "ci_text",
    "graph_correction_headline",
    "KINDS",
    "stepped_graph",
    "chi_edges",
    "graph_assignments",
    "GraphCorrectedNetwork",
    "build_graph_corrected",
    "graph_scheme",
    "sparse_truth",
    "graph_correction_run",
    "graph_correction_rows",
    "graph_correction_summary",
    "graph_tuning_grid",
    "graph_tuning_rows",
    "graph_correction_grid",
    "top_load_table",
]

KINDS = ("baseline", "sharp", "wide")


# ---- the circuits: RiS's step -> the dead-zone step ----------------------------------------
@checked
def stepped_graph(graph: CircuitGraph, theta_lo: float = 0.25, theta_hi: float = 0.75) -> CircuitGraph:
    """The same circuit graph with the indicator step ReLU(k(s−θ_lo)) − ReLU(k(s−θ_hi)),
    k = 1/(θ_hi − θ_lo) (module docstring): indicator rows 0–1 of every weight (layer 1 and
    edges), of w̄ and of the shifts scaled by k/2, indicator biases (−kθ_lo, −kθ_hi).
    (θ_lo, θ_hi) = (¼, ¾) returns the graph's own circuits. The graph must carry RiS's step:
    equal indicator rows, equal indicator shifts and biases (−0.5, −1.5)."""
    lo = check_real("theta_lo", theta_lo, 0.0, 1.0)
    hi = check_real("theta_hi", theta_hi, lo, 1.0, open_low=True)
    if tuple(graph.bias[:2]) != (-0.5, -1.5):
        raise ValueError(f"graph.bias[:2]={tuple(graph.bias[:2])}: stepped_graph needs RiS's step biases (-0.5, -1.5)")
    mats = [graph.layer1, *graph.weights, torch.as_tensor(graph.w_bar, dtype=torch.float64)]
    if any(not torch.equal(w[..., 0, :], w[..., 1, :]) for w in mats) or any(
        not torch.equal(s[:, 0], s[:, 1]) for s in graph.shifts
    ):
        raise ValueError("graph: indicator rows 0 and 1 (and their shifts) must be equal (RiS's step of one input)")
    k = 1.0 / (hi - lo)
    if (lo, hi) == (0.25, 0.75):
        return graph

    def scale(w):
        w = w.clone()
        w[..., 0:2, :] *= k / 2
        return w

    def scale_shift(s):
        s = s.clone()
        s[:, 0:2] *= k / 2
        return s

    w_bar = scale(torch.as_tensor(graph.w_bar, dtype=torch.float64))
    bias = (-k * lo, -k * hi, *graph.bias[2:])
    return CircuitGraph(
        graph.T,
        graph.L,
        graph.z,
        scale(graph.layer1),
        graph.readers,
        graph.sources,
        tuple(scale(w) for w in graph.weights),
        tuple(scale_shift(s) for s in graph.shifts),
        bias,
        tuple(tuple(float(v) for v in row) for row in w_bar),
    )


# ---- χ per group pair --------------------------------------------------------------------
@checked
def chi_edges(cur: torch.Tensor, prev: torch.Tensor, n_edges: int, M_cur: int, M_prev: int, n, m) -> float:
    """χ_{gh} with Σ_{(u,t)∉ℰ} ⟨e^g_u|𝒲_{gh}|e^h_t⟩ = 0 (module docstring): cur [T, S_g] the
    reader group's assignment at layer l, prev [T, S_h] the source group's at l − 1, (n, m)
    the connected pairs C_{gh} of the edges. U = Σ_C E^g_n E^h_m − |ℰ| S_g S_h (every edge
    connects its own S_g S_h pairs), P = S_g S_h (T² − |ℰ|): U/S_h = χ (P − U)."""
    T, Sg = cur.shape
    Sh = prev.shape[1]
    E_cur = torch.bincount(cur.reshape(-1), minlength=M_cur).double()
    E_prev = torch.bincount(prev.reshape(-1), minlength=M_prev).double()
    U = float((E_cur[n] * E_prev[m]).sum()) - n_edges * Sg * Sh
    P = float(Sg * Sh) * (T * T - n_edges)
    return U / (Sh * (P - U)) if P > U else 0.0


def _check_scheme(scheme: Scheme) -> None:
    if scheme.d != 4 or scheme.oracle or scheme.gate > 0:
        raise ValueError(
            f"scheme={scheme.name!r}: a circuit graph takes schemes of the d = 4 rows without an extra "
            "indicator pair, gate or oracle (allowed kinds: baseline, sharp, wide, independent)"
        )
    for g in scheme.groups:
        if g.lead is not None and g.shift != 0:
            raise ValueError(f"scheme={scheme.name!r}: a group may lead another only with shift = 0 (tied)")


@checked
def graph_assignments(scheme: Scheme, T: int, L: int, generator: torch.Generator, *, device="cpu") -> list:
    """Per group [L, T, S_g·copies] neuron positions, drawn exactly as `correction.CorrectedNetwork`
    draws them (one composite prime-step assignment per group, random layer permutations; a
    group with `lead` set and shift 0 takes its leader's)."""
    _check_scheme(scheme)
    T = check_int("T", T, 1, scheme.max_T)
    L = check_int("L", L, 1)
    idx = []
    for g in scheme.groups:  # copy c's own assignment shifted by c·M; static: one draw for every layer
        n_layers = 1 if g.static else L + 1
        x = torch.cat([layer_assignments(T, g.M, g.S, n_layers, generator) + c * g.M for c in range(g.copies)], dim=2)
        idx.append(x.expand(L + 1, -1, -1).contiguous() if g.static else x)
    for i, g in enumerate(scheme.groups):
        if g.lead is not None:
            idx[i] = torch.cat([idx[g.lead][g.shift :], idx[i][-1:]])[: L + 1]
    return [x[:L].to(device) for x in idx]


@dataclass(frozen=True)
class _GroupPair:
    """Edges' connection h → g at one layer: V_e = Δw_{e,gh}/S_h + c·w̄_{gh}, c = 1/S_h + χ_{gh};
    the pairs (n, m) several edges connect (counted once in C_{gh})."""

    g: int
    h: int
    chi: float
    c: float
    V: torch.Tensor  # [E, d_g, d_h]
    w_bar: torch.Tensor  # [d_g, d_h]
    excess_n: torch.Tensor
    excess_m: torch.Tensor
    excess_k: torch.Tensor


class GraphCorrectedNetwork(nn.Module):
    """The superposed network of a circuit graph on the block groups of a `Scheme` (module
    docstring), structured: per layer and group pair one bmm over edges of the sources'
    gathered readouts, one scatter onto the readers' neurons per group, the mean-weight
    corrections; never a D × D matrix, never a Python loop over circuits or edges.

    graph: a `CircuitGraph` already carrying the scheme's step (`stepped_graph`), in the
    network's dtype; idx: per group [L, T, S_g] positions (`graph_assignments`).
    Activations are a list over groups of [M_g, d_g, B] tensors.
    """

    def __init__(self, graph: CircuitGraph, scheme: Scheme, idx: list, *, device="cpu"):
        super().__init__()
        _check_scheme(scheme)
        T, L = graph.T, graph.L
        if len(idx) != len(scheme.groups):
            raise ValueError(f"idx must list one assignment per group ({len(scheme.groups)}), got {len(idx)}")
        self.graph, self.scheme, self.T, self.L, self.d = graph, scheme, T, L, graph.d
        self.groups = scheme.groups
        self.Mg = [g.M * g.copies for g in self.groups]
        self.Sg = [g.S * g.copies for g in self.groups]
        for gi, x in enumerate(idx):
            if tuple(x.shape) != (L, T, self.Sg[gi]):
                raise ValueError(f"idx[{gi}] must have shape [L={L}, T={T}, S={self.Sg[gi]}], got {tuple(x.shape)}")
        check_int("T", T, 1, scheme.max_T)
        dtype = graph.layer1.dtype
        self.idx = [x.to(device) for x in idx]
        self.rows = [torch.tensor(g.rows, device=device) for g in self.groups]
        self.w1 = graph.layer1.to(device)
        self.w_bar = torch.as_tensor(graph.w_bar, dtype=dtype, device=device)
        self.bias = torch.as_tensor(graph.bias, dtype=dtype, device=device)
        self.pairs: list[list[_GroupPair]] = [[], []]  # index l: layers 0, 1 have none
        self.users: list = [None, None]
        self.edges: list = [None, None]
        self.layer_bias: list = [None, [self.bias[r][None, :].expand(M, -1) for r, M in zip(self.rows, self.Mg)]]
        for l in range(2, L + 1):
            r, s = graph.readers[l - 2].to(device), graph.sources[l - 2].to(device)
            W = graph.weights[l - 2].to(device, dtype)
            n_e = int(r.numel())
            pairs = []
            for gi, rg in enumerate(self.rows):
                for hi, rh in enumerate(self.rows):
                    wb = self.w_bar[rg][:, rh]
                    dw = (W - self.w_bar)[:, rg][:, :, rh]  # [E, d_g, d_h]
                    if n_e == 0 or (wb.abs().sum() == 0 and dw.abs().sum() == 0):
                        continue  # h → g carries nothing at this layer (indicator rows never read the payload)
                    cur, prev = self.idx[gi][l - 1], self.idx[hi][l - 2]
                    n, m, k = connectivity(cur[r], prev[s], self.Mg[hi])
                    chi = chi_edges(cur, prev, n_e, self.Mg[gi], self.Mg[hi], n, m)
                    c = 1.0 / self.Sg[hi] + chi
                    many = k > 1
                    pairs.append(
                        _GroupPair(
                            gi, hi, chi, c, dw / self.Sg[hi] + c * wb, wb, n[many], m[many], (k[many] - 1).to(dtype)
                        )
                    )
            self.pairs.append(pairs)
            self.users.append([csr_users(self.idx[gi][l - 1][r], self.Mg[gi]) for gi in range(len(self.groups))])
            self.edges.append((r, s))
            sh = graph.shifts[l - 2].to(device, dtype)
            nz = (sh != 0).any(1).nonzero().squeeze(1)
            lb = []
            for gi, rg in enumerate(self.rows):
                b = self.bias[rg][None, :].repeat(self.Mg[gi], 1)  # b + Σ_u δb_u ⊗ e^{g,l}_u
                if nz.numel():
                    b.index_add_(
                        0, self.idx[gi][l - 1][nz].reshape(-1), sh[nz][:, rg].repeat_interleave(self.Sg[gi], 0)
                    )
                lb.append(b)
            self.layer_bias.append(lb)

    # ---- forward ------------------------------------------------------------------------
    def embed(self, active: torch.Tensor, a0: torch.Tensor) -> list[torch.Tensor]:
        """Layer-0 trick per group: A^0_g = Σ_{t active} (w^1_t a_t^0)[rows_g] ⊗ e^{g,1}_t.
        active [B, z], a0 [B, z, d] -> list of [M_g, d_g, B]."""
        B, z = active.shape
        v = torch.einsum("bkij,bkj->bki", self.w1[active], a0.to(self.w1.dtype))  # [B, z, d]
        out = []
        for gi, rg in enumerate(self.rows):
            n = self.idx[gi][0][active]  # [B, z, S_g]
            b = torch.arange(B, device=n.device)[:, None, None].expand_as(n)
            dg = rg.numel()
            A0 = torch.zeros(self.Mg[gi], B, dg, dtype=self.w1.dtype, device=n.device)
            A0.index_put_((n, b), v[:, :, rg][:, :, None, :].expand(B, z, n.shape[-1], dg), accumulate=True)
            out.append(A0.permute(0, 2, 1).contiguous())
        return out

    def layer(self, l: int, A_prev: list, G_prev: list) -> list[torch.Tensor]:
        """A^l from A^{l−1} (l ≥ 2); G_prev[h] = gather_sum(A_prev[h], idx_h^{l−1}) ([T, d_h, B]).

        Per group g: Σ_e e^g_u ⊗ Σ_h V_{e,gh} G^h_t (bmm over edges, one scatter), minus
        c_{gh}(K − C)_{gh}(w̄_{gh} A_h) on the pairs several edges connect, minus
        χ_{gh} 1 ⊗ w̄_{gh}(1ᵀA_h), plus the layer's bias (with the readers' shifts)."""
        r, s = self.edges[l]
        B = A_prev[0].shape[-1]
        Y = [None] * len(self.groups)
        for p in self.pairs[l]:
            y = torch.bmm(p.V, G_prev[p.h][s])  # [E, d_g, B]
            Y[p.g] = y if Y[p.g] is None else Y[p.g] + y
        out = []
        for gi in range(len(self.groups)):
            if Y[gi] is None:
                pre = torch.zeros(self.Mg[gi], self.rows[gi].numel(), B, dtype=A_prev[0].dtype, device=A_prev[0].device)
            else:
                users, offsets = self.users[l][gi]
                pre = scatter_sum(Y[gi], users, offsets)
            for p in self.pairs[l]:
                if p.g != gi:
                    continue
                if p.excess_n.numel():
                    U = torch.einsum("ij,njb->nib", p.w_bar, A_prev[p.h][p.excess_m])
                    pre.index_add_(0, p.excess_n, U * (-p.c * p.excess_k)[:, None, None])
                pre -= p.chi * torch.einsum("ij,jb->ib", p.w_bar, A_prev[p.h].sum(0))[None]
            out.append(torch.relu(pre + self.layer_bias[l][gi][:, :, None]))
        return out

    def layers_iter(self, A0: list):
        """Yield (l, A^l, R^l) for l = 1..L; R^l [T, d, B] every circuit's readout, row by row
        from its group: (1/S_g)⟨e^{g,l}_t|A^l_g⟩."""
        A = G = None
        for l in range(1, self.L + 1):
            if l == 1:
                A = [torch.relu(a + b[:, :, None]) for a, b in zip(A0, self.layer_bias[1])]
            else:
                A = self.layer(l, A, G)
            G = [gather_sum(a, self.idx[gi][l - 1]) for gi, a in enumerate(A)]
            R = torch.empty(self.T, self.d, A[0].shape[-1], dtype=A[0].dtype, device=A[0].device)
            for gi, g in enumerate(G):
                R[:, self.rows[gi]] = g / self.Sg[gi]
            yield l, A, R


@checked
def build_graph_corrected(
    graph: CircuitGraph, scheme: Scheme, generator: torch.Generator, *, device="cpu", dtype=torch.float32
) -> GraphCorrectedNetwork:
    """The network of `graph` on `scheme`'s groups with its step (`stepped_graph`), assignments
    drawn from `generator` (`graph_assignments`)."""
    dtype = check_dtype(dtype)
    _check_scheme(scheme)
    check_int("T", graph.T, 1, scheme.max_T)
    g = stepped_graph(graph, scheme.theta_lo, scheme.theta_hi)
    g = CircuitGraph(
        g.T,
        g.L,
        g.z,
        g.layer1.to(dtype),
        g.readers,
        g.sources,
        tuple(w.to(dtype) for w in g.weights),
        tuple(x.to(dtype) for x in g.shifts),
        g.bias,
        g.w_bar,
    )
    return GraphCorrectedNetwork(
        g, scheme, graph_assignments(scheme, graph.T, graph.L, generator, device=device), device=device
    )


@checked
def graph_scheme(kind: str, D: int, **knobs) -> Scheme:
    """`correction.make_scheme` restricted to the kinds a circuit graph takes here (`KINDS`):
    baseline (RiS), sharp (E1: knobs theta, theta_hi), wide (E5: share, S_alpha, theta)."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is out of range: allowed {KINDS}")
    return make_scheme(kind, D, **knobs)


# ---- ground truth, sparse ------------------------------------------------------------------
def sparse_truth(graph: CircuitGraph, inputs: torch.Tensor, a0: torch.Tensor):
    """The circuit graph run directly, keeping only circuits whose state is non-zero in some
    batch row: per layer l = 0..L a pair (circuits [n_l], states [n_l, d, B] float64).

    A circuit with no non-zero source stays exactly 0 when b + δb ≤ 0 on every row (checked),
    so only edges from the previous layer's listed circuits are evaluated: O(z·fan-out) per
    layer instead of O(T). inputs [B, z], a0 [B, z, d] (the layer-0 states of the inputs)."""
    B, z = inputs.shape
    b = torch.tensor(graph.bias, dtype=torch.float64)
    for l, sh in enumerate(graph.shifts, start=2):
        if (b[None, :] + sh.double()).max() > 0:
            raise ValueError(
                f"layer {l}: a bias b + δb > 0 switches circuits on without input; sparse_truth needs <= 0"
            )
    if b.max() > 0:
        raise ValueError("graph.bias must be <= 0 on every row (an input-free circuit must stay off)")
    ids = torch.unique(inputs)
    pos = torch.full((graph.T,), -1, dtype=torch.long)
    pos[ids] = torch.arange(ids.numel())
    a = torch.zeros(ids.numel(), graph.d, B, dtype=torch.float64)
    a[pos[inputs], :, torch.arange(B)[:, None].expand(B, z)] = a0.double()
    out = [(ids, a)]
    # layer 1: each circuit's own weight
    a = torch.relu(torch.bmm(graph.layer1[ids].double(), a) + b[None, :, None])
    out.append((ids, a))
    for r, s, w, sh in zip(graph.readers, graph.sources, graph.weights, graph.shifts):
        ids, a = out[-1]
        pos = torch.full((graph.T,), -1, dtype=torch.long)
        pos[ids] = torch.arange(ids.numel())
        keep = pos[s] >= 0
        r_k, s_k = r[keep], s[keep]
        new = torch.unique(r_k)
        npos = torch.full((graph.T,), -1, dtype=torch.long)
        npos[new] = torch.arange(new.numel())
        y = torch.bmm(w[keep].double(), a[pos[s_k]])
        p = torch.zeros(new.numel(), graph.d, B, dtype=torch.float64).index_add_(0, npos[r_k], y)
        out.append((new, torch.relu(p + b[None, :, None] + sh[new].double()[:, :, None])))
    return out


# ---- measurement ---------------------------------------------------------------------------
def _estimate_bytes(T: int, batch: int, D: int, E: int, itemsize: int) -> float:
    """Peak of one layer: readouts R and gathers G ([T, d, B] each), edge products [E, d, B]
    (two per group), a boolean/float copy of α̂ [T, B], activations [D, B]."""
    d = 4
    return itemsize * batch * (3 * T * d + 2 * E * d + 2 * T + 4 * D) + 8 * batch * T


@checked
def graph_correction_run(
    kind: str,
    D: int,
    P: int,
    *,
    z: int = 2,
    L: int = 4,
    and_fraction: float = 0.0,
    batch: int = 64,
    seed: int = 0,
    device="cpu",
    dtype=torch.float32,
    on_threshold: float = 0.5,
    **knobs,
) -> dict:
    """One gate graph (`graph.gate_graph`: T = 3P circuits, P fan-in gates whose on-indicators
    are computed from their parents' at layer 2, then kept by self-edges), one network of
    scheme `kind` at width D, `batch` rows of z inputs (`sample_gate_inputs`). Per-layer lists
    (index = layer):

    false_on  fraction of inactive *computed* circuits (readers of ℰ^l; every circuit at
              layer 1) whose α̂ > on_threshold — parents without readers are not counted;
    false_off fraction of active circuits with α̂ < on_threshold;
    worst_dx  max |x̂ − x| over active circuits and rows, q90_dx its 90th percentile (the
              statistics `core.criteria.works` reads); active_x ⟨|δx|²⟩ over them;
    spurious_on fraction of the indicator group's on-neurons (row 0, a_0 > 0) that no active
    circuit uses, batch-averaged (`correction.scheme_run`'s definition);
    n_active  mean number of active circuits per row.
    The same seed gives the same graph (and_fraction of the gates AND), inputs and network
    for every kind (the scheme's assignment is drawn last).
    """
    D = check_int("D", D, 16)
    P = check_int("P", P, 1)
    L = check_int("L", L, 2)
    z = check_int("z", z, 1)
    batch = check_int("batch", batch, 1)
    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    on_threshold = check_real("on_threshold", on_threshold, 0.0, 1.0)
    scheme = graph_scheme(kind, D, **knobs)
    T = 3 * P
    if T > scheme.max_T:
        raise ValueError(
            f"P={P} is out of range for {scheme.label} at D={D}: allowed 3P <= {scheme.max_T} "
            "(the scheme's assignment capacity)"
        )
    itemsize = torch.finfo(dtype).bits // 8
    check_fits(
        f"the gate graph's network at width {D}",
        lambda D, P, batch: _estimate_bytes(3 * P, batch, D, 2 * P, itemsize),
        {"D": D, "P": P, "batch": batch},
        {"D": 16, "P": 1, "batch": 1},
        check_device(device),
    )
    g = torch.Generator().manual_seed(seed)
    graph = gate_graph(P, L, z, g, and_fraction=and_fraction, dtype=torch.float64)
    inputs = sample_gate_inputs(P, z, batch, g)

    x0 = sample_unit_vectors((batch, z), g)
    net = build_graph_corrected(graph, scheme, g, device=device, dtype=dtype)
    a0 = encode_input(torch.ones(batch, z, dtype=torch.float64), x0)
    # the ground truth of the scheme's own (stepped) circuits, in float64
    truth = sparse_truth(stepped_graph(graph, scheme.theta_lo, scheme.theta_hi), inputs, a0)
    keys = ("false_on", "false_off", "worst_dx", "q90_dx", "active_x", "spurious_on", "n_active")
    res = {k: [0.0] * (L + 1) for k in keys}
    ind = next(i for i, gr in enumerate(net.groups) if 0 in gr.rows)
    row0 = list(net.groups[ind].rows).index(0)
    computed = torch.ones(T, dtype=torch.bool)
    for l, A, R in net.layers_iter(net.embed(inputs.to(device), a0.to(device, dtype))):
        ids, a = truth[l]
        t_alpha = a[:, 0] - a[:, 1]  # [n, B]
        t_x = a[:, 2:4] - t_alpha[:, None]
        act = t_alpha > 0.5
        alpha = (R[:, 0] - R[:, 1]).cpu()  # [T, B]
        Rl = R[ids.to(R.device)].double().cpu()
        a_hat = Rl[:, 0] - Rl[:, 1]
        x_hat = Rl[:, 2:4] - a_hat[:, None]
        dx2 = ((x_hat - t_x) ** 2).sum(1)  # [n, B]
        n_act = int(act.sum())
        res["n_active"][l] = n_act / batch
        res["worst_dx"][l] = float(dx2[act].max().sqrt()) if n_act else float("nan")
        res["q90_dx"][l] = float(torch.quantile(dx2[act].sqrt(), 0.9)) if n_act else float("nan")
        res["active_x"][l] = float(dx2[act].mean()) if n_act else float("nan")
        res["false_off"][l] = float((a_hat[act] < on_threshold).double().mean()) if n_act else float("nan")
        if l >= 2:
            computed = torch.zeros(T, dtype=torch.bool)
            computed[net.graph.readers[l - 2]] = True
        inactive = computed[:, None].expand(T, batch).clone()
        inactive[ids] &= ~act  # active (circuit, row) pairs leave the inactive set
        res["false_on"][l] = float(((alpha > on_threshold) & inactive).sum()) / float(inactive.sum())
        # neuron level: indicator neurons on while no active circuit uses them
        Mi = net.Mg[ind]
        used = torch.zeros(Mi, batch, dtype=torch.bool)
        ci, bi = act.nonzero(as_tuple=True)
        if ci.numel():
            nn_ = net.idx[ind][l - 1].cpu()[ids[ci]]  # [k, S]
            used[nn_, bi[:, None].expand_as(nn_)] = True
        on = A[ind][:, row0, :].cpu() > 0
        res["spurious_on"][l] = float((on & ~used).sum()) / (Mi * batch)
    res.update(T=T, label=scheme.label, max_T=scheme.max_T)
    return res


@checked
def graph_correction_rows(
    kind: str,
    D: int,
    P: int,
    *,
    name: str | None = None,
    z: int = 2,
    L: int = 4,
    and_fraction: float = 0.0,
    batch: int = 64,
    seed: int = 0,
    device="cpu",
    **knobs,
) -> list[dict]:
    """`graph_correction_run` as tidy rows for `sweep`: one row per layer l = 1..L with the
    quantities as columns (name: the scheme's short name, a column of the sweep's grid; not
    used here), plus T = 3P, the control parameter T(d/D)², |ℰ^L|(d/D)² and the
    scheme's label."""
    res = graph_correction_run(
        kind, D, P, z=z, L=L, and_fraction=and_fraction, batch=batch, seed=seed, device=device, **knobs
    )
    T = res["T"]
    meta = {"T": T, "x": T * (4 / D) ** 2, "x_edges": P * (4 / D) ** 2, "label": res["label"]}
    keys = ("false_on", "false_off", "worst_dx", "q90_dx", "active_x", "spurious_on", "n_active")
    return [{"layer": l, **meta, **{k: res[k][l] for k in keys}} for l in range(1, L + 1)]


@checked
def graph_correction_summary(df, quantity: str, *, layer: int | None = None, by=("name", "D", "z", "P")):
    """Mean of `quantity` over seeds with its 95% t-interval (`correction.scale.t_interval`)
    at one layer (default: the last), per configuration: columns of `by`, T, x, n, mean,
    low, high."""

    layer = int(df["layer"].max()) if layer is None else check_int("layer", layer, 1)
    d = df[df["layer"] == layer]
    rows = []
    for key, grp in d.groupby(list(by), sort=False):
        m, lo, hi = t_interval(grp[quantity])
        rows.append(
            {
                **dict(zip(by, key)),
                "T": int(grp["T"].iloc[0]),
                "x": float(grp["x"].iloc[0]),
                "n": len(grp),
                "mean": m,
                "low": lo,
                "high": hi,
            }
        )
    return pd.DataFrame(rows)


# ---- tuning, grids and the comparison at the top load ----------------------------------------
def _P_of(x: float, D: int) -> int:
    """Gates P with T = 3P ≈ x·(D/d)² circuits (d = 4)."""
    return max(1, int(round(x * (D / 4) ** 2 / 3)))


@checked
def graph_tuning_grid(D_list, *, z: int, L: int, x: float, batch: int, families=("E1", "E5")) -> list[dict]:
    """Tuning probes for `graph_tuning_rows`: every setting of `correction.scale.family_settings`
    of each family at each D, at load T(d/D)² = x (P = T/3 gates)."""

    x = check_real("x", x, 0.0, 1.0, open_low=True)
    return [
        {"family": fam, "D": int(D), "z": int(z), "L": int(L), "x": x, "batch": int(batch), **s}
        for D in D_list
        for fam in families
        for s in family_settings(fam, int(D))
    ]


@checked
def graph_tuning_rows(
    family: str,
    setting: str,
    kind: str,
    D: int,
    z: int,
    L: int,
    seed: int,
    *,
    x: float,
    batch: int = 32,
    device="cpu",
    **knobs,
) -> list[dict]:
    """One tuning probe in the gate graph (`correction.scale.tuning_rows`' columns, for
    `correction.scale.best_settings`): layer-L worst active |δx|, false-on and false-off
    rates at P = x·(D/4)²/3 gates; a setting whose assignment cannot hold 3P circuits is
    not built (worst_dx = inf, rates 1)."""
    P = _P_of(x, D)
    if 3 * P > graph_scheme(kind, D, **knobs).max_T:
        return [{"worst_dx": float("inf"), "false_on": 1.0, "false_off": 1.0, "built": False}]
    r = graph_correction_run(kind, D, P, z=z, L=L, batch=batch, seed=seed, device=device, **knobs)
    return [{"worst_dx": r["worst_dx"][L], "false_on": r["false_on"][L], "false_off": r["false_off"][L], "built": True}]


@checked
def graph_correction_grid(schemes: dict, D_list, z_list, x_grid, *, L: int, batch: int) -> list[dict]:
    """Configurations for `graph_correction_rows`: every scheme (name -> {D: graph_scheme
    kwargs with "kind"}, or one kwargs dict for every D) × D × z × load x, with P gates,
    T = 3P ≈ x·(D/d)², skipping loads the scheme's assignment cannot hold."""
    grid = []
    for name, spec in schemes.items():
        for D in D_list:
            kw = dict(spec.get(D, spec) if isinstance(next(iter(spec), None), int) else spec)
            kind = kw.pop("kind")
            cap = graph_scheme(kind, int(D), **kw).max_T
            for z in z_list:
                for x in x_grid:
                    P = _P_of(x, D)
                    if 3 * P <= cap and z <= P:
                        grid.append(
                            {
                                "name": name,
                                "kind": kind,
                                "D": int(D),
                                "P": P,
                                "z": int(z),
                                "L": int(L),
                                "batch": int(batch),
                                **kw,
                            }
                        )
    return grid


@checked
def top_load_table(df, *, on_rate: float = 1e-3, layer: int | None = None, schemes=("baseline", "E1", "E5")):
    """Per (D, z): the largest P that every scheme in `schemes` was run at, and there each
    scheme's last-layer false-on rate and worst active |δx| (means over seeds with 95%
    t-intervals), whether the scheme fails the indicator budget (mean false-on > on_rate),
    and for E5 against E1 the ratio of mean false-on rates and whether E5 is below E1 in
    every seed (paired by seed: the same graph and inputs)."""

    layer = int(df["layer"].max()) if layer is None else layer
    d = df[(df["layer"] == layer) & df["name"].isin(list(schemes))]
    rows = []
    for (D, z), g in d.groupby(["D", "z"], sort=True):
        common = set.intersection(*[set(g[g["name"] == n]["P"]) for n in schemes])
        if not common:
            continue
        P = max(common)
        h = g[g["P"] == P]
        row = {"D": int(D), "z": int(z), "P": int(P), "T": int(3 * P), "x": float(h["x"].iloc[0])}
        for n in schemes:
            hn = h[h["name"] == n].sort_values("seed")
            for q in ("false_on", "worst_dx"):
                m, lo, hi = t_interval(hn[q])
                row.update({f"{n}_{q}": m, f"{n}_{q}_lo": lo, f"{n}_{q}_hi": hi})
            row[f"{n}_fails"] = bool(row[f"{n}_false_on"] > on_rate)
            row[f"{n}_seeds"] = len(hn)
        if "E1" in schemes and "E5" in schemes:
            e1 = h[h["name"] == "E1"].set_index("seed")["false_on"]
            e5 = h[h["name"] == "E5"].set_index("seed")["false_on"]
            both = e1.index.intersection(e5.index)
            row["E5_below_E1_every_seed"] = bool((e5[both] < e1[both]).all()) and len(both) > 0
            row["E1_over_E5"] = row["E1_false_on"] / row["E5_false_on"] if row["E5_false_on"] > 0 else float("inf")
        rows.append(row)
    return pd.DataFrame(rows)


def tuned_schemes(best, D_list, families=("E1", "E5")) -> tuple[dict, dict]:
    """The tuned settings and the schemes to run (`best`: `correction.best_settings` rows).
    Returns settings {family: {D: the `family_settings` entry picked for D}} and schemes
    {"baseline": {"kind": "baseline"}, family: {D: its knobs (the entry without "setting")}}."""
    settings = {
        fam: {
            D: s
            for D in D_list
            for s in family_settings(fam, D)
            if s["setting"] == best[(best.family == fam) & (best.D == D)].setting.iloc[0]
        }
        for fam in families
    }
    schemes = {"baseline": {"kind": "baseline"}}
    schemes.update(
        {
            fam: {D: {k: v for k, v in s.items() if k != "setting"} for D, s in by_D.items()}
            for fam, by_D in settings.items()
        }
    )
    return settings, schemes


def _num(v) -> str:
    return "0" if v == 0 else f"{v:.0f}" if abs(v) >= 10 else f"{v:.2f}" if abs(v) >= 0.01 else f"{v:.1e}"


def ci_text(m, lo, hi) -> str:
    """A mean with its interval as text, "m [lo, hi]" (lo clipped at 0), or "0 (in every seed)"."""
    if m == 0 and hi == 0:
        return "0 (in every seed)"
    return f"{_num(m)} [{_num(max(lo, 0.0))}, {_num(hi)}]"


@checked
def graph_correction_headline(
    top,
    df,
    settings,
    *,
    L: int,
    on_rate: float,
    x_tune: float,
    D_list,
    z_list,
    x_grid,
    n_seeds: int,
    batch: int,
    schemes=("baseline", "E1", "E5"),
) -> dict:
    """The wide-indicator section's numbers at the largest D (`top`: `top_load_table`; `df`:
    the `graph_correction_rows`; `settings`: from `tuned_schemes`). Returns Dmax, hard (the
    `top` rows where E1 fails the budget), the table of `top` formatted for the page (styled)
    and "glue": false-on rates and worst |δx| per z with intervals, E1/E5 ratios (over 10³
    written as a bound), the loads, the worst |δx| of E1 and E5 at the lightest load, where
    E1 fails, where E5 holds or fails, the tuned settings and the run's parameters."""
    Dmax = max(D_list)
    big = top[top.D == Dmax].set_index("z")
    fo, dx, ratios, loads = [], [], [], []
    for zz, r in big.iterrows():
        ci = {
            (n, q): ci_text(r[f"{n}_{q}"], r[f"{n}_{q}_lo"], r[f"{n}_{q}_hi"])
            for n in schemes
            for q in ("false_on", "worst_dx")
        }
        fo.append(
            f"z = {zz}: baseline {ci['baseline', 'false_on']}, E1 {ci['E1', 'false_on']}, E5 {ci['E5', 'false_on']}"
        )
        dx.append(
            f"z = {zz}: baseline {ci['baseline', 'worst_dx']}, E1 {ci['E1', 'worst_dx']}, E5 {ci['E5', 'worst_dx']}"
        )
        ratio = r["E1_over_E5"]
        # E5's rate is a handful of events among ~10⁶ readouts where it is tiny: a ratio beyond 10³ is
        # written as a bound, not as a measured number
        ratios.append(
            f"z = {zz}: "
            + (
                "unbounded (E5 had no false activation)"
                if not np.isfinite(ratio)
                else "over 1,000×"
                if ratio > 1000
                else f"{ratio:,.0f}×"
            )
        )
        loads.append(f"T = {int(r['T']):,}, T(d/D)² = {r['x']:.4f}")
    # the lightest load, where nothing seizes: what the narrower payload blocks cost
    light = []
    for zz in z_list:
        d = df[(df.D == Dmax) & (df.z == zz) & (df.layer == L)]
        d = d[d.P == d.P.min()]
        parts = []
        for n in ("E1", "E5"):
            m, lo, hi = t_interval(d[d.name == n].worst_dx)
            parts.append(f"{n} {ci_text(m, lo, hi)}")
        light.append(f"z = {zz}, T(d/D)² = {float(d.x.iloc[0]):.4f}: " + ", ".join(parts))
    hard = top[top.E1_fails]
    e5_ok = [f"D = {int(r.D)}, z = {int(r.z)}" for r in top.itertuples() if not r.E5_fails]
    e5_bad = [f"D = {int(r.D)}, z = {int(r.z)}" for r in top.itertuples() if r.E5_fails]
    glue = {
        "cross-gw-fo": "; ".join(fo),
        "cross-gw-dx": "; ".join(dx),
        "cross-gw-ratio": "; ".join(ratios),
        "cross-gw-load": " and ".join(sorted(set(loads))),
        "cross-gw-light": "; ".join(light),
        "cross-gw-hard": "; ".join(f"D = {int(r.D)}, z = {int(r.z)}" for r in hard.itertuples()),
        "cross-gw-e5ok": "; ".join(e5_ok) if e5_ok else "none of the configurations",
        "cross-gw-e5bad": "; ".join(e5_bad) if e5_bad else "none",
        "cross-gw-E5": settings["E5"][Dmax]["setting"],
        "cross-gw-E1": settings["E1"][Dmax]["setting"],
        "cross-gw-Dmax": f"{Dmax:,}",
    }
    for key, value in {
        "xtune": f"{x_tune:g}",
        "Ds": ", ".join(f"{D:,}" for D in D_list),
        "zs": ", ".join(map(str, z_list)),
        "xs": ", ".join(f"{x:g}" for x in x_grid),
        "nseeds": n_seeds,
        "batch": batch,
        "onrate": f"{on_rate:g}",
    }.items():
        glue[f"cross-gw-{key}"] = value
    styled = (
        top[["D", "z", "T", "x"] + [f"{n}_{q}" for q in ("false_on", "worst_dx") for n in schemes]]
        .rename(columns=lambda c: c.replace("_false_on", " false-on").replace("_worst_dx", " worst |δx|"))
        .style.hide(axis="index")
        .format(precision=3)
        .format({"T": "{:,d}", "x": "{:.4f}"})
        .set_caption("Largest load every scheme holds: last-layer means over seeds")
    )
    return {"Dmax": Dmax, "hard": hard, "styled": styled, "glue": glue}
