"""Issue 14's probes of the library's entry points: every bad input gets one ValueError naming
the parameter and the allowed range; no silent wrong answer; no runaway allocation."""

import contextlib
import math
import resource
import time

import numpy as np
import pytest
import torch

import superpose_lib as sp
from superpose_lib import correction, graph
from superpose_lib.core import theory
from superpose_lib.core.checks import check_d, check_dtype, check_int, check_seed
from superpose_lib.core.experiment import rotation_error_rows, rotation_rows
from superpose_lib.graph import blocks


# ---- d ≠ 4 is refused, never silently honoured as a narrower network ----------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: sp.rotation_errors(1000, 100, d=8, batch=10),
        lambda: sp.seeded_experiment(1000, 100, d=8, batch=10),
        lambda: rotation_error_rows(1000, 100, d=8, batch=10),
        lambda: sp.CiSConfig(D=1000, T=100, d=8),
        lambda: sp.rotation_theory(1000, 100, d=8),
        lambda: theory.epsilon(1000, 100, 6, 8),
        lambda: theory.control_parameter(1000, 100, d=8),
        lambda: theory.T_at(0.004, 1000, d=8),
        lambda: graph.graph_chain_theory([10, 10, 10], D=1000, T=100, d=8),
        lambda: blocks.block_cost(1000, d=8),
        lambda: correction.encode(torch.ones(2, 1), torch.ones(2, 1, 2), d=8),
    ],
)
def test_d_other_than_4_is_rejected_everywhere(call):
    with pytest.raises(ValueError, match=r"d=8 .*allowed: d"):
        call()


def test_d_4_still_the_default_and_6_allowed_in_error_correction():
    assert check_d(4) == 4
    assert correction.encode(torch.ones(2, 1), torch.ones(2, 1, 2), d=6).shape[-1] == 6


# ---- integers: any integer type accepted, everything else refused, sizes and seeds alike ----
@pytest.mark.parametrize(
    "value", [1000, np.int64(1000), np.int32(1000), np.uint16(1000), torch.tensor(1000), 1000.0, np.float64(1000.0)]
)
def test_integral_values_of_any_integer_type_are_accepted(value):
    assert check_int("D", value, 1) == 1000 and type(check_int("D", value, 1)) is int
    assert check_seed(value) == 1000


@pytest.mark.parametrize(
    "value", [1.7, "5", True, np.bool_(True), None, 2**64, float("nan"), float("inf"), -1, [5], torch.tensor([1, 2])]
)
def test_non_integers_and_out_of_range_are_refused_for_sizes_and_seeds(value):
    with pytest.raises(ValueError, match="D"):
        check_int("D", value, 0)
    with pytest.raises(ValueError, match="seed"):
        check_seed(value)
    with pytest.raises(ValueError, match="seed"):
        sp.rotation_errors(400, 40, batch=4, seed=value)


def test_numpy_grids_work_end_to_end():
    """`rotation_errors(np.int64(1000), 557)` used to say "D must be an integer"."""
    a = sp.rotation_errors(np.int64(1000), np.int64(557), batch=np.int64(20), seed=np.int64(3), L=np.int32(2))
    b = sp.rotation_errors(1000, 557, batch=20, seed=3, L=2)
    assert a == b
    for D in np.arange(400, 801, 400):
        sp.CiSConfig(D=D, T=np.int64(10))
    df = sp.sweep(
        rotation_rows,
        [dict(D=np.int64(400), T=40, batch=8, L=2)],
        seeds=np.arange(2),
        executor="serial",
        progress=False,
    )
    assert len(df) == 2 * 2 * 4


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        (dict(D=math.nan), "D"),
        (dict(D=0), "D"),
        (dict(T=0), "T"),
        (dict(S=0), "S"),
        (dict(z=200), "z"),
        (dict(L=1.5), "L"),
    ],
)
def test_rotation_theory_rejects_nan_and_zero(kw, name):
    with pytest.raises(ValueError, match=rf"\b{name}="):
        sp.rotation_theory(**{"D": 1000, "T": 100, **kw})


def test_derived_quantities_have_one_home():
    cfg = sp.CiSConfig(D=1000, T=557)
    assert cfg.epsilon == theory.epsilon(1000, 557, 6) == pytest.approx(4 / 1000 - 1 / (6 * 557))
    assert cfg.superposition == theory.control_parameter(1000, 557) == pytest.approx(557 * (4 / 1000) ** 2)
    assert theory.T_at(theory.control_parameter(2000, 1000), 2000) == 1000
    pairs = theory.ris_pairs()
    assert len(pairs) == 41 and (800, 200) in pairs and (2000, 2000) in pairs
    with pytest.raises(ValueError, match="x="):
        theory.T_at(0.0, 1000)


