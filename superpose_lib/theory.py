"""RiS error theory (RiS §6; book: "Notation", eq-theory-inactive, eq-theory-active), with ε = d/D − 1/(ST).

Per-layer predictions of the four mean squared errors that `rotation_errors` measures,
as lists indexed by layer (index 0 is the input, exact by construction).
"""

from __future__ import annotations

__all__ = ["epsilon", "inactive_error", "active_x_error", "rotation_theory"]


def epsilon(D: int, T: int, S: int, d: int = 4) -> float:
    """ε = d/D − 1/(ST), the mean squared normalised overlap E_{u≠t}[((1/S)⟨e_t|e_u⟩)²]."""
    return d / D - 1.0 / (S * T)


def inactive_error(l: int, z: int, eps: float) -> float:
    """Inactive circuit, any layer l ≥ 1: E|x̂|² ≈ E α̂² ≈ z·ε (one overlap per active circuit)."""
    return z * eps if l >= 1 else 0.0


def active_x_error(l: int, z: int, T: int, eps: float) -> float:
    """Active rotating vector at layer l ≥ 1:
    E|δx|² ≈ (l−1)·T·ε²·(z + 8(z−1)) + 9·l·ε·(z−1).
    The first term is the propagation error (signal leaking into the ~T overlapping
    circuits and back): T(d/D)² is the control parameter.
    """
    if l < 1:
        return 0.0
    return (l - 1) * T * eps**2 * (z + 8 * (z - 1)) + 9 * l * eps * (z - 1)


def rotation_theory(D: int, T: int, *, S: int = 6, L: int = 4, z: int = 1, d: int = 4) -> dict:
    """Predicted per-layer MSEs with the keys of `rotation_errors` (active on-indicator: 0
    until a seizure)."""
    eps = epsilon(D, T, S, d)
    layers = range(L + 1)
    return {
        "active_x": [active_x_error(l, z, T, eps) for l in layers],
        "inactive_x": [inactive_error(l, z, eps) for l in layers],
        "active_on": [0.0 for _ in layers],
        "inactive_on": [inactive_error(l, z, eps) for l in layers],
    }
