"""A small GPT-2-architecture language model trained here on the Brown corpus (the gist
chapter's "real language model").

The body is `transformers.GPT2Model` unchanged: learned absolute position embeddings, pre-LN
blocks, causal softmax attention; nothing in it prefers recent tokens, so any decaying
positional kernel in its layer-0 heads is learned. Tokens are GPT-2's byte-level BPE
(`gpt2.encode`), restricted to the types that occur in the corpus and remapped to dense local
ids ordered by training frequency (local id 0 is GPT-2's ``<|endoftext|>``, which starts every
document). One deviation from GPT-2, for a 2-core CPU budget: the output layer is an adaptive
softmax (Grave et al. 2017: `torch.nn.AdaptiveLogSoftmaxWithLoss`) over the *whole* local
vocabulary instead of a tied unembedding, an exact normalised distribution whose cost is
dominated by the frequent head of the vocabulary. Losses are therefore comparable with the
unigram and bigram baselines on the same vocabulary (`ngram_losses`).

Training is seeded (initialisation from ``torch.manual_seed(seed)``, batches from a
``torch.Generator``) and cached as safetensors under ``$SUPERPOSE_MODEL_CACHE`` (default
``~/.cache/superpose/models``), keyed by the training tokens, the vocabulary, the
configuration, the seed, the source of the modules that define them and the held-out windows
of the learning curve, so a rebuild loads the checkpoint instead of training again.
`cached_lms` trains several seeds, in worker processes when asked.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..core.cache import atomic_write, model_cache_dir
from ..core.checks import check_fits, check_int, checked
from ..sweep import progress_bar
from . import gpt2 as G
from .gpt2 import transformer_bytes, transformers_class

__all__ = [
    "LMConfig",
    "Vocab",
    "build_vocab",
    "tokenize_documents",
    "BrownLM",
    "train_lm",
    "initial_lm",
    "cached_lm",
    "cached_lms",
    "model_cache_dir",
    "source_digest",
    "eval_windows",
    "heldout_loss",
    "ngram_losses",
]

BOS = 50256


def source_digest() -> str:
    """SHA-256 of this module's source (the model and its training) and the torch and
    transformers versions. The corpus text and the tokenizer enter the cache key through
    the training tokens themselves, so their modules need not."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    import transformers

    h.update(f"torch {torch.__version__} transformers {transformers.__version__}".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- tokens
def tokenize_documents(docs: list[dict], *, cache: bool = True) -> list[list[int]]:
    """GPT-2 ids of each document, [BOS] + encode(text). Cached (as .npz beside the models,
    keyed by the texts and the tokenizer's source) because GPT-2's BPE in Python takes ~10 s
    for the 500 documents."""

    h = hashlib.sha256()
    for d in docs:
        h.update(d["id"].encode() + b"\0" + d["text"].encode() + b"\0")
    enc, bpe = G.tokenizer_files()
    h.update(enc.read_bytes() + bpe.read_bytes())
    f = model_cache_dir() / f"tokens-{h.hexdigest()[:24]}.npz"
    if cache and f.is_file():
        z = np.load(f)
        flat, offsets = z["flat"], z["offsets"]
        return [flat[offsets[i] : offsets[i + 1]].tolist() for i in range(len(docs))]
    ids = [[BOS] + G.encode(d["text"]) for d in docs]
    if cache:
        offsets = np.cumsum([0] + [len(x) for x in ids])
        atomic_write(
            f,
            lambda p: np.savez(p, flat=np.concatenate([np.asarray(x, dtype=np.int32) for x in ids]), offsets=offsets),
            suffix=".npz",
        )
    return ids


@dataclass(frozen=True)
class Vocab:
    """The GPT-2 ids that occur, remapped: `gpt2_ids[j]` is local id j; local ids are ordered
    by frequency in the training documents (ties and unseen types by GPT-2 id)."""

    gpt2_ids: tuple

    def __len__(self):
        return len(self.gpt2_ids)

    def lookup(self) -> torch.Tensor:
        t = torch.full((BOS + 1,), -1, dtype=torch.long)
        t[torch.tensor(self.gpt2_ids)] = torch.arange(len(self.gpt2_ids))
        return t

    def to_local(self, ids) -> torch.Tensor:
        out = self.lookup()[torch.as_tensor(ids, dtype=torch.long)]
        if (out < 0).any():
            raise ValueError("ids: a GPT-2 id outside the vocabulary")
        return out

    def digest(self) -> str:
        return hashlib.sha256(np.asarray(self.gpt2_ids, dtype=np.int64).tobytes()).hexdigest()


def build_vocab(train_ids: list[list[int]], all_ids: list[list[int]]) -> Vocab:
    """Every GPT-2 id occurring in `all_ids`, most frequent in `train_ids` first."""
    counts = np.bincount(np.concatenate([np.asarray(x) for x in train_ids]), minlength=BOS + 1)
    seen = np.unique(np.concatenate([np.asarray(x) for x in all_ids]))
    order = seen[np.lexsort((seen, -counts[seen]))]
    return Vocab(tuple(int(i) for i in order))


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class LMConfig:
    """GPT-2 architecture at laptop scale: n_layer blocks of width d_model with n_head heads,
    context n_ctx; training: `steps` AdamW steps of `batch` random crops, peak rate `lr`
    (linear warm-up over the first 5 % of the steps, then a cosine decay to 0); adaptive
    softmax with clusters split at `cutoffs` (local ids) and tail projections of width
    d_model / div_value^i."""

    n_ctx: int = 128
    d_model: int = 128
    n_layer: int = 2
    n_head: int = 8
    steps: int = 250
    batch: int = 32
    lr: float = 3e-3
    cutoffs: tuple = (512, 2048, 8192)
    div_value: float = 4.0

    def __post_init__(self):
        for name, low, high in (
            ("n_ctx", 8, 1024),
            ("d_model", 8, 4096),
            ("n_layer", 1, 48),
            ("n_head", 1, 64),
            ("steps", 0, 10**7),
            ("batch", 1, 4096),
        ):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low, high))
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_head={self.n_head}")
        if not (0 < self.lr < 1):
            raise ValueError(f"lr={self.lr} must lie in (0, 1)")
        if not (1 <= self.div_value <= 16):
            raise ValueError(f"div_value={self.div_value} must lie in [1, 16]")
        cut = tuple(int(c) for c in self.cutoffs)
        if list(cut) != sorted(set(cut)) or (cut and cut[0] < 1):
            raise ValueError(f"cutoffs={self.cutoffs} must be increasing positive integers")
        object.__setattr__(self, "cutoffs", cut)


