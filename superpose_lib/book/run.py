"""The book's chapters as executable notebooks: list them, read their parameters, run them.

A chapter is a MyST Markdown notebook listed in `_toc.yml`. Its `parameters`-tagged cell
holds the full values the book build uses (plain `NAME = literal` lines); its front matter
holds small smoke values under `superpose: smoke:` for tests. papermill cannot read `.md`,
so chapters are read with jupytext and executed in memory.
"""

from __future__ import annotations

import ast
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.checks import DOMAINS, INT_MAX, check_int, check_real, integer, real
from .render import PageBuildFailed, build_page, kernel_env, stamp_run

__all__ = [
    "Chapter",
    "find_root",
    "toc_files",
    "list_chapters",
    "get_chapter",
    "coerce_parameter",
    "check_parameter",
    "parameter_domain",
    "CHAPTER_WORDS",
    "execute_chapter",
    "extract_figures",
    "build_site",
    "ChapterFailed",
    "ChapterInterrupted",
    "book_root",
    "remove_leftovers",
]


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The book's root: the nearest folder at or above `start` (default: cwd, then this
    package's checkout) holding `_toc.yml`."""
    candidates = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent.parent]
    for c in candidates:
        for p in [c, *c.parents]:
            if (p / "_toc.yml").is_file() and (p / "book").is_dir():
                return p
    raise ValueError("no book found: run from the superpose checkout (a folder with _toc.yml)")


def book_root(root: str | os.PathLike) -> Path:
    """`root` itself as the book's root, checked: it must hold `_toc.yml` and `book/` (no
    search of parent folders: an explicit root that is not a book is an error)."""
    path = Path(root)
    if not (path / "_toc.yml").is_file():
        raise ValueError(f"{root}: no _toc.yml there (not the root of a book)")
    if not (path / "book").is_dir():
        raise ValueError(f"{root}: no book/ folder there (not the root of a book)")
    return path.resolve()


@dataclass(frozen=True)
class Chapter:
    """One chapter: its name (file stem), path, full parameters, smoke overrides and named
    presets (larger runs, e.g. "large" for a GPU or a cluster: `superpose: presets:`)."""

    name: str
    path: Path
    parameters: dict
    smoke: dict
    presets: dict = field(default_factory=dict)

    def resolve(self, overrides: dict | None = None, *, smoke: bool = False, preset: str | None = None) -> dict:
        """Parameters for a run: the defaults, then smoke values or a named preset's, then
        `overrides` (validated: unknown names, presets or wrong types raise ValueError)."""
        params = dict(self.parameters)
        if smoke and preset is not None:
            raise ValueError(f"preset={preset!r} and smoke: give one of them")
        if smoke:
            params.update(self.smoke)
        if preset is not None:
            if preset not in self.presets:
                raise ValueError(
                    f"preset={preset!r} is not a preset of chapter {self.name!r}: "
                    f"allowed {', '.join(sorted(self.presets)) or 'none (it has no presets)'}"
                )
            for name, value in self.presets[preset].items():
                params[name] = coerce_parameter(self, name, value)
        for name, value in (overrides or {}).items():
            params[name] = coerce_parameter(self, name, value)
        return params


def toc_files(root: Path) -> list[str]:
    """Files listed in `_toc.yml` (root first), in reading order."""
    import yaml

    path = Path(root) / "_toc.yml"
    try:
        toc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ValueError(f"{path}: malformed YAML{at}: {getattr(e, 'problem', None) or e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read it ({e})") from None
    if not isinstance(toc, dict) or not isinstance(toc.get("root"), str):
        raise ValueError(f"{path}: not a Jupyter Book table of contents (a mapping with a 'root:' file)")
    files = [toc["root"]]

    def walk(entries, where):
        if entries is None:
            return
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError(f"{path}: '{where}' must be a list of entries (mappings), got {entries!r}")
        for e in entries:
            if "file" in e:
                if not isinstance(e["file"], str):
                    raise ValueError(f"{path}: 'file' must be a path, got {e['file']!r}")
                files.append(e["file"])
            walk(e.get("sections"), "sections")
            for part in e.get("parts") or []:
                walk(part.get("chapters") if isinstance(part, dict) else part, "parts")

    walk(toc.get("chapters"), "chapters")
    parts = toc.get("parts") or []
    if not isinstance(parts, list):
        raise ValueError(f"{path}: 'parts' must be a list, got {parts!r}")
    for part in parts:
        walk(part.get("chapters") if isinstance(part, dict) else part, "parts")
    return files


