"""Chapter "Trained versus constructed": the book's task learned by gradient descent."""

from . import analysis, train
from .analysis import (  # noqa: F401
    construction_capacity_rows,
    plot_error_against_T,
    plot_training,
    task_grid,
    trained_capacity,
)
from .train import (  # noqa: F401
    DenseNetwork,
    TrainConfig,
    cached_train,
    dedicated_errors,
    mechanism,
    train_superposed,
    trained_errors,
    trained_rows,
)

__all__ = ["analysis", "train", *analysis.__all__, *train.__all__]
