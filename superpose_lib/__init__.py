"""superpose_lib: circuits in superposition, constructed, run and measured.

Notation (the book's page "Notation, construction and error theory"): T circuits of d neurons per layer, a large network of D neurons
per layer (M = D/d per block), L layers, z active circuits, redundancy S; e_t^l the S-hot
vector of circuit t at layer l; w_t = w̄ + Δw_t; χ the mean-weight balance.
"""

__version__ = "0.1.0"

from ._startup import guard_startup as _guard_startup  # first: Ctrl-C while `superpose` starts up -> one line

_guard_startup()

# The construction, stage by stage (chapter "Constructing circuits in superposition")
from .config import CiSConfig
from .circuits import BIAS, MEAN_WEIGHT, decode, encode_input, rotation_weights, run_circuits, sample_thetas
from .assignment import admissible_steps, assign, layer_assignments, max_circuits, mean_squared_overlap
from .network import StructuredNetwork, SuperposedNetwork, flat, gather_sum, scatter_sum
from .theory import T_at, control_parameter, epsilon, ris_pairs, rotation_theory
from .experiment import (
    balance_chi_dense, build_network, rotation_error_rows, rotation_errors, rotation_per_circuit, rotation_rows, rotation_run,
    sample_active, sample_unit_vectors, seeded_experiment, shared_neurons, with_chi,
)
from .sweep import sweep
from . import plots

# One module per later chapter
from . import regime  # "The T(d/D)² regime"
from .regime import regime_rows
from . import spurious  # its neuron-level theory of seizures
from .spurious import spurious_on_theory
from .correction import BlockGroup, CorrectedNetwork, Scheme, make_scheme, scheme_run  # "Error correction"
from . import correction_scale  # "Error correction" at scale: design rule, capacity search, summaries
from . import graph, blocks  # "Cross-circuit computation" and its exact z = 1 baseline
from .graph import CircuitGraph, GraphNetwork, graph_chain_theory, predict_graph_errors, run_graph
from .blocks import BlockNetwork, block_cost
from . import gpt2, toy_gist, brown, brown_lm, gist_real, routing  # "GPT-2 gist features"; transformers lazily

__all__ = [
    "CiSConfig", "BIAS", "MEAN_WEIGHT", "rotation_weights", "sample_thetas", "encode_input", "decode", "run_circuits",
    "max_circuits", "admissible_steps", "assign", "layer_assignments", "mean_squared_overlap",
    "StructuredNetwork", "SuperposedNetwork", "gather_sum", "scatter_sum", "flat", "epsilon", "control_parameter", "T_at", "ris_pairs", "rotation_theory",
    "build_network", "seeded_experiment", "sample_active", "sample_unit_vectors", "rotation_run", "rotation_errors",
    "rotation_per_circuit", "rotation_error_rows", "balance_chi_dense", "with_chi", "shared_neurons",
    "sweep", "rotation_rows", "plots",
    "regime", "regime_rows", "spurious", "spurious_on_theory",
    "BlockGroup", "CorrectedNetwork", "Scheme", "make_scheme", "scheme_run", "correction_scale",
    "graph", "blocks", "CircuitGraph", "GraphNetwork", "run_graph", "predict_graph_errors", "graph_chain_theory",
    "BlockNetwork", "block_cost",
    "gpt2", "toy_gist", "brown", "brown_lm", "gist_real", "routing",
]
