"""Chapter "Does it work asymptotically?": the constructions' boundaries across D, the
switch-off construction's mechanism and payload."""

from . import measure, plots
from .measure import fit_summary, headline, mechanism_rows, payload_rows, theory_table, z_table  # noqa: F401
from .plots import plot_capacities, plot_gate_rate, plot_payload, plot_payload_ratio, plot_theory  # noqa: F401

__all__ = ["measure", "plots", *measure.__all__, *plots.__all__]
