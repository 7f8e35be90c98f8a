"""Real text for the gist chapter: the Brown corpus prepared for the locally trained models
and for GPT-2 (the same documents, pieces and positions for both).

Splits are by document (`brown.split_documents`, stratified by genre); losses, probes,
kernels, splices and the on-indicator experiment read held-out documents the models never
trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.checks import checked
from . import brown as B
from . import brown_lm as LM

__all__ = [
    "BrownData",
    "prepare",
    "task_docs",
    "TASK_LABELS",
]

TASK_LABELS = {"genre (4 groups)": B.COARSE, "genre (15 letters)": tuple(B.GENRES.values())}


@dataclass
class BrownData:
    docs: list  # every document used: {id, genre, coarse, text}
    train: list  # the training documents (the language model and the indicator map)
    held: list  # the held-out documents (losses, probes, kernels, reach, routing)
    gpt2_ids: dict  # id -> [BOS] + GPT-2 tokens
    vocab: LM.Vocab  # GPT-2 ids that occur, remapped to local ids

    def local(self, part: list) -> list[torch.Tensor]:
        return [self.vocab.to_local(self.gpt2_ids[d["id"]]) for d in part]


@checked
def prepare(n_docs: int = 0, train_fraction: float = 0.7, seed: int = 0) -> BrownData:
    """Load the cached corpus (raises `brown.CorpusUnavailable`), keep a genre-stratified
    subset of about `n_docs` documents when n_docs > 0 (every genre keeps ≥ 2), tokenize, split
    by document into train / held-out, and build the vocabulary."""
    docs = B.load_brown()
    if not (0 < train_fraction < 1):
        raise ValueError(f"train_fraction={train_fraction} must lie in (0, 1)")
    if n_docs:
        if not (2 * len(B.GENRES) <= n_docs <= len(docs)):
            raise ValueError(f"n_docs={n_docs}: allowed 0 (all) or {2 * len(B.GENRES)}..{len(docs)}")
        f = n_docs / len(docs)
        docs = B.split_documents(docs, (f, 1 - f), seed=seed + 1)[0] if f < 1 else docs
    ids = LM.tokenize_documents(docs)
    gpt2_ids = {d["id"]: x for d, x in zip(docs, ids)}
    train, held = B.split_documents(docs, (train_fraction, 1 - train_fraction), seed=seed)
    vocab = LM.build_vocab([gpt2_ids[d["id"]] for d in train], ids)
    return BrownData(docs, train, held, gpt2_ids, vocab)


def task_docs(data: BrownData, part: list, task: str, *, local: bool = True) -> list[dict]:
    """Documents in the form `gpt2.layer0_features` reads: {id, group, y, ids}, with local ids
    (the trained model) or GPT-2 ids (GPT-2 itself); y is the coarse group or the genre letter's
    index (`TASK_LABELS`)."""
    if task not in TASK_LABELS:
        raise ValueError(f"task={task!r}: allowed {tuple(TASK_LABELS)}")
    letters = list(B.GENRES)
    out = []
    for d in part:
        y = d["coarse"] if task == "genre (4 groups)" else letters.index(d["genre"])
        ids = data.gpt2_ids[d["id"]]
        out.append(
            {"id": d["id"], "group": d["id"], "y": y, "ids": data.vocab.to_local(ids).tolist() if local else list(ids)}
        )
    return out
