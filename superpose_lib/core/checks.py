"""Input checks shared by every entry point: one readable `ValueError` naming the parameter
and the allowed range, never a wrong answer or an error from deep inside a tensor operation.

One mechanism, the decorator `checked`, at the boundary of every public function:
- a parameter named with a word of the book's notation takes that word's domain (`DOMAINS`:
  D, T, M, S, S_alpha, z, L, layer, batch, n_boot, n_seeds, steps, d, seed, device, dtype,
  generator, ...), the same in every function;
- any other parameter annotated int or float is checked for its type (`GENERIC`);
- a function narrows a range with `@checked(name=integer(low, high))`, `real(...)` or
  `measured()` (NaN and inf allowed: a censored or missing value a formatter writes out).
The chapters' parameters go through the same domains (`book.run.parameter_domain`).

Sizes: every entry point that allocates estimates its peak memory from its sizes and calls
`check_fits` before its first allocation, which compares with the smallest of the host's
MemAvailable, the RLIMIT_AS / RLIMIT_DATA headroom and the memory cgroup's limit
(`memory_limits`) and names the parameter that makes the size.

Integers: any integral value of any integer type is accepted (Python int, NumPy integers,
0-d integer tensors, integral floats such as 1000.0); bools, non-integral or non-finite
floats, strings, None and values outside the allowed range (at most 2⁶³ − 1, the largest
seed a `torch.Generator` takes and the largest size a tensor can have) are refused.

This module imports nothing else of the library, so every module can use it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import operator
import os

import torch

# rlimits (ulimit -v / -d) exist on POSIX systems only
resource = importlib.import_module("resource") if os.name == "posix" else None

__all__ = [
    "L_MAX",
    "D_MAX",
    "BATCH_MAX",
    "INT_MAX",
    "CIRCUIT_WIDTH",
    "check_int",
    "check_seed",
    "check_d",
    "check_real",
    "check_dtype",
    "check_device",
    "available_memory",
    "memory_limits",
    "check_memory",
    "check_fits",
    "format_bytes",
    "DOMAINS",
    "GENERIC",
    "integer",
    "real",
    "measured",
    "rule",
    "checked",
]

INT_MAX = 2**63 - 1
"""The largest integer any size or seed may take (int64: torch's index and seed range)."""

CIRCUIT_WIDTH = 4
"""d: neurons per layer of one small circuit. The rotation circuits are 4 × 4 (book: "Notation",
"Small circuits": two on-indicator neurons and two for the rotating vector), so d = 4 is the
only width the construction can honour."""

L_MAX = 10_000
"""Deepest network any entry point accepts: loops over layers are bounded (the book uses L ≤ 10)."""


def _is_bool(value) -> bool:
    if isinstance(value, bool):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and str(dtype) in ("bool", "torch.bool")


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """Return `value` as a Python int in [low, high] (high defaults to 2⁶³ − 1); otherwise
    raise a ValueError naming `name` and the allowed range."""
    hi = INT_MAX if high is None else high
    if high is not None:
        allowed = f"an integer {low} <= {name} <= {hi}"
    else:
        allowed = f"an integer {name} >= {low}" if low > -INT_MAX - 1 else "an integer (int64)"
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
            f"d={d} is not supported: the rotation circuits have {CIRCUIT_WIDTH} neurons per layer (allowed: {what})"
        )
    return d


def check_real(
    name: str, value, low: float | None = None, high: float | None = None, *, open_low: bool = False
) -> float:
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


