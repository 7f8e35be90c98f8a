"""Benchmark of the structured RiS network (issue 3): sweeps in seconds, networks far past D = 2000.

    OMP_NUM_THREADS=2 python bench/bench.py            # table
    OMP_NUM_THREADS=2 python bench/bench.py --json     # table, then ONE JSON object as the last line
    python bench/bench.py --quick                      # reduced run (a few seconds)
    python bench/bench.py --device cuda --gpu-size     # on a GPU machine, adds D = 131072

What it measures, in one run, on the device given:

1. ``fig8_11_s``: the whole RiS Figures 8–11 workload: the 41 (D, T) pairs of RiS Figures 8–11
   × z ∈ {1, 2, 3, 4}, batch 500, L = 4, S = 6, a fresh network each (seed 0), all four
   per-layer MSEs: 164 ``rotation_errors`` calls, construction included.
2. ``large_s`` / ``large_peak_gib``: D = 32768, d = 4, S = 6, T = int(0.004·(D/d)²) = 268435,
   L = 4, z = 4, batch 500: assignment, construction, forward and every circuit's readout,
   in a fresh subprocess; wall time and that process's peak resident memory
   (its ``getrusage(RUSAGE_SELF).ru_maxrss``; on CUDA also ``torch.cuda.max_memory_allocated``).
3. ``regime_s`` / ``regime_peak_gib``: the largest network the regime chapter's CPU sweeps
   use, D = 131072, T(d/D)² = 0.0005 (T = 536871), L = 4, z = 4, batch 200 (the chapter's
   batch at every D), one ``rotation_errors``-equivalent run (``regime.large_rows`` measures
   the same four means and the spurious-on fraction), in a fresh subprocess as in 2.
   (``--quick``: D = 32768.) Its size, not T(d/D)² = 0.004's T = 4.3M, is what a 15-minute
   CPU budget can afford per network.
4. ``probe_s``: one capacity probe of the chapter "Does it work asymptotically?": the
   switch-off construction at D = 131072 (``--quick``: 16384) at the theory's boundary load,
   L = 10, z = 2, batch 128, the network and its own oracle (criterion (b)), with its floor
   (`bench_probe`); target PROBE_TARGET_S.
5. ``dense_over_structured``: dense / structured forward time (activations of all L layers) at
   D = 2000, T = 2000, z = 4, batch 500, float32, with the dense weights built beforehand and
   not timed (the ratio favours dense; ``dense_with_build_over_structured`` includes building
   them), and the max |activation difference| over all layers (float32; float64 as a check).
   T = 2000 is the densest RiS configuration: the ratio grows like D²/(T·S) elsewhere.

The floor. Per layer and batch row the structured algorithm must
  gather   G_t = Σ_{n∈e_t} A[n]       read T·S·d numbers, T·(S−1)·d additions,
  multiply V_t G_t (T blocks d × d)   T·d² multiply-adds (T·d numbers in and out),
  scatter  P[n] = Σ_{t∋n} (V G)_t     read T·S·d numbers, T·S·d additions,
plus O(M·d) for the mean-weight terms and O(|X|) for the few multiply-connected pairs.
A forward pass of L layers with every readout is L gathers and L − 1 scatters (the readout of
layer l is the gather layer l + 1 needs): bytes ≥ B·(2L − 1)·T·S·d·itemsize, and
FLOPs ≈ B·(L − 1)·T·(2d² + 2S·d) + B·L·T·S·d. The benchmark prints, per section, those
bytes divided by the measured time (achieved GB/s), next to this machine's memory-copy
bandwidth (measured here: read + write of a 256 MiB tensor). floor_s = bytes / copy bandwidth
is the time a perfect implementation bound by DRAM would need. At the RiS sizes the gathered
activations (M·d·B·4 bytes ≤ 4 MB) sit in cache, so achieved GB/s can exceed DRAM bandwidth.

Threads: ``--threads N`` (default: torch's, i.e. OMP_NUM_THREADS). On a machine shared with
other processes set ``OMP_WAIT_POLICY=PASSIVE``: with 2 threads on this 2-core machine under
load, a third of the Figures 8–11 workload took 46 s with spinning OpenMP threads (ACTIVE),
6.4 s with PASSIVE and 6.1 s with 1 thread.

Timings depend on the machine and its load: the table states the device, torch version,
threads used and the load average; CPU (process) times are printed beside wall times, as they
suffer less from other processes sharing the cores. Large tensors come from the OS page by page; with ``THP_MEM_ALLOC_ENABLE=1`` (a
PyTorch setting, applied to the large subprocess unless ``--no-thp``) they use huge pages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from superpose_lib.core.checks import CIRCUIT_WIDTH  # noqa: E402  (after the sys.path line above)
from superpose_lib.core.theory import T_at, ris_pairs  # noqa: E402

FIG8_11_PAIRS = ris_pairs()  # the 41 (D, T) pairs of RiS Figures 8–11
assert len(FIG8_11_PAIRS) == 41
ZS = (1, 2, 3, 4)
BATCH, L, S, d = 500, 4, 6, CIRCUIT_WIDTH


def large_T(D: int, d: int = CIRCUIT_WIDTH, density: float = 0.004) -> int:
    """T at T(d/D)² = density (RiS's regime boundary; `theory.T_at`)."""
    return T_at(density, D, d)


def floor_bytes(T: int, *, batch=BATCH, L=L, S=S, d=d, itemsize=4) -> int:
    """Bytes the gathers and scatters must read: B·(2L − 1)·T·S·d numbers."""
    return batch * (2 * L - 1) * T * S * d * itemsize


def floor_flops(T: int, *, batch=BATCH, L=L, S=S, d=d) -> int:
    return batch * ((L - 1) * T * (2 * d * d + 2 * S * d) + L * T * S * d)


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def copy_bandwidth(device="cpu", nbytes=2**28) -> float:
    """Memory-copy bandwidth in bytes/s (read + write counted), best of 5."""
    import torch

    x = torch.ones(nbytes // 4, device=device)
    y = torch.empty_like(x)
    best = float("inf")
    for _ in range(6):
        _sync(device)
        t = time.perf_counter()
        y.copy_(x)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * nbytes / best


# ---- 1. RiS Figures 8–11 -----------------------------------------------------------------
def bench_fig8_11(device, pairs, zs=ZS, seed=0):
    import torch

    from superpose_lib import rotation_errors

    rotation_errors(800, 200, z=1, batch=BATCH, device=device)  # warm-up (first-call overheads)
    per_D: dict[int, float] = {}
    nbytes = 0
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for D, T in pairs:
        t = time.perf_counter()
        for z in zs:
            mse = rotation_errors(D, T, S=S, L=L, z=z, batch=BATCH, seed=seed, device=device)
            assert len(mse["active_x"]) == L + 1 and all(map(torch.isfinite, map(torch.tensor, mse["active_x"])))
            nbytes += floor_bytes(T)
        _sync(device)
        per_D[D] = per_D.get(D, 0.0) + time.perf_counter() - t
    total = time.perf_counter() - t0
    return {
        "fig8_11_s": total,
        "fig8_11_cpu_s": time.process_time() - c0,
        "fig8_11_calls": len(pairs) * len(zs),
        "fig8_11_bytes": nbytes,
        "per_D": per_D,
    }


# ---- 2. the large network (run in a fresh subprocess for its peak memory) -----------------
REGIME_D, REGIME_X, REGIME_Z, REGIME_BATCH = 131072, 0.0005, 4, 200


def _large_child(D, T, z, device, chunk_budget, batch=BATCH):
    """Runs in the subprocess: assignment, construction, forward + readouts; prints JSON."""
    import torch

    from superpose_lib.core import experiment
    from superpose_lib.core.assignment import layer_assignments
    from superpose_lib.core.circuits import BIAS, MEAN_WEIGHT, rotation_weights, sample_thetas
    from superpose_lib.core.config import CiSConfig
    from superpose_lib.core.network import SuperposedNetwork

    cfg = CiSConfig(D=D, T=T, d=d, S=S, L=L, z=z)
    g = torch.Generator().manual_seed(0)
    times = {}
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    # the same draws, in the same order, as experiment.build_network / rotation_errors
    theta = sample_thetas(cfg.T, g)
    w = rotation_weights(theta).to(torch.float32)
    idx = layer_assignments(cfg.T, cfg.M, cfg.S, cfg.L, g, device=device)
    _sync(device)
    times["assign_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    net = SuperposedNetwork(w.to(device), idx, cfg.M, MEAN_WEIGHT, BIAS)
    _sync(device)
    times["construct_s"] = time.perf_counter() - t
    t = time.perf_counter()
    active = experiment.sample_active(cfg.T, cfg.z, batch, g)
    x0 = experiment.sample_unit_vectors((batch, cfg.z), g)
    chunk = None
    if chunk_budget:
        chunk = experiment.batch_chunk(cfg.T, d, batch, budget_bytes=chunk_budget)
    mse = experiment.rotation_run(net, active, x0, chunk=chunk).mse()
    _sync(device)
    times["forward_s"] = time.perf_counter() - t
    times["total_s"] = time.perf_counter() - t0
    times["cpu_s"] = time.process_time() - c0
    out = {
        **times,
        "mse_layer_L": {k: v[L] for k, v in mse.items()},
        "chunk": chunk or experiment.batch_chunk(cfg.T, d, batch, device=device),
    }
    if str(device).startswith("cuda"):
        out["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # KiB on Linux
    print("LARGE " + json.dumps(out), flush=True)


def bench_large(D, device, *, z=4, thp=True, chunk_budget=None, density=0.004, batch=BATCH):
    """Run `_large_child` in a fresh process; its wall time and peak RSS."""
    T = large_T(D, density=density)
    env = dict(os.environ)
    if thp:
        env["THP_MEM_ALLOC_ENABLE"] = "1"
    cmd = [
        sys.executable,
        __file__,
        "--_large",
        str(D),
        str(T),
        str(z),
        str(device),
        str(chunk_budget or 0),
        str(batch),
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"large run D={D} failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("LARGE "))
    res = json.loads(line[len("LARGE ") :])
    # the child's own peak RSS (ru_maxrss of RUSAGE_SELF at its end, the whole process:
    # interpreter, torch, assignment, construction, forward)
    return {"D": D, "T": T, "z": z, "batch": batch, "process_wall_s": wall, "peak_gib": res["peak_rss_gib"], **res}


# ---- 3. dense reference vs structured ------------------------------------------------------
def bench_dense(device, D=2000, T=2000, z=4, reps=5):
    import torch

    from superpose_lib import CiSConfig, build_network, encode_input, flat, sample_active, sample_unit_vectors

    res = {}
    for dtype in (torch.float32, torch.float64):
        cfg = CiSConfig(D=D, T=T, S=S, L=L, z=z)
        g = torch.Generator().manual_seed(0)
        net, _ = build_network(cfg, g, device=device, dtype=dtype)
        active = sample_active(T, z, BATCH, g).to(device)
        x0 = sample_unit_vectors((BATCH, z), g)
        A0 = net.embed(active, encode_input(torch.ones(BATCH, z, dtype=torch.float64), x0).to(device, dtype))
        _sync(device)
        t = time.perf_counter()
        Ws = [net.dense_weight(l) for l in range(2, L + 1)]
        _sync(device)
        build = time.perf_counter() - t
        bias = net.bias.repeat_interleave(net.M)

        def dense():
            out = [flat(A0)]
            out.append(torch.relu(out[0] + bias))
            for W in Ws:
                out.append(torch.relu(out[-1] @ W.T + bias))
            return out

        best = {"dense": float("inf"), "structured": float("inf")}
        outs = {}
        for _ in range(reps):  # interleaved, best of `reps`: robust to other processes' load
            for name, f in (("dense", dense), ("structured", lambda: net.forward(A0))):
                _sync(device)
                t = time.perf_counter()
                outs[name] = f()
                _sync(device)
                best[name] = min(best[name], time.perf_counter() - t)
        t_dense, t_struct, out_d, out_s = best["dense"], best["structured"], outs["dense"], outs["structured"]
        diff = max(float((flat(a) - b).abs().max()) for a, b in zip(out_s, out_d))
        scale = max(float(b.abs().max()) for b in out_d)
        name = "f32" if dtype == torch.float32 else "f64"
        res[name] = {
            "dense_s": t_dense,
            "dense_build_s": build,
            "structured_s": t_struct,
            "max_abs_diff": diff,
            "max_abs_activation": scale,
        }
    return res


# ---- driver ---------------------------------------------------------------------------------
#: Chapter "Does it work asymptotically?": one capacity probe of the scaling construction at
#: D = 131072, at the theory's boundary load, L = 10, batch 128, the network and its own
#: oracle (criterion (b)'s verdict), must take at most PROBE_TARGET_S on the 2-core CPU.
PROBE_TARGET_S = 60.0


def bench_probe(D, device, *, z=2, L_probe=10, batch=128, seed=0):
    """One capacity probe of the switch-off construction (section 4 of the module docstring):
    `scheme_run(..., with_oracle=True)` at the theory's predicted boundary on criterion (b),
    wall and CPU seconds, the network's build alone, and the floor: every layer writes the
    payload's pre-activation and reads and writes its activation (3 blocks × M × batch
    float32), and reads the gate counts (M × batch), once for the network and once for its
    oracle, plus the touched circuits' gathers and scatters (S positions × 3 numbers each,
    counted from the statistics' open positions: z·S + false gates per sample)."""
    import torch

    from superpose_lib.core.theory import T_at
    from superpose_lib.correction import SwitchOffNetwork, scaling_boundary, scaling_design, scheme_run

    x = scaling_boundary(D, z=z, L=L_probe)
    s = scaling_design(D, z=z, L=L_probe, x=x)
    T = T_at(x, D)
    t0 = time.perf_counter()
    SwitchOffNetwork(s, T, L_probe, torch.Generator().manual_seed(seed), device=device)
    build_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    r = scheme_run(s, T, z=z, L=L_probe, batch=batch, seed=seed, device=device, layers=(L_probe,), with_oracle=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    open_per_sample = z * s.S + r["spurious_on"][L_probe] * s.M
    touched = batch * open_per_sample * T * s.S / s.M  # circuits through the open positions, per layer
    dense = 2 * L_probe * batch * (3 * 3 * s.M + s.M) * 4
    sparse = L_probe * touched * s.S * 3 * 2 * 4
    return {
        "D": D,
        "T": T,
        "x": x,
        "S_r": s.S_r,
        "register": s.M_r / D,
        "probe_s": wall,
        "probe_cpu_s": cpu,
        "build_s": build_s,
        "probe_bytes": int(dense + sparse),
        "q90": r["q90_dx"][L_probe],
        "q90_oracle": r["oracle"]["q90_dx"][L_probe],
    }


def bench_capacity(D, device, *, z=2, L_cap=10, batch=128, seed=0):
    """One capacity of the scaling (switch-off) construction on criterion (b)
    (`correction.scheme_capacity`, the book's capacity search from the theory's predicted
    boundary): probes and seconds, and the bytes-moved floor of its largest probe: every
    layer reads and writes the payload buffer (3 blocks × M × batch) and the gate counts
    once, for the network and its oracle."""
    from superpose_lib.core.theory import control_parameter
    from superpose_lib.correction import scale, scaling_design, scheme_capacity

    scale._RUNS.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    r = scheme_capacity("scaling", D, z, L_cap, seed, criterion="indicators hold", batch=batch)[0]
    T = max(r["T_max"], 1)  # the largest passing probe's T (the boundary's)
    s = scaling_design(D, z=z, L=L_cap, x=control_parameter(D, T))
    nbytes = 2 * L_cap * batch * (2 * 3 * s.M + s.M) * 4
    return {
        "D": D,
        "probes": r["probes"],
        "capacity_s": time.perf_counter() - t0,
        "capacity_cpu_s": time.process_time() - c0,
        "x_max": r["x_max"],
        "T": T,
        "S_alpha": s.S_r,
        "probe_bytes": nbytes,
    }


#: Trained-versus-constructed chapter: one network at D = 1024 must train its TRAIN_STEPS
#: (the chapter's budget from a random init) within TRAIN_TARGET_S on the 2-core CPU.
TRAIN_STEPS = 1500
TRAIN_TARGET_S = 120.0


def bench_train(device, *, D=1024, T=588, z=2, L=3, steps=100, batch=256, seed=0):
    """Adam steps per second of `train_superposed` (hinge loss, random init, bfloat16
    products), at the most circuits the interface holds at D = 1024 (the slowest probe)."""
    from superpose_lib.trained import train_superposed

    t0 = time.perf_counter()
    _, hist = train_superposed(D, T, z=z, L=L, init="random", steps=steps, batch=batch, seed=seed, device=device)
    total = time.perf_counter() - t0
    rate = steps / hist["seconds"][-1]
    return {"D": D, "T": T, "steps": steps, "train_s": total, "steps_per_s": rate, "projected_s": TRAIN_STEPS / rate}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quick", action="store_true", help="reduced run: every 5th pair at z=4, large D=16384")
    p.add_argument("--gpu-size", action="store_true", help="also run D=131072 at T(d/D)²=0.004 (GPU machines)")
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--no-thp", action="store_true", help="large run without THP_MEM_ALLOC_ENABLE=1")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, from OMP_NUM_THREADS)")
    p.add_argument("--chunk-budget", type=float, default=None, help="bytes per [T, d, b] work tensor (large run)")
    p.add_argument("--skip-regime", action="store_true", help="skip the regime chapter's largest CPU network")
    p.add_argument("--skip-probe", action="store_true", help="skip the error-correction chapter's capacity probe")
    p.add_argument("--skip-capacity", action="store_true", help="skip the scaling construction's capacity search")
    p.add_argument("--skip-train", action="store_true", help="skip the trained chapter's training speed")
    p.add_argument(
        "--capacity-large", action="store_true", help="also search the capacity at D=65536 (minutes on a CPU)"
    )
    p.add_argument("--_large", nargs=6, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._large:
        D, T, z, device, budget, batch = a._large
        return _large_child(int(D), int(T), int(z), device, float(budget), int(batch))

    if a.threads:  # before torch starts its thread pool; the large subprocess inherits it
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available on this machine")
    dev = a.device
    if a.gpu_size and dev == "cpu":
        print("warning: --gpu-size on the CPU: D=131072 has T=4.3M circuits; expect tens of minutes", file=sys.stderr)
    info = {
        "device": torch.cuda.get_device_name()
        if dev == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "quick": a.quick,
        "load_avg_1min_start": os.getloadavg()[0],
    }
    bw = copy_bandwidth(dev)
    info["copy_bandwidth_GBps"] = bw / 1e9
    rows = []  # (section, time, floor bytes, note)

    pairs = FIG8_11_PAIRS[::5] if a.quick else FIG8_11_PAIRS
    zs = (4,) if a.quick else ZS
    fig = bench_fig8_11(dev, pairs, zs)
    rows.append(
        (
            "fig8_11",
            fig["fig8_11_s"],
            fig["fig8_11_bytes"],
            f"{fig['fig8_11_calls']} rotation_errors calls; CPU time {fig['fig8_11_cpu_s']:.2f} s",
        )
    )

    large = None
    sizes = [] if a.skip_large else [16384 if a.quick else 32768] + ([131072] if a.gpu_size else [])
    larges = []
    for D in sizes:
        r = bench_large(D, dev, thp=not a.no_thp, chunk_budget=a.chunk_budget)
        larges.append(r)
        rows.append(
            (
                f"large D={D}",
                r["total_s"],
                floor_bytes(r["T"]),
                f"T={r['T']}: assign {r['assign_s']:.2f} s, construct {r['construct_s']:.2f} s, "
                f"forward+readouts {r['forward_s']:.2f} s, peak RSS {r['peak_gib']:.2f} GiB, CPU time {r['cpu_s']:.2f} s",
            )
        )
    large = larges[0] if larges else None

    regime = None
    if not a.skip_regime:
        rD = 32768 if a.quick else REGIME_D
        regime = bench_large(
            rD, dev, z=REGIME_Z, thp=not a.no_thp, chunk_budget=a.chunk_budget, density=REGIME_X, batch=REGIME_BATCH
        )
        rows.append(
            (
                f"regime D={rD}",
                regime["total_s"],
                floor_bytes(regime["T"], batch=REGIME_BATCH),
                f"T={regime['T']} (T(d/D)^2={REGIME_X:g}), z={REGIME_Z}, batch {REGIME_BATCH}: forward+readouts "
                f"{regime['forward_s']:.2f} s, peak RSS {regime['peak_gib']:.2f} GiB, CPU time {regime['cpu_s']:.2f} s",
            )
        )

    probe = None
    if not a.skip_probe:
        probe = bench_probe(16384 if a.quick else 131072, dev)
        rows.append(
            (
                f"probe D={probe['D']}",
                probe["probe_s"],
                probe["probe_bytes"],
                f"scaling construction at its boundary x={probe['x']:.4f} (T={probe['T']}, S_r={probe['S_r']}, "
                f"register {probe['register']:.0%}), L=10, batch 128, network + own oracle: build "
                f"{probe['build_s']:.1f} s, CPU time {probe['probe_cpu_s']:.1f} s (target <= {PROBE_TARGET_S:.0f} s)",
            )
        )

    caps = []
    if not a.skip_capacity:
        for D in [16384] + ([65536] if a.capacity_large else []):
            c = bench_capacity(D, dev)
            caps.append(c)
            rows.append(
                (
                    f"capacity D={D}",
                    c["capacity_s"],
                    c["probe_bytes"] * c["probes"],
                    f"scaling S_r={c['S_alpha']}, criterion (b), z=2, L=10, batch 128: {c['probes']} probes "
                    f"(each with its oracle), {c['capacity_s'] / c['probes']:.1f} s per probe, "
                    f"x*={c['x_max']:.5f} (floor: {c['probes']} probes at T={c['T']}, scheme only)",
                )
            )

    train = None
    if not a.skip_train:
        train = bench_train(dev)
        rows.append(
            (
                f"train D={train['D']}",
                train["train_s"],
                None,
                f"T={train['T']}, L=3, batch 256, Adam, bf16 products: {train['steps_per_s']:.1f} steps/s; "
                f"{TRAIN_STEPS} steps in {train['projected_s']:.0f} s (target <= {TRAIN_TARGET_S:.0f} s)",
            )
        )

    dense = bench_dense(dev)
    f32 = dense["f32"]
    ratio = f32["dense_s"] / f32["structured_s"]
    rows.append(
        (
            "dense D=2000 T=2000",
            f32["dense_s"],
            None,
            f"dense forward (weights prebuilt; building them: {f32['dense_build_s']:.2f} s)",
        )
    )
    rows.append(
        (
            "structured D=2000 T=2000",
            f32["structured_s"],
            floor_bytes(2000) * (2 * L - 2) // (2 * L - 1),
            f"dense/structured = {ratio:.1f}× (forward only), "
            f"{(f32['dense_s'] + f32['dense_build_s']) / f32['structured_s']:.0f}× with building W",
        )
    )

    print(
        f"device: {info['device']} | torch {info['torch']} | threads {info['threads']} | "
        f"OMP_WAIT_POLICY {info['omp_wait_policy']} | copy bandwidth {bw / 1e9:.1f} GB/s | "
        f"load avg at start {info['load_avg_1min_start']:.2f}"
    )
    print(f"{'section':<26}{'time s':>9}{'floor s':>9}{'GB/s':>8}  note")
    for name, t, nbytes, note in rows:
        fl = f"{nbytes / bw:9.2f}" if nbytes else f"{'':>9}"
        gbs = f"{nbytes / t / 1e9:8.1f}" if nbytes else f"{'':>8}"
        print(f"{name:<26}{t:9.2f}{fl}{gbs}  {note}")
    print("fig8_11 time by D: " + ", ".join(f"{D}: {s:.2f} s" for D, s in fig["per_D"].items()))
    print(
        f"dense vs structured max |Δactivation|: float32 {f32['max_abs_diff']:.2e} "
        f"(activations up to {f32['max_abs_activation']:.1f}), float64 {dense['f64']['max_abs_diff']:.2e}"
    )
    if a.device == "cpu" and not a.gpu_size:
        print("(--gpu-size: D=131072 at T(d/D)^2=0.004, for GPU machines)")

    if a.json:
        out = {
            "fig8_11_s": fig["fig8_11_s"],
            "large_s": large["total_s"] if large else None,
            "large_peak_gib": large["peak_gib"] if large else None,
            "dense_over_structured": ratio,
            "dense_max_abs_diff": f32["max_abs_diff"],
            "dense_max_abs_diff_f64": dense["f64"]["max_abs_diff"],
            "dense_build_s": f32["dense_build_s"],
            "dense_with_build_over_structured": (f32["dense_s"] + f32["dense_build_s"]) / f32["structured_s"],
            "fig8_11_floor_s": fig["fig8_11_bytes"] / bw,
            "fig8_11_cpu_s": fig["fig8_11_cpu_s"],
            **info,
        }
        if large:
            out |= {
                "large_D": large["D"],
                "large_T": large["T"],
                "assign_s": large["assign_s"],
                "assign_construct_s": large["assign_s"] + large["construct_s"],
                "large_forward_s": large["forward_s"],
                "large_cpu_s": large["cpu_s"],
                "large_floor_s": floor_bytes(large["T"]) / bw,
                "large_chunk": large["chunk"],
                "large_mse_layer4": large["mse_layer_L"],
                "large_thp": not a.no_thp,
            }
            if "cuda_peak_gib" in large:
                out["large_cuda_peak_gib"] = large["cuda_peak_gib"]
        if regime:
            out |= {
                "regime_D": regime["D"],
                "regime_T": regime["T"],
                "regime_s": regime["total_s"],
                "regime_forward_s": regime["forward_s"],
                "regime_peak_gib": regime["peak_gib"],
                "regime_cpu_s": regime["cpu_s"],
            }
        for r in larges[1:]:
            out[f"D{r['D']}_s"] = r["total_s"]
        for c in caps:
            out |= {
                f"capacity_D{c['D']}_s": c["capacity_s"],
                f"capacity_D{c['D']}_probes": c["probes"],
                f"capacity_D{c['D']}_floor_s": c["probe_bytes"] * c["probes"] / bw,
            }
            out[f"D{r['D']}_peak_gib"] = r["peak_gib"]
            if "cuda_peak_gib" in r:
                out[f"D{r['D']}_cuda_peak_gib"] = r["cuda_peak_gib"]
        if train:
            out |= {"train_steps_per_s": train["steps_per_s"], "train_projected_s": train["projected_s"]}
        if probe:
            out |= {
                "probe_D": probe["D"],
                "probe_T": probe["T"],
                "probe_s": probe["probe_s"],
                "probe_cpu_s": probe["probe_cpu_s"],
                "probe_build_s": probe["build_s"],
                "probe_floor_s": probe["probe_bytes"] / bw,
                "probe_target_s": PROBE_TARGET_S,
            }
        out["load_avg_1min_end"] = os.getloadavg()[0]
        print(json.dumps(out))


if __name__ == "__main__":
    main()
