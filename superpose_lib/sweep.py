"""Sweeps: a grid of configurations × seeds -> one tidy table, cached on disk.

`sweep(fn, grid, seeds)` calls `fn(**config, seed=seed)` for every pair. `fn` returns a
list of rows (dicts); the table gets one row per returned row, with the configuration
and the seed as columns. Results are cached as one JSON file per (fn, configuration,
seed, library version), written atomically; an unreadable or mismatched entry is
recomputed, never used. Work runs through any `concurrent.futures.Executor`: a local
process pool by default, `executor="serial"` in-process, or a dask.distributed client's
`client.get_executor()` for sweeps that outgrow one machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

__all__ = ["sweep", "library_version", "cache_key", "rotation_rows"]


def library_version() -> str:
    """__version__ plus a hash of the library's source: any code change invalidates caches."""
    from . import __version__

    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def cache_key(fn: Callable, config: dict, seed: int, version: str) -> str:
    ident = {"fn": f"{fn.__module__}.{fn.__qualname__}", "config": config, "seed": seed, "version": version}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def _read_cache(path: Path, key: str):
    try:
        payload = json.loads(path.read_text())
        if payload.get("key") == key and isinstance(payload.get("rows"), list):
            return payload["rows"]
    except (OSError, ValueError):
        pass
    return None  # missing, partial, corrupt or stale: recompute


def _write_cache(path: Path, key: str, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"key": key, "rows": rows}, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _worker_init() -> None:
    # Several workers share the cores: one thread each (50× slower otherwise on 2 cores).
    import torch

    torch.set_num_threads(1)


def _call(fn, config, seed):
    return fn(**config, seed=seed)


def sweep(
    fn: Callable[..., list[dict]],
    grid: Iterable[dict],
    seeds: Iterable[int] = (0,),
    *,
    cache_dir: str | os.PathLike | None = None,
    executor: Executor | str | None = None,
    max_workers: int | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> pd.DataFrame:
    """Run `fn` over `grid` × `seeds` and return a tidy DataFrame.

    executor: None -> a local process pool (one thread per worker), "serial" -> in this
    process, or any concurrent.futures.Executor (e.g. dask's `client.get_executor()`).
    """
    from tqdm.auto import tqdm

    grid, seeds = [dict(c) for c in grid], [int(s) for s in seeds]
    version = library_version()
    tasks = [(c, s) for c in grid for s in seeds]
    results: dict[int, list] = {}
    todo = []
    for i, (c, s) in enumerate(tasks):
        key = cache_key(fn, c, s, version)
        path = Path(cache_dir) / f"{key}.json" if cache_dir else None
        rows = _read_cache(path, key) if path else None
        if rows is None:
            todo.append((i, key, path))
        else:
            results[i] = rows
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc or fn.__name__, disable=not progress)

    def done(i, key, path, rows):
        results[i] = rows
        if path:
            _write_cache(path, key, rows)
        bar.update(1)

    workers = max_workers or min(len(todo), os.cpu_count() or 1)
    if executor == "serial" or (executor is None and workers <= 1):
        for i, key, path in todo:
            done(i, key, path, _call(fn, *tasks[i]))
    else:
        own = executor is None
        if own:
            import multiprocessing as mp

            executor = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init)
        try:
            futures = {executor.submit(_call, fn, *tasks[i]): (i, key, path) for i, key, path in todo}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                done(*futures[fut], fut.result())
        finally:
            if own:
                executor.shutdown()
    bar.close()
    frames = [{**tasks[i][0], "seed": tasks[i][1], **row} for i in range(len(tasks)) for row in results[i]]
    return pd.DataFrame(frames)


def rotation_rows(D, T, *, S=6, L=4, z=1, batch=500, seed=0, device="cpu") -> list[dict]:
    """RiS Figures 8–11 quantities as tidy rows: layer, quantity, measured, theory."""
    from .experiment import rotation_errors
    from .theory import rotation_theory

    measured = rotation_errors(D, T, S=S, L=L, z=z, batch=batch, seed=seed, device=device)
    theory = rotation_theory(D, T, S=S, L=L, z=z)
    return [
        {"layer": l, "quantity": q, "measured": measured[q][l], "theory": theory[q][l]}
        for q in measured
        for l in range(1, L + 1)
    ]
