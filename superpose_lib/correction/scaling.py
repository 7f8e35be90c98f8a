"""The switch-off construction: circuits in superposition that keep working as D grows
(chapter "Does it work asymptotically?"; `make_scheme("scaling", D, z=z, L=L, x=x)`).

Why RiS's construction stops working. Its on-indicators are recomputed at every layer from
the previous layer's indicator neurons through the mean weight w̄ ⊗ 𝒲, which connects each
neuron to the S²·T/M neurons that some circuit connects it to. A fraction p of spurious
indicator neurons (on, though no active circuit uses them) therefore reaches every neuron
through p·S²·T/M inputs: at a fixed load T/M² that grows like M, and the spurious neurons
feed each other (the regime chapter's cascade). The payload reads α through the same w̄,
so every spurious indicator also writes its offset into S²·T/M payload neurons.

The switch-off construction removes both paths. Per layer it has, at total width D:

* a **register**: M_r neurons holding the active set, written once by the layer-0 trick on a
  static assignment (circuit t owns S_r of them, an affine plane: two circuits share at most
  one) and copied by the identity, R^l = ReLU(R^{l−1}). Nothing else writes into it, so it
  never degrades: no cascade is possible.
* a **gate** per payload position n: g_n = ReLU(S_r − K_n), K_n = Σ_t [n ∈ e_t^{l+1}]·⟨e^R_t|R⟩,
  read from the register. A position that an active circuit uses has K_n ≥ S_r (that
  circuit's whole register set is on): g_n = 0, open. Any other position has g_n ≥ 1 unless
  inactive circuits through it collect S_r register hits between them (a false gate).
* a **payload** in three blocks of M positions holding each circuit's 2-d vector in the
  simplex code h_k = ⟨v_k, x⟩ + 1, v_k unit vectors at angles 2πk/3 (Σ_k v_k = 0 and
  (2/3)Σ_k v_k v_kᵀ = 1, so x = (2/3)Σ_k v_k h_k whatever common offset h carries). Circuit t
  uses S positions (an affine plane, reshuffled every layer as in RiS) and for l ≥ 2

      H^l = ReLU( (1/S) Σ_t W_t ⊗ |e_t^l⟩⟨e_t^{l−1}| H^{l−1}  +  1  −  (G + 1)·g^{l−1} ),
      W_t = (2/3) V R_{θ_t} Vᵀ   (so W_t h = ⟨v, R_θ x⟩ for the code of x, and W_t 1 = 0).

  An open position gets the bias +1 (the code's offset); a closed one is pushed below zero
  by G, whatever its input (|input| < G). There is no mean-weight term: the mean of W_t over
  uniform angles is 0, so interference between circuits has zero mean without RiS's χ, and
  a position that is open by mistake carries 1 + noise, whose offset W_u·1 = 0 never
  propagates: only its noise does.

Layer 1 is the layer-0 trick, H^1 = ReLU(Σ_{t active} (W_t h^0_t + 1) ⊗ e_t^1), exact. The
small circuit computed is RiS's rotation circuit (x ↦ R_θ x while α = 1); its on-indicator
is the gate, read as α̂_t = the fraction of t's S positions whose gate is open, and its
payload as x̂_t = (2/3) Σ_k v_k (1/S)⟨e_t|H_k⟩. Width: D = 4M + M_r (three payload blocks,
one gate block, the register).

The theory (`gate_false_rate`, `noise_ratio`, `variance_ratio`). An unused position n is
used by n_c ≈ T/p circuits (p the payload plane's prime, ≈ M/S); each meets each active
circuit's register line at most once, with probability S_r/p_r (p_r ≈ M_r/S_r), so
K_n ~ Binomial(z·n_c, S_r/p_r), of mean μ = (T/p)·z·S_r/p_r, and the gate is falsely open
with p_g = P(K ≥ S_r).
A falsely open position carries the noise that the ≈ z·S³·T/M² circuits through it bring
from active positions (variance z·S·x_M per position, x_M = T/M²) and passes it on as
active positions do, so the extra variance of an active readout relative to its own
propagation noise (z·x_M per layer) is y = p_g·T/M per layer, and false positions feed each
other with the same ratio y. Over L layers the payload's variance grows by the factor
`variance_ratio(y, L)` (→ 1/(1 − y) for deep networks): the construction holds criterion
(b) while √(variance ratio) ≤ 1.5. The payload's own noise does not depend on S (each
interference path carries 1/S and there are ∝ S² of them per position, averaged over S),
while μ ∝ S: the rule takes S = 2, the smallest redundancy an affine plane allows.

Scaling. At a fixed load x_M the false-gate rate p_g is fixed while the tolerated rate
falls like 1/(x_M·M): the rule must raise S_r with M. p_g ≈ exp(−S_r·ln(S_r/(e·μ))) (the
binomial's tail is thinner still) with μ ∝ S_r²·x_M/ρ (ρ = M_r/M), so S_r ∝ ln M and
x_M ∝ ρ/ln M: T ∝ D²/ln D, the form of the parameter-counting bound (Adler & Shavit), not a
power of D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..capacity import log_bisect
from ..core.assignment import affine_capacity, affine_prime
from ..core.checks import check_int, check_real, checked, real
from ..core.circuits import sample_thetas
from ..core.criteria import RATE_MAX
from ..core.experiment import sample_active, sample_unit_vectors
from ..core.network import scatter_rows
from ..core.theory import T_at, control_parameter

__all__ = [
    "SIMPLEX",
    "simplex_weights",
    "simplex_code",
    "SwitchOffScheme",
    "SwitchOffNetwork",
    "gate_false_rate",
    "noise_ratio",
    "register_false_on",
    "variance_ratio",
    "scaling_design",
    "scaling_boundary",
    "family_boundary",
    "tolerated_noise",
    "max_load",
    "scaling_run",
    "S_PAYLOAD",
    "KILL",
    "REGISTER_SHARES",
    "S_R_RANGE",
]

#: The payload's redundancy: the smallest an affine plane allows. The gate's false rate grows
#: with S (μ ∝ S) while the payload's own noise does not depend on it (module docstring).
S_PAYLOAD = 2
#: G: a closed gate (g ≥ 1) subtracts G + 1 and the bias adds 1, so a closed position stays
#: at zero while its input is below G; inputs stay below ≈ 3 at every load the book measures.
KILL = 16.0
#: Register widths the rule chooses from, as a share of D.
REGISTER_SHARES = (0.02, 0.04, 0.06, 0.08, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
#: Register redundancies S_r the rule chooses from.
S_R_RANGE = tuple(range(3, 25))

_ANGLES = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=torch.float64)
#: v_k, k = 0, 1, 2: unit vectors at 120°, [3, 2].
SIMPLEX = torch.stack([torch.cos(_ANGLES), torch.sin(_ANGLES)], dim=-1)


def simplex_code(x: torch.Tensor) -> torch.Tensor:
    """h_k = ⟨v_k, x⟩ + 1 for x [..., 2] -> [..., 3] (≥ 0 for |x| ≤ 1)."""
    return x @ SIMPLEX.to(x.dtype).T + 1


def simplex_weights(theta: torch.Tensor) -> torch.Tensor:
    """W_t = (2/3) V R_θ Vᵀ for every circuit, [T, 3, 3]: W_t h = ⟨v, R_θ x⟩ for h the code
    of x, and W_t 1 = 0. Entry (k, j) is (2/3)⟨v_k, R_θ v_j⟩ = (2/3)·cos(θ + φ_j − φ_k), φ_k = 2πk/3."""
    phi = _ANGLES.to(theta.dtype)
    return (2.0 / 3.0) * torch.cos(theta[:, None, None] + (phi[None, :] - phi[:, None])[None])


# ---- the scheme and its theory -----------------------------------------------------------


@dataclass(frozen=True)
class SwitchOffScheme:
    """The switch-off construction at total width D (module docstring): M payload positions
    per block (three payload blocks and the gate block), a register of M_r neurons,
    redundancies S (payload) and S_r (register), kill strength G."""

    D: int
    M: int
    M_r: int
    S: int = S_PAYLOAD
    S_r: int = 6
    G: float = KILL
    name: str = "scaling"
    label: str = ""

    oracle = False  # a real construction (the scheme interface of `make_scheme`)

    def __post_init__(self):
        check_int("D", self.D, 16)
        check_int("S", self.S, 2)
        check_int("S_r", self.S_r, 2)
        check_int("M", self.M, 2 * self.S)
        check_int("M_r", self.M_r, 2 * self.S_r)
        check_real("G", self.G, 1.0, 1e6)
        if 4 * self.M + self.M_r > self.D:
            raise ValueError(
                f"M={self.M}, M_r={self.M_r}: the width 4·M + M_r = {4 * self.M + self.M_r} exceeds D={self.D}"
            )
        affine_prime(self.M, self.S)  # both planes must fit (a ValueError names M)
        affine_prime(self.M_r, self.S_r)
        if not self.label:
            object.__setattr__(self, "label", f"switch-off S_r={self.S_r} register {self.M_r / self.D:.0%}")

    @property
    def width(self) -> int:
        """Neurons per layer used: 4·M + M_r ≤ D."""
        return 4 * self.M + self.M_r

    @property
    def max_T(self) -> int:
        """Most circuits both affine planes hold."""
        return min(affine_capacity(self.M, self.S), affine_capacity(self.M_r, self.S_r))

    @property
    def knob(self) -> float:
        return float(self.S_r)

    @property
    def share(self) -> float:
        """The share of D that carries on-indicator information: the gate block and the register."""
        return (self.M + self.M_r) / self.D

    def weights(self, T: int) -> int:
        """Non-zero weights of one layer l ≥ 2 with T circuits, at most (a neuron pair that
        two circuits connect is counted twice): 9 per (circuit, payload position pair), one
        per (circuit, position, register neuron) for the gates, the gates' diagonal into the
        three payload blocks and the register's identity. A dense layer has D² weights."""
        T = check_int("T", T, 1, self.max_T)
        return 9 * T * self.S**2 + T * self.S * self.S_r + 3 * self.M + self.M_r


