"""The gist chapter's tables and the text of its glued numbers, one function per section.

Each `*_summary` returns {"glue": {key: text}, ...}: every key the prose of its section uses,
also when the section could not run (its inputs None: the corpus was not fetched), then each
text is `NOT_COMPUTED`. The row builders turn one model's measurements into table rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.checks import checked
from ..report import compare_phrase, fmt_length
from . import brown as B
from .gpt2 import weights_sha256
from .probes import balanced_accuracy, bootstrap_ci

__all__ = [
    "NOT_COMPUTED",
    "genre_table",
    "corpus_summary",
    "gpt2_notice",
    "lm_summary",
    "kernel_rows",
    "kernel_summary",
    "probe_features",
    "probe_summary",
    "reach_row",
    "reach_summary",
    "neuron_row",
    "neuron_summary",
    "route_summary",
    "toy_training_line",
    "toy_probe_features",
    "filter_ceiling",
    "toy_probe_summary",
    "toy_reach_summary",
    "toy_neuron_table",
    "toy_neuron_summary",
]

NOT_COMPUTED = "not computed (no corpus)"


def _ci(r) -> str:
    return f"{r.bacc:.2f} ({r.lo:.2f}–{r.hi:.2f})"


# ----------------------------------------------------------------------------- the corpus
def genre_table(data) -> pd.DataFrame:
    """One row per Brown genre: letter, name, coarse group and its documents in each split."""
    return pd.DataFrame([{"letter": k.upper(), "genre": v, "group": B.COARSE[B.COARSE_OF[k]],
                          "train": sum(d["genre"] == k for d in data.train),
                          "held out": sum(d["genre"] == k for d in data.held)} for k, v in B.GENRES.items()])


def corpus_summary(data, error: str | None = None) -> dict:
    """{"glue": {"gist-corpus"}, "table": `genre_table` or None, "notice": Markdown or None}:
    with data None, the notice that the real-text sections were skipped (and why)."""
    if data is None:
        notice = (f"**Notice: the real-text sections were not run in this build.** {error}. Sections on the corpus, "
                  "the trained model, its kernels, probes, reach, context neurons and on-indicators are skipped; "
                  "the toy model below still runs.")
        return {"glue": {"gist-corpus": "not available in this build (the corpus was not fetched)"}, "table": None,
                "notice": notice}
    ntok = sum(len(v) for v in data.gpt2_ids.values())
    text = (f"{len(data.docs)} documents ({len(data.train)} for training, {len(data.held)} held out), "
            f"{ntok / 1e6:.2f} M GPT-2 tokens of {len(data.vocab)} types")
    return {"glue": {"gist-corpus": text}, "table": genre_table(data), "notice": None}


def gpt2_notice(folder) -> str:
    """Markdown: where GPT-2 Small's weights were found (with their digest), or that GPT-2 was
    not run (folder None)."""
    if folder is None:
        return ("**Notice: GPT-2 Small was not run in this build.** No local weights were found "
                "(`gpt2_path`, `$SUPERPOSE_GPT2_PATH`, Hugging Face cache). Every GPT-2 row below is absent; "
                "rerun this chapter with the weights to add them beside the trained model.")
    provenance = f"GPT-2 Small weights from {folder} (sha256 {weights_sha256(folder)[:16]}…)"
    return f"**GPT-2 weights found:** {provenance}; the GPT-2 rows below use the same Brown documents."


# ----------------------------------------------------------------------------- the language model
@checked
def lm_summary(loss_df, info, model, data, *, steps: int, batch: int, n_ctx: int) -> dict:
    """The trained model's numbers: {"glue", "losses" (loss_df indexed by predictor),
    "baselines" ({label: nats} for `plot_lm_training`)}. loss_df: `heldout_table`'s; info:
    `cached_lm`'s; all None when the corpus is missing (the budget is still stated)."""
    if loss_df is None:
        glue = {k: NOT_COMPUTED for k in ("gist-lm-loss", "gist-lm-bigram", "gist-lm-unigram", "gist-lm-vs-bigram",
                                          "gist-lm-train", "gist-lm-size")}
        return {"glue": glue | {"gist-lm-budget": f"{steps} steps of {batch} crops"}, "losses": None, "baselines": None}
    L_ = loss_df.set_index("predictor")

    def fmt(r):
        return f"{r['nats per token']:.2f} nats per token (95 % CI {r['lo']:.2f}–{r['hi']:.2f})"

    train_tokens = sum(len(t) for t in data.local(data.train))
    glue = {"gist-lm-loss": fmt(L_.loc["trained model"]), "gist-lm-bigram": fmt(L_.loc["bigram (interpolated)"]),
            "gist-lm-unigram": fmt(L_.loc["unigram"]),
            "gist-lm-vs-bigram": compare_phrase(L_.loc["trained − bigram"], "the bigram model's", "nats per token"),
            "gist-lm-train": (f"loaded from its cache (training had taken {info['train_s']:.0f} s)" if info["cached"]
                              else f"trained in {info['train_s']:.0f} s"),
            "gist-lm-size": f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters",
            "gist-lm-budget": (f"{steps} steps of {batch} crops, about {steps * batch * (n_ctx + 1) / train_tokens:.1f} "
                               "passes over the training tokens")}
    baselines = {"held out: unigram": L_.loc["unigram", "nats per token"],
                 "held out: bigram": L_.loc["bigram (interpolated)", "nats per token"],
                 "held out: trained model": L_.loc["trained model", "nats per token"]}
    return {"glue": glue, "losses": L_, "baselines": baselines}


