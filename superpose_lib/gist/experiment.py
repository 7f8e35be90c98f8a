"""The gist chapter's measurements on real text, one function per step, for several training
seeds of the language model and the controls that test its layer-0 summary.

Rows of every comparison (`ROWS`; all read at the same positions of the same held-out
documents, see `features`):

- ``tok``: the residual before attention 0 (the current token and its position);
- ``rand``: the same architecture at its random initialisation (the training seed's own),
  after attention 0, with attention 0's output rescaled to the trained model's loudness
  relative to the residual (`features.rescale_attention`);
- ``bow``: a bag of words over every token type of attention's own window (the piece's
  tokens up to the position), equal weights;
- ``ewbow``: the same bag weighted by exp(−k/ℓ), ℓ fitted to the seed's layer-0 heads;
- ``unif``: the trained model after attention 0 with its pattern replaced by uniform causal
  attention (its own values: no positional kernel, no content selection);
- ``gist``: the trained model after attention 0;
- ``last``: the trained model's last layer;
- ``long``: a bag of the document's last `long` tokens, across pieces (more context than the
  model ever sees: the ceiling set by context length);
- ``both``: ``gist`` and ``last`` side by side (does the last layer add anything linear?).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..core.checks import check_int, checked
from ..core.criteria import Q90_DX_MAX, RATE_MAX
from ..plots import LABELS
from ..stats import t_interval
from . import brown_lm as LM
from .features import model_features, rescale_attention, window_bags
from .gpt2 import contextual_heads, fit_decay_length, kernels_from_docs
from .paired import bootstrap_weights, paired_table
from .probes import fit_logistic, probe_logits
from .routing import budget_threshold, indicator_inputs, routed_circuits_errors
from .splice import readout_curves, splice_docs, switch_time

__all__ = [
    "ROWS",
    "PAIRS",
    "heldout_windows",
    "lm_losses",
    "seed_kernels",
    "gist_rows",
    "gpt2_rows",
    "fit_rows",
    "rows_logits",
    "context_bins",
    "context_table",
    "doc_folds",
    "splice_curves",
    "switch_times",
    "own_and_other",
    "switched_off_at",
    "switch_off_table",
    "cross_fit_rate",
    "network_capacity",
    "capacities",
]

ROWS = tuple(k for k in LABELS["gist row"] if not k.startswith("gpt2"))


# ----------------------------------------------------------------------------- the language models
@checked
def heldout_windows(data, n_ctx: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, np.ndarray]:
    """Up to `n` random non-overlapping (n_ctx + 1)-token windows of the held-out documents
    (local ids) and the document index of each: the targets of every loss in the chapter."""
    wins, owner = LM.eval_windows(data.local(data.held), check_int("n_ctx", n_ctx, 2))
    pick = torch.randperm(len(wins), generator=generator)[: check_int("n", n, 1)]
    return wins[pick], owner[pick.numpy()]


def _interval_row(name, per_seed_doc: np.ndarray, W: np.ndarray) -> dict:
    """per_seed_doc [seeds, docs] of per-document means; W the bootstrap weights [B + 1, docs]."""
    boot = (W @ per_seed_doc.T) / W.sum(1, keepdims=True)  # [B + 1, seeds]
    mean_b = boot.mean(1)
    _, slo, shi = t_interval(boot[0])
    return {
        "predictor": name,
        "nats per token": float(mean_b[0]),
        "doc_lo": float(np.quantile(mean_b[1:], 0.025)),
        "doc_hi": float(np.quantile(mean_b[1:], 0.975)),
        "seed_lo": slo,
        "seed_hi": shi,
        "per_seed": [round(float(v), 4) for v in boot[0]],
    }


@checked
def lm_losses(
    models: list, data, windows: torch.Tensor, owner, *, generator: torch.Generator, n_boot: int = 500
) -> pd.DataFrame:
    """Held-out nats per token of the trained models (mean over seeds), the interpolated
    bigram and the unigram model, and the difference trained − bigram, on the same targets.
    Per-document means are averaged over documents; intervals: over documents (bootstrap of
    whole documents) and over training seeds (t-interval)."""
    owner = np.asarray(owner)
    docs = np.unique(owner)
    idx = np.searchsorted(docs, owner)

    def per_doc(v):  # [W, n] -> [docs]
        s = np.zeros(len(docs))
        np.add.at(s, idx, v.double().mean(1).numpy())
        return s / np.bincount(idx, minlength=len(docs))

    trained = np.stack([per_doc(LM.heldout_loss(m, windows)) for m in models])
    ng = LM.ngram_losses(data.local(data.train), windows, len(data.vocab))
    bigram, unigram = per_doc(ng["bigram"])[None], per_doc(ng["unigram"])[None]
    W = bootstrap_weights(len(docs), n_boot, generator)
    rows = [
        _interval_row("trained model", trained, W),
        _interval_row("bigram (interpolated)", bigram, W),
        _interval_row("unigram", unigram, W),
        _interval_row("trained − bigram", trained - bigram, W),
    ]
    df = pd.DataFrame(rows)
    df.attrs["lambda"] = ng["lambda"]
    return df


# ----------------------------------------------------------------------------- kernels
@checked
def seed_kernels(models: list, docs: list[dict], window: int, n_ctx: int, *, max_pieces: int = 300) -> dict:
    """Layer-0 positional kernels of each model (`gpt2.kernels_from_docs`: mean attention to
    the token k back, k = 0..window, per head), its contextual heads, and the decay length ℓ of
    the mean kernel of its contextual heads (all heads if none is contextual), fitted over
    1 ≤ k ≤ window: the kernel of the ``ewbow`` control. Returns {"kernels": [models, H, K],
    "contextual": [models, H] bool, "ell": [models]}."""
    kers, ctx, ells = [], [], []
    for m in models:
        k = kernels_from_docs(m, docs, window, n_ctx, max_pieces=max_pieces)
        c = contextual_heads(k)
        mean = k[c].mean(0) if c.any() else k.mean(0)
        kers.append(k)
        ctx.append(c)
        ells.append(float(fit_decay_length(mean[None], 1, window)[0]))
    return {"kernels": torch.stack(kers), "contextual": torch.stack(ctx), "ell": ells}


# ----------------------------------------------------------------------------- rows
@checked
def gist_rows(
    models: list,
    inits: list,
    docs: list[dict],
    where: dict,
    n_ctx: int,
    V: int,
    ells: list,
    *,
    long: int = 512,
    keys=tuple(ROWS),
) -> tuple[dict, dict]:
    """The comparison's features at the positions `where`, {key: [one per seed]} (a row that
    does not depend on the seed has one entry), for the keys of `ROWS` asked for. models,
    inits: the trained models' GPT2Model bodies and their random initialisations, per seed;
    ells: the fitted kernel length per seed. Returns (rows, {"rescale": [s per seed]})."""
    n_ctx, V = check_int("n_ctx", n_ctx, 2), check_int("V", V, 1)
    rows = {k: [] for k in keys}
    scale = []
    need_last = "last" in keys or "both" in keys
    for m, m0, ell in zip(models, inits, ells):
        f = model_features(m, docs, where, n_ctx, last_layer=len(m.h) if need_last else None)
        if "rand" in keys:
            f0 = model_features(m0, docs, where, n_ctx)
            r, s = rescale_attention(f0, f)
            rows["rand"].append(r)
            scale.append(s)
        for k, col in (("tok", "resid_pre"), ("unif", "resid_uniform"), ("gist", "resid_mid"), ("last", "resid_last")):
            if k in keys:
                rows[k].append(f[col])
        if "both" in keys:
            rows["both"].append(torch.cat([f["resid_mid"], f["resid_last"]], 1))
        if "ewbow" in keys:
            rows["ewbow"].append(window_bags(docs, where, n_ctx, V, ell=min(max(ell, 0.5), 1e6)))
    if "bow" in keys:
        rows["bow"].append(window_bags(docs, where, n_ctx, V))
    if "long" in keys:
        rows["long"].append(window_bags(docs, where, n_ctx, V, long=long))
    return rows, {"rescale": scale}


@checked
def fit_rows(rows: dict, y: torch.Tensor, folds: list, n_classes: int, *, steps: int = 100, l2: float = 1e-2) -> dict:
    """One multinomial probe per row, seed and fold (fit on the fold's training documents):
    {key: [per seed: [per fold: LogisticProbe]]}."""
    out = {}
    for k, per_seed in rows.items():
        out[k] = []
        for X in per_seed:
            probes = []
            for tr, _ in folds:
                Xtr = X[torch.as_tensor(tr)] if torch.is_tensor(X) else X.rows(tr)
                probes.append(fit_logistic(Xtr, y[torch.as_tensor(tr)], n_classes, l2=l2, steps=steps))
            out[k].append(probes)
    return out


@checked
def rows_logits(rows: dict, probes: dict, folds: list, n: int) -> dict:
    """Out-of-fold logits {key: [per seed: [n, C]]}: each position read by the probe of its
    own fold (fit without its document)."""
    out = {}
    for k, per_seed in rows.items():
        out[k] = []
        for X, ps in zip(per_seed, probes[k]):
            C = ps[0].W.shape[1]
            lg = torch.zeros(n, C, dtype=torch.float64)
            for p, (_, te) in zip(ps, folds):
                Xte = X[torch.as_tensor(te)] if torch.is_tensor(X) else X.rows(te)
                lg[torch.as_tensor(te)] = probe_logits(p, Xte)
            out[k].append(lg)
    return out


def context_bins(q, edges) -> np.ndarray:
    """Bin index of each position's context length q + 1 (tokens attention can see):
    bin i holds edges[i] ≤ q + 1 < edges[i + 1]."""
    return np.searchsorted(np.asarray(edges), np.asarray(q) + 1, side="right") - 1


# ----------------------------------------------------------------------------- reach in real text
@checked
def splice_curves(
    models: list,
    docs: list[dict],
    doc_fold,
    probes: dict,
    ells: list,
    *,
    before: int,
    after: int,
    per_fold: int,
    generator: torch.Generator,
    V: int,
    keys=("bow", "ewbow", "unif", "gist", "last"),
) -> dict:
    """Readout curves d(t) = ℓ_new − ℓ_old of spliced held-out documents (`splice.splice_docs`)
    for the rows `keys`, each piece read by the probes of its documents' fold: {"curves":
    {key: [seeds, pieces, before + after]}, "pair": pair index per piece, "before": before}."""
    pieces, fold_of, pair_of = splice_docs(docs, doc_fold, before, after, per_fold, generator)
    n = before + after
    q = torch.arange(1, n)
    where = {
        "doc": np.repeat(np.arange(len(pieces)), n - 1),
        "offset": np.zeros(len(pieces) * (n - 1), dtype=int),
        "q": q.repeat(len(pieces)),
        "y": torch.tensor([p["y"] for p in pieces]).repeat_interleave(n - 1),
    }
    rows, _ = gist_rows(models, models, pieces, where, n, V, ells, keys=tuple(k for k in keys))
    pos_fold = fold_of[where["doc"]]
    folds = [(None, np.flatnonzero(pos_fold == f)) for f in range(max(fold_of) + 1)]
    logits = rows_logits(rows, {k: probes[k] for k in rows}, folds, len(where["doc"]))
    curves = {k: torch.stack([readout_curves(lg, pieces, where, n) for lg in v]) for k, v in logits.items()}
    return {"curves": curves, "pair": pair_of, "before": before}


@checked
def switch_times(curves: dict, pair, before: int, *, generator: torch.Generator, n_boot: int = 500) -> pd.DataFrame:
    """Switch time of each row (`splice.switch_time` of the mean curve over pieces and seeds),
    with intervals over documents (bootstrap of spliced pairs, both orders together) and over
    training seeds (t-interval of the per-seed switch times; inf where one never switches)."""
    pair = np.asarray(pair)
    ids = np.unique(pair)
    members = [np.flatnonzero(pair == p) for p in ids]
    draws = [
        np.concatenate([members[i] for i in torch.randint(len(ids), (len(ids),), generator=generator).numpy()])
        for _ in range(n_boot)
    ]
    rows = []
    for k, c in curves.items():
        mean = c.mean(0)  # over seeds: [pieces, n]
        boot = np.array([switch_time(mean[torch.as_tensor(d)], before) for d in draws])
        per_seed = [switch_time(s, before) for s in c]
        finite = all(math.isfinite(v) for v in per_seed)
        _, slo, shi = t_interval(per_seed) if finite else (None, math.inf, math.inf)
        rows.append(
            {
                "row": k,
                "switch": switch_time(mean, before),
                "doc_lo": float(np.quantile(boot, 0.025)),
                "doc_hi": float(np.quantile(boot, 0.975)),
                "seed_lo": slo,
                "seed_hi": shi,
                "per_seed": per_seed,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- switching circuits off
def own_and_other(scores: torch.Tensor, y) -> tuple[torch.Tensor, torch.Tensor]:
    """The score of each position's own group [n] and the others' [n, C − 1]."""
    y = torch.as_tensor(y, dtype=torch.long)
    C = scores.shape[1]
    mask = torch.nn.functional.one_hot(y, C).bool()
    return scores[mask], scores[~mask].view(len(y), C - 1)


def switched_off_at(scores: torch.Tensor, y, rates, weights=None) -> np.ndarray:
    """For each wrongly-off rate r in `rates`: the fraction of the other groups' circuits
    switched off by the threshold τ that switches off a fraction r of the needed ones (τ: the
    r-quantile of the own-group scores; with `weights`, positions weighted, e.g. by bootstrap
    multiplicities of their documents). Scores: log-probabilities of the groups [n, C].
    weights None -> [len(rates)]; weights [B, n] -> [B, len(rates)] (one row per weighting)."""
    if weights is not None and np.ndim(weights) == 2 and len(weights) > 32:  # bound the memory: 32 weightings at a time
        return np.vstack([switched_off_at(scores, y, rates, weights[i : i + 32]) for i in range(0, len(weights), 32)])
    own, other = own_and_other(scores, y)
    C1 = other.shape[1]
    Wt = np.ones((1, len(own))) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    o_ord = np.argsort(own.numpy(), kind="stable")
    own_s = own.numpy()[o_ord]
    cw = np.cumsum(Wt[:, o_ord], 1) / Wt.sum(1, keepdims=True)  # [B, n]
    oth = other.reshape(-1).numpy()
    t_ord = np.argsort(oth, kind="stable")
    oth_s = oth[t_ord]
    ocw = np.cumsum(np.repeat(Wt, C1, axis=1)[:, t_ord], 1) / (C1 * Wt.sum(1, keepdims=True))
    out = np.zeros((len(Wt), len(np.atleast_1d(rates))))
    rows = np.arange(len(Wt))
    for i, r in enumerate(np.atleast_1d(rates)):
        k = (cw <= r + 1e-12).sum(1)  # positions (weighted) strictly below τ = own_s[k]
        tau = np.where(k < len(own_s), own_s[np.minimum(k, len(own_s) - 1)], np.inf)
        j = np.searchsorted(oth_s, tau)  # others strictly below τ
        out[:, i] = np.where(j > 0, ocw[rows, np.maximum(j - 1, 0)], 0.0)
    return out[0] if weights is None or np.ndim(weights) == 1 else out


@checked
def switch_off_table(
    scores: dict, y, doc, rates, *, budget: float = 1e-3, generator: torch.Generator, n_boot: int = 200
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The curve of circuits switched off against the wrongly-off rate, per row (mean over
    seeds), and at the budget rate the fraction switched off with intervals over documents
    (bootstrap: τ chosen anew on every resample) and training seeds. scores: {key: [per seed:
    [n, C] log-probabilities]}. Returns (curve: row, rate, switched_off; table: row, value,
    doc_lo, doc_hi, seed_lo, seed_hi, per_seed)."""
    doc = np.asarray(doc)
    W = bootstrap_weights(int(doc.max()) + 1, n_boot, generator)[:, doc]  # [B + 1, n] per position
    curve, table = [], []
    for k, per_seed in scores.items():
        c = np.mean([switched_off_at(s, y, rates) for s in per_seed], 0)
        curve += [{"row": k, "rate": float(r), "switched_off": float(v)} for r, v in zip(rates, c)]
        at = np.stack([switched_off_at(s, y, [budget], W)[:, 0] for s in per_seed], 1)  # [B + 1, seeds]
        mean_b = at.mean(1)
        _, slo, shi = t_interval(at[0])
        table.append(
            {
                "row": k,
                "value": float(mean_b[0]),
                "doc_lo": float(np.quantile(mean_b[1:], 0.025)),
                "doc_hi": float(np.quantile(mean_b[1:], 0.975)),
                "seed_lo": slo,
                "seed_hi": shi,
                "per_seed": [round(float(v), 4) for v in at[0]],
            }
        )
    return pd.DataFrame(curve), pd.DataFrame(table)


