"""`superpose`: list the book's chapters and rerun one with your own parameters.

    superpose list
    superpose run CHAPTER [-p NAME VALUE]... [--device cuda] [--smoke | --preset NAME] [--out DIR]

`run` executes the chapter's notebook with papermill (a progress bar per cell) into
`--out` (default `runs/`): `<out>/<chapter>.ipynb`, the executed notebook, with the values
used in its "injected-parameters" cell, and `<out>/<chapter>-figures/`, every figure it
made as PNG/SVG, and `<out>/<chapter>-html/<chapter>.html`, the executed chapter as one
readable page (glued numbers, figures and maths rendered as on the website). All are
written under temporary names and moved into place only when complete. If the chapter
fails, `<out>/<chapter>.ipynb` and its figures are left as they were, the partial notebook is kept as `<out>/<chapter>.failed.ipynb` for inspection, and
the command exits 1. Bad input (unknown chapter or parameter, a value of the wrong type, a
device the chapter cannot take, an `--out` that cannot be written, a malformed book) exits 2
with one line saying what is wrong and the valid choices. Ctrl-C and SIGTERM stop a run the
same way (one line, the partial notebook kept, no temporary files left; exit 130 / 143);
further signals during that clean-up are ignored.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from ..core.checks import check_device
from . import run as _ch

__all__ = ["main"]

_EXTRA_MODULES = {"jupytext", "papermill", "nbformat", "nbclient", "ipykernel", "yaml", "myst_nb", "jupyter_client"}


def _raise_interrupt(signum, frame):
    # The first SIGINT/SIGTERM stops the run (as KeyboardInterrupt, so the partial notebook is
    # kept and the kernel shut down cleanly); later ones are ignored while that clean-up runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


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
        "run",
        help="execute one chapter into an output folder",
        description="Execute one chapter with papermill. Writes OUT/CHAPTER.ipynb (the executed notebook) "
        "and OUT/CHAPTER-figures/ (its figures), each only once complete. If the chapter fails, earlier "
        "results are left as they were, the partial notebook is kept as OUT/CHAPTER.failed.ipynb, and the "
        "exit status is 1.",
    )
    r.add_argument("chapter", help="chapter name, e.g. construction (see 'superpose list')")
    r.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a parameter (repeatable); VALUE is a Python literal, e.g. 2000, 0.5, [1, 2]",
    )
    r.add_argument("--device", help="sets the chapter's `device` parameter, e.g. cuda or cuda:1")
    r.add_argument("--smoke", action="store_true", help="start from the small test-size values")
    r.add_argument(
        "--preset", metavar="NAME", help="start from a named larger preset of the chapter (see `superpose list`)"
    )
    r.add_argument("--out", default="runs", metavar="DIR", help="output folder (default: runs/)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _root(book: str | None) -> Path:
    if book is None:
        return _ch.find_root()
    try:
        return _ch.book_root(book)
    except ValueError as e:
        raise UsageError(f"--book {e}") from None


def _check_out(out: Path) -> None:
    """--out must be a folder this process can create and write (checked before running)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot create the folder ({e.strerror or e})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".superpose-write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None


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
        for preset, values in c.presets.items():
            print(f"    preset {preset}: {', '.join(f'{k}={v!r}' for k, v in values.items())}")
    print(f"\nRun one: superpose run CHAPTER -p NAME VALUE   ({len(chapters)} chapter(s))")
    return 0


def _check_device(device, flag: str = "--device") -> None:
    """The one device check of the command (for --device and -p device alike)."""

    if not isinstance(device, str):
        raise UsageError(f"{flag} {device!r} is not a device name: choose cpu, cuda or cuda:N")
    try:
        check_device(device)
    except ValueError as e:
        raise UsageError(f"{flag} {str(e).removeprefix('device=')}") from None


_PATH_SUFFIXES = ("_dir", "_path", "_file")


def _caller_path(chapter, name: str, value: str) -> str:
    """A path parameter (a string parameter named *_dir, *_path or *_file) given relative on
    the command line is meant from the caller's directory: made absolute here, since the
    chapter runs in its own folder."""
    default = chapter.parameters.get(name)
    if isinstance(default, str) and name.endswith(_PATH_SUFFIXES) and value.strip():
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else Path.cwd() / path)
    return value


