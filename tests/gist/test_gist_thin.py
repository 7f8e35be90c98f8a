"""The gist chapter's summaries (superpose_lib.gist.summary) and the plot helpers it uses, on
small hand-made inputs; and that the chapter's glue keys are all produced when the corpus
is missing (the branch a build without the corpus takes)."""

import math
import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from superpose_lib import gist  # noqa: E402

BOOK = Path(__file__).resolve().parents[2] / "book" / "gist.md"


def _res(bacc, lo, hi):
    return SimpleNamespace(bacc=bacc, lo=lo, hi=hi)


def _fake_data():
    train = [{"id": "a01", "genre": "a"}, {"id": "a02", "genre": "a"}, {"id": "k01", "genre": "k"}]
    held = [{"id": "a03", "genre": "a"}]
    ids = {"a01": [0, 1, 2], "a02": [0, 3], "k01": [0, 4, 5, 6], "a03": [0, 1]}
    return SimpleNamespace(docs=train + held, train=train, held=held, gpt2_ids=ids, vocab=list(range(7)),
                           local=lambda part: [torch.tensor(ids[d["id"]]) for d in part])


def test_corpus_summary_counts_documents_tokens_and_genres():
    data = _fake_data()
    s = gist.corpus_summary(data)
    assert s["glue"]["gist-corpus"] == "4 documents (3 for training, 1 held out), 0.00 M GPT-2 tokens of 7 types"
    t = s["table"].set_index("letter")
    assert len(t) == len(gist.GENRES)
    assert (t.loc["A", "train"], t.loc["A", "held out"], t.loc["K", "train"], t.loc["B", "train"]) == (2, 1, 1, 0)
    assert t.loc["A", "group"] == gist.COARSE[gist.COARSE_OF["a"]]
    missing = gist.corpus_summary(None, "no tarball in the cache")
    assert missing["table"] is None and "no tarball in the cache" in missing["notice"]
    assert "not available" in missing["glue"]["gist-corpus"]


def test_gpt2_notice_without_weights():
    assert "was not run" in gist.gpt2_notice(None)


def test_lm_summary_texts_and_budget():
    loss_df = pd.DataFrame([
        {"predictor": "trained model", "nats per token": 4.0, "lo": 3.9, "hi": 4.1},
        {"predictor": "bigram (interpolated)", "nats per token": 4.5, "lo": 4.4, "hi": 4.6},
        {"predictor": "unigram", "nats per token": 6.0, "lo": 5.9, "hi": 6.1},
        {"predictor": "trained − bigram", "nats per token": -0.5, "lo": -0.6, "hi": -0.4}])
    model = torch.nn.Linear(999, 1000)  # 1 000 000 parameters
    data = _fake_data()  # 3 + 2 + 4 = 9 training tokens
    s = gist.lm_summary(loss_df, {"cached": False, "train_s": 12.4}, model, data, steps=3, batch=2, n_ctx=2)
    g = s["glue"]
    assert g["gist-lm-loss"] == "4.00 nats per token (95 % CI 3.90–4.10)"
    assert g["gist-lm-unigram"].startswith("6.00")
    assert g["gist-lm-vs-bigram"].startswith("lower than the bigram model's by 0.50")
    assert g["gist-lm-train"] == "trained in 12 s"
    assert g["gist-lm-size"] == "1.0 M parameters"
    assert g["gist-lm-budget"] == "3 steps of 2 crops, about 2.0 passes over the training tokens"  # 3·2·3 / 9
    assert s["baselines"] == {"held out: unigram": 6.0, "held out: bigram": 4.5, "held out: trained model": 4.0}
    cached = gist.lm_summary(loss_df, {"cached": True, "train_s": 99.6}, model, data, steps=3, batch=2, n_ctx=2)
    assert cached["glue"]["gist-lm-train"] == "loaded from its cache (training had taken 100 s)"
    none = gist.lm_summary(None, None, None, None, steps=3, batch=2, n_ctx=2)
    assert none["glue"]["gist-lm-budget"] == "3 steps of 2 crops" and none["glue"]["gist-lm-loss"] == gist.NOT_COMPUTED