@checked
def cross_fit_rate(scores: torch.Tensor, y, doc, budget: float) -> dict:
    """Honest check of the budget: documents split in two halves (even and odd index); τ is
    chosen on one half at the budget rate and applied to the other, both ways. Returns the
    realised wrongly-off rate and fraction switched off on the unseen halves (pooled)."""
    doc = np.asarray(doc)
    own, other = own_and_other(scores, y)
    half = torch.as_tensor(doc % 2)
    wrong, off, n = 0.0, 0.0, 0
    for h in (0, 1):
        fit, use = half == h, half != h
        k = int(budget * int(fit.sum()))
        s = own[fit].sort().values
        tau = s[k] if k < len(s) else torch.tensor(float("inf"), dtype=s.dtype)
        wrong += float((own[use] < tau).double().sum())
        off += float((other[use] < tau).double().mean(1).sum())
        n += int(use.sum())
    return {"wrongly_off": wrong / n, "switched_off": off / n}


@checked
def network_capacity(
    lin_logits: list,
    y,
    token,
    pick,
    per_class_grid,
    *,
    budget: float = 1e-3,
    width: float = 4.0,
    D: int = 1000,
    L: int = 4,
    seed: int = 0,
    device="cpu",
) -> pd.DataFrame:
    """The superposed network with its on-indicators computed from the summary, at every size
    of `per_class_grid` (circuits per genre group; T = C·per_class).

    Routers: "oracle" (only the needed circuit on: z = 1), "all on" (every group's candidate
    on: z = C, no routing), and per seed "gist at budget": the one-vs-rest log-odds [n, C] at
    every probe position (`routing.cv_indicator_logits`, a linear map of the residual), the
    threshold τ* that switches off at most `budget` of the needed groups over all n positions
    (`routing.budget_threshold`), and the indicator ramp placed so that a group is fully on
    exactly where ℓ ≥ τ* (α = ½ + (ℓ − τ* + w/4)/w reaches ¾ there, where the circuits' step
    saturates). The network runs the positions `pick`, the current token naming the slot
    (token mod per_class). Each row: the measures of `routing.routed_circuits_errors` at
    layer L, the rate of non-candidate circuits read as on (`phantom_rate`), and `passes`:
    the book's rates and payload criterion, needed circuits off ≤ RATE_MAX (the router's own
    wrongly-off included), phantom_rate ≤ RATE_MAX and q90_dx ≤ Q90_DX_MAX."""
    y_all = torch.as_tensor(y, dtype=torch.long)
    pick = torch.as_tensor(pick, dtype=torch.long)
    yp, tok = y_all[pick], torch.as_tensor(token)[pick]
    C = lin_logits[0].shape[1]
    sources = [
        ("oracle", None, float("nan"), torch.nn.functional.one_hot(yp, C).double()),
        ("all on", None, float("nan"), torch.ones(len(yp), C, dtype=torch.float64)),
    ]
    for s, lg in enumerate(lin_logits):
        tau = budget_threshold(lg, y_all, budget)
        sources.append(("gist at budget", s, tau, indicator_inputs(lg[pick], tau - width / 4, width)))
    rows = []
    for per in per_class_grid:
        per = check_int("per_class", per, 1)
        for name, s, tau, alpha in sources:
            r = routed_circuits_errors(alpha, yp, tok % per, per, D=D, L=L, seed=seed, device=device)
            r["phantom_rate"] = r["phantom"] / max(1, C * per - C)
            r["passes"] = bool(
                r["false_off"] <= RATE_MAX and r["phantom_rate"] <= RATE_MAX and r["q90_dx"] <= Q90_DX_MAX
            )
            rows.append({"source": name, "seed": s, "tau": tau, "per_class": per, "T": C * per, **r})
    return pd.DataFrame(rows)


