"""The gist chapter's features at sampled positions of held-out documents, for a trained model
and the controls that test it, all on the same positions.

A document is cut into consecutive pieces of `n_ctx` tokens (the model's context); at a
position q of a piece (0-based), attention 0 sees the tokens 0..q of that piece. The rows:

- **model rows** (`model_features`): the residual before attention 0 (current token and
  position), after it (the gist site), after it with attention 0's pattern replaced by
  uniform causal attention (p(q, j) = 1/(q + 1): the trained values, no positional kernel
  and no content selection), attention 0's output alone (for the rescaled random-init
  control) and the last layer's residual;
- **bag-of-words rows** (`WindowBag`, `window_bags`): sparse bags over *every* token type of the
  same window as attention (the piece's tokens 0..q), weighted uniformly or by an exponential
  kernel exp(−k/ℓ) of the distance k = q − j (ℓ fitted to the heads), and a bag of the
  document's previous `long` tokens, beyond the model's context (the ceiling of context
  length).

A bag row is a linear function of counts, Σ_j w_qj e_{t_j}; `WindowBag.matmul` evaluates it
for a weight matrix by prefix sums along the sequence, so a probe over 30 000 types never
builds a dense matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..core.checks import check_int, checked
from .gpt2 import attn0_by_hand, attn0_uniform

__all__ = ["WindowBag", "pieces_of", "sample_positions", "model_features", "window_bags", "rescale_attention"]


@dataclass
class WindowBag:
    """Rows of bags of words over `V` token types, each the tokens of a window of one
    sequence, weighted: row i is Σ_{j = start_i}^{pos_i} w_ij e_{t_j} of sequence seq_i, with
    w_ij = 1/(pos_i − start_i + 1) (uniform) or w_ij ∝ exp(−(pos_i − j)/ell) summing to 1.

    A linear map of such rows never needs the rows themselves: for a weight matrix θ [V, C],
    Σ_j w_ij θ[t_j] is a difference of prefix sums of θ[t_j] along the sequence (scaled by
    exp(j/ell) for the exponential kernel), so `matmul` costs O(sequence length · C) per
    sequence, however long the windows, and is differentiable in θ."""

    seqs: torch.Tensor  # [S, N] token ids (padded with 0 past each sequence's end)
    seq: torch.Tensor  # [n] the sequence of each row
    pos: torch.Tensor  # [n] the window's last position (inclusive)
    start: torch.Tensor  # [n] the window's first position
    V: int
    ell: float | None = None
    rms: float | None = None  # the root mean squared row norm, once computed (`scale`)

    def __len__(self):
        return len(self.seq)

    @property
    def shape(self):
        return (len(self), self.V)

    def rows(self, idx) -> "WindowBag":
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return WindowBag(self.seqs, self.seq[idx], self.pos[idx], self.start[idx], self.V, self.ell, self.scale())

    def matmul(self, W: torch.Tensor) -> torch.Tensor:
        """[n, C] = rows @ W for W [V, C]."""
        used, seq = torch.unique(self.seq, return_inverse=True)
        E = W[self.seqs[used]].double()  # [S', N, C]
        N = E.shape[1]
        if self.ell is None:
            cs = torch.nn.functional.pad(E.cumsum(1), (0, 0, 1, 0))
            out = (cs[seq, self.pos + 1] - cs[seq, self.start]) / (self.pos - self.start + 1)[:, None]
            return out.to(W.dtype)
        j = torch.arange(N, dtype=torch.float64)
        up = torch.exp(j / self.ell)  # exp(j/ℓ); exp(−(pos − j)/ℓ) = exp(j/ℓ)·exp(−pos/ℓ)
        cs = torch.nn.functional.pad((E * up[None, :, None]).cumsum(1), (0, 0, 1, 0))
        num = cs[seq, self.pos + 1] - cs[seq, self.start]
        lam = math.exp(-1 / self.ell)
        k = (self.pos - self.start + 1).double()
        norm = torch.exp(self.pos.double() / self.ell) * (1 - lam**k) / (1 - lam) if lam < 1 else k
        return (num / norm[:, None]).to(W.dtype)

    def _row(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = int(self.start[i]), int(self.pos[i])
        toks = self.seqs[self.seq[i], a : b + 1]
        if self.ell is None:
            return toks, torch.full((len(toks),), 1.0 / len(toks), dtype=torch.float64)
        w = torch.exp(-torch.arange(b - a, -1, -1, dtype=torch.float64) / self.ell)
        return toks, w / w.sum()

    def dense(self, idx=None) -> torch.Tensor:
        """The rows `idx` (default all) as a dense [len(idx), V] matrix (for tests)."""
        idx = torch.arange(len(self)) if idx is None else torch.as_tensor(np.asarray(idx), dtype=torch.long)
        out = torch.zeros(len(idx), self.V, dtype=torch.float64)
        for r, i in enumerate(idx.tolist()):
            out[r].index_add_(0, *self._row(i))
        return out

    def scale(self, n_sample: int = 2000) -> float:
        """The root mean squared norm of the rows (from up to `n_sample` evenly spaced rows):
        one scalar that puts bags of different windows on one footing for the probes' L2."""
        if self.rms is None:
            sq = []
            for i in torch.linspace(0, len(self) - 1, min(n_sample, len(self))).long().tolist():
                toks, w = self._row(i)
                _, inv = torch.unique(toks, return_inverse=True)
                sq.append(
                    float(torch.zeros(int(inv.max()) + 1, dtype=torch.float64).index_add_(0, inv, w).pow(2).sum())
                )
            self.rms = math.sqrt(sum(sq) / len(sq))
        return self.rms


