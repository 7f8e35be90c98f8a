"""The trained network's interface, pinned to the construction and to naive references."""

import math

import pytest
import torch

from superpose_lib.core.experiment import rotation_errors, seeded_experiment
from superpose_lib.trained import DenseNetwork, TrainConfig, train_superposed, trained_errors

KEYS = ("active_x", "inactive_x", "active_on", "inactive_on", "q90_dx", "worst_dx")


def _same_stats(got, ref, L, n_active, n_inactive):
    # float64: the dense layer sums in another order than the block engine, so only
    # rounding separates the two (1e-9 relative); the rates count readouts at α̂ = 1/2
    # exactly (frequent: readouts are sums of a few multiples of 1/S), where a rounding flips
    # a tie, so they get 10⁻³ of the readouts of slack, or two readouts if that is more.
    for k in KEYS:
        for l in range(L + 1):
            assert math.isclose(got[k][l], ref[k][l], rel_tol=1e-9, abs_tol=1e-12), (k, l)
    for k, n in (("false_on", n_inactive), ("false_off", n_active)):
        for l in range(L + 1):
            assert abs(got[k][l] - ref[k][l]) <= max(1e-3, 2 / n) + 1e-12, (k, l)


@pytest.mark.parametrize("variant", ["dense", "code"])
def test_steps_zero_construction_reproduces_rotation_errors(variant):
    # "code" starts at the S-hot embedding and readouts, so at steps = 0 it is the
    # construction too, through its own embedding and readout path
    D, T, z, L, seed, batch = 512, 100, 2, 4, 3, 400
    net, hist = train_superposed(
        D, T, z=z, L=L, init="construction", steps=0, seed=seed, variant=variant, dtype=torch.float64
    )
    assert hist["step"] == [] and hist["check_step"] == []
    got = trained_errors(net, batch=batch)
    ref = rotation_errors(D, T, z=z, L=L, seed=seed, batch=batch, dtype=torch.float64)
    _same_stats(got, ref, L, batch * z, batch * (T - z))


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


