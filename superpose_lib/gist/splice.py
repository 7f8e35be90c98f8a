"""Reach in real text: how many tokens the genre readout takes to switch when the text does.

Two held-out documents of different genre groups, a and b, are spliced into one piece of the
model's context: `before` tokens of a, then `after` tokens of b. At every position the
genre probe's readout d(t) = ℓ_b − ℓ_a (its logit for b's group minus a's) is read, with t
the number of tokens since the splice (t = 0 is b's first token). Both orders (a then b, b
then a) are used, so a probe's preference for one group cancels; the switch time is the
first t ≥ 0 at which the mean readout over splices prefers the new group (d > 0). For a bag
of the whole window that is about `before` tokens (equal counts of both documents); for an
exponential kernel of length ℓ it is about ℓ·ln 2 when `before` ≫ ℓ.

The probes are the cross-validation folds' own: a splice of two documents of fold i is read
by the probe fit on the other folds, so no probe reads a document it was fit on.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.checks import check_int, checked

__all__ = ["splice_docs", "switch_time", "readout_curves"]


@checked
def splice_docs(
    docs: list[dict], doc_fold, before: int, after: int, per_fold: int, generator: torch.Generator
) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Spliced pieces: for each fold (doc_fold[i]: the fold of document i), `per_fold` pairs of
    its documents of different groups, each in both orders, from a random start in each
    document (at least one token in from the start). Returns (pieces as documents {"ids",
    "y": the new group, "old": the old group, "a", "b": document indices}, the fold of each
    piece, the pair index of each piece)."""
    before, after = check_int("before", before, 1), check_int("after", after, 1)
    per_fold = check_int("per_fold", per_fold, 1)
    out, fold_of, pair_of = [], [], []
    pair = 0
    doc_fold = np.asarray(doc_fold)
    for f in np.unique(doc_fold).tolist():
        docs_te = np.flatnonzero(doc_fold == f)
        groups = {int(i): docs[int(i)]["y"] for i in docs_te}
        made = 0
        for _ in range(50 * per_fold):
            if made >= per_fold:
                break
            a, b = docs_te[torch.randint(len(docs_te), (2,), generator=generator).numpy()]
            if groups[int(a)] == groups[int(b)]:
                continue
            ia, ib = torch.as_tensor(docs[int(a)]["ids"]), torch.as_tensor(docs[int(b)]["ids"])
            if len(ia) < before + after + 2 or len(ib) < before + after + 2:
                continue
            span = max(before, after)  # each document serves as the first part in one order, the second in the other
            sa = 1 + int(torch.randint(len(ia) - span - 1, (1,), generator=generator))
            sb = 1 + int(torch.randint(len(ib) - span - 1, (1,), generator=generator))
            for (x, sx, n1), (w, sw, n2), (old, new) in (
                (((ia, sa, before), (ib, sb, after), (int(a), int(b)))),
                (((ib, sb, before), (ia, sa, after), (int(b), int(a)))),
            ):
                ids = torch.cat([x[sx : sx + n1], w[sw : sw + n2]])
                out.append(
                    {
                        "ids": ids.tolist(),
                        "y": groups[new],
                        "old": groups[old],
                        "a": old,
                        "b": new,
                        "group": f"{old}|{new}",
                        "index": len(out),
                    }
                )
                fold_of.append(f)
                pair_of.append(pair)
            pair += 1
            made += 1
    return out, np.array(fold_of), np.array(pair_of)


@checked
def readout_curves(logits: torch.Tensor, pieces: list[dict], where: dict, length: int) -> torch.Tensor:
    """d(q) = ℓ_new − ℓ_old at every position q of every piece: [pieces, length] from the logits
    [n, C] at the positions `where` (all positions 1..length − 1 of every piece; q = 0 is NaN)."""
    out = torch.full((len(pieces), length), float("nan"), dtype=torch.float64)
    doc = torch.as_tensor(where["doc"])
    new = torch.tensor([pieces[i]["y"] for i in doc.tolist()])
    old = torch.tensor([pieces[i]["old"] for i in doc.tolist()])
    d = logits.gather(1, new[:, None])[:, 0] - logits.gather(1, old[:, None])[:, 0]
    out[doc, torch.as_tensor(where["q"])] = d
    return out


@checked
def switch_time(curves: torch.Tensor, before: int) -> float:
    """The first t ≥ 0 (tokens since the splice) at which the mean readout over pieces
    prefers the new group; inf when it never does within the piece."""
    mean = torch.nanmean(curves, 0)[before:]
    hit = torch.nonzero(mean > 0)
    return float(hit[0, 0]) if len(hit) else float("inf")
