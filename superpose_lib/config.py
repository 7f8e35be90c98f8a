"""The configuration of a circuits-in-superposition network (book: "Notation, construction and error theory").

One frozen dataclass names every size of the construction; it validates itself, so a
wrong configuration fails at the entry point with a `ValueError` naming the parameter
and the allowed range, never deep inside a tensor operation.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CiSConfig", "check_int"]


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """Return `value` as an int in [low, high]; otherwise raise a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f"{low} <= {name}" + (f" <= {high}" if high is not None else "")
        raise ValueError(f"{name}={value} is out of range: allowed {allowed}")
    return value


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
        # Imported here: the assignment module needs nothing from this one.
        from .assignment import max_circuits

        for name, low in (("d", 1), ("S", 1), ("L", 1), ("T", 1), ("D", 1), ("z", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))
        if self.D % self.d:
            raise ValueError(
                f"D={self.D} must be a multiple of d={self.d} "
                f"(allowed: D in {{{self.d}, {2 * self.d}, {3 * self.d}, ...}})"
            )
        check_int("S", self.S, 1, self.M)
        check_int("T", self.T, 1, max_circuits(self.M, self.S))
        check_int("z", self.z, 1, self.T)

    @property
    def M(self) -> int:
        """Neurons per block, M = D/d."""
        return self.D // self.d

    @property
    def superposition(self) -> float:
        """T(d/D)^2, the control parameter of the propagation error (RiS §6)."""
        return self.T * (self.d / self.D) ** 2

    @property
    def epsilon(self) -> float:
        """ε = d/D − 1/(ST): the mean squared overlap of two circuits' readouts."""
        return self.d / self.D - 1.0 / (self.S * self.T)