def _proc_kib(field: str) -> int | None:
    """A `field:` line of /proc/self/status in bytes (VmSize, VmData), None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return None if text in ("", "max") else int(text) if text.isdigit() else None


def _cgroup_headroom() -> int | None:
    """Bytes this process's memory cgroup (and every cgroup above it) still allows: the
    smallest limit − usage, cgroup v2 (memory.max − memory.current) or v1
    (memory.limit_in_bytes − memory.usage_in_bytes); None where no limit is set."""
    try:
        with open("/proc/self/cgroup") as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        entries = []
    candidates = []
    for _, controllers, path in entries:
        if controllers == "":  # v2
            candidates += [
                ("/sys/fs/cgroup", path, "memory.max", "memory.current"),
                ("/sys/fs/cgroup/unified", path, "memory.max", "memory.current"),
            ]
        elif "memory" in controllers.split(","):  # v1
            candidates.append(("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes", "memory.usage_in_bytes"))
    best = None
    for mount, path, limit_file, usage_file in candidates:
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):  # the cgroup and its ancestors (the namespace's root included)
            folder = os.path.join(mount, *parts[:depth])
            limit = _read_int(os.path.join(folder, limit_file))
            if limit is None or limit >= 2**62:  # no limit ("max", or v1's page-rounded 2^63)
                continue
            usage = _read_int(os.path.join(folder, usage_file)) or 0
            room = max(limit - usage, 0)
            best = room if best is None else min(best, room)
    return best


def memory_limits(device="cpu") -> dict:
    """What bounds a new allocation on `device`, in bytes: on CUDA {"CUDA free memory"};
    on the host the MemAvailable of /proc/meminfo (elsewhere the physical memory), the
    address-space and data-segment limits left to this process (RLIMIT_AS − VmSize,
    RLIMIT_DATA − VmData, as `ulimit -v` / `ulimit -d` set them) and the memory cgroup's
    limit − usage (a container's limit), each where it is set."""
    if str(device).startswith("cuda"):
        return {"CUDA free memory": int(torch.cuda.mem_get_info(torch.device(device))[0])}
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    out["MemAvailable"] = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if "MemAvailable" not in out:
        try:
            out["physical memory"] = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            pass
    if resource is not None:
        for rlimit, field, label in (
            (resource.RLIMIT_AS, "VmSize", "the address-space limit (ulimit -v)"),
            (resource.RLIMIT_DATA, "VmData", "the data-segment limit (ulimit -d)"),
        ):
            soft = resource.getrlimit(rlimit)[0]
            if soft != resource.RLIM_INFINITY:
                used = _proc_kib(field) or 0
                out[label] = max(soft - used, 0)
    room = _cgroup_headroom()
    if room is not None:
        out["the memory cgroup's limit"] = room
    return out


def available_memory(device="cpu") -> int:
    """Bytes that can still be allocated on `device`: the smallest of `memory_limits`
    (CUDA's free memory; on the host MemAvailable, RLIMIT_AS / RLIMIT_DATA headroom and
    the cgroup limit)."""
    limits = memory_limits(device)
    return min(limits.values()) if limits else 2**63 - 1


def _binding_limit(device) -> tuple[int, str]:
    limits = memory_limits(device)
    if not limits:
        return 2**63 - 1, "no known limit"
    name = min(limits, key=limits.get)
    return limits[name], name


def check_memory(name: str, value, nbytes: float, device="cpu", what: str = "") -> None:
    """Refuse, before allocating, a computation whose estimated peak `nbytes` exceeds the
    memory available on `device` (`available_memory`): one line naming the parameter, the
    estimate and the limit that binds."""
    avail, limit = _binding_limit(device)
    if nbytes > avail:
        why = f" ({what})" if what else ""
        raise ValueError(
            f"{name}={value} needs about {format_bytes(nbytes)} of memory{why}, more than the "
            f"{format_bytes(avail)} available on {device} ({limit}): choose a smaller {name}"
        )


def check_fits(what: str, estimate, sizes: dict, smallest: dict, device="cpu") -> None:
    """Refuse, before allocating, sizes whose estimated peak memory `estimate(**sizes)`
    (bytes) exceeds what `device` has left (`available_memory`): one ValueError naming the
    parameter that makes the size, its value, the estimate and the binding limit.

    The parameter blamed is the one of `smallest` (name -> its smallest allowed value) whose
    reduction to that value shrinks the estimate most: D when the network itself cannot be
    held, batch when the network fits but the batch does not. Every engine that allocates
    has one estimator (a closed form of its sizes, evaluated in microseconds) and calls this
    before its first allocation."""
    need = float(estimate(**sizes))
    avail, limit = _binding_limit(device)
    if need <= avail:
        return
    blame = max(smallest, key=lambda n: need - float(estimate(**{**sizes, n: smallest[n]})))
    others = ", ".join(f"{k}={v}" for k, v in sizes.items() if k != blame)
    raise ValueError(
        f"{blame}={sizes[blame]} needs about {format_bytes(need)} of memory ({what}"
        f"{'; ' + others if others else ''}), more than the {format_bytes(avail)} available on {device} "
        f"({limit}): choose a smaller {blame}"
    )


# ---- the vocabulary's domains, checked at every public entry point ------------------------

#: Widest network an entry point accepts (neurons per layer); the engines refuse smaller
#: sizes that do not fit in memory with `check_fits`.
D_MAX = 2**30
#: Largest batch of samples (active sets, documents, tokens) of one call.
BATCH_MAX = 2**24


def _generator(name, value):
    if not isinstance(value, torch.Generator):
        raise ValueError(f"{name}={value!r} is not allowed: a torch.Generator (e.g. torch.Generator().manual_seed(0))")
    return value


def integer(low: int = -INT_MAX - 1, high: int | None = None):
    """A domain: integers low <= value <= high (checked with `check_int`, returned as int)."""
    return lambda name, value: check_int(name, value, low, high)


def real(low: float | None = None, high: float | None = None, *, open_low: bool = False, keep: bool = False):
    """A domain: finite reals in [low, high] ((low, high] with open_low). keep: return the
    value as given (a NumPy or torch scalar stays one), else as a Python float."""

    def check(name, value):
        out = check_real(name, value, low, high, open_low=open_low)
        return value if keep else out

    return check


def measured():
    """A domain: any real number, NaN and ±inf included (a missing or censored measurement,
    as a formatter receives it); strings, bools, None and other objects are refused. The
    value is returned as given."""

    def check(name, value):
        if value is None or isinstance(value, (str, bytes)) or _is_bool(value):
            raise ValueError(f"{name}={value!r} is not allowed: a number (NaN or inf for a missing or censored value)")
        try:
            float(value)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"{name}={value!r} is not allowed: a number (NaN or inf for a missing or censored value)"
            ) from None
        return value

    return check


