"""Chapter "Does it work asymptotically?": the scaling construction measured across D."""

from . import measure, plots
from .measure import boundary_fraction, capacity_summary, design_table, layout_rows, mechanism_rows, slopes  # noqa: F401
from .plots import plot_capacities, plot_design, plot_layout, plot_mechanism  # noqa: F401

__all__ = ["measure", "plots", *measure.__all__, *plots.__all__]