def test_linear_variant_has_no_relu():
    net, _ = train_superposed(128, 6, z=1, L=3, init="random", steps=0, seed=1, variant="linear", dtype=torch.float64)
    A = torch.rand(net.M, net.d, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = net.layer(2, A).permute(2, 1, 0).reshape(3, -1)
    ref = A.permute(2, 1, 0).reshape(3, -1) @ net.W[0].T + net.b[0]
    assert torch.allclose(out, ref, atol=1e-12) and (out < 0).any()


@pytest.mark.parametrize("variant", ["dense", "code"])
def test_flat_and_block_paths_agree(variant):
    net, _ = train_superposed(256, 30, z=2, L=3, init="noisy", steps=0, seed=2, variant=variant, dtype=torch.float64)
    _, active, x0 = seeded_experiment(256, 30, z=2, L=3, seed=2, batch=8, dtype=torch.float64)
    from superpose_lib.core.circuits import encode_input

    a0 = encode_input(torch.ones(8, 2, dtype=torch.float64), x0)
    flat = net.forward_flat(active, a0)
    for (l, A, G), F in zip(net.layers_iter(net.embed(active, a0)), flat):
        assert torch.allclose(F, A.permute(2, 1, 0).reshape(8, -1), atol=1e-12)
        # readouts: S·â from the block path, â from the flat one; α̂ and the active ones' too
        a_hat = net.readouts_flat(F, l)
        assert torch.allclose(G.permute(2, 0, 1) / net.S, a_hat, atol=1e-12)
        assert torch.allclose(net.alpha_readouts(F, l), a_hat[..., 0] - a_hat[..., 1], atol=1e-12)
        rows = torch.arange(8)[:, None].expand(8, 2)
        assert torch.allclose(net.active_readouts(F, l, active), a_hat[rows, active], atol=1e-12)


def test_hinge_loss_matches_its_definition():
    # the training path reads only α̂ of every circuit and the active circuits' payloads;
    # written out here from the full readouts, circuit by circuit
    import superpose_lib.trained.train as tr
    from superpose_lib.core.circuits import decode

    net, _ = train_superposed(256, 20, z=2, L=3, init="noisy", steps=0, seed=4, dtype=torch.float64)
    _, active, x0 = seeded_experiment(256, 20, z=2, L=3, seed=4, batch=16, dtype=torch.float64)
    got = float(tr._loss(net, active, x0, "hinge"))
    a0, truth, on = tr.circuit_targets(net, active, x0)
    total = 0.0
    for l, A in enumerate(net.forward_flat(active, a0)[1:], start=2):
        a_hat = net.readouts_flat(A, l)
        for b in range(16):
            for t in range(20):
                alpha, x = decode(a_hat[b, t])
                if on[b, t]:
                    j = int((active[b] == t).nonzero())
                    ta, tx = decode(truth[l][b, j])
                    e = float(((x - tx) ** 2).sum())
                    total += e + e**2 / 0.25**2 + 4 * max(0.0, 0.75 - float(alpha)) ** 2
                else:
                    total += 4 * max(0.0, float(alpha) - 0.25) ** 2
    assert math.isclose(got, total / 16 / 2, rel_tol=1e-9)


def test_training_is_seeded_and_lowers_the_loss():
    kw = dict(z=1, L=2, init="random", loss="hinge", steps=60, batch=64, lr=3e-3)
    a, ha = train_superposed(256, 16, seed=5, **kw)
    b, hb = train_superposed(256, 16, seed=5, **kw)
    assert torch.equal(a.W, b.W) and ha["loss"] == hb["loss"] and ha["check_q90"] == hb["check_q90"]
    c, _ = train_superposed(256, 16, seed=6, **kw)
    assert not torch.equal(a.W, c.W)
    # 60 Adam steps from a Kaiming init: the loss falls well below its start (a factor 2 is
    # far inside what every seed reaches; the start is the untrained readout error)
    assert ha["loss"][-1] < 0.5 * ha["loss"][0]
    assert ha["step"][-1] == 60 and len(ha["seconds"]) == len(ha["step"])
    assert ha["check_step"] == [25, 50, 60] and len(ha["check_works"]) == 3


def test_construction_starts_at_its_own_weights():
    net, _ = train_superposed(256, 30, z=2, L=3, init="construction", steps=0, seed=0)
    assert isinstance(net, DenseNetwork)
    ref, _, _ = seeded_experiment(256, 30, z=2, L=3, seed=0, batch=1)
    assert torch.equal(net.W[1], ref.dense_weight(3))
    assert torch.equal(net.b[0], net.bias.repeat_interleave(net.M))
    noisy, _ = train_superposed(256, 30, z=2, L=3, init="noisy", noise=0.5, steps=0, seed=0)
    # noise·rms(W)·N(0, 1) per layer: the difference's rms is 0.5 of the weights' (±5 % for 65536 draws)
    diff = (noisy.W - net.W).pow(2).mean((1, 2)).sqrt() / net.W.pow(2).mean((1, 2)).sqrt()
    assert torch.allclose(diff, torch.full_like(diff, 0.5), rtol=0.05)


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(D=130, T=10), "D"),
        (dict(D=256, T=10**6), "T"),
        (dict(D=256, T=33), "T"),  # the S = 6 interface holds 32 circuits at D = 256
        (dict(D=256, T=10, init="zeros"), "init"),
        (dict(D=256, T=10, loss="l1"), "loss"),
        (dict(D=256, T=10, variant="sparse"), "variant"),
        (dict(D=256, T=10, steps=-1), "steps"),
        (dict(D=256, T=10, L=1), "L"),
        (dict(D=256, T=10, lr=0.0), "lr"),
        (dict(D=2**14, T=10), "D"),
        (dict(D=32, T=2), "D"),
    ],
)
def test_bad_input_is_refused_by_name(kw, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        TrainConfig(**kw)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        train_superposed(**kw)


@pytest.mark.parametrize("variant", ["dense", "code"])
def test_checkpoint_cache_round_trip_and_a_corrupt_file(tmp_path, variant):
    from superpose_lib.trained import cached_train

    kw = dict(z=1, L=2, init="random", steps=20, batch=32, seed=4, variant=variant, root=tmp_path)
    a, ha = cached_train(256, 16, **kw)
    b, hb = cached_train(256, 16, **kw)
    assert not ha["cached"] and hb["cached"] and torch.equal(a.W, b.W) and ha["loss"] == hb["loss"]
    if variant == "code":
        assert torch.equal(a.E, b.E) and torch.equal(a.R, b.R) and not torch.equal(a.E, a.P[0].expand_as(a.E))
    (f,) = tmp_path.glob("trained-*.safetensors")
    assert not list(tmp_path.glob("*.part*"))  # nothing half-written left behind
    f.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="delete it to retrain"):
        cached_train(256, 16, **kw)
    c, hc = cached_train(256, 16, **{**kw, "seed": 5})
    assert not hc["cached"] and not torch.equal(a.W, c.W)


