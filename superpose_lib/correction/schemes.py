"""Error correction of on-indicators (book chapter "Error correction of on-indicators").

The failure mode: an inactive circuit's on-indicator readout α̂_u = (1/S)⟨e_u|A⟩ collects
1/S for every neuron it shares with an active circuit (whose indicator neurons are on).
With S = 6 and z ≥ 2, two overlaps give 1/3 > 0.25, the step ReLU(2α−0.5) − ReLU(2α−1.5)
passes it, and the phantom circuit writes noise into every neuron it uses at the next
layer ("seizure").

Every scheme here is a real construction of the large network's weights at a given
total width D, built from a *generalised block structure*: the d = 4 neurons of a small
circuit are split into groups (the two indicator neurons, the two payload neurons, or all
four together as in RiS); each group g has its own block size M_g, redundancy S_g, number
of independent copies r_g and its own assignment e^{g,l}_t. Between groups h → g

    W^l_{gh} = w̄_{gh} ⊗ 𝒲^l_{gh} + (1/S_h) Σ_t Δw_{t,gh} ⊗ |e^{g,l}_t⟩⟨e^{h,l−1}_t|,

with 𝒲_{gh} = 1/S_h on the connectivity of (e^{g,l}, e^{h,l−1}) and −χ_{gh} elsewhere,
χ_{gh} balancing the interference between different circuits to zero mean (RiS's mean-
weight term, one per pair of groups). With one group holding all four rows this is
exactly `SuperposedNetwork`. The forward pass is structured (gathers and scatters, the
`network` primitives), never a D × D matrix, never a Python loop over circuits.

Schemes (`make_scheme`):

* ``baseline``  RiS: one group, M = D/4, S = 6, step dead zone θ_lo = 0.25.
* ``sharp`` (E1) RiS blocks, indicator step α' = ReLU(k(α−θ_lo)) − ReLU(k(α−θ_hi)),
  k = 1/(θ_hi − θ_lo): inactive readouts below θ_lo are removed, active ones above θ_hi
  restored to exactly 1. Only the indicator rows of w_t and the biases change.
* ``redundant`` (E2) indicator group of r independent copies (each M_α neurons per
  block, redundancy S_α, own random layer permutations): the readout averages the r·S_α
  neurons before the step. r = 1 with a larger S_α is the "one indicator block with its
  own redundancy" variant. Payload blocks get the rest of D.
  With ``ivw`` the copies are averaged with inverse-variance weights (noise power ≈ 1/M per
  block of M neurons) instead of equally.
* ``wide`` (E5) the indicator rows 0–1 leave the payload's positions (as ``independent``)
  and get a share f of D that may exceed 1/2: indicator blocks of M_α = fD/2 > D/4, wider
  than RiS's, with their own redundancy S_α and the E1 dead zone; the payload keeps S in
  blocks of (1 − f)D/2. `correction.scale.indicator_redundancy` chooses S_α.
* ``register`` (E4) like ``redundant``, but the extra pair is an active-set register
  written once at layer 1 from the clean input (layer-0 trick) and refreshed only from
  itself (indicator rows read indicator columns only); its assignment is re-permuted
  every layer, or the same at every layer with ``static``.
* ``gated`` (E3) RiS blocks; the indicator group's assignment at layer l is the payload
  group's at layer l+1, so indicator neuron n at layer l−1 is on iff a circuit using
  payload neuron n at layer l is on; payload neuron n gets the diagonal gate
  G·((a_0 − a_1)[n] − 1) from it (D/2 extra weights).
* ``wide_rule`` E5's layout with share 1/2, an affine assignment, and S_α and θ chosen by
  a rule from the neuron-level recursion for the given (D, z, L) (`wide_rule`): the
  indicator redundancy grown with D, a family whose boundary still falls like 1/ln² M.
* ``scaling`` the switch-off construction (`scaling`, a network of its own): a static
  register of the active set, a gate per payload position read from it, and a payload in
  the simplex code with no mean-weight term, designed by rule for (D, z, L, x).
* ``oracle`` the upper bound, NOT a construction: the baseline with every neuron that no
  active circuit uses switched off after each layer (it reads the active set).

Every group draws its e^{g,l}_t from CiS2's prime-step assignment, or with
``design="affine"`` from the lines of an affine plane over GF(p) (`assignment.assign_affine`):
≈ 3× the capacity at S = 6, which lifts the "assignment full" cap of the narrower payload
blocks of E2' and E5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.assignment import assignment_bytes, capacity, check_design, layer_assignments
from ..core.checks import check_d, check_device, check_dtype, check_fits, check_int, checked, real
from ..core.circuits import (
    decode,
    encode_input,
    run_circuits,
    sample_thetas,
    scheme_weights,
)
from ..core.experiment import sample_active, sample_unit_vectors
from ..core.network import chi_from_excess, csr_expand, csr_users, excess_pairs, gather_sum, scatter_rows, scatter_sum
from .scaling import SwitchOffScheme, scaling_design, scaling_run
from .wide_rule import wide_rule_design

__all__ = [
    "BlockGroup",
    "Scheme",
    "SCHEMES",
    "make_scheme",
    "general_chi",
    "CorrectedNetwork",
    "build_corrected",
    "scheme_run",
    "scheme_bytes",
    "scheme_rows",
    "encode",
]

INDICATOR = (0, 1)  # rows of w_t carrying the on-indicator
PAYLOAD = (2, 3)  # rows carrying x


def _check_float(name, value, low, high, *, open_low=False):
    v = float(value)
    if not math.isfinite(v) or v < low or v > high or (open_low and v == low):
        lo = "<" if open_low else "<="
        raise ValueError(f"{name}={value!r} is out of range: allowed {low} {lo} {name} <= {high}")
    return v


@dataclass(frozen=True)
class BlockGroup:
    """Rows `rows` of every small circuit, written onto `copies` independent embeddings of
    blocks of M neurons with redundancy S each (composite: M·copies neurons per block,
    S·copies neurons per circuit). static: the same assignment at every layer (E4).
    lead: this group's layer-l assignment is group `lead`'s layer-(l+shift) one (E3:
    shift = 1; shift = 0 ties the two groups to one assignment, as in RiS).
    design: the assignment of each copy, "prime_step" (CiS2) or "affine" (the lines of an
    affine plane over GF(p), capacity ≈ (M/S)² instead of prime-step's ≈ M²/(4S²);
    `assignment.assign_affine`)."""

    rows: tuple
    M: int
    S: int
    copies: int = 1
    static: bool = False
    lead: int | None = None
    shift: int = 1
    design: str = "prime_step"

    def __post_init__(self):
        rows = tuple(int(r) for r in self.rows)
        if not rows or len(set(rows)) != len(rows) or min(rows) < 0 or max(rows) > 5:
            raise ValueError(f"rows={self.rows!r} must be distinct circuit neurons in 0..5")
        object.__setattr__(self, "rows", rows)
        check_int("M", self.M, 1)
        check_int("S", self.S, 1, self.M)
        check_int("copies", self.copies, 1)
        check_int("shift", self.shift, 0, 1)
        if check_design(self.design) != "prime_step":  # prime-step's capacity stays lazy, as before
            capacity(self.M, self.S, self.design)  # the affine plane must fit the block (ValueError naming M)

    @property
    def width(self) -> int:
        """Large-network neurons this group occupies: |rows| · M · copies."""
        return len(self.rows) * self.M * self.copies

    @property
    def max_T(self) -> int:
        """Most circuits this group's assignment holds (`assignment.capacity`)."""
        return capacity(self.M, self.S, self.design)


