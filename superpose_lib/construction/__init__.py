"""Chapter "Constructing circuits in superposition": its checks, sweeps and summaries
(analysis) and its plots (the maths is in `core`)."""

from . import analysis, plots
from .analysis import (  # noqa: F401
    QUANTITIES,
    below_summary,
    chi_conventions,
    error_sweep,
    identity_table,
    layer1_checks,
    mean_table,
    overlap_summary,
    parameter_glue,
    seizure_summary,
    step_check,
    theory_ratios,
    trajectory_samples,
)
from .plots import (  # noqa: F401
    plot_error_grid,
    plot_errors_per_layer,
    plot_mixing_zoom,
    plot_step,
    plot_trajectories,
    plot_trajectory,
    plot_weight_blocks,
    plot_weights,
)

__all__ = [
    "analysis",
    "plots",
    "QUANTITIES",
    "parameter_glue",
    "step_check",
    "overlap_summary",
    "identity_table",
    "chi_conventions",
    "layer1_checks",
    "trajectory_samples",
    "error_sweep",
    "mean_table",
    "theory_ratios",
    "seizure_summary",
    "below_summary",
    "plot_weight_blocks",
    "plot_mixing_zoom",
    "plot_step",
    "plot_trajectory",
    "plot_errors_per_layer",
    "plot_weights",
    "plot_trajectories",
    "plot_error_grid",
]