# ----------------------------------------------------------------------------- 1. kernels
def kernel_rows(name: str, kernel, ci: dict, contextual) -> list[dict]:
    """One row per head of a model's mean kernel [H, K] (k = 0..K-1): the mass beyond the 3
    nearest tokens, whether it is contextual, and its decay length with the 95 % interval
    (`decay_length_ci`'s ell, lo, hi; as numbers and as censored text)."""
    rows = []
    for h in range(kernel.shape[0]):
        ell, lo, hi = float(ci["ell"][h]), float(ci["lo"][h]), float(ci["hi"][h])
        rows.append({"model": name, "head": h, "mass beyond k=3": float(kernel[h, 4:].sum() / kernel[h].sum()),
                     "contextual": bool(contextual[h]), "ell": ell, "lo": lo, "hi": hi,
                     "decay length [95 % CI], tokens": fmt_length(ell, lo, hi)})
    return rows


def kernel_summary(kernel_df, window: int) -> dict:
    """{"glue": {gist-heads, gist-uniform}, "shown" (the table without the random-init rows
    and the raw ell/lo/hi columns), "uniform_far" (random-init mass beyond k = 3, mean over
    heads), "uniform_expected" ((window - 3)/(window + 1): uniform causal attention)}."""
    expected = (window - 3) / (window + 1)
    if kernel_df is None:
        return {"glue": {"gist-heads": NOT_COMPUTED, "gist-uniform": NOT_COMPUTED}, "shown": None,
                "uniform_far": None, "uniform_expected": expected}
    shown = kernel_df[(kernel_df.model != "random init") & (kernel_df.contextual | (kernel_df.model == "trained"))]
    kt = kernel_df[kernel_df.model == "trained"]
    ctx_t = kt[kt.contextual]
    resolved = ctx_t[np.isfinite(ctx_t["hi"]) & (ctx_t["hi"] < 1000)]
    heads = (f"{len(ctx_t)} of {len(kt)} layer-0 heads of the trained model are contextual"
             + (f"; {len(resolved)} of them have a resolved decay length, "
                + ", ".join(resolved["decay length [95 % CI], tokens"]) + " tokens" if len(resolved)
                else "; none has a decay length resolved within the window"))
    uniform_far = float(kernel_df[kernel_df.model == "random init"]["mass beyond k=3"].mean())
    return {"glue": {"gist-heads": heads, "gist-uniform": f"{uniform_far:.2f} (uniform attention: {expected:.2f})"},
            "shown": shown.drop(columns=["ell", "lo", "hi"]), "uniform_far": uniform_far, "uniform_expected": expected}


# ----------------------------------------------------------------------------- 2. probes
def probe_features(f: dict, fr: dict, f2: dict | None = None, *, window: int, last_layer: int, mid_layer: int) -> dict:
    """The rows of the probe comparison, {name: feature matrix}, from `layer0_features` of the
    trained model (f), the random-init model (fr) and GPT-2 (f2, or None)."""
    rows = {"current token": f["resid_pre"], f"bag of words, last {window}": f["bow"],
            "after attn 0, random init": fr["resid_mid"], "after attn 0, trained": f["resid_mid"],
            f"layer {last_layer} (last), trained: ceiling": f["resid_layer"]}
    if f2 is not None:
        rows |= {"after attn 0, GPT-2": f2["resid_mid"], f"layer {mid_layer}, GPT-2: ceiling": f2["resid_layer"]}
    return rows