@dataclass(frozen=True)
class Scheme:
    """A construction: block groups (partitioning the circuit rows 0..d−1), the indicator
    step's dead zone [θ_lo, θ_hi], the extra indicator pair (rows 4–5; None, "average"
    with weight rho, or "register"), the payload gate strength (E3) and whether it is
    the oracle bound."""

    name: str
    groups: tuple
    theta_lo: float = 0.25
    theta_hi: float = 0.75
    gate: float = 0.0
    oracle: bool = False
    extra: str | None = None
    rho: float = 0.5
    knob: float = float("nan")  # the swept knob's value (for tables)
    label: str = ""

    def __post_init__(self):
        if self.extra not in (None, "average", "register"):
            raise ValueError(f"extra={self.extra!r} must be None, 'average' or 'register'")
        _check_float("rho", self.rho, 0.0, 1.0)
        rows = sorted(r for g in self.groups for r in g.rows)
        if rows != list(range(self.d)):
            raise ValueError(f"groups must partition the circuit rows 0..{self.d - 1}, got rows {rows}")
        _check_float("theta_lo", self.theta_lo, 0.0, 1.0)
        _check_float("theta_hi", self.theta_hi, self.theta_lo, 1.0, open_low=True)
        _check_float("gate", self.gate, 0.0, 1e6)
        for g in self.groups:
            if g.lead is not None:
                if not 0 <= g.lead < len(self.groups) or self.groups[g.lead] is g:
                    raise ValueError(f"lead={g.lead} must name another group (0..{len(self.groups) - 1})")
                o = self.groups[g.lead]
                if (o.M, o.S, o.copies, o.design) != (g.M, g.S, g.copies, g.design) or o.static:
                    raise ValueError("lead: both groups need equal M, S, copies, design and a reshuffled assignment")
        if self.gate > 0 and not any(g.lead is not None and g.shift == 1 for g in self.groups):
            raise ValueError("gate > 0 needs an indicator group with lead set (the E3 layout)")

    @property
    def d(self) -> int:
        """Neurons per layer of one small circuit: 4 (RiS), 6 with an extra indicator pair."""
        return 4 if self.extra is None else 6

    @property
    def D(self) -> int:
        """Total width: every indicator copy and register neuron counts."""
        return sum(g.width for g in self.groups)

    @property
    def max_T(self) -> int:
        """Most circuits every group's assignment can hold."""
        return min(g.max_T for g in self.groups)

    def parameters(self, L: int) -> int:
        """Weights and biases of the dense equivalent network: for every pair of circuit
        rows (i, j) that w̄ or some Δw_t touches, a block of M_i × M_j weights per layer
        l ≥ 2 (the mean-weight term fills it), D biases per layer, and the gate's diagonal
        (E3). Layer 1 is the identity (layer-0 trick) and is not counted."""
        w, w_bar, _ = scheme_weights(torch.tensor([0.3, 1.1]), self.theta_lo, self.theta_hi, self.extra, self.rho)
        touched = (w.abs().sum(0) + w_bar.abs()) > 0  # [d, d]
        size = torch.zeros(self.d, dtype=torch.long)
        for g in self.groups:
            size[list(g.rows)] = g.M * g.copies
        W = int((touched.long() * size[:, None] * size[None, :]).sum())
        gate = sum(g.M * g.copies * len(g.rows) for g in self.groups if 2 in g.rows) if self.gate > 0 else 0
        return (L - 1) * (W + gate) + L * self.D


@checked
def encode(alpha: torch.Tensor, x: torch.Tensor, d: int = 4) -> torch.Tensor:
    """`encode_input`, with the extra indicator pair [1.5α, 0.5α] appended when d = 6."""
    d = check_d(d, (4, 6))
    a = encode_input(alpha, x)
    if d == 6:
        a = torch.cat([a, a[..., 0:2]], dim=-1)
    return a


def _split(D: int, parts: int, name: str) -> int:
    if D % parts:
        raise ValueError(f"{name}: D={D} must be a multiple of {parts}")
    return D // parts


