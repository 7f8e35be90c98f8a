"""The numbers of the construction chapter: its checks of the construction, its error sweeps
and the summaries whose "glue" dict holds the text of every number its prose glues."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..core.assignment import admissible_steps, mean_squared_overlap
from ..core.checks import checked
from ..core.circuits import decode, encode_input, rotation_weights, run_circuits, sample_thetas
from ..core.config import CiSConfig
from ..core.experiment import (
    balance_chi_dense,
    rotation_error_rows,
    rotation_per_circuit,
    rotation_run,
    sample_active,
    sample_unit_vectors,
    shared_neurons,
    with_chi,
)
from ..sweep import sweep

__all__ = [
    "QUANTITIES",
    "parameter_glue",
    "step_check",
    "overlap_summary",
    "identity_table",
    "chi_conventions",
    "layer1_checks",
    "trajectory_samples",
    "error_sweep",
    "mean_table",
    "theory_ratios",
    "seizure_summary",
    "below_summary",
]

F64 = torch.float64
QUANTITIES = ["active_x", "inactive_x", "active_on", "inactive_on"]


@checked
def parameter_glue(
    cfg: CiSConfig,
    *,
    zs,
    D_below: int,
    T_below: int,
    D_small: int,
    T_small: int,
    S_small: int,
    n_seeds: int,
    batch: int,
    n_trajectories: int,
) -> dict:
    """The run's parameters as text for the prose, keyed "construction-<name>" (a rerun with
    other values reads correctly). x is T(d/D)² of `cfg`, xbelow that of the network below
    the seizure regime (same d, S, L); twoDd is 2D/d."""
    below = CiSConfig(D=D_below, T=T_below, d=cfg.d, S=cfg.S, L=cfg.L)
    values = {
        "D": cfg.D,
        "T": cfg.T,
        "d": cfg.d,
        "S": cfg.S,
        "L": cfg.L,
        "M": cfg.M,
        "zs": ", ".join(map(str, zs)),
        "x": f"{cfg.superposition:.4f}",
        "eps-val": f"{cfg.epsilon:.5f}",
        "Dbelow": D_below,
        "Tbelow": T_below,
        "xbelow": f"{below.superposition:.4f}",
        "Dsmall": D_small,
        "Tsmall": T_small,
        "Ssmall": S_small,
        "twoDd": 2 * cfg.D // cfg.d,
        "nseeds": n_seeds,
        "batch": batch,
        "ntraj": n_trajectories,
    }
    return {f"construction-{k}": v for k, v in values.items()}


@checked
def step_check(seed: int) -> dict:
    """The step, run on three small rotation circuits (float64; angles from `seed`): two on
    (x = (0.6, 0.8) and (1, 0)), one off. Returns, after one layer, alpha1 and x1 (the readout
    when every on-indicator input is perturbed by ±0.2), x1_clean (unperturbed) and x_rot (the
    input vectors rotated by each circuit's angle)."""
    theta = sample_thetas(3, torch.Generator().manual_seed(seed), dtype=F64)
    w = rotation_weights(theta)
    a0 = encode_input(
        torch.tensor([1.0, 1.0, 0.0], dtype=F64), torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.0, 0.0]], dtype=F64)
    )
    a0_noisy = a0 + torch.tensor([[0.2, 0, 0, 0], [-0.2, 0, 0, 0], [0.2, 0, 0, 0]], dtype=F64)  # δα = ±0.2
    alpha1, x1 = decode(run_circuits(w, a0_noisy, 1)[1])
    R = torch.stack(
        [torch.stack([torch.cos(theta), -torch.sin(theta)], -1), torch.stack([torch.sin(theta), torch.cos(theta)], -1)],
        -2,
    )
    x_rot = torch.einsum("tij,tj->ti", R, decode(a0)[1])
    _, x1_clean = decode(run_circuits(w, a0, 1)[1])
    return {"alpha1": alpha1, "x1": x1, "x1_clean": x1_clean, "x_rot": x_rot}


