"""The gist chapter's tables and the text of its glued numbers, one function per section.

Each `*_summary` returns {"glue": {key: text}, ...}: every key the prose of its section uses,
also when the section could not run (its inputs None: the corpus was not fetched), then each
text is `NOT_COMPUTED`. The row builders turn one model's measurements into table rows.
"""

from __future__ import annotations

import os
import platform

import numpy as np
import pandas as pd
import torch

from ..core.checks import checked
from ..plots import LABELS
from ..report import fmt_length
from . import brown as B
from .experiment import PAIRS
from .gpt2 import weights_sha256
from .probes import balanced_accuracy, bootstrap_ci

__all__ = [
    "NOT_COMPUTED",
    "ci_text",
    "genre_table",
    "corpus_summary",
    "gpt2_notice",
    "lm_summary",
    "kernel_summary",
    "probe_summary",
    "context_summary",
    "splice_summary",
    "route_summary",
    "network_summary",
    "closing_summary",
    "toy_training_line",
    "toy_probe_features",
    "filter_ceiling",
    "toy_probe_summary",
    "toy_reach_summary",
    "toy_neuron_table",
    "toy_neuron_summary",
]

NOT_COMPUTED = "not computed (no corpus)"


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


# ----------------------------------------------------------------------------- intervals as text
def ci_text(value, doc_lo, doc_hi, seed_lo=None, seed_hi=None, *, digits: int = 2, signed: bool = False) -> str:
    """"0.53 (documents 0.50–0.56; seeds 0.51–0.55)": a mean over seeds with its 95 %
    intervals over documents and over training seeds (the seed part is left out where the
    quantity does not depend on the seed: its interval is a point). Signed: "+0.05 (documents
    +0.03 to +0.07; ...)", for differences."""
    f = (lambda v: f"{v:+.{digits}f}".replace("-", "−")) if signed else (lambda v: f"{v:.{digits}f}".replace("-", "−"))
    sep = " to " if signed else "–"
    out = f"{f(value)} (documents {f(doc_lo)}{sep}{f(doc_hi)}"
    if seed_lo is not None and np.isfinite(seed_lo) and abs(seed_hi - seed_lo) > 10 ** -(digits + 2):
        out += f"; seeds {f(seed_lo)}{sep}{f(seed_hi)}"
    elif seed_lo is not None and not np.isfinite(seed_lo):
        out += "; seeds: not resolved"
    return out + ")"


