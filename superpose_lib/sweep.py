"""Sweeps: a grid of configurations × seeds -> one tidy table, cached on disk.

`sweep(fn, grid, seeds)` calls `fn(**config, seed=seed)` for every pair. `fn` returns a
list of rows (dicts of JSON scalars); the table gets one row per returned row, with the
configuration and the seed as columns in front (tidy: one row per configuration, seed
and whatever `fn` splits by, e.g. layer and quantity).

Cache. One JSON file per (fn, configuration, seed, library version) under `cache_dir`,
named by the SHA-256 of those four. The library version includes a hash of the
library's source, so any code change invalidates old entries. Files are written
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

import errno
import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

__all__ = ["sweep", "library_version", "cache_key", "cache_path", "progress_bar"]


def library_version() -> str:
    """__version__ plus a hash of the library's source: any code change invalidates caches."""
    from . import __version__

    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def _fn_name(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def cache_key(fn: Callable, config: dict, seed: int, version: str) -> str:
    """SHA-256 naming one result: the function, its configuration, the seed, the library version."""
    ident = {"fn": _fn_name(fn), "config": config, "seed": seed, "version": version}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def cache_path(cache_dir: str | os.PathLike, fn: Callable, config: dict, seed: int) -> Path:
    """Where `sweep` caches fn(**config, seed=seed) under `cache_dir` (current library version)."""
    return Path(cache_dir) / f"{cache_key(fn, dict(config), int(seed), library_version())}.json"


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
    import torch

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
        import multiprocessing as mp

        return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")), True
    if hasattr(executor, "get_executor") and not isinstance(executor, Executor):  # dask.distributed.Client
        return executor.get_executor(), False
    if isinstance(executor, Executor):
        return executor, False
    raise ValueError(
        f"executor={executor!r} is not supported: use None or 'process' (local process pool), "
        "'serial', a concurrent.futures.Executor, or a dask.distributed Client"
    )


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
) -> pd.DataFrame:
    """Run `fn(**config, seed=seed)` over `grid` × `seeds` and return a tidy DataFrame.

    grid: configurations (dicts of keyword arguments, JSON-serialisable); seeds: ints.
    cache_dir: folder for the on-disk cache (None: no cache).
    executor: None or "process" -> a local process pool of `max_workers` (default: one
    per CPU, at most one per task), "serial" -> in this process, any
    `concurrent.futures.Executor`, or a dask.distributed `Client`.
    threads: intra-op torch threads per task (default 1: same numbers under every executor).
    Rows come back in grid order, then seed order, whatever order tasks finish in.
    `df.attrs["sweep"]` says how many tasks there were, how many were computed and how
    many read from the cache.
    """
    from concurrent.futures import as_completed

    from .checks import check_int, check_seed

    tqdm = progress_bar()

    grid = [{k: _plain(v) for k, v in dict(c).items()} for c in grid]
    seeds = [check_seed(s) for s in seeds]
    threads = check_int("threads", threads, 1)
    for c in grid:
        if "seed" in c:
            raise ValueError("a grid configuration may not contain 'seed': pass seeds=... instead")
    version = library_version()
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
                    warnings.warn(f"sweep cache: {path} is a folder, not a cache entry; this result is not "
                                  "cached", RuntimeWarning, stacklevel=3)
                else:  # read-only, full, vanished: warn once, keep computing without the cache
                    writable[0] = False
                    warnings.warn(f"sweep cache {cache_dir}: cannot write ({e.strerror or e}); continuing "
                                  "without caching", RuntimeWarning, stacklevel=3)
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
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        bar.close()
        if owned:
            pool.shutdown(cancel_futures=True)
    frames = [{**tasks[i][0], "seed": tasks[i][1], **row} for i in range(len(tasks)) for row in results[i]]
    df = pd.DataFrame(frames)
    df.attrs["sweep"] = {"tasks": len(tasks), "computed": len(todo), "cached": len(tasks) - len(todo)}
    return df


def __getattr__(name):
    # rotation_rows moved to `experiment` (the sweep engine knows no experiment); the old
    # import path keeps working without importing torch with this module.
    if name == "rotation_rows":
        from .experiment import rotation_rows

        return rotation_rows
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
