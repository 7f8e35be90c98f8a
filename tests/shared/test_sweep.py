"""The sweep engine: tidy tables, the on-disk cache (atomic, versioned, corruption
detected), executors (serial, process pool, any Executor, dask) giving the same numbers."""

import importlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import ROOT  # noqa: F401  (puts the checkout on sys.path)

sw = importlib.import_module("superpose_lib.sweep")  # the module (the package exports a function of that name)
from superpose_lib.core.experiment import rotation_rows  # noqa: E402
from superpose_lib.sweep import cache_path, sweep  # noqa: E402

CALLS = []


def counted(a, b=1, *, seed):
    """A cheap fn that records its calls (serial executor only: same process)."""
    CALLS.append((a, b, seed))
    return [{"k": k, "value": a * 100 + b * 10 + seed + k / 4} for k in range(2)]


def bad_row(a, *, seed):
    return [{"value": object()}]


def boom(a, *, seed):
    if a == 2:
        raise RuntimeError("boom at a=2")
    return [{"value": float(a)}]


GRID = [{"a": 1, "b": 2}, {"a": 3}]
SMALL = [dict(D=400, T=40, z=z, batch=20, L=3) for z in (1, 2)]


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def test_tidy_table_in_grid_then_seed_order():
    df = sweep(counted, GRID, seeds=[5, 0], executor="serial", progress=False)
    assert list(df.columns) == ["a", "b", "seed", "k", "value"]
    assert len(df) == 2 * 2 * 2
    assert df["seed"].tolist() == [5, 5, 0, 0, 5, 5, 0, 0]
    assert df["a"].tolist() == [1] * 4 + [3] * 4
    assert df["value"].iloc[0] == 1 * 100 + 2 * 10 + 5
    assert df["b"].isna().sum() == 4  # a missing key is a missing value, not an error


def test_cost_starts_the_costliest_tasks_first_and_keeps_the_table_in_grid_order():
    grid = [{"a": 1}, {"a": 5}, {"a": 3}, {"a": 5, "b": 7}]
    plain = sweep(counted, grid, seeds=[0, 1], executor="serial", progress=False)
    assert [c[:2] for c in CALLS[::2]] == [(1, 1), (5, 1), (3, 1), (5, 7)]
    CALLS.clear()
    ordered = sweep(counted, grid, seeds=[0, 1], executor="serial", progress=False, cost=lambda c: c["a"])
    # costliest first, ties in grid order (then seed order)
    assert CALLS == [(5, 1, 0), (5, 1, 1), (5, 7, 0), (5, 7, 1), (3, 1, 0), (3, 1, 1), (1, 1, 0), (1, 1, 1)]
    pd.testing.assert_frame_equal(plain, ordered, check_exact=True)
    with pytest.raises(ValueError, match="cost"):
        sweep(counted, grid, executor="serial", progress=False, cost=3)


def test_rotation_rows_theory_beside_measured():
    rows = rotation_rows(400, 40, z=2, batch=20, L=3, seed=1)
    df = pd.DataFrame(rows)
    assert set(df["quantity"]) == {"active_x", "inactive_x", "active_on", "inactive_on"}
    assert sorted(df["layer"].unique()) == [1, 2, 3]
    assert {"measured", "theory"} <= set(df.columns)


def test_cache_hit_is_instant_and_exact(tmp_path):
    a = sweep(counted, GRID, seeds=[0, 1], cache_dir=tmp_path, executor="serial", progress=False)
    assert len(CALLS) == 4
    assert len(list(tmp_path.glob("*.json"))) == 4
    b = sweep(counted, GRID, seeds=[0, 1], cache_dir=tmp_path, executor="serial", progress=False)
    assert len(CALLS) == 4, "a rerun with the same inputs must not recompute"
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["sweep"] == {"tasks": 4, "computed": 4, "cached": 0}
    entry = json.loads(cache_path(tmp_path, counted, GRID[0], 1).read_text())
    assert entry["config"] == GRID[0] and entry["seed"] == 1 and entry["fn"].endswith("counted")
    assert b.attrs["sweep"] == {"tasks": 4, "computed": 0, "cached": 4}
    # A new seed computes only the missing entries.
    sweep(counted, GRID, seeds=[0, 1, 2], cache_dir=tmp_path, executor="serial", progress=False)
    assert len(CALLS) == 6


def test_cache_key_depends_on_config_seed_fn_and_version(tmp_path, monkeypatch):
    p = cache_path(tmp_path, counted, {"a": 1}, 0)
    assert p != cache_path(tmp_path, counted, {"a": 2}, 0)
    assert p != cache_path(tmp_path, counted, {"a": 1}, 1)
    assert p != cache_path(tmp_path, boom, {"a": 1}, 0)
    assert p == cache_path(tmp_path, counted, {"a": 1}, 0)
    sweep(counted, [{"a": 1}], cache_dir=tmp_path, executor="serial", progress=False)
    assert len(CALLS) == 1
    monkeypatch.setattr(sw, "library_version", lambda fn=None: "9.9.9+other")
    sweep(counted, [{"a": 1}], cache_dir=tmp_path, executor="serial", progress=False)
    assert len(CALLS) == 2, "a new library version must not reuse old results"