def test_span_share_of_the_construction_and_of_noise():
    from superpose_lib.trained import span_share

    net, _ = train_superposed(512, 64, z=2, L=3, init="construction", steps=0, seed=0, dtype=torch.float64)
    # the construction lies in the span but for the pairs that several circuits connect:
    # its mean-weight term w̄ ⊗ (1/S + χ)C counts them once, the blocks' sum k + 1 times
    # (−(1/S + χ) w̄ ⊗ X); added back, it is all in the span
    assert 0.95 < span_share(net) < 1.0
    ref, _, _ = seeded_experiment(512, 64, z=2, L=3, seed=0, batch=1, dtype=torch.float64)
    with torch.no_grad():
        for l, w in zip((2, 3), net.Ws):
            st = ref.layers[l - 1]
            X = torch.zeros(128, 128, dtype=torch.float64)
            X[st.excess_n, st.excess_m] = st.excess_k
            w += torch.kron(ref.w_bar, X) * (1 / 6 + st.chi)
    assert span_share(net) == pytest.approx(1.0, abs=1e-9)
    rnd, _ = train_superposed(512, 64, z=2, L=3, init="random", steps=0, seed=0, dtype=torch.float64)
    # a Gaussian matrix: (T + 1)/M² of its weight in expectation (65/16384 = 0.004); the
    # sum of 2·16·65 squared projections of unit variance, so ±15 % at 3 s.d.
    assert abs(span_share(rnd) / (65 / 128**2) - 1) < 0.15
    # a matrix built from the blocks alone is all in the span, whatever its coefficients
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for i, w in enumerate(rnd.Ws):
            P1, P0 = rnd.P[i + 1], rnd.P[i]
            C = torch.randn(64, 4, 4, generator=g, dtype=torch.float64)
            blocks = torch.einsum("tij,tn,tm->injm", C, P1, P0) + torch.randn(
                4, 1, 4, 1, generator=g, dtype=torch.float64
            )
            w.copy_(blocks.reshape(512, 512))
    assert span_share(rnd) == pytest.approx(1.0, abs=1e-9)


def test_mechanism_of_the_construction():
    from superpose_lib.trained import indicator_transfer, mechanism

    net, _ = train_superposed(512, 20, z=2, L=3, init="construction", steps=0, seed=0)
    m = mechanism(net, batch=500)
    # 20 circuits at D = 512: no neuron shared (20·6 < 128 positions), so the construction
    # is exact: every circuit served, nothing on outside the active circuits, a full gap
    assert m["served"] == 20 and m["dedicated"] == 128 and m["outside_on"] == 0.0
    assert m["inactive_x"] < 1e-6 and m["on_gap"] > 0.99 and 0 < m["participation"] < 1
    # RiS's step: ReLU(2s − 0.5) − ReLU(2s − 1.5): 0 at s ≤ 1/4, 2s − 1/2 between, 1 from 3/4
    got = indicator_transfer(net, [0.0, 0.2, 0.5, 0.8, 1.0], n_samples=64)
    assert got == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0], abs=1e-5)


def test_dedicated_network_is_exact_up_to_D_over_d():
    from superpose_lib.trained import dedicated_errors

    assert dedicated_errors(512, 128, z=2, L=3)["false_off"] == 0.0
    r = dedicated_errors(512, 140, z=2, L=3, batch=2000)
    # active circuits are uniform over T: a fraction 12/140 of them lies beyond D/d = 128
    assert abs(r["false_off"] - 12 / 140) < 0.02 and r["worst_dx"] == 1.0


def test_first_passing_step():
    from superpose_lib.trained import first_passing_step

    h = {"check_step": [25, 50, 100, 200], "check_works": [False, True, False, True]}
    assert first_passing_step(h) == 200  # the first pass that every later check confirms
    assert first_passing_step({"check_step": [25], "check_works": [False]}) == -1
    assert first_passing_step({"check_step": [], "check_works": []}) == -1


