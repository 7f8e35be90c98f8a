"""Chapter "Trained versus constructed": the book's task learned by gradient descent."""

from . import analysis, measure, train
from .analysis import (  # noqa: F401
    capacity_table,
    construction_capacity_rows,
    construction_error_rows,
    first_passing_step,
    loss_summary,
    trained_capacity_rows,
    trained_rows,
)
from .measure import dedicated_errors, indicator_transfer, mechanism, span_share  # noqa: F401
from .train import (  # noqa: F401
    DenseNetwork,
    TrainConfig,
    cached_train,
    max_trainable_T,
    train_superposed,
    trained_errors,
)

__all__ = ["analysis", "measure", "train", *analysis.__all__, *measure.__all__, *train.__all__]
