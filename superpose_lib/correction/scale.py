"""Error correction of on-indicators at scale: the book's capacity search, the design rule
for E5's indicator redundancy, the tuning families, and the row functions of the chapter.

* `scheme_capacity`: the book's one capacity search (every chapter's capacities): per seed,
  the largest load x = T(d/D)² at which a scheme passes criterion (a) "works" or (b)
  "indicators hold" at depth L (`core.criteria`), bisected to a stated resolution from the
  theory's predicted boundary (`theory_start`), censored at both ends.
* `indicator_redundancy`: the design rule for the redundancy S_α of E5's indicator group at
  width D and share f. It runs the neuron-level recursion of that group
  (`regime.spurious.indicator_theory` through `wide_rule.indicator_boundary`, as
  `theory_start` does): an unused indicator neuron collects K ~ Poisson(z·S_α³·x_α) active
  inputs (x_α = T/M_α², M_α = f·D/2) and a background from the spurious neurons it is
  connected to. The mean-weight balance χ cancels that background's mean, so it acts
  through its variance, which grows like M_α at fixed x_α; the recursion carries the whole
  distribution layer by layer and predicts the largest load at which the false-on and
  false-off rates at layer L stay ≤ 10⁻³ without a cascade. The rule takes the S_α with the
  largest predicted load. λ grows like S_α³ and the threshold θ·S_α only like S_α, so the
  predicted load has an interior maximum in S_α.
* `FAMILIES`, `family_settings`: the same number of settings (3) for every family with
  knobs, for a tuning step on a held-out seed; `best_settings` picks per family from
  single probes (the cross-circuit chapter's tuning).
* `redundancy_rows`: one E5 network at a given load with a given S_α, its measured
  spurious-on fraction and false-on rate beside the recursion's prediction.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from ..capacity import RESOLUTION, bisect_capacity
from ..core.checks import check_int, check_real, checked
from ..core.criteria import CRITERIA, Q90_DX_MAX, RATE_MAX, STAT_KEYS, certain_failure, failures
from ..core.theory import T_at, control_parameter
from ..regime.spurious import indicator_theory
from .scaling import max_load, scaling_boundary
from .schemes import make_scheme, scheme_run
from .wide_rule import indicator_boundary, wide_rule_design

__all__ = [
    "scheme_capacity",
    "theory_start",
    "CAPACITY_CRITERIA",
    "indicator_redundancy",
    "FAMILIES",
    "family_settings",
    "best_settings",
    "redundancy_rows",
]


@checked
def indicator_redundancy(D: int, *, share: float, theta: float, z: int, L: int, S_max: int = 10) -> dict:
    """The design rule for E5's indicator redundancy (module docstring): among S_α with
    z/S_α < θ (an inactive circuit shares at most one indicator neuron with each active one,
    so its layer-1 readout, up to z/S_α, must stay below the dead zone) and S_α ≤ S_max, the
    one whose predicted boundary on criterion (b), `theory_start("wide", D, z, L, share=f,
    S_alpha=S_α, theta=θ)`, is largest (the first of equals). Returns {"S": the choice,
    "x_star": its predicted boundary in T(d/D)², "table": {S_α: predicted boundary}}."""
    D = check_int("D", D, 64)
    z = check_int("z", z, 1)
    theta = check_real("theta", theta, 0.0, 1.0, open_low=True)
    share = check_real("share", share, 0.0, 1.0, open_low=True)
    S_min = int(math.floor(z / theta)) + 1
    S_max = check_int("S_max", S_max, S_min)
    table = {S: theory_start("wide", D, z, L, share=share, S_alpha=S, theta=theta) for S in range(S_min, S_max + 1)}
    best = max(table, key=lambda S: (table[S], -S))
    return {"S": best, "x_star": table[best], "table": table}


FAMILIES = ("baseline", "E1", "E2", "E3", "E4", "E5", "oracle")


@checked
def family_settings(family: str, D: int) -> list[dict]:
    """The tuning grid of one scheme family (the same at every width D ≥ 16): the same
    number of settings (3) for every family with knobs (E1–E5), one for the baseline and the
    oracle. Each setting is {"setting": short name, "kind": make_scheme kind, **knobs}.

    E1 sharp step θ ∈ {0.35, 0.45, 0.55}; E3 the payload gated neuron by neuron by the
    indicator block (which leads it by one layer), gate strength G ∈ {2, 4, 8}; E2 an extra
    indicator pair averaged with inverse-variance weights, step θ = 0.45, share f ∈ {0.2,
    0.3, 0.4}; E4 an active-set register (θ = 0.45) re-permuted every layer with f ∈ {0.2,
    0.3}, or static (the same assignment every layer) with f = 0.3; E5 wide untied indicator
    blocks, f ∈ {0.55, 0.6, 0.7} of D (more than RiS's 1/2), θ = 0.55, S_α = 4 (the
    smallest with z/S_α < θ at z = 2; `indicator_redundancy` tunes it separately) — the
    payload keeps S = 6.
    """
    check_int("D", D, 16)
    if family in ("baseline", "oracle"):
        return [{"setting": family, "kind": family}]
    if family == "E1":
        return [{"setting": f"θ={t:g}", "kind": "sharp", "theta": t} for t in (0.35, 0.45, 0.55)]
    if family == "E3":
        return [{"setting": f"G={g:g}", "kind": "gated", "gate": g} for g in (2.0, 4.0, 8.0)]
    if family == "E2":
        return [
            {"setting": f"f={f:g}", "kind": "redundant", "share": f, "S_alpha": 6, "theta": 0.45, "ivw": True}
            for f in (0.2, 0.3, 0.4)
        ]
    if family == "E4":
        return [
            {
                "setting": f"f={f:g}" + (" static" if st else ""),
                "kind": "register",
                "share": f,
                "S_alpha": 6,
                "theta": 0.45,
                "static": st,
            }
            for f, st in ((0.2, False), (0.3, False), (0.3, True))
        ]
    if family == "E5":
        return [
            {"setting": f"f={f:g} S_α=4", "kind": "wide", "share": f, "S_alpha": 4, "theta": 0.55}
            for f in (0.55, 0.6, 0.7)
        ]
    raise ValueError(f"family={family!r} must be one of {FAMILIES}")


@checked
def best_settings(tune, *, eps: float = 1.0, on_rate: float = 1e-3):
    """A tuning step from single probes: per (family, D), the setting with the best score
    (rows with worst_dx, false_on, false_off, averaged over tuning seeds): first those
    passing the indicator rates (false-on and false-off ≤ on_rate), then those with worst
    |δx| ≤ eps, then the smallest false-on rate, then the smallest worst |δx|, then the
    first listed. Returns family, D, setting, and the score columns."""

    g = tune.groupby(["family", "D", "setting"], sort=False)[["worst_dx", "false_on", "false_off"]].mean().reset_index()
    g["ind_ok"] = (g["false_on"] <= on_rate) & (g["false_off"] <= on_rate)
    g["acc_ok"] = g["worst_dx"] <= eps
    g["_order"] = range(len(g))
    rows = []
    for (fam, D), h in g.groupby(["family", "D"], sort=False):
        h = h.sort_values(
            ["ind_ok", "acc_ok", "false_on", "worst_dx", "_order"], ascending=[False, False, True, True, True]
        )
        rows.append(h.iloc[0].drop("_order").to_dict())
    return pd.DataFrame(rows)


@checked
def redundancy_rows(
    S_alpha: int,
    D: int,
    z: int,
    L: int,
    seed: int,
    *,
    x: float | None = None,
    c: float | None = None,
    share: float = 0.6,
    theta: float = 0.55,
    batch: int = 128,
    device: str = "cpu",
) -> list[dict]:
    """One E5 network (indicator blocks of M_α = share·D/2 neurons, redundancy S_alpha, dead
    zone [θ, 3/4]) at the load x = T(d/D)², or, given c instead, at x_α = T/M_α² = c/S_α²
    (the regime derivation's scaling: λ = z·S_α³·x_α = z·c·S_α, so λ/(θ·S_α) = z·c/θ is
    fixed and the layer-2 spurious fraction falls geometrically in S_α). One row, for
    `sweep`: x, x_alpha, T, M_alpha; measured at layers 2 and L the spurious-on fraction of
    the indicator group and at L the false-on and false-off rates; the recursion's
    predictions of the same (`regime.spurious.indicator_theory` for the group, "th_")."""
    if (x is None) == (c is None):
        raise ValueError(f"x={x!r}, c={c!r}: give exactly one of x (a load T(d/D)²) and c (x_α = c/S_α²)")
    scheme = make_scheme("wide", D, share=share, S_alpha=S_alpha, theta=theta)
    M_a = scheme.groups[0].M
    if x is not None:
        T = T_at(check_real("x", x, 0.0, open_low=True), D)
    else:
        T = int(round(check_real("c", c, 0.0, open_low=True) / S_alpha**2 * M_a * M_a))
    T = check_int("T", T, z + 1, scheme.max_T)
    r = scheme_run(scheme, T, z=z, L=L, batch=batch, seed=seed, device=device, layers=(2, L))
    th = indicator_theory(M_a, T, S=S_alpha, z=z, L=L, theta=theta)
    return [
        {
            "x": control_parameter(D, T),
            "x_alpha": T / M_a**2,
            "T": T,
            "M_alpha": M_a,
            "spurious2": r["spurious_on"][2],
            "spuriousL": r["spurious_on"][L],
            "false_on": r["false_on"][L],
            "false_off": r["false_off"][L],
            "th_spurious2": th["spurious_on"][2],
            "th_spuriousL": th["spurious_on"][L],
            "th_false_on": th["false_on"][L],
        }
    ]


# ---- the book's capacity engine ----------------------------------------------------------
#: The two criteria of `core.criteria`: "works" (a) and "indicators hold" (b, against the oracle).
CAPACITY_CRITERIA = CRITERIA
_RUNS: dict = {}  # layer-L statistics of the probes made in this process, shared by both criteria


def _layer_stats(
    kind: str, knobs: tuple, D: int, T: int, z: int, L: int, seed: int, batch: int, oracle: bool = False
) -> tuple[dict, dict | None]:
    """Layer-L statistics of one probe, and with `oracle` (criterion (b)) those of the same
    network's own oracle (`scheme_run(oracle_only=True)`: the same draw, unused neurons
    off), memoised in this process per criterion. The oracle runs first; the network then
    stops at the first chunk of samples after which its failure is certain
    (`core.criteria.certain_failure`), so a seized probe costs a fraction of a full one. The
    scaling construction is designed for the probe's load (`make_scheme("scaling", ..., x=...)`)."""
    key = (kind, knobs, D, T, z, L, seed, batch, oracle)
    if key not in _RUNS:
        scheme = _scheme_at(kind, dict(knobs), D, T, z, L)
        kw = dict(z=z, L=L, batch=batch, seed=seed, layers=(L,))
        orc = scheme_run(scheme, T, oracle_only=True, **kw) if oracle else None
        q_ref = orc["q90_dx"][L] if oracle else None

        def stop(counts, dx, done):
            return certain_failure(
                counts["false_on"][L],
                counts["false_off"][L],
                torch.cat(dx[L]),
                n_inactive=batch * (T - z),
                n_active=batch * z,
                oracle_q90=q_ref,
            )

        r = scheme_run(scheme, T, stop=stop, **kw)
        _RUNS[key] = ({k: r[k] for k in STAT_KEYS}, {k: orc[k] for k in STAT_KEYS} if oracle else None)
        if len(_RUNS) > 4096:
            _RUNS.pop(next(iter(_RUNS)))
    return _RUNS[key]


