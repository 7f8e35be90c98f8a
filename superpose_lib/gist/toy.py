"""A toy model where the gist mechanism can be proven (book chapter "GPT-2 gist features").

Synthetic language (a hidden Markov model with known statistics): every document is a
sequence of tokens; a hidden topic z_t ∈ {0..K−1} persists from one token to the next with
probability 1 − p (the *switch* probability p; when it switches it moves to one of the other
K − 1 topics uniformly); each token is drawn from its topic's distribution
P(v | k) = softmax(γ g_k)_v, g_k ~ N(0, I_V) fixed by the language's seed. One token is weak
evidence about the topic; the exact posterior P(z_t | x_≤t) (the forward filter) is the
best any summary can do, and it forgets evidence at distance k like λ^k with
λ = 1 − pK/(K − 1) (the second eigenvalue of the topic chain): reach ℓ = −1/ln λ.

A one-block transformer (attention, then MLP) trained on next-token prediction must
estimate the topic to predict the next token, so its attention layer should build a
summary of the recent tokens: the gist. Everything is seeded; the same seed gives the same
model and numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.checks import check_device, check_fits, check_int, checked
from ..core.circuits import decode, encode_input, run_circuits
from ..core.config import CiSConfig
from ..core.experiment import build_network, sample_unit_vectors
from ..sweep import progress_bar
from .gpt2 import window_bow
from .probes import topic_selectivity

__all__ = [
    "ToyLanguage",
    "ToyConfig",
    "ToyTransformer",
    "train_toy",
    "toy_features",
    "influence_by_distance",
    "filter_influence_by_distance",
    "neuron_gating",
    "topic_circuits_errors",
]


def _check_prob(name, value, low=0.0, high=1.0):
    if not (low < float(value) < high):
        raise ValueError(f"{name}={value} must lie in the open interval ({low}, {high})")
    return float(value)


@dataclass(frozen=True)
class ToyLanguage:
    """Topic HMM: K topics, V token types, switch probability p, emission sharpness γ."""

    n_topics: int = 4
    vocab: int = 64
    switch: float = 0.05
    sharpness: float = 1.0
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "n_topics", check_int("n_topics", self.n_topics, 2, 64))
        object.__setattr__(self, "vocab", check_int("vocab", self.vocab, self.n_topics, 100_000))
        object.__setattr__(self, "switch", _check_prob("switch", self.switch))
        if not self.sharpness > 0:
            raise ValueError(f"sharpness={self.sharpness} must be > 0")

    def emissions(self) -> torch.Tensor:
        """P(v | k) [K, V] (float64); fixed by `seed`, independent of `switch`."""
        g = torch.Generator().manual_seed(int(self.seed))
        logits = torch.randn(self.n_topics, self.vocab, generator=g, dtype=torch.float64)
        return (self.sharpness * logits).softmax(-1)

    def transition(self) -> torch.Tensor:
        """P(z_{t+1} = j | z_t = i) [K, K]."""
        K, p = self.n_topics, self.switch
        return torch.full((K, K), p / (K - 1), dtype=torch.float64) + (1 - p - p / (K - 1)) * torch.eye(
            K, dtype=torch.float64
        )

    def reach(self) -> float:
        """Decay length of the optimal filter's memory, ℓ = −1/ln(1 − pK/(K−1)) (tokens)."""
        lam = 1 - self.switch * self.n_topics / (self.n_topics - 1)
        return -1.0 / math.log(abs(lam)) if 0 < abs(lam) < 1 else math.inf

    def sample(self, n_docs: int, length: int, generator: torch.Generator):
        """(tokens, topics), both LongTensor [n_docs, length]; z_0 uniform."""
        n_docs, length = check_int("n_docs", n_docs, 1), check_int("length", length, 1)
        K = self.n_topics
        z = torch.empty(n_docs, length, dtype=torch.long)
        z[:, 0] = torch.randint(K, (n_docs,), generator=generator)
        flips = torch.rand(n_docs, length, generator=generator) < self.switch
        steps = torch.randint(1, K, (n_docs, length), generator=generator)  # move to another topic
        for t in range(1, length):
            z[:, t] = torch.where(flips[:, t], (z[:, t - 1] + steps[:, t]) % K, z[:, t - 1])
        E = self.emissions().float()
        u = torch.rand(n_docs, length, 1, generator=generator)
        cdf = E.cumsum(-1)[z]  # [n, N, V]
        tokens = (u > cdf).sum(-1).clamp_max(self.vocab - 1)  # inverse-CDF sampling
        return tokens, z

    def posterior(self, tokens: torch.Tensor) -> torch.Tensor:
        """Exact filter P(z_t | x_≤t) [n, N, K] (forward algorithm, normalised each step)."""
        E, A = self.emissions(), self.transition()
        lik = E.T[tokens]  # [n, N, K]
        post = torch.empty_like(lik)
        prior = torch.full((tokens.shape[0], self.n_topics), 1.0 / self.n_topics, dtype=torch.float64)
        for t in range(tokens.shape[1]):
            f = prior * lik[:, t]
            f = f / f.sum(-1, keepdim=True)
            post[:, t] = f
            prior = f @ A
        return post


