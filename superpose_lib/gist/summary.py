"""The gist chapter's tables and the text of its glued numbers, one function per section.

Each `*_summary` returns {"glue": {key: text}, ...}: every key the prose of its section uses,
also when the section could not run (its inputs None: the corpus was not fetched), then each
text is `NOT_COMPUTED`. The row builders turn one model's measurements into table rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    "verdict",
    "PROBE_ROWS",
    "ROUTE_ROWS",
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
    return pd.DataFrame(
        [
            {
                "letter": k.upper(),
                "genre": v,
                "group": B.COARSE[B.COARSE_OF[k]],
                "train": sum(d["genre"] == k for d in data.train),
                "held out": sum(d["genre"] == k for d in data.held),
            }
            for k, v in B.GENRES.items()
        ]
    )


def corpus_summary(data, error: str | None = None) -> dict:
    """{"glue": {"gist-corpus"}, "table": `genre_table` or None, "notice": Markdown or None}:
    with data None, the notice that the real-text sections were skipped (and why)."""
    if data is None:
        notice = (
            f"**Notice: the real-text sections were not run in this build.** {error}. Sections on the corpus, "
            "the trained model, its kernels, probes, reach, context neurons and on-indicators are skipped; "
            "the toy model below still runs."
        )
        return {
            "glue": {"gist-corpus": "not available in this build (the corpus was not fetched)"},
            "table": None,
            "notice": notice,
        }
    ntok = sum(len(v) for v in data.gpt2_ids.values())
    text = (
        f"{len(data.docs)} documents ({len(data.train)} for training, {len(data.held)} held out), "
        f"{ntok / 1e6:.2f} M GPT-2 tokens of {len(data.vocab)} types"
    )
    return {"glue": {"gist-corpus": text}, "table": genre_table(data), "notice": None}


def gpt2_notice(folder) -> str:
    """Markdown: where GPT-2 Small's weights were found (with their digest), or that GPT-2 was
    not run (folder None)."""
    if folder is None:
        return (
            "**Notice: GPT-2 Small was not run in this build.** No local weights were found "
            "(`gpt2_path`, `$SUPERPOSE_GPT2_PATH`, Hugging Face cache). Every GPT-2 row below is absent; "
            "rerun this chapter with the weights to add them beside the trained model."
        )
    provenance = f"GPT-2 Small weights from {folder} (sha256 {weights_sha256(folder)[:16]}…)"
    return f"**GPT-2 weights found:** {provenance}; the GPT-2 rows below use the same Brown documents."


# ----------------------------------------------------------------------------- intervals as text
@checked
def ci_text(value, doc_lo, doc_hi, seed_lo=None, seed_hi=None, *, digits: int = 2, signed: bool = False) -> str:
    """ "0.53 (documents 0.50–0.56; seeds 0.51–0.55)": a mean over seeds with its 95 %
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
        rows.append(
            {
                "": (names or {}).get(n, n),
                "mean over seeds": round(r.value, digits),
                "95 % over documents": f"{r.doc_lo:.{digits}f} – {r.doc_hi:.{digits}f}",
                "95 % over seeds": (
                    f"{r.seed_lo:.{digits}f} – {r.seed_hi:.{digits}f}"
                    if np.isfinite(r.seed_lo) and r.seed_hi - r.seed_lo > 1e-9
                    else "—"
                ),
                "per seed": ", ".join(f"{v:.{digits}f}" for v in r.per_seed),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the language models
@checked
def lm_summary(loss_df, runs, data, cfg, curve_windows: int = 0) -> dict:
    """{"glue", "table" (display), "losses" (loss_df indexed by predictor), "baselines"
    ({label: nats} for `plot_lm_curves`)} from `experiment.lm_losses`' table and
    `cached_lms`' (model, info) pairs; every glue key is set when loss_df is None."""
    keys = (
        "gist-lm-loss",
        "gist-lm-bigram",
        "gist-lm-unigram",
        "gist-lm-vs-bigram",
        "gist-lm-train",
        "gist-lm-size",
        "gist-lm-epochs",
        "gist-lm-gap",
        "gist-lm-curve-windows",
        "gist-lm-tokens",
    )
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
    train = (
        f"trained here in {np.mean(secs):.0f} s of one CPU core per seed"
        if all(fresh)
        else f"loaded from its cache (training had taken {np.nanmean(secs):.0f} s of one CPU core per seed)"
        if not any(fresh)
        else f"trained or loaded ({sum(fresh)} of {len(fresh)} seeds trained in this build, "
        f"{np.nanmean(secs):.0f} s of one CPU core each)"
    )
    last = [i["heldout"][-1][1] for i in infos if i["heldout"]]
    tail = [np.mean(i["losses"][-50:]) for i in infos if i["losses"]]
    gap = (
        (
            f"at the last step the training loss is {np.mean(tail):.2f} and the held-out loss {np.mean(last):.2f} nats "
            f"per token (means over seeds), a gap of {np.mean(last) - np.mean(tail):.2f}"
        )
        if last and tail
        else NOT_COMPUTED
    )
    glue = {
        "gist-lm-loss": fmt("trained model"),
        "gist-lm-bigram": fmt("bigram (interpolated)"),
        "gist-lm-unigram": fmt("unigram"),
        "gist-lm-vs-bigram": vs,
        "gist-lm-train": train,
        "gist-lm-size": (
            f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters "
            f"({sum(p.numel() for n, p in model.named_parameters() if 'wte' not in n and 'head' not in n) / 1e3:.0f} k "
            "outside the token embedding and the output layer)"
        ),
        "gist-lm-epochs": f"{cfg.steps * cfg.batch * (cfg.n_ctx + 1) / train_tokens:.1f}",
        "gist-lm-gap": gap,
        "gist-lm-curve-windows": str(curve_windows),
        "gist-lm-tokens": f"{train_tokens / 1e3:.0f} k",
    }
    baselines = {
        "bigram, held out": L_.loc["bigram (interpolated)", "nats per token"],
        "unigram, held out": L_.loc["unigram", "nats per token"],
    }
    return {
        "glue": glue,
        "table": _shown(loss_df.rename(columns={"nats per token": "value"}), "predictor").style.hide(axis="index"),
        "losses": L_,
        "baselines": baselines,
    }


# ----------------------------------------------------------------------------- 1. kernels
@checked
def kernel_summary(kern, kern_init, window: int, kern_gpt2=None) -> dict:
    """{"glue": {gist-heads, gist-ell, gist-uniform, gist-gpt2-kernels}, "uniform_far",
    "uniform_expected"} from `experiment.seed_kernels` of the trained models, of their random
    initialisations and (when its weights are present) of GPT-2 Small."""
    expected = (window - 3) / (window + 1)
    if kern is None:
        return {
            "glue": dict.fromkeys(("gist-heads", "gist-ell", "gist-uniform", "gist-gpt2-kernels"), NOT_COMPUTED),
            "uniform_far": None,
            "uniform_expected": expected,
        }
    k = kern["kernels"]
    n_ctx = kern["contextual"].sum(1).tolist()
    H = k.shape[1]
    heads = f"In the trained models {', '.join(map(str, n_ctx))} of the {H} layer-0 heads (per seed) are contextual"
    ells = kern["ell"]
    ell = ", ".join(fmt_length(e) for e in ells) + " tokens (seeds " + ", ".join(str(i) for i in range(len(ells))) + ")"
    ki = kern_init["kernels"]
    far = float((ki[..., 4:].sum(-1) / ki.sum(-1)).mean())
    flat = sum(1 for e in ells if not np.isfinite(e) or e > 2 * window)
    if flat == len(ells):
        ell += (
            f": every fit is longer than twice the window of {window} tokens, so within the window these "
            "heads attend almost uniformly, unlike the decaying kernels of GPT-2 Small"
        )
    elif flat:
        ell += f": {flat} of the {len(ells)} fits are longer than twice the window of {window} tokens (nearly flat)"
    if kern_gpt2 is not None:
        c = kern_gpt2["contextual"][0]
        gpt2 = (
            f"In GPT-2 Small, on the same text, {int(c.sum())} of its {len(c)} layer-0 heads are contextual and the "
            f"kernel fitted to them has ℓ = {fmt_length(kern_gpt2['ell'][0])} tokens."
        )
    else:
        gpt2 = "GPT-2 Small's kernels were not measured in this build (no weights)."
    return {
        "glue": {
            "gist-heads": heads,
            "gist-ell": ell,
            "gist-gpt2-kernels": gpt2,
            "gist-uniform": f"{far:.2f} (uniform attention: {expected:.2f})",
        },
        "uniform_far": far,
        "uniform_expected": expected,
    }


# ----------------------------------------------------------------------------- 2. probes
def _label(key: str, long_window: int | None = None) -> str:
    lab = LABELS["gist row"].get(key, key)
    return lab.replace("longer window", f"last {long_window} tokens") if long_window else lab


#: The rows and differences whose numbers the prose quotes (glue keys gist-p-<row>, gist-d-<a>-<b>).
PROBE_ROWS = ("tok", "rand", "bow", "ewbow", "unif", "gist", "last", "long", "both")


def verdict(r) -> str:
    """ "above", "below" or "not distinguishable from" for a paired difference row (columns
    doc_lo, doc_hi, seed_lo, seed_hi): decided only when both intervals exclude 0 (a
    difference that does not depend on the seed has a point seed interval and is decided by
    the documents alone)."""
    point = not np.isfinite(r.seed_lo) or r.seed_hi - r.seed_lo < 1e-9
    if r.doc_lo > 0 and (point or r.seed_lo > 0):
        return "above"
    if r.doc_hi < 0 and (point or r.seed_hi < 0):
        return "below"
    return "not distinguishable from"


@checked
def probe_summary(tab, extra, long_window: int, mid_layer: int = 6) -> dict:
    """{"glue", "table"} from `paired.paired_table` of the gist rows and the `PAIRS`
    differences: gist-p-<row> (balanced accuracy with both intervals), gist-d-<a>-<b> (paired
    differences), gist-v-bow / gist-v-ewbow / gist-v-unif (verdicts of the summary against
    the bags and uniform attention), gist-unif-reading (what the uniform-attention row
    means), gist-rescale (the random control's factor) and gist-gpt2-text."""
    keys = (
        [f"gist-p-{k}" for k in PROBE_ROWS]
        + [f"gist-d-{a}-{b}" for a, b in PAIRS.values()]
        + ["gist-v-bow", "gist-v-ewbow", "gist-v-unif", "gist-unif-reading", "gist-rescale", "gist-gpt2-text"]
    )
    if tab is None:
        return {"glue": dict.fromkeys(keys, NOT_COMPUTED), "table": None}
    t = tab.set_index("name")

    def row(k):
        r = t.loc[k]
        return ci_text(r.value, r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi)

    def diff(name):
        r = t.loc[name]
        return ci_text(r.value, r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi, digits=3, signed=True)

    inv = {v: n for n, v in PAIRS.items()}
    g = {f"gist-p-{k}": row(k) for k in t.index if t.loc[k, "kind"] == "row"}
    g |= {f"gist-d-{a}-{b}": diff(n) for n, (a, b) in PAIRS.items() if n in t.index}
    v = {k: verdict(t.loc[inv[("gist", k)]]) for k in ("bow", "ewbow", "unif")}
    g |= {
        "gist-v-bow": v["bow"],
        "gist-v-ewbow": v["ewbow"],
        "gist-v-unif": v["unif"],
        "gist-unif-reading": (
            "what the trained summary adds to the bags of words lies in the token vectors that attention "
            "averages, not in where it looks"
            if v["unif"] != "above"
            else "the trained attention pattern adds to the average of its token vectors"
        ),
        "gist-rescale": f"{np.mean(extra['rescale']):.0f}",
        "gist-gpt2-text": (
            f"GPT-2 Small, on the same positions, decodes them at {row('gpt2')} after attention 0 and "
            f"{row('gpt2 mid')} at layer {mid_layer}."
            if "gpt2" in t.index
            else "GPT-2 Small was not run in this build."
        ),
    }
    shown = _shown(tab, "name", {k: _label(k, long_window) for k in t.index})
    return {"glue": g, "table": shown.style.hide(axis="index")}


# ----------------------------------------------------------------------------- 3. context
@checked
def context_summary(ctx_tab, tab, long_window: int) -> dict:
    """{"glue": {gist-ctx-growth, gist-ctx-reading, gist-long}} from `experiment.context_table`
    and the paired table: how accuracy grows with context, and what limits the probes."""
    if ctx_tab is None:
        return {
            "glue": {"gist-ctx-growth": NOT_COMPUTED, "gist-ctx-reading": NOT_COMPUTED, "gist-long": str(long_window)}
        }
    t = tab.set_index("name")
    c = ctx_tab.pivot(index="hi_len", columns="row", values="bacc")
    lo = ctx_tab.groupby("hi_len").lo_len.first()
    first, last = c.index.min(), c.index.max()
    growth = (
        f"from {c.loc[first, 'gist']:.2f} (at most {first} tokens of context) to {c.loc[last, 'gist']:.2f} "
        f"({lo[last]}–{last} tokens) after attention 0, from {c.loc[first, 'last']:.2f} to {c.loc[last, 'last']:.2f} "
        f"at the last layer and from {c.loc[first, 'bow']:.2f} to {c.loc[last, 'bow']:.2f} for the matched bag of words"
    )
    longer = verdict(t.loc["longer window − attention's window"])
    both = verdict(t.loc["both − gist"])
    if longer == "above" and both != "above":
        reading = (
            "the context the model can see, not the layer, limits the probes: beside attention 0 the last "
            "layer adds little a linear probe can use, and more context adds far more"
        )
    elif longer == "above":
        reading = (
            "more context helps more than a later layer: the last layer adds little beside attention 0, while "
            "a longer window adds much more"
        )
    else:
        reading = "a longer window does not help either: the probes are limited by the label, not the context"
    return {"glue": {"gist-ctx-growth": growth, "gist-ctx-reading": reading, "gist-long": str(long_window)}}


# ----------------------------------------------------------------------------- 4. splices
def splice_summary(switch_tab, splice, ells) -> dict:
    """{"glue": {gist-sw-<row>, gist-sw-short-<row>, gist-sw-kernel, gist-splice-n}} from
    `experiment.switch_times`: switch times with both intervals (censored where the readout
    never switches within the piece)."""
    rows = ("gist", "bow", "ewbow", "unif", "last")
    if switch_tab is None:
        return {
            "glue": {f"gist-sw-{k}": NOT_COMPUTED for k in rows}
            | {f"gist-sw-short-{k}": NOT_COMPUTED for k in rows}
            | {"gist-sw-kernel": "", "gist-splice-n": NOT_COMPUTED}
        }
    t = switch_tab.set_index("row")
    n_after = next(iter(splice["curves"].values())).shape[-1] - splice["before"]

    def st(k):
        r = t.loc[k]
        if not np.isfinite(r.switch):
            return f"more than {n_after} tokens (it does not switch within the piece)"
        doc = (
            f"documents {r.doc_lo:.0f}–{r.doc_hi:.0f}"
            if np.isfinite(r.doc_hi)
            else f"documents {r.doc_lo:.0f} to not resolved"
        )
        seeds = (
            f"; seeds {r.seed_lo:.0f}–{r.seed_hi:.0f}"
            if np.isfinite(r.seed_hi) and r.seed_hi - r.seed_lo > 1e-9
            else "; seeds: not resolved"
            if not np.isfinite(r.seed_hi)
            else ""
        )
        return f"{r.switch:.0f} tokens ({doc}{seeds})"

    def short(k):
        v = t.loc[k, "switch"]
        return f"{v:.0f}" if np.isfinite(v) else f"> {n_after}"

    fast = [e for e in ells if np.isfinite(e) and e < n_after]
    kern = (
        f" (ℓ ln 2 = {', '.join(f'{e * np.log(2):.0f}' for e in fast)} tokens for the seeds whose kernel decays "
        "within the piece)"
        if fast
        else " (the fitted kernels barely decay within the piece)"
    )
    return {
        "glue": {f"gist-sw-{k}": st(k) for k in rows}
        | {f"gist-sw-short-{k}": short(k) for k in rows}
        | {"gist-sw-kernel": kern, "gist-splice-n": str(next(iter(splice["curves"].values())).shape[1])}
    }


# ----------------------------------------------------------------------------- 5. routing
ROUTE_ROWS = ("tok", "rand", "bow", "ewbow", "unif", "gist", "last", "long")


@checked
def route_summary(route_tab, honest, budget: float, n_positions: int, long_window: int = 512) -> dict:
    """{"glue": {gist-off-<row>, gist-route-n, gist-route-k, gist-honest-*, gist-budget},
    "table"} from `experiment.switch_off_table`'s table at the budget and the out-of-sample
    check (`experiment.cross_fit_rate` per row and seed)."""
    keys = [f"gist-off-{k}" for k in ROUTE_ROWS] + [
        "gist-route-n",
        "gist-route-k",
        "gist-honest-wrong",
        "gist-honest-verdict",
        "gist-honest-off",
    ]
    if route_tab is None:
        return {"glue": dict.fromkeys(keys, NOT_COMPUTED) | {"gist-budget": f"{budget:g}"}, "table": None}
    t = route_tab.set_index("row")
    g = {f"gist-off-{k}": ci_text(r.value, r.doc_lo, r.doc_hi, r.seed_lo, r.seed_hi, digits=3) for k, r in t.iterrows()}
    wrong = float(np.mean([x["wrongly_off"] for x in honest["gist"]]))
    off = float(np.mean([x["switched_off"] for x in honest["gist"]]))
    g |= {
        "gist-route-n": f"{n_positions}",
        "gist-route-k": f"{budget * n_positions:.0f}",
        "gist-honest-wrong": f"{wrong:.4f}",
        "gist-honest-off": f"{off:.3f}",
        "gist-honest-verdict": (
            "within the budget"
            if wrong <= budget
            else "above the budget: a threshold set on some documents transfers to others only roughly"
        ),
        "gist-budget": f"{budget:g}",
    }
    return {"glue": g, "table": _shown(route_tab, "row", {k: _label(k, long_window) for k in t.index})}


@checked
def network_summary(net, caps, route_tab, budget: float) -> dict:
    """{"glue": {gist-net-z, gist-net-z-all, gist-net-z-oracle, gist-net-all, gist-net-gist,
    gist-net-oracle, gist-net-verdict}, "table"} from `experiment.network_capacity`'s rows and
    `experiment.capacities`."""
    keys = (
        "gist-net-z",
        "gist-net-z-all",
        "gist-net-z-oracle",
        "gist-net-all",
        "gist-net-gist",
        "gist-net-oracle",
        "gist-net-verdict",
    )
    if net is None:
        return {"glue": dict.fromkeys(keys, NOT_COMPUTED), "table": None}
    tab = (
        caps.groupby("source", sort=False).agg(z=("z", "mean"), capacity=("text", lambda v: ", ".join(v))).reset_index()
    )
    tab["z"] = tab["z"].map(lambda v: f"{v:.2f}")
    tab.columns = ["router", "circuits on per token (mean over T)", "largest T that passes (per seed)"]
    g = caps[caps.source == "gist at budget"]
    s = caps.set_index("source")
    a = caps[caps.source == "all on"]
    if set(g.capacity) == set(a.capacity):
        verd = "the summary's routing buys no superposition room at the book's budget"
    elif g.capacity.min() > a.capacity.max():
        verd = "the summary's routing lets the network carry more circuits at the book's budget"
    else:
        verd = "the summary's routing lets the network carry fewer circuits (its own mistakes cost more than it saves)"
    glue = {
        "gist-net-z": f"{g.z.mean():.2f}",
        "gist-net-z-all": f"{s.loc['all on', 'z']:.2f}",
        "gist-net-z-oracle": f"{s.loc['oracle', 'z']:.2f}",
        "gist-net-all": str(s.loc["all on", "text"]),
        "gist-net-gist": ", ".join(g.text),
        "gist-net-oracle": str(s.loc["oracle", "text"]),
        "gist-net-verdict": verd,
    }
    return {"glue": glue, "table": tab.style.hide(axis="index")}


# ----------------------------------------------------------------------------- conclusions
@checked
def closing_summary(seconds: float) -> dict:
    """{gist-runtime}: the build's wall time (the book names no machine; the Execution page
    lists every chapter's run)."""
    return {"gist-runtime": f"{seconds:.0f} s, training included when the models were not cached"}


# ----------------------------------------------------------------------------- 6. the toy model
@checked
def toy_training_line(losses: dict, seconds: float, steps: int) -> str:
    """ "4 toy models × 1000 steps in 12 s (final losses 3.96–4.12 nats)": the final loss is
    the mean of each model's last 50 steps."""
    final = [np.mean(l[-50:]) for l in losses.values()]
    return (
        f"{len(losses)} toy models × {steps} steps in {seconds:.0f} s (final losses {min(final):.2f}–"
        f"{max(final):.2f} nats)"
    )


@checked
def toy_probe_features(f: dict, fl: dict, fu: dict, *, window: int) -> dict:
    """The rows of the toy probe comparison from `toy_features` of the recency-slope (f),
    learned-positions (fl) and untrained (fu) models on the same documents."""
    return {
        "current token": f["resid_pre"],
        f"bag of words, last {window}": f["bow"],
        "after attn 0, untrained": fu["resid_mid"],
        "after attn 0, recency slope": f["resid_mid"],
        "after attn 0, learned positions": fl["resid_mid"],
    }


@checked
def filter_ceiling(f: dict, n_topics: int, task: str, generator, n_boot: int) -> dict:
    """The exact filter's row of the probe table: balanced accuracy of its argmax posterior with
    a 95 % document-bootstrap interval (not a probe: the Bayes ceiling)."""
    yhat = f["posterior"].argmax(-1).numpy()
    lo, hi = bootstrap_ci(f["y"].numpy(), yhat, f["group"], n_topics, generator, n_boot=n_boot)
    bayes = balanced_accuracy(f["y"].numpy(), yhat, n_topics)
    return {
        "task": task,
        "features": "exact filter (ceiling)",
        "bacc": bayes,
        "lo": lo,
        "hi": hi,
        "chance": 1 / n_topics,
    }


def toy_probe_summary(toy_probes: dict) -> dict:
    """{"glue": toy probe accuracies at the smallest p, and gist-toy-plo/-phi (the smallest and
    largest p as text)}. toy_probes: {p: {row: ProbeResult} | {"filter": bacc}}."""
    p_lo, p_hi = min(toy_probes), max(toy_probes)
    q = toy_probes[p_lo]
    return {
        "glue": {
            "gist-toy-slope": f"{q['after attn 0, recency slope'].bacc:.2f}",
            "gist-toy-learned": f"{q['after attn 0, learned positions'].bacc:.2f}",
            "gist-toy-tok": f"{q['current token'].bacc:.2f}",
            "gist-toy-untrained": f"{q['after attn 0, untrained'].bacc:.2f}",
            "gist-toy-filter": f"{q['filter']:.2f}",
            "gist-toy-plo": str(p_lo),
            "gist-toy-phi": str(p_hi),
        }
    }


def toy_reach_summary(reach: dict, variants) -> dict:
    """{"glue", "table" (rows p), "ratio": {variant: reach at the smallest p / at the largest},
    "resolved": {variant: both reaches finite and ≤ 1000}}. reach: {p: {"filter reach",
    "filter theory −1/ln λ", "reach, <variant>"}}."""
    p_lo, p_hi = min(reach), max(reach)
    table = pd.DataFrame(reach).T
    table.index.name = "p"
    ratio = {v: reach[p_lo][f"reach, {v}"] / reach[p_hi][f"reach, {v}"] for v in variants}
    resolved = {
        v: all(np.isfinite(reach[p][f"reach, {v}"]) and reach[p][f"reach, {v}"] <= 1000 for p in (p_lo, p_hi))
        for v in variants
    }
    text = {v: f"{ratio[v]:.2g}" if resolved[v] else "not defined (a reach is not resolved)" for v in variants}
    glue = {
        "gist-toy-ratio-slope": text["recency slope"],
        "gist-toy-ratio-learned": text["learned positions"],
        "gist-toy-reach-learned": (
            f"{fmt_length(reach[p_lo]['reach, learned positions'])} tokens at p = {p_lo} and "
            f"{fmt_length(reach[p_hi]['reach, learned positions'])} at p = {p_hi}"
        ),
        "gist-toy-reach-filter": f"{fmt_length(reach[p_lo]['filter reach'])} and {fmt_length(reach[p_hi]['filter reach'])}",
    }
    return {"glue": glue, "table": table, "ratio": ratio, "resolved": resolved}


def toy_neuron_table(gating: dict) -> pd.DataFrame:
    """One row per toy model of `neuron_gating`'s η² (keys: switch probabilities, "untrained")."""
    return pd.DataFrame(
        [
            {
                "model": f"p = {k}" if k != "untrained" else k,
                "max η² (topic)": float(v["topic"].max()),
                "max η² (topic), attn removed": float(v["topic_no_attn"].max()),
                "neurons η²>0.3": int((v["topic"] > 0.3).sum()),
                "max η² (current token)": float(v["token"].max()),
            }
            for k, v in gating.items()
        ]
    )


def toy_neuron_summary(g: dict) -> dict:
    """{"glue": {gist-toy-neurons-text}} from one toy model's `neuron_gating`."""
    return {
        "glue": {
            "gist-toy-neurons-text": (
                f"the most topic-selective MLP0 neuron has η² = {g['topic'].max():.2f}; "
                f"without attention 0's output no neuron exceeds "
                f"{g['topic_no_attn'].max():.2f}"
            )
        }
    }