@checked
def theory_start(kind: str, D: int, z: int, L: int, *, criterion: str = "indicators hold", **knobs) -> float:
    """The theory's predicted boundary in T(d/D)², the capacity search's starting load.

    Criterion (b): the false-gate theory for the scaling construction
    (`scaling.scaling_boundary`), the rule's x* for wide_rule, and for the schemes that
    recompute indicators through the mean weight (baseline, E1, E5, E2') the neuron-level
    recursion of their indicator group (`wide_rule.indicator_boundary`: its M, S and dead
    zone); others start at 0.002, the oracle at 0.005 (where RiS's χ shift (z − 1)·S²·x nears
    the step's 1/4). Criterion (a) also caps the start at the payload's own limit: q90 |δx| ≤
    1/4 means E|δx|² ≈ 2·(0.25/2.146)² for a 2-d Gaussian error, against (L − 1)·z·x_M for
    the simplex payload (x_M = T/M²) and RiS's (L − 1)·x·(z + 8(z − 1)) + 9·L·(d/D)·(z − 1)."""
    D = check_int("D", D, 16)
    if criterion not in CAPACITY_CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not allowed: one of {CAPACITY_CRITERIA}")
    if kind == "scaling":
        x = scaling_boundary(D, z=z, L=L)
    elif kind == "wide_rule":
        x = wide_rule_design(D, z=z, L=L).x_star
    elif kind == "oracle":
        x = 0.005
    elif kind in ("baseline", "sharp", "wide", "independent"):
        scheme = make_scheme(kind, D, **knobs)
        group = next(g for g in scheme.groups if 0 in g.rows)
        M, S = group.M * group.copies, group.S * group.copies
        x = control_parameter(
            D, T_at(max(indicator_boundary(M, S, z, L, scheme.theta_lo, RATE_MAX, group.max_T / M**2), 1e-5), 4 * M)
        )  # the group's load x_g = T/M² as T(d/D)²
    else:
        x = 0.002
    if criterion == CRITERIA[1]:
        return x
    budget = 2 * (Q90_DX_MAX / 2.146) ** 2
    if kind == "scaling":
        payload = budget / ((L - 1) * z)
    else:
        payload = (budget - 9 * L * (4 / D) * (z - 1)) / ((L - 1) * (z + 8 * (z - 1)))
    return max(min(x, payload), 2e-5)


