"""Every public function guards its arguments (`core.checks.checked`): a bad value of a
vocabulary parameter (D, T, S, z, L, batch, seed, device, dtype, ...), of any other int or
float parameter, or of a parameter with its own domain is one ValueError naming the
parameter, raised in < 1 s before any work. The functions are enumerated from every
module's `__all__`, so a new module is covered without editing this file.

Three properties, all under an address-space limit (`ulimit -v`: nothing may allocate past
it; the engines' size estimators read it and refuse instead):
- every parameter with a rule is checked by the decorator;
- bad values (wrong types, bools, NaN, ±inf, 0, negative, huge, strings, NumPy scalars and
  0-d arrays, unknown devices and dtypes) are one ValueError naming the parameter, < 1 s;
- every function whose required arguments are all numbers (or device, dtype, generator) is
  called with edge values of one argument at a time (the domain's bounds, 0, −1, 10⁶,
  1e±300, ...): it returns, or raises ValueError or a documented domain error, in bounded
  time, and never a TypeError, an IndexError or an allocator's RuntimeError / MemoryError.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import pkgutil
import resource
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import superpose_lib
from superpose_lib.core import checks


def _public_functions():
    out = []
    for info in pkgutil.walk_packages(superpose_lib.__path__, "superpose_lib."):
        if info.name == checks.__name__:
            continue  # the validators themselves
        mod = importlib.import_module(info.name)
        for name in getattr(mod, "__all__", []):
            fn = getattr(mod, name, None)
            if inspect.isfunction(fn) and fn.__module__ == mod.__name__:
                out.append((f"{info.name}.{name}", fn))
    return out


PUBLIC = _public_functions()
GUARDED = [(n, f) for n, f in PUBLIC if getattr(f, "__checked__", ())]
# A valid value of every vocabulary parameter, for the parameters a call does not probe.
VALID = {
    "D": 1024,
    "T": 100,
    "M": 256,
    "S": 6,
    "S_alpha": 6,
    "z": 2,
    "L": 3,
    "layer": 1,
    "batch": 8,
    "n_boot": 10,
    "n_seeds": 2,
    "steps": 1,
    "seed": 0,
    "resolution": 0.05,
    "eps": 1.0,
    "tol": 0.01,
    "rate": 1e-3,
    "device": "cpu",
    "dtype": torch.float32,
    "generator": torch.Generator(),
}
#: Values no number parameter takes (each is refused by at least the generic checks), and the
#: range-bad ones of the sizes and reals; filtered per parameter by its own rule.
BAD = [
    True,
    False,
    "5",
    "",
    float("nan"),
    float("inf"),
    -float("inf"),
    [3],
    (1,),
    object(),
    b"1",
    1.5,
    np.float64(2.5),
    np.array(2.5),
    torch.tensor(1.5),
    torch.tensor([1, 2]),
    1j,
    -1,
    0,
    10**30,
    -(10**30),
    -0.5,
    1e300,
    2**40 + 1,
    "cpu",
    "float16",
    torch.int64,
    3,
    "int",
    "foo",
    "meta",
    5,
    "cuda:99",
    np.random.default_rng(0),
]
if not torch.cuda.is_available():
    BAD.append("cuda")
BAD.append("mps")

#: Edge values of one argument at a time for the call test: in-domain bounds and extremes.
EDGE = {
    "D": [1, 4, 2**30],
    "T": [1, 2**40],
    "M": [1, 2**30],
    "S": [1, 2**16],
    "S_alpha": [1, 2**16],
    "z": [1, 2**20],
    "L": [1, 2, 12],
    "layer": [0, 12],
    "batch": [1, 2**24],
    "n_boot": [1],
    "n_seeds": [1],
    "steps": [0],
    "d": [1, 64],
    "itemsize": [1, 16],
    "seed": [0, 2**63 - 1],
    "resolution": [1e-300, 1.0],
    "eps": [-1e300, 0.0, 1e300],
    "tol": [1e-300, 1e300],
    "rate": [1e-300, 1.0],
    "device": ["cpu"],
    "dtype": [torch.float64],
    "generator": [torch.Generator().manual_seed(1)],
}
EDGE_INT = [-(2**63), -1, 0, 1, 2]  # no stated range: huge values are the sizes' (EDGE)
EDGE_REAL = [-1e300, -1.0, 0.0, 1e-300, 0.5, 1.0, 1e300]
#: Called with edge values only if pure: these read or write files, start processes or need
#: the network (their failures are tested where they live).
SIDE_EFFECTS = (
    "superpose_lib.gist.brown.fetch_brown",
    "superpose_lib.gist.brown.load_brown",
    "superpose_lib.gist.brown.main",
    "superpose_lib.book.",
    "superpose_lib.sweep.",
    "superpose_lib.trained.train.cached_train",
    "superpose_lib.trained.train.trained_rows",
    "superpose_lib.gist.brown_lm.",
    "superpose_lib.gist.gpt2.load_gpt2",
    "superpose_lib.gist.gpt2.gpt2_tokenizer",
    "superpose_lib.gist.gpt2.tokenizer_files",
    "superpose_lib.gist.gpt2.load_labelled_text",
    "superpose_lib.gist.gpt2.data_dir",
    "superpose_lib.gist.gpt2.find_gpt2_weights",
    "superpose_lib.gist.gpt2.encode",
    "superpose_lib.core.cache.",
    # and these take seconds for any valid call (GPT-2 Small's weights, the Brown
    # corpus, dense D × D training): their argument checks are in the bad-values
    # test above, their size refusals in tests/core/test_validation.py
    "superpose_lib.gist.gpt2.random_gpt2",
    "superpose_lib.gist.real.",
    "superpose_lib.trained.train.train_superposed",
)
AS_HEADROOM = 3 * 2**30  # bytes a call may map beyond what the test process already has
REFUSE_S, RETURN_S = 1.0, 20.0  # a refusal of bad values; any call with edge values (a loaded CI machine)


@contextlib.contextmanager
def address_space_cap(headroom=AS_HEADROOM):
    """`ulimit -v` for the duration: the current virtual size plus `headroom`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    cap = vm + headroom if hard == resource.RLIM_INFINITY else min(vm + headroom, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _refused(rule, name, value) -> bool:
    try:
        rule(name, value)
    except ValueError:
        return True
    return False


def _params(fn):
    return {
        n: p for n, p in inspect.signature(fn).parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _valid(fn, name):
    """A value the decorator accepts for `name` (None if none is found)."""
    p, rule = _params(fn)[name], fn.__rules__[name]
    default = None if p.default is p.empty else p.default
    for v in (VALID.get(name), default, 1, 2, 8, 0.5, 0, 0.0, 64):
        if v is not None and not _refused(rule, name, v):
            return v
    return default


def _args(fn, probe, value):
    kwargs = {}
    for n, p in _params(fn).items():
        if n == probe:
            kwargs[n] = value
        elif n in fn.__rules__:
            v = _valid(fn, n)
            if v is not None or p.default is p.empty:
                kwargs[n] = v
        elif p.default is p.empty:
            kwargs[n] = object()  # never reached when a check fails first; see CALLABLE
    return kwargs


def _optional(fn, name):
    p = _params(fn)[name]
    return p.default is None or (p.annotation is not p.empty and "None" in str(p.annotation))


def test_the_public_api_is_enumerated():
    # the enumeration finds the engines, the chapters' packages and the book tooling
    names = {n for n, _ in PUBLIC}
    assert len(PUBLIC) > 300 and len(GUARDED) > 200, (len(PUBLIC), len(GUARDED))
    for must in (
        "superpose_lib.core.experiment.rotation_errors",
        "superpose_lib.correction.schemes.scheme_run",
        "superpose_lib.graph.network.graph_rows",
        "superpose_lib.core.assignment.assign",
        "superpose_lib.book.run.coerce_parameter",
        "superpose_lib.trained.train.train_superposed",
    ):
        assert must in names


@pytest.mark.parametrize("name, fn", [pytest.param(n, f, id=n) for n, f in PUBLIC])
def test_every_parameter_with_a_rule_is_guarded(name, fn):
    """A public function that takes a vocabulary parameter, or any int / float parameter,
    is wrapped by `checks.checked`, which checks each of them."""
    want = {n for n, p in _params(fn).items() if checks.rule(p) is not None}
    assert want <= set(getattr(fn, "__checked__", ())), f"{name}: decorate it with @checked"


@pytest.mark.parametrize("name, fn", GUARDED, ids=[n for n, _ in GUARDED])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_values_are_one_value_error_naming_the_parameter(name, fn, data):
    probe = data.draw(st.sampled_from(fn.__checked__), label="parameter")
    rule = fn.__rules__[probe]
    pool = [v for v in BAD if _refused(rule, probe, v)]
    if not _optional(fn, probe):
        pool.append(None)
    bad = data.draw(st.sampled_from(pool), label="value")
    t = time.perf_counter()
    with address_space_cap(), pytest.raises(ValueError) as err:
        fn(**_args(fn, probe, bad))
    assert f"{probe}=" in str(err.value), (name, probe, bad, str(err.value))
    assert "\n" not in str(err.value)
    assert time.perf_counter() - t < REFUSE_S


def _callable(fn):
    """Every required argument can be generated: a number, device, dtype or generator."""
    return all(n in fn.__rules__ and _valid(fn, n) is not None for n, p in _params(fn).items() if p.default is p.empty)


CALLABLE = [(n, f) for n, f in GUARDED if not n.startswith(SIDE_EFFECTS) and _callable(f)]


def _edges(fn, name):
    if name in checks.DOMAINS and fn.__rules__[name] is checks.DOMAINS[name]:
        return EDGE[name]
    return EDGE_INT if checks.rule(_params(fn)[name]) is checks.GENERIC["int"] else EDGE_REAL


#: What a call may raise besides ValueError: the documented domain errors.
DOCUMENTED = (ValueError,)


@pytest.mark.parametrize("name, fn", CALLABLE, ids=[n for n, _ in CALLABLE])
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_edge_values_return_or_are_refused_in_bounded_time_and_memory(name, fn, data):
    probe = data.draw(st.sampled_from(fn.__checked__), label="parameter")
    value = data.draw(st.sampled_from(_edges(fn, probe)), label="value")
    t = time.perf_counter()
    try:
        with address_space_cap():
            fn(**_args(fn, probe, value))
    except DOCUMENTED as e:
        # a refusal may follow real work here (e.g. T checked against a scheme's capacity
        # once its design is computed); the arguments' own checks are timed above
        assert "\n" not in str(e).strip(), (name, probe, value, str(e))
    assert time.perf_counter() - t < RETURN_S, (name, probe, value)


def test_the_call_test_reaches_the_engines():
    names = {n for n, _ in CALLABLE}
    for must in (
        "superpose_lib.core.experiment.rotation_errors",
        "superpose_lib.core.theory.rotation_theory",
        "superpose_lib.core.assignment.assign",
        "superpose_lib.regime.spurious.spurious_theory",
        "superpose_lib.trained.train.train_bytes",
        "superpose_lib.stats.poisson_sf",
    ):
        assert must in names, must
    assert len(CALLABLE) > 40, len(CALLABLE)


def test_checked_ints_reach_the_function_as_python_ints():
    @checks.checked
    def f(D: int, seed: int = 0, device="cpu", width: int = 3, scale: float = 1.0):
        return D, seed, device, width, scale

    D, seed, device, width, scale = f(np.int64(64), torch.tensor(3), width=np.int32(5), scale=np.float32(2.0))
    assert type(D) is int and type(seed) is int and type(width) is int and D == 64 and seed == 3 and width == 5
    assert device == "cpu" and type(scale) is np.float32  # a generic real reaches the function as given
    assert f(2.0**10)[0] == 1024 and math.isclose(f(1024)[0], 1024)
    with pytest.raises(ValueError, match="f: missing a required argument: 'D'"):
        f()
    with pytest.raises(ValueError, match=r"width=1\.5 is not an integer"):
        f(64, width=1.5)
    with pytest.raises(ValueError, match="scale=nan is out of range"):
        f(64, scale=float("nan"))


def test_a_function_narrows_a_parameter_with_its_own_domain():
    @checks.checked(theta=checks.real(0.0, 1.0, open_low=True), k=checks.integer(2, 9))
    def f(theta: float, k: int = 2, label="x"):
        return theta, k

    assert f(0.5, 3) == (0.5, 3)
    for bad, match in ((0.0, "theta=0.0 is out of range"), (None, "theta=None"), ("0.3", "theta='0.3'")):
        with pytest.raises(ValueError, match=match):
            f(bad)
    with pytest.raises(ValueError, match="k=10 is out of range: allowed an integer 2 <= k <= 9"):
        f(0.5, 10)
    with pytest.raises(TypeError, match="no parameter"):
        checks.checked(nope=checks.real())(lambda x: x)
