"""superpose_lib: circuits in superposition, constructed, run and measured.

Notation (RESEARCH.md): T circuits of d neurons per layer, a large network of D neurons
per layer (M = D/d per block), L layers, z active circuits, redundancy S; e_t^l the S-hot
vector of circuit t at layer l; w_t = w̄ + Δw_t; χ the mean-weight balance.
"""

from .assignment import admissible_steps, assign, layer_assignments, max_circuits, mean_squared_overlap
from .circuits import BIAS, MEAN_WEIGHT, decode, encode_input, rotation_weights, run_circuits, sample_thetas
from .config import CiSConfig
from .experiment import build_network, rotation_errors, rotation_run, sample_active, sample_unit_vectors
from .network import SuperposedNetwork, flat, gather_sum, scatter_sum
from .theory import epsilon, rotation_theory
from .sweep import sweep, rotation_rows
from .experiment import balance_chi_dense, rotation_error_rows, rotation_per_circuit, shared_neurons, with_chi
from . import plots
from . import gpt2, toy_gist  # GPT-2 gist features (book/gist.md); transformers is imported lazily
from .correction import BlockGroup, CorrectedNetwork, Scheme, make_scheme, scheme_run
from . import regime
from .regime import regime_rows

__version__ = "0.1.0"

__all__ = [
    "CiSConfig", "max_circuits", "admissible_steps", "assign", "layer_assignments", "mean_squared_overlap",
    "BIAS", "MEAN_WEIGHT", "rotation_weights", "sample_thetas", "encode_input", "decode", "run_circuits",
    "SuperposedNetwork", "gather_sum", "scatter_sum", "flat",
    "build_network", "sample_active", "sample_unit_vectors", "rotation_run", "rotation_errors",
    "epsilon", "rotation_theory", "sweep", "rotation_rows",
    "rotation_per_circuit", "rotation_error_rows", "balance_chi_dense", "with_chi", "shared_neurons", "plots",
    "gpt2", "toy_gist",
    "BlockGroup", "CorrectedNetwork", "Scheme", "make_scheme", "scheme_run",
    "regime", "regime_rows",
]

from . import graph, blocks  # noqa: E402  (cross-circuit computation; exact z=1 baseline)
from .graph import CircuitGraph, GraphNetwork, run_graph, predict_graph_errors, graph_chain_theory  # noqa: E402
from .blocks import BlockNetwork, block_cost  # noqa: E402

__all__ += ["graph", "blocks", "CircuitGraph", "GraphNetwork", "run_graph", "predict_graph_errors",
            "graph_chain_theory", "BlockNetwork", "block_cost"]
