"""Build a network from a seed and measure its errors (RiS Figures 8–11 quantities).

Device and dtype are decided here, at the entry point, and flow with the tensors.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import torch

from .assignment import assignment_bytes, layer_assignments
from .checks import L_MAX, check_d, check_device, check_dtype, check_fits, check_int, check_seed, checked
from .circuits import (
    BIAS,
    MEAN_WEIGHT,
    decode,
    encode_input,
    rotation_weights,
    run_circuits,
    sample_thetas,
    scheme_weights,
)
from .config import CiSConfig
from .criteria import ON_THRESHOLD
from .network import SuperposedNetwork, gather_sum
from .theory import rotation_theory

__all__ = [
    "seeded_experiment",
    "build_network",
    "sample_active",
    "sample_unit_vectors",
    "RotationRun",
    "rotation_run",
    "rotation_errors",
    "batch_chunk",
    "experiment_bytes",
    "network_bytes",
    "check_experiment_fits",
    "rotation_per_circuit",
    "rotation_error_rows",
    "rotation_rows",
    "balance_chi_dense",
    "with_chi",
    "shared_neurons",
    "spurious_on_count",
    "oracle_layers",
    "variant_experiment",
]


@checked
def build_network(cfg: CiSConfig, generator: torch.Generator, *, device="cpu", dtype=torch.float32):
    """Random rotation circuits (θ_t ~ U[0, 2π)) and their superposed network.

    Draws, in order, the T angles and the L layer permutations from `generator`.
    Returns (net, theta).
    """
    dtype = check_dtype(dtype)
    dev = check_device(device)
    itemsize = torch.empty((), dtype=dtype).element_size()
    check_fits(
        "the network",
        lambda D, T: network_bytes(D, T, cfg.S, cfg.L, cfg.d, itemsize=itemsize),
        {"D": cfg.D, "T": cfg.T},
        {"D": cfg.d, "T": 1},
        dev,
    )
    theta = sample_thetas(cfg.T, generator)
    w = rotation_weights(theta).to(dtype)
    idx = layer_assignments(cfg.T, cfg.M, cfg.S, cfg.L, generator, device=device)
    net = SuperposedNetwork(w.to(device), idx, cfg.M, MEAN_WEIGHT, BIAS)
    return net, theta


@checked
def sample_active(T: int, z: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """z distinct circuits per batch row, uniformly: LongTensor [batch, z]."""
    z = check_int("z", z, 1, T)
    check_fits(
        "the active sets",
        lambda T, batch: 12 * batch * T if T <= 64 * z else 40 * batch * z,
        {"T": T, "batch": batch},
        {"T": z, "batch": 1},
        "cpu",
    )
    if T <= 64 * z:  # few circuits: a random permutation per row
        return torch.rand(batch, T, generator=generator).argsort(dim=1)[:, :z]
    active = torch.randint(T, (batch, z), generator=generator)
    while True:  # redraw rows with a repeated circuit (rare when T ≫ z)
        s = active.sort(dim=1).values
        bad = (s[:, 1:] == s[:, :-1]).any(dim=1)
        if not bad.any():
            return active
        active[bad] = torch.randint(T, (int(bad.sum()), z), generator=generator)


@checked
def sample_unit_vectors(shape, generator: torch.Generator) -> torch.Tensor:
    """x on the unit circle (|x| = 1, as in RiS's code), shape [*shape, 2], float64."""
    phi = 2 * math.pi * torch.rand(*shape, generator=generator, dtype=torch.float64)
    return torch.stack([torch.cos(phi), torch.sin(phi)], dim=-1)


@dataclass
class RotationRun:
    """One batch through a network: per layer sums of squared errors (float64), and of the
    spurious-on fractions (key spurious_on, summed over batch rows; count = batch).

    per_sample (only with `rotation_run(..., per_sample=True)`): float64 tensors indexed
    [..., layer] (index 0 = input, left 0):
    err_x [B, z, L+1] |δx|² of every active circuit; err_on [B, z, L+1] (1 − α̂)²;
    on [B, L+1] neurons with A > 0; explained [B, L+1] d·|∪_{t active} e_t^l|, the neurons
    the active circuits use; outside [B, L+1] switched-on neurons outside that union;
    phantoms [B, L+1] inactive circuits whose on-indicator readout α̂ > 0.25 (it passes
    the step).
    """

    sums: dict
    counts: dict
    per_sample: dict | None = None
    #: per layer: the active circuits' |δx| [B·z] (float64), and counts of readouts on the
    #: wrong side of ON_THRESHOLD: inactive circuits read as on, active ones read as off
    dx: list | None = None
    wrong: dict | None = None

    def mse(self) -> dict:
        """RiS's four mean errors and the spurious-on fraction, per layer."""
        return {k: [s / self.counts[k] for s in v] for k, v in self.sums.items()}

    def stats(self) -> dict:
        """`mse()` plus what `criteria.works` reads: false_on / false_off (the fractions of
        inactive / active circuits whose α̂ is on the wrong side of ON_THRESHOLD), q90_dx and
        worst_dx (the 90th percentile and the maximum of the active circuits' |δx|)."""
        out = self.mse()
        L = len(self.dx) - 1
        out["false_on"] = [w / self.counts["inactive_on"] for w in self.wrong["false_on"]]
        out["false_off"] = [w / self.counts["active_on"] for w in self.wrong["false_off"]]
        out["q90_dx"] = [0.0] + [float(torch.quantile(self.dx[l], 0.9)) for l in range(1, L + 1)]
        out["worst_dx"] = [0.0] + [float(self.dx[l].max()) for l in range(1, L + 1)]
        return out


@checked
def batch_chunk(T: int, d: int, batch: int, budget_bytes: float | None = None, itemsize: int = 4, device="cpu") -> int:
    """Batch rows per chunk so each [T, d, b] work tensor stays within ~`budget_bytes`.

    The forward pass holds about three of them at once (G^{l−1}, V·G, G^l). On the CPU the
    budget is 256 MiB (the fastest of 128 MiB–1 GiB in `bench/bench.py`'s large workload,
    which it keeps near 1 GiB); at the RiS sizes a batch of 500 is one chunk. On CUDA: an
    eighth of the free memory.
    """
    if budget_bytes is None:
        budget_bytes = 2**28
        if str(device).startswith("cuda"):
            budget_bytes = torch.cuda.mem_get_info(torch.device(device))[0] / 8
    return max(1, min(batch, int(budget_bytes // (T * d * itemsize))))


@checked
def experiment_bytes(cfg: CiSConfig, batch: int, *, itemsize: int = 4, per_circuit: bool = False) -> int:
    """Estimated peak memory of `seeded_experiment` + `rotation_run` (bytes), for refusing
    sizes that cannot fit before allocating anything (`network_bytes` + `_run_bytes`).

    Network: `network_bytes`; inputs: batch·z active indices (8 B) and unit vectors (16 B),
    and the batch × T random keys when circuits are few (T ≤ 64z: 12 B each); work: three
    [T, d, chunk] tensors and four [D, chunk] activations, chunk = `batch_chunk`'s rows
    (each [T, d, chunk] within 2²⁸ B, at least one row). per_circuit (`rotation_per_circuit`):
    2·(L+1)·batch·T float64 errors and the T·d·batch float64 readouts of one layer.
    """
    return int(
        network_bytes(cfg.D, cfg.T, cfg.S, cfg.L, cfg.d, itemsize=itemsize)
        + _run_bytes(cfg.D, cfg.T, cfg.z, cfg.L, cfg.d, batch, itemsize, per_circuit)
    )


@checked
def network_bytes(D: int, T: int, S: int, L: int, d: int = 4, *, itemsize: int = 4) -> int:
    """Estimated peak memory of building a `SuperposedNetwork` (bytes): the prime-step
    assignment (`assignment.assignment_bytes`), per layer the T·S² sorted pair keys (8 B,
    plus the sort's copy) and the O(T·S) index lists kept, and the T circuits' d × d
    weights. A closed form of the sizes: evaluated before anything is allocated."""
    return int(
        assignment_bytes(T, D // d, S, L) + 16 * T * S * S + 24 * L * T * S + 8 * D + 3 * T * d * d * max(itemsize, 8)
    )


def _run_bytes(D, T, z, L, d, batch, itemsize, per_circuit=False) -> int:
    inputs = batch * z * 40 + (12 * batch * T if T <= 64 * z else 0)
    rows = max(1, min(batch, 2**28 // (T * d * itemsize)))  # batch_chunk's rows per chunk (CPU budget)
    # G^{l-1}, V·G, G^l; A^{l-1}, A^l, the embedding's A^0 and the [M, chunk] masks; the truth (float64)
    work = ((3 * T * d + 4 * D) * itemsize + (L + 1) * z * d * 8 * 2) * rows
    extra = 2 * (L + 1) * batch * T * 8 + 3 * T * d * batch * 8 if per_circuit else 0
    return int(inputs + work + extra)


@checked
def check_experiment_fits(
    D: int,
    T: int,
    S: int,
    L: int,
    z: int,
    d: int,
    batch: int,
    itemsize: int,
    device,
    *,
    per_circuit: bool = False,
    what: str = "the network and one batch",
) -> None:
    """Refuse (`checks.check_fits`), before anything is allocated, sizes whose network and
    batch do not fit in the memory left on `device`, naming D, T or batch: whichever makes
    the size."""

    def estimate(D, T, batch):
        return network_bytes(D, T, S, L, d, itemsize=itemsize) + _run_bytes(D, T, z, L, d, batch, itemsize, per_circuit)

    check_fits(what, estimate, {"D": D, "T": T, "batch": batch}, {"D": d, "T": 1, "batch": 1}, device)


def spurious_on_count(A: torch.Tensor, idx_l: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Spurious on-indicator neurons per batch row: #{n : A[n, 0, b] > 0, n ∉ ∪_{t ∈ active[b]} e_t^l}.

    A [M, d, B] the layer-l activations (block 0 holds the first on-indicator row,
    a_0 = ReLU(2α − 0.5), on exactly when its circuit-level step passes), idx_l [T, S]
    the layer's e_t^l, active [B, z]. Returns a LongTensor [B]. Vectorised: one scatter of
    the B·z·S used positions into a [M, B] mask (never a loop over circuits).
    """
    M, _, B = A.shape
    z = active.shape[1]
    used = torch.zeros(M, B, dtype=torch.bool, device=A.device)
    cols = torch.arange(B, device=A.device)[:, None].expand(B, z * idx_l.shape[1])
    used[idx_l[active].reshape(B, -1), cols] = True
    return ((A[:, 0, :] > 0) & ~used).sum(0)


def _decode_matrix(d: int, dtype=torch.float64) -> torch.Tensor:
    """`decode` is linear: the rows of this [3, d] matrix give α, x0, x1 from a readout."""
    alpha, x = decode(torch.eye(d, dtype=dtype))
    return torch.stack([alpha, x[:, 0], x[:, 1]])


def oracle_layers(net: SuperposedNetwork, A0: torch.Tensor, active: torch.Tensor):
    """`net.layers_iter` with every neuron no active circuit uses switched off after each
    layer (the oracle bound of chapter "Error correction", `correction` scheme "oracle",
    on the structured RiS network): yields (l, A^l, G^l), A^l masked, G^l its gathers."""
    B, z = active.shape
    cols = torch.arange(B, device=A0.device)[:, None].expand(B, z * net.S)
    A, G, work = A0, None, None
    for l in range(1, net.L + 1):
        if l >= 2 and work is None:
            work = torch.empty_like(G)
        A = net.layer(l, A, G, work=work)
        keep = torch.zeros(net.M, B, dtype=A.dtype, device=A.device)
        keep[net.idx[l - 1][active].reshape(B, -1), cols] = 1
        A.mul_(keep[:, None, :])
        G = gather_sum(A, net.idx[l - 1])
        yield l, A, G


def rotation_run(
    net: SuperposedNetwork,
    active: torch.Tensor,
    x0: torch.Tensor,
    *,
    chunk=None,
    per_sample: bool = False,
    oracle: bool = False,
) -> RotationRun:
    """Run `net` on active sets `active` [B, z] with inputs x0 [B, z, 2] and accumulate the
    per-layer squared errors of every circuit (active vs the small circuits' truth;
    inactive against 0).

    The active circuits' readouts (B·z of them) are decoded in float64. The inactive sums
    Σ α̂², Σ |x̂|² over the T·B readouts are quadratic forms of the per-circuit Gram
    matrices G_t G_tᵀ (one bmm pass over G in the network's dtype, summed over circuits
    in float64), with the active entries zeroed first so they do not cancel against the
    inactive ones: one pass over G instead of decoding all T·B readouts in float64, with
    sums that agree with that decoding to rounding (float32: ~1e-8 relative). Chunking the
    batch changes only the order of the float64 summation.

    per_sample=True also keeps each active circuit's errors and each sample's switched-on
    neuron counts (`RotationRun.per_sample`); the sums are the same either way.
    oracle=True runs `oracle_layers` (unused neurons switched off after every layer).
    """
    T, L, d, S = net.T, net.L, net.d, net.S
    dtype, device = net.w.dtype, net.idx.device
    B, z = active.shape
    keys = ("active_x", "inactive_x", "active_on", "inactive_on", "spurious_on")
    sums = {k: [0.0] * (L + 1) for k in keys}
    wrong = {k: [0] * (L + 1) for k in ("false_on", "false_off")}
    dx = [[torch.zeros(0, dtype=torch.float64)] for _ in range(L + 1)]
    chunk = chunk or batch_chunk(T, d, B, itemsize=net.w.element_size(), device=device)
    dec = _decode_matrix(d).to(device) / S  # readout â = G / S
    ps = None
    if per_sample:
        ps = {k: torch.zeros(B, z, L + 1, dtype=torch.float64) for k in ("err_x", "err_on")}
        ps |= {k: torch.zeros(B, L + 1, dtype=torch.float64) for k in ("on", "explained", "outside", "phantoms")}
    for lo in range(0, B, chunk):
        act = active[lo : lo + chunk].to(device)
        b = act.shape[0]
        a0 = encode_input(torch.ones(b, z, dtype=torch.float64), x0[lo : lo + chunk]).to(device)
        truth = run_circuits(net.w[act].double(), a0.double(), L, net.bias.double())  # [L+1, b, z, d]
        cols = torch.arange(b, device=device)[:, None].expand(b, z)
        A0 = net.embed(act, a0.to(dtype))
        layers = oracle_layers(net, A0, act) if oracle else net.layers_iter(A0)
        for l, A, G in layers:
            g_act = G[act, :, cols]  # the active circuits' gathers [b, z, d]
            a_alpha, a_x = decode(g_act.double() / S)
            t_alpha, t_x = decode(truth[l])
            sums["active_x"][l] += float(((a_x - t_x) ** 2).sum())
            sums["active_on"][l] += float(((a_alpha - t_alpha) ** 2).sum())
            dx[l].append(((a_x - t_x) ** 2).sum(-1).sqrt().flatten().cpu())
            wrong["false_off"][l] += int((a_alpha < ON_THRESHOLD).sum())
            G[act, :, cols] = 0  # inactive circuits only; restored below (G feeds layer l+1)
            # α̂ = (G_0 − G_1)/S over every circuit; the zeroed active entries pass no threshold
            wrong["false_on"][l] += int(((G[:, 0] - G[:, 1]) > ON_THRESHOLD * S).sum())
            gram = torch.bmm(G, G.mT).sum(0, dtype=torch.float64)  # Σ_{t,b} G G^T  [d, d]
            G[act, :, cols] = g_act
            sq = torch.einsum("ki,ij,kj->k", dec, gram, dec)  # Σ α̂², Σ x̂0², Σ x̂1²
            sums["inactive_on"][l] += float(sq[0])
            sums["inactive_x"][l] += float(sq[1] + sq[2])
            sums["spurious_on"][l] += float(spurious_on_count(A, net.idx[l - 1], act).sum()) / net.M
            if ps is not None:
                hi = lo + b
                alpha = (G[:, 0] - G[:, 1]).double() / S  # every circuit's α̂ [T, b] (G restored above)
                ps["err_x"][lo:hi, :, l] = ((a_x - t_x) ** 2).sum(-1).cpu()
                ps["err_on"][lo:hi, :, l] = ((a_alpha - t_alpha) ** 2).cpu()
                ps["phantoms"][lo:hi, l] = ((alpha > 0.25).sum(0) - (a_alpha > 0.25).sum(1)).double().cpu()
                # Neurons the active circuits use at layer l: the union of their e_t^l (per block).
                used = torch.zeros(net.M, b, dtype=torch.bool, device=device)
                used[net.idx[l - 1][act].reshape(b, -1), cols[:, :1].expand(b, z * net.S)] = True
                on = A > 0  # [M, d, b]
                ps["on"][lo:hi, l] = on.sum((0, 1)).double().cpu()
                ps["explained"][lo:hi, l] = (d * used.sum(0)).double().cpu()
                ps["outside"][lo:hi, l] = (on & ~used[:, None, :]).sum((0, 1)).double().cpu()
    n_act, n_inact = B * z, B * (T - z)
    counts = {
        "active_x": n_act,
        "active_on": n_act,
        "inactive_x": max(n_inact, 1),
        "inactive_on": max(n_inact, 1),
        "spurious_on": B,
    }
    return RotationRun(sums, counts, ps, [torch.cat(v) for v in dx], wrong)


@checked
def rotation_errors(D, T, *, S=6, L=4, z=1, batch=500, seed=0, device="cpu", dtype=torch.float32, d=4) -> dict:
    """Per-layer statistics of a fresh network (index = layer, 0 = input): RiS Figures
    8–11's MSEs, the spurious-on fraction, and the rates and quantiles that `works` reads.

    Keys: active_x ⟨|x − x̂|²⟩ (summed over both components), inactive_x ⟨|x̂|²⟩,
    active_on ⟨(1 − α̂)²⟩, inactive_on ⟨α̂²⟩; averaged over the batch and the active (or all
    inactive) circuits. spurious_on: the fraction of block-0 on-indicator neurons that are
    on (A^l_{0,n} > 0) while used by no active circuit (n ∉ ∪_{t active} e_t^l), as a
    fraction of the block's M = D/d neurons, averaged over the batch (`spurious_on_count`;
    layer 0 is 0: the input has no neurons outside the active circuits). Active sets are
    z distinct circuits drawn uniformly; x is on the unit circle. The same seed gives the
    same numbers. false_on / false_off: the fractions of inactive / active circuits whose
    α̂ is above / below ON_THRESHOLD = 1/2; q90_dx, worst_dx: the 90th percentile and the
    maximum of |δx| over the active circuits (the keys of `correction.scheme_run`).
    """
    net, active, x0 = seeded_experiment(D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device, dtype=dtype, d=d)
    return rotation_run(net, active, x0).stats()


def _check_experiment(D, T, d, S, L, z, batch, seed, device, dtype, *, per_circuit=False):
    """Validate every argument of a seeded measurement up front (sizes, d = 4, seed, device,
    dtype), cheapest first: the sizes' own ranges, then whether the network and the batch
    fit in memory (`check_experiment_fits`, naming D, T or batch), then the assignment's
    capacity (`CiSConfig`: a count over its O(M/S) steps, only for sizes that fit)."""
    d = check_d(d)
    D, T, S = check_int("D", D, d), check_int("T", T, 1), check_int("S", S, 1)
    if D % d:
        raise ValueError(f"D={D} must be a multiple of d={d} (allowed: D in {{{d}, {2 * d}, {3 * d}, ...}})")
    S = check_int("S", S, 1, D // d)
    L, z = check_int("L", L, 1, L_MAX), check_int("z", z, 1, T)
    batch = check_int("batch", batch, 1)
    seed = check_seed(seed)
    dev, dtype = check_device(device), check_dtype(dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    check_experiment_fits(D, T, S, L, z, d, batch, itemsize, dev, per_circuit=per_circuit)
    cfg = CiSConfig(D=D, T=T, d=d, S=S, L=L, z=z)
    return cfg, batch, seed, device, dtype


@checked
def seeded_experiment(D, T, *, S=6, L=4, z=1, batch=500, seed=0, device="cpu", dtype=torch.float32, d=4):
    """The draws behind every seeded measurement, in this order from one generator seeded
    with `seed`: the T angles, the L layer permutations, the active sets, the inputs x.
    Returns (net, active [batch, z], x0 [batch, z, 2]); the same seed gives the same network
    and inputs, so every function built on it reports consistent numbers."""
    cfg, batch, seed, device, dtype = _check_experiment(D, T, d, S, L, z, batch, seed, device, dtype)
    g = torch.Generator().manual_seed(seed)
    net, _ = build_network(cfg, g, device=device, dtype=dtype)
    active = sample_active(cfg.T, cfg.z, batch, g)
    x0 = sample_unit_vectors((batch, cfg.z), g)
    return net, active, x0


@checked
def variant_experiment(
    D,
    T,
    *,
    S=6,
    L=4,
    z=1,
    batch=500,
    seed=0,
    device="cpu",
    dtype=torch.float32,
    d=4,
    variant: str = "baseline",
    theta_lo: float = 0.4,
    theta_hi: float = 0.75,
):
    """`seeded_experiment` (the same draws: same angles, layer permutations, active sets and
    inputs for every variant) with the network of one error-correction variant:
    "baseline" (RiS), "oracle" (the same network; run it with `rotation_run(...,
    oracle=True)`), "sharp" (E1: the indicator step ReLU(k(α−θ_lo)) − ReLU(k(α−θ_hi)),
    k = 1/(θ_hi − θ_lo), weights from `correction.scheme_weights`, on the structured
    network). Returns (net, active, x0, oracle)."""
    if variant not in ("baseline", "oracle", "sharp"):
        raise ValueError(f"variant={variant!r} is not allowed: use 'baseline', 'oracle' or 'sharp'")
    net, active, x0 = seeded_experiment(D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device, dtype=dtype, d=d)
    if variant == "sharp":
        g = torch.Generator().manual_seed(int(seed))
        theta = sample_thetas(T, g)  # the first draws of seeded_experiment's generator
        w, w_bar, bias = scheme_weights(theta, theta_lo, theta_hi)
        net = SuperposedNetwork(w.to(dtype).to(device), net.idx, net.M, w_bar.to(dtype), bias.to(dtype))
    return net, active, x0, variant == "oracle"


# ---- per-circuit errors, trajectories and the χ convention (chapter "Constructing circuits") ----


def rotation_per_circuit(net: SuperposedNetwork, active: torch.Tensor, x0: torch.Tensor, *, chunk=None) -> dict:
    """Every circuit's readout error at every layer (not only their means), float64 on the CPU.

    Same definitions as `rotation_run`. Returns tensors indexed [layer, batch row, ...]:
    active_x |x − x̂|² and active_on (1 − α̂)² [L+1, B, z]; inactive_x |x̂|² and inactive_on
    α̂² [L+1, B, T] with NaN where the circuit is active; and, for trajectories, the true and
    estimated states of the active circuits: true_x, est_x [L+1, B, z, 2], true_on, est_on
    [L+1, B, z]. Layer 0 is the input (exact by construction).
    """
    T, L, d = net.T, net.L, net.d
    dtype, device = net.w.dtype, net.idx.device
    B, z = active.shape
    nan = float("nan")
    out = {
        "true_x": torch.zeros(L + 1, B, z, 2, dtype=torch.float64),
        "est_x": torch.zeros(L + 1, B, z, 2, dtype=torch.float64),
        "true_on": torch.zeros(L + 1, B, z, dtype=torch.float64),
        "est_on": torch.zeros(L + 1, B, z, dtype=torch.float64),
        "inactive_x": torch.zeros(L + 1, B, T, dtype=torch.float64),
        "inactive_on": torch.zeros(L + 1, B, T, dtype=torch.float64),
    }
    chunk = chunk or batch_chunk(T, d, B)
    for lo in range(0, B, chunk):
        act = active[lo : lo + chunk].to(device)
        b = act.shape[0]
        rows = slice(lo, lo + b)
        a0 = encode_input(torch.ones(b, z, dtype=torch.float64), x0[lo : lo + chunk]).to(device)
        truth = run_circuits(net.w[act].double(), a0.double(), L).cpu()  # [L+1, b, z, d]
        t_on, t_x = decode(truth)
        out["true_on"][:, rows], out["true_x"][:, rows] = t_on, t_x
        out["est_on"][0, rows], out["est_x"][0, rows] = t_on[0], t_x[0]
        cols = torch.arange(b)[:, None].expand(b, z)
        act_cpu = act.cpu()
        for l, A, G in net.layers_iter(net.embed(act, a0.to(dtype))):
            alpha, x = decode((G / net.S).double().cpu().permute(0, 2, 1))  # [T, b], [T, b, 2]
            out["est_on"][l, rows] = alpha[act_cpu, cols]
            out["est_x"][l, rows] = x[act_cpu, cols]
            out["inactive_on"][l, rows] = (alpha**2).T
            out["inactive_x"][l, rows] = (x**2).sum(-1).T
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[torch.arange(B)[:, None], active.cpu()] = True
    out["inactive_on"][:, mask] = nan
    out["inactive_x"][:, mask] = nan
    out["active_x"] = ((out["est_x"] - out["true_x"]) ** 2).sum(-1)
    out["active_on"] = (out["est_on"] - out["true_on"]) ** 2
    return out


@checked
def rotation_error_rows(
    D, T, *, S=6, L=4, z=1, batch=500, seed=0, device="cpu", dtype=torch.float32, d=4
) -> list[dict]:
    """Mean and worst-case errors per layer as tidy rows (for `sweep`): layer, quantity,
    mean (as `rotation_errors`, same seed -> same network and inputs), worst (max over the
    batch and the circuits), theory (`rotation_theory`)."""
    _check_experiment(D, T, d, S, L, z, batch, seed, device, dtype, per_circuit=True)
    net, active, x0 = seeded_experiment(D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device, dtype=dtype, d=d)
    per = rotation_per_circuit(net, active, x0)
    theory = rotation_theory(D, T, S=S, L=L, z=z, d=d)
    rows = []
    for q in ("active_x", "inactive_x", "active_on", "inactive_on"):
        for l in range(1, L + 1):
            v = per[q][l]
            v = v[~torch.isnan(v)]
            rows.append(
                {"layer": l, "quantity": q, "mean": float(v.mean()), "worst": float(v.max()), "theory": theory[q][l]}
            )
    return rows


@checked
def rotation_rows(D, T, *, S=6, L=4, z=1, batch=500, seed=0, device="cpu") -> list[dict]:
    """RiS Figures 8–11 quantities as tidy rows (for `sweep`): layer, quantity, measured
    (`rotation_errors`), theory (`rotation_theory`). The four RiS quantities only: the
    neuron-level `spurious_on` has its own theory (`spurious.spurious_on_theory`)."""
    measured = rotation_errors(D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device)
    theory = rotation_theory(D, T, S=S, L=L, z=z)
    return [
        {"layer": l, "quantity": q, "measured": measured[q][l], "theory": theory[q][l]}
        for q in theory
        for l in range(1, L + 1)
    ]


@checked
def balance_chi_dense(net: SuperposedNetwork, l: int, pairs: str = "ne") -> float:
    """χ_l from the dense T × T matrix O_tu = ⟨e_t^l|C^l|e_u^{l−1}⟩ (reference and comparison).

    pairs="ne": Σ_{t≠u}⟨e_t^l|𝒲^l|e_u^{l−1}⟩ = 0 (ordered pairs, the library's χ, label-free);
    pairs="lt": Σ_{t<u} (RiS's code; depends on how circuits are numbered). With 𝒲 = 1/S on C
    and −χ off C: (1/S)·U − χ·(P − U) = 0, U = Σ_pairs O_tu, P = S²·(number of pairs).
    """
    if pairs not in ("ne", "lt"):
        raise ValueError(f"pairs={pairs!r} is not allowed: use 'ne' (t≠u) or 'lt' (t<u)")
    l = check_int("l", l, 2, net.L)
    M, S, T = net.M, net.S, net.T
    cur = torch.nn.functional.one_hot(net.idx[l - 1].cpu(), M).sum(1).double()  # [T, M]
    prev = torch.nn.functional.one_hot(net.idx[l - 2].cpu(), M).sum(1).double()
    C = ((cur.T @ prev) > 0).double()  # connectivity [M, M]
    O = cur @ C @ prev.T
    mask = torch.ones(T, T, dtype=torch.bool).triu(1) if pairs == "lt" else ~torch.eye(T, dtype=torch.bool)
    U = float(O[mask].sum())
    P = float(S * S) * int(mask.sum())
    return U / (S * (P - U)) if P > U else 0.0


def with_chi(net: SuperposedNetwork, chis) -> SuperposedNetwork:
    """A copy of `net` sharing its tensors, with χ_l replaced by chis[l−2] for l = 2..L."""

    try:
        chis = [float(c) for c in chis]
    except (TypeError, ValueError):
        raise ValueError(f"chis={chis!r} is not allowed: a list of L-1 = {net.L - 1} finite numbers") from None
    if not all(math.isfinite(c) for c in chis):
        raise ValueError(f"chis={chis!r} is not allowed: finite numbers (χ_l for l = 2..L)")
    if len(chis) != net.L - 1:
        raise ValueError(f"chis has {len(chis)} values: allowed exactly L-1 = {net.L - 1} (layers 2..L)")
    new = copy.copy(net)
    new.layers = [net.layers[0]] + [dataclasses.replace(st, chi=float(c)) for st, c in zip(net.layers[1:], chis)]
    return new


@checked
def shared_neurons(idx_l: torch.Tensor, active: torch.Tensor, M: int) -> torch.Tensor:
    """k_u = how many of circuit u's S neurons (at one layer, idx_l [T, S]) some active
    circuit also uses, for every batch row: active [B, z] -> [B, T] (active circuits: S).

    At layer 1 an inactive circuit's on-indicator readout is exactly k_u / S (layer-0 trick:
    every neuron an active circuit uses carries an on-indicator of exactly 1 after the step).
    """
    B = active.shape[0]
    used = torch.zeros(B, M, dtype=torch.bool, device=idx_l.device)
    rows = torch.arange(B, device=idx_l.device)[:, None]
    used[rows, idx_l[active].reshape(B, -1)] = True
    return used[:, idx_l].sum(-1)  # [B, T]
