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
    return SimpleNamespace(
        docs=train + held,
        train=train,
        held=held,
        gpt2_ids=ids,
        vocab=list(range(7)),
        local=lambda part: [torch.tensor(ids[d["id"]]) for d in part],
    )


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


def test_lm_summary_texts():
    def row(name, v, lo, hi, slo, shi, per):
        return {
            "predictor": name,
            "nats per token": v,
            "doc_lo": lo,
            "doc_hi": hi,
            "seed_lo": slo,
            "seed_hi": shi,
            "per_seed": per,
        }

    loss_df = pd.DataFrame(
        [
            row("trained model", 4.0, 3.9, 4.1, 3.95, 4.05, [4.0, 4.0]),
            row("bigram (interpolated)", 4.5, 4.4, 4.6, 4.5, 4.5, [4.5]),
            row("unigram", 6.0, 5.9, 6.1, 6.0, 6.0, [6.0]),
            row("trained − bigram", -0.5, -0.6, -0.4, -0.55, -0.45, [-0.5, -0.5]),
        ]
    )
    model = SimpleNamespace(
        parameters=lambda: [torch.zeros(1000, 1000)], named_parameters=lambda: [("h.0", torch.zeros(10))]
    )
    info = {"cached": False, "train_s": 12.4, "losses": [5.0] * 60, "heldout": [[50, 5.5]]}
    data = _fake_data()  # 3 + 2 + 4 = 9 training tokens
    cfg = SimpleNamespace(steps=3, batch=2, n_ctx=2)
    s = gist.lm_summary(loss_df, [(model, info), (model, info)], data, cfg, curve_windows=7)
    g = s["glue"]
    assert g["gist-lm-loss"] == "4.00 (documents 3.90–4.10; seeds 3.95–4.05)"
    assert g["gist-lm-unigram"] == "6.00 (documents 5.90–6.10)"  # no seed spread: a baseline has one value
    assert g["gist-lm-vs-bigram"] == (
        "every seed is below it, trained − bigram = −0.50 (documents −0.60 to −0.40; "
        "seeds −0.55 to −0.45) nats per token"
    )
    assert g["gist-lm-train"] == "trained here in 12 s of one CPU core per seed"
    assert g["gist-lm-size"].startswith("1.0 M parameters")
    assert g["gist-lm-epochs"] == "2.0"  # 3 steps · 2 crops · 3 tokens / 9
    assert g["gist-lm-gap"].endswith("a gap of 0.50") and g["gist-lm-curve-windows"] == "7"
    assert s["baselines"] == {"bigram, held out": 4.5, "unigram, held out": 6.0}
    cached = gist.lm_summary(loss_df, [(model, info | {"cached": True})], data, cfg)
    assert cached["glue"]["gist-lm-train"].startswith("loaded from its cache")
    none = gist.lm_summary(None, None, None, None)
    assert none["glue"]["gist-lm-loss"] == gist.NOT_COMPUTED and none["table"] is None


