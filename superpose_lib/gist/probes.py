"""Linear probes with grouped cross-validation: logistic regression fitted by L-BFGS,
balanced accuracy, document-level bootstrap intervals, gating scores, selectivity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..core.checks import check_int, checked

__all__ = [
    "group_folds",
    "LogisticProbe",
    "fit_logistic",
    "predict_proba",
    "probe_logits",
    "balanced_accuracy",
    "bootstrap_ci",
    "ProbeResult",
    "cross_val_probe",
    "gating_scores",
    "topic_selectivity",
    "probe_table",
]


# ----------------------------------------------------------------------------- probes
@checked
def group_folds(groups, n_folds: int, generator: torch.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds over *groups* (documents): every sample of a group is in the same fold, so no
    document is ever in train and test at once. Returns [(train_idx, test_idx)]."""
    groups = np.asarray(groups)
    uniq = np.unique(groups)
    n_folds = check_int("n_folds", n_folds, 2, len(uniq))
    perm = uniq[torch.randperm(len(uniq), generator=generator).numpy()]
    fold_of = {g: i % n_folds for i, g in enumerate(perm)}
    f = np.array([fold_of[g] for g in groups])
    return [(np.flatnonzero(f != i), np.flatnonzero(f == i)) for i in range(n_folds)]


@dataclass
class LogisticProbe:
    W: torch.Tensor
    b: torch.Tensor
    mu: torch.Tensor
    sd: torch.Tensor


def _moments(X, dtype):
    """(μ, σ) of the standardisation. A bag of words (`features.WindowBag`) is not
    standardised per type (that would weigh a rare word as much as "the" and fit document
    names); it is divided by its root mean squared row norm, one scalar."""
    if hasattr(X, "scale"):
        return torch.zeros(X.V, dtype=dtype), torch.full((X.V,), X.scale(), dtype=dtype)
    return X.mean(0), X.std(0).clamp_min(1e-6)


def _linear(X, W, b, mu, sd):
    """((X − μ)/σ) W + b without forming (X − μ)/σ: X (W/σ) − (μ/σ)·W + b, so that a bag of
    words (`features.WindowBag`) is never densified."""
    Ws = W / sd[:, None]
    XW = X.matmul(Ws) if hasattr(X, "matmul") and not torch.is_tensor(X) else X @ Ws
    return XW - mu @ Ws + b


@checked
def fit_logistic(
    X, y: torch.Tensor, n_classes: int, *, l2: float = 1e-2, steps: int = 100, dtype=torch.float32
) -> LogisticProbe:
    """Multinomial logistic regression on standardised features, L2-penalised (weight `l2`
    on the mean squared weight), class-balanced loss, L-BFGS (at most `steps` iterations).
    X is a dense [n, d] tensor or a `features.WindowBag` (never densified; scaled, see
    `_moments`). Pure torch; float32 by default (probes need no more)."""
    dense = torch.is_tensor(X)
    if dense:
        X = X.to(dtype)
    mu, sd = _moments(X, dtype)
    d = X.shape[1]
    counts = torch.bincount(y, minlength=n_classes).to(dtype).clamp_min(1)
    cw = counts.sum() / (n_classes * counts)  # balanced class weights
    W = torch.zeros(d, n_classes, dtype=dtype, requires_grad=True)
    b = torch.zeros(n_classes, dtype=dtype, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=steps, line_search_fn="strong_wolfe", tolerance_grad=1e-6)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(_linear(X, W, b, mu, sd), y, weight=cw) + l2 * (W**2).sum() / n_classes
        loss.backward()
        return loss

    opt.step(closure)
    return LogisticProbe(W.detach(), b.detach(), mu, sd)


def probe_logits(probe: LogisticProbe, X) -> torch.Tensor:
    """The probe's logits [n, C] (float64) for dense features or a `features.WindowBag`."""
    with torch.no_grad():
        X = X.to(probe.W.dtype) if torch.is_tensor(X) else X
        return _linear(X, probe.W, probe.b, probe.mu, probe.sd).double()


def predict_proba(probe: LogisticProbe, X) -> torch.Tensor:
    return probe_logits(probe, X).softmax(-1)