def _run_cache(default: str, out: Path) -> str:
    """Where a run's sweep cache goes: under --out (`<out>/.superpose_cache/...`, the part of
    the chapter's own default after `.superpose_cache`), never into the checkout; the book
    build keeps the chapter's default. An empty default (no cache) stays empty."""
    if not default:
        return default
    parts = Path(default).parts
    tail = parts[parts.index(".superpose_cache") + 1 :] if ".superpose_cache" in parts else ()
    return str(out.resolve().joinpath(".superpose_cache", *tail))


def _cmd_run(args, root: Path) -> int:
    name = Path(args.chapter).stem if args.chapter.endswith((".md", ".ipynb")) else args.chapter
    try:
        chapter = _ch.get_chapter(name, root)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not args.out.strip():
        raise UsageError("--out '' is empty: give the output folder (default: runs)")
    out = Path(args.out)
    given = dict(args.parameter)
    if args.device is not None and "device" in given and given["device"] != args.device:
        raise UsageError(f"--device {args.device} and -p device {given['device']} disagree: give one of them")
    overrides = {}
    for pname, value in args.parameter:
        if pname == "device" and pname in chapter.parameters:
            _check_device(value, "-p device")
        try:
            overrides[pname] = _ch.coerce_parameter(chapter, pname, _caller_path(chapter, pname, value))
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
    if "cache_dir" in chapter.parameters and "cache_dir" not in overrides:
        overrides["cache_dir"] = _run_cache(chapter.parameters["cache_dir"], out)
    try:
        params = chapter.resolve(overrides, smoke=args.smoke, preset=args.preset)
    except ValueError as e:
        raise UsageError(str(e)) from None
    _check_out(out)
    changed = {k: v for k, v in params.items() if chapter.parameters.get(k) != v}
    print(
        f"running {chapter.name} ({chapter.path.relative_to(root)})"
        + (f" with {', '.join(f'{k}={v!r}' for k, v in changed.items())}" if changed else " with its defaults"),
        file=sys.stderr,
    )
    env = {"PYTHONPATH": os.pathsep.join(p for p in [str(root), os.environ.get("PYTHONPATH", "")] if p)}
    try:  # notebook, figures and the one-page HTML (myst-nb's rendering) are published together
        nb = _ch.execute_chapter(
            chapter, out, params, progress=not args.no_progress, env=env, figures=True, html=True, root=root
        )
    except _ch.ChapterFailed as e:
        print(f"superpose: error: {e}", file=sys.stderr)
        return 1
    fig_dir = out / f"{chapter.name}-figures"
    figures = sorted(fig_dir.iterdir()) if fig_dir.is_dir() else []
    print(f"executed notebook: {nb}")
    if figures:
        print(f"figures ({len(figures)}): {out / (chapter.name + '-figures')}")
        for f in figures:
            print(f"  {f}")
    else:
        print("figures: none")
    print(f"readable page: {out / (chapter.name + '-html') / (chapter.name + '.html')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `superpose` command; returns the exit status."""
    old = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, _raise_interrupt)
    except ValueError:  # main() called from a thread: leave the handlers alone
        pass
    try:
        return _main(argv)
    finally:  # restored unless a signal stopped the run: then later ones stay ignored until exit
        for sig, handler in old.items():
            if signal.getsignal(sig) is _raise_interrupt:
                signal.signal(sig, handler)


def _main(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
        root = _root(args.book)
        if args.command == "list":
            return _cmd_list(root)
        return _cmd_run(args, root)
    except (UsageError, ValueError) as e:  # ValueError: no book here, a malformed chapter
        print(f"superpose: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in _EXTRA_MODULES:
            raise
        print(
            f"superpose: error: the command needs the 'book' extra (module {e.name!r} is missing): "
            "pip install 'superpose[book]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as e:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        name = str(e) if str(e) in ("SIGINT", "SIGTERM") else "SIGINT"
        failed = getattr(e, "failed", None)
        kept = f"; partial notebook kept as {failed}" if failed else ""
        print(f"superpose: interrupted ({name}){kept}", file=sys.stderr)
        return 128 + int(getattr(signal, name))
    except BrokenPipeError:  # `superpose list | head`: the reader left; say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except OSError as e:  # a full disk or a vanished folder while writing the results
        print(f"superpose: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
