"""`superpose`: list the book's chapters and rerun one with your own parameters.

    superpose list
    superpose run CHAPTER [-p NAME VALUE]... [--device cuda] [--smoke] [--out DIR]

`run` executes the chapter's notebook with papermill (a progress bar per cell) into
`--out` (default `runs/`): `<out>/<chapter>.ipynb`, the executed notebook, with the values
used in its "injected-parameters" cell, and `<out>/<chapter>-figures/`, every figure it
made as PNG/SVG, and `<out>/<chapter>-html/<chapter>.html`, the executed chapter as one
readable page (glued numbers, figures and maths rendered as on the website). All are
written under temporary names and moved into place only when complete. If the chapter
fails, `<out>/<chapter>.ipynb` and its figures are left as they were, the partial notebook is kept as `<out>/<chapter>.failed.ipynb` for inspection, and
the command exits 1. Bad input (unknown chapter or parameter, a value of the wrong type, a
device the chapter cannot take) exits 2 with one line saying what is wrong and the valid
choices.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import chapters as _ch
from .render import render_html

__all__ = ["main"]


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="superpose", description="List the book's chapters or rerun one with other parameters.")
    p.add_argument("--book", metavar="DIR", help="the book's root (a folder with _toc.yml); default: found from here")
    sub = p.add_subparsers(dest="command", metavar="{list,run}", parser_class=_Parser)
    sub.required = True
    sub.add_parser("list", help="chapters and their parameters (defaults and smoke values)")
    r = sub.add_parser(
        "run", help="execute one chapter into an output folder",
        description="Execute one chapter with papermill. Writes OUT/CHAPTER.ipynb (the executed notebook) "
        "and OUT/CHAPTER-figures/ (its figures), each only once complete. If the chapter fails, earlier "
        "results are left as they were, the partial notebook is kept as OUT/CHAPTER.failed.ipynb, and the "
        "exit status is 1.")
    r.add_argument("chapter", help="chapter name, e.g. construction (see 'superpose list')")
    r.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter (repeatable); VALUE is a Python literal, e.g. 2000, 0.5, [1, 2]")
    r.add_argument("--device", help="sets the chapter's `device` parameter, e.g. cuda or cuda:1")
    r.add_argument("--smoke", action="store_true", help="start from the small test-size values")
    r.add_argument("--out", default="runs", metavar="DIR", help="output folder (default: runs/)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _root(book: str | None) -> Path:
    if book is None:
        return _ch.find_root()
    root = Path(book)
    if not (root / "_toc.yml").is_file():
        raise UsageError(f"--book {book}: no _toc.yml there")
    return root.resolve()


def _cmd_list(root: Path) -> int:
    chapters = _ch.list_chapters(root)
    for c in chapters:
        print(f"{c.name}  ({c.path.relative_to(root)})")
        if not c.parameters:
            print("    (no parameters)")
        width = max((len(n) for n in c.parameters), default=0)
        vwidth = max((len(repr(v)) for v in c.parameters.values()), default=0)
        for name, value in c.parameters.items():
            smoke = f"   smoke: {c.smoke[name]!r}" if name in c.smoke else ""
            print(f"    {name:<{width}} = {value!r:<{vwidth}}  ({type(value).__name__}){smoke}")
    print(f"\nRun one: superpose run CHAPTER -p NAME VALUE   ({len(chapters)} chapter(s))")
    return 0


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r} is not a torch device: choose cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device!r}: CUDA is not available on this machine: choose cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"--device {device!r}: only {torch.cuda.device_count()} CUDA device(s): choose cuda:0..")


def _cmd_run(args, root: Path) -> int:
    name = Path(args.chapter).stem if args.chapter.endswith((".md", ".ipynb")) else args.chapter
    try:
        chapter = _ch.get_chapter(name, root)
    except ValueError as e:
        raise UsageError(str(e)) from None
    overrides = {}
    for pname, value in args.parameter:
        try:
            overrides[pname] = _ch.coerce_parameter(chapter, pname, value)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if args.device is not None:
        if "device" not in chapter.parameters:
            raise UsageError(
                f"chapter {chapter.name!r} has no device parameter, so --device cannot apply: "
                f"its parameters are {', '.join(chapter.parameters) or 'none'}"
            )
        _check_device(args.device)
        overrides["device"] = args.device
    params = chapter.resolve(overrides, smoke=args.smoke)
    out = Path(args.out)
    changed = {k: v for k, v in params.items() if chapter.parameters.get(k) != v}
    print(f"running {chapter.name} ({chapter.path.relative_to(root)})"
          + (f" with {', '.join(f'{k}={v!r}' for k, v in changed.items())}" if changed else " with its defaults"),
          file=sys.stderr)
    env = {"PYTHONPATH": os.pathsep.join(p for p in [str(root), os.environ.get("PYTHONPATH", "")] if p)}
    try:
        nb = _ch.execute_chapter(chapter, out, params, progress=not args.no_progress, env=env)
    except _ch.ChapterFailed as e:
        print(f"superpose: error: {e}", file=sys.stderr)
        return 1
    figures = _ch.extract_figures(nb, out / f"{chapter.name}-figures")
    print(f"executed notebook: {nb}")
    if figures:
        print(f"figures ({len(figures)}): {out / (chapter.name + '-figures')}")
        for f in figures:
            print(f"  {f}")
    else:
        print("figures: none")
    try:  # the chapter as one HTML page, glued numbers rendered by myst-nb (superpose_lib.render)
        page = render_html(nb, out / f"{chapter.name}-html", root)
        print(f"readable page: {page}")
    except RuntimeError as e:  # the notebook is complete; only its one-page rendering failed
        print(f"superpose: warning: no HTML page: {e}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `superpose` command; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        root = _root(args.book)
        if args.command == "list":
            return _cmd_list(root)
        return _cmd_run(args, root)
    except (UsageError, ValueError) as e:  # ValueError: no book here, a malformed chapter
        print(f"superpose: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("superpose: interrupted (a partial notebook, if any, is kept as <chapter>.failed.ipynb)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
