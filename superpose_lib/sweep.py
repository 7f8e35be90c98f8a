"""Sweeps: a grid of configurations × seeds -> one tidy table, cached on disk.

`sweep(fn, grid, seeds)` calls `fn(**config, seed=seed)` for every pair. `fn` returns a
list of rows (dicts of JSON scalars); the table gets one row per returned row, with the
configuration and the seed as columns in front (tidy: one row per configuration, seed
and whatever `fn` splits by, e.g. layer and quantity).

Cache. One JSON file per (fn, configuration, seed, library version) under `cache_dir`,
named by the SHA-256 of those four. The library version includes a hash of the
sources the function's results depend on (its module and the library modules it imports,
transitively, without the plot and formatter files), so a change to the maths invalidates
old entries and a change to a figure does not. Files are written
atomically (temporary file in the same folder, fsync, `os.replace`), so a killed run
leaves either the old entry or the new one, never half of one. Each file stores its key
and a SHA-256 of its rows; a missing, truncated, garbled or stale file fails those
checks and is recomputed, never used (so is a folder where an entry should be). A cache
that cannot be written (a read-only folder, a full disk) costs no computed work: `sweep`
warns once and goes on without writing entries. A rerun with the same inputs reads every result
from disk and is instant. Results are cached as they complete: an interrupted sweep
resumes where it stopped.

Executors. `executor=None` (default) runs a local process pool (spawn context, so CUDA
and forked BLAS threads are safe; one intra-op thread per worker). `executor="serial"`
runs in this process. Any `concurrent.futures.Executor` works, e.g. dask.distributed for
sweeps that outgrow one machine::

    from dask.distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=4, threads_per_worker=1))  # or Client("tcp://scheduler:8786")
    df = sweep(fn, grid, seeds, executor=client)   # a Client is used via client.get_executor()

`fn` must be importable by the workers (a module-level function of an installed
package, not one defined in a notebook). The process pool uses the spawn start method, so
a script that calls `sweep` must guard its entry point with `if __name__ == "__main__":`
(notebooks need nothing).

Same seed, same numbers, under every executor. The structured forward pass is bitwise
independent of the thread count, but PyTorch's CPU reductions (`Tensor.sum` over more
than 32768 elements) split the work by thread, so the last bits of float64 sums changed
with `torch.set_num_threads` (measured: 1 ulp at D = 16000, T = 16000 between 1 and 4
threads). Every task therefore runs with `threads` intra-op threads (default 1), set
around the call and restored after it, in whichever process runs it.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import multiprocessing as mp
import os
import tempfile
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import torch

from ._version import __version__
from .core.checks import check_int, check_seed, checked

__all__ = [
    "sweep",
    "library_sources",
    "library_version",
    "cache_key",
    "cache_path",
    "progress_bar",
    "LIB_ROOT",
    "PRESENTATION",
]


#: The library's root folder, and the files that only draw or format (never part of a cached result).
LIB_ROOT = Path(__file__).parent
PRESENTATION = ("plots.py", "report.py")


def _module_file(root: Path, dotted: str) -> Path | None:
    path = root.joinpath(*dotted.split(".")) if dotted else root
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None  # a package (its __init__ only re-exports) or not a library module


def _imported_files(root: Path, file: Path) -> set[Path]:
    """Library source files that `file` imports (relative imports, any depth of the body)."""
    pkg = list(file.relative_to(root).parent.parts)
    out = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
        target = ".".join(base + ([node.module] if node.module else []))
        if (f := _module_file(root, target)) is not None:
            out.add(f)
        else:  # `from .pkg import module`
            out |= {f for a in node.names if (f := _module_file(root, f"{target}.{a.name}".lstrip("."))) is not None}
    return out


def library_sources(fn: Callable | None = None, *, root: str | os.PathLike | None = None) -> list[Path]:
    """The source files a cached result of `fn` depends on: its module and every library
    module it imports, transitively, except the presentation files (plots, formatters).
    A function from outside the library depends on every computing file of it."""
    root = Path(root) if root is not None else LIB_ROOT
    module = getattr(fn, "__module__", "") or ""
    start = _module_file(root, module.partition(".")[2]) if module.startswith("superpose_lib.") else None
    if start is None:
        files = {p for p in root.rglob("*.py") if p.name != "__init__.py"}
    else:
        files, todo = set(), [start]
        while todo:
            f = todo.pop()
            if f not in files:
                files.add(f)
                todo.extend(_imported_files(root, f) - files)
    return sorted((f for f in files if f.name not in PRESENTATION), key=lambda f: f.relative_to(root).as_posix())


def library_version(fn: Callable | None = None, *, root: str | os.PathLike | None = None) -> str:
    """__version__ plus a hash of the sources `fn`'s results depend on (`library_sources`):
    a change to the maths invalidates its cache entries, a change to a plot or a
    formatter does not."""
    root = Path(root) if root is not None else LIB_ROOT
    h = hashlib.sha256()
    for p in library_sources(fn, root=root):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def _fn_name(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


@checked
def cache_key(fn: Callable, config: dict, seed: int, version: str) -> str:
    """SHA-256 naming one result: the function, its configuration, the seed, the library version."""
    ident = {"fn": _fn_name(fn), "config": config, "seed": seed, "version": version}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


@checked
def cache_path(cache_dir: str | os.PathLike, fn: Callable, config: dict, seed: int) -> Path:
    """Where `sweep` caches fn(**config, seed=seed) under `cache_dir` (current library version)."""
    return Path(cache_dir) / f"{cache_key(fn, dict(config), int(seed), library_version(fn))}.json"


def _plain(value):
    """NumPy/torch scalars (a grid from np.arange) as Python numbers, recursively in lists:
    the same configuration gets the same cache key and table columns whatever its types."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def _digest(rows: list) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path, key: str):
    """The cached rows, or None if the entry is missing, partial, corrupt or stale."""
    try:
        payload = json.loads(path.read_text())
        rows = payload["rows"]
        if (
            payload["key"] == key
            and isinstance(rows, list)
            and all(isinstance(r, dict) for r in rows)
            and payload["sha256"] == _digest(rows)
        ):
            return rows
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        pass
    return None