@checked
def gate_false_rate(M: int, M_r: int, T: int, *, S: int, S_r: int, z: int) -> float:
    """p_g: the probability that the gate of a position no active circuit uses is open
    (module docstring): P(K ≥ S_r). The n_c ≈ T/p circuits through the position each meet
    an active circuit's register line at most once (two lines of the plane meet once), in
    one of its S_r columns with probability q = S_r/p_r, so K ~ Binomial(z·n_c, q), n_c
    being ⌊T/p⌋ or ⌈T/p⌉ (the plane's last slope class covers a part of the points).
    (With few circuits per position this tail is far thinner than the Poisson one of the
    same mean.)"""
    p, p_r = affine_prime(M, S), affine_prime(M_r, S_r)
    q = min(1.0, S_r / p_r)
    lo, frac = divmod(T, p)
    out = 0.0
    for n_c, w in ((lo, 1 - frac / p), (lo + 1, frac / p)):
        if w > 0:
            out += w * _binomial_sf(z * n_c, q, S_r)
    return out


def _binomial_sf(n: int, q: float, k: int) -> float:
    """P(Binomial(n, q) ≥ k) in O(k + a few) terms, in log space: below the mean as 1 minus
    the k terms under it, above the mean as the falling terms from k up."""
    if k <= 0:
        return 1.0
    if k > n or q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    lq, l1q, lgn = math.log(q), math.log1p(-q), math.lgamma(n + 1)
    pmf = lambda j: math.exp(lgn - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * lq + (n - j) * l1q)  # noqa: E731
    if k <= n * q:
        return max(0.0, 1.0 - sum(pmf(j) for j in range(k)))
    total, j = 0.0, k
    while j <= n:
        t = pmf(j)
        total += t
        if t < total * 1e-17:
            break
        j += 1
    return min(1.0, total)