@checked
def overlap_summary(base: torch.Tensor, cfg: CiSConfig, *, cap: int, tol: float) -> dict:
    """The overlaps of an assignment `base` [T, S] into M = cfg.M neurons per block: c (how
    many circuits use each neuron), msq (mean squared overlap over pairs t ≠ u), uniform (the
    same statistic if every c_n = TS/M) and spread (M·Var(c)/(S²T(T−1)), the rest), ratio
    (msq / ε) and "glue" (also the capacity `cap`, the first four admissible steps, the first
    three and the last two progressions, and the tolerance `tol` of the chapter's check msq/ε ≈ 1)."""
    M, T, S = cfg.M, base.shape[0], base.shape[1]
    c = torch.bincount(base.reshape(-1), minlength=M).double()
    msq = mean_squared_overlap(base, M)
    uniform = (T * S - M) / (M * S * (T - 1))
    spread = float(M * c.var(unbiased=False) / (S * S * T * (T - 1)))
    steps = admissible_steps(M, S)[:4]
    glue = {
        "construction-steps": ", ".join(map(str, steps)),
        "construction-first": "; ".join(map(str, base[:3].tolist())),
        "construction-last": "; ".join(map(str, base[-2:].tolist())),
        "construction-msq": f"{msq:.5f}",
        "construction-eps": f"{cfg.epsilon:.5f}",
        "construction-msq-ratio": f"{msq / cfg.epsilon:.3f}",
        "construction-cn": f"{int(c.min())}–{int(c.max())}",
        "construction-cap": cap,
        "construction-overlap-tol": f"{tol:.0%}",
        "construction-spread": f"{spread:.1e}",
    }
    return {"c": c, "msq": msq, "uniform": uniform, "spread": spread, "ratio": msq / cfg.epsilon, "glue": glue}


def identity_table(net) -> dict:
    """The two identities that define W, at every layer l ≥ 2 of `net`, from the dense T × T
    matrix O_tu = ⟨e_t^l|𝒲^l|e_u^{l−1}⟩: diag_err (max over t of |(1/S)O_tt − 1|), off
    (Σ_{t≠u} O_tu) and pos (its positive part), one value per layer, and styled (the table
    of χ, |C|, diag_err and off/pos per layer, formatted for the page) and "glue" (χ_2)."""
    S, M = net.S, net.M
    rows, diag, offs, poss = [], [], [], []
    for l in range(2, net.L + 1):
        Wc = net.mixing_matrix(l).cpu()
        E_cur = torch.nn.functional.one_hot(net.idx[l - 1].cpu(), M).sum(1).to(F64)
        E_prev = torch.nn.functional.one_hot(net.idx[l - 2].cpu(), M).sum(1).to(F64)
        O = E_cur @ Wc @ E_prev.T
        diag_err = float((O.diagonal() / S - 1).abs().max())
        off = float(O.sum() - O.diagonal().sum())
        pos = float((E_cur @ Wc.clamp(min=0) @ E_prev.T).sum() - O.diagonal().sum())
        diag.append(diag_err)
        offs.append(off)
        poss.append(pos)
        rows.append(
            {
                "layer": l,
                "χ": net.layers[l - 1].chi,
                "connected pairs |C|": net.layers[l - 1].connected,
                "max |(1/S)⟨e_t|W|e_t⟩ − 1|": diag_err,
                "Σ_{t≠u} / positive part": off / pos,
            }
        )
    styled = (
        pd.DataFrame(rows)
        .set_index("layer")
        .style.format(
            {
                "χ": "{:.5f}",
                "connected pairs |C|": "{:,d}",
                "max |(1/S)⟨e_t|W|e_t⟩ − 1|": "{:.1e}",
                "Σ_{t≠u} / positive part": "{:.1e}",
            }
        )
        .set_caption("The two identities that define W, at every layer of the main network (float64)")
    )
    glue = {"construction-chi2": f"{net.layers[1].chi:.4f}"}
    return {"diag_err": diag, "off": offs, "pos": poss, "styled": styled, "glue": glue}


