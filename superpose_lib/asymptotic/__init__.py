"""Chapter "Does it work asymptotically?": the constructions' boundaries across D, the
switch-off construction's mechanism and payload."""

from . import measure, plots
from .measure import (  # noqa: F401
    fit_summary,
    goal_facts,
    headline,
    mechanism_facts,
    mechanism_rows,
    payload_facts,
    payload_rows,
    theory_table,
    z_table,
)
from .plots import plot_capacities, plot_gate_rate, plot_payload, plot_payload_ratio, plot_theory  # noqa: F401

__all__ = ["measure", "plots", *measure.__all__, *plots.__all__]