def _seed(name, value):
    return check_seed(value, name)


def _as_is(check):
    def domain(name, value):
        check(value)
        return value

    return domain


#: The book's notation as the API's vocabulary (book: "Notation"): a public function's
#: parameter of one of these names takes values in this domain, whatever the function.
#: A function narrows the range further itself (e.g. T up to its assignment's capacity, z up
#: to T); the engines refuse sizes that do not fit in memory with `check_fits`.
DOMAINS = {
    "D": integer(1, D_MAX),  # neurons per layer of the large network
    "T": integer(1, 2**40),  # small circuits
    "M": integer(1, D_MAX),  # neurons per block
    "S": integer(1, 2**16),  # redundancy: neurons per circuit per block
    "S_alpha": integer(1, 2**16),
    "z": integer(1, 2**20),  # active circuits per sample
    "L": integer(1, L_MAX),  # layers
    "layer": integer(0, L_MAX),
    "batch": integer(1, BATCH_MAX),
    "n_boot": integer(1, 10**6),
    "n_seeds": integer(1, 10**4),
    "steps": integer(0, 10**8),
    "d": integer(1, 64),  # neurons per layer of one small circuit (the engines take 4, or 6: `check_d`)
    "itemsize": integer(1, 16),  # bytes per number, for the memory estimators
    "seed": _seed,
    "resolution": real(0.0, 1.0, open_low=True),
    "eps": real(None, None),  # ε of the theory (d/D − 1/(ST), either sign) or a tolerance
    "tol": real(1e-12, None),  # a tolerance or a search's relative precision: finer than 1e-12 no float bisection ends
    "rate": real(0.0, 1.0, open_low=True),
    "device": _as_is(check_device),
    "dtype": _as_is(check_dtype),
    "generator": _generator,
}
_ALWAYS = ("device", "dtype", "generator")
_NUMERIC = ("int", "float")
#: Any other parameter annotated int or float (or with an int or float default) is checked
#: for its type: an integer of int64's range, or a finite real (NaN, ±inf, strings, bools,
#: None where it is not the default are refused). Its range is the function's to check,
#: with `checked(name=domain)` or in its body.
GENERIC = {"int": integer(), "float": real(keep=True)}


