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
from dataclasses import dataclass
from pathlib import Path

from .render import kernel_env, stamp_run

__all__ = [
    "Chapter",
    "find_root",
    "toc_files",
    "list_chapters",
    "get_chapter",
    "coerce_parameter",
    "execute_chapter",
    "extract_figures",
    "build_site",
    "ChapterFailed",
    "ChapterInterrupted",
    "book_root",
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
    """One chapter: its name (file stem), path, full parameters and smoke overrides."""

    name: str
    path: Path
    parameters: dict
    smoke: dict

    def resolve(self, overrides: dict | None = None, *, smoke: bool = False) -> dict:
        """Parameters for a run: the defaults, then smoke values, then `overrides`
        (validated: unknown names or wrong types raise ValueError)."""
        params = dict(self.parameters)
        if smoke:
            params.update(self.smoke)
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
    import jupytext

    return jupytext.read(path)


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


def list_chapters(root: str | os.PathLike | None = None) -> list[Chapter]:
    """Every executable chapter of the book (notebooks with a `parameters` cell), in toc order."""
    root = find_root() if root is None else book_root(root)
    out = []
    for f in toc_files(root):
        path = root / (f if f.endswith(".md") else f + ".md")
        if not path.is_file():
            continue
        nb = _read_notebook(path)
        if not any(c.cell_type == "code" for c in nb.cells):
            continue
        params = _parameters_cell(nb, f"chapter {path.stem!r} ({path.relative_to(root)})")
        smoke = dict(nb.metadata.get("superpose", {}).get("smoke", {}))
        unknown = set(smoke) - set(params)
        if unknown:
            raise ValueError(f"{path.name}: smoke parameters {sorted(unknown)} are not in its parameters cell")
        out.append(Chapter(path.stem, path, params, smoke))
    return out


def get_chapter(name: str, root=None) -> Chapter:
    """The chapter called `name`; a ValueError lists the valid names otherwise."""
    chapters = list_chapters(root)
    for c in chapters:
        if c.name == name:
            return c
    raise ValueError(f"unknown chapter {name!r}: choose one of {', '.join(c.name for c in chapters)}")


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
    return value


def execute_chapter(
    chapter: Chapter,
    out_dir: str | os.PathLike,
    parameters: dict | None = None,
    *,
    smoke: bool = False,
    progress: bool = False,
    env: dict | None = None,
    figures: bool = False,
) -> Path:
    """Execute `chapter` with papermill into `out_dir/<name>.ipynb` and return that path.

    Runs with the chapter's folder as working directory. The notebook is written to a
    hidden temporary file and moved into place only when it is complete, so
    `<name>.ipynb` is never half-written (a previous complete one is left as it was). On
    failure the partial notebook is kept as `<name>.failed.ipynb` for inspection and
    `ChapterFailed` is raised (from the papermill error); on KeyboardInterrupt (Ctrl-C, or
    SIGTERM as the CLI maps it) the same, as `ChapterInterrupted`. A later success removes
    `<name>.failed.ipynb`.

    figures=True also writes every figure to `out_dir/<name>-figures/` (`extract_figures`),
    and the notebook and its figures folder are replaced together or not at all: the
    figures are written into a hidden folder first (a full disk there leaves the old pair
    untouched), then both are renamed into place (renames need no space), rolling back if
    a rename fails.
    """
    import papermill as pm

    params = chapter.resolve(parameters, smoke=smoke)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{chapter.name}.ipynb"
    failed = out_dir / f"{chapter.name}.failed.ipynb"
    fd, tmp = tempfile.mkstemp(prefix=f".{chapter.name}.", suffix=".part.ipynb", dir=out_dir)
    os.close(fd)
    # The kernel must use the inline backend: under MPLBACKEND=Agg (set for tests and
    # headless runs) IPython registers no PNG formatter, and a glued figure is saved as the
    # text "<Figure size ...>" only.
    # jupyter_client writes the kernel's connection file with tempfile.mkstemp (tmp*.json)
    # and removes it only on a clean shutdown, so an interrupted run left one behind each
    # time. Every temporary file of the run (ours and the kernel's) goes into one private
    # folder, removed whatever happens.
    run_tmp = tempfile.mkdtemp(prefix="superpose-run-")
    kernels: list = []  # the kernel processes this run started
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", **kernel_env(Path(run_tmp) / "ipython"),
           **(env or {}), "TMPDIR": run_tmp}
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
    stamp_run(tmp, chapter.path.parent, parameters=params, seconds=time.perf_counter() - started,
              how="papermill" + (", smoke parameters" if smoke else ""))
    _chmod_like_umask(tmp, 0o666)
    fig_dir = out_dir / f"{chapter.name}-figures"
    try:
        fig_tmp = _write_figures(tmp, fig_dir) if figures else None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _install(tmp, target, fig_tmp, fig_dir if figures else None)
    failed.unlink(missing_ok=True)
    return target


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


def _install(nb_tmp, target: Path, fig_tmp: Path | None, fig_dir: Path | None) -> None:
    """Rename the complete notebook (and its complete figures folder, or no folder when
    fig_tmp is None and fig_dir is given) into place together: the old folder is moved
    aside first and restored if a rename fails. Renames within a folder need no space."""
    old, moved_new = None, False
    try:
        if fig_dir is not None:
            if fig_dir.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{fig_dir.name}.old.", dir=fig_dir.parent))
                os.replace(fig_dir, old / "figures")
            if fig_tmp is not None:
                os.replace(fig_tmp, fig_dir)
                moved_new = True
        os.replace(nb_tmp, target)
    except BaseException:
        if moved_new:
            shutil.rmtree(fig_dir, ignore_errors=True)
        if old is not None and (old / "figures").exists():
            os.replace(old / "figures", fig_dir)
        for p in (fig_tmp, old):
            if p is not None:
                shutil.rmtree(p, ignore_errors=True)
        Path(nb_tmp).unlink(missing_ok=True)
        raise
    if old is not None:
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
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