@checked
def chi_conventions(net, zs, *, batch: int, seed: int) -> dict:
    """χ balanced over t ≠ u (the library's) or t < u (RiS's code), from the dense matrix,
    and their effect on the mean errors at layer L on the same inputs (generator seed + 1000,
    `batch` active sets per z). Returns chi_ne, chi_lt, chi_lib (the network's own χ), rel
    (|χ_lt/χ_ne − 1| per layer), table and effect (DataFrames), styled (both, formatted) and
    "glue"."""
    L = net.L
    chi_ne = [balance_chi_dense(net, l, "ne") for l in range(2, L + 1)]
    chi_lt = [balance_chi_dense(net, l, "lt") for l in range(2, L + 1)]
    chi_lib = [st.chi for st in net.layers[1:]]
    rel = np.abs(np.array(chi_lt) / np.array(chi_ne) - 1)
    net_lt = with_chi(net, chi_lt)
    g_in = torch.Generator().manual_seed(seed + 1000)
    effect = []
    for z in zs:
        active = sample_active(net.T, z, batch, g_in)
        x0 = sample_unit_vectors((batch, z), g_in)
        e_ne = rotation_run(net, active, x0).mse()
        e_lt = rotation_run(net_lt, active, x0).mse()
        for q in ("active_x", "inactive_x"):
            effect.append(
                {
                    "z": z,
                    "quantity": q,
                    f"layer {L}, t≠u": e_ne[q][L],
                    f"layer {L}, t<u": e_lt[q][L],
                    "relative difference": e_lt[q][L] / e_ne[q][L] - 1,
                }
            )
    table = pd.DataFrame({"layer": range(2, L + 1), "χ (t≠u)": chi_ne, "χ (t<u)": chi_lt, "relative difference": rel})
    effect = pd.DataFrame(effect)
    styled = [
        table.set_index("layer")
        .style.format({"χ (t≠u)": "{:.6f}", "χ (t<u)": "{:.6f}", "relative difference": "{:.2%}"})
        .format_index(escape="html", axis=1)
        .set_caption("χ per layer under the two conventions"),
        effect.style.format(
            {f"layer {L}, t≠u": "{:.3e}", f"layer {L}, t<u": "{:.3e}", "relative difference": "{:+.1%}"}
        )
        .format_index(escape="html", axis=1)
        .hide(axis="index")
        .set_caption(f"Mean errors at layer {L}, same inputs, both conventions"),
    ]
    glue = {
        "construction-chi-rel": f"{rel.max():.2%}",
        "construction-chi-err": f"{effect['relative difference'].abs().max():.1%}",
    }
    return {
        "chi_ne": chi_ne,
        "chi_lt": chi_lt,
        "chi_lib": chi_lib,
        "rel": rel,
        "table": table,
        "effect": effect,
        "styled": styled,
        "glue": glue,
    }


@checked
def layer1_checks(net, zs, *, batch: int, seed: int) -> dict:
    """Layer 1 of `net` (float64) for each z (generator seed + 2000, `batch` active sets):
    the largest errors of the active circuits, and, for the inactive ones, the largest
    |S·α̂ − k_u| (k_u: neurons shared with active circuits) and α̂. Returns table (one row
    per z, with z/S), k_max ({z: largest k_u of an inactive circuit}), styled and "glue"."""
    S = net.S
    g_in = torch.Generator().manual_seed(seed + 2000)
    rows, k_max = [], {}
    for z in zs:
        active = sample_active(net.T, z, batch, g_in)
        x0 = sample_unit_vectors((batch, z), g_in)
        per = rotation_per_circuit(net, active, x0)
        alpha_hat = per["inactive_on"][1].sqrt()  # layer-1 readouts are >= 0
        inactive = ~torch.isnan(alpha_hat)
        k = shared_neurons(net.idx[0], active.to(net.idx.device), net.M).cpu()
        k_max[z] = int(k[inactive].max())
        rows.append(
            {
                "z": z,
                "max (1−α̂)², active": float(per["active_on"][1].max()),
                "max |x−x̂|², active": float(per["active_x"][1].max()),
                "max |S·α̂ − k_u|, inactive": float((S * alpha_hat[inactive] - k[inactive]).abs().max()),
                "max α̂, inactive": float(alpha_hat[inactive].max()),
                "z/S": z / S,
            }
        )
    table = pd.DataFrame(rows).set_index("z")
    exact = f"{table.loc[1, 'max |x−x̂|², active']:.1e}" if 1 in zs else "(not measured: z = 1 is not in zs)"
    styled = table.style.format(
        {c: ("{:.3f}" if c in ("max α̂, inactive", "z/S") else "{:.1e}") for c in table.columns}
    ).set_caption("Layer 1, largest values over the batch")
    glue = {"construction-l1-exact": exact, "construction-2S": f"{2 / S:.3f}"}
    return {"table": table, "k_max": k_max, "styled": styled, "glue": glue}