def _shown(df, name_col: str, names: dict | None = None, digits: int = 3) -> pd.DataFrame:
    """A display table: name, value, the two intervals as "lo – hi", and the per-seed values."""
    rows = []
    for r in df.itertuples():
        n = getattr(r, name_col)
        rows.append({"": (names or {}).get(n, n), "mean over seeds": round(r.value, digits),
                     "95 % over documents": f"{r.doc_lo:.{digits}f} – {r.doc_hi:.{digits}f}",
                     "95 % over seeds": (f"{r.seed_lo:.{digits}f} – {r.seed_hi:.{digits}f}"
                                         if np.isfinite(r.seed_lo) and r.seed_hi - r.seed_lo > 1e-9 else "—"),
                     "per seed": ", ".join(f"{v:.{digits}f}" for v in r.per_seed)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the language models
def lm_summary(loss_df, runs, data, cfg, curve_windows: int = 0) -> dict:
    """{"glue", "table" (display), "losses" (loss_df indexed by predictor), "baselines"
    ({label: nats} for `plot_lm_curves`)} from `experiment.lm_losses`' table and
    `cached_lms`' (model, info) pairs; every glue key is set when loss_df is None."""
    keys = ("gist-lm-loss", "gist-lm-bigram", "gist-lm-unigram", "gist-lm-vs-bigram", "gist-lm-train", "gist-lm-size",
            "gist-lm-epochs", "gist-lm-gap", "gist-lm-curve-windows", "gist-lm-tokens")
    if loss_df is None:
        return {"glue": dict.fromkeys(keys, NOT_COMPUTED), "table": None, "losses": None, "baselines": None}
    L_ = loss_df.set_index("predictor")
    infos = [i for _, i in runs]

    def fmt(name, signed=False):
        r = L_.loc[name]
        return ci_text(r["nats per token"], r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi, signed=signed)

    d = L_.loc["trained − bigram"]
    if d.doc_hi < 0 and max(d.per_seed) < 0:
        vs = f"every seed is below it, trained − bigram = {fmt('trained − bigram', True)} nats per token"
    else:
        vs = f"trained − bigram = {fmt('trained − bigram', True)} nats per token, not clearly below it"
    model = runs[0][0]
    train_tokens = sum(len(t) for t in data.local(data.train))
    secs = [i["train_s"] for i in infos]
    fresh = [not i["cached"] for i in infos]
    train = (f"trained here in {np.mean(secs):.0f} s of one CPU core per seed" if all(fresh) else
             f"loaded from its cache (training had taken {np.nanmean(secs):.0f} s of one CPU core per seed)" if not any(fresh)
             else f"trained or loaded ({sum(fresh)} of {len(fresh)} seeds trained in this build, "
                  f"{np.nanmean(secs):.0f} s of one CPU core each)")
    last = [i["heldout"][-1][1] for i in infos if i["heldout"]]
    tail = [np.mean(i["losses"][-50:]) for i in infos if i["losses"]]
    gap = (f"at the last step the training loss is {np.mean(tail):.2f} and the held-out loss {np.mean(last):.2f} nats "
           f"per token (means over seeds), a gap of {np.mean(last) - np.mean(tail):.2f}") if last and tail else NOT_COMPUTED
    glue = {"gist-lm-loss": fmt("trained model"), "gist-lm-bigram": fmt("bigram (interpolated)"),
            "gist-lm-unigram": fmt("unigram"), "gist-lm-vs-bigram": vs, "gist-lm-train": train,
            "gist-lm-size": (f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters "
                             f"({sum(p.numel() for n, p in model.named_parameters() if 'wte' not in n and 'head' not in n) / 1e3:.0f} k "
                             "outside the token embedding and the output layer)"),
            "gist-lm-epochs": f"{cfg.steps * cfg.batch * (cfg.n_ctx + 1) / train_tokens:.1f}",
            "gist-lm-gap": gap, "gist-lm-curve-windows": str(curve_windows),
            "gist-lm-tokens": f"{train_tokens / 1e3:.0f} k"}
    baselines = {"bigram, held out": L_.loc["bigram (interpolated)", "nats per token"],
                 "unigram, held out": L_.loc["unigram", "nats per token"]}
    return {"glue": glue, "table": _shown(loss_df.rename(columns={"nats per token": "value"}), "predictor").style.hide(axis="index"), "losses": L_,
            "baselines": baselines}


# ----------------------------------------------------------------------------- 1. kernels
def kernel_summary(kern, kern_init, window: int) -> dict:
    """{"glue": {gist-heads, gist-ell, gist-uniform}, "uniform_far", "uniform_expected"} from
    `experiment.seed_kernels` of the trained models and of their random initialisations."""
    expected = (window - 3) / (window + 1)
    if kern is None:
        return {"glue": dict.fromkeys(("gist-heads", "gist-ell", "gist-uniform"), NOT_COMPUTED), "uniform_far": None,
                "uniform_expected": expected}
    k = kern["kernels"]
    n_ctx = kern["contextual"].sum(1).tolist()
    H = k.shape[1]
    heads = (f"In the trained models {', '.join(map(str, n_ctx))} of the {H} layer-0 heads (per seed) are contextual")
    ells = kern["ell"]
    ell = (", ".join(fmt_length(e) for e in ells) + " tokens (seeds " + ", ".join(str(i) for i in range(len(ells))) + ")")
    ki = kern_init["kernels"]
    far = float((ki[..., 4:].sum(-1) / ki.sum(-1)).mean())
    flat = sum(1 for e in ells if not np.isfinite(e) or e > 2 * window)
    if flat == len(ells):
        ell += (f": every fit is longer than twice the window of {window} tokens, so within the window these "
                "heads attend almost uniformly, unlike the decaying kernels of GPT-2 Small")
    elif flat:
        ell += f": {flat} of the {len(ells)} fits are longer than twice the window of {window} tokens (nearly flat)"
    return {"glue": {"gist-heads": heads, "gist-ell": ell,
                     "gist-uniform": f"{far:.2f} (uniform attention: {expected:.2f})"},
            "uniform_far": far, "uniform_expected": expected}


# ----------------------------------------------------------------------------- 2. probes
def _label(key: str, long_window: int | None = None) -> str:
    lab = LABELS["gist row"].get(key, key)
    return lab.replace("longer window", f"last {long_window} tokens") if long_window else lab


def probe_summary(tab, extra, long_window: int, mid_layer: int = 6) -> dict:
    """{"glue": {gist-probe-text, gist-p-<row>, gist-d-<pair>}, "table"} from
    `paired.paired_table` of the gist rows (rows and the `PAIRS` differences)."""
    if tab is None:
        return {"glue": {"gist-probe-text": f"Not computed in this build ({NOT_COMPUTED}).",
                         "gist-d-last-gist": NOT_COMPUTED}, "table": None}
    t = tab.set_index("name")

    def row(k):
        r = t.loc[k]
        return ci_text(r.value, r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi)

    def diff(name):
        r = t.loc[name]
        return ci_text(r.value, r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi, digits=3, signed=True)

    def verdict(name):
        r = t.loc[name]
        if r.doc_lo > 0 and (not np.isfinite(r.seed_lo) or r.seed_lo > 0 or r.seed_hi - r.seed_lo < 1e-9):
            return "above"
        if r.doc_hi < 0 and (not np.isfinite(r.seed_hi) or r.seed_hi < 0 or r.seed_hi - r.seed_lo < 1e-9):
            return "below"
        return "not distinguishable from"

    rows = {k: row(k) for k in t.index if t.loc[k, "kind"] == "row"}
    g = {f"gist-p-{k}": v for k, v in rows.items()}
    g |= {f"gist-d-{a}-{b}": diff(n) for n, (a, b) in PAIRS.items() if n in t.index}
    text = (f"After attention 0 the trained models decode the four genre groups at {rows['gist']}. "
            f"A bag of words of the same window over every word type gives {rows['bow']}, and with the fitted "
            f"exponential kernel {rows['ewbow']}: the layer-0 summary is {verdict('gist − bag of words, attention' + chr(39) + 's window')} "
            f"the matched bag of words (paired difference {diff('gist − bag of words, attention' + chr(39) + 's window')}) and "
            f"{verdict('gist − bag of words, fitted kernel')} the kernel-weighted one ({diff('gist − bag of words, fitted kernel')}). "
            f"Making attention 0 uniform gives {rows['unif']} (difference {diff('gist − uniform attention 0')}): "
            + ("what the trained summary adds to the bag of words is in the token vectors that attention averages, "
               "not in where it looks. " if verdict('gist − uniform attention 0') != "above" else
               "the trained pattern adds to the average of its token vectors. ")
            + f"The random "
            f"initialisation with attention rescaled (by a factor of {np.mean(extra['rescale']):.0f} on average) gives "
            f"{rows['rand']}, and the current token alone {rows['tok']}. The last layer reaches {rows['last']}.")
    if "gpt2" in rows:
        text += (f" GPT-2 Small, on the same positions: {rows['gpt2']} after attention 0 and {rows['gpt2 mid']} at layer "
                 f"{mid_layer}.")
    return {"glue": g | {"gist-probe-text": text}, "table": _shown(tab, "name", {k: _label(k, long_window) for k in rows}).style.hide(axis="index")}


# ----------------------------------------------------------------------------- 3. context
def context_summary(ctx_tab, tab, long_window: int) -> dict:
    """{"glue": {gist-context-text, gist-long}} from `experiment.context_table` and the paired
    table (the longer window's and the concatenation's differences)."""
    if ctx_tab is None:
        return {"glue": {"gist-context-text": f"Not computed in this build ({NOT_COMPUTED}).", "gist-long": str(long_window)}}
    t = tab.set_index("name")
    c = ctx_tab.pivot(index="hi_len", columns="row", values="bacc")
    first, last = c.index.min(), c.index.max()

    def d(name):
        r = t.loc[name]
        return ci_text(r.value, r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi, digits=3, signed=True)

    text = (f"Accuracy grows with the context every row can see: after attention 0 from {c.loc[first, 'gist']:.2f} with at "
            f"most {first} tokens to {c.loc[last, 'gist']:.2f} with {last}; the last layer from {c.loc[first, 'last']:.2f} to "
            f"{c.loc[last, 'last']:.2f}; the matched bag of words from {c.loc[first, 'bow']:.2f} to {c.loc[last, 'bow']:.2f}. "
            f"A bag of the last {long_window} tokens reaches {t.loc['long', 'value']:.2f} "
            f"({d('longer window − attention' + chr(39) + 's window')} over the matched bag). The two layers read "
            f"side by side add {d('both − gist')} over attention 0 alone, and the last layer alone differs from "
            f"attention 0 by {d('last layer − gist')}.")
    return {"glue": {"gist-context-text": text, "gist-long": str(long_window)}}


# ----------------------------------------------------------------------------- 4. splices
def splice_summary(switch_tab, splice, ells) -> dict:
    """{"glue": {gist-splice-text, gist-splice-n}} from `experiment.switch_times`."""
    if switch_tab is None:
        return {"glue": {"gist-splice-text": f"Not computed in this build ({NOT_COMPUTED}).", "gist-splice-n": NOT_COMPUTED}}
    t = switch_tab.set_index("row")
    n_after = next(iter(splice["curves"].values())).shape[-1] - splice["before"]

    def st(k):
        r = t.loc[k]
        if not np.isfinite(r.switch):
            return f"not within the {n_after} tokens after the splice"
        doc = f"documents {r.doc_lo:.0f}–{r.doc_hi:.0f}" if np.isfinite(r.doc_hi) else f"documents {r.doc_lo:.0f} to not resolved"
        seeds = (f"; seeds {r.seed_lo:.0f}–{r.seed_hi:.0f}" if np.isfinite(r.seed_hi) and r.seed_hi - r.seed_lo > 1e-9
                 else "; seeds: not resolved" if not np.isfinite(r.seed_hi) else "")
        return f"{r.switch:.0f} tokens ({doc}{seeds})"

    short = [e for e in ells if np.isfinite(e) and e < n_after]
    kern = (f" (ℓ ln 2 = {', '.join(f'{e * np.log(2):.0f}' for e in short)} tokens for the seeds whose kernel decays "
            "within the piece)" if short else "")
    text = (f"The summary after attention 0 switches to the new genre after {st('gist')}; the matched bag of words "
            f"after {st('bow')} and the bag with the fitted kernel after {st('ewbow')}{kern}; attention 0 made uniform "
            f"after {st('unif')}; the last layer after {st('last')}.")
    return {"glue": {"gist-splice-text": text, "gist-splice-n": str(next(iter(splice["curves"].values())).shape[1])}}


# ----------------------------------------------------------------------------- 5. routing
def route_summary(route_tab, honest, budget: float, n_positions: int, long_window: int = 512) -> dict:
    """{"glue": {gist-route-text, gist-budget}, "table"} from `experiment.switch_off_table`'s
    table at the budget and the cross-fitted check (`cross_fit_rate` per row and seed)."""
    if route_tab is None:
        return {"glue": {"gist-route-text": f"Not computed in this build ({NOT_COMPUTED}).", "gist-budget": f"{budget:g}"},
                "table": None}
    t = route_tab.set_index("row")

    def at(k):
        r = t.loc[k]
        return ci_text(r.value, r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi, digits=3)

    h = {k: (np.mean([x["wrongly_off"] for x in v]), np.mean([x["switched_off"] for x in v])) for k, v in honest.items()}
    long = long_window
    best = max((k for k in t.index if k != "long"), key=lambda k: t.loc[k, "value"])
    text = (f"At a wrongly-off rate of {budget:g} ({n_positions} positions, so about {budget * n_positions:.0f} of them "
            f"may lose their circuits) the summary after attention 0 switches off {at('gist')} of the other groups' "
            f"circuits; the matched bag of words {at('bow')}, the kernel-weighted bag {at('ewbow')}, uniform attention "
            f"{at('unif')}, the random initialisation {at('rand')}, the current token {at('tok')} and the last layer "
            f"{at('last')}; the bag of the last {long} tokens, which sees further back than the model, "
            f"{at('long')}. Of the rows limited to the model's context, {_label(best)} switches off most. Chosen on half "
            f"of the documents and applied to the other half, the summary's threshold wrongly switches off "
            f"{h['gist'][0]:.4f} of the needed circuits ({'within' if h['gist'][0] <= budget else 'above'} the budget: "
            f"a threshold set on some documents transfers to others only roughly) and switches off {h['gist'][1]:.3f}.")
    return {"glue": {"gist-route-text": text, "gist-budget": f"{budget:g}"},
            "table": _shown(route_tab, "row", {k: _label(k) for k in t.index})}


def network_summary(net, caps, route_tab, budget: float) -> dict:
    """{"glue": {gist-net-text, gist-net-D}, "table"} from `experiment.network_capacity`'s rows
    and `experiment.capacities`, with the switch-off table for the summary's fraction."""
    if net is None:
        return {"glue": {"gist-net-text": f"Not computed in this build ({NOT_COMPUTED}).", "gist-net-T": NOT_COMPUTED},
                "table": None}
    c = caps.copy()
    tab = c.groupby("source", sort=False).agg(z=("z", "mean"), capacity=("text", lambda v: ", ".join(v))).reset_index()
    tab.columns = ["router", "circuits on per token (mean over T)", "largest T that passes (per seed)"]
    g = c[c.source == "gist at budget"]
    s = c.set_index("source")
    T_all, T_orc = s.loc["all on", "text"], s.loc["oracle", "text"]
    frac = route_tab.set_index("row").loc["gist", "value"]
    same = (g.capacity == s.loc["all on", "capacity"]).all()
    text = (f"Switching off {frac:.3f} of the other groups' circuits leaves {g.z.mean():.2f} of the 4 candidates on "
            f"per token (no routing: {s.loc['all on', 'z']:.2f}; the oracle: {s.loc['oracle', 'z']:.2f}). The largest "
            f"T at which the network meets the book's rates and payload criterion is {T_all} without routing, "
            f"{', '.join(g.text)} with the summary's routing (one per seed) and {T_orc} with the oracle's. "
            + ("The summary's routing buys no superposition room at this budget: the network carries the same "
               "circuits as without it." if same else
               "The summary's routing changes the capacity; see the table."))
    return {"glue": {"gist-net-text": text}, "table": tab.style.hide(axis="index")}


# ----------------------------------------------------------------------------- conclusions
def _verdict(r) -> str:
    """"above", "below" or "not distinguishable from" for a paired difference row: decided
    only when both intervals (documents and seeds) exclude 0."""
    seed_ok = lambda v: not np.isfinite(v) or r.seed_hi - r.seed_lo < 1e-9  # noqa: E731
    if r.doc_lo > 0 and (r.seed_lo > 0 or seed_ok(r.seed_lo)):
        return "above"
    if r.doc_hi < 0 and (r.seed_hi < 0 or seed_ok(r.seed_hi)):
        return "below"
    return "not distinguishable from"


def closing_summary(seconds: float, probe_tab, switch_tab, route_tab, caps) -> dict:
    """The closing note's texts: gist-runtime (with the machine, from `platform`), and one
    sentence per finding (gist-close-probes, -context, -splice, -route)."""
    machine = f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), torch {torch.__version__}"
    out = {"gist-runtime": f"{seconds:.0f} s on {machine}, training included when the models were not cached"}
    if probe_tab is None:
        return out | dict.fromkeys(("gist-close-probes", "gist-close-context", "gist-close-splice", "gist-close-route"),
                                   NOT_COMPUTED)
    t = probe_tab.set_index("name")

    def d(name):
        r = t.loc[name]
        return ci_text(r.value, r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi, digits=3, signed=True)

    bow, ew = t.loc["gist − bag of words, attention's window"], t.loc["gist − bag of words, fitted kernel"]
    out["gist-close-probes"] = (
        f"After attention 0 the four genre groups are decoded at balanced accuracy {t.loc['gist', 'value']:.2f}; "
        f"that is {_verdict(bow)} a bag of words of the same window over every word type (paired difference "
        f"{d('gist − bag of words, attention' + chr(39) + 's window')}) and {_verdict(ew)} the bag weighted by the "
        f"kernel fitted to the heads ({d('gist − bag of words, fitted kernel')}). Uniform attention 0 differs by "
        f"{d('gist − uniform attention 0')}, the rescaled random initialisation by {d('gist − random init, rescaled')}.")
    out["gist-close-context"] = (
        f"The last layer differs from attention 0 by {d('last layer − gist')} and adds {d('both − gist')} when read "
        f"beside it; a bag of words that sees further back than the model gains {d('longer window − attention' + chr(39) + 's window')} "
        "over the matched one: the context window, not the layer, limits the probes.")
    s = switch_tab.set_index("row")

    def sw(k):
        v = s.loc[k, "switch"]
        return f"{v:.0f}" if np.isfinite(v) else "more than the piece allows"

    out["gist-close-splice"] = (f"After a splice of two documents the summary's genre readout switches after {sw('gist')} "
                                f"tokens (matched bag of words {sw('bow')}, fitted-kernel bag {sw('ewbow')}, last layer "
                                f"{sw('last')}).")
    r = route_tab.set_index("row")
    g = caps[caps.source == "gist at budget"]
    a = caps[caps.source == "all on"]
    same = set(g.capacity) == set(a.capacity)
    out["gist-close-route"] = (
        f"Within the budget the summary switches off {ci_text(r.loc['gist', 'value'], r.loc['gist', 'doc_lo'], r.loc['gist', 'doc_hi'], r.loc['gist', 'seed_lo'], r.loc['gist', 'seed_hi'], digits=3)} "
        f"of the circuits not needed; run inside the superposed network the routing leaves {g.z.mean():.2f} of the 4 "
        f"candidate circuits on per token, and the largest T the network carries is "
        f"{'the same as without routing: the summary buys no superposition room at the book' + chr(39) + 's budget' if same else 'changed: ' + ', '.join(g.text)}.")
    return out


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
