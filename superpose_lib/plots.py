"""The book's figures: one table of labels and colours, one figure style, and the plots of
the construction chapter.

Conventions (every plot function of the library follows them):

- A plot function takes data (tensors or a tidy DataFrame) and `ax=None`, draws on `ax` (a
  new figure when None) and returns the axes.
- Colours and labels of named things come from the tables below, never from matplotlib's
  cycle (`C{i % 10}` repeats after ten entries): `color(kind, value)` and
  `label(kind, value)`; `palette(names)` gives a fixed colour to each of an arbitrary list of
  names (e.g. the schemes of a chapter) from `PALETTE`, which has 14 distinct entries and no
  near-white one.
- `glue_all(values)` hands a section's numbers and figures to the prose (MyST-NB's glue),
  closing each figure so that it is shown once, where the text places it.
- `book_style()` (called once at the top of a chapter) sets 10 pt fonts and 2× PNG
  ("retina") output, so that a figure of at most `MAX_WIDTH` inches is legible in the page
  column and sharp when enlarged.
"""

from __future__ import annotations

import matplotlib
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .core.checks import checked

__all__ = [
    "MAX_WIDTH",
    "PALETTE",
    "COLORS",
    "LABELS",
    "THEORY_STYLE",
    "book_style",
    "color",
    "label",
    "palette",
    "sequential",
    "figure",
    "axes_or_new",
    "legend_outside",
    "tidy_log_axis",
    "glue_all",
]

#: Widest figure, in inches, that fits the page column at 10 pt fonts.
MAX_WIDTH = 7.5

#: 14 distinct colours for named things (Okabe–Ito and Paul Tol's "muted" and "bright"
#: schemes, colour-blind safe, none lighter than a mid grey on white).
PALETTE = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#332288",  # indigo
    "#882255",  # wine
    "#117733",  # dark green
    "#999933",  # olive
    "#AA4499",  # purple
    "#44AA99",  # teal
    "#661100",  # brown
    "#6699CC",  # steel blue
)

#: Colour of every named thing of the book, by kind. A kind maps a value to a colour; the
#: same value has the same colour in every figure of every chapter.
COLORS: dict[str, dict] = {
    # number of active circuits
    "z": {1: PALETTE[0], 2: PALETTE[1], 3: PALETTE[2], 4: PALETTE[3], 5: PALETTE[4], 6: PALETTE[6]},
    # the four error quantities of RiS, and the indicator error rate of the gate experiment
    "quantity": {
        "active_x": PALETTE[0],
        "inactive_x": PALETTE[5],
        "active_on": PALETTE[1],
        "inactive_on": PALETTE[4],
        "flip_rate": PALETTE[7],
        "n_active": PALETTE[9],
    },
    # components of one circuit's state
    "component": {"x0": PALETTE[0], "x1": PALETTE[2], "alpha": PALETTE[1]},
    # circuit-graph families (cross-circuit chapter)
    "family": {"chain": PALETTE[0], "random": PALETTE[1], "gate": PALETTE[2]},
    # error-correction schemes (error-correction chapter, and the circuit graph of cross-circuit)
    "scheme": {
        "baseline": PALETTE[6],
        "E1": PALETTE[0],
        "E2": PALETTE[4],
        "E3": PALETTE[3],
        "E4": PALETTE[2],
        "E5": PALETTE[1],
        "E5 affine": PALETTE[7],
        "baseline affine": PALETTE[9],
        "oracle": "#777777",
        "scaling": PALETTE[8],
        "scaling_bound": PALETTE[11],
        "wide_rule": PALETTE[5],
        "untied": PALETTE[12],
        "E5 f=0.5": PALETTE[10],
        "E5 tuned": PALETTE[13],
    },
    # recipes of the trained-versus-constructed chapter
    "recipe": {
        "construction": PALETTE[6],
        "trained": PALETTE[0],
        "fine-tuned": PALETTE[1],
        "trained, MSE": PALETTE[4],
        "dedicated": "#777777",
        "switch-off": PALETTE[8],
        "noisy": PALETTE[3],
        "code": PALETTE[2],
        "linear": PALETTE[7],
        "trained, outlier": PALETTE[9],
    },
    # rows of the gist chapter: the trained model's layer-0 summary and its controls
    "gist row": {
        "tok": "#777777",
        "rand": PALETTE[9],
        "bow": PALETTE[4],
        "ewbow": PALETTE[1],
        "unif": PALETTE[5],
        "gist": PALETTE[0],
        "last": PALETTE[6],
        "long": PALETTE[7],
        "both": PALETTE[2],
        "gpt2": PALETTE[3],
        "gpt2 mid": PALETTE[10],
    },
}

