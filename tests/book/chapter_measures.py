"""How thin each chapter is: cell sizes, code against prose, bookkeeping, folded cells.

    python tests/book/chapter_measures.py [--json] [BOOK_DIR]

Per chapter (a MyST Markdown notebook):
- median / max code cell: non-blank, non-comment lines of a code cell;
- code : prose: those lines in visible cells (not `hide-input`/`remove-input`) over the
  non-blank prose lines outside code cells and maths blocks;
- bookkeeping: the share of code lines that only glue, assert, print or format, or tidy a
  figure (ax.set*, legends, plt.close, ...; a DataFrame's set_index is not tidying);
- unfolded: visible cells that plot, tabulate or assert (BOOK_STYLE folds them).

The targets (issue "The architecture visible in the layout"): median ≤ 12, max ≤ 30,
code : prose ≤ 0.9, bookkeeping ≤ 20 %, no unfolded plotting/table/assertion cell.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

CHAPTERS = ("construction", "regime", "error_correction", "asymptotic", "cross_circuit", "gist", "trained")
TARGETS = {"median": 12, "max": 30, "code_prose": 0.9, "bookkeeping": 0.20, "unfolded": 0}
_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", re.S | re.M)
_BOOK = re.compile(
    r"^\s*(glue\(|assert\b|print\(|display\(|facts\s*(\||\[|=)|.*\.(set_(?!index)[a-z]+|set|legend|tight_layout|"
    r"subplots_adjust|axhline|axvline|annotate|text|grid|tick_params)\(|plt\.close|fig\.|not_run\(|"
    r".*= f\"|.*\.format\(|.*:\.\d+[fgeE%]|\)$|\]$|\}$)"
)
_SHOWS = re.compile(r"\b(plot_\w+|plt\.|ax\.|\.style\b|display\(|assert\b|glue\()")


def _cells(text: str):
    for m in _CELL.finditer(text):
        body = m.group(1)
        tags = re.search(r"^:tags:\s*\[(.*?)\]", body, re.M)
        tags = {t.strip().strip("\"'") for t in tags.group(1).split(",")} if tags else set()
        code = [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", ":tags:", "---"))]
        yield tags, code


def measure(path: Path) -> dict:
    text = path.read_text()
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)  # front matter
    cells = [c for c in _cells(text) if "parameters" not in c[0]]
    prose_text = _CELL.sub("", text)
    prose_text = re.sub(r"^\$\$.*?^\$\$", "", prose_text, flags=re.S | re.M)
    prose = [ln for ln in prose_text.splitlines() if ln.strip() and not ln.startswith(("```", ":", "+++", "(", "%"))]
    sizes = [len(code) for _, code in cells]
    hidden = lambda tags: bool(tags & {"hide-input", "remove-input", "remove-cell"})
    visible = [code for tags, code in cells if not hidden(tags)]
    all_code = [ln for _, code in cells for ln in code]
    book = [ln for ln in all_code if _BOOK.match(ln)]
    unfolded = sum(1 for code in visible if any(_SHOWS.search(ln) for ln in code))
    return {
        "chapter": path.stem,
        "median": statistics.median(sizes) if sizes else 0,
        "max": max(sizes, default=0),
        "code_prose": round(sum(map(len, visible)) / max(1, len(prose)), 2),
        "bookkeeping": round(len(book) / max(1, len(all_code)), 2),
        "unfolded": unfolded,
        "visible_code_lines": sum(map(len, visible)),
    }


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    book = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "book"
    rows = [measure(book / f"{c}.md") for c in CHAPTERS if (book / f"{c}.md").exists()]
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'chapter':18} {'median/max':>10} {'code:prose':>10} {'bookkeeping':>11} {'unfolded':>8} {'visible':>7}")
    for r in rows:
        print(
            f"{r['chapter']:18} {r['median']:>5}/{r['max']:<4} {r['code_prose']:>10} {r['bookkeeping']:>10.0%}"
            f" {r['unfolded']:>8} {r['visible_code_lines']:>7}"
        )
    print(
        f"targets: median <= {TARGETS['median']}, max <= {TARGETS['max']}, code:prose <= {TARGETS['code_prose']},"
        f" bookkeeping <= {TARGETS['bookkeeping']:.0%}, unfolded = 0"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