def capacities(net: pd.DataFrame) -> pd.DataFrame:
    """The largest T of the grid at which each router (and seed) passes, with every smaller T of
    the grid passing too; censored at the grid's ends ("≥ T" when the largest passes, "< T"
    when the smallest fails)."""
    out = []
    for (name, s), sub in net.groupby(["source", net.seed.fillna(-1)], sort=False):
        sub = sub.sort_values("T")
        ok = sub.passes.to_numpy()
        n = int(np.argmin(ok)) if not ok.all() else len(ok)
        T = sub["T"].to_numpy()
        text = f"≥ {T[-1]}" if n == len(ok) else f"< {T[0]}" if n == 0 else f"{T[n - 1]}"
        out.append(
            {
                "source": name,
                "seed": None if s < 0 else int(s),
                "capacity": int(T[n - 1]) if n else 0,
                "text": text,
                "z": float(sub.n_on.mean()),
            }
        )
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- helpers of the chapter
#: The paired differences the chapter reports: {name: (row a, row b)}, read as a − b.
PAIRS = {
    "gist − bag of words, attention's window": ("gist", "bow"),
    "gist − bag of words, fitted kernel": ("gist", "ewbow"),
    "gist − uniform attention 0": ("gist", "unif"),
    "gist − random init, rescaled": ("gist", "rand"),
    "gist − current token": ("gist", "tok"),
    "last layer − gist": ("last", "gist"),
    "both − gist": ("both", "gist"),
    "longer window − attention's window": ("long", "bow"),
}


