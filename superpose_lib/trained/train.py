"""Trained versus constructed: the book's task learned by gradient descent (book: "Trained
versus constructed").

The interface is the construction's own. The input is the embedded first pre-activation
A^0 = Σ_{t active} (w_t a_t^0) ⊗ e_t^1 and layer 1 is A^1 = ReLU(A^0 + b) (the layer-0
trick); each circuit is read out from its neurons as â_t^l = (1/S)⟨e_t^l|A^l⟩. What is
learned are the hidden layers' dense weights W^2..W^L (D × D) and biases (D each):

    A^l = ReLU(W^l A^{l−1} + b^l),   l = 2..L.

With init "construction" W^l and b^l start at the construction's (`dense_weight`, the bias
b ⊗ 1), so steps = 0 is the construction itself and `trained_errors` then reproduces
`rotation_errors` at the same seed. Data: fresh active sets and unit-vector payloads every
step (an infinite stream: nothing to memorise, and the labels are the small circuits'
own activations, no mixing matrix). The loss is over every circuit (active ones against
their small circuit's activations, inactive ones against 0) at every layer l = 2..L:

    e_t^l = |â_t^l − a_t^l|²,   "mse": ⟨Σ_t e_t^l⟩,   "outlier": ⟨Σ_t e_t^l + (e_t^l)²/τ²⟩,

with τ = Q90_DX_MAX = 1/4: above an error of τ the quartic term dominates, so one large
error costs more than many small ones (the criterion "works" is about the worst circuits,
not the mean).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..core import cache
from ..core.checks import CIRCUIT_WIDTH, check_device, check_dtype, check_fits, check_int, check_real, checked
from ..core.circuits import encode_input, run_circuits
from ..core.config import CiSConfig
from ..core.criteria import Q90_DX_MAX, failures
from ..core.experiment import (
    build_network,
    network_bytes,
    rotation_run,
    sample_active,
    sample_unit_vectors,
    seeded_experiment,
)
from ..core.network import StructuredNetwork, SuperposedNetwork
from ..core.theory import control_parameter

__all__ = [
    "INITS",
    "LOSSES",
    "TrainConfig",
    "DenseNetwork",
    "train_superposed",
    "train_bytes",
    "cached_train",
    "trained_errors",
    "mechanism",
    "dedicated_errors",
    "trained_rows",
]

INITS = ("construction", "noisy", "random")
LOSSES = ("mse", "outlier")
#: Largest D trained on dense weights: L·D² parameters, plus Adam's two moments.
D_TRAIN_MAX = 8192


@dataclass(frozen=True)
class TrainConfig:
    """One training run. D, T, z, L: the task (`CiSConfig`, S = 6, d = 4); init: the
    starting weights ("construction", "noisy" = construction + noise·rms(W)·N(0, 1),
    "random" = Kaiming-normal W, zero bias); loss: "mse" or "outlier" (module docstring);
    steps of Adam at learning rate lr on batches of `batch` fresh samples."""

    D: int
    T: int
    z: int = 2
    L: int = 4
    init: str = "random"
    loss: str = "outlier"
    steps: int = 1000
    batch: int = 256
    lr: float = 1e-3
    noise: float = 0.1

    def __post_init__(self) -> None:
        cfg = CiSConfig(D=check_int("D", self.D, 4, D_TRAIN_MAX), T=self.T, z=self.z, L=self.L)
        for name in ("D", "T", "z", "L"):
            object.__setattr__(self, name, getattr(cfg, name))
        if cfg.L < 2:
            raise ValueError(f"L={cfg.L} is out of range: allowed 2 <= L (layer 1 is the fixed interface)")
        if self.init not in INITS:
            raise ValueError(f"init={self.init!r} is not allowed: one of {INITS}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r} is not allowed: one of {LOSSES}")
        object.__setattr__(self, "steps", check_int("steps", self.steps, 0, 10**8))
        object.__setattr__(self, "batch", check_int("batch", self.batch, 1, 2**16))
        object.__setattr__(self, "lr", check_real("lr", self.lr, 0.0, 1.0, open_low=True))
        object.__setattr__(self, "noise", check_real("noise", self.noise, 0.0, 10.0))

    @property
    def cis(self) -> CiSConfig:
        return CiSConfig(D=self.D, T=self.T, z=self.z, L=self.L)


class DenseNetwork(StructuredNetwork):
    """The construction's interface around learned dense layers: W [L−1, D, D] and b
    [L−1, D] for layers 2..L (neuron i·M + n, as `SuperposedNetwork.dense_weight`).
    `layer` works in the book's [M, d, B] layout (so `rotation_run` measures it like every
    other network); `forward_flat` is the training path in [B, D]."""

    def __init__(self, base: SuperposedNetwork, W: torch.Tensor, b: torch.Tensor):
        super().__init__(base.w, base.idx, base.M, base.w_bar, base.bias)
        self.W = nn.Parameter(W.clone())
        self.b = nn.Parameter(b.clone())
        self.layers = [None] * base.L

    def layer(self, l: int, A_prev: torch.Tensor, G_prev=None, *, work=None) -> torch.Tensor:
        if l == 1:
            return torch.relu(A_prev + self.bias[None, :, None])
        M, d, B = A_prev.shape
        flat = A_prev.permute(2, 1, 0).reshape(B, d * M)
        out = torch.relu(flat @ self.W[l - 2].T + self.b[l - 2])
        return out.view(B, d, M).permute(2, 1, 0)

    def readouts_flat(self, A: torch.Tensor, l: int) -> torch.Tensor:
        """â_t^l for every circuit from A [B, D]: [B, d, T]."""
        B = A.shape[0]
        return A.view(B, self.d, self.M)[:, :, self.idx[l - 1]].sum(-1) / self.S

    def forward_flat(self, A0: torch.Tensor) -> list[torch.Tensor]:
        """[A^1, ..., A^L], each [B, D], from A^0 [B, D]."""
        out = [torch.relu(A0 + self.bias.repeat_interleave(self.M))]
        for l in range(2, self.L + 1):
            out.append(torch.relu(out[-1] @ self.W[l - 2].T + self.b[l - 2]))
        return out


def _init_weights(cfg: TrainConfig, base: SuperposedNetwork, g: torch.Generator):
    D, L = cfg.D, cfg.L
    dtype, device = base.w.dtype, base.w.device
    if cfg.init == "random":
        W = torch.randn(L - 1, D, D, generator=g, dtype=torch.float64) * math.sqrt(2.0 / D)
        return W.to(device=device, dtype=dtype), torch.zeros(L - 1, D, dtype=dtype, device=device)
    W = torch.stack([base.dense_weight(l) for l in range(2, L + 1)])
    b = base.bias.repeat_interleave(base.M).expand(L - 1, D).clone()
    if cfg.init == "noisy":
        rms = W.double().pow(2).mean().sqrt()
        W = W + (cfg.noise * rms * torch.randn(W.shape, generator=g, dtype=torch.float64)).to(device=device, dtype=dtype)
    return W, b


def _errors(net: DenseNetwork, active: torch.Tensor, x0: torch.Tensor) -> list[torch.Tensor]:
    """â_t^l − a_t^l for every circuit at layers 2..L: a list of [B, d, T] (inactive
    circuits' targets are 0)."""
    B, z = active.shape
    a0 = encode_input(torch.ones(B, z, dtype=torch.float64), x0).to(net.w.dtype)
    truth = run_circuits(net.w[active], a0, net.L, net.bias)  # [L+1, B, z, d]
    A0 = net.embed(active, a0).permute(2, 1, 0).reshape(B, -1)
    rows = torch.arange(B, device=active.device)[:, None].expand(B, z)
    out = []
    for l, A in enumerate(net.forward_flat(A0)[1:], start=2):  # layer 1 is the fixed interface
        target = torch.zeros(B, net.T, net.d, dtype=A.dtype, device=A.device).index_put_((rows, active), truth[l])
        out.append(net.readouts_flat(A, l) - target.transpose(1, 2))
    return out


def _loss(net: DenseNetwork, active: torch.Tensor, x0: torch.Tensor, kind: str) -> torch.Tensor:
    total = 0.0
    for err in _errors(net, active, x0):
        e = err.pow(2).sum(1)  # [B, T]
        total = total + e.sum(1).mean()
        if kind == "outlier":
            total = total + (e.pow(2) / Q90_DX_MAX**2).sum(1).mean()
    return total / (net.L - 1)


def _train_generator(seed: int) -> torch.Generator:
    # the training stream's own generator: the seed's draws of the construction and of
    # the evaluation (`trained_errors`) stay those of `rotation_errors`
    return torch.Generator().manual_seed((seed + 0x9E3779B97F4A7C15) % 2**63)


def _setup(cfg: TrainConfig, seed: int, dev, dtype) -> tuple[DenseNetwork, torch.Generator]:
    g = torch.Generator().manual_seed(seed)
    base, _ = build_network(cfg.cis, g, device=dev, dtype=dtype)
    eval_state = g.get_state()
    gt = _train_generator(seed)
    W, b = _init_weights(cfg, base, gt)
    net = DenseNetwork(base, W, b)
    net.eval_state, net.z = eval_state, cfg.z
    return net, gt


def _fit(net: DenseNetwork, cfg: TrainConfig, gt: torch.Generator, progress: bool) -> dict:
    history = {"step": [], "loss": [], "seconds": []}
    if not cfg.steps:
        return history
    dev = net.w.device
    opt = torch.optim.Adam([net.W, net.b], lr=cfg.lr)
    t0 = time.perf_counter()
    steps_iter = range(1, cfg.steps + 1)
    if progress:
        from tqdm.auto import tqdm

        steps_iter = tqdm(steps_iter, desc=f"train D={cfg.D} T={cfg.T} {cfg.init}", leave=False)
    every = max(1, cfg.steps // 50)
    for step in steps_iter:
        active = sample_active(cfg.T, cfg.z, cfg.batch, gt).to(dev)
        x0 = sample_unit_vectors((cfg.batch, cfg.z), gt).to(dev)
        opt.zero_grad(set_to_none=True)
        value = _loss(net, active, x0, cfg.loss)
        value.backward()
        opt.step()
        if step % every == 0 or step == cfg.steps or step == 1:
            history["step"].append(step)
            history["loss"].append(float(value.detach()))
            history["seconds"].append(time.perf_counter() - t0)
    return history


@checked
def train_bytes(D: int, T: int, L: int, batch: int, *, z: int = 2, itemsize: int = 4) -> int:
    """Estimated peak memory (bytes) of `train_superposed(D, T, z=z, L=L, batch=batch)`: a
    closed form of the sizes, for refusing before anything is allocated.

    Weights: W [L−1, D, D] held about seven times (the parameter, its gradient, Adam's two
    moments, the construction's dense layers while they are stacked, and a random or noisy
    init drawn in float64); per step: the L activations [B, D] with their gradients and ReLU
    masks (four copies), per layer l ≥ 2 the [B, T, d] targets, readouts and errors with
    their gradients (five copies), the float64 truth [L+1, B, z, d]; and the construction
    itself (`experiment.network_bytes`)."""
    d = CIRCUIT_WIDTH
    W = (L - 1) * D * D
    step = itemsize * batch * (4 * L * D + 5 * (L - 1) * T * d) + 16 * (L + 1) * batch * z * d
    return int(network_bytes(D, T, 6, L, d, itemsize=itemsize) + W * (5 * itemsize + 16) + step)


@checked
def train_superposed(D: int, T: int, *, z: int = 2, L: int = 4, init: str = "random", loss: str = "outlier",
                     steps: int = 1000, seed: int = 0, batch: int = 256, lr: float = 1e-3, noise: float = 0.1,
                     device="cpu", dtype=torch.float32, progress: bool = False):
    """Train the dense hidden layers on the book's task (module docstring).

    The construction is drawn exactly as `seeded_experiment` draws it (generator seeded
    with `seed`: angles, then layer permutations), so the circuits, the embedding and the
    readout are those of `rotation_errors(D, T, z=z, L=L, seed=seed)`; the training data
    and a random init come from a second generator. Returns (net, history) with history a
    dict of lists: step, loss, seconds (the loss at step 1 and then every steps/50)."""
    cfg = TrainConfig(D=D, T=T, z=z, L=L, init=init, loss=loss, steps=steps, batch=batch, lr=lr, noise=noise)
    dev, dtype = check_device(device), check_dtype(dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    check_fits(f"training {cfg.L - 1} dense layers",
               lambda D, T, batch: train_bytes(D, T, cfg.L, batch, z=cfg.z, itemsize=itemsize),
               {"D": cfg.D, "T": cfg.T, "batch": cfg.batch}, {"D": 4, "T": 1, "batch": 1}, dev)
    net, gt = _setup(cfg, seed, dev, dtype)
    history = _fit(net, cfg, gt, progress)
    net.requires_grad_(False)
    return net, history


def source_digest() -> str:
    """The cache key's code part: this module, the core package and the torch version."""
    core = Path(__file__).resolve().parent.parent / "core"
    return cache.source_digest_of(Path(__file__), *sorted(core.glob("*.py")), extra=f"torch {torch.__version__}")


@checked
def cached_train(D: int, T: int, *, z: int = 2, L: int = 4, init: str = "random", loss: str = "outlier",
                 steps: int = 1000, seed: int = 0, batch: int = 256, lr: float = 1e-3, noise: float = 0.1,
                 device="cpu", dtype=torch.float32, progress: bool = False,
                 root: str | os.PathLike | None = None):
    """`train_superposed`, or its checkpoint: safetensors under `root` (default
    `core.cache.model_cache_dir()`), keyed by the configuration, the seed, the dtype and
    `source_digest()`. Returns (net, history); history["cached"] says which."""
    cfg = TrainConfig(D=D, T=T, z=z, L=L, init=init, loss=loss, steps=steps, batch=batch, lr=lr, noise=noise)
    dev, dtype = check_device(device), check_dtype(dtype)
    parts = {"config": asdict(cfg), "seed": int(seed), "dtype": str(dtype), "source": source_digest()}
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(root or cache.model_cache_dir()) / f"trained-{key}.safetensors"
    net, gt = _setup(cfg, seed, dev, dtype)
    if path.is_file():
        try:
            sd = load_file(str(path))
            with safe_open(str(path), "pt") as fh:
                history = json.loads((fh.metadata() or {})["history"])
            with torch.no_grad():
                net.W.copy_(sd["W"]), net.b.copy_(sd["b"])
        except Exception as e:  # a truncated or foreign file: say which, and how to recover
            raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}); delete it to retrain") from None
        net.requires_grad_(False)
        return net, {**history, "cached": True}
    history = _fit(net, cfg, gt, progress)
    net.requires_grad_(False)
    if not cfg.steps:  # nothing learned: the weights are the init, rebuilt in milliseconds
        return net, {**history, "cached": False}
    sd = {"W": net.W.detach().cpu().contiguous(), "b": net.b.detach().cpu().contiguous()}
    cache.atomic_write(path, lambda p: save_file(sd, p, metadata={"key_parts": json.dumps(parts),
                                                                   "history": json.dumps(history)}),
                       suffix=".safetensors")
    return net, {**history, "cached": False}


@checked
def trained_errors(net: DenseNetwork, *, batch: int = 500) -> dict:
    """`rotation_errors`'s statistics (same keys) of a trained network, on the draws that
    `rotation_errors` makes at the network's seed: the active sets and inputs that follow
    the construction's draws in the same generator."""
    active, x0 = _eval_draws(net, batch)
    with torch.no_grad():
        return rotation_run(net, active, x0).stats()


def _eval_draws(net, batch: int):
    g = torch.Generator()
    g.set_state(net.eval_state)
    dev = net.w.device
    return sample_active(net.T, net.z, batch, g).to(dev), sample_unit_vectors((batch, net.z), g).to(dev)


@checked
def mechanism(net: DenseNetwork, *, batch: int = 2000) -> dict:
    """What the learned layers do, on `trained_errors`' draws (layer L unless said):

    - served: circuits whose mean payload error |δx| over the samples where they are active
      is ≤ Q90_DX_MAX (circuits never active in the batch do not count): more than D/d
      served means more circuits computed than dedicated neurons could hold;
    - dx_circuit_spread: the 90th / 10th percentile of those per-circuit errors (a network
      that solves some circuits and ignores the rest has a wide spread);
    - on_gap: the 1st percentile of the active circuits' α̂ minus the 99.9th of the inactive
      ones' (> 0: a step-like on-indicator separates them);
    - inactive_rms: the rms readout of inactive circuits (0: they stay silent);
    - support: the fraction of ‖W^l‖² on the construction's non-zero entries (its blocks),
      for l = 2..L together, and block_share, the fraction of entries those blocks cover (a
      matrix with no preference for the blocks has support ≈ block_share); participation:
      (Σ|W|)² / (N Σ W²) over the N entries, 2/π for Gaussian entries and ≈ the fraction of
      entries used for a sparse matrix."""
    itemsize = net.W.element_size()

    D = net.M * net.d

    def need(batch):  # the L − 1 layers' [B, d, T] errors and float64 copies, [B, T] masks; W's masks and float64 copy
        return batch * net.T * (net.d * ((net.L - 1) * 3 * itemsize + 3 * 8) + 8 * 8) + (net.L - 1) * D * D * (itemsize + 9)

    check_fits("the mechanism measures", need, {"batch": batch}, {"batch": 1}, net.w.device)
    active, x0 = _eval_draws(net, batch)
    with torch.no_grad():
        err = _errors(net, active, x0)[-1].double()  # [B, d, T], layer L
        B = active.shape[0]
        rows = torch.arange(B, device=active.device)[:, None].expand_as(active)
        on_mask = torch.zeros(B, net.T, dtype=torch.bool, device=active.device)
        on_mask[rows, active] = True
        dx = err[:, 1:, :].pow(2).sum(1).sqrt()  # [B, T]
        count = on_mask.sum(0)
        mean_dx = (dx * on_mask).sum(0) / count.clamp(min=1)
        seen = count > 0
        per = mean_dx[seen]
        alpha = err[:, 0, :] + on_mask.double()  # â = error + target (the target of α is 1 when on)
        base = SuperposedNetwork(net.w, net.idx, net.M, net.w_bar, net.bias)
        W = net.W.double()
        mask = torch.stack([base.dense_weight(l) != 0 for l in range(2, net.L + 1)])
        q = torch.tensor([0.1, 0.9], dtype=torch.float64)
        p10, p90 = torch.quantile(per, q).tolist()
        return {
            "served": int((per <= Q90_DX_MAX).sum()),
            "dedicated": net.M,  # D/d
            "dx_circuit_spread": p90 / max(p10, 1e-12),
            "on_gap": float(torch.quantile(alpha[on_mask], 0.01) - torch.quantile(alpha[~on_mask], 0.999)),
            "inactive_rms": float(err[:, 1:, :].pow(2).sum(1)[~on_mask].mean().sqrt()),
            "support": float(W.pow(2)[mask].sum() / W.pow(2).sum()),
            "block_share": float(mask.double().mean()),
            "participation": float(W.abs().sum() ** 2 / (W.numel() * W.pow(2).sum())),
        }


@checked
def dedicated_errors(D: int, T: int, *, z: int = 2, L: int = 4, seed: int = 0, batch: int = 500) -> dict:
    """The no-superposition network at layer L: circuits t < D/d on their own d neurons,
    computed exactly; the others left at 0 (dropped when active, silent when not). Scored
    on `rotation_errors`' active sets at this seed: false_on = 0, false_off = the fraction
    of active circuits with t ≥ D/d, |δx| = 1 for those and 0 for the rest."""
    _, active, _ = seeded_experiment(D, T, z=z, L=L, seed=seed, batch=batch)
    dropped = (active >= D // CIRCUIT_WIDTH).double().flatten()
    return {"false_on": 0.0, "false_off": float(dropped.mean()), "q90_dx": float(torch.quantile(dropped, 0.9)),
            "worst_dx": float(dropped.max()), "served": min(T, D // CIRCUIT_WIDTH)}


@checked
def trained_rows(D: int, T: int, z: int, L: int, seed: int, *, init: str = "random", loss: str = "outlier",
                 steps: int = 1000, batch: int = 256, lr: float = 1e-3, noise: float = 0.1,
                 eval_batch: int = 2000, device="cpu", root: str | os.PathLike | None = None) -> list[dict]:
    """One trained network as a tidy row (for `sweep`): the task (D, T, x = T(d/D)², T over
    D/d, z, L), the recipe, the first and final loss, training seconds (those of the run
    that made the checkpoint), the layer-L statistics with criterion (a) "works" and its
    failures, and `mechanism`'s measures. steps = 0 with init "construction" is the
    construction itself, measured by the same code."""
    net, hist = cached_train(D, T, z=z, L=L, init=init, loss=loss, steps=steps, seed=seed, batch=batch,
                             lr=lr, noise=noise, device=device, root=root)
    st = trained_errors(net, batch=eval_batch)
    fails = failures(st, L)
    row = {"D": D, "T": T, "x": control_parameter(D, T), "T_over_dedicated": T / (D // CIRCUIT_WIDTH), "z": z,
           "L": L, "seed": seed, "init": init, "loss": loss, "steps": steps,
           "first_loss": hist["loss"][0] if hist["loss"] else float("nan"),
           "final_loss": hist["loss"][-1] if hist["loss"] else float("nan"),
           "seconds": hist["seconds"][-1] if hist["seconds"] else 0.0,
           "works": not fails, "why": "; ".join(fails)}
    for k in ("false_on", "false_off", "q90_dx", "worst_dx", "active_x", "inactive_x", "spurious_on"):
        row[k] = float(st[k][L])
    row.update(mechanism(net, batch=eval_batch))
    return [row]