# ---- dtype and device ----------------------------------------------------------------------
def test_dtype_strings_are_accepted_consistently():
    assert check_dtype("float32") is torch.float32 and check_dtype("torch.float64") is torch.float64
    a = sp.rotation_errors(400, 40, batch=8, L=2, dtype="float64")
    b = sp.rotation_errors(400, 40, batch=8, L=2, dtype=torch.float64)
    assert a == b
    with pytest.raises(ValueError, match="dtype='int8'"):
        sp.rotation_errors(400, 40, batch=8, dtype="int8")
    net, _ = sp.build_network(sp.CiSConfig(D=400, T=40), torch.Generator().manual_seed(0), dtype="float64")
    assert net.w.dtype is torch.float64
    with pytest.raises(ValueError, match="dtype="):
        sp.build_network(sp.CiSConfig(D=400, T=40), torch.Generator().manual_seed(0), dtype="cuda")


@pytest.mark.parametrize("device", ["foo", "cuda:99", "meta"])
def test_bad_devices_are_one_value_error(device):
    if device == "cuda:99" and not torch.cuda.is_available():
        device = "cuda"
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match="device="):
        sp.rotation_errors(400, 40, batch=8, device=device)


# ---- sizes checked before allocating -------------------------------------------------------
def test_huge_batch_is_refused_up_front_naming_the_estimate():
    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"batch=1000000 needs about [\d.]+ GiB"):
        sp.rotation_errors(10**6, 10**5, z=1000, batch=10**6)  # 4·10¹⁰ B of active sets and inputs
    with pytest.raises(ValueError, match=r"batch=.* needs about"):
        rotation_error_rows(1000, 557, batch=10**7)
    with pytest.raises(
        ValueError, match=r"batch=1000000000 is out of range: allowed an integer 1 <= batch <= 16777216"
    ):
        sp.rotation_errors(1000, 557, batch=10**9)  # past the vocabulary's bound (`checks.DOMAINS`)
    assert time.perf_counter() - t < 2


def test_capacity_check_is_cheap_far_below_capacity_and_bounded_above():
    """CiSConfig(D=4·10⁶, T=1) took 41 s (the capacity count grew with M²); max_circuits at
    M = 2.5·10⁶ (construction -p D 10000000) took 292 s."""
    t = time.perf_counter()
    sp.CiSConfig(D=4 * 10**6, T=1)
    cap = sp.max_circuits(2_500_000, 6)
    assert time.perf_counter() - t < 5
    assert cap > 10**10
    with pytest.raises(ValueError, match="T="):
        sp.CiSConfig(D=1000, T=558)  # max_circuits(250, 6) = 557
    with pytest.raises(ValueError, match=r"M=.* needs about"):
        sp.max_circuits(2**60, 6)


# ---- issue 23: the memory left is the smallest limit; a refusal names the size's cause ------
@contextlib.contextmanager
def _ulimit_v(headroom=3 * 2**30):
    """`ulimit -v` of the current virtual size plus `headroom` (restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = next(int(ln.split()[1]) * 1024 for ln in open("/proc/self/status") if ln.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_the_memory_left_is_the_smallest_of_meminfo_rlimits_and_cgroup():
    from superpose_lib.core import checks

    free = checks.available_memory()
    with _ulimit_v(2**30):
        limits = checks.memory_limits()
        assert "the address-space limit (ulimit -v)" in limits
        assert checks.available_memory() == min(limits.values()) <= 2**30
    assert checks.available_memory() >= min(free, 2**31)  # restored


def _gr(D):
    return graph.build_graph_network(graph.chain_graph(20, 2, 4, 1, torch.Generator()), D, 6, torch.Generator())


@pytest.mark.parametrize(
    ("call", "blamed"),
    [
        (lambda: sp.rotation_errors(2**24, 3 * 10**9, batch=1), "T"),  # the network's T·S² pairs
        (lambda: sp.rotation_errors(2**30, 100, batch=1), "D"),  # one row of activations is 2^30 numbers
        (lambda: sp.rotation_errors(1000, 100, z=2, batch=5 * 10**6), "batch"),  # fine in RAM, not under ulimit -v
        (lambda: correction.scheme_run(correction.make_scheme("baseline", 4096), 2000, z=2, L=3, batch=10**7), "batch"),
        (lambda: sp.assign(10**8, 10**8, 6), "T"),
        (lambda: graph.graph_rows("chain", 2**30, 10**6, 1, k=2, batch=1), "D"),
        (lambda: _gr(2**30), "D"),
        (lambda: sp.train_superposed(8192, 30000, z=2, L=4, steps=1, batch=2**16), "batch"),
    ],
    ids=[
        "experiment-T",
        "experiment-D",
        "experiment-batch",
        "scheme_run",
        "assign",
        "graph_rows",
        "graph-network",
        "train",
    ],
)
def test_sizes_that_cannot_fit_are_refused_before_allocating_naming_their_cause(call, blamed):
    t = time.perf_counter()
    with _ulimit_v(), pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert msg.startswith(f"{blamed}=") and "needs about" in msg and f"choose a smaller {blamed}" in msg, msg
    assert "address-space limit" in msg or "MemAvailable" in msg
    assert time.perf_counter() - t < 1.0


def test_a_valid_call_is_unchanged_by_the_estimators():
    """The estimators only refuse: a call that fits returns the same numbers under a tight
    `ulimit -v` as without one."""
    a = sp.rotation_errors(400, 40, z=2, L=3, batch=20, seed=3)
    with _ulimit_v():
        b = sp.rotation_errors(400, 40, z=2, L=3, batch=20, seed=3)
    assert a == b