def test_capacity_search_brackets_and_censors(monkeypatch):
    # a recipe that works exactly up to T = T_true: the search brackets it to its
    # resolution, and censors at both ends of what it may try
    import superpose_lib.trained.analysis as an

    def fake(D, T, z, L, seed, **kw):
        return [{"T": T, "works": T <= fake.T_true, "why": "" if T <= fake.T_true else "q90_dx"}]

    monkeypatch.setattr(an, "trained_rows", fake)
    fake.T_true = 300
    rows = an.trained_capacity_rows(1024, 2, 3, 0, resolution=0.25)
    r = rows[0]
    assert r["censor"] == "" and r["T_max"] <= 300 < r["T_fail"] <= 1.25 * r["T_max"] + 1
    assert sorted(x["probe"] for x in rows) == list(range(len(rows))) and r["why_fail"] == "q90_dx"
    # the coarse search of the chapter's largest widths: the start and one gallop by 2, a
    # bracket of 2 reported as its resolution
    rows = an.trained_capacity_rows(1024, 2, 3, 0, step=2.0, max_probes=2)
    assert [x["T"] for x in rows] == [256, 512] and (rows[0]["T_max"], rows[0]["T_fail"]) == (256, 512)
    assert rows[0]["resolution"] == pytest.approx(1.0, rel=0.01)
    fake.T_true = 10**6
    r = an.trained_capacity_rows(1024, 2, 3, 0)[0]
    assert r["censor"] == "above" and r["T_max"] == 588 and r["T_fail"] == -1  # the interface's 588
    fake.T_true = 0
    r = an.trained_capacity_rows(1024, 2, 3, 0)[0]
    assert (
        r["censor"] == "below"
        and r["T_max"] == 0
        and min(x["T"] for x in an.trained_capacity_rows(1024, 2, 3, 0)) == 32
    )  # D/(8d)


def test_capacity_table_in_circuits():
    import pandas as pd

    from superpose_lib.trained import capacity_table

    cap = pd.DataFrame(
        [
            {"name": "trained", "z": 2, "D": 512, "seed": s, "x_max": x, "resolution": 0.05, "censor": "", "why": "q90"}
            for s, x in enumerate([0.006, 0.007, 0.008])
        ]
        + [
            {
                "name": "trained",
                "z": 1,
                "D": 512,
                "seed": s,
                "x_max": 140 / 128**2,
                "resolution": 0.5,
                "censor": "above",
                "why": "",
            }
            for s in range(3)
        ]
    )
    t = capacity_table(cap).set_index(["z", "D"])
    assert t.loc[(2, 512), "T_mean"] == pytest.approx(0.007 * 128**2)  # x·(D/d)²
    assert t.loc[(2, 512), "T_low"] < t.loc[(2, 512), "T_mean"] < t.loc[(2, 512), "T_high"]
    assert t.loc[(1, 512), "text"] == "≥ 140" and t.loc[(1, 512), "censor"] == "above"
    # coarse brackets [256, 512), [512, 588), [256, 512): the t-interval reaches below 0, the
    # interval given is clipped to the seeds' brackets
    sc = 256**2
    coarse = pd.DataFrame(
        [
            {
                "name": "linear",
                "z": 1,
                "D": 1024,
                "seed": s,
                "x_max": lo / sc,
                "x_fail": hi / sc,
                "resolution": 0.5,
                "censor": "",
                "why": "",
            }
            for s, (lo, hi) in enumerate([(256, 512), (512, 588), (256, 512)])
        ]
    )
    c = capacity_table(coarse).iloc[0]
    assert c["T_low"] == pytest.approx(256) and c["T_high"] == pytest.approx(588)
    assert c["text"] == "341 [256, 588]"