@checked
def make_scheme(
    kind: str,
    D: int,
    *,
    S: int = 6,
    theta: float = 0.25,
    theta_hi: float = 0.75,
    share: float = 0.25,
    r: int = 1,
    S_alpha: int = 6,
    S_x: int | None = None,
    static: bool = False,
    gate: float = 4.0,
    ivw: bool = False,
    design: str = "prime_step",
    z: int | None = None,
    L: int | None = None,
    x: float | None = None,
) -> Scheme:
    """The scheme `kind` at total width D (module docstring). Knobs:

    scaling: the switch-off construction designed by rule for z active circuits at depth L
    and the load x = T(d/D)² (`scaling.scaling_design`; a `SwitchOffScheme`, run by
    `scheme_run` like every other scheme; the other knobs are not used). A load no
    register can hold raises a ValueError naming x and the largest load that fits.

    wide_rule: E5's layout with S_α and θ chosen by `wide_rule.wide_rule_design` for
    (D, z, L); x, if given, must not exceed the rule's predicted boundary.

    sharp (E1): dead zone [theta, theta_hi] (RiS: [0.25, 0.75]).
    redundant (E2) / register (E4): an extra indicator pair (rows 4–5) gets `share` of D
    as r independent copies of M_e = share·D/(2r) neurons per block, redundancy S_alpha
    each (r = 1 with a larger S_alpha: one block with its own redundancy); the RiS group
    (rows 0–3, tied as in RiS) gets M = ⌊(D − 2r·M_e)/4⌋ and redundancy S. E2 averages
    the two pairs with ρ = r/(r+1) (each of the r+1 copies weighs the same); E4's pair
    is the register (static: the same assignment at every layer).
    ivw (E2): weight the copies by inverse variance instead of equally: a readout's noise
    power is ≈ 1/(neurons per block) whatever its redundancy (RiS §6: ε ≈ d/D), so the
    extra pair (r·M_e neurons per block) gets ρ = r·M_e/(r·M_e + M).
    independent (E2 untied): the indicator rows 0–1 leave the payload's positions: r
    copies of M_α = share·D/(2r) neurons, redundancy S_alpha; payload M_x = (D − 2r·M_α)/2
    with redundancy S_x (default S).
    wide (E5): `independent` with the dead-zone step [theta, theta_hi] and share > 1/2
    allowed: indicator blocks wider than RiS's D/4 (more than 2 of the d blocks' worth of
    neurons), with their own redundancy S_alpha (see `correction.scale.indicator_redundancy`
    for the choice of S_alpha from θ and M_α).
    gated (E3): gate strength G. Baseline and oracle: RiS, M = D/4, S.
    design: every group's assignment, "prime_step" (CiS2, the default) or "affine" (an
    affine plane over GF(p), ≈ 3× prime-step's capacity at S = 6: lifts the cap of the
    narrower payload blocks of `independent` and `wide`); the label ends in " affine".
    Every scheme's width `Scheme.D` is at most D (rounding leaves < 4 neurons unused).
    """
    D = check_int("D", D, 4)
    if kind not in SCHEMES:
        raise ValueError(f"kind={kind!r} must be one of {SCHEMES}")
    if kind in ("scaling", "wide_rule"):
        if z is None or L is None or (kind == "scaling" and x is None):
            need = "z, L and x" if kind == "scaling" else "z and L"
            raise ValueError(f"kind={kind!r} needs {need} (the design rule is a function of D, {need})")
        if kind == "scaling":
            return scaling_design(D, z=z, L=L, x=x)
        rule = wide_rule_design(D, z=z, L=L)
        if x is not None:
            x = float(x)
            if not (math.isfinite(x) and 0 < x <= rule.x_star):
                raise ValueError(
                    f"x={x!r} is out of range for the wide_rule construction at D={D}, z={z}, L={L}: "
                    f"allowed 0 < x <= {rule.x_star:.3g} (the rule's predicted boundary)"
                )
        sch = make_scheme("wide", D, **rule.knobs)
        return Scheme(
            "wide_rule",
            sch.groups,
            theta_lo=rule.theta,
            theta_hi=rule.theta_hi,
            knob=rule.S_alpha,
            label=f"E5 by rule S_α={rule.S_alpha} θ={rule.theta:g}",
        )
    design = check_design(design)
    tag = "" if design == "prime_step" else f" {design}"
    if kind in ("baseline", "oracle", "sharp", "gated"):
        M = _split(D, 4, kind)
        if M < S:
            raise ValueError(
                f"D={D} is out of range for kind={kind!r} with S={S}: allowed D >= {4 * S} "
                "(blocks of M = D/4 neurons hold S of them per circuit)"
            )
        if kind == "gated":
            ind = BlockGroup(INDICATOR, M, S, lead=1, design=design)
            return Scheme(
                kind,
                (ind, BlockGroup(PAYLOAD, M, S, design=design)),
                gate=gate,
                knob=gate,
                label=f"E3 gated G={gate:g}" + tag,
            )
        g = (BlockGroup((0, 1, 2, 3), M, S, design=design),)
        if kind == "sharp":
            return Scheme(
                kind, g, theta_lo=theta, theta_hi=theta_hi, knob=theta, label=f"E1 step [{theta:g}, {theta_hi:g}]" + tag
            )
        name = "oracle (bound)" if kind == "oracle" else "baseline (RiS)"
        return Scheme(kind, g, oracle=kind == "oracle", label=name + tag)
    r = check_int("r", r, 1)
    share = _check_float("share", share, 0.0, 1.0, open_low=True)
    M_e = int(round(share * D / (2 * r)))
    if kind in ("independent", "wide"):
        rest = D - 2 * r * M_e
        S_pay = S if S_x is None else S_x
        if 1 <= M_e < S_alpha and rest >= 2 * S_pay:
            raise ValueError(
                f"S_alpha={S_alpha} is out of range for kind={kind!r} at D={D}, share={share:g}, r={r}: "
                f"allowed S_alpha <= {M_e} (indicator blocks of M_alpha = share·D/(2r) neurons)"
            )
        if M_e < 1 or rest < 2 * S_pay or M_e < S_alpha:
            raise ValueError(
                f"share={share}: needs >= S_alpha indicator neurons per copy and >= S payload neurons "
                f"per block (D={D}, S_alpha={S_alpha})"
            )
        ind = BlockGroup(INDICATOR, M_e, S_alpha, copies=r, design=design)
        pay = BlockGroup(PAYLOAD, rest // 2, S_pay, design=design)
        if kind == "wide":
            label = f"E5 wide f={share:g} S_α={S_alpha} θ={theta:g}" + ("" if r == 1 else f" r={r}") + tag
            return Scheme(kind, (ind, pay), knob=share, label=label, theta_lo=theta, theta_hi=theta_hi)
        label = f"E2' independent f={share:g} r={r} S_α={S_alpha}" + ("" if S_x is None else f" S_x={S_x}") + tag
        return Scheme(kind, (ind, pay), knob=share, label=label)
    M = (D - 2 * r * M_e) // 4
    if M_e < 1 or M < S:
        raise ValueError(f"share={share}: needs >= 1 neuron per extra copy and >= S neurons per RiS block")
    if M_e < S_alpha:
        raise ValueError(
            f"S_alpha={S_alpha} is out of range for kind={kind!r} at D={D}, share={share:g}, r={r}: "
            f"allowed S_alpha <= {M_e} (extra indicator blocks of M_e = share·D/(2r) neurons)"
        )
    main = BlockGroup((0, 1, 2, 3), M, S, design=design)
    extra = BlockGroup((4, 5), M_e, S_alpha, copies=r, static=static, design=design)
    step = "" if (theta, theta_hi) == (0.25, 0.75) else f" step [{theta:g}, {theta_hi:g}]"
    if kind == "redundant":
        label = f"E2 redundant f={share:g} r={r} S_α={S_alpha}" + step + (" ivw" if ivw else "") + tag
        rho = r * M_e / (r * M_e + M) if ivw else r / (r + 1)
        return Scheme(
            kind, (main, extra), extra="average", rho=rho, knob=share, label=label, theta_lo=theta, theta_hi=theta_hi
        )
    label = f"E4 register f={share:g} r={r} S_α={S_alpha}" + (" static" if static else "") + step + tag
    return Scheme(kind, (main, extra), extra="register", knob=share, label=label, theta_lo=theta, theta_hi=theta_hi)


SCHEMES = (
    "baseline",
    "oracle",
    "sharp",
    "redundant",
    "independent",
    "wide",
    "register",
    "gated",
    "wide_rule",
    "scaling",
)


@checked
def general_chi(cur: torch.Tensor, prev: torch.Tensor, M_cur: int, M_prev: int, n, m) -> float:
    """χ with Σ_{t≠u} ⟨e^g_t|𝒲|e^h_u⟩ = 0 when 𝒲 = 1/S_h on C, −χ elsewhere; cur [T, S_g],
    prev [T, S_h]. Same derivation as `network.balance_chi` (which it equals when the two
    groups coincide): U = Σ_C E_cur[n]E_prev[m] − T·S_g·S_h, P = S_g·S_h·T(T−1),
    (1/S_h)·U = χ·(P − U)."""
    T, Sg = cur.shape
    Sh = prev.shape[1]
    E_cur = torch.bincount(cur.reshape(-1), minlength=M_cur).double()
    E_prev = torch.bincount(prev.reshape(-1), minlength=M_prev).double()
    U = float((E_cur[n] * E_prev[m]).sum()) - T * Sg * Sh
    P = float(Sg * Sh) * T * (T - 1)
    return U / (Sh * (P - U)) if P > U else 0.0


@dataclass(frozen=True)
class _Pair:
    """Connection h → g at one layer: per-circuit V_t = Δw_{t,gh}/S_h + c·w̄_{gh}, c = 1/S_h + χ,
    and the pairs (n, m) several circuits connect (counted once in C)."""

    g: int
    h: int
    chi: float
    c: float
    V: torch.Tensor
    w_bar: torch.Tensor
    excess_n: torch.Tensor
    excess_m: torch.Tensor
    excess_k: torch.Tensor


def _composite_idx(group: BlockGroup, T: int, L: int, generator: torch.Generator) -> torch.Tensor:
    """[L, T, S·copies] positions in the composite block of M·copies neurons: copy c's
    independent assignment shifted by c·M. static: one draw repeated at every layer."""
    n_layers = 1 if group.static else L
    parts = [
        layer_assignments(T, group.M, group.S, n_layers, generator, design=group.design) + c * group.M
        for c in range(group.copies)
    ]
    idx = torch.cat(parts, dim=2)
    return idx.expand(L, -1, -1).contiguous() if group.static else idx


class CorrectedNetwork(nn.Module):
    """The large network of a `Scheme` (module docstring), structured.

    Activations are a list over groups of [M_g, d_g, B] tensors (M_g composite, d_g = |rows|).
    """

    def __init__(
        self,
        scheme: Scheme,
        w: torch.Tensor,
        w_bar: torch.Tensor,
        bias: torch.Tensor,
        L: int,
        generator: torch.Generator,
        device="cpu",
    ):
        super().__init__()
        T = w.shape[0]
        self.scheme, self.T, self.L, self.d = scheme, check_int("T", T, 1, scheme.max_T), check_int("L", L, 1), scheme.d
        dtype = w.dtype
        self.w, self.w_bar, self.bias = w.to(device), w_bar.to(device, dtype), bias.to(device, dtype)
        self.groups = scheme.groups
        self.Mg = [g.M * g.copies for g in self.groups]
        self.Sg = [g.S * g.copies for g in self.groups]
        idx = [_composite_idx(g, T, L + 1, generator) for g in self.groups]  # one spare layer for `lead`
        for i, g in enumerate(self.groups):
            if g.lead is not None:
                idx[i] = torch.cat([idx[g.lead][g.shift :], idx[i][-1:]])[: L + 1]
        self.idx = [x[:L].to(device) for x in idx]
        self.rows = [torch.tensor(g.rows, device=device) for g in self.groups]
        self.layer_pairs: list[list[_Pair]] = [[]]
        # users[k][g]: CSR lists of the circuits using each neuron of group g at layer k + 1
        self.users: list[list] = [[csr_users(self.idx[gi][0], self.Mg[gi]) for gi in range(len(self.groups))]]
        for l in range(1, L):
            pairs = []
            for gi, g in enumerate(self.groups):
                for hi, h in enumerate(self.groups):
                    wb = self.w_bar[self.rows[gi]][:, self.rows[hi]]
                    dw = (self.w - self.w_bar)[:, self.rows[gi]][:, :, self.rows[hi]]
                    if wb.abs().sum() == 0 and dw.abs().sum() == 0:
                        continue  # h → g carries nothing (indicator rows never read payload)
                    cur, prev = self.idx[gi][l], self.idx[hi][l - 1]
                    n, m, k = excess_pairs(cur, prev, self.Mg[hi])  # the pairs several circuits connect
                    chi = chi_from_excess(cur, prev, self.Mg[gi], self.Mg[hi], n, m, k)
                    c = 1.0 / self.Sg[hi] + chi
                    pairs.append(_Pair(gi, hi, chi, c, dw / self.Sg[hi] + c * wb, wb, n, m, (k - 1).to(dtype)))
            self.layer_pairs.append(pairs)
            self.users.append([csr_users(self.idx[gi][l], self.Mg[gi]) for gi in range(len(self.groups))])
        self._excess_csr: dict = {}  # (layer, g, h) -> the excess pairs listed by source neuron
        # E3 gate: payload group p reads the indicator group i (lead = p) neuron by neuron
        self.gate_pair = None
        if scheme.gate > 0:
            gi = next(i for i, g in enumerate(self.groups) if g.lead is not None and g.shift == 1)
            self.gate_pair = (gi, self.groups[gi].lead)

    # ---- forward ------------------------------------------------------------------------
    def embed(self, active: torch.Tensor, a0: torch.Tensor) -> list[torch.Tensor]:
        """Layer-0 trick per group: A^0_g = Σ_{t active} (w_t a_t^0)[rows_g] ⊗ e^{g,1}_t."""
        B, z = active.shape
        v = torch.einsum("bkij,bkj->bki", self.w[active], a0)  # [B, z, 4]
        out = []
        for gi in range(len(self.groups)):
            n = self.idx[gi][0][active]  # [B, z, S_g]
            b = torch.arange(B, device=n.device)[:, None, None].expand_as(n)
            dg = len(self.groups[gi].rows)
            A0 = torch.zeros(self.Mg[gi], B, dg, dtype=self.w.dtype, device=n.device)
            vals = v[:, :, self.rows[gi]][:, :, None, :].expand(B, z, n.shape[-1], dg)
            A0.index_put_((n, b), vals, accumulate=True)
            out.append(A0.permute(0, 2, 1).contiguous())
        return out

    def _mask(self, l: int, active: torch.Tensor) -> list[torch.Tensor]:
        """Oracle: 1 on neurons some active circuit uses at layer l, else 0: [M_g, 1, B]."""
        B = active.shape[0]
        out = []
        for gi in range(len(self.groups)):
            n = self.idx[gi][l - 1][active].reshape(B, -1)
            mask = torch.zeros(self.Mg[gi], B, dtype=self.w.dtype, device=n.device)
            mask[n, torch.arange(B, device=n.device)[:, None].expand_as(n)] = 1.0
            out.append(mask[:, None, :])
        return out

    def layer(self, l: int, A_prev: list, G_prev: list) -> list[torch.Tensor]:
        """A^l from A^{l−1} (l ≥ 2); G_prev[h] = gather_sum(A_prev[h], idx_h^{l−1})."""
        B = A_prev[0].shape[-1]
        Y = [torch.zeros(self.T, len(g.rows), B, dtype=self.w.dtype, device=self.w.device) for g in self.groups]
        for p in self.layer_pairs[l - 1]:
            Y[p.g] += torch.bmm(p.V, G_prev[p.h])
        out = []
        for gi in range(len(self.groups)):
            users, offsets = self.users[l - 1][gi]
            pre = scatter_sum(Y[gi], users, offsets)
            for p in self.layer_pairs[l - 1]:
                if p.g != gi:
                    continue
                if p.excess_n.numel():  # pairs connected by several circuits count once in C
                    U = torch.einsum("ij,njb->nib", p.w_bar, A_prev[p.h][p.excess_m])
                    pre.index_add_(0, p.excess_n, U * (-p.c * p.excess_k)[:, None, None])
                pre -= p.chi * torch.einsum("ij,jb->ib", p.w_bar, A_prev[p.h].sum(0))[None]
            if self.gate_pair is not None and gi == self.gate_pair[1]:
                ind = A_prev[self.gate_pair[0]]  # same positions: indicator leads by one layer
                on = ind[:, 0:1, :] - ind[:, 1:2, :]  # per-neuron step output a_0 − a_1
                pre = pre + self.scheme.gate * (on - 1.0)
            out.append(torch.relu(pre + self.bias[self.rows[gi]][None, :, None]))
        return out

    def touched(self, l: int, flags: list) -> tuple[torch.Tensor, torch.Tensor]:
        """Each (circuit u, sample b) once for which one of u's neurons at layer l is flagged
        in some group (flags[g]: [M_g, B] bool): the circuits whose readouts or gathers can be
        non-zero. Sorted by u·B + b."""
        B = flags[0].shape[1]
        keys = []
        for gi, f in enumerate(flags):
            m, b = f.nonzero(as_tuple=True)
            row, u = csr_expand(*self.users[l - 1][gi], m)
            keys.append(u * B + b[row])
        key = torch.unique(torch.cat(keys))
        return key // B, key % B

    def gathers(self, l: int, A: list, u: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
        """G_g = Σ_{n ∈ e^{g,l}_u} A_g[n, :, b] for the pairs (u, b): per group [N, d_g]. The
        activations are read as rows n·B + b of a [M·B, d] copy (one contiguous row per
        gathered neuron, not d numbers B apart), by embedding_bag's fused gather-sum."""
        out = []
        for gi, a in enumerate(A):
            M, d, B = a.shape
            rows = a.permute(0, 2, 1).reshape(M * B, d)
            out.append(F.embedding_bag(self.idx[gi][l - 1][u] * B + b[:, None], rows, mode="sum"))
        return out

    def _excess_by_m(self, l: int, p: _Pair):
        """The excess pairs of `p` at layer l listed by source neuron m (CSR: entries into
        p.excess_*, offsets per m), built once."""
        key = (l, p.g, p.h)
        cache = self._excess_csr
        if key not in cache:
            order = torch.argsort(p.excess_m, stable=True)
            counts = torch.bincount(p.excess_m, minlength=self.Mg[p.h])
            cache[key] = (order, torch.cumsum(counts, 0) - counts)
        return cache[key]

    def layer_sparse(self, l: int, A_prev: list) -> list[torch.Tensor]:
        """`layer`, computed only through the circuits that read a non-zero neuron of layer
        l − 1: a circuit whose gathers are all zero adds nothing to any pre-activation, and a
        pair of the excess X^l whose source neuron is zero in every sample adds nothing."""
        B = A_prev[0].shape[-1]
        flags = [(a != 0).any(1) for a in A_prev]
        u, b = self.touched(l - 1, flags)
        G = self.gathers(l - 1, A_prev, u, b)
        N = u.numel()
        Y = [torch.zeros(N, len(g.rows), dtype=self.w.dtype, device=self.w.device) for g in self.groups]
        for p in self.layer_pairs[l - 1]:
            Y[p.g] += torch.bmm(p.V[u], G[p.h][:, :, None])[:, :, 0]
        out = []
        for gi in range(len(self.groups)):
            dg, Mg = len(self.groups[gi].rows), self.Mg[gi]
            pos = self.idx[gi][l - 1][u]  # [N, S_g]
            pre_t = scatter_rows(
                (pos * B + b[:, None]).reshape(-1),
                Y[gi][:, None, :].expand(N, pos.shape[1], dg).reshape(-1, dg),
                Mg * B,
            ).contiguous()
            for p in self.layer_pairs[l - 1]:
                if p.g != gi:
                    continue
                if p.excess_n.numel():  # the excess pairs whose source neuron is on, sample by sample
                    m, bb = flags[p.h].nonzero(as_tuple=True)
                    row, e = csr_expand(*self._excess_by_m(l, p), m)
                    if e.numel():
                        src = A_prev[p.h][m[row], :, bb[row]]  # [K, d_h]
                        U = (src @ p.w_bar.T) * (-p.c * p.excess_k[e])[:, None]
                        pre_t.index_add_(0, p.excess_n[e] * B + bb[row], U)
            pre = pre_t.view(Mg, B, dg).permute(0, 2, 1).contiguous()
            for p in self.layer_pairs[l - 1]:
                if p.g != gi:
                    continue
                pre -= p.chi * torch.einsum("ij,jb->ib", p.w_bar, A_prev[p.h].sum(0))[None]
            if self.gate_pair is not None and gi == self.gate_pair[1]:
                ind = A_prev[self.gate_pair[0]]
                pre = pre + self.scheme.gate * (ind[:, 0:1, :] - ind[:, 1:2, :] - 1.0)
            out.append(torch.relu(pre + self.bias[self.rows[gi]][None, :, None]))
        return out

    def sparse_layers(
        self, A0: list, active: torch.Tensor | None = None, *, switch_off: bool | None = None, dense_above: float = 0.1
    ):
        """Yield (l, A^l) for l = 1..L as `layers_iter` does, with `layer_sparse` while at most
        a fraction `dense_above` of the previous layer's neurons are non-zero, else `layer`
        (the same network: the two agree to float rounding)."""
        switch_off = self.scheme.oracle if switch_off is None else bool(switch_off)
        if switch_off and active is None:
            raise ValueError("switching unused neurons off (the oracle) needs the active set")
        A = None
        for l in range(1, self.L + 1):
            if l == 1:
                A = [torch.relu(a + self.bias[r][None, :, None]) for a, r in zip(A0, self.rows)]
            else:
                frac = sum(float((a != 0).any(1).sum()) for a in A) / (sum(self.Mg) * A[0].shape[-1])
                if frac > dense_above:
                    A = self.layer(l, A, [gather_sum(a, self.idx[gi][l - 2]) for gi, a in enumerate(A)])
                else:
                    A = self.layer_sparse(l, A)
            if switch_off:
                A = [a * m for a, m in zip(A, self._mask(l, active))]
            yield l, A

    def layers_iter(
        self, A0: list, active: torch.Tensor | None = None, readout_at=None, *, switch_off: bool | None = None
    ):
        """Yield (l, A^l, R^l) for l = 1..L; R^l [T, d, B] the readouts of every circuit,
        row by row from its group: (1/S_g)⟨e^{g,l}_t|A^l_g⟩ (None at layers not in
        `readout_at`, default every layer). switch_off (default: the scheme's `oracle`):
        every neuron that no active circuit uses is set to 0 after each layer, which needs
        `active`; with a real scheme this is that construction's own oracle."""
        switch_off = self.scheme.oracle if switch_off is None else bool(switch_off)
        if switch_off and active is None:
            raise ValueError("switching unused neurons off (the oracle) needs the active set")
        A, G = None, None
        for l in range(1, self.L + 1):
            if l == 1:
                A = [torch.relu(a + self.bias[r][None, :, None]) for a, r in zip(A0, self.rows)]
            else:
                A = self.layer(l, A, G)
            if switch_off:
                A = [a * m for a, m in zip(A, self._mask(l, active))]
            G = [gather_sum(a, self.idx[gi][l - 1]) for gi, a in enumerate(A)]
            if readout_at is not None and l not in readout_at:
                yield l, A, None
                continue
            B = A[0].shape[-1]
            R = torch.empty(self.T, self.d, B, dtype=self.w.dtype, device=self.w.device)
            for gi, g in enumerate(G):
                R[:, self.rows[gi]] = g / self.Sg[gi]
            yield l, A, R


@checked
def build_corrected(scheme: Scheme, T: int, L: int, generator: torch.Generator, *, device="cpu", dtype=torch.float32):
    """Random rotation circuits (θ_t ~ U[0, 2π)) in the scheme's network. Returns (net, θ)."""
    theta = sample_thetas(check_int("T", T, 1, scheme.max_T), generator)
    w, w_bar, bias = scheme_weights(theta, scheme.theta_lo, scheme.theta_hi, scheme.extra, scheme.rho)
    net = CorrectedNetwork(scheme, w.to(dtype), w_bar.to(dtype), bias.to(dtype), L, generator, device)
    return net, theta


@checked
def scheme_bytes(
    scheme: Scheme,
    T: int,
    L: int,
    batch: int,
    *,
    z: int = 2,
    itemsize: int = 4,
    keep_alpha: bool = False,
    chunk: int | None = None,
) -> int:
    """Estimated peak memory (bytes) of `scheme_run(scheme, T, z=z, L=L, batch=batch)`: a
    closed form of the sizes, for refusing before anything is allocated.

    Network (`CorrectedNetwork`): every group's [L+1, T, S_g] assignment (three int64
    copies while it is drawn and shifted, `assignment.assignment_bytes`), per layer its CSR
    lists and the T·S_g·S_h connected pairs of the widest pair of groups (sorted keys and
    their (n, m, k), 8 B each). Forward pass over the whole batch: per group the [M_g, d_g, B]
    activations (the layer's input and output, its pre-activation, the embedding and the
    oracle mask: six copies), per circuit the [T, d, B] gathers, products and readouts and
    the [T, B] statistics (α̂, x̂, the overlap counts: about 3d + 10 numbers), the float64
    truth [L+1, B, z, d]; keep_alpha keeps T·B readouts per layer. The sparse forward pass
    (`chunk` samples at a time) needs these per-circuit and activation sizes for one chunk
    only, at worst (a seized network touches every circuit)."""
    groups = scheme.groups
    net = 0
    pair = 0
    for g in groups:
        Mg, Sg = g.M * g.copies, g.S * g.copies
        net += assignment_bytes(T, g.M, g.S, L + 1) + 16 * (L + 1) * T * Sg + 16 * L * (T * Sg + Mg)
        pair = max(pair, max(40 * T * Sg * h.S * h.copies for h in groups))
    rows = batch if chunk is None else min(batch, chunk)
    acts = sum(6 * g.M * g.copies * len(g.rows) for g in groups) * itemsize * rows
    per_circuit = T * rows * ((3 * scheme.d + 10) * itemsize + 16)
    truth = 16 * (L + 1) * batch * z * scheme.d
    alpha = 4 * T * batch * L if keep_alpha else 0
    return int(net + pair + acts + per_circuit + truth + alpha)


@checked(on_threshold=real(0.0, 1.0))
def scheme_run(
    scheme: Scheme,
    T: int,
    *,
    z: int = 2,
    L: int = 8,
    batch: int = 200,
    seed: int = 0,
    device="cpu",
    dtype=torch.float32,
    on_threshold: float = 0.5,
    keep_alpha: bool = False,
    layers=None,
    with_oracle: bool = False,
    sparse: bool | None = None,
    chunk: int = 32,
    stop=None,
    oracle_only: bool = False,
) -> dict:
    """One fresh network of `scheme`, `batch` random active sets of z circuits: per-layer
    statistics (lists indexed by layer, 0 = input).

    active_x ⟨|δx|²⟩, worst_dx max |δx| over the batch (active circuits), q90_dx its
    90th percentile, active_on ⟨(1−α̂)²⟩, false_off the fraction of active circuits with
    α̂ < on_threshold, inactive_on ⟨α̂²⟩, inactive_x ⟨|x̂|²⟩, false_on the fraction of
    inactive circuits with α̂ > on_threshold, leak the fraction with α̂ > 0.25 (passing
    RiS's step), overlap2 the fraction of inactive circuits sharing ≥ 2 indicator neurons
    with the active set at that layer (the mechanism's precondition). keep_alpha: also
    return "alpha_inactive", the inactive circuits' α̂ per layer (a float tensor per layer).
    layers: the layers at which to compute the statistics (default: every layer; the others
    stay 0.0). A capacity probe needs only layer L, and the statistics over all T circuits
    cost about as much as the forward pass itself at large T.
    with_oracle: also return, under "oracle", the same statistics of this construction's
    own oracle: the same network, active sets and inputs, with every neuron that no active
    circuit uses switched off after each layer (a paired reference for criterion (b)).
    sparse (default: unless keep_alpha): compute only through the circuits that touch a
    non-zero neuron, `chunk` samples at a time (`_run_stats_sparse`; the same statistics to
    float rounding, at a cost that follows the network's activity instead of T). stop: see
    `_run_stats_sparse` (the oracle then runs only if the network did not stop early).
    oracle_only: return the own oracle's statistics alone (what with_oracle adds).
    """
    T = check_int("T", T, 1)
    z = check_int("z", z, 1, T)
    batch = check_int("batch", batch, 1)
    if isinstance(scheme, SwitchOffScheme):
        return scaling_run(
            scheme,
            T,
            z=z,
            L=L,
            batch=batch,
            seed=seed,
            device=device,
            dtype=dtype,
            on_threshold=on_threshold,
            layers=layers,
            with_oracle=with_oracle,
            stop=stop,
            oracle_only=oracle_only,
            chunk=chunk,
        )
    itemsize = torch.empty((), dtype=check_dtype(dtype)).element_size()
    rows = None if (keep_alpha if sparse is None else not sparse) else chunk
    check_fits(
        f"{scheme.label} at width {scheme.D}",
        lambda T, L, batch: scheme_bytes(
            scheme, T, L, batch, z=z, itemsize=itemsize, keep_alpha=keep_alpha, chunk=rows
        ),
        {"T": T, "L": L, "batch": batch},
        {"T": z, "L": 1, "batch": 1},
        check_device(device),
    )
    T = check_int("T", T, 1, scheme.max_T)
    g = torch.Generator().manual_seed(int(seed))
    net, _ = build_corrected(scheme, T, L, g, device=device, dtype=dtype)
    active = sample_active(T, z, batch, g).to(device)
    x0 = sample_unit_vectors((batch, z), g)
    a0 = encode(torch.ones(batch, z, dtype=torch.float64), x0, scheme.d).to(device)
    truth = run_circuits(net.w[active].double(), a0.double(), L, net.bias.double())  # [L+1, B, z, 4]
    wanted = set(range(1, L + 1)) if layers is None else {check_int("layers", l_, 1, L) for l_ in layers}
    if sparse is None:
        sparse = not keep_alpha
    if sparse and keep_alpha:
        raise ValueError("keep_alpha=True needs sparse=False (it keeps every inactive circuit's α̂)")
    if sparse:
        kw = dict(on_threshold=on_threshold, wanted=wanted, chunk=check_int("chunk", chunk, 1))
        if oracle_only:
            return _run_stats_sparse(net, active, a0, truth, switch_off=True, **kw)
        res = _run_stats_sparse(net, active, a0, truth, switch_off=None, stop=stop, **kw)
        if with_oracle and "stopped_at" not in res:
            res["oracle"] = _run_stats_sparse(net, active, a0, truth, switch_off=True, **kw)
        return res
    kw = dict(on_threshold=on_threshold, keep_alpha=keep_alpha, wanted=wanted)
    if oracle_only:
        return _run_stats(net, active, a0, truth, switch_off=True, **kw)
    res = _run_stats(net, active, a0, truth, switch_off=None, **kw)
    if with_oracle:
        res["oracle"] = _run_stats(net, active, a0, truth, switch_off=True, **kw)
    return res


_STAT_KEYS = (
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
)


def _run_stats(net: CorrectedNetwork, active, a0, truth, *, switch_off, on_threshold, keep_alpha, wanted) -> dict:
    """`scheme_run`'s statistics of one forward pass (see there)."""
    batch, z = active.shape
    T, L, device, dtype = net.T, net.L, active.device, net.w.dtype
    res = {k: [0.0] * (L + 1) for k in _STAT_KEYS}
    cols = torch.arange(batch, device=device)[:, None].expand(batch, z)
    n_in = max(batch * (T - z), 1)  # z = T: no inactive circuit, and none read as on (as rotation_errors)
    ind = next(i for i, gr in enumerate(net.groups) if 0 in gr.rows)
    row0 = list(net.groups[ind].rows).index(0)  # the group's local row holding a_0 = step(α)
    f64 = torch.float64
    A0 = net.embed(active, a0.to(dtype))
    for l, A, R in net.layers_iter(A0, active, readout_at=wanted, switch_off=switch_off):
        if l not in wanted:
            continue
        # α̂ = â_0 − â_1, x̂ = â_{2:4} − α̂ (`decode`), for every circuit [T, B] in the network's
        # dtype; sums in float64. No boolean-mask gathers of [T, B] tensors (they dominated the
        # run time at large T): the active entries are read, then zeroed, and the inactive
        # statistics are sums over all entries (a 0 passes no threshold and adds nothing).
        alpha = R[:, 0] - R[:, 1]
        x0, x1 = R[:, 2] - alpha, R[:, 3] - alpha
        a_act = alpha[active, cols].double()  # [B, z]
        x_act = torch.stack([x0[active, cols], x1[active, cols]], -1).double()  # [B, z, 2]
        t_alpha, t_x = decode(truth[l])
        dx = ((x_act - t_x) ** 2).sum(-1)  # [B, z]
        res["active_x"][l] = float(dx.mean())
        res["worst_dx"][l] = float(dx.max().sqrt())
        res["q90_dx"][l] = float(torch.quantile(dx.sqrt().flatten(), 0.9))
        res["active_on"][l] = float(((a_act - t_alpha) ** 2).mean())
        res["false_off"][l] = float((a_act < on_threshold).double().mean())
        alpha[active, cols] = 0.0  # the active entries, kept above, leave the inactive sums
        x0[active, cols] = 0.0
        x1[active, cols] = 0.0
        res["inactive_on"][l] = float(alpha.pow(2).sum(dtype=f64) / n_in)
        res["inactive_x"][l] = float((x0.pow(2).sum(dtype=f64) + x1.pow(2).sum(dtype=f64)) / n_in)
        res["false_on"][l] = int((alpha > on_threshold).sum()) / n_in
        res["leak"][l] = int((alpha > 0.25).sum()) / n_in
        # overlaps with the active set: count of each circuit's indicator neurons used by an active circuit
        used = net._mask(l, active)[ind][:, 0, :]  # [M, B]
        shared = used[net.idx[ind][l - 1]].sum(1)  # [T, B]
        res["overlap2"][l] = int((shared >= 2).sum() - (shared[active, cols] >= 2).sum()) / n_in
        # neuron level: on-indicator neurons (row 0 of the indicator group, block 0) that are on
        # while no active circuit uses them, as a fraction of the block, batch-averaged
        # (the same definition as `experiment.rotation_errors`' spurious_on)
        on = A[ind][:, row0, :] > 0  # [M_g, B]
        res["spurious_on"][l] = float((on & (used == 0)).sum()) / (used.shape[0] * batch)
        if keep_alpha:
            inact = torch.ones_like(alpha, dtype=torch.bool)
            inact[active, cols] = False
            res.setdefault("alpha_inactive", [None] * (L + 1))[l] = (R[:, 0] - R[:, 1])[inact].float().cpu()
    return res


def _readouts(net: CorrectedNetwork, l: int, A: list, u: torch.Tensor, b: torch.Tensor):
    """α̂ [N] and x̂ [N, 2] (`decode` of the readouts (1/S_g)⟨e^{g,l}_u|A_g⟩) of the pairs (u, b)."""
    R = torch.empty(u.numel(), net.d, dtype=net.w.dtype, device=u.device)
    for gi, G in enumerate(net.gathers(l, A, u, b)):
        R[:, net.rows[gi]] = G / net.Sg[gi]
    alpha = R[:, 0] - R[:, 1]
    return alpha, R[:, 2:4] - alpha[:, None]


def _run_stats_sparse(
    net: CorrectedNetwork, active, a0, truth, *, switch_off, on_threshold, wanted, chunk: int, stop=None
) -> dict:
    """`_run_stats`, computed sparsely over the batch in chunks of `chunk` samples: a circuit
    none of whose neurons is non-zero reads α̂ = 0 and x̂ = 0 exactly and adds nothing to any
    statistic, so only the circuits that `CorrectedNetwork.touched` lists are read.
    stop(counts, done): called after each chunk with the running counts ("false_on",
    "false_off", "dx_over" per layer: dx_list) and the samples done; True ends the run
    early, and the result then carries "stopped_at" (its statistics cover only those
    samples; a capacity probe uses it when the criterion already fails on them)."""
    batch, z = active.shape
    T, L = net.T, net.L
    ind = next(i for i, gr in enumerate(net.groups) if 0 in gr.rows)
    row0 = list(net.groups[ind].rows).index(0)
    sums = {k: [0.0] * (L + 1) for k in ("active_x", "active_on", "inactive_on", "inactive_x")}
    counts = {k: [0] * (L + 1) for k in ("false_on", "false_off", "leak", "overlap2", "spurious")}
    dx_all = {l: [] for l in wanted}
    done = 0
    for lo in range(0, batch, chunk):
        act = active[lo : lo + chunk]
        B = act.shape[0]
        ab = torch.arange(B, device=act.device)[:, None].expand(B, z).reshape(-1)
        au = act.reshape(-1)
        akey = au * B + ab
        A0 = net.embed(act, a0[lo : lo + chunk].to(net.w.dtype))
        for l, A in net.sparse_layers(A0, act, switch_off=switch_off):
            if l not in wanted:
                continue
            a_alpha, a_x = _readouts(net, l, A, au, ab)
            t_alpha, t_x = decode(truth[l][lo : lo + chunk])
            dx = ((a_x.double() - t_x.reshape(-1, 2)) ** 2).sum(-1)
            sums["active_x"][l] += float(dx.sum())
            dx_all[l].append(dx.sqrt().cpu())
            sums["active_on"][l] += float(((a_alpha.double() - t_alpha.reshape(-1)) ** 2).sum())
            counts["false_off"][l] += int((a_alpha < on_threshold).sum())
            u, b = net.touched(l, [(a != 0).any(1) for a in A])
            keep = ~torch.isin(u * B + b, akey)
            u, b = u[keep], b[keep]
            alpha, x = _readouts(net, l, A, u, b)
            sums["inactive_on"][l] += float(alpha.double().pow(2).sum())
            sums["inactive_x"][l] += float(x.double().pow(2).sum())
            counts["false_on"][l] += int((alpha > on_threshold).sum())
            counts["leak"][l] += int((alpha > 0.25).sum())
            used = net._mask(l, act)[ind][:, 0, :]  # [M, B]
            flags = [
                used > 0 if gi == ind else torch.zeros_like(a[:, 0, :], dtype=torch.bool) for gi, a in enumerate(A)
            ]
            u, b = net.touched(l, flags)
            keep = ~torch.isin(u * B + b, akey)
            shared = used[net.idx[ind][l - 1][u[keep]], b[keep][:, None]].sum(1)
            counts["overlap2"][l] += int((shared >= 2).sum())
            counts["spurious"][l] += int(((A[ind][:, row0, :] > 0) & (used == 0)).sum())
        done += B
        if stop is not None and done < batch and stop(counts, dx_all, done):
            break
    n_in, n_act = done * (T - z), done * z
    res = {k: [0.0] * (L + 1) for k in _STAT_KEYS}
    for l in wanted:
        dx = torch.cat(dx_all[l])
        res["active_x"][l] = sums["active_x"][l] / n_act
        res["worst_dx"][l] = float(dx.max())
        res["q90_dx"][l] = float(torch.quantile(dx, 0.9))
        res["active_on"][l] = sums["active_on"][l] / n_act
        res["false_off"][l] = counts["false_off"][l] / n_act
        for k in ("inactive_on", "inactive_x"):
            res[k][l] = sums[k][l] / n_in if n_in else 0.0  # T = z: no inactive circuit
        for k in ("false_on", "leak", "overlap2"):
            res[k][l] = counts[k][l] / n_in if n_in else 0.0
        res["spurious_on"][l] = counts["spurious"][l] / (net.Mg[ind] * done)
    if done < batch:
        res["stopped_at"] = done
    return res


@checked
def scheme_rows(
    kind: str, D: int, T: int, *, z: int = 2, L: int = 8, batch: int = 200, seed: int = 0, device: str = "cpu", **knobs
) -> list[dict]:
    """`scheme_run` as tidy rows for `sweep`: one row per layer, quantities as columns, plus
    the scheme's width, parameters per layer (weights + biases of one layer l ≥ 2), knob
    and assignment capacity."""
    scheme = make_scheme(kind, D, **knobs)
    if T > scheme.max_T:
        return []  # the scheme's assignment cannot hold T circuits at this width
    res = scheme_run(scheme, T, z=z, L=L, batch=batch, seed=seed, device=device)
    params = scheme.parameters(2) - scheme.parameters(1) if isinstance(scheme, Scheme) else float("nan")
    meta = {
        "label": scheme.label,
        "width": scheme.D,
        "params": params,
        "knob": scheme.knob,
        "max_T": scheme.max_T,
        "superposition": T * (4 / D) ** 2,
    }
    return [{"layer": l, **meta, **{k: v[l] for k, v in res.items()}} for l in range(1, L + 1)]