def probe_summary(probes: dict | None, *, window: int, last_layer: int) -> dict:
    """{"glue"}: balanced accuracies with intervals, "0.62 (0.58–0.66)", of the four-group
    rows (gist-p4-*) and three 15-letter rows (gist-p15-*). probes: {task: {row: ProbeResult}}."""
    if probes is None:
        return {"glue": {f"gist-p4-{k}": NOT_COMPUTED for k in ("tok", "bow", "rand", "gist", "ceil")}
                | {f"gist-p15-{k}": NOT_COMPUTED for k in ("gist", "rand", "tok")}}
    r4, r15 = probes["genre (4 groups)"], probes["genre (15 letters)"]
    glue = {f"gist-p4-{k}": _ci(r4[n]) for k, n in (("tok", "current token"), ("bow", f"bag of words, last {window}"),
                                                    ("rand", "after attn 0, random init"),
                                                    ("gist", "after attn 0, trained"),
                                                    ("ceil", f"layer {last_layer} (last), trained: ceiling"))}
    glue |= {"gist-p15-gist": _ci(r15["after attn 0, trained"]), "gist-p15-rand": _ci(r15["after attn 0, random init"]),
             "gist-p15-tok": _ci(r15["current token"])}
    return {"glue": glue}


# ----------------------------------------------------------------------------- 3. reach
def reach_row(name: str, c: dict, ell: float, lo: float, hi: float, far_k: int) -> dict:
    """One model's row of the reach table from `far_influence` (c) and `reach_ci`."""
    return {"model": name, "documents": c["n"], "Δresid at k=1": float(c["resid"][1]),
            f"Δresid at k={far_k}": float(c["resid"][-1]), "ell": ell, "lo": lo, "hi": hi,
            "reach of the probe readout [95 % CI], tokens": fmt_length(ell, lo, hi)}


def reach_summary(reach_df) -> dict:
    """{"glue": {gist-reach-trained, gist-reach-rand}, "shown": the table without ell/lo/hi}."""
    if reach_df is None:
        return {"glue": {"gist-reach-trained": NOT_COMPUTED, "gist-reach-rand": NOT_COMPUTED}, "shown": None}
    rr = reach_df.set_index("model")
    col = "reach of the probe readout [95 % CI], tokens"
    return {"glue": {"gist-reach-trained": rr.loc["trained", col], "gist-reach-rand": rr.loc["random init", col]},
            "shown": reach_df.drop(columns=["ell", "lo", "hi"])}


# ----------------------------------------------------------------------------- 4. context neurons
def neuron_row(name: str, with_attn, without) -> dict:
    """One model's row of the context-neuron table from the η² of every MLP0 neuron with and
    without attention 0's output; the top 10 are chosen by η² with attention."""
    top = with_attn.topk(10).indices
    return {"model": name, "neurons": len(with_attn), "η²>0.1 with attn": int((with_attn > 0.1).sum()),
            "η²>0.1 without": int((without > 0.1).sum()), "top-10 mean η² with": float(with_attn[top].mean()),
            "same neurons without": float(without[top].mean())}


def neuron_summary(neuron_df) -> dict:
    """{"glue": {gist-neurons-text}} from the trained model's row of the neuron table."""
    if neuron_df is None:
        return {"glue": {"gist-neurons-text": NOT_COMPUTED}}
    nt = neuron_df.set_index("model").loc["trained"]
    return {"glue": {"gist-neurons-text": (f"the ten most genre-selective MLP0 neurons of the trained model have mean "
                                           f"η² {nt['top-10 mean η² with']:.2f} with attention 0 and "
                                           f"{nt['same neurons without']:.2f} without it")}}


# ----------------------------------------------------------------------------- 5. routing
def route_summary(route_df) -> dict:
    """{"glue": {gist-route-gist, -tok, -err}, "gist", "token", "oracle": rows at τ = 0 (the
    oracle has no threshold)} from `routing_sweep`'s table."""
    if route_df is None:
        return {"glue": {k: NOT_COMPUTED for k in ("gist-route-gist", "gist-route-tok", "gist-route-err")},
                "gist": None, "token": None, "oracle": None}
    at0 = route_df[(route_df.tau == 0.0) | route_df.tau.isna()].set_index("source")
    gi, ct, orc = at0.loc["gist (after attn 0)"], at0.loc["current token"], at0.loc["oracle"]
    glue = {"gist-route-gist": f"false-on {gi.false_on:.3f}, false-off {gi.false_off:.3f}, "
                               f"{gi.n_on:.2f} circuits running per token",
            "gist-route-tok": f"false-on {ct.false_on:.3f}, false-off {ct.false_off:.3f}, {ct.n_on:.2f} circuits per token",
            "gist-route-err": (f"{gi.active_x:.3f} for the true circuit and {gi.inactive_x:.4f} for the others "
                               f"(current token: {ct.active_x:.3f} and {ct.inactive_x:.4f}; oracle: {orc.active_x:.3f} "
                               f"and {orc.inactive_x:.4f})")}
    return {"glue": glue, "gist": gi, "token": ct, "oracle": orc}


# ----------------------------------------------------------------------------- 6. the toy model
@checked
def toy_training_line(losses: dict, seconds: float, steps: int) -> str:
    """"trained 4 toy models × 1000 steps in 12 s; final losses …" (mean of the last 50 steps)."""
    return (f"trained {len(losses)} toy models × {steps} steps in {seconds:.0f} s; final losses "
            + ", ".join(f"{v}, p={p}: {np.mean(l[-50:]):.3f}" for (v, p), l in losses.items()))


