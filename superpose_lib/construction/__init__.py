"""Chapter "Constructing circuits in superposition": its plots (the maths is in `core`)."""

from . import plots
from .plots import (  # noqa: F401
    plot_errors_per_layer,
    plot_mixing_zoom,
    plot_step,
    plot_trajectory,
    plot_weight_blocks,
)

__all__ = ["plots", "plot_weight_blocks", "plot_mixing_zoom", "plot_step", "plot_trajectory", "plot_errors_per_layer"]
