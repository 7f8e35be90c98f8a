"""Trained versus constructed: the book's task learned by gradient descent (book: "Trained
versus constructed").

The interface is the construction's own. The input is the embedded first pre-activation
A^0 = Σ_{t active} E_t (w_t a_t^0) with E_t = 1_d ⊗ e_t^1 (the layer-0 trick), layer 1 is
A^1 = ReLU(A^0 + b^1), and each circuit is read out as â_t^l = R_t^l A^l with
R_t^l = (1/S) 1_d ⊗ ⟨e_t^l| (the S-hot readout). What is learned are the hidden layers'
dense weights W^2..W^L (D × D) and biases (D each):

    A^l = ReLU(W^l A^{l−1} + b^l),   l = 2..L.

Variants: "dense" (the above), "linear" (no ReLU in layers 2..L: the linear model), and
"code" (E_t, b^1 and the readouts R_t^2..R_t^L are learned too, starting at the S-hot ones:
does gradient descent find a better code than the construction's?).

With init "construction" W^l and b^l start at the construction's (`dense_weight`, the bias
b ⊗ 1), so steps = 0 is the construction itself and `trained_errors` then reproduces
`rotation_errors` at the same seed. Data: fresh active sets and unit-vector payloads every
step (an infinite stream: nothing to memorise; the labels are the small circuits' own
activations a_t^l, no mixing matrix).

Losses, per trained layer l = 2..L, summed over circuits and averaged over the batch and
the layers (δa_t = â_t − a_t in the circuits' d = 4 coordinates, inactive targets 0;
δα, δx the decoded errors of `core.circuits.decode`; τ = Q90_DX_MAX = 1/4):

    "mse":      Σ_t |δa_t|²                                   (every circuit, inactive → 0)
    "outlier":  Σ_t e_t + e_t²/τ²,  e_t = |δa_t|²              (the same, large errors × e/τ²)
    "hinge":    Σ_{t on} (ε_t + ε_t²/τ²) + 4 Σ_t h_t²,  ε_t = |δx_t|²,
                h_t = ReLU(3/4 − α̂_t) if t is on, ReLU(α̂_t − 1/4) if off.

"hinge" is criterion (a) written as a loss: the active payloads with the outlier term, and
every on-indicator kept beyond a margin of 1/4 on its side of the threshold 1/2 (RiS's step
has its dead zone and saturation there); an inactive circuit's payload readout is free, as
(a) leaves it. The factor 4 gives a margin miss of size u the weight of a payload error of
2u: one on-indicator on the wrong side fails (a) at a rate of 10⁻³, a payload only when 10 %
of them are off.

Training: Adam with a linear warm-up over the first 5 % of steps and a cosine decay to 0
(the worst circuits, which (a) reads, keep moving at a constant rate); on the CPU the
dense products run in bfloat16 (`mixed`, float32 weights and accumulation; measured 4.7×
float32's matmul rate on an AVX-512-BF16 CPU); evaluation is always in the network's dtype.
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
from ..core.assignment import max_circuits
from ..core.checks import CIRCUIT_WIDTH, check_device, check_dtype, check_fits, check_int, check_real, checked
from ..core.circuits import encode_input, run_circuits
from ..core.config import CiSConfig
from ..core.criteria import Q90_DX_MAX, failures
from ..core.experiment import build_network, network_bytes, rotation_run, sample_active, sample_unit_vectors
from ..core.network import StructuredNetwork, SuperposedNetwork

__all__ = [
    "INITS",
    "LOSSES",
    "VARIANTS",
    "TrainConfig",
    "DenseNetwork",
    "train_superposed",
    "train_bytes",
    "cached_train",
    "trained_errors",
    "eval_draws",
    "circuit_targets",
    "max_trainable_T",
]

INITS = ("random", "construction", "noisy")
LOSSES = ("mse", "outlier", "hinge")
VARIANTS = ("dense", "linear", "code")
#: Largest D trained on dense weights: L·D² parameters, plus Adam's two moments.
D_TRAIN_MAX = 8192
#: The interface's redundancy: each circuit's input and readout use S neurons per block.
S_INTERFACE = 6
#: The hinge loss's on-indicator margin around ON_THRESHOLD = 1/2, and its weight.
MARGIN, ALPHA_WEIGHT = 0.25, 4.0


@checked
def max_trainable_T(D: int) -> int:
    """The most circuits the S-hot interface holds at width D: CiS2's prime-step
    assignment with S = 6 in M = D/d positions (`core.assignment.max_circuits`)."""
    D = check_int("D", D, 4)
    return max_circuits(D // CIRCUIT_WIDTH, S_INTERFACE)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. D, T, z, L: the task (`CiSConfig`, S = 6, d = 4; T at most
    `max_trainable_T(D)`); init: "random" (Kaiming-normal W, zero bias), "construction" or
    "noisy" (the construction + noise·rms(W^l)·N(0, 1) per layer); loss and variant: module
    docstring; `steps` of Adam at peak learning rate lr on batches of `batch` fresh samples;
    mixed: bfloat16 products in training."""

    D: int
    T: int
    z: int = 2
    L: int = 3
    init: str = "random"
    loss: str = "hinge"
    variant: str = "dense"
    steps: int = 1000
    batch: int = 256
    lr: float = 3e-3
    noise: float = 0.5
    mixed: bool = True

    def __post_init__(self) -> None:
        D = check_int("D", self.D, 4, D_TRAIN_MAX)
        if D % CIRCUIT_WIDTH:
            raise ValueError(
                f"D={D} is out of range: allowed a multiple of d = {CIRCUIT_WIDTH} (D/d neurons per block)"
            )
        if D // CIRCUIT_WIDTH < 2 * S_INTERFACE:
            raise ValueError(
                f"D={D} is out of range: allowed D >= {2 * S_INTERFACE * CIRCUIT_WIDTH} "
                f"(the S = {S_INTERFACE} interface needs D/d >= {2 * S_INTERFACE})"
            )
        cap = max_trainable_T(D)
        T = check_int("T", self.T, 1, cap)
        cfg = CiSConfig(D=D, T=T, z=self.z, L=self.L)
        for name in ("D", "T", "z", "L"):
            object.__setattr__(self, name, getattr(cfg, name))
        if cfg.L < 2:
            raise ValueError(f"L={cfg.L} is out of range: allowed 2 <= L (layer 1 is the fixed interface)")
        for name, allowed in (("init", INITS), ("loss", LOSSES), ("variant", VARIANTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: one of {allowed}")
        object.__setattr__(self, "steps", check_int("steps", self.steps, 0, 10**8))
        object.__setattr__(self, "batch", check_int("batch", self.batch, 1, 2**16))
        object.__setattr__(self, "lr", check_real("lr", self.lr, 0.0, 1.0, open_low=True))
        object.__setattr__(self, "noise", check_real("noise", self.noise, 0.0, 10.0))
        if not isinstance(self.mixed, bool):
            raise ValueError(f"mixed={self.mixed!r} is not allowed: True or False")

    @property
    def cis(self) -> CiSConfig:
        return CiSConfig(D=self.D, T=self.T, z=self.z, L=self.L)


class DenseNetwork(StructuredNetwork):
    """The construction's interface around learned dense layers: W [L−1, D, D] and b
    [L−1, D] for layers 2..L (neuron i·M + n, as `SuperposedNetwork.dense_weight`).
    `layer`/`layers_iter` work in the book's [M, d, B] layout (so `rotation_run` measures it
    like every other network); `forward_flat` is the training path in [B, D].

    The S-hot interface as matrices: P [L, T, M], P[l−1, t, n] = 1 for n ∈ e_t^l, so that
    the embedding writes w_t a_t^0 through P[0] into every block and the readout of block k
    is (1/S) P[l−1] A_k. variant "linear" drops the ReLU of layers 2..L; "code" learns a
    code of the same layout (coordinate k of every circuit in block k, any real weights
    within the block): E [d, T, M] (embedding, from P[0]), b1 [D] (layer 1's bias) and R
    [L−1, d, T, M] (readouts of layers 2..L, from P/S; layer 1 keeps the S-hot readout,
    which no loss term reads)."""

    def __init__(self, base: SuperposedNetwork, W: torch.Tensor, b: torch.Tensor, *, variant: str = "dense"):
        super().__init__(base.w, base.idx, base.M, base.w_bar, base.bias)
        self.variant = variant
        # one parameter per layer: a slice of one stacked parameter would cost a zero-filled
        # gradient of the whole stack per layer and step in the backward pass
        self.Ws = nn.ParameterList([nn.Parameter(w.clone()) for w in W])
        self.bs = nn.ParameterList([nn.Parameter(v.clone()) for v in b])
        self.layers = [None] * base.L
        L, T, S = self.idx.shape
        P = torch.zeros(L, T, self.M, dtype=self.w.dtype, device=self.w.device)
        P.scatter_(2, self.idx, 1.0)
        self.register_buffer("P", P)
        self.register_buffer("P_read", P / S)  # the S-hot readouts (1/S)⟨e_t^l|
        if variant == "code":
            d = self.d
            self.E = nn.Parameter(P[0].expand(d, T, self.M).clone())
            self.b1 = nn.Parameter(self.bias.repeat_interleave(self.M).clone())
            self.R = nn.Parameter((P[1:] / S)[:, None].expand(L - 1, d, T, self.M).clone())

    @property
    def W(self) -> torch.Tensor:
        """W^2..W^L as one [L−1, D, D] tensor (a copy)."""
        return torch.stack([w.detach() for w in self.Ws])

    @property
    def b(self) -> torch.Tensor:
        """b^2..b^L as one [L−1, D] tensor (a copy)."""
        return torch.stack([v.detach() for v in self.bs])

    def load_layers(self, W: torch.Tensor, b: torch.Tensor) -> None:
        """Set W^2..W^L and b^2..b^L from [L−1, D, D] and [L−1, D] tensors."""
        with torch.no_grad():
            for p, v in zip(self.Ws, W):
                p.copy_(v)
            for p, v in zip(self.bs, b):
                p.copy_(v)

    # ---- the [M, d, B] path (rotation_run) ----------------------------------------------------
    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.variant == "linear" else torch.relu(x)

    def layer(self, l: int, A_prev: torch.Tensor, G_prev=None, *, work=None) -> torch.Tensor:
        M, d, B = A_prev.shape
        flat = A_prev.permute(2, 1, 0).reshape(B, d * M)
        if l == 1:
            out = torch.relu(flat + self._b1())
        else:
            out = self._act(flat @ self.Ws[l - 2].T + self.bs[l - 2])
        return out.view(B, d, M).permute(2, 1, 0)

    def embed(self, active: torch.Tensor, a0: torch.Tensor) -> torch.Tensor:
        if self.variant != "code":
            return super().embed(active, a0)
        B = active.shape[0]
        return self._embed_flat(active, a0).view(B, self.d, self.M).permute(2, 1, 0)

    def layers_iter(self, A0: torch.Tensor):
        if self.variant != "code":
            yield from super().layers_iter(A0)
            return
        A = A0
        for l in range(1, self.L + 1):
            A = self.layer(l, A)
            M, d, B = A.shape
            flat = A.permute(2, 1, 0).reshape(B, d * M)
            G = self.S * self.readouts_flat(flat, l).permute(1, 2, 0).contiguous()  # S·â [T, d, B]
            yield l, A, G

    # ---- the training path ([B, D]) ------------------------------------------------------------
    def _b1(self) -> torch.Tensor:
        return self.b1 if self.variant == "code" else self.bias.repeat_interleave(self.M)

    def _embed_flat(self, active: torch.Tensor, a0: torch.Tensor) -> torch.Tensor:
        """A^0 [B, D]: Σ_{t active} w_t a_t^0 through the embedding, block by block."""
        B = active.shape[0]
        v = torch.einsum("bzij,bzj->bzi", self.w[active], a0)  # w_t a_t^0: [B, z, d]
        if self.variant == "code":
            return torch.einsum("bzk,kbzm->bkm", v, self.E[:, active]).reshape(B, -1)
        return torch.einsum("bzk,bzm->bkm", v, self.P[0][active]).reshape(B, -1)

    def readouts_flat(self, A: torch.Tensor, l: int, *, mixed: bool = False) -> torch.Tensor:
        """â_t^l for every circuit from A [B, D]: [B, T, d], block by block (one
        [B, M] × [M, T] product per block; mixed: in bfloat16, float32 accumulation)."""
        B, d, M, T = A.shape[0], self.d, self.M, self.T
        with torch.autocast(A.device.type, dtype=torch.bfloat16, enabled=mixed):
            if self.variant == "code" and l >= 2:
                out = torch.bmm(A.view(B, d, M).transpose(0, 1), self.R[l - 2].transpose(1, 2)).permute(1, 0, 2)
            else:
                out = (A.view(B * d, M) @ self.P_read[l - 1].T).view(B, d, T)
        return out.to(A.dtype).transpose(1, 2)

    def alpha_readouts(self, A: torch.Tensor, l: int, *, mixed: bool = False) -> torch.Tensor:
        """α̂_t^l = â_{t,0} − â_{t,1} for every circuit from A [B, D]: [B, T] (one product)."""
        B = A.shape[0]
        Ab = A.view(B, self.d, self.M)
        with torch.autocast(A.device.type, dtype=torch.bfloat16, enabled=mixed):
            if self.variant == "code" and l >= 2:
                R = self.R[l - 2]
                out = Ab[:, 0] @ R[0].T - Ab[:, 1] @ R[1].T
            else:
                out = (Ab[:, 0] - Ab[:, 1]) @ self.P_read[l - 1].T
        return out.to(A.dtype)

    def active_readouts(self, A: torch.Tensor, l: int, active: torch.Tensor) -> torch.Tensor:
        """â_t^l of the active circuits only: [B, z, d]."""
        B = A.shape[0]
        Ab = A.view(B, self.d, self.M)
        if self.variant == "code" and l >= 2:
            return torch.einsum("bkm,kbzm->bzk", Ab, self.R[l - 2][:, active])
        return torch.einsum("bkm,bzm->bzk", Ab, self.P_read[l - 1][active])

    def forward_flat(self, active: torch.Tensor, a0: torch.Tensor, *, mixed: bool = False) -> list[torch.Tensor]:
        """[A^1, ..., A^L], each [B, D], for active sets [B, z] with inputs a0 [B, z, d];
        mixed: the dense layers' products in bfloat16 (float32 accumulation)."""
        A0 = self._embed_flat(active, a0)
        out = [torch.relu(A0 + self._b1())]
        dev = A0.device.type
        for l in range(2, self.L + 1):
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=mixed):
                pre = out[-1] @ self.Ws[l - 2].T
            out.append(self._act(pre.to(A0.dtype) + self.bs[l - 2]))
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
        rms = W.double().pow(2).mean((1, 2), keepdim=True).sqrt()
        W = W + (cfg.noise * rms * torch.randn(W.shape, generator=g, dtype=torch.float64)).to(
            device=device, dtype=dtype
        )
    return W, b


@checked
def circuit_targets(net: DenseNetwork, active: torch.Tensor, x0: torch.Tensor):
    """a0 [B, z, d] (network dtype), the small circuits' a_t^l [L+1, B, z, d] and the on mask
    [B, T]."""
    B, z = active.shape
    a0 = encode_input(torch.ones(B, z, dtype=torch.float64), x0)
    truth = run_circuits(net.w[active].double(), a0.to(active.device), net.L, net.bias.double()).to(net.w.dtype)
    on = torch.zeros(B, net.T, dtype=torch.bool, device=active.device)
    on[torch.arange(B, device=active.device)[:, None], active] = True
    return a0.to(device=active.device, dtype=net.w.dtype), truth, on


def _loss(net: DenseNetwork, active: torch.Tensor, x0: torch.Tensor, kind: str, *, mixed: bool = False):
    B, z = active.shape
    a0, truth, on = circuit_targets(net, active, x0)
    total = 0.0
    for l, A in enumerate(net.forward_flat(active, a0, mixed=mixed)[1:], start=2):
        if kind == "hinge":  # every circuit's α̂, and the active circuits' payloads: no [B, T, d] readout
            err = net.active_readouts(A, l, active) - truth[l]  # δa of the active circuits [B, z, d]
            d_alpha = err[..., 0] - err[..., 1]
            eps = (err[..., 2:] - d_alpha[..., None]).pow(2).sum(-1)  # |δx|² [B, z]
            h_on = torch.relu(1 - MARGIN - (d_alpha + truth[l][..., 0] - truth[l][..., 1]))
            h_off = torch.relu(net.alpha_readouts(A, l, mixed=mixed) - MARGIN).masked_fill(on, 0.0)
            per = (eps + eps.pow(2) / Q90_DX_MAX**2).sum(1) + ALPHA_WEIGHT * (h_on.pow(2).sum(1) + h_off.pow(2).sum(1))
        else:
            rows = torch.arange(B, device=active.device)[:, None].expand(B, z)
            err = net.readouts_flat(A, l, mixed=mixed).index_put((rows, active), -truth[l], accumulate=True)
            e = err.pow(2).sum(-1)  # |δa_t|² [B, T]
            per = (e + e.pow(2) / Q90_DX_MAX**2 if kind == "outlier" else e).sum(1)
        total = total + per.mean()
    return total / (net.L - 1)


def _train_generator(seed: int) -> torch.Generator:
    # the training stream's own generator: the seed's draws of the construction and of
    # the evaluation (`trained_errors`) stay those of `rotation_errors`
    return torch.Generator().manual_seed((seed + 0x9E3779B97F4A7C15) % 2**63)


def _monitor_generator(seed: int) -> torch.Generator:
    # the draws of the checks during training: neither the training stream nor the evaluation
    return torch.Generator().manual_seed((seed + 0x632BE59BD9B4E019) % 2**63)


def _setup(cfg: TrainConfig, seed: int, dev, dtype) -> tuple[DenseNetwork, torch.Generator]:
    g = torch.Generator().manual_seed(seed)
    base, _ = build_network(cfg.cis, g, device=dev, dtype=dtype)
    eval_state = g.get_state()
    gt = _train_generator(seed)
    W, b = _init_weights(cfg, base, gt)
    net = DenseNetwork(base, W, b, variant=cfg.variant)
    net.eval_state, net.z, net.seed = eval_state, cfg.z, seed
    return net, gt


def check_steps(steps: int) -> list[int]:
    """The steps after which training checks criterion (a): 2^k·25 for k ≥ 0 below `steps`,
    and `steps` itself."""
    out, s = [], 25
    while s < steps:
        out.append(s)
        s *= 2
    return out + [steps] if steps else []


def _check(net: DenseNetwork, active, x0) -> dict:
    with torch.no_grad():
        st = rotation_run(net, active, x0).stats()
    L = net.L
    return {"works": not failures(st, L), **{k: float(st[k][L]) for k in ("q90_dx", "false_on", "false_off")}}


def _fit(
    net: DenseNetwork, cfg: TrainConfig, gt: torch.Generator, seed: int, progress: bool, monitor_batch: int
) -> dict:
    history = {
        "step": [],
        "loss": [],
        "seconds": [],
        "check_step": [],
        "check_works": [],
        "check_q90": [],
        "check_false_off": [],
        "check_false_on": [],
    }
    if not cfg.steps:
        return history
    dev = net.w.device
    gm = _monitor_generator(seed)
    m_active = sample_active(cfg.T, cfg.z, monitor_batch, gm).to(dev)
    m_x0 = sample_unit_vectors((monitor_batch, cfg.z), gm).to(dev)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, fused=True)
    warm = max(1, cfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    )
    checks = set(check_steps(cfg.steps))
    t0 = time.perf_counter()
    steps_iter = range(1, cfg.steps + 1)
    if progress:
        from tqdm.auto import tqdm

        steps_iter = tqdm(
            steps_iter, desc=f"train D={cfg.D} T={cfg.T} {cfg.init}/{cfg.loss}/{cfg.variant}", leave=False
        )
    every = max(1, cfg.steps // 50)
    for step in steps_iter:
        active = sample_active(cfg.T, cfg.z, cfg.batch, gt).to(dev)
        x0 = sample_unit_vectors((cfg.batch, cfg.z), gt).to(dev)
        opt.zero_grad(set_to_none=True)
        value = _loss(net, active, x0, cfg.loss, mixed=cfg.mixed)
        value.backward()
        opt.step()
        sched.step()
        if step % every == 0 or step == cfg.steps or step == 1:
            history["step"].append(step)
            history["loss"].append(float(value.detach()))
            history["seconds"].append(time.perf_counter() - t0)
        if step in checks:
            c = _check(net, m_active, m_x0)
            history["check_step"].append(step)
            for k in ("works", "q90", "false_off", "false_on"):
                history[f"check_{k}"].append(c["q90_dx" if k == "q90" else k])
    return history


def _parse(D, T, z, L, init, loss, variant, steps, batch, lr, noise, mixed, device, dtype):
    cfg = TrainConfig(
        D=D,
        T=T,
        z=z,
        L=L,
        init=init,
        loss=loss,
        variant=variant,
        steps=steps,
        batch=batch,
        lr=lr,
        noise=noise,
        mixed=mixed,
    )
    return cfg, check_device(device), check_dtype(dtype)


@checked
def train_bytes(D: int, T: int, L: int, batch: int, *, z: int = 2, variant: str = "dense", itemsize: int = 4) -> int:
    """Estimated peak memory (bytes) of `train_superposed(D, T, z=z, L=L, variant=variant,
    batch=batch)`: a closed form of the sizes, for refusing before anything is allocated.

    Weights: W [L−1, D, D] held about seven times (the parameter, its gradient, Adam's two
    moments, the construction's dense layers while they are stacked, and a random or noisy
    init drawn in float64); the interface P and P/S [L, T, D/d] (and for "code" E and R,
    [L, d, T, D/d] with gradient and Adam's moments); per step: the L activations [B, D]
    with their gradients and ReLU masks (four copies), per layer l ≥ 2 the [B, T, d]
    targets, readouts and errors with their gradients (five copies), the float64 truth
    [L+1, B, z, d]; and the construction itself (`experiment.network_bytes`)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is not allowed: one of {VARIANTS}")
    d = CIRCUIT_WIDTH
    W = (L - 1) * D * D
    P = 2 * L * T * (D // d)
    code = 4 * L * T * D if variant == "code" else 0
    step = itemsize * batch * (4 * L * D + 5 * (L - 1) * T * d) + 16 * (L + 1) * batch * z * d
    return int(
        network_bytes(D, T, S_INTERFACE, L, d, itemsize=itemsize)
        + W * (5 * itemsize + 16)
        + itemsize * (P + code)
        + step
    )


@checked
def train_superposed(
    D: int,
    T: int,
    *,
    z: int = 2,
    L: int = 3,
    init: str = "random",
    loss: str = "hinge",
    steps: int = 1000,
    seed: int = 0,
    variant: str = "dense",
    batch: int = 256,
    lr: float = 3e-3,
    noise: float = 0.5,
    mixed: bool = True,
    device="cpu",
    dtype=torch.float32,
    progress: bool = False,
    monitor_batch: int = 256,
):
    """Train the network of `TrainConfig` on the book's task (module docstring).

    The construction is drawn exactly as `seeded_experiment` draws it (generator seeded
    with `seed`: angles, then layer permutations), so the circuits, the embedding and the
    readout are those of `rotation_errors(D, T, z=z, L=L, seed=seed)`; the training data
    and a random init come from a second generator, the checks during training from a
    third. Returns (net, history): history is a dict of lists: step, loss, seconds (at
    step 1 and then every steps/50), and criterion (a) at layer L on `monitor_batch`
    fixed samples after the steps `check_steps(steps)`: check_step, check_works,
    check_q90, check_false_off, check_false_on."""
    cfg, dev, dtype = _parse(D, T, z, L, init, loss, variant, steps, batch, lr, noise, mixed, device, dtype)
    monitor_batch = check_int("monitor_batch", monitor_batch, 1, 2**16)
    itemsize = torch.empty((), dtype=dtype).element_size()
    check_fits(
        f"training {cfg.L - 1} dense layers",
        lambda D, T, batch: train_bytes(D, T, cfg.L, batch, z=cfg.z, variant=cfg.variant, itemsize=itemsize),
        {"D": cfg.D, "T": cfg.T, "batch": cfg.batch},
        {"D": 4, "T": 1, "batch": 1},
        dev,
    )
    net, gt = _setup(cfg, seed, dev, dtype)
    history = _fit(net, cfg, gt, seed, progress, monitor_batch)
    net.requires_grad_(False)
    return net, history


def source_digest() -> str:
    """The cache key's code part: this module, the core package and the torch version."""
    core = Path(__file__).resolve().parent.parent / "core"
    return cache.source_digest_of(Path(__file__), *sorted(core.glob("*.py")), extra=f"torch {torch.__version__}")


_STATE = ("W", "b", "E", "b1", "R")  # the learned tensors a checkpoint holds


@checked
def cached_train(
    D: int,
    T: int,
    *,
    z: int = 2,
    L: int = 3,
    init: str = "random",
    loss: str = "hinge",
    steps: int = 1000,
    seed: int = 0,
    variant: str = "dense",
    batch: int = 256,
    lr: float = 3e-3,
    noise: float = 0.5,
    mixed: bool = True,
    device="cpu",
    dtype=torch.float32,
    progress: bool = False,
    monitor_batch: int = 256,
    root: str | os.PathLike | None = None,
):
    """`train_superposed`, or its checkpoint: safetensors under `root` (default
    `core.cache.model_cache_dir()`), keyed by the configuration, the seed, the dtype, the
    monitor batch and `source_digest()`. Returns (net, history); history["cached"] says
    which."""
    cfg, dev, dtype = _parse(D, T, z, L, init, loss, variant, steps, batch, lr, noise, mixed, device, dtype)
    monitor_batch = check_int("monitor_batch", monitor_batch, 1, 2**16)
    parts = {
        "config": asdict(cfg),
        "seed": int(seed),
        "dtype": str(dtype),
        "monitor": monitor_batch,
        "source": source_digest(),
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(root or cache.model_cache_dir()) / f"trained-{key}.safetensors"
    net, gt = _setup(cfg, seed, dev, dtype)
    names = [n for n in _STATE if hasattr(net, n)]
    if path.is_file():
        try:
            sd = load_file(str(path))
            with safe_open(str(path), "pt") as fh:
                history = json.loads((fh.metadata() or {})["history"])
            net.load_layers(sd["W"], sd["b"])
            with torch.no_grad():
                for n in names[2:]:
                    getattr(net, n).copy_(sd[n])
        except Exception as e:  # a truncated or foreign file: say which, and how to recover
            raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}); delete it to retrain") from None
        net.requires_grad_(False)
        return net, {**history, "cached": True}
    history = _fit(net, cfg, gt, seed, progress, monitor_batch)
    net.requires_grad_(False)
    if not cfg.steps:  # nothing learned: the weights are the init, rebuilt in milliseconds
        return net, {**history, "cached": False}
    sd = {n: getattr(net, n).detach().cpu().contiguous() for n in names}
    cache.atomic_write(
        path,
        lambda p: save_file(sd, p, metadata={"key_parts": json.dumps(parts), "history": json.dumps(history)}),
        suffix=".safetensors",
    )
    return net, {**history, "cached": False}


@checked
def eval_draws(net: DenseNetwork, batch: int):
    """The active sets [batch, z] and inputs [batch, z, 2] that `rotation_errors` draws at
    the network's seed after the construction's draws."""
    g = torch.Generator()
    g.set_state(net.eval_state)
    dev = net.w.device
    return sample_active(net.T, net.z, batch, g).to(dev), sample_unit_vectors((batch, net.z), g).to(dev)


@checked
def trained_errors(net: DenseNetwork, *, batch: int = 500) -> dict:
    """`rotation_errors`'s statistics (same keys) of a trained network, on the draws that
    `rotation_errors` makes at the network's seed: the active sets and inputs that follow
    the construction's draws in the same generator."""
    active, x0 = eval_draws(net, batch)
    with torch.no_grad():
        return rotation_run(net, active, x0).stats()