def toy_probe_features(f: dict, fl: dict, fu: dict, *, window: int) -> dict:
    """The rows of the toy probe comparison from `toy_features` of the recency-slope (f),
    learned-positions (fl) and untrained (fu) models on the same documents."""
    return {"current token": f["resid_pre"], f"bag of words, last {window}": f["bow"],
            "after attn 0, untrained": fu["resid_mid"], "after attn 0, recency slope": f["resid_mid"],
            "after attn 0, learned positions": fl["resid_mid"]}


@checked
def filter_ceiling(f: dict, n_topics: int, task: str, generator, n_boot: int) -> dict:
    """The exact filter's row of the probe table: balanced accuracy of its argmax posterior with
    a 95 % document-bootstrap interval (not a probe: the Bayes ceiling)."""
    yhat = f["posterior"].argmax(-1).numpy()
    lo, hi = bootstrap_ci(f["y"].numpy(), yhat, f["group"], n_topics, generator, n_boot=n_boot)
    bayes = balanced_accuracy(f["y"].numpy(), yhat, n_topics)
    return {"task": task, "features": "exact filter (ceiling)", "bacc": bayes, "lo": lo, "hi": hi, "chance": 1 / n_topics}


def toy_probe_summary(toy_probes: dict) -> dict:
    """{"glue": toy probe accuracies at the smallest p, and gist-toy-plo/-phi (the smallest and
    largest p as text)}. toy_probes: {p: {row: ProbeResult} | {"filter": bacc}}."""
    p_lo, p_hi = min(toy_probes), max(toy_probes)
    q = toy_probes[p_lo]
    return {"glue": {"gist-toy-slope": f"{q['after attn 0, recency slope'].bacc:.2f}",
                     "gist-toy-learned": f"{q['after attn 0, learned positions'].bacc:.2f}",
                     "gist-toy-tok": f"{q['current token'].bacc:.2f}",
                     "gist-toy-untrained": f"{q['after attn 0, untrained'].bacc:.2f}",
                     "gist-toy-filter": f"{q['filter']:.2f}", "gist-toy-plo": str(p_lo), "gist-toy-phi": str(p_hi)}}


def toy_reach_summary(reach: dict, variants) -> dict:
    """{"glue", "table" (rows p), "ratio": {variant: reach at the smallest p / at the largest},
    "resolved": {variant: both reaches finite and ≤ 1000}}. reach: {p: {"filter reach",
    "filter theory −1/ln λ", "reach, <variant>"}}."""
    p_lo, p_hi = min(reach), max(reach)
    table = pd.DataFrame(reach).T
    table.index.name = "p"
    ratio = {v: reach[p_lo][f"reach, {v}"] / reach[p_hi][f"reach, {v}"] for v in variants}
    resolved = {v: all(np.isfinite(reach[p][f"reach, {v}"]) and reach[p][f"reach, {v}"] <= 1000 for p in (p_lo, p_hi))
                for v in variants}
    text = {v: f"{ratio[v]:.2g}" if resolved[v] else "not defined (a reach is not resolved)" for v in variants}
    glue = {"gist-toy-ratio-slope": text["recency slope"], "gist-toy-ratio-learned": text["learned positions"],
            "gist-toy-reach-learned": (f"{fmt_length(reach[p_lo]['reach, learned positions'])} tokens at p = {p_lo} and "
                                       f"{fmt_length(reach[p_hi]['reach, learned positions'])} at p = {p_hi}"),
            "gist-toy-reach-filter": f"{fmt_length(reach[p_lo]['filter reach'])} and {fmt_length(reach[p_hi]['filter reach'])}"}
    return {"glue": glue, "table": table, "ratio": ratio, "resolved": resolved}


def toy_neuron_table(gating: dict) -> pd.DataFrame:
    """One row per toy model of `neuron_gating`'s η² (keys: switch probabilities, "untrained")."""
    return pd.DataFrame([{"model": f"p = {k}" if k != "untrained" else k, "max η² (topic)": float(v["topic"].max()),
                          "max η² (topic), attn removed": float(v["topic_no_attn"].max()),
                          "neurons η²>0.3": int((v["topic"] > 0.3).sum()),
                          "max η² (current token)": float(v["token"].max())} for k, v in gating.items()])


def toy_neuron_summary(g: dict) -> dict:
    """{"glue": {gist-toy-neurons-text}} from one toy model's `neuron_gating`."""
    return {"glue": {"gist-toy-neurons-text": (f"the most topic-selective MLP0 neuron has η² = {g['topic'].max():.2f}; "
                                               f"without attention 0's output no neuron exceeds "
                                               f"{g['topic_no_attn'].max():.2f}")}}