def _write_cache(path: Path, key: str, rows: list, ident: dict | None = None) -> None:
    """Atomic: write a temporary file beside `path`, fsync it, then rename it over `path`.
    `ident` (fn, config, seed, version) is stored alongside for people reading the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"key": key, **(ident or {}), "sha256": _digest(rows), "rows": rows}, f, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _call(fn, config, seed, threads):
    """fn(**config, seed=seed) with `threads` intra-op torch threads (restored after)."""

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = fn(**config, seed=seed)
    finally:
        torch.set_num_threads(old)
    rows = [dict(r) for r in rows]
    json.dumps(rows)  # fail here, naming nothing obscure later, if a row is not JSON
    return rows


def progress_bar():
    """tqdm's notebook widget where ipywidgets exists, else the text bar (tqdm.auto would
    warn "IProgress not found" into every notebook without ipywidgets)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm


def _resolve_executor(executor, workers: int):
    """(executor, owned): "serial" -> None; a dask Client -> its executor; None -> a spawn pool."""
    if executor == "serial":
        return None, False
    if executor is None or executor == "process":
        if workers <= 1:
            return None, False

        return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")), True
    if hasattr(executor, "get_executor") and not isinstance(executor, Executor):  # dask.distributed.Client
        return executor.get_executor(), False
    if isinstance(executor, Executor):
        return executor, False
    raise ValueError(
        f"executor={executor!r} is not supported: use None or 'process' (local process pool), "
        "'serial', a concurrent.futures.Executor, or a dask.distributed Client"
    )


