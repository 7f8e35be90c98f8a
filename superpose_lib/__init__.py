"""superpose_lib: circuits in superposition, constructed, run and measured.

Notation (the book's page "Notation, construction and error theory"): T circuits of d
neurons per layer, a large network of D neurons per layer (M = D/d per block), L layers,
z active circuits, redundancy S; e_t^l the S-hot vector of circuit t at layer l;
w_t = w̄ + Δw_t; χ the mean-weight balance.

The folder tree is the architecture:

    core/          the construction and its measurement (torch only)
    stats.py       t-intervals and Poisson tails        report.py  formatters for the prose
    plots.py       the book's table of colours and labels, shared axes helpers
    sweep.py       the cached, parallel sweep          capacity.py  the one capacity search and its summaries
    construction/  regime/  correction/  asymptotic/  graph/  gist/  trained/
                   one package per chapter
    book/          the chapter runner and the `superpose` command line

Each package imports only from the floors below it (core < shared modules < chapter
packages < book), never in a cycle. The names below are the public API at the top level;
each chapter package holds the rest of its chapter's API.
"""

from ._startup import guard_startup as _guard_startup  # first: Ctrl-C while `superpose` starts up -> one line
from ._version import __version__

_guard_startup()

from . import asymptotic, capacity, construction, core, correction, gist, graph, plots, regime, report, stats, trained  # noqa: E402,E501
from .core.assignment import admissible_steps, assign, layer_assignments, max_circuits, mean_squared_overlap  # noqa: E402
from .core.circuits import (  # noqa: E402
    BIAS,
    MEAN_WEIGHT,
    decode,
    encode_input,
    rotation_weights,
    run_circuits,
    sample_thetas,
    scheme_weights,
)
from .core.config import CiSConfig  # noqa: E402
from .core.criteria import failures, works  # noqa: E402
from .core.experiment import (  # noqa: E402
    balance_chi_dense,
    build_network,
    rotation_error_rows,
    rotation_errors,
    rotation_per_circuit,
    rotation_rows,
    rotation_run,
    sample_active,
    sample_unit_vectors,
    seeded_experiment,
    shared_neurons,
    with_chi,
)
from .core.network import StructuredNetwork, SuperposedNetwork, flat, gather_sum, scatter_sum  # noqa: E402
from .core.theory import T_at, control_parameter, epsilon, ris_pairs, rotation_theory  # noqa: E402
from .correction import BlockGroup, CorrectedNetwork, Scheme, make_scheme, scheme_run  # noqa: E402
from .graph import (  # noqa: E402
    BlockNetwork,
    CircuitGraph,
    GraphNetwork,
    block_cost,
    graph_chain_theory,
    predict_graph_errors,
    run_graph,
)
from .regime import regime_rows, spurious_on_theory  # noqa: E402
from .sweep import sweep  # noqa: E402
from .trained import train_superposed  # noqa: E402

__all__ = [
    "__version__",
    "core",
    "stats",
    "report",
    "plots",
    "capacity",
    "construction",
    "regime",
    "correction",
    "asymptotic",
    "graph",
    "gist",
    "trained",
    "works",
    "failures",
    "CiSConfig",
    "BIAS",
    "MEAN_WEIGHT",
    "rotation_weights",
    "scheme_weights",
    "sample_thetas",
    "encode_input",
    "decode",
    "run_circuits",
    "max_circuits",
    "admissible_steps",
    "assign",
    "layer_assignments",
    "mean_squared_overlap",
    "StructuredNetwork",
    "SuperposedNetwork",
    "gather_sum",
    "scatter_sum",
    "flat",
    "epsilon",
    "control_parameter",
    "T_at",
    "ris_pairs",
    "rotation_theory",
    "build_network",
    "seeded_experiment",
    "sample_active",
    "sample_unit_vectors",
    "rotation_run",
    "rotation_errors",
    "rotation_per_circuit",
    "rotation_error_rows",
    "balance_chi_dense",
    "with_chi",
    "shared_neurons",
    "rotation_rows",
    "sweep",
    "train_superposed",
    "regime_rows",
    "spurious_on_theory",
    "BlockGroup",
    "CorrectedNetwork",
    "Scheme",
    "make_scheme",
    "scheme_run",
    "CircuitGraph",
    "GraphNetwork",
    "run_graph",
    "predict_graph_errors",
    "graph_chain_theory",
    "BlockNetwork",
    "block_cost",
]