def _read_notebook(path: Path):
    """The chapter file as a notebook; anything unreadable (not UTF-8, malformed front
    matter, not a MyST notebook) is one ValueError naming the file and the cause."""
    import jupytext
    import yaml

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: not a text file (byte {e.start} is not UTF-8): a chapter is a MyST Markdown notebook"
        ) from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        return jupytext.reads(text, fmt=path.suffix.lstrip(".") or "md")
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ValueError(f"{path}: malformed front matter{at}: {getattr(e, 'problem', None) or e}") from None
    except Exception as e:  # noqa: BLE001 - jupytext raises many kinds; the reader gets one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{path}: cannot read it as a MyST notebook ({type(e).__name__}: {first})") from None


def _smoke(nb, path: Path) -> dict:
    """The `superpose: smoke:` mapping of the front matter (checked: a mapping of names)."""
    meta = nb.metadata.get("superpose", {})
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ValueError(
            f"{path}: front matter 'superpose' must be a mapping (e.g. 'superpose: {{smoke: {{n: 2}}}}'), got {meta!r}"
        )
    smoke = meta.get("smoke", {})
    if smoke is None:
        return {}
    if not isinstance(smoke, dict) or not all(isinstance(k, str) for k in smoke):
        raise ValueError(
            f"{path}: front matter 'superpose: smoke' must be a mapping of parameter names to values, got {smoke!r}"
        )
    return dict(smoke)


def _presets(nb, path: Path) -> dict:
    """The `superpose: presets:` mapping of the front matter: preset name -> a mapping of
    parameter names to values (checked)."""
    meta = nb.metadata.get("superpose", {}) or {}
    presets = meta.get("presets", {}) or {}
    ok = isinstance(presets, dict) and all(
        isinstance(k, str) and isinstance(v, dict) and all(isinstance(n, str) for n in v) for k, v in presets.items()
    )
    if not ok:
        raise ValueError(
            f"{path}: front matter 'superpose: presets' must map preset names to mappings of parameter names "
            f"to values (e.g. 'presets: {{large: {{D_list: [1024, 2048]}}}}'), got {presets!r}"
        )
    return {k: dict(v) for k, v in presets.items()}


def _parameters_cell(nb, where: str = "chapter") -> dict:
    """NAME = literal assignments of the cell tagged `parameters`; anything else there (a
    call, a name, a syntax error) raises a ValueError naming `where` and the line."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            params = {}
            try:
                body = ast.parse(cell.source).body
            except SyntaxError as e:
                raise ValueError(f"{where}: parameters cell line {e.lineno}: {e.msg}") from None
            for node in body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        params[node.targets[0].id] = ast.literal_eval(node.value)
                    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                        raise ValueError(
                            f"{where}: parameters cell line {node.lineno}: {node.targets[0].id} = "
                            f"{ast.unparse(node.value)} is not a Python literal (allowed: numbers, "
                            "strings, lists, tuples, dicts, True/False/None)"
                        ) from None
            return params
    return {}


def _chapter_files(root: Path) -> list[Path]:
    return [p for f in toc_files(root) if (p := root / (f if f.endswith(".md") else f + ".md")).is_file()]


def _load_chapter(path: Path, root: Path) -> Chapter | None:
    """The chapter in `path` (None for a page without code); a malformed one is a ValueError
    naming the file."""
    nb = _read_notebook(path)
    if not any(c.cell_type == "code" for c in nb.cells):
        return None
    params = _parameters_cell(nb, f"chapter {path.stem!r} ({path.relative_to(root)})")
    smoke = _smoke(nb, path)
    unknown = set(smoke) - set(params)
    if unknown:
        raise ValueError(f"{path}: smoke parameters {sorted(unknown)} are not in its parameters cell")
    presets = _presets(nb, path)
    for name, values in presets.items():
        unknown = set(values) - set(params)
        if unknown:
            raise ValueError(f"{path}: preset {name!r} sets {sorted(unknown)}, which are not in its parameters cell")
    return Chapter(path.stem, path, params, smoke, presets)


def list_chapters(root: str | os.PathLike | None = None) -> list[Chapter]:
    """Every executable chapter of the book (notebooks with a `parameters` cell), in toc order."""
    root = find_root() if root is None else book_root(root)
    return [c for p in _chapter_files(root) if (c := _load_chapter(p, root)) is not None]


def get_chapter(name: str, root=None) -> Chapter:
    """The chapter called `name`; a ValueError lists the valid names otherwise. Only that
    chapter's file is read (a malformed other chapter does not stop this one)."""
    root = find_root() if root is None else book_root(root)
    files = _chapter_files(root)
    for p in files:
        if p.stem == name and (c := _load_chapter(p, root)) is not None:
            return c
    names = [p.stem for p in files if b"{code-cell}" in p.read_bytes()]
    raise ValueError(f"unknown chapter {name!r}: choose one of {', '.join(names)}")


