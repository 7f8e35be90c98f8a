"""Paired comparisons of probes over documents and training seeds.

Every row (a model's features or a control) is probed at the same positions of the same
held-out documents, with the same document-grouped folds, once per training seed (a control
that does not depend on the seed, such as a bag of words, gives the same predictions for
every seed). A row's number is the mean over seeds of its balanced accuracy, and a
difference between two rows is the mean over seeds of the per-seed differences. Two
intervals answer two questions:

- **over documents**: 95 % percentile bootstrap that resamples whole documents, the same
  resample for every row and seed (so a difference keeps its pairing); this is the
  uncertainty from which 150 documents happen to be held out;
- **over training seeds**: the 95 % t-interval of the per-seed values with n − 1 degrees of
  freedom (`stats.t_interval`); this is the uncertainty from training.

The bootstrap is vectorised: balanced accuracy needs only each document's per-class counts
of correct predictions and of positions, so a resample is a matrix product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..core.checks import check_int, checked
from ..stats import t_interval
from .probes import fit_logistic, group_folds, probe_logits

__all__ = ["cv_logits", "doc_counts", "paired_table", "bootstrap_weights", "folds_for"]


@checked
def cv_logits(X, y: torch.Tensor, folds: list, n_classes: int, *, l2: float = 1e-2, steps: int = 100) -> torch.Tensor:
    """Out-of-fold logits [n, C] (float64) of a multinomial probe X -> y: each row predicted
    by the probe fit on the other folds' documents (`folds`: `probes.group_folds`)."""
    out = torch.zeros(len(y), n_classes, dtype=torch.float64)
    for tr, te in folds:
        Xtr = X[torch.as_tensor(tr)] if torch.is_tensor(X) else X.rows(tr)
        Xte = X[torch.as_tensor(te)] if torch.is_tensor(X) else X.rows(te)
        out[torch.as_tensor(te)] = probe_logits(
            fit_logistic(Xtr, y[torch.as_tensor(tr)], n_classes, l2=l2, steps=steps), Xte
        )
    return out


@checked
def doc_counts(y, yhat, doc, n_docs: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per document and class: correct predictions and positions, ([n_docs, C], [n_docs, C])."""
    y, yhat, doc = np.asarray(y), np.asarray(yhat), np.asarray(doc)
    total = np.zeros((n_docs, n_classes))
    correct = np.zeros((n_docs, n_classes))
    np.add.at(total, (doc, y), 1)
    np.add.at(correct, (doc, y), (y == yhat).astype(float))
    return correct, total


@checked
def bootstrap_weights(n_docs: int, n_boot: int, generator: torch.Generator) -> np.ndarray:
    """[n_boot + 1, n_docs] multiplicities of documents: row 0 is the sample itself (all ones),
    the others resample the documents with replacement."""
    n_docs = check_int("n_docs", n_docs, 1)
    pick = torch.randint(n_docs, (n_boot, n_docs), generator=generator)
    w = torch.zeros(n_boot, n_docs, dtype=torch.float64).scatter_add_(
        1, pick, torch.ones(n_boot, n_docs, dtype=torch.float64)
    )
    return np.vstack([np.ones((1, n_docs)), w.numpy()])


def _bacc(correct, total, weights):
    """Balanced accuracy for each weighting of documents: [B] from [B, n_docs] weights."""
    c, t = weights @ correct, weights @ total  # [B, C]
    present = t > 0
    rec = np.where(present, c / np.where(present, t, 1), 0.0)
    return rec.sum(1) / present.sum(1)


@checked
def paired_table(
    preds: dict, y, doc, n_classes: int, *, pairs: dict | None = None, generator: torch.Generator, n_boot: int = 500
) -> pd.DataFrame:
    """Balanced accuracies of rows and paired differences, over documents and seeds.

    preds: {row: [n_seeds, n] predicted classes (or [n]: the same for every seed)} at the same
    positions with labels y [n] and document index doc [n] (0..n_docs − 1).
    pairs: {name: (row a, row b)}, reported as a − b. Returns one line per row and pair:
    name, kind ("row"/"difference"), value (mean over seeds), doc_lo, doc_hi (document
    bootstrap of that mean), seed_lo, seed_hi (t-interval of the per-seed values), per_seed."""
    y, doc = np.asarray(y), np.asarray(doc)
    n_docs = int(doc.max()) + 1
    W = bootstrap_weights(n_docs, n_boot, generator)
    n_seeds = max(np.atleast_2d(np.asarray(p)).shape[0] for p in preds.values())
    boot = {}
    for name, p in preds.items():
        p = np.atleast_2d(np.asarray(p))
        p = np.repeat(p, n_seeds, 0) if p.shape[0] == 1 else p
        boot[name] = np.stack([_bacc(*doc_counts(y, ps, doc, n_docs, n_classes), W) for ps in p])  # [seeds, B+1]
    lines = [(name, "row", b) for name, b in boot.items()]
    lines += [(name, "difference", boot[a] - boot[b]) for name, (a, b) in (pairs or {}).items()]
    rows = []
    for name, kind, b in lines:
        mean_b = b.mean(0)
        per_seed = b[:, 0]
        _, slo, shi = t_interval(per_seed)
        rows.append(
            {
                "name": name,
                "kind": kind,
                "value": float(mean_b[0]),
                "doc_lo": float(np.quantile(mean_b[1:], 0.025)),
                "doc_hi": float(np.quantile(mean_b[1:], 0.975)),
                "seed_lo": slo,
                "seed_hi": shi,
                "per_seed": [round(float(v), 4) for v in per_seed],
            }
        )
    return pd.DataFrame(rows)


@checked
def folds_for(groups, n_folds: int, seed: int) -> list:
    """The document-grouped folds every row shares (`probes.group_folds`, seeded)."""
    return group_folds(groups, n_folds, torch.Generator().manual_seed(int(seed)))
