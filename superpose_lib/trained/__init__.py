"""Chapter "Trained versus constructed": the book's task learned by gradient descent."""

from . import analysis, measure, train
from .analysis import (  # noqa: F401
    capacity_facts,
    capacity_table,
    capacity_text,
    construction_capacity_rows,
    construction_error_rows,
    first_passing_step,
    loss_facts,
    loss_summary,
    mechanism_facts,
    trained_capacity_rows,
    trained_rows,
    transfer_verdict,
    width_lr,
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