@checked
def trajectory_samples(net, zs, n: int, *, seed: int) -> list[dict]:
    """For each z, n active sets with |x| = 1 (generator seed + 3000) run through `net`: a
    list of {"z", "active" [n, z], "per" (`rotation_per_circuit`)}, one per z."""
    g_in = torch.Generator().manual_seed(seed + 3000)
    out = []
    for z in zs:
        active = sample_active(net.T, z, n, g_in)
        x0 = sample_unit_vectors((n, z), g_in)
        out.append({"z": z, "active": active, "per": rotation_per_circuit(net, active, x0)})
    return out


@checked
def error_sweep(D: int, T: int, *, S: int, L: int, zs, batch: int, seeds, device="cpu", dtype=F64) -> pd.DataFrame:
    """`rotation_error_rows` for every z and seed (serial, no progress bar): the tidy rows of
    mean and worst-case errors per layer and quantity, with RiS's theory."""
    grid = [dict(D=D, T=T, S=S, L=L, z=z, batch=batch, device=device, dtype=dtype) for z in zs]
    return sweep(rotation_error_rows, grid, seeds, executor="serial", progress=False)


def mean_table(df: pd.DataFrame):
    """The mean over the batch, averaged over seeds, per (quantity, z) and layer, formatted."""
    t = df.pivot_table(index=["quantity", "z"], columns="layer", values="mean", aggfunc="mean").loc[QUANTITIES]
    return t.style.format("{:.2e}").set_caption("Mean over the batch, averaged over seeds, per layer")


def theory_ratios(frame: pd.DataFrame, q: str) -> pd.Series:
    """Measured / theory of quantity q per (z, layer): both averaged over seeds, where the theory is > 0."""
    m = frame[(frame.quantity == q) & (frame.theory > 0)]
    return m.groupby(["z", "layer"])["mean"].mean() / m.groupby(["z", "layer"])["theory"].mean()


@checked
def seizure_summary(df: pd.DataFrame, *, L: int) -> dict:
    """The main network's errors against the theory: seizure (measured / theory of the
    inactive |x̂|², z × layer), layer1 ({quantity: ratio per z at layer 1} for the three
    quantities with a nonzero theory), worst_l1 (the worst inactive α̂² at layer 1 per z),
    on_L (the mean (1 − α̂)² of the active circuits at layer L per z), styled and "glue"."""
    seizure = theory_ratios(df, "inactive_x").unstack("layer")
    layer1 = {q: theory_ratios(df, q).xs(1, level="layer") for q in ("inactive_x", "inactive_on", "active_x")}
    worst_l1 = df[(df.quantity == "inactive_on") & (df.layer == 1)].groupby("z")["worst"].max()
    on_L = df[(df.quantity == "active_on") & (df.layer == L)].groupby("z")["mean"].mean()
    glue = {
        "construction-seizure-l2": f"{seizure[2].min():.1f}–{seizure[2].max():.1f}",
        "construction-seizure-lL": f"{seizure[L].min():.0f}–{seizure[L].max():.0f}",
        "construction-on-L": f"{on_L.min():.2f}–{on_L.max():.2f}",
    }
    styled = seizure.style.format("{:.2f}").set_caption("Measured / theory, inactive |x̂|², main network")
    return {"seizure": seizure, "layer1": layer1, "worst_l1": worst_l1, "on_L": on_L, "styled": styled, "glue": glue}


@checked
def below_summary(df: pd.DataFrame, *, D: int, T: int, factor: float) -> dict:
    """The network below the seizure regime (D, T): ratios (measured / theory per quantity,
    z and layer, for the quantities with a nonzero theory), on_worst (the worst (1 − α̂)² of
    an active circuit at any layer), styled and "glue" (also the chapter's tolerance `factor`)."""
    ratios = pd.concat({q: theory_ratios(df, q) for q in ("active_x", "inactive_x", "inactive_on")}, names=["quantity"])
    on_worst = float(df[df.quantity == "active_on"]["worst"].max())
    glue = {
        "construction-below-range": f"{ratios.min():.2f}–{ratios.max():.2f}",
        "construction-below-on": f"{on_worst:.0e}",
        "construction-factor-below": f"{factor:g}",
    }
    styled = (
        ratios.unstack("layer")
        .style.format("{:.2f}", na_rep="—")
        .set_caption(f"Measured / theory, D = {D}, T = {T} (—: the theory is 0 there, the error is exact)")
    )
    return {"ratios": ratios, "on_worst": on_worst, "styled": styled, "glue": glue}