def _words(ann) -> list[str]:
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    return text.replace("|", " ").replace("Optional[", " ").replace("]", " ").split()


def _kind(p: inspect.Parameter) -> str | None:
    """ "int" or "float" for a numeric parameter (by its annotation, else its default), else None."""
    ann = p.annotation
    if ann is not p.empty:
        words = [w for w in _words(ann) if w != "None"]
        if words and all(w in _NUMERIC for w in words):
            return "float" if "float" in words else "int"
        return None
    d = p.default
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        return None
    return "float" if isinstance(d, float) else "int"


def _checkable(p: inspect.Parameter) -> bool:
    """A vocabulary parameter (`DOMAINS`) that the decorator checks: device, dtype and
    generator always; a size or real when it is annotated int or float, has an int or float
    default, or has neither annotation nor default (a vocabulary name is then a number)."""
    if p.name not in DOMAINS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
        return False
    if p.name in _ALWAYS:
        return True
    if p.annotation is p.empty and p.default is p.empty:
        return True
    return _kind(p) is not None


def rule(p: inspect.Parameter):
    """The check `checked` applies to parameter `p` without an explicit domain: its
    vocabulary domain, the generic int / float check, or None (not checked)."""
    if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
        return None
    if _checkable(p):
        return DOMAINS[p.name]
    kind = _kind(p)
    return GENERIC[kind] if kind is not None else None


def _optional(p: inspect.Parameter) -> bool:
    return p.default is None or (p.annotation is not p.empty and "None" in _words(p.annotation))


def checked(fn=None, /, **domains):
    """Check `fn`'s arguments before it runs: a ValueError naming the parameter, its value
    and the allowed range, raised before any work.

    Checked: every parameter the vocabulary names (`DOMAINS`: D, T, S, z, L, batch, seed,
    device, dtype, generator, ...; see `_checkable`), every other parameter annotated int
    or float (its type, `GENERIC`), and the parameters given as keywords, each with its
    domain (`integer(low, high)`, `real(low, high)` or any callable (name, value) -> value):
    ``@checked(on_threshold=real(0, 1, open_low=True))``. None passes where the parameter
    is optional (default None, or None in its annotation). Checked integers reach `fn` as
    Python ints, vocabulary reals as Python floats; other reals as given."""
    if fn is None:
        return lambda f: checked(f, **domains)
    sig = inspect.signature(fn)
    unknown = set(domains) - set(sig.parameters)
    if unknown:
        raise TypeError(f"checked({fn.__name__}): no parameter(s) {sorted(unknown)}")
    rules = {}
    for n, p in sig.parameters.items():
        r = domains.get(n) or rule(p)
        if r is not None:
            rules[n] = r
    if not rules:
        return fn
    optional = {n for n in rules if _optional(sig.parameters[n])}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise ValueError(f"{fn.__name__}: {e}") from None
        for n, check in rules.items():
            if n in bound.arguments:
                v = bound.arguments[n]
                if v is None and n in optional:
                    continue
                bound.arguments[n] = check(n, v)
        return fn(*bound.args, **bound.kwargs)

    wrapper.__checked__ = tuple(rules)
    wrapper.__rules__ = dict(rules)
    return wrapper