@checked
def sweep(
    fn: Callable[..., list[dict]],
    grid: Iterable[dict],
    seeds: Iterable[int] = (0,),
    *,
    cache_dir: str | os.PathLike | None = None,
    executor: Executor | str | None = None,
    max_workers: int | None = None,
    threads: int = 1,
    progress: bool = True,
    desc: str | None = None,
    cost: Callable[[dict], float] | None = None,
) -> pd.DataFrame:
    """Run `fn(**config, seed=seed)` over `grid` × `seeds` and return a tidy DataFrame.

    grid: configurations (dicts of keyword arguments, JSON-serialisable); seeds: ints.
    cache_dir: folder for the on-disk cache (None: no cache).
    executor: None or "process" -> a local process pool of `max_workers` (default: one
    per CPU, at most one per task), "serial" -> in this process, any
    `concurrent.futures.Executor`, or a dask.distributed `Client`.
    threads: intra-op torch threads per task (default 1: same numbers under every executor).
    cost: a configuration's relative cost (e.g. `lambda c: c["D"]`): tasks start costliest
    first, so that the pool's workers finish together instead of one waiting on the last
    large task (the longest-processing-time rule); None starts them in grid order.
    Rows come back in grid order, then seed order, whatever order tasks finish in. A task
    that raises stops the sweep with its error; the tasks already running are waited for and
    their results cached, so a rerun computes only what is missing.
    `df.attrs["sweep"]` says how many tasks there were, how many were computed and how
    many read from the cache.
    """

    tqdm = progress_bar()

    if not callable(fn):
        raise ValueError(f"fn={fn!r} is not a function: pass the function to call for every configuration and seed")
    try:
        grid = [{k: _plain(v) for k, v in dict(c).items()} for c in grid]
    except (TypeError, ValueError):
        raise ValueError(
            f"grid={grid!r} is not allowed: a list of configurations (dicts of keyword arguments)"
        ) from None
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds={seeds!r} is not allowed: a list of integer seeds, e.g. [0, 1, 2] or range(5)")
    seeds = [check_seed(s) for s in seeds]
    if cache_dir is not None and not str(cache_dir).strip():
        raise ValueError(
            f"cache_dir={cache_dir!r} is not allowed: a folder, or None for no cache (an empty path "
            "would write into the current directory)"
        )
    threads = check_int("threads", threads, 1)
    for c in grid:
        if "seed" in c:
            raise ValueError("a grid configuration may not contain 'seed': pass seeds=... instead")
    version = library_version(fn)
    tasks = [(c, s) for c in grid for s in seeds]
    results: dict[int, list] = {}
    todo = []
    for i, (c, s) in enumerate(tasks):
        key = cache_key(fn, c, s, version)
        path = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
        rows = _read_cache(path, key) if path is not None else None
        if rows is None:
            todo.append((i, key, path))
        else:
            results[i] = rows
    if cost is not None:
        if not callable(cost):
            raise ValueError(f"cost={cost!r} is not a function: pass a function of a configuration, or None")
        todo.sort(key=lambda item: -float(cost(tasks[item[0]][0])))  # stable: ties keep grid order
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc or fn.__name__, disable=not progress)

    writable = [cache_dir is not None]

    def done(i, key, path, rows):
        results[i] = rows
        if path is not None and writable[0]:
            c, s = tasks[i]
            try:
                _write_cache(path, key, rows, {"fn": _fn_name(fn), "config": c, "seed": s, "version": version})
            except OSError as e:
                if e.errno == errno.EISDIR or path.is_dir():  # a folder where this entry goes: skip it
                    warnings.warn(
                        f"sweep cache: {path} is a folder, not a cache entry; this result is not cached",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                else:  # read-only, full, vanished: warn once, keep computing without the cache
                    writable[0] = False
                    warnings.warn(
                        f"sweep cache {cache_dir}: cannot write ({e.strerror or e}); continuing without caching",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        bar.update(1)

    workers = max_workers if max_workers is not None else min(len(todo), os.cpu_count() or 1)
    if max_workers is not None:
        check_int("max_workers", max_workers, 1)
    pool, owned = _resolve_executor(executor, workers) if todo else (None, False)
    try:
        if pool is None:
            for i, key, path in todo:
                done(i, key, path, _call(fn, *tasks[i], threads))
        else:
            futures = {pool.submit(_call, fn, *tasks[i], threads): (i, key, path) for i, key, path in todo}
            try:
                for fut in as_completed(futures):
                    done(*futures[fut], fut.result())
            except BaseException as e:
                # One task failed: start no further task, but keep what the tasks already
                # running finish with, so that a rerun reads them (an interrupt stops at once).
                for fut in futures:
                    fut.cancel()
                for fut in futures if isinstance(e, Exception) else ():
                    if not fut.cancelled() and futures[fut][0] not in results:
                        try:
                            rows = fut.result()
                        except BaseException:  # noqa: BLE001 - the first failure is the one raised
                            continue
                        done(*futures[fut], rows)
                raise
    finally:
        bar.close()
        if owned:
            pool.shutdown(cancel_futures=True)
    frames = [{**tasks[i][0], "seed": tasks[i][1], **row} for i in range(len(tasks)) for row in results[i]]
    df = pd.DataFrame(frames)
    df.attrs["sweep"] = {"tasks": len(tasks), "computed": len(todo), "cached": len(tasks) - len(todo)}
    return df
