"""The gist chapter's controls and paired statistics: window bags against their dense rows,
batched model features against the hooks, uniform attention by hand, the rescaled random
control, paired intervals, switch-off thresholds, splices. No corpus needed."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import ROOT  # noqa: F401  (puts this checkout first on sys.path)

from superpose_lib import gist as G
from superpose_lib.gist import experiment as E
from superpose_lib.gist import features as Fz
from superpose_lib.gist import paired as P
from superpose_lib.gist import splice as SP


def _docs(n=6, length=300, V=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {"ids": torch.randint(V, (length - 37 * (i % 3),), generator=g).tolist(), "y": i % 2, "group": f"d{i}"}
        for i in range(n)
    ]


@pytest.mark.parametrize("kw", [{}, {"ell": 3.0}, {"ell": 0.5}, {"long": 100}])
def test_window_bags_match_their_dense_rows(kw):
    docs = _docs()
    where = Fz.sample_positions(docs, 64, 5, torch.Generator().manual_seed(1))
    bag = Fz.window_bags(docs, where, 64, 40, **kw)
    dense = bag.dense()
    W = torch.randn(40, 3, dtype=torch.float64)
    torch.testing.assert_close(bag.matmul(W), dense @ W)
    torch.testing.assert_close(dense.sum(1), torch.ones(len(bag), dtype=torch.float64))  # weights sum to 1
    sub = bag.rows([4, 0, 4])
    torch.testing.assert_close(sub.matmul(W), dense[[4, 0, 4]] @ W)
    assert bag.scale() == pytest.approx(float(dense.pow(2).sum(1).mean().sqrt()))
    if "long" not in kw:  # attention's window: the piece's tokens 0..q, nothing before the piece
        i = 7
        piece = torch.tensor(docs[where["doc"][i]]["ids"])[where["offset"][i] :][: int(where["q"][i]) + 1]
        assert torch.equal(dense[i].nonzero()[:, 0], piece.unique())
    with pytest.raises(ValueError, match="ell"):
        Fz.window_bags(docs, where, 64, 40, ell=0.1)


def test_probe_on_a_bag_reads_its_rows_scaled_by_one_scalar():
    docs = _docs(8)
    where = Fz.sample_positions(docs, 64, 6, torch.Generator().manual_seed(2))
    bag = Fz.window_bags(docs, where, 64, 40)
    y = where["y"]
    p_bag = G.fit_logistic(bag, y, 2, steps=30, dtype=torch.float64)
    # a bag is not standardised per type: the probe reads rows / rms (one scalar), μ = 0
    X = bag.dense() / bag.scale()
    torch.testing.assert_close(G.probe_logits(p_bag, bag), X @ p_bag.W + p_bag.b)
    assert float((G.probe_logits(p_bag, bag).argmax(1) == y).double().mean()) > 0.5


def test_model_features_match_the_hooks_and_uniform_attention_by_hand():
    m = G.random_gpt2(0, n_layer=2)
    docs = [
        {"ids": [G.BOS] + list(range(1000, 1150)), "y": 0, "group": "a"},
        {"ids": [G.BOS] + list(range(2000, 2090)), "y": 1, "group": "b"},
    ]
    where = Fz.sample_positions(docs, 64, 4, torch.Generator().manual_seed(0))
    f = Fz.model_features(m, docs, where, 64, last_layer=2, batch=2)
    for i in (0, 5, len(where["q"]) - 1):
        d, off, q = where["doc"][i], where["offset"][i], int(where["q"][i])
        piece = torch.tensor(docs[d]["ids"])[off : off + 64][None]
        c = G.run_layer0(m, piece, mid_layer=2)
        torch.testing.assert_close(f["resid_pre"][i], c.resid_pre[0, q], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(f["resid_mid"][i], c.resid_mid[0, q], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(f["resid_last"][i], c.resid_layer[0, q], atol=1e-5, rtol=1e-5)
        # uniform attention: the mean of the values of tokens 0..q, through the output projection
        blk = m.h[0]
        v = blk.attn.c_attn(blk.ln_1(c.resid_pre))[..., 2 * 768 :][0, : q + 1].mean(0)
        torch.testing.assert_close(f["resid_uniform"][i], c.resid_pre[0, q] + blk.attn.c_proj(v), atol=1e-5, rtol=1e-5)
    r, s = Fz.rescale_attention(f, {"attn_out": 3 * f["attn_out"] / 7, "resid_pre": f["resid_pre"]})
    assert s == pytest.approx(3 / 7)
    torch.testing.assert_close(r, f["resid_pre"] + s * f["attn_out"])


def test_paired_table_intervals_and_differences():
    g = torch.Generator().manual_seed(0)
    n_docs, per = 40, 10
    doc = np.repeat(np.arange(n_docs), per)
    y = np.repeat(np.arange(n_docs) % 4, per)
    good = np.where(np.random.default_rng(0).random(len(y)) < 0.8, y, (y + 1) % 4)
    seeds = np.stack([good, np.where(np.arange(len(y)) % 7 == 0, (y + 2) % 4, good)])
    tab = P.paired_table(
        {"a": seeds, "b": y, "c": good},
        y,
        doc,
        4,
        pairs={"a − b": ("a", "b"), "c − c": ("c", "c")},
        generator=g,
        n_boot=100,
    ).set_index("name")
    assert tab.loc["b", "value"] == 1 and tab.loc["b", "doc_lo"] == 1  # perfect predictions
    assert tab.loc["c", "seed_lo"] == tab.loc["c", "seed_hi"]  # one prediction for every seed: no seed spread
    per_seed = [G.balanced_accuracy(y, s, 4) for s in seeds]
    assert tab.loc["a", "value"] == pytest.approx(np.mean(per_seed)) and tab.loc["a", "per_seed"] == pytest.approx(
        per_seed, abs=1e-4
    )
    assert tab.loc["a", "seed_lo"] < tab.loc["a", "value"] < tab.loc["a", "seed_hi"]
    assert tab.loc["a", "doc_lo"] < tab.loc["a", "value"] < tab.loc["a", "doc_hi"]
    assert tab.loc["c − c", "value"] == 0 and tab.loc["c − c", "doc_lo"] == 0 == tab.loc["c − c", "doc_hi"]
    assert tab.loc["a − b", "value"] == pytest.approx(tab.loc["a", "value"] - 1)


def test_switch_off_thresholds_and_honest_check():
    g = torch.Generator().manual_seed(0)
    n, C = 4000, 4
    y = torch.randint(C, (n,), generator=g)
    scores = torch.randn(n, C, generator=g, dtype=torch.float64)
    scores[torch.arange(n), y] += 3.0  # the own group scores higher
    tau = G.budget_threshold(scores, y, 0.01)
    own = scores[torch.arange(n), y]
    assert (own < tau).sum() <= 40 < (own <= tau).sum() + 1
    curve = G.switch_off_curve(scores, y, [tau, float("inf")])
    assert curve.wrongly_off[0] <= 0.01 and curve.wrongly_off[1] == 1 and curve.switched_off[1] == 1
    got = E.switched_off_at(scores.log_softmax(1), y, [0.01, 1.0])
    s2 = scores.log_softmax(1)
    o2, oth2 = E.own_and_other(s2, y)
    t2 = o2.sort().values[int(0.01 * n)]
    assert got[0] == pytest.approx(float((oth2 < t2).double().mean()))
    assert got[1] == 1.0
    doc = np.arange(n) // 20
    tab_curve, tab = E.switch_off_table({"x": [s2]}, y, doc, [0.01], budget=0.01, generator=g, n_boot=30)
    assert tab.value[0] == pytest.approx(got[0]) and tab.doc_lo[0] <= tab.value[0] <= tab.doc_hi[0]
    h = E.cross_fit_rate(s2, y, doc, 0.01)
    assert 0 < h["wrongly_off"] < 0.03 and 0 < h["switched_off"] < 1


def test_splices_switch_where_the_bag_should():
    docs = [
        {"ids": [0] + [1 + (i % 2) * 10 + (t % 5) for t in range(200)], "y": i % 2, "group": f"d{i}"} for i in range(8)
    ]
    fold = (np.arange(8) // 2) % 2  # fold 0: documents 0, 1, 4, 5 (both groups)
    pieces, fold_of, pair_of = SP.splice_docs(docs, fold, 20, 30, 3, torch.Generator().manual_seed(0))
    assert len(pieces) == 2 * 3 * 2 and all(len(p["ids"]) == 50 for p in pieces)
    for p in pieces:
        assert p["y"] != p["old"] and docs[p["a"]]["y"] == p["old"] and docs[p["b"]]["y"] == p["y"]
        assert fold_of[p["index"]] == fold[p["a"]] == fold[p["b"]]
    assert np.bincount(pair_of).tolist() == [2] * 6  # each pair in both orders
    # a readout that counts the window's tokens of each group switches when the counts are equal
    n = 50
    where = {"doc": np.repeat(np.arange(len(pieces)), n - 1), "q": torch.arange(1, n).repeat(len(pieces))}
    lg = []
    for p in pieces:
        ids = torch.tensor(p["ids"])
        frac1 = (ids >= 11).double().cumsum(0) / torch.arange(1, n + 1)  # tokens of group 1 so far
        lg.append(torch.stack([1 - frac1, frac1], 1)[1:])
    curves = SP.readout_curves(torch.cat(lg), pieces, where, n)
    assert math.isnan(curves[0, 0])
    t = SP.switch_time(curves, 20)
    assert 19 <= t <= 21  # 20 old tokens: the new ones outnumber them after ≈ 20
    assert SP.switch_time(-curves.abs(), 20) == math.inf


def test_ci_text_and_summaries_without_corpus():
    assert G.ci_text(0.531, 0.5, 0.56, 0.51, 0.55) == "0.53 (documents 0.50–0.56; seeds 0.51–0.55)"
    assert G.ci_text(0.05, 0.03, 0.07, 0.05, 0.05, signed=True) == "+0.05 (documents +0.03 to +0.07)"
    assert G.ci_text(0.5, 0.4, 0.6, -math.inf, math.inf) == "0.50 (documents 0.40–0.60; seeds: not resolved)"
    assert G.verdict(SimpleNamespace(doc_lo=0.1, doc_hi=0.2, seed_lo=-0.1, seed_hi=0.3)) == "not distinguishable from"
    assert G.verdict(SimpleNamespace(doc_lo=0.1, doc_hi=0.2, seed_lo=0.2, seed_hi=0.2)) == "above"  # no seed spread
    assert G.verdict(SimpleNamespace(doc_lo=-0.2, doc_hi=-0.1, seed_lo=-0.3, seed_hi=-0.05)) == "below"


def test_trained_seeds_have_curves_and_one_cache_entry_each(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERPOSE_MODEL_CACHE", str(tmp_path))
    from superpose_lib.gist import brown_lm as LM

    g = torch.Generator().manual_seed(0)
    docs = [[0] + (torch.arange(200) % 7 + 1).tolist() for _ in range(6)]
    vocab = LM.build_vocab(docs, docs)
    train = [vocab.to_local(d) for d in docs]
    wins, _ = LM.eval_windows(train[:2], 16)
    cfg = LM.LMConfig(n_ctx=16, d_model=16, n_layer=1, n_head=2, steps=20, batch=4, lr=1e-2, cutoffs=(4,))
    runs = LM.cached_lms(train, vocab, cfg, [0, 1], heldout=wins, eval_every=10)
    assert [r[1]["cached"] for r in runs] == [False, False] and len(list(tmp_path.glob("*.safetensors"))) == 2
    assert [s for s, _ in runs[0][1]["heldout"]] == [10, 20] and runs[0][1]["heldout"][-1][1] < runs[0][1]["heldout"][
        0
    ][1] + 1
    again = LM.cached_lms(train, vocab, cfg, [0, 1], heldout=wins, eval_every=10)
    assert [r[1]["cached"] for r in again] == [True, True] and again[1][1]["heldout"] == runs[1][1]["heldout"]
    init = LM.initial_lm(cfg, len(vocab), 1)
    fresh, _ = LM.train_lm(train, len(vocab), LM.LMConfig(**{**cfg.__dict__, "steps": 0}), seed=1)
    assert all(torch.equal(a, b) for a, b in zip(init.state_dict().values(), fresh.state_dict().values()))
    del g


def test_switched_off_at_many_weightings_equals_one_at_a_time():
    g = torch.Generator().manual_seed(3)
    n, C = 500, 4
    y = torch.randint(C, (n,), generator=g)
    s = torch.randn(n, C, generator=g, dtype=torch.float64).log_softmax(1)
    W = P.bootstrap_weights(50, 40, g)[:, np.arange(n) // 10]  # 50 documents of 10 positions
    many = E.switched_off_at(s, y, [0.01, 0.1], W)
    one = np.stack([E.switched_off_at(s, y, [0.01, 0.1], w) for w in W])
    np.testing.assert_allclose(many, one)
    np.testing.assert_allclose(many[0], E.switched_off_at(s, y, [0.01, 0.1]))  # row 0: the sample itself


def test_network_capacity_oracle_beats_all_on_and_censoring():
    g = torch.Generator().manual_seed(0)
    n, C = 600, 4
    y = torch.randint(C, (n,), generator=g)
    lin = [torch.randn(n, C, generator=g, dtype=torch.float64) + 8 * torch.nn.functional.one_hot(y, C)]
    token = torch.randint(1000, (n,), generator=g)
    net = E.network_capacity(lin, y, token, torch.arange(400), [4, 8, 16], budget=1e-3, D=400, L=3)
    assert set(net.source) == {"oracle", "all on", "gist at budget"} and len(net) == 9
    assert (net[net.source == "oracle"].false_off == 0).all()
    caps = E.capacities(net).set_index("source")
    assert caps.loc["oracle", "capacity"] >= caps.loc["all on", "capacity"]
    # a clean router (the own group 8 log-odds above the others) switches every other group off
    gist = net[net.source == "gist at budget"]
    assert (gist.n_on < 1.1).all() and (gist.false_off == 0).all()
    fake = net.assign(passes=True)
    assert set(E.capacities(fake).text) == {"≥ 64"}
    assert set(E.capacities(net.assign(passes=False)).text) == {"< 16"}


def test_gpt2_rows_read_the_same_positions_through_the_vocabulary_map():
    m = G.random_gpt2(0, n_layer=2)
    gpt2_ids = torch.arange(5000, 5100)  # local id j is GPT-2 id 5000 + j
    docs = [
        {
            "ids": torch.randint(100, (150,), generator=torch.Generator().manual_seed(i)).tolist(),
            "y": i % 2,
            "group": f"d{i}",
        }
        for i in range(3)
    ]
    where = Fz.sample_positions(docs, 64, 3, torch.Generator().manual_seed(0))
    rows = E.gpt2_rows(m, docs, where, 64, gpt2_ids, mid_layer=1)
    i = 4
    piece = gpt2_ids[torch.tensor(docs[where["doc"][i]]["ids"])[where["offset"][i] :][:64]][None]
    c = G.run_layer0(m, piece, mid_layer=1)
    torch.testing.assert_close(rows["gpt2"][0][i], c.resid_mid[0, int(where["q"][i])], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rows["gpt2 mid"][0][i], c.resid_layer[0, int(where["q"][i])], atol=1e-5, rtol=1e-5)


def test_seeds_train_in_worker_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERPOSE_MODEL_CACHE", str(tmp_path))
    from superpose_lib.gist import brown_lm as LM

    docs = [[0] + (torch.arange(120) % 5 + 1).tolist() for _ in range(4)]
    vocab = LM.build_vocab(docs, docs)
    train = [vocab.to_local(d) for d in docs]
    cfg = LM.LMConfig(n_ctx=16, d_model=16, n_layer=1, n_head=2, steps=5, batch=4, lr=1e-2, cutoffs=(4,))
    par = LM.cached_lms(train, vocab, cfg, [0, 1], workers=2)
    assert [i["cached"] for _, i in par] == [False, False]
    ser = LM.train_lm(train, len(vocab), cfg, seed=1)[0]  # the same weights as the worker's
    assert all(torch.equal(a, b) for a, b in zip(par[1][0].state_dict().values(), ser.state_dict().values()))
