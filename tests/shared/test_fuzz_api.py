"""Every public function guards the book's vocabulary (`core.checks.DOMAINS`): a bad value of
D, T, S, z, L, batch, seed, device, dtype, ... is one ValueError naming the parameter, raised
before any work. The functions are enumerated from every module's `__all__`, so a new module
is covered without editing this file."""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
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
VALID = {"D": 1024, "T": 100, "M": 256, "S": 6, "S_alpha": 6, "z": 2, "L": 3, "layer": 1, "batch": 8,
         "n_boot": 10, "n_seeds": 2, "steps": 1, "seed": 0, "resolution": 0.05, "eps": 1.0, "tol": 0.01,
         "rate": 1e-3, "device": "cpu", "dtype": torch.float32, "generator": torch.Generator()}
_BAD_NUMBER = [True, "5", float("nan"), float("inf"), -float("inf"), -1, 10**30, [3], object()]
_BAD_INT = _BAD_NUMBER + [1.5, np.float64(2.5), np.array(2.5), torch.tensor(1.5)]
BAD = {
    "int": _BAD_INT,
    "real": _BAD_NUMBER + [-0.5],
    "device": ["foo", "meta", 5, "cuda:99"] + ([] if torch.cuda.is_available() else ["cuda"]),
    "dtype": ["float16", torch.int64, 3, "int"],
    "generator": [0, "gen", np.random.default_rng(0)],
}
_REAL = ("resolution", "eps", "tol", "rate")


def _refused(name, value):
    try:
        checks.DOMAINS[name](name, value)
    except ValueError:
        return True
    return False


def _kind(name):
    return name if name in ("device", "dtype", "generator") else ("real" if name in _REAL else "int")


def test_the_public_api_is_enumerated():
    # the enumeration finds the engines, the chapters' packages and the book tooling
    names = {n for n, _ in PUBLIC}
    assert len(PUBLIC) > 300 and len(GUARDED) > 150, (len(PUBLIC), len(GUARDED))
    for must in ("superpose_lib.core.experiment.rotation_errors", "superpose_lib.correction.schemes.scheme_run",
                 "superpose_lib.graph.network.graph_rows", "superpose_lib.core.assignment.assign"):
        assert must in names


@pytest.mark.parametrize("name, fn", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_every_vocabulary_parameter_is_guarded(name, fn):
    """A public function that takes a vocabulary parameter is wrapped by `checks.checked`."""
    want = [p for p in inspect.signature(fn).parameters.values() if checks._checkable(p)]
    assert set(getattr(fn, "__checked__", ())) == {p.name for p in want}, f"{name}: decorate it with @checked"


def _call_args(fn, probe, bad):
    kwargs = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name == probe:
            kwargs[p.name] = bad
        elif p.name in fn.__checked__:
            kwargs[p.name] = VALID[p.name]
        elif p.default is p.empty:
            kwargs[p.name] = object()  # never reached: the checks run before the body
    return kwargs


@pytest.mark.parametrize("name, fn", GUARDED, ids=[n for n, _ in GUARDED])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_values_are_one_value_error_naming_the_parameter(name, fn, data):
    probe = data.draw(st.sampled_from(fn.__checked__), label="parameter")
    default = inspect.signature(fn).parameters[probe].default
    pool = BAD[_kind(probe)] + ([] if default is None else [None])
    if _kind(probe) == "int" and probe not in ("layer", "steps", "seed"):
        pool = pool + [0]  # every size's range starts at 1
    pool = [v for v in pool if v is None or _refused(probe, v)]  # e.g. eps takes any finite real
    bad = data.draw(st.sampled_from(pool), label="value")
    t = time.perf_counter()
    with pytest.raises(ValueError) as err:
        fn(**_call_args(fn, probe, bad))
    assert f"{probe}=" in str(err.value), (name, probe, bad, str(err.value))
    assert "\n" not in str(err.value)
    assert time.perf_counter() - t < 1.0


def test_checked_ints_reach_the_function_as_python_ints():
    @checks.checked
    def f(D: int, seed: int = 0, device="cpu"):
        return D, seed, device

    D, seed, device = f(np.int64(64), torch.tensor(3))
    assert type(D) is int and type(seed) is int and D == 64 and seed == 3 and device == "cpu"
    assert f(2.0**10)[0] == 1024 and math.isclose(f(1024)[0], 1024)
    with pytest.raises(ValueError, match="f: missing a required argument: 'D'"):
        f()