def test_library_version_hashes_the_source():
    v = sw.library_version()
    assert v.startswith("0.") and "+" in v and v == sw.library_version()


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t[: len(t) // 2],  # truncated (a killed writer without atomic writes)
        lambda t: "",  # empty
        lambda t: t.replace('"value": 1', '"value": 7', 1),  # garbled digit: valid JSON, wrong data
        lambda t: t.replace('"key": "', '"key": "0', 1),  # someone else's key
        lambda t: json.dumps({"rows": []}),  # missing fields
        lambda t: "\x00\xff garbage",
    ],
    ids=["truncated", "empty", "garbled-digit", "wrong-key", "missing-fields", "binary"],
)
def test_corrupt_cache_entry_is_recomputed(tmp_path, damage):
    good = sweep(counted, [{"a": 1}], cache_dir=tmp_path, executor="serial", progress=False)
    (path,) = tmp_path.glob("*.json")
    text = path.read_text()
    assert '"value": 1' in text
    path.write_bytes(damage(text).encode("utf-8", "surrogateescape"))
    again = sweep(counted, [{"a": 1}], cache_dir=tmp_path, executor="serial", progress=False)
    assert len(CALLS) == 2, "a damaged entry must be recomputed, never used"
    pd.testing.assert_frame_equal(good, again)
    assert path.read_text() == text, "the recomputed entry replaces the damaged one"


def test_writes_are_atomic_and_leave_no_temporaries(tmp_path):
    with pytest.raises(TypeError):
        sweep(bad_row, [{"a": 1}], cache_dir=tmp_path, executor="serial", progress=False)
    assert list(tmp_path.iterdir()) == []
    sw._write_cache(tmp_path / "x.json", "k", [{"v": 1.5}])
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert sw._read_cache(tmp_path / "x.json", "k") == [{"v": 1.5}]

    def fail(*a, **k):
        raise OSError("disk full")

    import os

    orig = os.replace
    try:
        os.replace = fail
        with pytest.raises(OSError):
            sw._write_cache(tmp_path / "x.json", "k", [{"v": 2.5}])
    finally:
        os.replace = orig
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"], "a failed write leaves no temporary"
    assert sw._read_cache(tmp_path / "x.json", "k") == [{"v": 1.5}], "and the old entry intact"