def coerce_parameter(chapter: Chapter, name: str, value):
    """Convert `value` (a string from the command line, or a Python value) to the type of
    the chapter's default for `name`; raise ValueError naming the problem otherwise."""
    if name not in chapter.parameters:
        raise ValueError(
            f"unknown parameter {name!r} for chapter {chapter.name!r}: "
            f"choose one of {', '.join(sorted(chapter.parameters))}"
        )
    default = chapter.parameters[name]
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(
                f"parameter {name!r} of chapter {chapter.name!r} expects {kind.__name__} "
                f"(default {default!r}), got {value!r}"
            ) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if default is not None and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(
            f"parameter {name!r} of chapter {chapter.name!r} expects {kind.__name__} "
            f"(default {default!r}), got {value!r}"
        )
    empty_ok = isinstance(chapter.smoke.get(name), (list, tuple)) and not chapter.smoke[name]
    if isinstance(default, (list, tuple)) and default and not value and not empty_ok:  # the smoke run may skip a part
        raise ValueError(
            f"parameter {name!r} of chapter {chapter.name!r} expects a non-empty {kind.__name__} "
            f"(default {default!r}), got {value!r}"
        )
    if isinstance(default, (list, tuple)) and default and value:
        inner = type(default[0])
        if not all(isinstance(v, inner) or (inner is float and isinstance(v, int)) for v in value):
            raise ValueError(
                f"parameter {name!r} of chapter {chapter.name!r} expects a {kind.__name__} of "
                f"{inner.__name__}, got {value!r}"
            )
    check_parameter(chapter, name, value)
    return value


# ---- a chapter's parameters go through the library's checks ---------------------------------
#: Words a chapter parameter's name may hold besides the library's vocabulary (`DOMAINS`):
#: the control parameter x = T(d/D)² (T ≤ the assignment's capacity < (D/d)², so 0 < x ≤ 1)
#: and the sweep's worker processes. "seeds" is a list of seeds, or their number when an int.
CHAPTER_WORDS = {"x": real(0.0, 1.0, open_low=True), "workers": integer(1, 1024)}
#: Vocabulary words a chapter's names do not use that way ("lm_d_model" is no circuit width d).
_NOT_CHAPTER_WORDS = ("d", "itemsize", "generator")


def parameter_domain(name: str):
    """The vocabulary word in a chapter parameter's name and its domain (word, domain), or
    (None, None). The name is split at underscores and the first word of the library's
    vocabulary (`core.checks.DOMAINS`: D, T, M, S, S_alpha, z, L, layer, batch, n_boot,
    n_seeds, steps, seed, resolution, eps, tol, rate, device, dtype) or of `CHAPTER_WORDS`
    (x, workers) found in it, two-part words first, names it: `D_list`, `route_D` and
    `D_large` take D's domain (element by element for a list), `gate_batch` and `batch_cap`
    batch's, `n_seeds_large` n_seeds', `x_show` x's, `gw_tune_seeds` and `seeds` seed's
    (an int `*_seeds` is a number of seeds)."""
    tokens = name.split("_")
    words = {k: v for k, v in DOMAINS.items() if k not in _NOT_CHAPTER_WORDS} | CHAPTER_WORDS
    for size in (2, 1):
        for i in range(len(tokens) - size + 1):
            word = "_".join(tokens[i : i + size])
            if word in words:
                return word, words[word]
            if word == "seeds":
                return "seeds", DOMAINS["seed"]
    return None, None