@checked
def pieces_of(ids, n_ctx: int) -> list[tuple[int, torch.Tensor]]:
    """(offset, piece) of a document cut into consecutive `n_ctx`-token pieces; a last piece
    shorter than 2 tokens is dropped."""
    ids = torch.as_tensor(ids)
    return [(s, ids[s : s + n_ctx]) for s in range(0, len(ids), n_ctx) if len(ids[s : s + n_ctx]) >= 2]


@checked
def sample_positions(
    docs: list[dict], n_ctx: int, per_piece: int, generator: torch.Generator, *, first: int = 1
) -> dict:
    """`per_piece` positions q ≥ `first` of every piece of every document, drawn without
    replacement: {"doc" [n], "offset" [n] (the piece's start in its document), "q" [n]
    (position in the piece), "token" [n], "y" [n], "group" (document ids)}; the same draw
    for every model and control given the same generator seed."""
    n_ctx, per_piece = check_int("n_ctx", n_ctx, 2), check_int("per_piece", per_piece, 1)
    out = {k: [] for k in ("doc", "offset", "q", "token", "y", "group")}
    for i, d in enumerate(docs):
        for off, piece in pieces_of(d["ids"], n_ctx):
            if len(piece) <= first:
                continue
            q = torch.arange(first, len(piece))
            q = q[torch.randperm(len(q), generator=generator)[:per_piece]].sort().values
            out["doc"] += [i] * len(q)
            out["offset"] += [off] * len(q)
            out["q"].append(q)
            out["token"].append(piece[q])
            out["y"] += [d["y"]] * len(q)
            out["group"] += [d["group"]] * len(q)
    return {
        "doc": np.array(out["doc"]),
        "offset": np.array(out["offset"]),
        "q": torch.cat(out["q"]),
        "token": torch.cat(out["token"]),
        "y": torch.tensor(out["y"]),
        "group": np.array(out["group"]),
    }