#: Labels of named things, by kind (mathtext).
LABELS: dict[str, dict] = {
    "quantity": {
        "active_x": r"active $\langle|\delta x|^2\rangle$",
        "inactive_x": r"inactive $\langle|\hat x|^2\rangle$",
        "active_on": r"active $\langle(1-\hat\alpha)^2\rangle$",
        "inactive_on": r"inactive $\langle\hat\alpha^2\rangle$",
        "flip_rate": r"indicators on the wrong side of $\frac{1}{2}$",
        "n_active": "circuits switched on",
        "false_on": r"inactive read as on",
        "false_off": r"active read as off",
        "worst_dx": r"worst active $|x - \hat x|$",
        "spurious_on": "spurious on-indicator neurons",
    },
    "component": {"x0": "$x_0$", "x1": "$x_1$", "alpha": r"$\alpha$"},
    "family": {"chain": "chains", "random": "random graphs", "gate": "gates"},
    "scheme": {
        "baseline": "baseline (RiS)",
        "E1": "E1 sharp step",
        "E2": "E2 redundant, ivw",
        "E3": "E3 gated",
        "E4": "E4 register",
        "E5": "E5 wide indicators",
        "E5 affine": "E5, affine assignment",
        "baseline affine": "baseline, affine assignment",
        "oracle": "oracle (bound)",
        "scaling": "switch-off construction",
        "scaling_bound": "any switch-off construction (bound)",
        "wide_rule": "E5, S_α grown by rule",
        "untied": "untied indicators (f = 0.5, RiS step)",
        "E5 f=0.5": "E5 at f = 0.5",
        "E5 tuned": "E5, S_α by the design rule",
    },
    "gist row": {
        "tok": "current token",
        "rand": "random init, attention rescaled",
        "bow": "bag of words, attention's window",
        "ewbow": "bag of words, fitted exponential kernel",
        "unif": "trained, uniform attention 0",
        "gist": "trained, after attention 0",
        "last": "trained, last layer",
        "long": "bag of words, longer window",
        "both": "after attention 0 and last layer",
        "gpt2": "GPT-2 Small, after attention 0",
        "gpt2 mid": "GPT-2 Small, middle layer",
    },
    "recipe": {
        "construction": "construction (RiS)",
        "trained": "trained from random init",
        "fine-tuned": "construction, fine-tuned",
        "trained, MSE": "trained, MSE loss",
        "dedicated": "no superposition (D/d dedicated)",
        "switch-off": "switch-off construction",
        "noisy": "construction + noise, fine-tuned",
        "code": "trained, code learned too",
        "linear": "linear model, trained",
        "trained, outlier": "trained, outlier loss",
    },
}

#: How a theory curve is drawn: the colour of its measurement, dashed and thin.
THEORY_STYLE = {"ls": "--", "lw": 1.0}

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def color(kind: str, value):
    """The colour of `value` of `kind` (e.g. `color("z", 2)`); a value not in the table gets
    a palette entry chosen from its hash-free position (ints: value, others: sorted order is
    the caller's business, see `palette`)."""
    table = COLORS.get(kind)
    if table is None:
        raise ValueError(f"kind must be one of {sorted(COLORS)}, got {kind!r}")
    if value in table:
        return table[value]
    if isinstance(value, (int, np.integer)):
        return PALETTE[int(value) % len(PALETTE)]
    raise ValueError(f"no colour for {kind} {value!r}: add it to plots.COLORS[{kind!r}]")


def label(kind: str, value) -> str:
    """The label of `value` of `kind`; `str(value)` when the table has none."""
    return LABELS.get(kind, {}).get(value, str(value))


def palette(names) -> dict:
    """One fixed colour per name, in the order given, from `PALETTE` (14 entries); more names
    than colours raise ValueError (split the figure, or give names markers too)."""
    names = list(dict.fromkeys(names))
    if len(names) > len(PALETTE):
        raise ValueError(f"names: at most {len(PALETTE)} distinct colours, got {len(names)} names")
    return {n: PALETTE[i] for i, n in enumerate(names)}