def test_kernel_summary_counts_contextual_heads():
    k = torch.tensor(
        [
            [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],  # 2 of 5 beyond k = 3
            [0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    )  # 1 of 5
    kern = {
        "kernels": torch.stack([k, k]),
        "contextual": torch.tensor([[True, False], [True, True]]),
        "ell": [10.0, math.inf],
    }
    init = {"kernels": torch.ones(2, 2, 7), "contextual": torch.ones(2, 2, dtype=torch.bool), "ell": [math.inf] * 2}
    s = gist.kernel_summary(kern, init, window=5)
    assert s["uniform_expected"] == pytest.approx(2 / 6) and s["uniform_far"] == pytest.approx(3 / 7)
    assert s["glue"]["gist-heads"] == "In the trained models 1, 2 of the 2 layer-0 heads (per seed) are contextual"
    assert s["glue"]["gist-ell"] == (
        "10.0, > 1000 tokens (seeds 0, 1): 1 of the 2 fits are longer than twice the window of 5 tokens (nearly flat)"
    )
    assert s["glue"]["gist-uniform"] == "0.43 (uniform attention: 0.33)"
    assert "not measured in this build" in s["glue"]["gist-gpt2-kernels"]
    g2 = gist.kernel_summary(kern, init, 5, {"contextual": torch.tensor([[True, False, True]]), "ell": [42.0]})
    assert g2["glue"]["gist-gpt2-kernels"] == (
        "In GPT-2 Small, on the same text, 2 of its 3 layer-0 heads are contextual "
        "and the kernel fitted to them has ℓ = 42.0 tokens."
    )


def _paired(names, kind="row"):
    return [
        {
            "name": n,
            "kind": kind,
            "value": 0.5 + 0.01 * i,
            "doc_lo": 0.45,
            "doc_hi": 0.55 + 0.01 * i,
            "seed_lo": 0.48,
            "seed_hi": 0.52,
            "per_seed": [0.5, 0.5, 0.5],
        }
        for i, n in enumerate(names)
    ]


def test_probe_context_splice_route_and_network_summaries():
    rows = ["tok", "rand", "bow", "ewbow", "unif", "gist", "last", "long", "both"]
    diffs = [
        {**r, "value": v, "doc_lo": v - 0.02, "doc_hi": v + 0.02, "seed_lo": v - 0.03, "seed_hi": v + 0.03}
        for r, v in zip(_paired(gist.PAIRS, "difference"), (0.05, -0.04, 0.0, 0.2, 0.3, 0.0, 0.0, 0.2))
    ]
    tab = pd.DataFrame(_paired(rows) + diffs)
    g = gist.probe_summary(tab, {"rescale": [10.0, 30.0]}, 512)["glue"]
    assert g["gist-p-gist"] == "0.55 (documents 0.45–0.60; seeds 0.48–0.52)"
    assert g["gist-d-gist-bow"] == "+0.050 (documents +0.030 to +0.070; seeds +0.020 to +0.080)"
    assert (g["gist-v-bow"], g["gist-v-ewbow"], g["gist-v-unif"]) == ("above", "below", "not distinguishable from")
    assert "not in where it looks" in g["gist-unif-reading"] and g["gist-rescale"] == "20"
    assert g["gist-gpt2-text"] == "GPT-2 Small was not run in this build."
    ctx = pd.DataFrame(
        [
            {"row": r, "lo_len": lo, "hi_len": hi, "bacc": b, "doc_lo": 0, "doc_hi": 1}
            for r in ("gist", "last", "bow")
            for lo, hi, b in ((1, 8, 0.3), (65, 128, 0.5))
        ]
    )
    c = gist.context_summary(ctx, tab, 512)["glue"]
    assert c["gist-ctx-growth"].startswith("from 0.30 (at most 8 tokens of context) to 0.50 (65–128 tokens)")
    assert c["gist-ctx-reading"].startswith("the context the model can see, not the layer, limits the probes")
    sw = pd.DataFrame(
        [
            {
                "row": k,
                "switch": v,
                "doc_lo": v - 2,
                "doc_hi": v + 2,
                "seed_lo": v - 3,
                "seed_hi": v + 3,
                "per_seed": [v],
            }
            for k, v in (("gist", 20.0), ("bow", 45.0), ("ewbow", 15.0), ("unif", 40.0), ("last", math.inf))
        ]
    )
    splice = {"curves": {"gist": torch.zeros(3, 10, 128)}, "before": 48}
    st = gist.splice_summary(sw, splice, [10.0, 1200.0])["glue"]
    assert st["gist-sw-gist"] == "20 tokens (documents 18–22; seeds 17–23)" and st["gist-sw-short-last"] == "> 80"
    assert st["gist-sw-last"].startswith("more than 80 tokens") and st["gist-splice-n"] == "10"
    assert st["gist-sw-kernel"] == " (ℓ ln 2 = 7 tokens for the seeds whose kernel decays within the piece)"
    rt = pd.DataFrame(
        [
            {"row": k, "value": 0.1, "doc_lo": 0.05, "doc_hi": 0.2, "seed_lo": 0.08, "seed_hi": 0.12, "per_seed": [0.1]}
            for k in gist.ROUTE_ROWS
        ]
    )
    r = gist.route_summary(rt, {"gist": [{"wrongly_off": 0.002, "switched_off": 0.1}]}, 1e-3, 20000)["glue"]
    assert (r["gist-route-k"], r["gist-honest-wrong"]) == ("20", "0.0020") and r["gist-honest-verdict"].startswith(
        "above"
    )
    assert r["gist-off-gist"] == "0.100 (documents 0.050–0.200; seeds 0.080–0.120)"
    caps = pd.DataFrame(
        [
            {"source": s, "seed": seed, "capacity": c, "text": t, "z": z}
            for s, seed, c, t, z in (
                ("oracle", None, 96, "≥ 96", 1.0),
                ("all on", None, 48, "48", 4.0),
                ("gist at budget", 0, 48, "48", 3.9),
                ("gist at budget", 1, 48, "48", 3.88),
            )
        ]
    )
    n = gist.network_summary(caps, caps, rt, 1e-3)["glue"]
    assert (n["gist-net-z"], n["gist-net-all"], n["gist-net-gist"], n["gist-net-oracle"]) == (
        "3.89",
        "48",
        "48, 48",
        "≥ 96",
    )
    assert "no superposition room" in n["gist-net-verdict"]
    assert gist.closing_summary(100.0)["gist-runtime"].startswith("100 s, ")


def test_toy_summaries():
    assert gist.toy_training_line({("a", 0.1): [1.0] * 60 + [0.5] * 50, ("b", 0.1): [0.7] * 50}, 3.2, 110) == (
        "2 toy models × 110 steps in 3 s (final losses 0.50–0.70 nats)"
    )
    rows = gist.toy_probe_features(
        {"resid_pre": 1, "bow": 2, "resid_mid": 3}, {"resid_mid": 4}, {"resid_mid": 5}, window=32
    )
    assert list(rows.values()) == [1, 2, 5, 3, 4]
    names = [
        "after attn 0, recency slope",
        "after attn 0, learned positions",
        "current token",
        "after attn 0, untrained",
    ]
    tp = {p: {n: _res(0.9 - 0.1 * i - p, 0, 1) for i, n in enumerate(names)} | {"filter": 0.95} for p in (0.1, 0.02)}
    g = gist.toy_probe_summary(tp)["glue"]
    assert (g["gist-toy-plo"], g["gist-toy-phi"], g["gist-toy-slope"], g["gist-toy-filter"]) == (
        "0.02",
        "0.1",
        "0.88",
        "0.95",
    )
    reach = {
        0.02: {
            "filter reach": 20.0,
            "filter theory −1/ln λ": 30.0,
            "reach, recency slope": 10.0,
            "reach, learned positions": math.inf,
        },
        0.1: {
            "filter reach": 5.0,
            "filter theory −1/ln λ": 6.0,
            "reach, recency slope": 5.0,
            "reach, learned positions": 4.0,
        },
    }
    r = gist.toy_reach_summary(reach, ["recency slope", "learned positions"])
    assert r["ratio"]["recency slope"] == 2.0 and r["resolved"] == {"recency slope": True, "learned positions": False}
    assert r["glue"]["gist-toy-ratio-slope"] == "2" and "not defined" in r["glue"]["gist-toy-ratio-learned"]
    assert r["glue"]["gist-toy-reach-learned"] == "> 1000 tokens at p = 0.02 and 4.0 at p = 0.1"
    assert r["glue"]["gist-toy-reach-filter"] == "20.0 and 5.0"
    assert list(r["table"].index) == [0.02, 0.1] and r["table"].index.name == "p"
    gating = {
        0.02: {
            "topic": torch.tensor([0.1, 0.6, 0.35]),
            "topic_no_attn": torch.tensor([0.05, 0.1, 0.0]),
            "token": torch.tensor([0.2, 0.0, 0.0]),
        }
    }
    gating["untrained"] = gating[0.02]
    t = gist.toy_neuron_table(gating)
    assert list(t["model"]) == ["p = 0.02", "untrained"] and list(t["neurons η²>0.3"]) == [2, 2]
    assert gist.toy_neuron_summary(gating[0.02])["glue"]["gist-toy-neurons-text"] == (
        "the most topic-selective MLP0 neuron has η² = 0.60; without attention 0's output no neuron exceeds 0.10"
    )


def test_filter_ceiling_perfect_posterior():
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    f = {"posterior": torch.nn.functional.one_hot(y, 4).float(), "y": y, "group": np.repeat(np.arange(4), 2)}
    row = gist.filter_ceiling(f, 4, "p = 0.1", torch.Generator().manual_seed(0), n_boot=20)
    assert row == {
        "task": "p = 0.1",
        "features": "exact filter (ceiling)",
        "bacc": 1.0,
        "lo": 1.0,
        "hi": 1.0,
        "chance": 0.25,
    }


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
    set_ = set(gist.corpus_summary(None, "x")["glue"]) | set(gist.lm_summary(None, None, None, None)["glue"])
    for s in (
        gist.kernel_summary(None, None, 50),
        gist.probe_summary(None, None, 512),
        gist.context_summary(None, None, 512),
        gist.splice_summary(None, None, None),
        gist.route_summary(None, None, 1e-3, 0),
        gist.network_summary(None, None, None, 1e-3),
    ):
        assert all(isinstance(v, str) for v in s["glue"].values())
        set_ |= set(s["glue"])
    set_ |= set(gist.closing_summary(1.0))
    # the toy model always runs; its keys come from its summaries on real inputs (checked above)
    toy = {
        "gist-toy-slope",
        "gist-toy-learned",
        "gist-toy-tok",
        "gist-toy-untrained",
        "gist-toy-filter",
        "gist-toy-plo",
        "gist-toy-phi",
        "gist-toy-ratio-slope",
        "gist-toy-ratio-learned",
        "gist-toy-reach-learned",
        "gist-toy-reach-filter",
        "gist-toy-neurons-text",
        "gist-toy-train",
    }
    assert used <= set_ | toy, sorted(used - set_ - toy)