@checked
def register_false_on(M_r: int, S_r: int, z: int) -> float:
    """The register's false-on rate: an inactive circuit reads α̂ = c/S_r, c the number of
    its register neurons that active circuits use, and shares a neuron with each active
    circuit of another slope with probability S_r/p_r (two lines of the plane meet once, in
    one of its p_r columns), so c ~ Binomial(z, S_r/p_r) and it reads on when c > S_r/2."""
    p_r = affine_prime(M_r, S_r)
    return _binomial_sf(z, min(1.0, S_r / p_r), S_r // 2 + 1)


@checked(p_g=real(0.0, 1.0))
def noise_ratio(p_g: float, T: int, M: int) -> float:
    """y = p_g·T/M: falsely open positions' contribution to an active readout's variance,
    per layer, relative to its own propagation noise (module docstring)."""
    return p_g * T / M


@checked(y=real(0.0, None))
def variance_ratio(y: float, L: int) -> float:
    """The payload variance at layer L relative to the construction's own oracle: layer 1 is
    exact, every later layer adds v of its own, a false position at layer l carries
    (1 + y + … + y^{l−2}) times the noise one layer of active positions brings, and passes
    y of it on. inf once y ≥ 1 and L is large (a cascade of false positions)."""
    L = check_int("L", L, 1)
    y = check_real("y", y, 0.0)
    if L <= 2:
        return 1.0
    extra = sum(y * sum(y**j for j in range(l - 1)) for l in range(2, L))
    return 1.0 + extra / (L - 1)


def _registers(D: int, z: int):
    """(S_r, M_r, M, capacity) of every register of the rule's grid at width D whose own
    readout stays within RATE_MAX/4 (`register_false_on`); capacity: the circuits both
    planes hold."""
    out = []
    for share in REGISTER_SHARES:
        M_r = int(round(share * D))
        M = (D - M_r) // 4
        try:
            cap_payload = affine_capacity(M, S_PAYLOAD)
        except ValueError:
            continue
        for S_r in S_R_RANGE:
            try:
                cap = min(cap_payload, affine_capacity(M_r, S_r))
            except ValueError:
                break  # the plane of S_r no longer fits M_r
            if register_false_on(M_r, S_r, z) <= RATE_MAX / 4:
                out.append((S_r, M_r, M, cap))
    return out


@checked
def scaling_design(D: int, *, z: int, L: int, x: float) -> SwitchOffScheme:
    """The rule: the switch-off construction for width D, z active circuits, depth L and
    load x = T(d/D)² (T = `core.theory.T_at`(x, D)). Among the registers of `REGISTER_SHARES` × `S_R_RANGE`
    whose planes hold T circuits, it takes the one that minimises the theory's payload
    variance at layer L, x_M·`variance_ratio`(y, L) with x_M = T/M² (the payload's own
    noise ∝ x_M, the false gates' excess from `gate_false_rate`); a wider register lowers
    the false gates but raises x_M. Registers whose own readout would misread more than
    RATE_MAX/4 of the inactive circuits (`register_false_on`) are not considered; past the
    predicted boundary (y ≥ 1 everywhere) the register with the smallest y is taken. A load no register can hold raises a ValueError naming
    x and the largest load that fits."""
    D = check_int("D", D, 64)
    x = check_real("x", x, 0.0, open_low=True)
    T = max(z, T_at(x, D))
    best = None
    for S_r, M_r, M, cap in _registers(D, z):
        if cap < T:
            continue
        y = noise_ratio(gate_false_rate(M, M_r, T, S=S_PAYLOAD, S_r=S_r, z=z), T, M)
        # a design the theory expects to hold ranks by its payload variance; past the boundary
        # (y ≥ 1, false positions feeding each other) by y itself
        key = ((0, (T / M**2) * variance_ratio(y, L)) if y < 1 else (1, y)) + (M_r, S_r)
        if best is None or key < best[0]:
            best = (key, S_r, M_r, M)
    if best is None:
        top = max_load(D, z=z)
        raise ValueError(
            f"x={x!r} is out of range for the switch-off construction at D={D}: "
            f"allowed 0 < x <= {top:.4g} (no register plane holds {T} circuits)"
        )
    _, S_r, M_r, M = best
    return SwitchOffScheme(D, M, M_r, S_PAYLOAD, S_r)


@checked
def max_load(D: int, *, z: int) -> float:
    """The largest T(d/D)² any register of the rule's grid holds at width D for z active circuits."""
    cap = max((cap for *_, cap in _registers(check_int("D", D, 64), z)), default=0)
    return control_parameter(D, cap) if cap else 0.0


@checked
def scaling_boundary(D: int, *, z: int, L: int, factor: float = 1.5, tol: float = 0.01) -> float:
    """The theory's capacity of the rule's construction on criterion (b): the largest load
    x at which the design for x keeps √variance_ratio ≤ factor (the payload's q90 within
    `factor` of its own oracle), found by bisection in log x to a relative `tol`."""
    D = check_int("D", D, 64)

    def holds(x):
        s = scaling_design(D, z=z, L=L, x=x)
        T = max(z, T_at(x, D))
        y = noise_ratio(gate_false_rate(s.M, s.M_r, T, S=s.S, S_r=s.S_r, z=z), T, s.M)
        return y < 1 and math.sqrt(variance_ratio(y, L)) <= factor

    lo, hi = 1e-5, 0.9 * max_load(D, z=z)
    if not holds(lo):
        return lo
    if holds(hi):
        return hi
    return log_bisect(holds, lo, hi, tol)[0]


@checked
def tolerated_noise(L: int, *, factor: float = 1.5) -> float:
    """y*: the largest noise ratio y with √`variance_ratio`(y, L) ≤ factor (criterion (b)'s
    1.5 by default), by bisection; 1 for L ≤ 2 (no layer carries false-gate noise)."""
    L = check_int("L", L, 1)
    factor = check_real("factor", factor, 1.0, open_low=True)
    lo, hi = 0.0, 1.0
    if math.sqrt(variance_ratio(1.0 - 1e-12, L)) <= factor:
        return 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.sqrt(variance_ratio(mid, L)) <= factor else (lo, mid)
    return lo


@checked
def family_boundary(D: int, *, z: int, L: int, S: int = S_PAYLOAD, factor: float = 1.5, tol: float = 0.01) -> float:
    """An upper bound, within the theory, on the criterion-(b) capacity of *every* switch-off
    construction of width D = 4M + M_r with payload redundancy S: a load x above which no
    register (any M_r ≤ D, any S_r ≥ 1) keeps the noise ratio y = p_g·T/M ≤
    `tolerated_noise`(L, factor), p_g the gate's binomial tail as in `gate_false_rate`.

    Each relaxation can only raise the bound. The planes' primes are replaced by their
    continuous values p = M/S and p_r = M_r/S_r (a real plane's primes are no larger, so a
    position sees at least ⌊T·S/M⌋ circuits, each meeting an active register line with
    probability at least S_r²/M_r, and the binomial tail grows with both); M = (D − M_r)/4
    is not rounded; the register's own false-on rate is not required. M_r is covered in
    cells of D/200, each tested at its most favourable corner: the payload of the cell's
    smallest M_r, the register of its largest. What is kept is what makes a design one:
    both planes fit (S_r² ≤ M_r) and hold T circuits ((M/S)² ≥ T, (M_r/S_r)² ≥ T).
    Returns the smallest load the bisection found failing (within a factor 1 + tol of the
    largest found holding; 1e-6 if even that fails), so no design of the family holds there:
    the rule's design (`scaling_boundary`) is lower."""
    D = check_int("D", D, 64)
    S = check_int("S", S, 1)
    y_max = tolerated_noise(L, factor=factor)

    def holds(x):
        T = max(z, T_at(x, D))
        for k in range(200):  # cells of M_r: [k, k + 1]·D/200
            M, M_r = (D - k * D / 200) / 4, (k + 1) * D / 200
            if (M / S) ** 2 < T:  # the payload plane holds at most p² ≤ (M/S)² circuits
                continue
            n = z * int(T * S // M)
            S_r = 1
            while S_r * S_r <= M_r and (M_r / S_r) ** 2 >= T:  # the register plane fits and holds T
                if _binomial_sf(n, S_r * S_r / M_r, S_r) * T / M <= y_max:
                    return True
                S_r += 1
        return False

    lo, hi = 1e-6, 1.0
    if not holds(lo):
        return lo  # fails at 1e-6, so above it too
    return log_bisect(holds, lo, hi, tol)[1]


# ---- the network -------------------------------------------------------------------------


class _Plane:
    """The lines of the affine plane over GF(p) with S points, line k = (a, b) = divmod(k, p)
    on positions i·p + (a·i + b) mod p, i < S (`assignment.assign_affine`), for the first T
    lines. `points` and `lines_through` are exact arithmetic: no sorted user lists."""

    def __init__(self, M: int, S: int, T: int, device):
        self.p, self.S, self.T = affine_prime(M, S), S, T
        self.A = -(-T // self.p)  # slopes in use
        self.i = torch.arange(S, device=device)
        self.a = torch.arange(self.A, device=device)

    def points(self, k: torch.Tensor) -> torch.Tensor:
        """Positions of lines k [...] -> [..., S]."""
        a, b = k // self.p, k % self.p
        return self.i * self.p + (a[..., None] * self.i + b[..., None]) % self.p

    def lines_through(self, pos: torch.Tensor):
        """The lines through positions pos [N]: (row into pos [K], line [K], column of pos)."""
        col, j = pos // self.p, pos % self.p
        k = self.a * self.p + (j[:, None] - self.a * col[:, None]) % self.p  # [N, A]
        ok = k < self.T
        row = torch.arange(pos.shape[0], device=pos.device)[:, None].expand_as(k)[ok]
        return row, k[ok], col[row]


class SwitchOffNetwork:
    """The switch-off construction's network for T random rotation circuits (module
    docstring), run sparsely: a layer costs O(active positions × circuits through each),
    never O(T). Assignments: every payload layer l = 1..L draws `torch.randperm(T)` (which
    circuit gets which line, as `assignment.layer_assignments(..., design="affine")`), the
    register one more."""

    def __init__(
        self, scheme: SwitchOffScheme, T: int, L: int, generator: torch.Generator, *, device="cpu", dtype=torch.float32
    ):
        self.scheme = scheme
        self.T = check_int("T", T, 1, scheme.max_T)
        self.L = check_int("L", L, 1)
        self.device, self.dtype = torch.device(device), dtype
        self.theta = sample_thetas(T, generator)
        self.W = simplex_weights(self.theta).to(device, dtype)
        # int32: the same permutations as int64 draws (torch.randperm's sequence does not
        # depend on the dtype), at half the memory and time
        perms = [torch.randperm(T, generator=generator, dtype=torch.int32) for _ in range(L + 1)]
        ids = torch.arange(T, dtype=torch.int32, device=device)
        self.perm = torch.stack(perms[:L]).to(device)  # [L, T]: layer l's line of circuit t is perm[l-1, t]
        self.inv = torch.empty_like(self.perm)
        for l in range(L):
            self.inv[l][self.perm[l]] = ids
        self.perm_r = perms[L].to(device)
        self.inv_r = torch.empty_like(self.perm_r)
        self.inv_r[self.perm_r] = ids
        self.plane = _Plane(scheme.M, scheme.S, T, device)
        self.plane_r = _Plane(scheme.M_r, scheme.S_r, T, device)
        self.V = SIMPLEX.to(device, dtype)

    def positions(self, l: int, u: torch.Tensor) -> torch.Tensor:
        """e_u^l, payload positions of circuits u at layer l (1-based) -> [..., S]."""
        return self.plane.points(self.perm[l - 1][u])

    def circuits_through(self, l: int, pos: torch.Tensor):
        """(row into pos, circuit u, column of pos in u's line) for every circuit using pos at layer l."""
        row, k, col = self.plane.lines_through(pos)
        return row, self.inv[l - 1][k], col

    # ---- one batch ------------------------------------------------------------------------
    def register_hits(self, active: torch.Tensor):
        """Per (sample, circuit) with any register neuron on: (b, u, c), c = Σ of u's
        register neurons (each on neuron holds how many active circuits use it). c/S_r is
        the circuit's on-indicator readout α̂: 1 for an active circuit (up to (z−1)/S_r more
        where active circuits share a register neuron), at most z/S_r for an inactive one."""
        B, z = active.shape
        M_r, T = self.scheme.M_r, self.T
        bits = self.plane_r.points(self.perm_r[active])  # [B, z, S_r]
        b = torch.arange(B, device=active.device)[:, None, None].expand_as(bits)
        key, cnt = torch.unique(b.reshape(-1) * M_r + bits.reshape(-1), return_counts=True)
        row, k, _ = self.plane_r.lines_through(key % M_r)
        ub = (key // M_r)[row] * T + self.inv_r[k]
        ukey, inverse = torch.unique(ub, return_inverse=True)
        c = torch.zeros(ukey.shape[0], dtype=self.dtype, device=active.device)
        c.index_add_(0, inverse, cnt[row].to(self.dtype))
        return ukey // T, ukey % T, c

    def _scatter_counts(self, l: int, hits, B: int) -> torch.Tensor:
        """K at layer l's positions: Σ_u [n ∈ e_u^l]·c_u, flat [B·M]."""
        b, u, c = hits
        M, S = self.scheme.M, self.scheme.S
        pos = self.positions(l, u)  # [N, S]
        idx = (b[:, None] * M + pos).reshape(-1)
        return torch.bincount(idx, weights=c[:, None].expand(-1, S).reshape(-1), minlength=B * M).to(self.dtype)

    def _used(self, l: int, active: torch.Tensor) -> torch.Tensor:
        """[B·M] bool: positions some active circuit uses at layer l."""
        B = active.shape[0]
        M = self.scheme.M
        pos = self.positions(l, active)  # [B, z, S]
        used = torch.zeros(B * M, dtype=torch.bool, device=active.device)
        used[(torch.arange(B, device=active.device)[:, None, None] * M + pos).reshape(-1)] = True
        return used

    def _touched(self, l: int, flags: torch.Tensor, B: int):
        """Each (b, u) once, for every circuit u whose layer-l positions include a flagged
        one at sample b: the incidence through u's first flagged position is kept."""
        M = self.scheme.M
        idx = flags.nonzero().squeeze(1)
        row, u, col = self.circuits_through(l, idx % M)
        b = idx[row] // M
        pos = self.positions(l, u)  # [N, S]
        f = flags[b[:, None] * M + pos]  # [N, S]
        first = f.to(torch.int8).argmax(1)
        keep = first == col
        return b[keep], u[keep], pos[keep]

    def _step(self, l: int, H: torch.Tensor, B: int) -> torch.Tensor:
        """The payload's pre-activation at layer l ≥ 2 from H^{l−1}, flat [B·M, 3]."""
        M, S = self.scheme.M, self.scheme.S
        b, u, pos = self._touched(l - 1, (H > 0).any(1), B)
        G = H[b[:, None] * M + pos].sum(1)  # [N, 3]
        Y = torch.bmm(self.W[u], G[:, :, None])[:, :, 0] / S
        nxt = self.positions(l, u)
        return scatter_rows(
            (b[:, None] * M + nxt).reshape(-1), Y[:, None, :].expand(-1, S, -1).reshape(-1, 3), H.shape[0]
        )

    def layers(self, active: torch.Tensor, x0: torch.Tensor, *, switch_off: bool = False, hits=None):
        """Yield (l, H^l [B·M, 3], open^l [B·M] bool, used^l [B·M] bool) for l = 1..L.
        switch_off: the construction's own oracle, every payload position that no active
        circuit uses set to 0 after each layer (a perfect gate). hits: `register_hits(active)`
        if already computed."""
        B, z = active.shape
        M, S, S_r, G = self.scheme.M, self.scheme.S, self.scheme.S_r, self.scheme.G
        h0 = simplex_code(x0.to(self.dtype))  # [B, z, 3]
        pre = torch.bmm(self.W[active.reshape(-1)], h0.reshape(-1, 3, 1)).view(B, z, 3) + 1
        pos = self.positions(1, active)  # [B, z, S]
        H = torch.zeros(B * M, 3, dtype=self.dtype, device=self.device)
        flat = (torch.arange(B, device=self.device)[:, None, None] * M + pos).reshape(-1)
        H.index_add_(0, flat, pre[:, :, None, :].expand(B, z, S, 3).reshape(-1, 3))
        H = torch.relu(H)
        used = self._used(1, active)
        yield 1, H, used, used
        if hits is None and not switch_off:
            hits = self.register_hits(active)
        for l in range(2, self.L + 1):
            used = self._used(l, active)
            P = self._step(l, H, B)
            if switch_off:
                H = torch.relu(P + 1) * used[:, None]
                opened = used
            else:
                K = self._scatter_counts(l, hits, B)
                g = torch.relu(S_r - K)
                H = torch.relu(P + 1 - (G + 1) * g[:, None])
                opened = g == 0
            yield l, H, opened, used

    def readouts(self, l: int, H: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """x̂ [N, 2] of circuits u at samples b, at layer l: (2/3) Σ_k v_k (1/S)⟨e_u^l|H_k⟩."""
        M, S = self.scheme.M, self.scheme.S
        flat = b[:, None] * M + self.positions(l, u)
        return (2.0 / 3.0) * (H[flat].sum(1) / S) @ self.V


def _rotate(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([c * x[..., 0] - s * x[..., 1], s * x[..., 0] + c * x[..., 1]], -1)


_KEYS = (
    "active_x",
    "worst_dx",
    "q90_dx",
    "active_on",
    "inactive_on",
    "inactive_x",
    "false_on",
    "false_off",
    "leak",
    "overlap2",
    "spurious_on",
    "open_on",
)


def _stats(
    net: SwitchOffNetwork,
    active: torch.Tensor,
    x0: torch.Tensor,
    wanted: set,
    *,
    switch_off: bool,
    on_threshold: float,
    chunk: int,
    stop=None,
) -> dict:
    """`correction.scheme_run`'s statistics (same keys and definitions) of the switch-off
    network, over the batch in chunks of `chunk` samples, sparse: a circuit with no register
    neuron on reads α̂ = 0, one with no open or non-zero position x̂ = 0, exactly.

    The on-indicator readout is the register's, α̂_t = (1/S_r)⟨e^R_t|R⟩ (the circuit's own
    on-indicator memory, the same at every layer); the gates' errors show in the payload,
    in spurious_on (gates open at positions no active circuit uses, a fraction of the
    block) and open_on (inactive circuits with more than half of their positions open).
    stop: as `correction.schemes._run_stats_sparse`'s (a run that stops early carries
    "stopped_at", its statistics over the samples done)."""
    L, T, M, S_r = net.L, net.T, net.scheme.M, net.scheme.S_r
    batch, z = active.shape
    sums = {k: [0.0] * (L + 1) for k in ("active_x", "active_on", "inactive_on", "inactive_x")}
    counts = {k: [0] * (L + 1) for k in ("false_on", "false_off", "leak", "overlap2", "spurious", "open_on")}
    dx_all = {l: [] for l in wanted}
    for lo in range(0, batch, chunk):
        act, xs = active[lo : lo + chunk], x0[lo : lo + chunk]
        B = act.shape[0]
        truth = xs.double()
        theta = net.theta[act.cpu()].to(net.device)
        ab = torch.arange(B, device=net.device)[:, None].expand(B, z).reshape(-1)
        akey = ab * T + act.reshape(-1)
        hb, hu, hc = net.register_hits(act)
        alpha = hc.double() / S_r
        is_act = torch.isin(hb * T + hu, akey)
        a_alpha = alpha[is_act]
        i_alpha = alpha[~is_act]
        for l, H, opened, used in net.layers(act, xs, switch_off=switch_off, hits=(hb, hu, hc)):
            truth = _rotate(theta, truth)
            if l not in wanted:
                continue
            a_x = net.readouts(l, H, ab, act.reshape(-1))
            dx = ((a_x.double() - truth.reshape(-1, 2)) ** 2).sum(-1)
            sums["active_x"][l] += float(dx.sum())
            dx_all[l].append(dx.sqrt().cpu())
            sums["active_on"][l] += float(((a_alpha - 1) ** 2).sum())
            counts["false_off"][l] += int((a_alpha < on_threshold).sum()) + (B * z - a_alpha.numel())
            sums["inactive_on"][l] += float(i_alpha.pow(2).sum())
            counts["false_on"][l] += int((i_alpha > on_threshold).sum())
            counts["leak"][l] += int((i_alpha > 0.25).sum())
            b, u, pos = net._touched(l, opened | (H > 0).any(1), B)
            inact = ~torch.isin(b * T + u, akey)
            b, u, pos = b[inact], u[inact], pos[inact]
            sums["inactive_x"][l] += float(net.readouts(l, H, b, u).double().pow(2).sum())
            flat = b[:, None] * M + pos
            counts["overlap2"][l] += int((used[flat].sum(1) >= 2).sum())
            counts["open_on"][l] += int((opened[flat].double().mean(1) > on_threshold).sum())
            counts["spurious"][l] += int((opened & ~used).sum())
        done = lo + B
        if stop is not None and done < batch and stop(counts, dx_all, done):
            break
    done = min(done, batch)
    n_in, n_act = done * (T - z), done * z
    res = {k: [0.0] * (L + 1) for k in _KEYS}
    for l in wanted:
        dx = torch.cat(dx_all[l])
        res["active_x"][l] = sums["active_x"][l] / n_act
        res["worst_dx"][l] = float(dx.max())
        res["q90_dx"][l] = float(torch.quantile(dx, 0.9))
        res["active_on"][l] = sums["active_on"][l] / n_act
        res["false_off"][l] = counts["false_off"][l] / n_act
        for k in ("inactive_on", "inactive_x"):
            res[k][l] = sums[k][l] / n_in if n_in else 0.0
        for k in ("false_on", "leak", "overlap2", "open_on"):
            res[k][l] = counts[k][l] / n_in if n_in else 0.0
        res["spurious_on"][l] = counts["spurious"][l] / (M * done)
    if done < batch:
        res["stopped_at"] = done
    return res


@checked
def scaling_run(
    scheme: SwitchOffScheme,
    T: int,
    *,
    z: int = 2,
    L: int = 10,
    batch: int = 128,
    seed: int = 0,
    device="cpu",
    dtype=torch.float32,
    on_threshold: float = 0.5,
    layers=None,
    with_oracle: bool = False,
    chunk: int = 32,
    stop=None,
    oracle_only: bool = False,
) -> dict:
    """One fresh switch-off network and `batch` random active sets of z circuits with unit
    payloads: per-layer statistics with `correction.scheme_run`'s keys (lists indexed by
    layer). spurious_on is the fraction of gates open at positions no active circuit uses.
    with_oracle: also the construction's own oracle on the same draw, under "oracle";
    oracle_only: the oracle's statistics alone. stop: see `_stats`."""
    T = check_int("T", T, 1, scheme.max_T)
    z = check_int("z", z, 1, T)
    chunk = check_int("chunk", chunk, 1)
    g = torch.Generator().manual_seed(int(seed))
    net = SwitchOffNetwork(scheme, T, L, g, device=device, dtype=dtype)
    active = sample_active(T, z, batch, g).to(device)
    x0 = sample_unit_vectors((batch, z), g).to(device)
    wanted = set(range(1, L + 1)) if layers is None else {check_int("layers", l_, 1, L) for l_ in layers}
    kw = dict(on_threshold=on_threshold, chunk=chunk)
    if oracle_only:
        return _stats(net, active, x0, wanted, switch_off=True, **kw)
    res = _stats(net, active, x0, wanted, switch_off=False, stop=stop, **kw)
    if with_oracle and "stopped_at" not in res:
        res["oracle"] = _stats(net, active, x0, wanted, switch_off=True, **kw)
    return res
