"""The trained network's interface, pinned to the construction and to a naive reference."""

import math

import pytest
import torch

from superpose_lib.core.experiment import rotation_errors, seeded_experiment
from superpose_lib.trained import DenseNetwork, TrainConfig, train_superposed, trained_errors

KEYS = ("active_x", "inactive_x", "active_on", "inactive_on", "q90_dx", "worst_dx")


def test_steps_zero_construction_reproduces_rotation_errors():
    # float64: the dense layer sums in another order than the block engine, so only
    # rounding separates the two (1e-9 relative); the rates count readouts at α̂ = 1/2
    # exactly, where a rounding flips a tie, so they get one readout in 1000 of slack.
    D, T, z, L, seed, batch = 512, 100, 2, 4, 3, 400
    net, hist = train_superposed(D, T, z=z, L=L, init="construction", steps=0, seed=seed, dtype=torch.float64)
    assert hist == {"step": [], "loss": [], "seconds": []}
    got = trained_errors(net, batch=batch)
    ref = rotation_errors(D, T, z=z, L=L, seed=seed, batch=batch, dtype=torch.float64)
    for k in KEYS:
        for l in range(L + 1):
            assert math.isclose(got[k][l], ref[k][l], rel_tol=1e-9, abs_tol=1e-12), (k, l)
    for k in ("false_on", "false_off"):
        for l in range(L + 1):
            assert abs(got[k][l] - ref[k][l]) <= 1e-3, (k, l)


def test_dense_layer_matches_a_naive_loop():
    # A^l_i = ReLU(Σ_j W_ij A^{l-1}_j + b_i) in flat neuron order i = k·M + n, written out
    # neuron by neuron, against the [M, d, B] path that rotation_run uses
    D, T, L = 128, 6, 3
    net, _ = train_superposed(D, T, z=1, L=L, init="random", steps=0, seed=1, dtype=torch.float64)
    M, d = net.M, net.d
    A = torch.rand(M, d, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = net.layer(2, A)
    W, b = net.W[0], net.b[0]
    for beta in range(2):
        flat = [A[n, k, beta].item() for k in range(d) for n in range(M)]
        for k in range(d):
            for n in range(M):
                i = k * M + n
                ref = max(0.0, sum(W[i, j].item() * flat[j] for j in range(D)) + b[i].item())
                assert math.isclose(out[n, k, beta].item(), ref, rel_tol=1e-12, abs_tol=1e-12)


def test_flat_and_block_paths_agree():
    net, _ = train_superposed(256, 30, z=2, L=3, init="noisy", steps=0, seed=2, dtype=torch.float64)
    net_ref, active, x0 = seeded_experiment(256, 30, z=2, L=3, seed=2, batch=8, dtype=torch.float64)
    from superpose_lib.core.circuits import encode_input

    a0 = encode_input(torch.ones(8, 2, dtype=torch.float64), x0)
    A0 = net.embed(active, a0)
    flat = net.forward_flat(A0.permute(2, 1, 0).reshape(8, -1))
    A = A0
    for l in range(1, 4):
        A = net.layer(l, A)
        assert torch.allclose(flat[l - 1], A.permute(2, 1, 0).reshape(8, -1), atol=1e-12)


def test_training_is_seeded_and_lowers_the_loss():
    kw = dict(z=1, L=2, init="random", loss="outlier", steps=60, batch=64, lr=3e-3)
    a, ha = train_superposed(256, 16, seed=5, **kw)
    b, hb = train_superposed(256, 16, seed=5, **kw)
    assert torch.equal(a.W, b.W) and ha["loss"] == hb["loss"]
    c, _ = train_superposed(256, 16, seed=6, **kw)
    assert not torch.equal(a.W, c.W)
    # 60 Adam steps from a Kaiming init: the loss falls well below its start (a factor 2 is
    # far inside what every seed reaches; the start is the untrained readout error)
    assert ha["loss"][-1] < 0.5 * ha["loss"][0]
    assert ha["step"][-1] == 60 and len(ha["seconds"]) == len(ha["step"])


def test_construction_starts_at_its_own_weights():
    net, _ = train_superposed(256, 30, z=2, L=3, init="construction", steps=0, seed=0)
    assert isinstance(net, DenseNetwork)
    ref, _, _ = seeded_experiment(256, 30, z=2, L=3, seed=0, batch=1)
    assert torch.equal(net.W[1], ref.dense_weight(3))
    assert torch.equal(net.b[0], net.bias.repeat_interleave(net.M))


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(D=130, T=10), "D"),
        (dict(D=256, T=10**6), "T"),
        (dict(D=256, T=10, init="zeros"), "init"),
        (dict(D=256, T=10, loss="l1"), "loss"),
        (dict(D=256, T=10, steps=-1), "steps"),
        (dict(D=256, T=10, L=1), "L"),
        (dict(D=256, T=10, lr=0.0), "lr"),
        (dict(D=2**14, T=10), "D"),
    ],
)
def test_bad_input_is_refused_by_name(kw, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        TrainConfig(**kw)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        train_superposed(**kw)


def test_checkpoint_cache_round_trip_and_a_corrupt_file(tmp_path):
    from superpose_lib.trained import cached_train

    kw = dict(z=1, L=2, init="random", steps=20, batch=32, seed=4, root=tmp_path)
    a, ha = cached_train(256, 16, **kw)
    b, hb = cached_train(256, 16, **kw)
    assert not ha["cached"] and hb["cached"] and torch.equal(a.W, b.W) and ha["loss"] == hb["loss"]
    (f,) = tmp_path.glob("trained-*.safetensors")
    assert not list(tmp_path.glob("*.part*"))  # nothing half-written left behind
    f.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="delete it to retrain"):
        cached_train(256, 16, **kw)
    c, hc = cached_train(256, 16, **{**kw, "seed": 5})
    assert not hc["cached"] and not torch.equal(a.W, c.W)