def test_kernel_rows_and_summary():
    k = torch.tensor([[0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],   # 2 of 5 beyond k = 3
                      [0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 1.0]])  # 1 of 5
    ci = {"ell": [10.0, math.inf], "lo": [8.0, math.inf], "hi": [12.0, math.inf]}
    rows = gist.kernel_rows("trained", k, ci, [True, True])
    assert [r["mass beyond k=3"] for r in rows] == pytest.approx([0.4, 0.2])
    assert rows[0]["decay length [95 % CI], tokens"] == "10.0 [8.0, 12.0]"
    rand = gist.kernel_rows("random init", torch.ones(2, 7), {"ell": [1, 1], "lo": [1, 1], "hi": [1, 1]}, [True, False])
    df = pd.DataFrame(rows + rand)
    s = gist.kernel_summary(df, window=5)
    assert s["uniform_expected"] == pytest.approx(2 / 6)
    assert s["uniform_far"] == pytest.approx(3 / 7)  # k = 4, 5, 6 of 7 equal entries
    assert s["glue"]["gist-heads"] == ("2 of 2 layer-0 heads of the trained model are contextual; 1 of them have a "
                                       "resolved decay length, 10.0 [8.0, 12.0] tokens")
    assert s["glue"]["gist-uniform"] == "0.43 (uniform attention: 0.33)"
    assert set(s["shown"]["model"]) == {"trained"} and "ell" not in s["shown"]
    none = gist.kernel_summary(pd.DataFrame(gist.kernel_rows("trained", k, ci, [False, False])), window=5)
    assert none["glue"]["gist-heads"].startswith("0 of 2") and "none has" in none["glue"]["gist-heads"]


def test_probe_features_and_summary():
    f = {"resid_pre": 1, "bow": 2, "resid_mid": 3, "resid_layer": 4}
    fr = {"resid_mid": 5}
    rows = gist.probe_features(f, fr, None, window=50, last_layer=2, mid_layer=6)
    assert rows == {"current token": 1, "bag of words, last 50": 2, "after attn 0, random init": 5,
                    "after attn 0, trained": 3, "layer 2 (last), trained: ceiling": 4}
    rows2 = gist.probe_features(f, fr, {"resid_mid": 6, "resid_layer": 7}, window=50, last_layer=2, mid_layer=6)
    assert rows2["after attn 0, GPT-2"] == 6 and rows2["layer 6, GPT-2: ceiling"] == 7
    probes = {t: {n: _res(0.5 + 0.01 * i, 0.4, 0.6) for i, n in enumerate(rows)} for t in gist.TASK_LABELS}
    g = gist.probe_summary(probes, window=50, last_layer=2)["glue"]
    assert g["gist-p4-tok"] == "0.50 (0.40–0.60)" and g["gist-p4-ceil"] == "0.54 (0.40–0.60)"
    assert g["gist-p15-gist"] == "0.53 (0.40–0.60)"
    assert len(g) == 8


def test_reach_and_neuron_rows():
    c = {"n": 7, "resid": torch.tensor([0.0, 0.5, 0.25, 0.1])}
    row = gist.reach_row("trained", c, 12.0, 9.0, 20.0, far_k=3)
    assert row["Δresid at k=1"] == 0.5 and row["Δresid at k=3"] == pytest.approx(0.1)
    df = pd.DataFrame([row, gist.reach_row("random init", c, math.inf, math.inf, math.inf, far_k=3)])
    s = gist.reach_summary(df)
    assert s["glue"] == {"gist-reach-trained": "12.0 [9.0, 20.0]", "gist-reach-rand": "> 1000 (no decay resolved)"}
    with_attn = torch.arange(12, dtype=torch.float) / 25  # 0 … 0.44; the top 10 are 0.08 … 0.44
    without = torch.full((12,), 0.05)
    n = gist.neuron_row("trained", with_attn, without)
    assert (n["neurons"], n["η²>0.1 with attn"], n["η²>0.1 without"]) == (12, 9, 0)
    assert n["top-10 mean η² with"] == pytest.approx(0.26) and n["same neurons without"] == pytest.approx(0.05)
    txt = gist.neuron_summary(pd.DataFrame([n]))["glue"]["gist-neurons-text"]
    assert "mean η² 0.26 with attention 0 and 0.05 without it" in txt


def test_route_summary_reads_tau_zero_and_oracle():
    rows = []
    for src, fo in (("gist (after attn 0)", 0.1), ("current token", 0.3)):
        for tau in (-1.0, 0.0, 1.0):
            rows.append({"source": src, "tau": tau, "false_on": fo + tau / 100, "false_off": 0.2, "n_on": 1.5,
                         "active_x": 0.05, "inactive_x": 0.001})
    rows.append({"source": "oracle", "tau": np.nan, "false_on": 0.0, "false_off": 0.0, "n_on": 1.0, "active_x": 0.01,
                 "inactive_x": 0.0001})
    s = gist.route_summary(pd.DataFrame(rows))
    assert s["glue"]["gist-route-gist"] == "false-on 0.100, false-off 0.200, 1.50 circuits running per token"
    assert s["glue"]["gist-route-tok"].startswith("false-on 0.300")
    assert "oracle: 0.010 and 0.0001" in s["glue"]["gist-route-err"]
    assert s["oracle"].false_on == 0


