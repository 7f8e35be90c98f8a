"""Input checks shared by every entry point: one readable `ValueError` naming the parameter
and the allowed range, never a wrong answer or an error from deep inside a tensor operation.

Integers: any integral value of any integer type is accepted (Python int, NumPy integers,
0-d integer tensors, integral floats such as 1000.0); bools, non-integral or non-finite
floats, strings, None and values outside the allowed range (at most 2⁶³ − 1, the largest
seed a `torch.Generator` takes and the largest size a tensor can have) are refused.

This module imports nothing else of the library, so every module can use it.
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
import os

import torch

__all__ = [
    "L_MAX",
    "INT_MAX",
    "CIRCUIT_WIDTH",
    "check_int",
    "check_seed",
    "check_d",
    "check_real",
    "check_dtype",
    "check_device",
    "available_memory",
    "check_memory",
    "format_bytes",
    "DOMAINS",
    "checked",
]

INT_MAX = 2**63 - 1
"""The largest integer any size or seed may take (int64: torch's index and seed range)."""

CIRCUIT_WIDTH = 4

#: Deepest network any entry point accepts: loops over layers are bounded (the book uses L ≤ 10).
L_MAX = 10_000
"""d: neurons per layer of one small circuit. The rotation circuits are 4 × 4 (book: "Notation",
"Small circuits": two on-indicator neurons and two for the rotating vector), so d = 4 is the
only width the construction can honour."""


def _is_bool(value) -> bool:
    if isinstance(value, bool):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and str(dtype) in ("bool", "torch.bool")


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """Return `value` as a Python int in [low, high] (high defaults to 2⁶³ − 1); otherwise
    raise a ValueError naming `name` and the allowed range."""
    hi = INT_MAX if high is None else high
    allowed = f"an integer {low} <= {name} <= {hi}" if high is not None else f"an integer {name} >= {low}"
    if value is None or isinstance(value, (str, bytes)) or _is_bool(value):
        raise ValueError(f"{name}={value!r} is not allowed: {allowed}")
    try:
        out = operator.index(value)  # int, NumPy integers, 0-d integer tensors
    except TypeError:
        try:
            f = float(value)  # integral floats (NumPy and 0-d tensors included)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name}={value!r} is not allowed: {allowed}") from None
        if not (math.isfinite(f) and f.is_integer()):
            raise ValueError(f"{name}={value!r} is not an integer: allowed {allowed}") from None
        out = int(f)
    if out < low or out > hi:
        raise ValueError(f"{name}={out} is out of range: allowed {allowed}")
    return out


def check_seed(seed, name: str = "seed") -> int:
    """A seed: an integer 0 <= seed <= 2⁶³ − 1 (1.7, '5', True or None are refused)."""
    return check_int(name, seed, 0, INT_MAX)


def check_d(d, allowed: tuple[int, ...] = (CIRCUIT_WIDTH,)) -> int:
    """d, the width of one small circuit: only d = 4 can be honoured (the rotation circuits
    are 4 × 4; `allowed` widens it where a construction adds neurons, e.g. the error
    correction's d = 6). Any other d would build a network of width 4·D/d while
    reporting D, so every entry point that takes d calls this."""
    d = check_int("d", d, 1)
    if d not in allowed:
        what = f"d = {allowed[0]}" if len(allowed) == 1 else "d in {" + ", ".join(map(str, allowed)) + "}"
        raise ValueError(
            f"d={d} is not supported: the rotation circuits have {CIRCUIT_WIDTH} neurons per layer "
            f"(allowed: {what})"
        )
    return d


def check_real(name: str, value, low: float | None = None, high: float | None = None, *, open_low: bool = False) -> float:
    """Return `value` as a finite float in [low, high] ((low, high] with open_low)."""
    if value is None or isinstance(value, (str, bytes)) or _is_bool(value):
        raise ValueError(f"{name}={value!r} is not allowed: a finite number")
    try:
        f = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}={value!r} is not allowed: a finite number") from None
    lo_ok = low is None or (f > low if open_low else f >= low)
    if not math.isfinite(f) or not lo_ok or (high is not None and f > high):
        lo = "" if low is None else f"{low} {'<' if open_low else '<='} "
        hi = "" if high is None else f" <= {high}"
        raise ValueError(f"{name}={value!r} is out of range: allowed a finite number {lo}{name}{hi}")
    return f


_DTYPES = {"float32": "float32", "float": "float32", "float64": "float64", "double": "float64"}


def check_dtype(dtype):
    """torch.float32 or torch.float64, also given as a string ("float32", "torch.float64")."""

    if isinstance(dtype, str):
        key = dtype.removeprefix("torch.")
        if key in _DTYPES:
            return getattr(torch, _DTYPES[key])
    elif dtype in (torch.float32, torch.float64):
        return dtype
    raise ValueError(f"dtype={dtype!r} is not allowed: torch.float32 or torch.float64 (or 'float32', 'float64')")