def test_the_construction_lies_on_its_own_blocks():
    from superpose_lib.trained import mechanism

    net, _ = train_superposed(512, 64, z=2, L=3, init="construction", steps=0, seed=0)
    m = mechanism(net, batch=500)
    assert m["support"] == 1.0 and m["dedicated"] == 128 and 0 < m["participation"] < 1
    rnd, _ = train_superposed(512, 64, z=2, L=3, init="random", steps=0, seed=0)
    # a Kaiming matrix spreads its weight evenly: the blocks get their share of the entries
    ref, _, _ = seeded_experiment(512, 64, z=2, L=3, seed=0, batch=1)
    share = sum(int((ref.dense_weight(l) != 0).sum()) for l in (2, 3)) / (2 * 512 * 512)
    assert abs(mechanism(rnd, batch=500)["support"] - share) < 0.2 * share


def test_dedicated_network_is_exact_up_to_D_over_d():
    from superpose_lib.trained import dedicated_errors

    assert dedicated_errors(512, 128, z=2, L=3)["false_off"] == 0.0
    r = dedicated_errors(512, 140, z=2, L=3, batch=2000)
    # active circuits are uniform over T: a fraction 12/140 of them lies beyond D/d = 128
    assert abs(r["false_off"] - 12 / 140) < 0.02 and r["worst_dx"] == 1.0


def test_task_grid_and_censored_capacity():
    import pandas as pd

    from superpose_lib.trained import task_grid, trained_capacity

    g = task_grid([512, 1024], [0.5, 1.0, 2.0], z=2, L=3)
    assert [c["T"] for c in g] == [64, 128, 140, 128, 256, 512]  # 140: the interface's limit at D 512
    rows = pd.DataFrame([
        {"D": 512, "recipe": "a", "seed": 0, "T": 64, "works": True},
        {"D": 512, "recipe": "a", "seed": 0, "T": 128, "works": False},
        {"D": 512, "recipe": "a", "seed": 1, "T": 64, "works": False},
        {"D": 512, "recipe": "a", "seed": 1, "T": 128, "works": True},
        {"D": 512, "recipe": "a", "seed": 2, "T": 64, "works": True},
        {"D": 512, "recipe": "a", "seed": 2, "T": 128, "works": True},
    ])
    c = trained_capacity(rows, by=("D", "recipe")).set_index("seed")
    assert (c.loc[0, "T_low"], c.loc[0, "T_high"]) == (64, 128)
    assert (c.loc[1, "T_low"], c.loc[1, "T_high"]) == (0, 64)  # censored below
    assert c.loc[2, "T_low"] == 128 and c.loc[2, "T_high"] == float("inf")  # censored above
