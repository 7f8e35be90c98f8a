"""Neuron-level theory of seizures: spurious on-indicator neurons (chapter "The T(d/D)²
regime", section "The neuron-level mechanism").

RiS's error theory (§6, `theory.rotation_theory`) is linear in the readouts: it counts how
much of an active circuit's signal leaks into the circuits that overlap it and back. The
on-indicator step, however, acts on each *large-network neuron*, not on each circuit, and
the rectification of a neuron that no active circuit uses is not in that theory.

The indicator subsystem is closed. Row 0 of every w_t equals row 0 of w̄ ([2, −2, 0, 0],
Δw_t's row 0 is zero), so block 0 at layer l reads only the per-neuron indicators
α_m^{l−1} = A_{0,m} − A_{1,m} of layer l − 1:

    q_n = 2 Σ_m 𝒲^l_nm α_m^{l−1},   A_{0,n} = ReLU(q_n − 1/2),   α_n^l = clip(q_n − 1/2, 0, 1),

with 𝒲 = 1/S on the connectivity C^l and −χ elsewhere, i.e.
Σ_m 𝒲_nm α_m = c·Σ_{m ∈ C(n)} α_m − χ·Σ_m α_m, c = 1/S + χ. Neuron n is on iff y_n > 1/4,
y_n := Σ_m 𝒲_nm α_m. Neurons of active circuits carry α = 1 (exactly at layer 1, the
layer-0 trick; saturated later while q > 3/2). For a neuron n no active circuit uses:

* Active part K (layer 2 on). Circuits through n: E = T·S/M per neuron. Each shares a
  neuron with a given active circuit at layer l − 1 with probability S²ε (circuits share
  at most one neuron; ε = d/D − 1/(ST) is the mean squared normalised overlap, so
  P(share) = S²ε), and layers are reshuffled independently, so the number of active-circuit
  neurons connected to n is K ~ Poisson(λ), λ = z·E·S²ε = z(S³·x − S²/M), x = T(d/D)².
  At fixed x, λ → z·S³·x: the layer-2 spurious fraction tends to a constant.
* Background B (layer 3 on). n is connected to N_c ≈ E·S − C(E, 2)·S²ε distinct neurons
  (≈ S²·x·M: it grows with M at fixed x). Each is spurious with the probability p_{l−1}
  of the previous layer, with its own α. B = Σ_{m ∈ C(n), unused} α_m is compound
  Poisson with rate N_c·p_{l−1} and jumps distributed as the spurious α's.
* The χ balance. The −χ Σ_m α_m term (U ≈ z·S active neurons plus the background
  (M − U)·μ_{l−1}, μ the mean α of unused neurons) shifts the threshold: at layer 2 the
  neuron is on iff K > (1/4 + χU)/c, which is K ≥ 2 for small χ (S/4 = 1.5) and K ≥ 3 once
  χ ≳ 0.017 (z = 1): the crude P(Poisson(z·S³·x) ≥ 2) overshoots there. In the mean the
  balance cancels the background: c·N_c·μ ≈ χ·M·μ (χ chooses exactly this for uniform
  loads), so the background acts through its fluctuation, variance c²·N_c·E[α²] ∝ M.

So y = c·(K + B) − χ·(U + (M − U)·μ) and the spurious fraction at layer l is
(1 − U/M)·P(y > 1/4). The distribution of α over unused neurons is carried from layer
to layer on a grid (step 1/`grid`): that is the whole recursion, computed exactly under
these approximations (A1–A4, stated where used and checked against measurement in the
chapter): A1 loads are uniform (every neuron is used by E circuits); A2 K, B and the
neurons' α are independent (layers reshuffle); A3 active-circuit neurons carry α = 1;
A4 Poisson counts (thinned binomials).

What it adds to the RiS error quantities (`spurious_theory`, key "new"; all from the
per-layer background G = c·(B − E B), variance σ_l² = c²·N_c·E[α²_{l−1}]):
* active_x: on an active neuron the background enters the payload twice: 2G through w̄'s
  rows 2–3 ([2, −2, 0, 0], shared by both components; the indicator itself is saturated
  and does not cancel it) and through Δw_t's rows, Σ ±α_m/S over the connected spurious
  neurons (variance σ²/(cS)² ≈ σ² per component, uncorrelated with G: E[c − s] = 0). The
  S neurons of the readout see independent backgrounds and the rotation keeps |δx|, so
  E|δx|²_new(l) = Σ_{j=3}^{l} 2·(4 + 1/(cS)²)·σ_j²/S (approximation A5: independent per
  layer, payload activations of spurious neurons neglected).
* active_on: α_n = clip(3/2 − 2(z−1)Sχ + 2G, 0, 1) on the active circuit's S neurons:
  E(1 − α̂)² = Var(α_n)/S + (1 − Eα_n)².
* inactive_on: an inactive circuit's readout also averages S unused neurons:
  + E[α²]/S + (1 − 1/S)·μ² on top of z·ε.
* inactive_x: on an unused neuron the payload a_2 ≈ ReLU(2y − 1) (payload noise
  neglected) and x̂ = a_2 − α: g(y) = ReLU(2y − 1) − clip(2y − 1/2, 0, 1) in both
  components: + 2·(E[g²]/S + (1 − 1/S)·E[g]²).

The boundary (`boundary_theory`): the smallest T(d/D)² at which the predicted active error
(RiS + new) reaches `level` times RiS's at layer l (or the spurious fraction `level` times
its layer-2 floor), located on a log grid and refined by bisection.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.assignment import max_circuits
from ..core.checks import check_int, checked
from ..core.config import CiSConfig
from ..core.theory import rotation_theory

__all__ = [
    "indicator_theory",
    "spurious_on_theory",
    "spurious_theory",
    "boundary_theory",
    "seizure_floor",
    "layer2_threshold",
]


def _check_pos(name: str, value, low: float = 0.0, high: float = math.inf) -> float:
    v = float(value)
    if not math.isfinite(v) or not low < v <= high:
        raise ValueError(f"{name}={value!r} is out of range: allowed {low} < {name} <= {high}")
    return v


def _validate(D, T, S, L, z, d):
    """CiSConfig's checks (D a multiple of d, 1 <= T <= max_circuits(D/d, S), 1 <= z <= T),
    each a ValueError naming the parameter and its range. max_circuits is skipped above
    M = 8192 (its prime-step count is slow there); T is then checked against M²/S."""
    M = check_int("D", D, 1) // check_int("d", d, 1)
    if M <= 8192:
        cfg = CiSConfig(D=D, T=T, d=d, S=S, L=L, z=z)
        return cfg.D, cfg.T, cfg.S, cfg.L, cfg.z, cfg.d
    if D % d:
        raise ValueError(f"D={D} must be a multiple of d={d} (allowed: D in {{{d}, {2 * d}, ...}})")
    S = check_int("S", S, 1, M)
    T = check_int("T", T, 1, M * M // S)
    return D, T, S, check_int("L", L, 1), check_int("z", z, 1, T), d


def _sizes(M, T, S, z):
    """For blocks of M neurons: E (circuits per neuron), q = S²ε (P two circuits share a
    neuron), λ, U, N_c, χ."""
    E = T * S / M
    eps = 1.0 / M - 1.0 / (S * T)
    q = min(max(S * S * eps, 0.0), 1.0)
    lam = z * E * q
    U = z * S - z * (z - 1) / 2 * S * S * max(eps, 0.0)  # |∪ e_a| of the z active circuits
    N_c = max(E * S - E * E / 2 * q, 0.0)  # distinct neurons connected to n (pairs through n sharing one counted once)
    # χ balance in expectation under uniform loads (A1): with |C| = M·N_c connected pairs,
    # Σ_{t≠u}⟨e_t|C|e_u⟩ = |C|·E² − T·S² and P = S²·T(T−1):  χ = U_C / (S(P − U_C)).
    U_C = M * N_c * E * E - T * S * S
    P = S * S * T * (T - 1.0)
    chi = U_C / (S * (P - U_C)) if P > U_C > 0 else 0.0
    return E, q, lam, U, N_c, chi


@checked
def layer2_threshold(D: int, T: int, *, S: int = 6, z: int = 1, d: int = 4) -> int:
    """Smallest number K of connected active-circuit neurons that switches an unused
    on-indicator neuron on at layer 2: K·(1/S + χ) − χ·U > 1/4 (U ≈ z·S active neurons)."""
    D, T, S, _, z, d = _validate(D, T, S, 2, z, d)
    _, _, _, U, _, chi = _sizes(D // d, T, S, z)
    return int(math.floor((0.25 + chi * U) / (1.0 / S + chi))) + 1


def _compound_poisson(rate: float, jump: np.ndarray, h: float) -> np.ndarray:
    """pmf on the grid j·h of B = Σ_{i ≤ N} J_i, N ~ Poisson(rate), J_i iid with pmf `jump`
    on the grid (jump[0] = 0). FFT on a grid long enough that aliasing is below ~1e-12."""
    if rate <= 0 or jump.sum() <= 0:
        return np.array([1.0])
    vals = np.arange(jump.size) * h
    m1, m2 = float((jump * vals).sum()), float((jump * vals**2).sum())
    top = rate * m1 + 14 * math.sqrt(rate * m2) + 12 * h * jump.size + 2.0
    n = 1 << int(math.ceil(math.log2(max(top / h, jump.size) + 1)))
    f = np.fft.rfft(np.pad(jump, (0, n - jump.size)))
    pmf = np.fft.irfft(np.exp(rate * (f - 1.0)), n)
    pmf = np.clip(pmf, 0.0, None)
    return pmf / pmf.sum()


def _indicator_recursion(
    M: int, T: int, S: int, L: int, z: int, theta_lo: float, theta_hi: float, grid: int, stop_above: float = math.inf
) -> dict:
    """The recursion of the module docstring for one indicator block of M neurons with
    redundancy S, T circuits and the step clip(k(y − θ_lo), 0, 1), k = 1/(θ_hi − θ_lo):
    a neuron is on iff y > θ_lo (RiS: [1/4, 3/4], k = 2). Stops after the first layer whose
    spurious fraction exceeds `stop_above` (the later layers keep 0.0; "stopped" = that layer)."""
    E, q, lam, U, N_c, chi = _sizes(M, T, S, z)
    k_step = 1.0 / (theta_hi - theta_lo)
    c = 1.0 / S + chi
    h = 1.0 / grid
    alpha_grid = np.arange(grid + 1) * h
    pmf = np.zeros(grid + 1)
    pmf[0] = 1.0  # layer 1: unused neurons are exactly 0 (layer-0 trick)
    kmax = int(lam + 12 * math.sqrt(lam) + 12)
    k = np.arange(kmax + 1)
    pk = (
        np.exp(-lam + k * math.log(lam) - np.array([math.lgamma(i + 1) for i in k]))
        if lam > 0
        else (k == 0).astype(float)
    )
    keys = ("spurious_on", "mu", "m2", "sigma2", "active_x", "active_on", "inactive_on", "inactive_x", "false_off")
    out = {key: [0.0] * (L + 1) for key in keys}
    out["pmf"] = [None] * (L + 1)
    out["pmf"][1] = pmf.copy()
    unused = max(1.0 - U / M, 0.0)
    acc_x = 0.0
    out["stopped"] = None
    for l in range(2, L + 1):
        if l > 2 and out["spurious_on"][l - 1] > stop_above:
            out["stopped"] = l - 1
            break
        mu = float((pmf * alpha_grid).sum())
        jump = pmf.copy()
        jump[0] = 0.0
        p_prev = jump.sum()
        pB = _compound_poisson(N_c * p_prev, jump / p_prev if p_prev > 0 else jump, h)
        b = np.arange(pB.size) * h
        EB = float((pB * b).sum())
        shift = chi * (U + (M - U) * mu)
        y = c * (k[:, None] + b[None, :]) - shift  # [K, B] grid of inputs (A2: K, B independent)
        w = pk[:, None] * pB[None, :]
        on = y > theta_lo
        out["spurious_on"][l] = unused * float(w[on].sum())
        a_new = np.clip(k_step * (y - theta_lo), 0.0, 1.0)
        pmf = np.bincount(np.rint(a_new / h).astype(np.int64).ravel(), weights=w.ravel(), minlength=grid + 1)[
            : grid + 1
        ]
        pmf /= pmf.sum()
        out["pmf"][l] = pmf
        out["mu"][l] = float((pmf * alpha_grid).sum())
        out["m2"][l] = float((pmf * alpha_grid**2).sum())
        sigma2 = c * c * float((pB * (b - EB) ** 2).sum())  # = c²·N_c·E[α²_{l−1}] (compound Poisson)
        out["sigma2"][l] = sigma2
        # Active circuit's neurons: y = 1 − (z−1)Sχ + G, G = c(B − EB); α_n = clip(k(y − θ_lo), 0, 1).
        G = c * (b - EB)
        a_act = np.clip(k_step * (1.0 - (z - 1) * S * chi + G - theta_lo), 0.0, 1.0)
        Ea, Ea2 = float((pB * a_act).sum()), float((pB * a_act**2).sum())
        out["active_on"][l] = (Ea2 - Ea**2) / S + (1 - Ea) ** 2
        out["false_off"][l] = _mean_below(pB, a_act, S, 0.5, h)
        acc_x += 2 * (4 + 1 / (c * S) ** 2) * sigma2 / S  # A5: per layer independent, kept by the rotation
        out["active_x"][l] = acc_x
        out["inactive_on"][l] = out["m2"][l] / S + (1 - 1 / S) * out["mu"][l] ** 2
        g = np.maximum(2 * y - 1, 0.0) - a_new
        Eg, Eg2 = float((w * g).sum()), float((w * g * g).sum())
        out["inactive_x"][l] = 2 * (Eg2 / S + (1 - 1 / S) * Eg**2)
    out |= {"lam": lam, "chi": chi, "N_c": N_c, "U": U, "E": E, "q": q}
    return out


def _mean_below(p: np.ndarray, values: np.ndarray, S: int, level: float, h: float) -> float:
    """P((1/S)·Σ_{i ≤ S} α_i < level) for S iid α with P(α = values[j]) = p[j] (on the grid h)."""
    idx = np.rint(np.asarray(values) / h).astype(np.int64)
    one = np.bincount(idx, weights=p, minlength=int(idx.max()) + 1)
    tot = _power_pmf(one, S)
    return float(tot[: int(math.ceil(level * S / h - 1e-9))].sum())


def _power_pmf(pmf: np.ndarray, n: int) -> np.ndarray:
    """pmf of the sum of n iid draws from `pmf` (support 0..len−1), by FFT."""
    size = 1 << int(math.ceil(math.log2(n * (pmf.size - 1) + 1)))
    f = np.fft.rfft(np.pad(pmf, (0, size - pmf.size)))
    out = np.clip(np.fft.irfft(f**n, size)[: n * (pmf.size - 1) + 1], 0.0, None)
    return out / out.sum()


@checked
def indicator_theory(
    M: int,
    T: int,
    *,
    S: int,
    z: int,
    L: int,
    theta: float = 0.25,
    theta_hi: float = 0.75,
    grid: int = 200,
    stop_above: float | None = None,
) -> dict:
    """The neuron-level recursion for an indicator group of its own: M neurons per block,
    redundancy S, T circuits, z active, the dead-zone step [θ, θ_hi] (a neuron is on iff its
    input y > θ). Per layer (index 0..L):

    spurious_on: the fraction of unused indicator neurons that are on (as `scheme_run`'s);
    false_on: the predicted fraction of inactive circuits whose readout α̂ exceeds 1/2 —
    an inactive circuit's S neurons are j ≤ z shared with the active set (α = 1, j ~
    Poisson(zS²/M), at most one per active circuit) and S − j unused ones drawn from the
    layer's α distribution; false_off: the fraction of active circuits with α̂ < 1/2; and
    sigma2, mu, m2 as in `spurious_theory`. Scalars lam (λ = z·E·S²ε), chi, N_c, U, E.

    The cascade is a branching process: a spurious neuron at layer l − 1 feeds N_c ≈ S²xM
    neurons, each of which needs k* of them (with the active inputs) to pass θ. Below the
    boundary the spurious fraction stays at its layer-2 value; above it, it grows layer
    by layer to a constant fraction of the block. stop_above: stop the recursion after the
    first layer whose spurious fraction exceeds it ("stopped" names that layer, None if it
    ran to L; the layers after it are left at 0.0): a cascade is then already certain.
    """
    M = check_int("M", M, 2)
    S = check_int("S", S, 1, M)
    T = check_int("T", T, 1, M * M)
    z = check_int("z", z, 1, T)
    L = check_int("L", L, 2)
    lo = _check_pos("theta", theta, 0.0, 1.0)
    hi = _check_pos("theta_hi", theta_hi, lo, 1.0)
    if hi == lo:
        raise ValueError(f"theta_hi={theta_hi!r} is out of range: allowed theta < theta_hi <= 1")
    grid = check_int("grid", grid, 10)
    stop = math.inf if stop_above is None else _check_pos("stop_above", stop_above, 0.0, 1.0)
    out = _indicator_recursion(M, T, S, L, z, lo, hi, grid, stop)
    h = 1.0 / grid
    mean_j = z * out.pop("q")
    pj = np.array([math.exp(-mean_j) * mean_j**j / math.factorial(j) for j in range(z + 1)])
    pj[-1] += max(1.0 - pj.sum(), 0.0)  # at most one neuron shared with each active circuit
    out["false_on"] = [0.0] * (L + 1)
    for l in range(2, L + 1):
        pmf = out["pmf"][l]
        if pmf is None:
            break
        rate = 0.0
        for j, w in enumerate(pj):
            if w <= 0 or j >= S:
                rate += w * float(j >= S)
                continue
            tot = _power_pmf(pmf, S - j)  # Σ over the S − j unused neurons, on the grid h
            need = (0.5 * S - j) / h  # α̂ > 1/2  ⇔  Σ_unused > S/2 − j
            rate += w * float(tot[int(math.floor(need + 1e-9)) + 1 :].sum()) if need >= 0 else w
        out["false_on"][l] = rate
    del out["pmf"]
    return out


@checked
def spurious_theory(D: int, T: int, *, S: int = 6, L: int = 4, z: int = 1, d: int = 4, grid: int = 200) -> dict:
    """The neuron-level recursion (module docstring), per layer (index = layer, 0..L):

    spurious_on: predicted fraction of block-0 on-indicator neurons on while used by no
    active circuit (as `rotation_errors(...)["spurious_on"]`); mu, m2: mean and mean square
    of α over unused neurons; sigma2: variance of the background G at that layer;
    new: {active_x, active_on, inactive_on, inactive_x} the terms the spurious neurons add
    to RiS's theory; total: RiS + new (`theory.rotation_theory` keys); and the scalars
    lam (λ), chi (χ), N_c, U, E, threshold2 (`layer2_threshold`).
    """

    D, T, S, L, z, d = _validate(D, T, S, L, z, d)
    grid = check_int("grid", grid, 10)
    r = _indicator_recursion(D // d, T, S, L, z, 0.25, 0.75, grid)
    out = {key: r[key] for key in ("spurious_on", "mu", "m2", "sigma2")}
    new = {key: r[key] for key in ("active_x", "active_on", "inactive_on", "inactive_x")}
    ris = rotation_theory(D, T, S=S, L=L, z=z, d=d)
    out["new"] = new
    out["total"] = {key: [a + n for a, n in zip(ris[key], new[key])] for key in new}
    out["ris"] = ris
    out |= {k: r[k] for k in ("lam", "chi", "N_c", "U", "E")}
    out["threshold2"] = layer2_threshold(D, T, S=S, z=z, d=d)
    return out


@checked
def spurious_on_theory(D: int, T: int, *, S: int = 6, L: int = 4, z: int = 1, d: int = 4) -> list[float]:
    """Predicted mean fraction of block-0 on-indicator neurons that are on while used by no
    active circuit, per layer (index = layer, 0..L; layers 0 and 1 are 0 by the layer-0
    trick). The same definition as `rotation_errors(...)["spurious_on"]`; the derivation
    is the module docstring's (`spurious_theory` returns its other quantities)."""
    return spurious_theory(D, T, S=S, L=L, z=z, d=d)["spurious_on"]