def check_device(device):
    """A torch.device this machine has (cpu, cuda, cuda:N), else a ValueError naming it."""

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"device={device!r} is not a torch device: choose cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}: CUDA is not available on this machine: choose cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s): choose cuda:0..")
    elif dev.type != "cpu":
        raise ValueError(f"device={device!r} is not supported: choose cpu, cuda or cuda:N")
    return dev


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # unreachable


def available_memory(device="cpu") -> int:
    """Bytes that can still be allocated: CUDA's free memory, or the host's MemAvailable
    (Linux; elsewhere the physical memory)."""
    if str(device).startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**63 - 1


def check_memory(name: str, value, nbytes: float, device="cpu", what: str = "") -> None:
    """Refuse, before allocating, a computation whose estimated peak `nbytes` exceeds the
    memory available on `device`: one line naming the parameter and the estimate."""
    avail = available_memory(device)
    if nbytes > avail:
        why = f" ({what})" if what else ""
        raise ValueError(
            f"{name}={value} needs about {format_bytes(nbytes)} of memory{why}, more than the "
            f"{format_bytes(avail)} available on {device}: choose a smaller {name}"
        )


# ---- the vocabulary's domains, checked at every public entry point ------------------------

#: Widest network an entry point accepts (neurons per layer); the engines refuse smaller
#: sizes that do not fit in memory with `check_memory`.
D_MAX = 2**30
#: Largest batch of samples (active sets, documents, tokens) of one call.
BATCH_MAX = 2**24


def _generator(name, value):
    if not isinstance(value, torch.Generator):
        raise ValueError(f"{name}={value!r} is not allowed: a torch.Generator (e.g. torch.Generator().manual_seed(0))")
    return value


def _int(low, high=None):
    return lambda name, value: check_int(name, value, low, high)


def _real(low=None, high=None, open_low=False):
    return lambda name, value: check_real(name, value, low, high, open_low=open_low)


#: The book's notation as the API's vocabulary (book: "Notation"): a public function's
#: parameter of one of these names takes values in this domain, whatever the function.
#: Integers and reals are checked where the parameter is annotated int or float (or has an
#: int or float default); device, dtype and generator always. A function narrows the range
#: further itself (e.g. T up to its assignment's capacity, z up to T).
DOMAINS = {
    "D": _int(1, D_MAX),  # neurons per layer of the large network
    "T": _int(1, 2**40),  # small circuits
    "M": _int(1, D_MAX),  # neurons per block
    "S": _int(1, 2**16),  # redundancy: neurons per circuit per block
    "S_alpha": _int(1, 2**16),
    "z": _int(1, 2**20),  # active circuits per sample
    "L": _int(1, L_MAX),  # layers
    "layer": _int(0, L_MAX),
    "batch": _int(1, BATCH_MAX),
    "n_boot": _int(1, 10**6),
    "n_seeds": _int(1, 10**4),
    "steps": _int(0, 10**8),
    "seed": lambda name, value: check_seed(value, name),
    "resolution": _real(0.0, 1.0, open_low=True),
    "eps": _real(None, None),  # ε of the theory (d/D − 1/(ST), either sign) or a tolerance
    "tol": _real(0.0, None, open_low=True),
    "rate": _real(0.0, 1.0, open_low=True),
    "device": lambda name, value: (check_device(value), value)[1],
    "dtype": lambda name, value: (check_dtype(value), value)[1],
    "generator": _generator,
}
_ALWAYS = ("device", "dtype", "generator")
_NUMERIC = ("int", "float")


def _checkable(p: inspect.Parameter) -> bool:
    if p.name not in DOMAINS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
        return False
    if p.name in _ALWAYS:
        return True
    ann = p.annotation
    if ann is not p.empty:
        text = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
        words = text.replace("|", " ").replace("Optional[", " ").replace("]", " ").split()
        return bool(words) and all(w in _NUMERIC or w == "None" for w in words)
    d = p.default
    return isinstance(d, (int, float)) and not isinstance(d, bool)


def checked(fn):
    """Check `fn`'s parameters that the vocabulary names (`DOMAINS`) before it runs: a
    ValueError naming the parameter, its value and the allowed range. None passes where it
    is the parameter's default (the parameter is optional). Checked integers reach `fn` as
    Python ints."""
    sig = inspect.signature(fn)
    names = [n for n, p in sig.parameters.items() if _checkable(p)]
    if not names:
        return fn
    optional = {n for n in names if sig.parameters[n].default is None}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise ValueError(f"{fn.__name__}: {e}") from None
        for n in names:
            if n in bound.arguments:
                v = bound.arguments[n]
                if v is None and n in optional:
                    continue
                out = DOMAINS[n](n, v)
                if n not in _ALWAYS:
                    bound.arguments[n] = out
        return fn(*bound.args, **bound.kwargs)

    wrapper.__checked__ = tuple(names)
    return wrapper