def _numbers(value) -> list:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def check_parameter(chapter: Chapter, name: str, value) -> None:
    """The chapter's own checks of one value, before any kernel starts; a ValueError names
    the parameter, the value and the allowed range.

    - A name holding a word of the library's vocabulary is checked by that word's domain,
      the one every library function applies to its parameter of that name
      (`parameter_domain`): `-p batch 0`, `-p D_large "[1024, 0]"`, `-p seed -1` and
      `-p x_show 1e999` are refused as `rotation_errors(..., batch=0)` would refuse them.
    - Any other number must be finite (an int within int64) and keep the sign of the
      chapter's own values: positive where its default and smoke values are all positive
      (sizes, counts, rates, tolerances), non-negative where they are all non-negative."""
    word, domain = parameter_domain(name)
    if word == "seeds" and not isinstance(value, (list, tuple)):
        domain = DOMAINS["n_seeds"]
    try:
        if domain is not None:
            items = value if isinstance(value, (list, tuple)) else [value]
            numeric = word not in ("device", "dtype")
            for v in items:
                if (isinstance(v, (int, float)) and not isinstance(v, bool)) if numeric else isinstance(v, str):
                    domain(name, v)
            return
        own = _numbers(chapter.parameters.get(name)) + _numbers(chapter.smoke.get(name))
        low = 0.0 if own and min(own) >= 0 else None
        strict = bool(own) and min(own) > 0
        for v in _numbers(value):
            if isinstance(v, int):
                check_int(name, v, 1 if strict else (0 if low is not None else -INT_MAX - 1))
            else:
                check_real(name, v, low, open_low=strict)
    except ValueError as e:
        raise ValueError(f"parameter {name!r} of chapter {chapter.name!r}: {e}") from None