def marker(i: int) -> str:
    """The i-th marker shape (for a second distinction beside colour)."""
    return _MARKERS[i % len(_MARKERS)]


@checked
def sequential(values, cmap: str = "viridis", lo: float = 0.0, hi: float = 0.85) -> dict:
    """Colours for ordered values (a grid of D, layers, ...) from a sequential colour map
    cut at `hi`, so that its last colour stays visible on white (viridis' yellow end is not)."""

    values = sorted(dict.fromkeys(values))
    cm = matplotlib.colormaps[cmap]
    n = max(len(values) - 1, 1)
    return {v: cm(lo + (hi - lo) * i / n) for i, v in enumerate(values)}


def book_style() -> None:
    """The book's figure style: 10 pt text, the palette as the default colour cycle, and, in
    a notebook with the inline backend, PNGs at 2× resolution (shown at their nominal size,
    sharp when a reader opens the full image)."""

    mpl.rcParams.update(
        {
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "figure.titlesize": 10,
            "figure.figsize": (6.0, 3.8),
            "figure.dpi": 100,
            "savefig.dpi": 200,
            "axes.prop_cycle": cycler(color=list(PALETTE)),
            "image.cmap": "cividis",
            "legend.frameon": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    try:
        from IPython import get_ipython

        if get_ipython() is not None and "inline" in mpl.get_backend():
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("retina")
    except ImportError:  # no IPython: plain scripts save figures themselves
        pass


@checked
def figure(ncols: int = 1, nrows: int = 1, *, width: float = MAX_WIDTH, panel_height: float = 2.6, **kwargs):
    """`plt.subplots` at most `MAX_WIDTH` inches wide: `width` split over `ncols` panels,
    `panel_height` inches per row. Returns (fig, axes) as `plt.subplots` does."""

    if width > MAX_WIDTH:
        raise ValueError(f"width must be at most MAX_WIDTH = {MAX_WIDTH} in, got {width}")
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, panel_height * nrows), **kwargs)


@checked
def legend_outside(fig_or_ax, handles=None, labels=None, *, ncol: int | None = None, where: str = "bottom", **kwargs):
    """A legend outside the data: below the axes (`where="bottom"`) or right of them
    (`"right"`). Works on a figure (one legend for all panels) or on one axes."""
    target = fig_or_ax
    if handles is None:
        ax = fig_or_ax.axes[0] if hasattr(fig_or_ax, "axes") and not hasattr(fig_or_ax, "plot") else fig_or_ax
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if where == "bottom":
        opts = {
            "loc": "outside lower center" if hasattr(target, "subfigs") else "upper center",
            "ncol": ncol or min(len(handles), 4),
        }
        if not hasattr(target, "subfigs"):
            opts["bbox_to_anchor"] = (0.5, -0.18)
    elif where == "right":
        opts = {"loc": "outside right upper" if hasattr(target, "subfigs") else "upper left", "ncol": ncol or 1}
        if not hasattr(target, "subfigs"):
            opts["bbox_to_anchor"] = (1.02, 1.0)
    else:
        raise ValueError(f"where must be 'bottom' or 'right', got {where!r}")
    opts.update(kwargs)
    return target.legend(handles, labels, **opts)


@checked
def tidy_log_axis(ax, axis: str = "both", short: float = 30.0):
    """Readable ticks on log axes: no labels on minor ticks (they collide as "2×10¹ 3×10¹"),
    and on an axis spanning less than `short` (a factor) plain numbers at 1-2-5. Call after
    drawing (the limits decide). Returns the axes."""

    for name in ("x", "y") if axis == "both" else (axis,):
        a = ax.xaxis if name == "x" else ax.yaxis
        if a.get_scale() != "log":
            continue
        lo, hi = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
        if lo > 0 and hi / lo < short:
            a.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        a.set_minor_formatter(NullFormatter())
    return ax


def axes_or_new(ax):
    """The given axes, or new ones on a new figure (the `ax=None` convention of every plot function)."""
    if ax is None:
        _, ax = plt.subplots()
    return ax


def glue_all(values: dict) -> None:
    """Glue each value of `values` under its key for the chapter's prose and captions
    (MyST-NB's glue roles and figures), without displaying it; figures are closed after
    gluing, so that each appears once, where the text places it."""
    from myst_nb import glue

    for key, value in values.items():
        glue(key, value, display=False)
        if isinstance(value, plt.Figure):
            plt.close(value)