@dataclass(frozen=True)
class ToyConfig:
    """One transformer block: d_model residual width, n_heads heads, d_mlp MLP neurons;
    `recency`: give each head a learnable ALiBi-style recency slope (False: learned absolute
    positions only, as in GPT-2, so any decaying kernel must be learned from them)."""

    vocab: int = 64
    n_ctx: int = 64
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    recency: bool = True

    def __post_init__(self):
        for name, low in (("vocab", 2), ("n_ctx", 2), ("d_model", 2), ("n_heads", 1), ("d_mlp", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")
        if not isinstance(self.recency, bool):
            raise ValueError(f"recency={self.recency!r} must be True or False")


class ToyTransformer(nn.Module):
    """Embedding + learned positions, one pre-LN block (attention 0, MLP 0), unembedding.

    Each head also has a learnable recency slope m_h (ALiBi-style): its scores get −m_h·(q − j)
    for key j, so a content-blind head attends with the kernel exp(−m_h k) (decay length 1/m_h).
    Slopes start at 0 (uniform attention): how far a head looks is learned, not imposed.
    With ``cfg.recency = False`` the slopes are a fixed zero buffer: attention then depends on
    distance only through the learned absolute position embeddings (no recency prior).
    `forward(tokens, cache=True)` also returns the activations the chapter reads."""

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.d_model
        self.wte = nn.Embedding(cfg.vocab, D)
        self.wpe = nn.Embedding(cfg.n_ctx, D)
        self.ln1, self.ln2, self.lnf = nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.fc, self.out = nn.Linear(D, cfg.d_mlp), nn.Linear(cfg.d_mlp, D)
        self.unembed = nn.Linear(D, cfg.vocab)
        if cfg.recency:
            self.slope = nn.Parameter(torch.zeros(cfg.n_heads))
        else:
            self.register_buffer("slope", torch.zeros(cfg.n_heads))
        for m in (self.wte, self.wpe):
            nn.init.normal_(m.weight, std=0.1)

    def forward(self, tokens: torch.Tensor, cache: bool = False):
        B, N = tokens.shape
        H, D = self.cfg.n_heads, self.cfg.d_model
        x = self.wte(tokens) + self.wpe.weight[:N]
        q, k, v = self.qkv(self.ln1(x)).view(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
        s = q @ k.transpose(-1, -2) / math.sqrt(D // H)
        dist = (torch.arange(N, device=s.device)[:, None] - torch.arange(N, device=s.device)[None, :]).to(s.dtype)
        s = s - self.slope[:, None, None] * dist  # recency bias, [H, N, N] broadcast over batch
        s = s.masked_fill(~torch.ones(N, N, dtype=torch.bool, device=s.device).tril(), float("-inf"))
        pat = s.softmax(-1)
        attn = self.proj((pat @ v).transpose(1, 2).reshape(B, N, D))
        mid = x + attn
        act = F.gelu(self.fc(self.ln2(mid)))
        post = mid + self.out(act)
        logits = self.unembed(self.lnf(post))
        if not cache:
            return logits
        return logits, {"resid_pre": x, "attn_out": attn, "resid_mid": mid, "pattern": pat, "mlp_act": act}

    def mlp_act_from(self, resid: torch.Tensor) -> torch.Tensor:
        """MLP0 neurons computed from a given residual (e.g. with attention removed)."""
        return F.gelu(self.fc(self.ln2(resid)))


def _toy_bytes(cfg: ToyConfig, batch: int) -> int:
    """Estimated peak memory (bytes) of `train_toy` with `cfg` and `batch`: the weights
    (embeddings, attention, MLP, unembedding) held four times (parameters, gradients, AdamW's
    two moments), and one step's activations in float32 kept for the backward pass (per
    token: about 12 residual-width vectors, 3 MLP-width ones, 3 vocabulary-width logits and
    4 attention rows per head), twice for their gradients."""
    D, N = cfg.d_model, cfg.n_ctx
    weights = 2 * cfg.vocab * D + N * D + 4 * D * D + 2 * D * cfg.d_mlp
    per_token = 12 * D + 3 * cfg.d_mlp + 3 * cfg.vocab + 4 * cfg.n_heads * N
    return int(4 * (4 * weights + 2 * batch * N * per_token))


@checked
def train_toy(
    lang: ToyLanguage,
    cfg: ToyConfig,
    *,
    steps: int = 1500,
    batch: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    device="cpu",
    progress: bool = False,
):
    """Next-token training on fresh samples of `lang` every step (AdamW, cosine schedule).
    Returns (model, losses list). Seeded: model init and data both come from `seed`."""
    steps, batch = check_int("steps", steps, 0), check_int("batch", batch, 1)
    check_fits(
        "training the toy transformer",
        lambda d_model, n_ctx, d_mlp, vocab, batch: _toy_bytes(
            ToyConfig(vocab, n_ctx, d_model, cfg.n_heads if d_model % cfg.n_heads == 0 else 1, d_mlp), batch
        ),
        {"d_model": cfg.d_model, "n_ctx": cfg.n_ctx, "d_mlp": cfg.d_mlp, "vocab": cfg.vocab, "batch": batch},
        {"d_model": 2, "n_ctx": 2, "d_mlp": 1, "vocab": 2, "batch": 1},
        check_device(device),
    )
    if cfg.vocab != lang.vocab:
        raise ValueError(f"cfg.vocab={cfg.vocab} must equal lang.vocab={lang.vocab}")
    g = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = ToyTransformer(cfg).to(device)
    if steps == 0:
        return model.eval(), []
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    losses = []
    it = range(steps)
    if progress:
        it = progress_bar()(it, desc=f"toy p={lang.switch}", leave=False)
    model.train()
    for _ in it:
        tokens, _ = lang.sample(batch, cfg.n_ctx + 1, g)
        tokens = tokens.to(device)
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
@checked
def toy_features(
    model: ToyTransformer,
    lang: ToyLanguage,
    n_docs: int,
    generator: torch.Generator,
    *,
    window: int = 32,
    first: int = 1,
) -> dict:
    """Per-token features on fresh documents (positions ≥ `first`): resid_pre (current token
    only), resid_mid (the gist), mlp_act, mlp_act_no_attn (MLP0 fed the residual without
    attention's output), bow (window bag of words), posterior (the exact filter), and y (true
    topic), group (document), pos, token."""

    N = model.cfg.n_ctx
    dev = next(model.parameters()).device
    tokens, topics = lang.sample(n_docs, N, generator)
    _, c = model(tokens.to(dev), cache=True)
    pos = torch.arange(first, N)
    sel = lambda t: t[:, first:].reshape(-1, t.shape[-1]).float().cpu()  # noqa: E731
    vocab = torch.arange(lang.vocab)
    bow = torch.cat([window_bow(tokens[i], pos, window, vocab) for i in range(n_docs)])
    return {
        "resid_pre": sel(c["resid_pre"]),
        "resid_mid": sel(c["resid_mid"]),
        "mlp_act": sel(c["mlp_act"]),
        "mlp_act_no_attn": sel(model.mlp_act_from(c["resid_pre"])),
        "bow": bow,
        "posterior": lang.posterior(tokens)[:, first:].reshape(-1, lang.n_topics),
        "y": topics[:, first:].reshape(-1),
        "group": np.repeat(np.arange(n_docs), N - first),
        "pos": pos.repeat(n_docs),
        "token": tokens[:, first:].reshape(-1),
        "tokens": tokens,
        "topics": topics,
    }


@torch.no_grad()
@checked
def influence_by_distance(model: ToyTransformer, tokens: torch.Tensor, readout: torch.Tensor, ks, generator):
    """How far back the gist reaches: replace the token at distance k before the last
    position by a uniformly random token and measure the change of the readout
    (readout [D, C]: a probe's direction(s) on resid_mid) at the last position.
    Returns the mean |Δ readout| per k, [len(ks)], averaged over documents and readout columns."""
    q = tokens.shape[1] - 1
    dev = next(model.parameters()).device
    _, base = model(tokens.to(dev), cache=True)
    r0 = base["resid_mid"][:, q] @ readout
    out = []
    for k in ks:
        t2 = tokens.clone()
        t2[:, q - int(k)] = torch.randint(model.cfg.vocab, (tokens.shape[0],), generator=generator)
        _, c = model(t2.to(dev), cache=True)
        out.append((c["resid_mid"][:, q] @ readout - r0).abs().mean())
    return torch.stack(out).cpu()


@checked
def filter_influence_by_distance(lang: ToyLanguage, tokens: torch.Tensor, ks, generator) -> torch.Tensor:
    """The same experiment on the exact filter: mean |Δ log P(z_q | x_≤q)| per distance k
    (the optimal summary's reach)."""
    q = tokens.shape[1] - 1
    base = lang.posterior(tokens)[:, q].log()
    out = []
    for k in ks:
        t2 = tokens.clone()
        t2[:, q - int(k)] = torch.randint(lang.vocab, (tokens.shape[0],), generator=generator)
        out.append((lang.posterior(t2)[:, q].log() - base).abs().mean())
    return torch.stack(out)


@checked
def neuron_gating(feat: dict, n_topics: int) -> dict:
    """η² (variance explained by the current topic) of every MLP0 neuron, with attention
    (the real activations) and without (attention's output removed from the residual), and
    by the current token for comparison. Returns tensors [d_mlp]."""

    return {
        "topic": topic_selectivity(feat["mlp_act"], feat["y"]),
        "topic_no_attn": topic_selectivity(feat["mlp_act_no_attn"], feat["y"]),
        "token": topic_selectivity(feat["mlp_act"], feat["token"]),
    }


@torch.no_grad()
@checked
def topic_circuits_errors(
    true_topic: torch.Tensor,
    pred_topic: torch.Tensor,
    slot: torch.Tensor,
    n_topics: int,
    per_topic: int,
    *,
    D: int = 1000,
    L: int = 4,
    S: int = 6,
    seed: int = 0,
    device="cpu",
) -> dict:
    """Close the loop: a RiS rotation network of T = K·per_topic circuits, circuit k·per_topic + s
    belonging to topic k (think of n-gram circuits that only apply in one context). At each
    sampled position exactly one circuit should run (z = 1): the true topic's circuit `slot`
    (the slot comes from the current token, known exactly). The on-indicator is switched on
    for the *predicted* topic's circuit instead, fed the input meant for the true one; the
    target is what the true circuit computes (every other circuit 0).

    true_topic, pred_topic, slot: [B]. Returns layer-L mean squared errors: `active_x`
    ⟨|x̂ − x|²⟩ and `active_on` ⟨(α̂ − 1)²⟩ of the circuit that should run, `inactive_x`
    ⟨|x̂|²⟩ and `inactive_on` ⟨α̂²⟩ over all others, and `wrong` (fraction of positions whose
    predicted topic is wrong)."""

    T = n_topics * per_topic
    cfg = CiSConfig(D=D, T=T, S=S, L=L, z=1)
    g = torch.Generator().manual_seed(int(seed))
    net, _ = build_network(cfg, g, device=device, dtype=torch.float64)
    B = true_topic.shape[0]
    if (slot < 0).any() or (slot >= per_topic).any():
        raise ValueError(f"slot must lie in [0, {per_topic - 1}]")
    act_true = (true_topic * per_topic + slot)[:, None].to(device)  # [B, 1]
    act_pred = (pred_topic * per_topic + slot)[:, None].to(device)
    x0 = sample_unit_vectors((B, 1), g)
    a0 = encode_input(torch.ones(B, 1, dtype=torch.float64), x0).to(device)
    truth = run_circuits(net.w[act_true].double(), a0, L)[L]  # [B, 1, d]
    for _, _, G in net.layers_iter(net.embed(act_pred, a0)):
        pass
    alpha, x = decode((G / net.S).double().permute(0, 2, 1))  # [T, B], [T, B, 2]
    t_alpha, t_x = decode(truth)  # [B, 1], [B, 1, 2]
    cols = torch.arange(B, device=alpha.device)[:, None]
    a_alpha, a_x = alpha[act_true, cols], x[act_true, cols]
    n_in = B * (T - 1)
    return {
        "active_x": float(((a_x - t_x) ** 2).sum(-1).mean()),
        "active_on": float(((a_alpha - t_alpha) ** 2).mean()),
        "inactive_x": float(((x**2).sum() - (a_x**2).sum()) / n_in),
        "inactive_on": float(((alpha**2).sum() - (a_alpha**2).sum()) / n_in),
        "wrong": float((true_topic != pred_topic).double().mean()),
    }