@torch.no_grad()
@checked
def gpt2_rows(model, docs: list[dict], where: dict, n_ctx: int, gpt2_ids, *, mid_layer: int = 6) -> dict:
    """GPT-2 Small's rows on the same positions (its ids through the vocabulary's map):
    {"gpt2": [after attention 0], "gpt2 mid": [hidden state `mid_layer`]}."""
    f = model_features(model, docs, where, n_ctx, last_layer=mid_layer, vocab_map=torch.as_tensor(gpt2_ids))
    return {"gpt2": [f["resid_mid"]], "gpt2 mid": [f["resid_last"]]}


@checked
def doc_folds(folds: list, doc, n_docs: int) -> np.ndarray:
    """The fold of each document (every position of a document is in one fold)."""
    out = np.full(n_docs, -1)
    doc = np.asarray(doc)
    for f, (_, te) in enumerate(folds):
        out[doc[te]] = f
    return out


@checked
def context_table(
    logits: dict,
    where: dict,
    edges,
    *,
    keys=("bow", "gist", "last", "long"),
    generator: torch.Generator,
    n_boot: int = 200,
) -> pd.DataFrame:
    """Balanced accuracy of the rows `keys` by context length (`context_bins` of q + 1, the
    tokens attention can see), mean over seeds with the document interval:
    columns row, lo_len, hi_len (the bin's context lengths), bacc, doc_lo, doc_hi."""
    b = context_bins(where["q"], edges)
    y, doc = np.asarray(where["y"]), np.asarray(where["doc"])
    C = next(iter(logits.values()))[0].shape[1]
    out = []
    for i in range(len(edges) - 1):
        m = b == i
        if not m.any():
            continue
        preds = {k: [lg[torch.as_tensor(m)].argmax(1).numpy() for lg in logits[k]] for k in keys if k in logits}
        t = paired_table(preds, y[m], doc[m], C, generator=generator, n_boot=n_boot)
        for r in t.itertuples():
            out.append(
                {
                    "row": r.name,
                    "lo_len": int(edges[i]),
                    "hi_len": int(edges[i + 1]) - 1,
                    "bacc": r.value,
                    "doc_lo": r.doc_lo,
                    "doc_hi": r.doc_hi,
                }
            )
    return pd.DataFrame(out)
