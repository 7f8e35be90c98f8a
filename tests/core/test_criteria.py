"""The one definition of a working network (`works`, `failures`) and the statistics it reads
from `rotation_errors`, pinned to a naive loop over circuits and samples."""

import math

import numpy as np
import pytest
import reference as ref
import torch

import superpose_lib as sp
from superpose_lib.core import criteria as C
from superpose_lib.core.experiment import rotation_run, seeded_experiment

F64 = torch.float64


def _stats(false_on=0.0, false_off=0.0, q90=0.1, worst=0.5, L=2):
    return {
        "false_on": [0.0] + [false_on] * L,
        "false_off": [0.0] + [false_off] * L,
        "q90_dx": [0.0] + [q90] * L,
        "worst_dx": [0.0] + [worst] * L,
    }


def test_works_criterion_a_each_condition():
    assert sp.works(_stats(), 2)
    assert sp.works(_stats(false_on=C.RATE_MAX, false_off=C.RATE_MAX, q90=C.Q90_DX_MAX, worst=0.999), 1)
    for bad, word in (
        (dict(false_on=2e-3), "false_on"),
        (dict(false_off=2e-3), "false_off"),
        (dict(q90=0.3), "q90_dx"),
        (dict(worst=1.0), "worst_dx"),
    ):
        s = _stats(**bad)
        assert not sp.works(s, 2)
        (why,) = sp.failures(s, 2)
        assert why.startswith(word), why


def test_a_dropped_circuit_does_not_work():
    """A circuit whose output is 0 has |δx| = 1 exactly: the worst-case bound is strict."""
    assert not sp.works(_stats(q90=0.0, worst=1.0), 1)


def test_criterion_b_compares_with_the_oracle_of_the_same_draw():
    oracle = _stats(q90=0.6, worst=3.0)
    s = _stats(q90=0.6 * C.ORACLE_FACTOR, worst=5.0)  # (a) fails, (b) holds: only the indicators are judged
    assert not sp.works(s, 2) and sp.works(s, 2, oracle=oracle)
    assert not sp.works(_stats(q90=0.6 * C.ORACLE_FACTOR * 1.01), 2, oracle=oracle)
    assert not sp.works(_stats(false_on=0.01, q90=0.1), 2, oracle=oracle)


def test_nan_statistics_never_work():
    assert not sp.works(_stats(false_on=math.nan), 1)


@pytest.mark.parametrize("bad", [{"q90_dx": [0.0, 0.0]}, [], None, "stats"])
def test_bad_statistics_are_refused(bad):
    with pytest.raises(ValueError, match="rotation_errors or scheme_run"):
        sp.works(bad, 1)


@pytest.mark.parametrize("layer", [0, -1, 3, 1.5, True, "1"])
def test_bad_layers_are_refused(layer):
    with pytest.raises(ValueError, match="layer"):
        sp.works(_stats(L=2), layer)


def test_rotation_errors_rates_and_quantiles_equal_a_naive_loop():
    D, T, S, L, z, B = 200, 20, 6, 3, 2, 24
    net, active, x0 = seeded_experiment(D, T, S=S, L=L, z=z, batch=B, seed=4, dtype=F64)
    stats = rotation_run(net, active, x0).stats()
    w, w_bar, bias, idx = net.w.numpy(), net.w_bar.numpy(), net.bias.numpy(), net.idx.tolist()
    a0 = sp.encode_input(torch.ones(B, z, dtype=F64), x0).numpy()
    wrong_on, wrong_off = np.zeros(L + 1), np.zeros(L + 1)
    dx = [[] for _ in range(L + 1)]
    for b in range(B):
        acts = active[b].tolist()
        A = ref.forward(w, w_bar, bias, idx, net.M, S, acts, a0[b])
        truth = [ref.run_small(w[t], bias, a0[b, j], L) for j, t in enumerate(acts)]
        for l in range(1, L + 1):
            R = ref.readout(A[l], idx[l - 1], net.M, S, 4)
            alpha = R[:, 0] - R[:, 1]
            for t in range(T):
                if t in acts:
                    j = acts.index(t)
                    a_true = truth[j][l]
                    x_hat, x_true = R[t, 2:4] - alpha[t], a_true[2:4] - (a_true[0] - a_true[1])
                    dx[l].append(float(np.linalg.norm(x_hat - x_true)))
                    wrong_off[l] += alpha[t] < C.ON_THRESHOLD
                else:
                    wrong_on[l] += alpha[t] > C.ON_THRESHOLD
    for l in range(1, L + 1):
        assert stats["false_on"][l] == pytest.approx(wrong_on[l] / (B * (T - z)), abs=1e-12)
        assert stats["false_off"][l] == pytest.approx(wrong_off[l] / (B * z), abs=1e-12)
        assert stats["worst_dx"][l] == pytest.approx(max(dx[l]), abs=1e-9)
        assert stats["q90_dx"][l] == pytest.approx(float(np.quantile(dx[l], 0.9)), abs=1e-9)
    # the comparison is not of zeros: this load makes some readouts wrong at depth
    assert max(stats["false_on"]) > 0 or max(stats["worst_dx"]) > 0.1


def test_rotation_errors_carries_the_criterion_keys_and_the_means_unchanged():
    e = sp.rotation_errors(400, 60, L=2, z=2, batch=32, seed=1)
    run = rotation_run(*seeded_experiment(400, 60, L=2, z=2, batch=32, seed=1))
    assert set(C.STAT_KEYS) <= set(e)
    assert {k: e[k] for k in run.mse()} == run.mse()
    assert isinstance(sp.works(e, 2), bool)