def test_failure_is_raised_and_finished_results_stay_cached(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        sweep(boom, [{"a": 1}, {"a": 2}], cache_dir=tmp_path, executor="serial", progress=False)
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_bad_arguments_raise_valueerror():
    with pytest.raises(ValueError, match="executor"):
        sweep(counted, GRID, executor="bogus", progress=False)
    with pytest.raises(ValueError, match="seed"):
        sweep(counted, GRID, seeds=[-1], progress=False)
    with pytest.raises(ValueError, match="seed"):
        sweep(counted, [{"a": 1, "seed": 3}], progress=False)
    with pytest.raises(ValueError, match="threads"):
        sweep(counted, GRID, threads=0, executor="serial", progress=False)
    with pytest.raises(ValueError, match="max_workers"):
        sweep(counted, GRID, max_workers=0, progress=False)


def test_threads_are_pinned_per_task_and_restored():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sweep(counted, GRID, executor="serial", progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)


def test_same_seed_same_numbers_under_every_executor(tmp_path):
    """Serial (main process, 2 torch threads outside the tasks), a spawn process pool, a
    thread pool and a local dask cluster give bit-identical tables."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        serial = sweep(rotation_rows, SMALL, seeds=[0, 1], executor="serial", progress=False)
    finally:
        torch.set_num_threads(old)
    pool = sweep(rotation_rows, SMALL, seeds=[0, 1], max_workers=2, progress=False)
    with ThreadPoolExecutor(2) as ex:
        threads = sweep(rotation_rows, SMALL, seeds=[0, 1], executor=ex, progress=False)
    for other in (pool, threads):
        pd.testing.assert_frame_equal(serial, other, check_exact=True)
    assert serial["measured"].notna().all()
    # A different seed gives different numbers (the seed reaches the network).
    a = serial[(serial.seed == 0) & (serial.quantity == "inactive_x")]["measured"].to_numpy()
    b = serial[(serial.seed == 1) & (serial.quantity == "inactive_x")]["measured"].to_numpy()
    assert (a != b).any()


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    serial = sweep(rotation_rows, SMALL[:1], seeds=[0, 1], executor="serial", progress=False)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            via_client = sweep(
                rotation_rows, SMALL[:1], seeds=[0, 1], executor=client, cache_dir=tmp_path, progress=False
            )
            via_exec = sweep(rotation_rows, SMALL[:1], seeds=[0, 1], executor=client.get_executor(), progress=False)
    finally:
        cluster.close()
    pd.testing.assert_frame_equal(serial, via_client, check_exact=True)
    pd.testing.assert_frame_equal(serial, via_exec, check_exact=True)
    assert len(list(Path(tmp_path).glob("*.json"))) == 2


def test_the_sweep_engine_knows_no_experiment():
    assert not hasattr(sw, "rotation_rows") and "rotation_rows" not in sw.__all__


def _read_only(monkeypatch, tmp_path):
    """The cache folder behaves as on a read-only mount (root ignores permission bits)."""
    import errno
    import os
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):
        if dir is not None and Path(dir).resolve().is_relative_to(tmp_path.resolve()):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    if os.geteuid() != 0:
        tmp_path.chmod(0o555)


def test_read_only_cache_warns_once_and_keeps_computing(tmp_path, monkeypatch):
    """It used to raise after the first task, throwing the computed work away."""
    cache = tmp_path / "cache"
    first = sweep(counted, [{"a": 1}], cache_dir=cache, executor="serial", progress=False)  # one entry cached
    _read_only(monkeypatch, cache)
    CALLS.clear()
    with pytest.warns(RuntimeWarning, match="cannot write.*continuing without caching") as rec:
        df = sweep(
            counted, [{"a": 1}, {"a": 2}, {"a": 3}], seeds=[0, 1], cache_dir=cache, executor="serial", progress=False
        )
    assert len([w for w in rec if "cannot write" in str(w.message)]) == 1, "warned once"
    assert len(df) == 3 * 2 * 2 and df.attrs["sweep"]["cached"] == 1
    assert len(CALLS) == 5, "every uncached task computed, the cached one read"
    pd.testing.assert_frame_equal(df.iloc[:2].reset_index(drop=True), first)


def test_uncreatable_cache_folder_warns_and_computes():
    with pytest.warns(RuntimeWarning, match="continuing without caching"):
        df = sweep(counted, [{"a": 1}], cache_dir="/proc/superpose-cache", executor="serial", progress=False)
    assert len(df) == 2


def test_a_folder_where_an_entry_should_be_is_recomputed_not_an_abort(tmp_path):
    path = cache_path(tmp_path, counted, {"a": 1}, 0)
    path.mkdir(parents=True)
    with pytest.warns(RuntimeWarning, match="is a folder"):
        df = sweep(counted, [{"a": 1}, {"a": 2}], cache_dir=tmp_path, executor="serial", progress=False)
    assert len(df) == 4 and len(CALLS) == 2
    assert path.is_dir() and cache_path(tmp_path, counted, {"a": 2}, 0).is_file(), "the other entry is cached"


def test_numpy_grid_values_share_the_cache_with_python_ints(tmp_path):
    import numpy as np

    a = sweep(
        counted,
        [{"a": np.int64(1), "b": np.int32(2)}],
        seeds=np.arange(1),
        cache_dir=tmp_path,
        executor="serial",
        progress=False,
    )
    b = sweep(counted, [{"a": 1, "b": 2}], seeds=[0], cache_dir=tmp_path, executor="serial", progress=False)
    assert b.attrs["sweep"]["cached"] == 1 and len(CALLS) == 1
    pd.testing.assert_frame_equal(a, b)
    assert type(a["a"].iloc[0]) is not np.float64


def slow_or_boom(a, *, seed):
    if a == 2:
        raise RuntimeError("boom at a=2")
    import time

    time.sleep(0.5)  # still running when its neighbour fails
    return [{"value": float(a)}]


def test_a_failing_task_keeps_the_result_its_running_neighbour_finishes(tmp_path):
    with ThreadPoolExecutor(2) as pool, pytest.raises(RuntimeError, match="boom at a=2"):
        sweep(slow_or_boom, [{"a": 1}, {"a": 2}], cache_dir=tmp_path, executor=pool, progress=False)
    assert len(list(tmp_path.glob("*.json"))) == 1
    df = sweep(slow_or_boom, [{"a": 1}], cache_dir=tmp_path, executor="serial", progress=False)
    assert df.attrs["sweep"]["cached"] == 1


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        (dict(seeds=None), "seeds=None"),
        (dict(seeds=5), "seeds=5"),
        (dict(seeds="01"), "seeds='01'"),
        (dict(cache_dir=""), "cache_dir=''"),
        (dict(cache_dir="  "), "cache_dir="),
        (dict(grid=5), "grid=5"),
        (dict(fn=None), "fn=None"),
    ],
)
def test_arguments_of_the_wrong_kind_are_one_line(kw, needle):
    args = {"fn": counted, "grid": GRID, "seeds": (0,), **kw}
    with pytest.raises(ValueError) as e:
        sweep(args.pop("fn"), args.pop("grid"), args.pop("seeds"), executor="serial", progress=False, **args)
    assert str(e.value).startswith(needle) and "\n" not in str(e.value)
    assert not CALLS