@checked
def seizure_floor(D: int, T: int, *, S: int = 6, z: int = 1, d: int = 4) -> float:
    """The spurious-on fraction the z active circuits alone switch on: the layer-2
    prediction (no background yet). It converges to a constant at fixed T(d/D)² as D grows,
    so "seized at layer l" := spurious_on(l) > 2 · seizure_floor is the same criterion at
    every D (the old "twice the neurons the active circuits use" counted a constant
    fraction of a growing block as a seizure)."""
    return spurious_on_theory(D, T, S=S, L=2, z=z, d=d)[2]


@checked
def boundary_theory(
    D: int,
    z: int,
    l: int,
    *,
    level: float = 2.0,
    S: int = 6,
    d: int = 4,
    kind: str = "active_x",
    x_lo: float = 1e-5,
    x_hi: float = 0.02,
    tol: float = 0.01,
) -> float:
    """Predicted boundary x*(D, z, l) in T(d/D)² (T = round(x·(D/d)²)):

    kind="active_x": the active error (RiS + new) reaches `level` × RiS's at layer l;
    kind="seizure": the spurious-on fraction at layer l reaches `level` × `seizure_floor`.
    The first x of a 17-point log grid on [x_lo, x_hi] where the criterion holds, refined
    by bisection in log x (relative precision `tol`) against the grid point before it.
    Returns x_hi if it is not reached (censored), x_lo if it holds already at x_lo.
    """
    D = check_int("D", D, d)
    z = check_int("z", z, 1)
    l = check_int("l", l, 2)
    level = _check_pos("level", level, 1.0)
    if kind not in ("active_x", "seizure"):
        raise ValueError(f"kind={kind!r} is not allowed: use 'active_x' or 'seizure'")
    M = D // d
    if M <= 8192:  # no more circuits than the embedding holds
        x_hi = min(x_hi, max_circuits(M, S) / M**2)

    def ratio(x):
        T = max(z, round(x * M * M))
        th = spurious_theory(D, T, S=S, L=l, z=z, d=d)
        if kind == "seizure":
            floor = th["spurious_on"][2]
            return th["spurious_on"][l] / floor if floor > 0 else 1.0
        ris = th["ris"]["active_x"][l]
        return th["total"]["active_x"][l] / ris if ris > 0 else 1.0

    # Scan a log grid for the first point at or above the level (the seizure ratio is not
    # monotone far past the boundary: p₂ itself grows there), then bisect that bracket.
    xs = np.geomspace(x_lo, x_hi, 17)
    hit = next((i for i, x in enumerate(xs) if ratio(x) >= level), None)
    if hit is None:
        return x_hi
    if hit == 0:
        return x_lo
    lo, hi = math.log(xs[hit - 1]), math.log(xs[hit])
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if ratio(math.exp(mid)) >= level:
            hi = mid
        else:
            lo = mid
    return math.exp((lo + hi) / 2)