def test_loss_and_capacity_facts():
    import pandas as pd

    from superpose_lib.trained import capacity_facts, loss_facts

    rows = pd.DataFrame(
        [
            {
                "loss": loss,
                "T": 32,
                "seed": s,
                "works": loss == "hinge",
                "q90_dx": q + 0.01 * s,
                "false_off": 0.0,
                "inactive_x": ix,
            }
            for loss, q, ix in (("mse", 0.5, 0.2), ("hinge", 0.2, 1.9))
            for s in range(3)
        ]
    )
    f = loss_facts(rows)
    assert f["works-hinge"] == "3 of 3" and f["works-mse"] == "0 of 3" and f["trains"] == "hinge"
    assert f["fails"] == "mse" and f["q90-hinge"].startswith("0.21 [") and f["inactive-hinge"] == "1.90"
    table = pd.DataFrame(
        [
            {
                "name": "trained",
                "z": 2,
                "D": 512,
                "T_mean": 100.0,
                "T_low": 90.0,
                "T_high": 110.0,
                "censor": "",
                "text": "100 [90, 110]",
            },
            {
                "name": "construction",
                "z": 2,
                "D": 512,
                "T_mean": 25.0,
                "T_low": 24.0,
                "T_high": 26.0,
                "censor": "",
                "text": "25 [24, 26]",
            },
            {
                "name": "trained",
                "z": 1,
                "D": 512,
                "T_mean": 140.0,
                "T_low": 140.0,
                "T_high": 140.0,
                "censor": "above",
                "text": "≥ 140",
            },
            {
                "name": "construction",
                "z": 1,
                "D": 512,
                "T_mean": 110.0,
                "T_low": 100.0,
                "T_high": 120.0,
                "censor": "",
                "text": "110 [100, 120]",
            },
        ]
    )
    c = capacity_facts(table)
    assert c["cap-trained-2"] == "100 [90, 110] at D = 512" and c["ratio-2"] == "4.0 at D = 512"
    assert c["ratio-1"] == "≥ 1.3 at D = 512"  # a lower bound: the trained capacity is censored above
    assert c["beyond-1"] == "D = 512" and c["beyond-2"] == "at no width"  # 140 > D/d = 128; 100 < 128


def test_plots_draw_the_chapter_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from superpose_lib.trained import plots as tp

    table = pd.DataFrame(
        [
            {"name": n, "z": 2, "D": D, "T_mean": m, "T_low": m * 0.9, "T_high": m * 1.1, "censor": c}
            for n, c in (("trained", "above"), ("construction", ""))
            for D, m in ((256, 32.0), (512, 64.0))
        ]
    )
    ax = tp.plot_capacity_vs_D(table, z=2)
    assert len(ax.get_lines()) >= 3 and ax.get_xscale() == "log"
    err = pd.DataFrame(
        [
            {"D": 256, "z": 2, "T_over_dedicated": f, "q90_dx": q, "works": q < 0.25, "recipe": "trained"}
            for f, q in ((0.25, 0.1), (0.5, 0.4))
        ]
    )
    ax = tp.plot_error_against_T(err, err.drop(columns="recipe").assign(q90_dx=1e-7), D=256, z=2)
    assert ax.get_ylim()[0] < 0.01 < ax.get_ylim()[1]  # an exact construction sits at the floor
    curves = pd.DataFrame(
        [
            {"D": 256, "T": 32, "seed": s, "step": st, "q90": 1 / st, "works": st > 50}
            for s in range(2)
            for st in (25, 50, 100)
        ]
    )
    assert len(tp.plot_training(curves).get_lines()) == 2  # the curve and the bound
    assert len(tp.plot_transfer([0, 0.5, 1], {"trained": [0, 0.5, 1]}).get_lines()) == 2
    plt.close("all")


def test_transfer_verdict_and_mechanism_facts():
    import pandas as pd

    from superpose_lib.trained import mechanism_facts, transfer_verdict

    levels = [i / 10 for i in range(11)]
    step = [min(1.0, max(0.0, 2 * s - 0.5)) for s in levels]  # RiS's step
    assert transfer_verdict(levels, step) == "a step"
    assert transfer_verdict(levels, levels) == "close to the identity"
    assert transfer_verdict(levels, [s**0.5 for s in levels]) == "a ramp, not a step"
    with pytest.raises(ValueError, match="levels"):
        transfer_verdict([], [])
    rows = pd.DataFrame(
        [
            {
                "D": 512,
                "T": T,
                "works": w,
                "span": 0.01,
                "participation": 0.6,
                "outside_on": 0.3,
                "inactive_x": 1.5,
                "served": srv,
                "dedicated": 128,
                "on_gap": g,
            }
            for T, w, srv, g in ((140, True, 139, 0.2), (64, True, 64, -0.1), (140, False, 90, -0.5))
        ]
    )
    cons = rows.assign(span=0.9, outside_on=0.0, inactive_x=0.1)
    f = mechanism_facts(rows, cons)
    assert f["served-max"] == "11" and f["n-beyond"] == "1" and f["gap-share"] == "50"
    assert f["silent"] == "not silent" and f["span-chance"] == f"{(rows['T'] + 1).div(128**2).mean():.4f}"
