"""The configuration of a circuits-in-superposition network (book: "Notation, construction and error theory").

One frozen dataclass names every size of the construction; it validates itself, so a
wrong configuration fails at the entry point with a `ValueError` naming the parameter
and the allowed range, never deep inside a tensor operation.
"""

from __future__ import annotations

from dataclasses import dataclass

from .assignment import max_circuits
from .checks import L_MAX, check_d, check_int
from .theory import control_parameter, epsilon

# check_int/check_seed/check_d live in `checks` (imported by every module); re-exported
# here for the code that imports them from `config`.
__all__ = [
    "CiSConfig",
]


@dataclass(frozen=True)
class CiSConfig:
    """Sizes of the large network built from T small circuits.

    T: small circuits; d: neurons per layer of one small circuit; D: neurons per layer
    of the large network (M = D/d neurons per block); S: redundancy (each small-circuit
    neuron is written onto S large neurons); L: layers; z: circuits active at once.
    """

    D: int
    T: int
    d: int = 4
    S: int = 6
    L: int = 4
    z: int = 1

    def __post_init__(self) -> None:
        for name, low in (("d", 1), ("S", 1), ("T", 1), ("D", 1), ("z", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))
        object.__setattr__(self, "L", check_int("L", self.L, 1, L_MAX))
        check_d(self.d)
        if self.D % self.d:
            raise ValueError(
                f"D={self.D} must be a multiple of d={self.d} "
                f"(allowed: D in {{{self.d}, {2 * self.d}, {3 * self.d}, ...}})"
            )
        check_int("S", self.S, 1, self.M)
        # Step s = 1 alone holds ⌊M/S⌋ disjoint progressions, so T ≤ ⌊M/S⌋ needs no capacity
        # count; otherwise max_circuits is O(M/S) (closed form per step).
        if self.T > self.M // self.S:
            check_int("T", self.T, 1, max_circuits(self.M, self.S))
        check_int("z", self.z, 1, self.T)

    @property
    def M(self) -> int:
        """Neurons per block, M = D/d."""
        return self.D // self.d

    @property
    def superposition(self) -> float:
        """T(d/D)^2, the control parameter of the propagation error (RiS §6)."""
        return control_parameter(self.D, self.T, self.d)

    @property
    def epsilon(self) -> float:
        """ε = d/D − 1/(ST): the mean squared overlap of two circuits' readouts."""
        return epsilon(self.D, self.T, self.S, self.d)
