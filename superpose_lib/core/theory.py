"""RiS error theory and the derived quantities (RiS §6; book: "Notation", eq-theory-inactive, eq-theory-active).

The one home of every quantity derived from the sizes: ε = d/D − 1/(ST), the control
parameter T(d/D)², T at a given control value, and the 41 (D, T) pairs of RiS Figures
8–11. Per-layer predictions of the four mean squared errors that `rotation_errors`
measures come as lists indexed by layer (index 0 is the input, exact by construction).

Every function validates its sizes (d = 4 only: the rotation circuits are 4 × 4).
"""

from __future__ import annotations

from .assignment import max_circuits
from .checks import CIRCUIT_WIDTH, L_MAX, check_d, check_int, check_real, checked, real

#: ε = d/D − 1/(ST) lies in (−1, 1): the domain of the theory's ε.
EPSILON = real(-1.0, 1.0)

__all__ = [
    "epsilon",
    "control_parameter",
    "T_at",
    "ris_pairs",
    "inactive_error",
    "active_x_error",
    "rotation_theory",
]


@checked
def epsilon(D: int, T: int, S: int = 6, d: int = CIRCUIT_WIDTH) -> float:
    """ε = d/D − 1/(ST), the mean squared normalised overlap E_{u≠t}[((1/S)⟨e_t|e_u⟩)²]."""
    D, T, S, d = check_int("D", D, 1), check_int("T", T, 1), check_int("S", S, 1), check_d(d)
    return d / D - 1.0 / (S * T)


@checked
def control_parameter(D: int, T: int, d: int = CIRCUIT_WIDTH) -> float:
    """x = T(d/D)², the control parameter of the propagation error (RiS §6)."""
    D, T, d = check_int("D", D, 1), check_int("T", T, 1), check_d(d)
    return T * (d / D) ** 2


@checked
def T_at(x: float, D: int, d: int = CIRCUIT_WIDTH) -> int:
    """T at control value x = T(d/D)²: round(x·(D/d)²), at least 1."""
    x = check_real("x", x, 0.0, open_low=True)
    D, d = check_int("D", D, 1), check_d(d)
    return max(1, round(x * (D / d) ** 2))


def ris_pairs() -> list[tuple[int, int]]:
    """The 41 (D, T) pairs of RiS Figures 8–11 (book: "Notation", the regime section)."""
    ranges = {
        800: range(200, 301, 100),
        1000: range(200, 501, 100),
        1200: range(200, 701, 100),
        1400: range(200, 1001, 200),
        1600: range(300, 1301, 200),
        1800: range(300, 1701, 200),
        2000: range(200, 2001, 200),
    }
    return [(D, T) for D, ts in ranges.items() for T in ts]


@checked(eps=EPSILON)
def inactive_error(l: int, z: int, eps: float) -> float:
    """Inactive circuit, any layer l ≥ 1: E|x̂|² ≈ E α̂² ≈ z·ε (one overlap per active circuit)."""
    return z * eps if l >= 1 else 0.0


@checked(eps=EPSILON)
def active_x_error(l: int, z: int, T: int, eps: float) -> float:
    """Active rotating vector at layer l ≥ 1:
    E|δx|² ≈ (l−1)·T·ε²·(z + 8(z−1)) + 9·l·ε·(z−1).
    The first term is the propagation error (signal leaking into the ~T overlapping
    circuits and back): T(d/D)² is the control parameter.
    """
    if l < 1:
        return 0.0
    return (l - 1) * T * eps**2 * (z + 8 * (z - 1)) + 9 * l * eps * (z - 1)


@checked
def rotation_theory(D: int, T: int, *, S: int = 6, L: int = 4, z: int = 1, d: int = CIRCUIT_WIDTH) -> dict:
    """Predicted per-layer MSEs with the keys of `rotation_errors` (active on-indicator: 0
    until a seizure). Sizes are validated as for a network that can be built (D a multiple
    of d = 4, S ≤ D/d, T within the assignment's capacity, 1 ≤ L ≤ L_MAX, 1 ≤ z ≤ T)."""
    D, d = check_int("D", D, 1), check_d(d)
    if D % d:
        raise ValueError(f"D={D} must be a multiple of d={d} (allowed: D in {{{d}, {2 * d}, {3 * d}, ...}})")
    S = check_int("S", S, 1, D // d)
    L, T = check_int("L", L, 1, L_MAX), check_int("T", T, 1)
    if T > (D // d) // S:
        check_int("T", T, 1, max_circuits(D // d, S))
    z = check_int("z", z, 1, T)
    eps = epsilon(D, T, S, d)
    layers = range(L + 1)
    return {
        "active_x": [active_x_error(l, z, T, eps) for l in layers],
        "inactive_x": [inactive_error(l, z, eps) for l in layers],
        "active_on": [0.0 for _ in layers],
        "inactive_on": [inactive_error(l, z, eps) for l in layers],
    }
