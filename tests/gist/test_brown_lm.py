"""The locally trained GPT-2-architecture model: vocabulary remapping, a tiny model that
learns and reloads bit-identically from its safetensors cache, the n-gram baselines, and the
on-indicator routing through a superposed network. No corpus needed: synthetic documents."""

import numpy as np
import pytest
import torch
from conftest import ROOT  # noqa: F401  (puts this checkout first on sys.path)

from superpose_lib import gist as G
from superpose_lib.gist import brown_lm as LM
from superpose_lib.gist import routing as R
from superpose_lib.gist import toy as TG
from superpose_lib.report import fmt_length


def _docs(n=12, length=300, seed=0):
    """GPT-2-id documents from a 2-state Markov language (a learnable bigram structure)."""
    g = torch.Generator().manual_seed(seed)
    words = torch.tensor([464, 3290, 318, 257, 1332, 11, 13, 290, 262, 286])
    docs = []
    for _ in range(n):
        x = [int(torch.randint(10, (1,), generator=g))]
        for _ in range(length - 1):
            x.append(
                (x[-1] + 1) % 10 if torch.rand(1, generator=g) < 0.8 else int(torch.randint(10, (1,), generator=g))
            )
        docs.append([LM.BOS] + words[x].tolist())
    return docs


def test_vocab_remaps_by_training_frequency():
    docs = _docs(4)
    v = LM.build_vocab(docs[:3], docs + [[LM.BOS, 99]])
    assert v.gpt2_ids[-1] == 99  # seen only outside training: last
    counts = np.bincount(np.concatenate(docs[:3]), minlength=LM.BOS + 1)
    assert list(counts[list(v.gpt2_ids[:-1])]) == sorted(counts[list(v.gpt2_ids[:-1])], reverse=True)
    local = v.to_local(docs[0])
    assert torch.equal(torch.tensor(v.gpt2_ids)[local], torch.tensor(docs[0]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.to_local([12345])


def test_config_validates():
    with pytest.raises(ValueError, match="d_model"):
        LM.LMConfig(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="cutoffs"):
        LM.LMConfig(cutoffs=(50, 20))
    with pytest.raises(ValueError, match="n_ctx"):
        LM.LMConfig(n_ctx=4)


def test_tiny_model_trains_and_reloads_bit_identically(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERPOSE_MODEL_CACHE", str(tmp_path))
    docs = _docs()
    vocab = LM.build_vocab(docs[:9], docs)
    train = [vocab.to_local(d) for d in docs[:9]]
    cfg = LM.LMConfig(n_ctx=32, d_model=16, n_layer=1, n_head=2, steps=60, batch=8, lr=1e-2, cutoffs=(4,))
    m1, info1 = LM.cached_lm(train, vocab, cfg, seed=3)
    assert not info1["cached"] and info1["path"].is_file() and info1["path"].parent == tmp_path
    assert np.mean(info1["losses"][-10:]) < np.mean(info1["losses"][:5]) - 0.3  # it learned
    assert [p.name for p in tmp_path.iterdir()] == [info1["path"].name]  # atomic: no partial file left
    m2, info2 = LM.cached_lm(train, vocab, cfg, seed=3)
    assert info2["cached"] and info2["key"] == info1["key"] and info2["losses"] == info1["losses"]
    sd1, sd2 = m1.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    wins, _ = LM.eval_windows([vocab.to_local(d) for d in docs[9:]], 32)
    assert torch.equal(LM.heldout_loss(m1, wins), LM.heldout_loss(m2, wins))
    # the same training run again (no cache) gives the same weights: seeded
    m3, _ = LM.train_lm(train, len(vocab), cfg, seed=3)
    assert all(torch.equal(sd1[k], m3.state_dict()[k]) for k in sd1)
    # another seed or configuration is another cache entry
    _, info4 = LM.cached_lm(train, vocab, LM.LMConfig(**{**cfg.__dict__, "steps": 2}), seed=3)
    assert info4["key"] != info1["key"] and not info4["cached"]
    # the analysis code for GPT-2 runs on the trained body unchanged (eager attention: patterns)
    c = G.run_layer0(m2.transformer, wins[:1, :32])
    attn, pat = G.attn0_by_hand(m2.transformer, c.resid_pre)
    torch.testing.assert_close(c.attn_out, attn, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c.pattern, pat, atol=1e-6, rtol=1e-5)
    # and it beats the unigram baseline on held-out text of the same language
    ng = LM.ngram_losses(train, wins, len(vocab))
    assert LM.heldout_loss(m1, wins).mean() < ng["unigram"].mean() - 0.3


def test_ngram_losses_are_exact_on_a_small_case():
    train = [torch.tensor([0, 1, 0, 1, 2])]
    wins = torch.tensor([[0, 1, 2]])
    ng = LM.ngram_losses(train, wins, 3, lambdas=(0.5,))
    uni = torch.tensor([3.0, 3.0, 2.0]) / 8  # add-one: counts (2, 2, 1) + 1 over 5 + 3
    torch.testing.assert_close(ng["unigram"], -torch.log(uni[[1, 2]])[None].double())
    # P(1 | 0) = 0.5·(2/2) + 0.5·uni(1); P(2 | 1) = 0.5·(1/2) + 0.5·uni(2)
    want = -torch.log(torch.tensor([0.5 + 0.5 * 3 / 8, 0.25 + 0.5 * 2 / 8], dtype=torch.float64))
    torch.testing.assert_close(ng["bigram"], want[None])


def test_pieces_and_positions_are_shared_across_models():
    docs = [{"ids": d, "y": i % 2, "group": f"d{i}"} for i, d in enumerate(_docs(4, 150))]
    m = G.random_gpt2(0, n_layer=1)
    f1 = G.layer0_features(m, docs, window=10, chunk=64, per_piece=3, generator=torch.Generator().manual_seed(1))
    f2 = G.layer0_features(m, docs, window=10, chunk=64, per_piece=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(f1["pos"], f2["pos"]) and len(f1["y"]) == 4 * 3 * 3  # 3 pieces (64, 64, 23) per document
    with pytest.raises(ValueError, match="generator"):
        G.layer0_features(m, docs, per_piece=3)


def test_decay_length_ci_and_censored_format():
    k = torch.arange(21, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    per = torch.exp(-k / 8)[None, None] * (1 + 0.05 * torch.rand(30, 1, 21, generator=g, dtype=torch.float64))
    flat = torch.ones(30, 1, 21, dtype=torch.float64)
    ci = G.decay_length_ci(torch.cat([per, flat], 1), 1, 20, g, n_boot=50)
    assert ci["lo"][0] < 8.5 and ci["hi"][0] > 7.5 and abs(ci["ell"][0] - 8) < 0.5
    assert fmt_length(float(ci["ell"][1]), float(ci["lo"][1]), float(ci["hi"][1])).startswith("> 1000")
    assert "inf" not in fmt_length(float("inf")) and fmt_length(12.345) == "12.3"
    assert fmt_length(2000.0, 900.0, float("inf")) == "≥ 900 (upper end not resolved)"


def test_routing_oracle_perfect_and_indicator_map_linear():
    g = torch.Generator().manual_seed(0)
    B, C, per = 200, 4, 8
    y = torch.randint(C, (B,), generator=g)
    slot = torch.randint(per, (B,), generator=g)
    oracle = R.routed_circuits_errors(torch.nn.functional.one_hot(y, C).double(), y, slot, per, D=400)
    assert oracle["false_on"] == 0 and oracle["false_off"] == 0 and oracle["n_on"] == 1 and oracle["active_on"] < 1e-2
    none = R.routed_circuits_errors(torch.zeros(B, C, dtype=torch.float64), y, slot, per, D=400)
    assert none["false_off"] == 1 and none["n_on"] == 0 and none["active_on"] > 0.9
    allon = R.routed_circuits_errors(torch.ones(B, C, dtype=torch.float64), y, slot, per, D=400)
    assert allon["false_on"] > 0.7 and allon["n_on"] > C - 1  # interference may switch a few off (T = 32 on D = 400)
    with pytest.raises(ValueError, match="slot"):
        R.routed_circuits_errors(torch.ones(B, C), y, slot + per, per, D=400)
    # the fitted map is one affine map of the raw features and separates separable classes
    X = torch.randn(400, 6, generator=g)
    yy = torch.randint(3, (400,), generator=g)
    X[:, :3] += 4 * torch.nn.functional.one_hot(yy, 3)
    mp = R.fit_indicator_map(X, yy, 3, steps=50)
    lg = mp.logits(X)
    torch.testing.assert_close(mp.logits(2 * X) - lg, X.double() @ mp.U)  # affine: doubling x adds x U
    assert (lg.argmax(1) == yy).double().mean() > 0.95
    a = R.indicator_inputs(lg)
    assert a.min() >= 0 and a.max() <= 1


def test_toy_learned_positions_variant_has_no_recency_parameter():
    cfg = TG.ToyConfig(d_model=16, d_mlp=32, n_ctx=16, recency=False)
    m = TG.ToyTransformer(cfg)
    assert "slope" not in dict(m.named_parameters()) and torch.equal(m.slope, torch.zeros(4))
    assert "slope" in dict(TG.ToyTransformer(TG.ToyConfig(d_model=16, d_mlp=32, n_ctx=16)).named_parameters())
    with pytest.raises(ValueError, match="recency"):
        TG.ToyConfig(recency=1)
    lang = TG.ToyLanguage(switch=0.05)
    m2, losses = TG.train_toy(lang, cfg, steps=5, batch=4)
    assert torch.equal(m2.slope, torch.zeros(4)) and len(losses) == 5