@checked
def balanced_accuracy(y, yhat, n_classes: int) -> float:
    """Mean over classes present in y of the per-class recall (chance = 1/n_classes)."""
    y, yhat = np.asarray(y), np.asarray(yhat)
    rec = [np.mean(yhat[y == c] == c) for c in range(n_classes) if np.any(y == c)]
    return float(np.mean(rec))


@checked
def bootstrap_ci(y, yhat, groups, n_classes: int, generator: torch.Generator, n_boot: int = 200, level: float = 0.95):
    """Percentile CI of the balanced accuracy, resampling whole documents (groups)."""
    y, yhat, groups = np.asarray(y), np.asarray(yhat), np.asarray(groups)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == i) for i in range(len(uniq))]
    stats = []
    for _ in range(n_boot):
        pick = torch.randint(len(uniq), (len(uniq),), generator=generator).numpy()
        idx = np.concatenate([members[i] for i in pick])
        stats.append(balanced_accuracy(y[idx], yhat[idx], n_classes))
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


@dataclass
class ProbeResult:
    """Out-of-fold predictions of a document-grouped cross-validated probe."""

    bacc: float
    lo: float
    hi: float
    proba: torch.Tensor  # [n, classes], each row predicted by a probe that never saw its document
    y: np.ndarray


@checked
def cross_val_probe(
    X,
    y,
    groups,
    n_classes: int,
    *,
    n_folds: int = 5,
    seed: int = 0,
    l2: float = 1e-2,
    steps: int = 100,
    n_boot: int = 200,
) -> ProbeResult:
    """Balanced accuracy (with a document-bootstrap CI) of a linear probe X -> y, trained and
    tested on disjoint documents (`group_folds`)."""
    g = torch.Generator().manual_seed(int(seed))
    X, y = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.long)
    proba = torch.zeros(len(y), n_classes, dtype=torch.float64)
    for tr, te in group_folds(groups, n_folds, g):
        probe = fit_logistic(X[tr], y[tr], n_classes, l2=l2, steps=steps)
        proba[te] = predict_proba(probe, X[te])
    yhat = proba.argmax(1).numpy()
    bacc = balanced_accuracy(y.numpy(), yhat, n_classes)
    lo, hi = bootstrap_ci(y.numpy(), yhat, groups, n_classes, g, n_boot=n_boot)
    return ProbeResult(bacc, lo, hi, proba, y.numpy())


@checked
def gating_scores(proba: torch.Tensor, y, threshold: float = 0.5) -> dict:
    """Use a probe's class probabilities as on-indicators of class-specific circuits: circuit c
    is switched on where p_c > threshold. Returns macro precision and recall over classes
    (a class never predicted counts as precision 0)."""
    y = torch.as_tensor(y)
    on = proba > threshold
    prec, rec = [], []
    for c in range(proba.shape[1]):
        truth = y == c
        tp = (on[:, c] & truth).sum().item()
        prec.append(tp / max(1, on[:, c].sum().item()))
        rec.append(tp / max(1, truth.sum().item()))
    return {"precision": float(np.mean(prec)), "recall": float(np.mean(rec))}


def topic_selectivity(acts: torch.Tensor, labels) -> torch.Tensor:
    """η² per neuron: the fraction of an activation's variance explained by the label
    (between-class variance / total variance). acts [n, neurons] -> [neurons]."""
    acts = acts.double()
    labels = torch.as_tensor(labels)
    total = acts.var(0, unbiased=False).clamp_min(1e-12)
    mean = acts.mean(0)
    between = torch.zeros_like(mean)
    for c in labels.unique():
        m = labels == c
        between += m.double().mean() * (acts[m].mean(0) - mean) ** 2
    return between / total


@checked
def probe_table(features: dict, y, groups, n_classes: int, task: str, **kw):
    """Cross-validated probes (`cross_val_probe`) for each named feature matrix on the same
    labels: a tidy DataFrame (task, features, bacc, lo, hi, chance) and the ProbeResults."""

    rows, results = [], {}
    for name, X in features.items():
        r = cross_val_probe(X, y, groups, n_classes, **kw)
        results[name] = r
        rows.append({"task": task, "features": name, "bacc": r.bacc, "lo": r.lo, "hi": r.hi, "chance": 1 / n_classes})
    return pd.DataFrame(rows), results