def test_toy_summaries():
    assert gist.toy_training_line({("a", 0.1): [1.0] * 60 + [0.5] * 50}, 3.2, 110) == (
        "trained 1 toy models × 110 steps in 3 s; final losses a, p=0.1: 0.500")
    rows = gist.toy_probe_features({"resid_pre": 1, "bow": 2, "resid_mid": 3}, {"resid_mid": 4}, {"resid_mid": 5},
                                   window=32)
    assert list(rows.values()) == [1, 2, 5, 3, 4]
    names = ["after attn 0, recency slope", "after attn 0, learned positions", "current token", "after attn 0, untrained"]
    tp = {p: {n: _res(0.9 - 0.1 * i - p, 0, 1) for i, n in enumerate(names)} | {"filter": 0.95} for p in (0.1, 0.02)}
    g = gist.toy_probe_summary(tp)["glue"]
    assert (g["gist-toy-plo"], g["gist-toy-phi"], g["gist-toy-slope"], g["gist-toy-filter"]) == ("0.02", "0.1", "0.88", "0.95")
    reach = {0.02: {"filter reach": 20.0, "filter theory −1/ln λ": 30.0, "reach, recency slope": 10.0,
                    "reach, learned positions": math.inf},
             0.1: {"filter reach": 5.0, "filter theory −1/ln λ": 6.0, "reach, recency slope": 5.0,
                   "reach, learned positions": 4.0}}
    r = gist.toy_reach_summary(reach, ["recency slope", "learned positions"])
    assert r["ratio"]["recency slope"] == 2.0 and r["resolved"] == {"recency slope": True, "learned positions": False}
    assert r["glue"]["gist-toy-ratio-slope"] == "2" and "not defined" in r["glue"]["gist-toy-ratio-learned"]
    assert r["glue"]["gist-toy-reach-learned"] == "> 1000 tokens at p = 0.02 and 4.0 at p = 0.1"
    assert r["glue"]["gist-toy-reach-filter"] == "20.0 and 5.0"
    assert list(r["table"].index) == [0.02, 0.1] and r["table"].index.name == "p"
    gating = {0.02: {"topic": torch.tensor([0.1, 0.6, 0.35]), "topic_no_attn": torch.tensor([0.05, 0.1, 0.0]),
                     "token": torch.tensor([0.2, 0.0, 0.0])}}
    gating["untrained"] = gating[0.02]
    t = gist.toy_neuron_table(gating)
    assert list(t["model"]) == ["p = 0.02", "untrained"] and list(t["neurons η²>0.3"]) == [2, 2]
    assert gist.toy_neuron_summary(gating[0.02])["glue"]["gist-toy-neurons-text"] == (
        "the most topic-selective MLP0 neuron has η² = 0.60; without attention 0's output no neuron exceeds 0.10")


def test_filter_ceiling_perfect_posterior():
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    f = {"posterior": torch.nn.functional.one_hot(y, 4).float(), "y": y, "group": np.repeat(np.arange(4), 2)}
    row = gist.filter_ceiling(f, 4, "p = 0.1", torch.Generator().manual_seed(0), n_boot=20)
    assert row == {"task": "p = 0.1", "features": "exact filter (ceiling)", "bacc": 1.0, "lo": 1.0, "hi": 1.0,
                   "chance": 0.25}


def test_plot_helpers():
    ax = gist.plot_not_computed("no corpus")
    assert "Not computed in this build: no corpus" in ax.texts[0].get_text() and not ax.axison
    ax = gist.plot_selectivity({"m": (torch.tensor([0.1]), torch.tensor([0.5]))}, what="genre group")
    assert ax.get_xlabel() == "η² by genre group, attention 0 removed"
    ax = gist.plot_influence({"a": (torch.arange(1, 4), torch.tensor([2.0, 1.0, 0.5]))}, outside=True)
    assert np.allclose(ax.lines[0].get_ydata(), [1.0, 0.5, 0.25]) and ax.get_legend() is not None
    plt.close("all")


def test_every_glue_key_of_the_chapter_is_set_without_the_corpus():
    text = BOOK.read_text()
    used = set(re.findall(r"\{glue:text\}`([\w-]+)`", text))
    set_ = set(gist.corpus_summary(None, "x")["glue"])
    set_ |= set(gist.lm_summary(None, None, None, None, steps=1, batch=1, n_ctx=1)["glue"])
    set_ |= set(gist.kernel_summary(None, 50)["glue"]) | set(gist.probe_summary(None, window=50, last_layer=2)["glue"])
    set_ |= set(gist.reach_summary(None)["glue"]) | set(gist.neuron_summary(None)["glue"])
    set_ |= set(gist.route_summary(None)["glue"])
    # the toy model always runs; its keys come from its summaries on real inputs (checked above)
    toy = {"gist-toy-slope", "gist-toy-learned", "gist-toy-tok", "gist-toy-untrained", "gist-toy-filter", "gist-toy-plo",
           "gist-toy-phi", "gist-toy-ratio-slope", "gist-toy-ratio-learned", "gist-toy-reach-learned",
           "gist-toy-reach-filter", "gist-toy-neurons-text", "gist-runtime"}
    assert used <= set_ | toy, sorted(used - set_ - toy)
    assert all(v == gist.NOT_COMPUTED for k, v in gist.probe_summary(None, window=50, last_layer=2)["glue"].items())