def execute_chapter(
    chapter: Chapter,
    out_dir: str | os.PathLike,
    parameters: dict | None = None,
    *,
    smoke: bool = False,
    progress: bool = False,
    env: dict | None = None,
    figures: bool = False,
    html: bool = False,
    root: str | os.PathLike | None = None,
) -> Path:
    """Execute `chapter` with papermill into `out_dir/<name>.ipynb` and return that path.

    Runs with the chapter's folder as working directory. The notebook is written to a
    hidden temporary file and moved into place only when it is complete, so
    `<name>.ipynb` is never half-written (a previous complete one is left as it was). On
    failure the partial notebook is kept as `<name>.failed.ipynb` for inspection and
    `ChapterFailed` is raised (from the papermill error); on KeyboardInterrupt (Ctrl-C, or
    SIGTERM as the CLI maps it) the same, as `ChapterInterrupted`. A later success removes
    `<name>.failed.ipynb`.

    figures=True also writes every figure to `out_dir/<name>-figures/` (`extract_figures`);
    html=True the chapter as one page, `out_dir/<name>-html/<name>.html`
    (`render.build_page`, with the book at `root`, default: found from the chapter). The run
    publishes as a whole: the notebook, its figures and its page are replaced together or
    not at all. Each is built in a hidden folder first (a full disk, a failed Sphinx build or
    an interrupt there leaves the earlier results untouched), then all are renamed into
    place (renames need no space), rolling back if a rename fails. If that publishing step
    fails, the executed notebook is kept as `<name>.failed.ipynb` and `ChapterFailed` (one
    line: the file and the cause) or `ChapterInterrupted` is raised.

    Hidden temporaries carry the process id in their names; those of a run that was killed
    (SIGKILL: no clean-up ran) are removed at the start of the next run of the chapter into
    `out_dir`, and its `superpose-run-*` folders in the temporary directory.
    """
    import papermill as pm

    params = chapter.resolve(parameters, smoke=smoke)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{chapter.name}.ipynb"
    failed = out_dir / f"{chapter.name}.failed.ipynb"
    remove_leftovers(out_dir, chapter.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{chapter.name}.{os.getpid()}.", suffix=".part.ipynb", dir=out_dir)
    os.close(fd)
    # The kernel must use the inline backend: under MPLBACKEND=Agg (set for tests and
    # headless runs) IPython registers no PNG formatter, and a glued figure is saved as the
    # text "<Figure size ...>" only.
    # jupyter_client writes the kernel's connection file with tempfile.mkstemp (tmp*.json)
    # and removes it only on a clean shutdown, so an interrupted run left one behind each
    # time. Every temporary file of the run (ours and the kernel's) goes into one private
    # folder, removed whatever happens.
    run_tmp = tempfile.mkdtemp(prefix=f"superpose-run-{os.getpid()}-")
    kernels: list = []  # the kernel processes this run started
    env = {
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        **kernel_env(Path(run_tmp) / "ipython"),
        **(env or {}),
        "TMPDIR": run_tmp,
    }
    old_env = {k: os.environ.get(k) for k in env}
    old_tempdir = tempfile.tempdir
    os.environ.update(env)
    tempfile.tempdir = run_tmp
    started = time.perf_counter()
    try:
        pm.execute_notebook(
            _read_notebook(chapter.path),
            tmp,
            parameters=params,
            cwd=str(chapter.path.parent),
            progress_bar=progress,
            kernel_name="python3",
            language="python",
            # The kernel's log is not for the reader: its "running over TCP without
            # encryption" warning (ipykernel ≥ 7) is about the local loopback connection it
            # was told to use, and a run stopped by Ctrl-C/SIGTERM makes it log a traceback
            # from its closing sockets. Cell errors still come back as messages.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            kernel_manager_class=_quiet_kernel_manager(Path(run_tmp) / "kernel.log", kernels),
        )
    except BaseException as e:
        if Path(tmp).exists() and Path(tmp).stat().st_size:
            _chmod_like_umask(tmp, 0o666)
            os.replace(tmp, failed)
        else:
            Path(tmp).unlink(missing_ok=True)
            failed = None
        if isinstance(e, Exception):
            what = f"{getattr(e, 'ename', type(e).__name__)}: {getattr(e, 'evalue', e)}"
            if "DeadKernel" in what:  # the kernel's own last words explain it
                what += _last_line(Path(run_tmp) / "kernel.log")
            cell = getattr(e, "exec_count", None)
            where = f" in cell [{cell}]" if cell is not None else ""
            kept = f"; partial notebook: {failed}" if failed else ""
            raise ChapterFailed(chapter.name, failed, f"chapter {chapter.name!r} failed{where}: {what}{kept}") from e
        if isinstance(e, KeyboardInterrupt):
            raise ChapterInterrupted(chapter.name, failed, str(e)) from e
        raise
    finally:
        tempfile.tempdir = old_tempdir
        # nbclient leaves the kernel running when interrupted (KeyboardInterrupt/SIGTERM):
        # an orphan that kept its connection file alive. Stop what this run started.
        _stop_kernels(kernels)
        _remove_tree(run_tmp)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    # The run's record (commit, date, run time, parameters) for the book's Execution page.
    stamp_run(
        tmp,
        chapter.path.parent,
        parameters=params,
        seconds=time.perf_counter() - started,
        how="papermill" + (", smoke parameters" if smoke else ""),
    )
    _chmod_like_umask(tmp, 0o666)
    fig_dir = out_dir / f"{chapter.name}-figures"
    page_dir = out_dir / f"{chapter.name}-html"
    fig_tmp = page_tmp = None
    try:
        fig_tmp = _write_figures(tmp, fig_dir) if figures else None
        if html:
            book = Path(root) if root is not None else find_root(chapter.path.parent)
            page_tmp = build_page(tmp, page_dir, book, name=chapter.name)
        _install(tmp, target, fig_tmp, fig_dir if figures else None, page_tmp, page_dir if html else None)
    except BaseException as e:
        for p in (fig_tmp, page_tmp):
            if p is not None:
                shutil.rmtree(p, ignore_errors=True)
        kept = None
        if Path(tmp).exists():
            os.replace(tmp, failed)
            kept = failed
        if isinstance(e, KeyboardInterrupt):
            raise ChapterInterrupted(chapter.name, kept, str(e)) from e
        if not isinstance(e, Exception):
            raise
        raise ChapterFailed(
            chapter.name,
            kept,
            f"chapter {chapter.name!r} ran, but its results could not be "
            f"published, so none was: {_cause(e)}" + (f"; the executed notebook is kept as {kept}" if kept else ""),
        ) from e
    failed.unlink(missing_ok=True)
    return target


def _cause(e: BaseException) -> str:
    """One line: the file and the cause of an OSError (a full disk: 'No space left on device:
    <file>'), else the exception's first line."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    text = str(e).strip().splitlines()
    if isinstance(e, PageBuildFailed):
        return text[0]
    return f"{type(e).__name__}: {text[0] if text else ''}"


_LEFTOVER = re.compile(r"\.?\.(?P<stem>.+?)\.(?P<pid>\d+)\.")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, another user's
        return True
    return True


def remove_leftovers(out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Remove what runs of chapter `name` that were killed (SIGKILL, a power cut: no
    clean-up ran) left behind: the hidden partial notebook, figures and page folders in
    `out_dir` and the `superpose-run-<pid>-*` folders in the temporary directory, each only
    when the process named in it is gone (a run still going is left alone). Returns what
    was removed."""
    out_dir = Path(out_dir)
    stems = {name, f"{name}-figures", f"{name}-figures.old", f"{name}-html", f"{name}-html-src"}
    removed = []
    candidates = list(out_dir.iterdir()) if out_dir.is_dir() else []
    for p in candidates:
        m = _LEFTOVER.match(p.name)
        if m and m["stem"] in stems and not _alive(int(m["pid"])):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            removed.append(p)
    tmp = Path(tempfile.gettempdir())
    for p in tmp.glob("superpose-run-*-*"):
        pid = p.name.removeprefix("superpose-run-").split("-", 1)[0]
        if pid.isdigit() and p.is_dir() and not _alive(int(pid)):
            _remove_tree(p, tries=1)
            removed.append(p)
    return removed


def _stop_kernels(processes, timeout: float = 5.0) -> None:
    """Terminate (then kill) every kernel process still running."""

    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _quiet_kernel_manager(log_path: Path, started: list):
    """A kernel manager whose kernel writes its process-level stderr to `log_path`.

    Cell output (prints, warnings, even C-level writes to fd 2) reaches the notebook
    through ipykernel's captured streams either way; what is left on the kernel's real
    stderr is its own shutdown noise, e.g. a traceback when Ctrl-C (which a terminal sends
    to the kernel as well) or a shutdown lands between cells. That is not the reader's
    business: it goes to the log, whose last line is quoted if the kernel dies.
    Every kernel process started is appended to `started` (so the run can stop it).
    """
    from jupyter_client import AsyncKernelManager
    from jupyter_client.manager import KernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log_path, "ab") as log:
                kw["stderr"] = log
                out = await KernelManager._async_launch_kernel(self, kernel_cmd, **kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                started.append(process)
            return out

        _launch_kernel = _async_launch_kernel

    return QuietKernelManager


def _remove_tree(path, tries: int = 30, delay: float = 0.1) -> None:
    """rmtree, retried for up to tries·delay seconds: after an interrupt the kernel may still
    be writing into its TMPDIR while it shuts down, so one pass can leave files behind."""

    for _ in range(tries):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(delay)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f" (kernel: {lines[-1].strip()})" if lines else ""


def _install(
    nb_tmp,
    target: Path,
    fig_tmp: Path | None,
    fig_dir: Path | None,
    page_tmp: Path | None = None,
    page_dir: Path | None = None,
) -> None:
    """Rename the complete notebook, its complete figures folder and its page folder into
    place together (a folder given with no new one, fig_tmp None, is removed: the chapter
    made no figure). The old folders are moved aside first and restored if any rename
    fails. Renames within a folder need no space."""
    pairs = [(new, dest) for new, dest in ((fig_tmp, fig_dir), (page_tmp, page_dir)) if dest is not None]
    aside: list[tuple[Path, Path]] = []  # (hidden holder of the old folder, its place)
    placed: list[Path] = []
    try:
        for new, dest in pairs:
            if dest.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.{os.getpid()}.", dir=dest.parent))
                os.replace(dest, old / "old")
                aside.append((old, dest))
            if new is not None:
                os.replace(new, dest)
                placed.append(dest)
        os.replace(nb_tmp, target)
    except BaseException:
        for dest in placed:
            shutil.rmtree(dest, ignore_errors=True)
        for old, dest in aside:
            if (old / "old").exists():
                os.replace(old / "old", dest)
        for p in [new for new, _ in pairs] + [old for old, _ in aside]:
            if p is not None:
                shutil.rmtree(p, ignore_errors=True)
        raise  # the new notebook stays where it is: the caller keeps it (`<name>.failed.ipynb`)
    for old, _ in aside:
        shutil.rmtree(old, ignore_errors=True)


def _chmod_like_umask(path, mode: int) -> None:
    # mkstemp/mkdtemp create private files; give the result the permissions open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


_FIGURE_MIME = {"image/png": "png", "image/svg+xml": "svg"}


def _write_figures(notebook, out_dir: Path) -> Path | None:
    """Every PNG/SVG figure of `notebook` written into a new hidden folder beside `out_dir`;
    returns that folder (None when there is no figure). Removed again on any error."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{os.getpid()}.", dir=out_dir.parent))
    n_written = 0
    try:
        for n, cell in enumerate(nb.cells):
            k = 0
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                key = (output.get("metadata", {}).get("scrapbook") or {}).get("name")
                for mime, payload in data.items():
                    # glued outputs carry a prefix: application/papermill.record/image/png
                    ext = next((e for m, e in _FIGURE_MIME.items() if mime.endswith(m)), None)
                    if ext is None:
                        continue
                    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", key) if key else f"cell{n}-{k}"
                    k += 1
                    path = tmp / f"{stem}.{ext}"
                    if ext == "png":
                        path.write_bytes(base64.b64decode(payload if isinstance(payload, str) else "".join(payload)))
                    else:
                        path.write_text(payload if isinstance(payload, str) else "".join(payload))
                    n_written += 1
        if not n_written:
            tmp.rmdir()
            return None
        _chmod_like_umask(tmp, 0o777)
        return tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def extract_figures(notebook: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write every PNG/SVG figure of an executed notebook (shown or glued) to `out_dir`.

    A glued figure is named after its glue key (`<key>.png`), any other after its cell
    (`cell<N>-<k>.png`). The folder is written next to `out_dir` and renamed into place
    when complete, replacing an older one (removed, and none made, when there is no
    figure). Returns the written paths.
    """
    out_dir = Path(out_dir)
    tmp = _write_figures(notebook, out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    if tmp is None:
        return []
    os.replace(tmp, out_dir)
    return sorted(out_dir.iterdir())


class ChapterFailed(RuntimeError):
    """A chapter raised while executing; `.failed` is the partial notebook kept for inspection."""

    def __init__(self, chapter: str, failed: Path, message: str):
        super().__init__(message)
        self.chapter = chapter
        self.failed = failed


class ChapterInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, mapped by the CLI) while a chapter ran; `.failed` is the partial
    notebook kept for inspection (None if nothing had been written)."""

    def __init__(self, chapter: str, failed: Path | None, signal_name: str = ""):
        super().__init__(signal_name)
        self.chapter = chapter
        self.failed = failed


_SITE_IGNORE = (".git", ".venv", "_build", "artifacts", "runs", "__pycache__", ".pytest_cache", ".hypothesis")


def build_site(
    executed: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
) -> Path:
    """Build the website strictly (`-W -n --keep-going`) from already-executed notebooks.

    Copies the book to `dest/../site-src`, replaces each chapter `book/<name>.md` by
    `executed/<name>.ipynb` (which must exist), turns execution off and runs
    `jupyter-book build`; the HTML lands in `dest` (replaced), the build log in `log`.
    Raises RuntimeError with the end of the log when the build fails or warns.
    """

    root = find_root(root)
    executed, dest = Path(executed), Path(dest)
    chapters = list_chapters(root)
    missing = [c.name for c in chapters if not (executed / f"{c.name}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(f"executed notebooks missing in {executed}: {', '.join(missing)}")
    src = dest.parent / "site-src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(*_SITE_IGNORE))
    for c in chapters:
        rel = c.path.relative_to(root)
        (src / rel).unlink()
        shutil.copy(executed / f"{c.name}.ipynb", (src / rel).with_suffix(".ipynb"))
    cfg = src / "_config.yml"
    cfg.write_text(cfg.read_text().replace("execute_notebooks: force", 'execute_notebooks: "off"'))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src), "--all", "-W", "-n", "--keep-going"]
    # The copy lives outside git's view (artifacts/ is ignored): stamp the checkout's commit.
    env = dict(os.environ)
    if "SUPERPOSE_COMMIT" not in env:
        sys.path.insert(0, str(root / "_ext"))
        try:
            from superpose_book import build_commit

            env["SUPERPOSE_COMMIT"] = build_commit(root)
        finally:
            sys.path.remove(str(root / "_ext"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    text = proc.stdout + proc.stderr
    if log:
        Path(log).write_text(text)
    if proc.returncode != 0:
        raise RuntimeError(f"book build failed (exit {proc.returncode}):\n{text[-5000:]}")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src / "_build" / "html", dest)
    return dest