class BrownLM(nn.Module):
    """`transformer` (a GPT2Model; the analysis code of `gpt2` runs on it as on GPT-2) and
    `head`, an adaptive softmax over the local vocabulary."""

    def __init__(self, cfg: LMConfig, vocab_size: int):
        super().__init__()

        GPT2Config, GPT2Model = transformers_class("GPT2Config"), transformers_class("GPT2Model")
        gcfg = GPT2Config(
            vocab_size=vocab_size,
            n_positions=cfg.n_ctx,
            n_embd=cfg.d_model,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=0,
            eos_token_id=0,
        )
        gcfg._attn_implementation = "sdpa"  # fast for training; `eval_mode` switches to eager (returns patterns)
        self.cfg, self.vocab_size = cfg, vocab_size
        self.transformer = GPT2Model(gcfg)
        cut = [c for c in cfg.cutoffs if c < vocab_size - 1]
        self.head = nn.AdaptiveLogSoftmaxWithLoss(cfg.d_model, vocab_size, cut, div_value=cfg.div_value)

    def eval_mode(self):
        """Eval, with eager attention so that the layer-0 hooks see the attention weights."""
        self.transformer.config._attn_implementation = "eager"
        return self.eval()

    def loss(self, ids: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Next-token negative log-likelihood (nats) of ids [B, N] at positions 1..N−1."""
        h = self.transformer(input_ids=ids[:, :-1]).last_hidden_state
        out = self.head(h.reshape(-1, h.shape[-1]), ids[:, 1:].reshape(-1))
        return -out.output.mean() if reduction == "mean" else -out.output.view(ids.shape[0], -1)


def _crops(stream: torch.Tensor, n: int, batch: int, g: torch.Generator) -> torch.Tensor:
    start = torch.randint(len(stream) - n, (batch,), generator=g)
    return stream[start[:, None] + torch.arange(n)]


def _schedule(steps: int):
    """Learning-rate factor per step: linear warm-up over the first 5 % of the steps (at
    least one), then a cosine decay to 0 at the last step."""
    warm = max(1, steps // 20)

    def factor(i):
        if i < warm:
            return (i + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (i - warm) / max(1, steps - warm)))

    return factor


@torch.no_grad()
def _heldout_mean(model: "BrownLM", windows: torch.Tensor) -> float:
    was = model.training
    model.eval()
    out = float(heldout_loss(model, windows).double().mean())
    model.train(was)
    return out


@checked
def train_lm(
    train_local: list[torch.Tensor],
    vocab_size: int,
    cfg: LMConfig,
    *,
    seed: int = 0,
    heldout: torch.Tensor | None = None,
    eval_every: int = 0,
    progress: bool = False,
) -> tuple[BrownLM, dict]:
    """Train on random (n_ctx + 1)-token crops of the training documents joined into one stream
    (each starts with BOS, as in GPT-2's training). AdamW (weight decay 0.01), warm-up and
    cosine decay (`_schedule`), gradient norm clipped at 1. With `heldout` windows
    ([W, n_ctx + 1], `eval_windows`) and eval_every > 0, the held-out loss is measured every
    `eval_every` steps and at the end (it does not touch the training's random stream).
    Returns (model in eval mode, {"losses": per step, "heldout": [[step, nats], ...]})."""
    check_fits(
        "the language model and one training step",
        lambda d_model, batch: transformer_bytes(
            vocab_size, cfg.n_ctx, d_model, cfg.n_layer, cfg.n_head, batch, train=True
        ),
        {"d_model": cfg.d_model, "batch": cfg.batch},
        {"d_model": 8, "batch": 1},
        "cpu",
    )
    stream = torch.cat(train_local)
    if len(stream) <= cfg.n_ctx + 1:
        raise ValueError(f"train_local: {len(stream)} tokens, need more than n_ctx + 1 = {cfg.n_ctx + 1}")
    eval_every = check_int("eval_every", eval_every, 0)
    g = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = BrownLM(cfg, vocab_size)
    losses, curve = [], []
    if cfg.steps:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg.steps))
        it = range(cfg.steps)
        if progress:
            it = progress_bar()(it, desc="Brown LM", leave=False)
        model.train()
        for i in it:
            loss = model.loss(_crops(stream, cfg.n_ctx + 1, cfg.batch, g))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if heldout is not None and eval_every and ((i + 1) % eval_every == 0 or i + 1 == cfg.steps):
                curve.append([i + 1, _heldout_mean(model, heldout)])
    return model.eval_mode(), {"losses": losses, "heldout": curve}


@checked
def initial_lm(cfg: LMConfig, vocab_size: int, seed: int = 0) -> BrownLM:
    """The model `train_lm` starts from for this seed, untrained (eval mode): the random-init
    control of that seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = BrownLM(cfg, vocab_size)
    return model.eval_mode()


def _key(train_local, vocab: Vocab, cfg: LMConfig, seed: int, heldout, eval_every: int) -> str:
    h = hashlib.sha256()
    for t in train_local:
        h.update(t.to(torch.int64).numpy().tobytes() + b"|")
    ev = hashlib.sha256(heldout.to(torch.int64).numpy().tobytes()).hexdigest() if heldout is not None else ""
    key_parts = {
        "data": h.hexdigest(),
        "vocab": vocab.digest(),
        "config": asdict(cfg),
        "seed": int(seed),
        "source": source_digest(),
        "heldout": ev,
        "eval_every": int(eval_every),
    }
    return hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:24], key_parts


@checked
def cached_lm(
    train_local: list[torch.Tensor],
    vocab: Vocab,
    cfg: LMConfig,
    *,
    seed: int = 0,
    heldout: torch.Tensor | None = None,
    eval_every: int = 0,
    progress: bool = False,
    root: str | os.PathLike | None = None,
) -> tuple[BrownLM, dict]:
    """`train_lm`, or its checkpoint from the cache. The key hashes the training tokens, the
    vocabulary, the configuration, the seed, `source_digest()` and the held-out windows of
    the learning curve. Returns (model, info) with info = {key, path, cached (bool), train_s
    (CPU seconds of the training process), losses, heldout}."""

    key, key_parts = _key(train_local, vocab, cfg, seed, heldout, eval_every)
    path = Path(root or model_cache_dir()) / f"brownlm-{key}.safetensors"
    if path.is_file():
        sd = load_file(str(path))

        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        with torch.random.fork_rng(devices=[]):
            model = BrownLM(cfg, len(vocab))
        model.load_state_dict(sd, strict=True)
        return model.eval_mode(), {
            "key": key,
            "path": path,
            "cached": True,
            "train_s": float(meta.get("train_s", "nan")),
            "losses": json.loads(meta.get("losses", "[]")),
            "heldout": json.loads(meta.get("heldout", "[]")),
        }
    t0 = time.process_time()
    model, hist = train_lm(
        train_local, len(vocab), cfg, seed=seed, heldout=heldout, eval_every=eval_every, progress=progress
    )
    train_s = time.process_time() - t0
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "key_parts": json.dumps(key_parts),
        "train_s": f"{train_s:.3f}",
        "losses": json.dumps(hist["losses"]),
        "heldout": json.dumps(hist["heldout"]),
    }
    atomic_write(path, lambda p: save_file(sd, p, metadata=meta), suffix=".safetensors")
    return model, {"key": key, "path": path, "cached": False, "train_s": train_s, **hist}


def _train_one(args) -> dict:
    """A worker process: `cached_lm` with one torch thread; returns its info without the model."""
    train_local, vocab, cfg, seed, heldout, eval_every, root = args
    torch.set_num_threads(1)
    _, info = cached_lm(train_local, vocab, cfg, seed=seed, heldout=heldout, eval_every=eval_every, root=root)
    return {k: info[k] for k in ("cached", "train_s")}


@checked
def cached_lms(
    train_local: list[torch.Tensor],
    vocab: Vocab,
    cfg: LMConfig,
    seeds,
    *,
    heldout: torch.Tensor | None = None,
    eval_every: int = 0,
    workers: int = 1,
    root: str | os.PathLike | None = None,
) -> list[tuple[BrownLM, dict]]:
    """`cached_lm` for every training seed: the checkpoints not in the cache are trained
    first, in `workers` processes of one torch thread each (spawned; the numbers do not
    depend on `workers`), then every model is loaded. info["cached"] says whether a seed's
    model was already in the cache before this call."""
    seeds = [check_int("seed", s, 0) for s in seeds]
    workers = check_int("workers", workers, 1, 64)
    todo = [
        s
        for s in seeds
        if not (
            Path(root or model_cache_dir()) / f"brownlm-{_key(train_local, vocab, cfg, s, heldout, eval_every)[0]}"
            ".safetensors"
        ).is_file()
    ]
    fresh = {}
    if todo and workers > 1:
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn")) as ex:
            args = [(train_local, vocab, cfg, s, heldout, eval_every, root) for s in todo]
            fresh = dict(zip(todo, ex.map(_train_one, args)))
    out = []
    for s in seeds:
        m, info = cached_lm(train_local, vocab, cfg, seed=s, heldout=heldout, eval_every=eval_every, root=root)
        if s in fresh:
            info |= {"cached": False, "train_s": fresh[s]["train_s"]}
        out.append((m, info))
    return out


# ----------------------------------------------------------------------------- evaluation
@checked
def eval_windows(docs_local: list[torch.Tensor], n: int) -> tuple[torch.Tensor, np.ndarray]:
    """Non-overlapping (n + 1)-token windows of each document (the model predicts tokens
    1..n of each window from the ones before it): ([W, n + 1], document index per window)."""
    wins, owner = [], []
    for i, ids in enumerate(docs_local):
        for s in range(0, len(ids) - n - 1 + 1, n):
            wins.append(ids[s : s + n + 1])
            owner.append(i)
    if not wins:
        raise ValueError(f"n={n}: no document has n + 1 tokens")
    return torch.stack(wins), np.array(owner)


@torch.no_grad()
@checked
def heldout_loss(model: BrownLM, windows: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Per-target negative log-likelihood [W, n] (nats) of the windows."""
    return torch.cat([model.loss(windows[i : i + batch], reduction="none") for i in range(0, len(windows), batch)])


@checked
def ngram_losses(
    train_local: list[torch.Tensor],
    windows: torch.Tensor,
    vocab_size: int,
    lambdas=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
) -> dict:
    """Per-target NLL [W, n] of the same targets as `heldout_loss` under two baselines fit on
    the training documents: unigram (add-one smoothed) and bigram interpolated with it,
    P(v | u) = λ c(u, v)/c(u) + (1 − λ) P_uni(v), with λ picked from `lambdas` as the best on
    these very targets (a generous baseline). Returns {"unigram", "bigram", "lambda"}."""
    V = vocab_size
    stream = torch.cat(train_local)
    uni = (torch.bincount(stream, minlength=V).double() + 1) / (len(stream) + V)
    prev, nxt = windows[:, :-1], windows[:, 1:]
    keys = torch.cat([t[:-1] * V + t[1:] for t in train_local])
    uk, uc = torch.unique(keys, return_counts=True)
    q = (prev * V + nxt).reshape(-1)
    pos = torch.searchsorted(uk, q).clamp_max(len(uk) - 1)
    c_uv = torch.where(uk[pos] == q, uc[pos], torch.zeros_like(q)).double().view(prev.shape)
    c_u = torch.bincount(torch.cat([t[:-1] for t in train_local]), minlength=V).double()[prev]
    p_uni = uni[nxt]
    ml = torch.where(c_u > 0, c_uv / c_u.clamp_min(1), torch.zeros_like(c_uv))
    best = None
    for lam in lambdas:
        nll = -torch.log(lam * ml + (1 - lam) * p_uni)
        if best is None or nll.mean() < best[1].mean():
            best = (lam, nll)
    return {"unigram": -p_uni.log(), "bigram": best[1], "lambda": best[0]}