@torch.no_grad()
@checked
def model_features(
    model,
    docs: list[dict],
    where: dict,
    n_ctx: int,
    *,
    last_layer: int | None = None,
    vocab_map: torch.Tensor | None = None,
    batch: int = 64,
) -> dict:
    """The model rows at the positions `where` (`sample_positions`): resid_pre, resid_mid,
    attn_out, resid_uniform (attention 0's pattern made uniform, `attn0_uniform`) and, with
    `last_layer`, the hidden state `last_layer` (the residual after that many blocks).
    Pieces run in batches of `batch` (padded at the end: causal attention never looks
    ahead, so padding changes no earlier position). `vocab_map` maps the documents' ids to
    the model's (GPT-2's ids for GPT-2 itself)."""
    n_ctx = check_int("n_ctx", n_ctx, 2)
    doc = torch.as_tensor(where["doc"], dtype=torch.long)
    offset, q = torch.as_tensor(where["offset"], dtype=torch.long), torch.as_tensor(where["q"], dtype=torch.long)
    uk, piece_of = torch.unique(doc * (1 << 32) + offset, return_inverse=True)
    dev = model.wte.weight.device
    D = model.wte.weight.shape[1]
    names = ["resid_pre", "attn_out", "resid_mid", "resid_uniform"] + (["resid_last"] if last_layer is not None else [])
    out = {k: torch.zeros(len(q), D) for k in names}
    for b0 in range(0, len(uk), batch):
        keys = uk[b0 : b0 + batch].tolist()
        ids = torch.zeros(len(keys), n_ctx, dtype=torch.long)
        for r, k in enumerate(keys):
            i, off = divmod(k, 1 << 32)
            piece = torch.as_tensor(docs[i]["ids"])[off : off + n_ctx]
            ids[r, : len(piece)] = piece if vocab_map is None else vocab_map[piece]
        got = {}
        hook = model.h[0].register_forward_pre_hook(
            lambda m, a, kw: got.__setitem__("pre", a[0] if a else kw["hidden_states"]), with_kwargs=True
        )
        try:
            if last_layer is not None:
                hs = model(input_ids=ids.to(dev), output_hidden_states=True).hidden_states[last_layer]
            else:  # the layer-0 quantities need no forward beyond the embeddings
                got["pre"] = model.wte(ids.to(dev)) + model.wpe.weight[:n_ctx]
        finally:
            hook.remove()
        pre = got["pre"]
        attn, _ = attn0_by_hand(model, pre)
        vals = {
            "resid_pre": pre,
            "attn_out": attn,
            "resid_mid": pre + attn,
            "resid_uniform": pre + attn0_uniform(model, pre),
        }
        if last_layer is not None:
            vals["resid_last"] = hs
        rows = torch.nonzero((piece_of >= b0) & (piece_of < b0 + len(keys)))[:, 0]
        pr, qq = (piece_of[rows] - b0).to(dev), q[rows].to(dev)
        for k in names:
            out[k][rows] = vals[k][pr, qq].float().cpu()
    return out


def rescale_attention(f_random: dict, f_trained: dict) -> tuple[torch.Tensor, float]:
    """The random-init control at the trained model's loudness: resid_pre + s·attn_out of the
    random model, with s chosen so that RMS(s·attn_out)/RMS(resid_pre) equals the trained
    model's ratio (at initialisation attention 0 writes only a small fraction of the residual's
    RMS, so a probe would mostly read the random token embedding). Returns (features, s)."""
    rms = lambda t: float(t.double().pow(2).mean().sqrt())  # noqa: E731
    target = rms(f_trained["attn_out"]) / rms(f_trained["resid_pre"])
    s = target * rms(f_random["resid_pre"]) / rms(f_random["attn_out"])
    return f_random["resid_pre"] + s * f_random["attn_out"], s


@checked
def window_bags(
    docs: list[dict], where: dict, n_ctx: int, V: int, *, ell: float | None = None, long: int | None = None
) -> WindowBag:
    """Bags of words at the positions `where`, over all V types:
    - default: the piece's tokens 0..q with equal weights (attention 0's window);
    - `ell`: the same window weighted by exp(−(q − j)/ℓ), normalised to sum 1;
    - `long`: the document's `long` tokens ending at the position, equal weights (the window
      reaches back across pieces, beyond the model's context)."""
    n_ctx, V = check_int("n_ctx", n_ctx, 2), check_int("V", V, 1)
    if ell is not None and not (0.5 <= ell):
        raise ValueError(f"ell={ell} must be >= 0.5 (tokens)")
    if long is not None:
        check_int("long", long, 1)
    doc = torch.as_tensor(where["doc"], dtype=torch.long)
    offset, q = torch.as_tensor(where["offset"], dtype=torch.long), torch.as_tensor(where["q"], dtype=torch.long)
    if long is None:  # sequences are the pieces themselves
        keys = doc * (1 << 32) + offset
        uk, seq = torch.unique(keys, return_inverse=True)
        seqs = torch.zeros(len(uk), n_ctx, dtype=torch.long)
        for s_, k in enumerate(uk.tolist()):
            i, off = divmod(k, 1 << 32)
            piece = torch.as_tensor(docs[i]["ids"])[off : off + n_ctx]
            seqs[s_, : len(piece)] = piece
        return WindowBag(seqs, seq, q, torch.zeros_like(q), V, ell)
    ud, seq = torch.unique(doc, return_inverse=True)
    n_max = max(len(docs[i]["ids"]) for i in ud.tolist())
    seqs = torch.zeros(len(ud), n_max, dtype=torch.long)
    for s_, i in enumerate(ud.tolist()):
        seqs[s_, : len(docs[i]["ids"])] = torch.as_tensor(docs[i]["ids"])
    pos = offset + q
    return WindowBag(seqs, seq, pos, (pos - long + 1).clamp_min(0), V, None)
