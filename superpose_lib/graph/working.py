"""Where a circuit graph works (chapter "Cross-circuit computation"): the working regime per
width D and number of active circuits z, and the edge capacity on the book's criteria.

The control parameter. A circuit graph's superposed network has one weight block per edge,
and its error terms are RiS's with the number of weight blocks per layer |ℰ| in the place of
the number of circuits T (`graph_chain_theory`): the control parameter is x_E = |ℰ|(d/D)²,
not T(d/D)². The same holds for the neuron-level mechanism of seizures
(`regime.spurious`): a neuron of layer l reads the neurons of layer l − 1 it is connected to
through the connectivity C^l, and C^l holds the S² pairs of each edge, so the |ℰ| edges take
the T circuits' place there too.

The working regime. RiS's linear theory holds while the neuron-level term is small against
it. Its edge x*(D, z, L) (`working_x`) is `regime.spurious.boundary_theory`: the x at which
the linear theory plus the neuron-level term reaches twice the linear theory at layer L. It
falls with D (the background of spurious neurons that a neuron reads grows like S²·x·M), so
a configuration is inside the regime when x_E ≤ x*(D, z, L), not below one fixed x.
`regime_T` is the T at which independent circuits (chains of depth 1, |ℰ| = T) sit at the
edge, and deeper chains of the same T inside it.

The edge capacity (`edge_capacity_rows`): the largest x_E at which a random graph of |ℰ|
pipelines on T circuits (by default as many as the assignment holds, T(d/D)² far past
the independent circuits' capacity) passes the book's criterion at layer L
(`core.criteria`): (a) "works", or (b) "indicators hold" against the same network's oracle
(every neuron no active circuit uses switched off after each layer, the same draw). One
bisection per seed (`capacity.bisect_capacity`), from the theory's prediction with |ℰ| in T's
place (`correction.scale.theory_start`), summarised over seeds by `capacity.capacity_summary`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..capacity import RESOLUTION, bisect_capacity, capacity_summary
from ..core.assignment import max_circuits
from ..core.checks import check_int, checked
from ..core.criteria import CRITERIA, failures
from ..core.experiment import sample_unit_vectors
from ..core.theory import epsilon
from ..correction.scale import theory_start
from ..regime.spurious import boundary_theory, spurious_theory
from ..report import format_capacity
from .network import build_graph_network, graph_errors, random_graph, sample_inputs, surviving_inputs

__all__ = [
    "working_x",
    "regime_T",
    "neuron_factor",
    "coincidences",
    "edge_summary",
    "edge_stats",
    "edge_capacity_rows",
    "edge_capacity_summary",
    "MIN_COINCIDENCES",
    "EDGE_ROUNDING",
    "THEORY_FLOOR",
]

_D_CIRCUIT = 4  # d: the rotation circuits' width


_EDGES: dict = {}  # working_x per (D, z, L, S), computed once per process


@checked
def working_x(D: int, z: int, L: int, *, S: int = 6) -> float:
    """The working regime's edge x*(D, z, L) in |ℰ|(d/D)² (module docstring): where the
    neuron-level theory's active error at layer L reaches twice RiS's linear one
    (`regime.spurious.boundary_theory` with |ℰ| in T's place)."""
    if (D, z, L, S) not in _EDGES:
        _EDGES[(D, z, L, S)] = float(boundary_theory(D, z, L, S=S))
    return _EDGES[(D, z, L, S)]


@checked
def regime_T(D: int, z: int, L: int, *, S: int = 6) -> int:
    """The number of circuits T with T(d/D)² = `working_x`(D, z, L) (at most the assignment's
    capacity): independent circuits (|ℰ| = T) then sit at the working regime's edge, and
    chains of depth k (|ℰ| = T/k) a factor k inside it."""
    M = D // _D_CIRCUIT
    return int(min(max_circuits(M, S), max(z, round(working_x(D, z, L, S=S) * M * M))))


@checked
def neuron_factor(D: int, n_edges: int, z: int, L: int, *, S: int = 6) -> float:
    """The neuron-level theory's factor on the active error at layer L: (RiS + the spurious
    neurons' term) / RiS of `regime.spurious.spurious_theory`, with the |ℰ| weight blocks per
    layer in the place of T circuits. 1 deep inside the working regime, 2 at its edge (by
    the edge's definition), growing fast beyond it."""
    th = spurious_theory(D, max(int(n_edges), z, 1), S=S, L=L, z=z)
    ris = th["ris"]["active_x"][L]
    return float(th["total"]["active_x"][L] / ris) if ris > 0 else 1.0


@checked
def coincidences(D: int, T: int, n_edges: int, L: int, *, S: int = 6) -> float:
    """The expected number of propagation events in one network: the propagation error of an
    active circuit is a sum over the other weight blocks (u, t) whose source t shares a neuron
    with the active source at layer l − 1 and whose reader u shares one with the active reader
    at layer l, each with probability S²ε (ε = `theory.epsilon`(D, T, S)). Over |ℰ| inputs
    (the chains' heads, the random graphs' lanes), L − 1 layers and |ℰ| − 1 other blocks:
    (L − 1)·|ℰ|·(|ℰ| − 1)·(S²ε)². A mean over networks with few such events is a count of
    rare events, not the expectation the theory predicts."""
    p = S * S * epsilon(D, T, S, _D_CIRCUIT)
    return float((L - 1) * n_edges * max(n_edges - 1, 0) * p * p)


#: A configuration at the edge (`regime_T`) has T = x*·(D/d)² rounded to a whole circuit, so its
#: load can exceed x* by 0.5/T (< 0.5 % at the T of the chapter): it counts as inside.
EDGE_ROUNDING = 0.005

#: A configuration's propagation error is resolved by its seeds' mean when its networks hold
#: at least this many propagation events each (`coincidences`): with three seeds, ≥ 30
#: events, a Poisson scatter of ≤ 18 % on the mean. With z ≥ 2 the first-order term,
#: which is not rare, dominates and every configuration is resolved.
MIN_COINCIDENCES = 10


def _k_text(inside: list, every: list) -> str:
    if not inside:
        return "none"
    if inside == every:
        return "every k"
    return f"k ≥ {min(inside)}" if inside == [k for k in every if k >= min(inside)] else ", ".join(map(str, inside))


@checked
def edge_stats(
    D: int, T: int, z: int, L: int, n_edges: int, seed: int, *, S: int = 6, batch: int = 128, oracle: bool = False
) -> dict:
    """`graph_errors`' statistics (per layer) of a random graph of n_edges pipelines on T
    circuits at width D (`random_graph`, `build_graph_network`, `batch` rows of z inputs
    from the circuits whose payload reaches layer L), all drawn from one generator seeded
    with `seed`; oracle=True: the same graph, network and draw with every unused neuron
    switched off after each layer."""
    g = torch.Generator().manual_seed(seed)
    gr = random_graph(T, L, z, n_edges, g)
    net = build_graph_network(gr, D, S, g)
    inputs = sample_inputs(surviving_inputs(gr), z, batch, g)
    return graph_errors(net, inputs, sample_unit_vectors((batch, z), g), theory=False, oracle=oracle)


@checked
def edge_capacity_rows(
    D: int,
    z: int,
    L: int,
    seed: int,
    *,
    S: int = 6,
    batch: int = 128,
    resolution: float = RESOLUTION,
    criteria=CRITERIA,
    T: int | None = None,
) -> list[dict]:
    """The edge capacity at width D, depth L, z active circuits, one seed (a row function for
    `sweep`), on each criterion in `criteria` (`core.criteria.CRITERIA`): the largest
    x_E = |ℰ|(d/D)² at which a random graph on T circuits (default: the assignment's
    capacity) passes at layer L, by `capacity.bisect_capacity` from the theory's start
    (`correction.scale.theory_start` of RiS's network, |ℰ| in T's place) in steps of 1.5.
    The criteria share their probes (a probe's network statistics, and its oracle's).

    One row per criterion: x_max, x_fail (the probed loads, each |ℰ|·(d/D)² of an integer
    |ℰ|), censor ("below": even |ℰ| = z fails; "above": |ℰ| = T/2, the most pipelines a
    random graph on T circuits holds, passes), probes, resolution, n_max (edges per layer
    at x_max; 0 when censored below), T, x_T = T(d/D)², theory (the start) and why (the
    conditions missed at x_fail)."""
    M = D // _D_CIRCUIT
    T = check_int("T", T if T is not None else max_circuits(M, S), z, max_circuits(M, S))
    scale = float(M * M)
    n_top = T // 2
    if n_top < z:
        raise ValueError(f"T={T} is out of range: a random graph of z={z} pipelines needs T >= {2 * z}")
    n_of = lambda x: int(min(n_top, max(z, round(x * scale))))  # noqa: E731
    runs: dict = {}

    def stats(n: int, oracle: bool) -> dict:
        if (n, oracle) not in runs:
            runs[(n, oracle)] = edge_stats(D, T, z, L, n, seed, S=S, batch=batch, oracle=oracle)
        return runs[(n, oracle)]

    rows = []
    for crit in criteria:
        if crit not in CRITERIA:
            raise ValueError(f"criteria={criteria!r}: {crit!r} is not allowed (one of {CRITERIA})")
        why: dict = {}

        def passes(x, crit=crit, why=why):
            n = n_of(x)
            why[n] = failures(stats(n, False), L, oracle=stats(n, True) if crit == CRITERIA[1] else None)
            return not why[n]

        x0 = theory_start("baseline", D, z, L, criterion=crit)
        r = bisect_capacity(passes, x0=x0, x_min=z / scale, x_max=n_top / scale, resolution=resolution, step=1.5)
        n_max = 0 if r["censor"] == "below" else n_of(r["x_max"])
        n_fail = n_of(r["x_fail"]) if math.isfinite(r["x_fail"]) else None
        rows.append(
            r
            | {
                "criterion": crit,
                "x_max": max(n_max, z) / scale,
                "x_fail": n_fail / scale if n_fail is not None else math.inf,
                "n_max": n_max,
                "T": T,
                "x_T": T / scale,
                "theory": x0,
                "why": "; ".join(why.get(n_fail, [])) if n_fail is not None else "",
            }
        )
    return rows


@checked
def edge_capacity_summary(cap: pd.DataFrame, independent: pd.DataFrame | None = None) -> dict:
    """The edge capacities over seeds (`cap`: rows of `edge_capacity_rows` with columns D, z,
    seed, criterion, ...), beside those of independent circuits (`independent`: rows of
    `correction.scheme_capacity` for RiS's network, x_max in T(d/D)², or None).

    Returns summary (per criterion, z and D: `capacity.capacity_summary`'s mean, 95 %
    t-interval, censor, resolution and the condition most often missed first, with theory,
    the graphs' x_T = T(d/D)², edges = the mean capacity in edges per layer, share = the
    share of the D² weights the edges' d×d blocks take, and, where given, indep / indep_low
    / indep_high / indep_censor, the independent circuits' capacity, and below_every_seed,
    whether the graphs' capacity is below it in every seed where both are measured), table (in words, censored values as
    bounds) and "glue" (per criterion and z, the capacities at every D)."""
    s = capacity_summary(cap.assign(name=cap["z"])).rename(columns={"name": "z"})
    first = cap.groupby(["criterion", "z", "D"]).agg(theory=("theory", "mean"), x_T=("x_T", "first")).reset_index()
    s = s.merge(first, on=["criterion", "z", "D"], how="left")
    s["edges"] = s["mean"] * (s["D"] / _D_CIRCUIT) ** 2
    s["share"] = s["edges"] * _D_CIRCUIT**2 / s["D"] ** 2
    if independent is not None:
        # paired by seed: the graphs' capacity below the independent circuits' in every seed
        pair = cap.merge(
            independent[["criterion", "z", "D", "seed", "x_max", "censor"]],
            on=["criterion", "z", "D", "seed"],
            suffixes=("", "_ind"),
        )
        pair = pair[(pair.censor == "") & (pair.censor_ind == "")]
        below = (
            pair.assign(b=pair.x_max < pair.x_max_ind)
            .groupby(["criterion", "z", "D"])
            .b.all()
            .rename("below_every_seed")
        )
        s = s.merge(below.reset_index(), on=["criterion", "z", "D"], how="left")
        ind = capacity_summary(independent.assign(name=independent["z"])).rename(columns={"name": "z"})
        s = s.merge(
            ind[["criterion", "z", "D", "mean", "low", "high", "censor"]].rename(
                columns={"mean": "indep", "low": "indep_low", "high": "indep_high", "censor": "indep_censor"}
            ),
            on=["criterion", "z", "D"],
            how="left",
        )
    s = s.sort_values(
        ["criterion", "z", "D"],
        key=lambda c: c.map({v: i for i, v in enumerate(CRITERIA)}) if c.name == "criterion" else c,
    ).reset_index(drop=True)

    def fmt(m, lo, hi, censor, n, x_min):
        # the search's lower end is |ℰ| = z pipelines, not a grid
        if censor == "below":
            return f"< {x_min:.2g} (|ℰ| = z fails)"
        return format_capacity(m, max(lo, 0.0), hi, censor, n=n, x_min=x_min).replace(
            "(some seeds below the grid)", "(some seeds: not even |ℰ| = z)"
        )

    rows, glue = [], {}
    for r in s.itertuples():
        x_min = r.z * (_D_CIRCUIT / r.D) ** 2
        text = fmt(r.mean, r.low, r.high, r.censor, r.n, x_min)
        row = {
            "criterion": r.criterion,
            "z": int(r.z),
            "D": int(r.D),
            "|ℰ|(d/D)² [95 % interval]": text,
            "edges per layer": "none" if r.censor == "below" else f"{r.edges:,.0f}",
            "theory": f"{r.theory:.4f}" if r.theory > max(2 * x_min, THEORY_FLOOR) else "none",
            "graphs' T(d/D)²": f"{r.x_T:.4f}",
        }
        if independent is not None:
            row["independent circuits, T(d/D)²"] = (
                "–" if not np.isfinite(r.indep) else fmt(r.indep, r.indep_low, r.indep_high, r.indep_censor, 2, x_min)
            )
        row["fails first on"] = (r.why.replace("_", " ") or "–") if r.censor != "below" else "the payload at |ℰ| = z"
        rows.append(row)
    for (crit, z), g in s.groupby(["criterion", "z"], sort=False):
        tag = "a" if crit == CRITERIA[0] else "b"
        glue[f"cross-cap-{tag}-z{int(z)}"] = "; ".join(
            f"D = {int(r.D)}: {fmt(r.mean, r.low, r.high, r.censor, r.n, r.z * (_D_CIRCUIT / r.D) ** 2)}"
            + ("" if r.censor == "below" else f", {r.edges:,.0f} edges")
            for r in g.itertuples()
        )
    fit = s[s.censor != "below"]
    glue["cross-cap-TdD"] = f"{s.x_T.min():.4f}–{s.x_T.max():.4f}" if s.x_T.nunique() > 1 else f"{s.x_T.iloc[0]:.4f}"
    glue["cross-cap-frac"] = f"{fit.share.max():.4f}" if len(fit) else "none"
    b = s[s.criterion == CRITERIA[1]]
    glue["cross-cap-why-b"] = " and ".join(
        f"{_WHY.get(g.why.mode().iloc[0], g.why.mode().iloc[0])} at z = {int(z)}" for z, g in b.groupby("z")
    )
    if independent is not None:
        r = (b["mean"] / b.indep)[(b.censor == "") & (b.indep_censor == "")]
        glue["cross-cap-vs-indep"] = f"{r.min():.2f}–{r.max():.2f}" if len(r) else "not measured"
    return {"summary": s, "table": pd.DataFrame(rows).set_index(["criterion", "z", "D"]), "glue": glue}


#: The condition a network misses first on (b) (`core.criteria.failures`), in words.
_WHY = {
    "false_on": "the false-on rate",
    "false_off": "the false-off rate",
    "q90_dx": "the payload's 90th percentile against the oracle's",
}

#: `correction.scale.theory_start`'s floor: the start it returns when the linear payload
#: limit of criterion (a) is already passed at no load (the first-order term alone).
THEORY_FLOOR = 2.1e-5


@checked
def edge_summary(last: pd.DataFrame, *, k_list, edge_set: str, L: int, S: int = 6) -> dict:
    """The chain and random-graph sweep at the last layer (`last`: the active_x rows of
    `graph_rows` at layer L, with columns circuits (the set of circuits a configuration belongs
    to), kind, k, z, D, T, edges, x = |ℰ|(d/D)², seed, measured and theory, the linear
    per-sample theory).

    Per configuration, averaged over seeds (conf): ratio = measured/theory; x_star
    (`working_x`) and rel = x/x_star, the load relative to the working regime's edge;
    factor (`neuron_factor`) and full = ratio/factor, the measurement against the linear
    theory times the neuron-level factor; resolved (z ≥ 2, or at least MIN_COINCIDENCES
    propagation events per network, `coincidences`). work: resolved and inside (rel ≤ 1),
    beyond: resolved and outside. gain: per D and z of the set `edge_set` whose deepest
    chains are resolved, the mean error of the chains of depth min(k_list) over that of
    depth max(k_list), measured, as the linear theory predicts it (linear) and with the
    neuron-level factors (full); rows (`last` with x_star and resolved, per seed); regime
    (per set, D and z: x*, T and which configurations lie inside); and "glue"."""
    keys = ["circuits", "kind", "z", "D", "T", "k", "edges", "x"]
    conf = last.fillna({"k": 0}).groupby(keys, as_index=False, sort=False)[["measured", "theory"]].mean()
    conf["ratio"] = conf.measured / conf.theory
    conf["x_star"] = [working_x(int(D), int(z), L, S=S) for D, z in zip(conf.D, conf.z)]
    conf["rel"] = conf.x / conf.x_star
    conf["inside"] = conf.rel <= 1 + EDGE_ROUNDING
    conf["factor"] = [neuron_factor(int(D), int(n), int(z), L, S=S) for D, n, z in zip(conf.D, conf.edges, conf.z)]
    conf["full"] = conf.ratio / conf.factor
    conf["events"] = [coincidences(int(D), int(T), int(n), L, S=S) for D, T, n in zip(conf.D, conf["T"], conf.edges)]
    conf["resolved"] = (conf.z >= 2) | (conf.events >= MIN_COINCIDENCES)
    work, beyond = conf[conf.inside & conf.resolved], conf[~conf.inside & conf.resolved]
    ch = conf[(conf.kind == "chain") & (conf.circuits == edge_set)].set_index(["D", "z", "k"])
    lo, hi = ch.xs(min(k_list), level="k"), ch.xs(max(k_list), level="k")
    gain = pd.DataFrame(
        {
            "measured": lo.measured / hi.measured,
            "linear": lo.theory / hi.theory,
            "full": lo.theory * lo.factor / (hi.theory * hi.factor),
            "rel": lo.rel,
            "resolved": hi.resolved,
        }
    )
    gain = gain[gain.resolved]
    gain["over_linear"] = gain.measured / gain.linear
    ok = conf[conf.resolved]
    glue = {
        "cross-ratio-lo": f"{work.ratio.min():.2f}",
        "cross-ratio-hi": f"{work.ratio.max():.2f}",
        "cross-full-lo": f"{ok.full.min():.2f}",
        "cross-full-hi": f"{ok.full.max():.2f}",
        "cross-n-work": len(work),
        "cross-n-beyond": len(beyond),
        "cross-n-unresolved": len(conf) - len(ok),
        "cross-n-conf": len(conf),
        "cross-full-worst": _where(ok.loc[ok.full.idxmax()], S),
        "cross-min-events": MIN_COINCIDENCES,
        "cross-xstar": "; ".join(
            f"z = {z}: " + ", ".join(f"{v:.4f}" for v in g.sort_values("D").drop_duplicates("D").x_star)
            for z, g in conf.groupby("z")
        ),
        "cross-xstar-D": ", ".join(str(int(D)) for D in sorted(conf.D.unique())),
        "cross-edge-ratio": _range(lo.ratio),
        "cross-beyond-lo": f"{beyond.ratio.min():.1f}" if len(beyond) else "not measured",
        "cross-beyond-hi": f"{beyond.ratio.max():.1f}" if len(beyond) else "not measured",
        "cross-rel-max": f"{conf.rel.max():.1f}",
        "cross-gain": "; ".join(
            f"{r.measured:.1f}× at D = {D}, z = {z} (linear theory {r.linear:.1f}×, "
            f"with the neuron-level term {r.full:.1f}×)"
            for (D, z), r in gain.iterrows()
        ),
        "cross-gain-over": _range(gain.over_linear) if len(gain) else "not measured",
    }
    rows = last.fillna({"k": 0}).merge(conf[keys + ["x_star", "resolved"]], on=keys, how="left")
    return {
        "conf": conf,
        "rows": rows,
        "work": work,
        "beyond": beyond,
        "gain": gain,
        "regime": _regime_table(conf),
        "glue": glue,
    }


def _where(r, S: int) -> str:
    """A configuration's width and circuits as text, with the share of the assignment it fills."""
    T = int(r["T"])
    return (
        f"D = {int(r['D'])}, z = {int(r['z'])} with T = {T} ({T / max_circuits(int(r['D']) // _D_CIRCUIT, S):.0%} "
        f"of the circuits the assignment holds)"
    )


def _range(v: pd.Series) -> str:
    """ "lo–hi" of a column to two decimals, or the one value when they agree."""
    lo, hi = f"{v.min():.2f}", f"{v.max():.2f}"
    return lo if lo == hi else f"{lo}–{hi}"


def _regime_table(conf: pd.DataFrame) -> pd.DataFrame:
    """Per set of circuits, D and z: x*, T, T(d/D)² and which configurations lie inside."""
    rows = []
    for (name, D, z), g in conf.groupby(["circuits", "D", "z"], sort=False):
        ch, rg = g[g.kind == "chain"], g[g.kind == "random"]
        T = int(g["T"].iloc[0])
        rows.append(
            {
                "circuits": name,
                "D": int(D),
                "z": int(z),
                "x*": f"{g.x_star.iloc[0]:.4f}",
                "T": T,
                "T(d/D)²": f"{T * (_D_CIRCUIT / D) ** 2:.4f}",
                "chains inside": _k_text(sorted(int(k) for k in ch[ch.inside].k), sorted(int(k) for k in ch.k)),
                "random graphs inside": f"{int(rg.inside.sum())} of {len(rg)}",
            }
        )
    return pd.DataFrame(rows).set_index(["circuits", "D", "z"])