def _scheme_at(kind: str, knobs: dict, D: int, T: int, z: int, L: int):
    """The scheme a capacity probe with T circuits runs: the scaling construction is designed
    for the load x = T(d/D)², every other scheme is fixed."""
    if kind == "scaling":
        return make_scheme("scaling", D, z=z, L=L, x=control_parameter(D, T))
    return make_scheme(kind, D, **({"z": z, "L": L} | knobs if kind == "wide_rule" else knobs))


def _largest_load(kind: str, knobs: dict, D: int, z: int, L: int) -> float:
    """The largest x = T(d/D)² the scheme's assignment holds (the scaling construction: the
    largest any register of its rule holds)."""
    if kind == "scaling":
        return max_load(D, z=z)
    return control_parameter(D, _scheme_at(kind, knobs, D, 1, z, L).max_T)


@checked
def scheme_capacity(
    kind: str,
    D: int,
    z: int,
    L: int,
    seed: int,
    *,
    criterion: str,
    batch: int = 128,
    resolution: float = RESOLUTION,
    x0: float | None = None,
    x_min: float = 2e-5,
    **knobs,
) -> list[dict]:
    """The capacity of the scheme `kind` at width D (knobs as `make_scheme`'s) at depth L
    with z active circuits on one criterion, for one seed (a row function for `sweep`): the
    largest x = T(d/D)² at which the layer-L statistics pass, found by
    `capacity.bisect_capacity` from x0 (default: `theory_start`, the theory's predicted
    boundary).

    criterion "works": `core.criteria.works` (a); "indicators hold": (b), against the
    construction's own oracle: the same network and draw with every neuron that no active
    circuit uses switched off (for the baseline, RiS's oracle). The largest load tried is
    the scheme's assignment capacity; passing there is censored "above". The scaling
    construction is designed anew for every probe's load.
    Returns one row: x_max, x_fail, censor, probes, resolution, T_max, the failures at
    x_fail (why it stops working), label (at x_max), knob (the scheme's knob at x_max:
    S_α of wide_rule, S_r of the scaling construction, else its own knob).
    """
    if criterion not in CAPACITY_CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not allowed: one of {CAPACITY_CRITERIA}")
    D = check_int("D", D, 16)
    z = check_int("z", z, 1)
    L = check_int("L", L, 2)
    batch = check_int("batch", batch, 1)
    against_oracle = criterion == CRITERIA[1]
    if x0 is None:
        x0 = theory_start(kind, D, z, L, criterion=criterion, **knobs)
    frozen = tuple(sorted(knobs.items()))
    x_top = _largest_load(kind, knobs, D, z, L)
    T_top = T_at(x_top, D)
    T_of = lambda x: max(z, min(T_at(x, D), T_top))  # noqa: E731
    why = {}

    def passes(x):
        T = T_of(x)
        st, orc = _layer_stats(kind, frozen, D, T, z, L, seed, batch, oracle=against_oracle)
        fails = failures(st, L, oracle=orc)
        why[T] = fails
        return not fails

    # the gallop's step: the false-gate theory and the baseline's and E1's recursion start within
    # ~10 % of the measured capacity (chapters "The T(d/D)² regime", "Does it work
    # asymptotically?"); other starts can be 2x off. A step must exceed the bisection's resolution.
    step = max(1.1 if kind in ("scaling", "baseline", "sharp") else 1.5, 1.0 + 1.5 * resolution)
    res = bisect_capacity(
        passes, x0=x0, x_min=max(x_min, control_parameter(D, z)), x_max=x_top, resolution=resolution, step=step
    )
    T_fail = T_of(res["x_fail"]) if math.isfinite(res["x_fail"]) else None
    T_max = T_of(res["x_max"]) if res["censor"] != "below" else 0
    at = _scheme_at(kind, knobs, D, max(T_max, z), z, L)
    return [
        res
        | {
            "T_max": T_max,
            "label": at.label,
            "why": "; ".join(why.get(T_fail, [])) if T_fail is not None else "",
            "knob": float(at.knob),
        }
    ]
