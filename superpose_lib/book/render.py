"""What a run of a chapter leaves behind besides the notebook: a record of the run, and the
chapter as one readable HTML page.

- `git_commit(root)`: the commit a run or a build comes from (short hash, "+dirty" when the
  checkout has uncommitted tracked changes, "unknown" outside a git checkout).
- `stamp_run(notebook, root, ...)`: writes `metadata.superpose.run` into an executed
  notebook (commit, UTC date, run time, parameters, how it ran). The book's "Execution" page
  reads it; papermill's own `metadata.papermill` holds the same parameters and times.
- `run_record(nb)`: the record of one executed notebook, from that stamp or from papermill's
  metadata (what the Execution page shows).
- `render_html(notebook, out_dir, root)`: a one-page Sphinx build (myst-nb, execution off)
  of an executed notebook, so that glued numbers, figures and maths read as on the website.
  Used by `superpose run`.
- `book_pdf(src, pdf)`: the whole book as one PDF, printed by headless Chromium from a
  one-page (`singlehtml`) build of already-executed chapters.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..core.checks import checked

__all__ = [
    "git_commit",
    "stamp_run",
    "run_record",
    "render_html",
    "build_page",
    "PageBuildFailed",
    "book_pdf",
    "kernel_env",
]


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(root: str | os.PathLike) -> str:
    """Short hash of HEAD of the git checkout holding `root`, with "+dirty" for uncommitted
    changes to tracked files; "unknown" when `root` is not in a git checkout (or git is
    missing). The environment variable `SUPERPOSE_COMMIT` overrides it (builds from an
    export, or from a copy outside the checkout)."""
    env = os.environ.get("SUPERPOSE_COMMIT")
    if env:
        return env
    cwd = Path(root)
    if not cwd.is_dir():
        return "unknown"
    head = _git(["rev-parse", "--short", "HEAD"], cwd)
    if not head:
        return "unknown"
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return head + ("+dirty" if status else "")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@checked
def stamp_run(
    notebook: str | os.PathLike,
    root: str | os.PathLike,
    *,
    parameters: dict,
    seconds: float,
    how: str = "superpose run",
) -> dict:
    """Write the record of this run into the executed `notebook` (in place) and return it:
    `metadata.superpose.run = {commit, date, seconds, parameters, how}`."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    record = {
        "commit": git_commit(root),
        "date": _now(),
        "seconds": round(float(seconds), 1),
        "parameters": {k: v for k, v in parameters.items()},
        "how": how,
    }
    nb.metadata.setdefault("superpose", {})["run"] = record
    # A reader sees the values this run used: papermill's injected cell stays open (labelled),
    # the cell of defaults above it is folded.
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    if injected:
        lines = injected[0].source.splitlines()
        if lines and lines[0].strip() == "# Parameters":
            lines[0] = "# Parameters of this run (the folded cell above holds the defaults)"
        injected[0].source = "\n".join(lines)
        for c in nb.cells:
            tags = c.metadata.setdefault("tags", [])
            if "parameters" in tags and "hide-input" not in tags:
                tags.append("hide-input")
    tmp = Path(notebook).with_name("." + Path(notebook).name + ".stamp")
    nbformat.write(nb, tmp)
    os.replace(tmp, notebook)
    return record


def _parameters_cell(nb) -> dict:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            out = {}
            for node in ast.parse(src).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        out[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[node.targets[0].id] = ast.unparse(node.value)
            return out
    return {}


def _papermill_date(text: str | None) -> str | None:
    if not text:
        return None
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_record(nb) -> dict | None:
    """The record of the run that produced an executed notebook (a dict, or a path to one):
    keys commit, date, seconds, parameters, how; None for a notebook with no record (one
    executed by the book build itself, whose record the build makes).

    The `superpose` stamp wins; otherwise papermill's metadata gives the date, the run time
    and the injected parameters on top of the parameters cell (commit "not recorded")."""
    if isinstance(nb, (str, os.PathLike)):
        nb = json.loads(Path(nb).read_text())
    meta = nb.get("metadata", {})
    stamp = meta.get("superpose", {}).get("run")
    if stamp:
        return dict(stamp)
    pm = meta.get("papermill")
    if pm:
        params = {**_parameters_cell(nb), **(pm.get("parameters") or {})}
        return {
            "commit": "not recorded",
            "date": _papermill_date(pm.get("end_time")) or "not recorded",
            "seconds": pm.get("duration"),
            "parameters": params,
            "how": "papermill",
        }
    return None


# ------------------------------------------------------------------ one-page HTML

_CONF = """# A one-page Sphinx build of one executed chapter (written by superpose_lib.render).
project = {title!r}
extensions = ["myst_nb", "sphinxcontrib.bibtex"]
root_doc = {doc!r}
exclude_patterns = ["_build"]
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
bibtex_bibfiles = ["references.bib"]
bibtex_reference_style = "author_year"
import sys as _sys
_sys.path.insert(0, {ext!r})
try:  # the book's author-year labels for the reference list
    from superpose_book import _register_bibtex_style
    _register_bibtex_style()
    bibtex_default_style = "superpose"
except Exception:
    pass
numfig = True
math_numfig = False  # equations keep per-page numbers (notation.html is outside any toctree)
html_theme = "sphinx_book_theme"
html_title = {title!r}
html_static_path = ["_static"]
html_css_files = ["superpose.css"]
mathjax_path = {mathjax!r}
html_theme_options = {{"use_download_button": False, "use_fullscreen_button": False,
                      "extra_footer": {footer!r}}}
suppress_warnings = ["mystnb.unknown_mime_type", "myst.xref_missing", "ref.doc", "ref.numref", "ref.eq",
                     "toc.not_included", "toc.excluded"]
"""


class PageBuildFailed(RuntimeError):
    """The one-page Sphinx build failed; the message is one line (the build's last error
    line), `.log` holds the build's whole output."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "rror" in ln or "xception" in ln]
    return (errors or lines or ["no output"])[-1][:300]


def render_html(
    notebook: str | os.PathLike,
    out_dir: str | os.PathLike,
    root: str | os.PathLike,
    *,
    title: str | None = None,
    log: str | os.PathLike | None = None,
    name: str | None = None,
) -> Path:
    """Build `out_dir/<name>.html` (with its `_static/` and `_images/`) from the executed
    `notebook` by Sphinx with myst-nb, execution off: glued numbers and figures are rendered
    by myst-nb itself, maths by the book's vendored MathJax, citations from the book's
    bibliography. The book's notation page is built beside it (`notation.html`), so that
    its numbered equations resolve; references to other pages read as plain text. The
    folder is built next to `out_dir` (`build_page`) and moved into place when complete.
    name: the page's name (default: the notebook's stem). Returns the page's path; raises
    PageBuildFailed (a RuntimeError, one line) when Sphinx fails."""
    out_dir = Path(out_dir)
    name = name or Path(notebook).stem
    tmp = build_page(notebook, out_dir, root, title=title, log=log, name=name)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir / f"{name}.html"


def build_page(
    notebook: str | os.PathLike,
    out_dir: str | os.PathLike,
    root: str | os.PathLike,
    *,
    title: str | None = None,
    log: str | os.PathLike | None = None,
    name: str | None = None,
) -> Path:
    """`render_html`'s build, into a new hidden folder beside `out_dir` (its name holds this
    process's id, so an interrupted build's leftovers can be told from a running one's);
    returns that folder, complete. Nothing is left behind on failure."""
    notebook, out_dir, root = Path(notebook), Path(out_dir), Path(root)
    name = name or notebook.stem
    record = run_record(notebook) or {}
    footer = (
        f"Executed notebook {name}.ipynb, commit {record.get('commit', 'unknown')}, "
        f"run {record.get('date', 'date not recorded')}."
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}-src.{os.getpid()}.", dir=out_dir.parent) as src:
        src = Path(src)
        # The page cites the book's bibliography: list the works it cites at its end.
        import nbformat

        nb = nbformat.read(notebook, as_version=4)
        nb.cells.append(nbformat.v4.new_markdown_cell("## References\n\n```{bibliography}\n```\n"))
        nbformat.write(nb, src / f"{name}.ipynb")
        # The notation page, which chapters cite with {eq} and {doc}: shipped beside the page.
        notation = root / "book" / "notation.md"
        if notation.is_file() and name != "notation":
            shutil.copy(notation, src / "notation.md")
        bib = root / "book" / "references.bib"
        (src / "references.bib").write_text(bib.read_text() if bib.is_file() else "")
        static = src / "_static"
        static.mkdir()
        css = root / "_static" / "superpose.css"
        (static / "superpose.css").write_text(css.read_text() if css.is_file() else "")
        mathjax = "mathjax/tex-svg-full.js"
        mj = root / "_static" / "mathjax"
        if (mj / "tex-svg-full.js").is_file():
            shutil.copytree(mj, static / "mathjax")
        else:  # no vendored MathJax in this checkout: Sphinx's default (a CDN)
            mathjax = ""
        conf = _CONF.format(title=title or name, doc=name, mathjax=mathjax, footer=footer, ext=str(root / "_ext"))
        if not mathjax:
            conf = conf.replace("mathjax_path = ''\n", "")
        (src / "conf.py").write_text(conf)
        build = src / "_build"
        cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src), str(build)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        text = proc.stdout + proc.stderr
        if log:
            Path(log).write_text(text)
        if proc.returncode != 0 or not (build / f"{name}.html").is_file():
            raise PageBuildFailed(
                f"the one-page build of {out_dir / (name + '.html')} failed (Sphinx exit "
                f"{proc.returncode}): {_last_error_line(text)}",
                text,
            )
        for junk in (
            ".doctrees",
            ".buildinfo",
            "objects.inv",
            "_sources",
            "genindex.html",
            "search.html",
            "searchindex.js",
        ):
            p = build / junk
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        tmp_out = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{os.getpid()}.", dir=out_dir.parent))
        try:  # a rename within the folder: no copy, no space needed
            os.replace(build, tmp_out)
        except BaseException:
            shutil.rmtree(tmp_out, ignore_errors=True)
            raise
    return tmp_out


# ------------------------------------------------------------------ the whole book as a PDF


def book_pdf(
    src: str | os.PathLike, pdf: str | os.PathLike, *, chromium: str | None = None, log: str | os.PathLike | None = None
) -> Path:
    """Print the whole book to `pdf`: a one-page (`singlehtml`) Jupyter Book build of `src`,
    printed by headless Chromium through playwright once MathJax has typeset every formula.

    `src` is a book whose chapters are already executed and whose execution is off, such as
    the `site-src/` folder `superpose_lib.chapters.build_site` leaves next to the site it
    builds (so nothing is executed twice). `chromium`: the browser binary (default:
    `SUPERPOSE_CHROMIUM` or Debian's /usr/bin/chromium); nothing is downloaded. Raises
    RuntimeError with the end of the log when the build fails."""
    src, pdf = Path(src), Path(pdf)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src), "--builder", "singlehtml"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    if log:
        Path(log).write_text(text)
    out = src / "_build" / "singlehtml"
    # the root page (index.html is a redirect to it)
    pages = [p for p in sorted(out.rglob("*.html")) if p.name != "index.html" and "_static" not in p.parts]
    if proc.returncode != 0 or not pages:
        raise RuntimeError(f"singlehtml build of {src} failed (exit {proc.returncode}):\n{text[-3000:]}")
    # The root page sits in book/ but links its assets as if it sat at the top: link them there.
    for name in ("_static", "_images"):
        there = pages[0].parent / name
        if (out / name).is_dir() and not there.exists():
            there.symlink_to(os.path.relpath(out / name, there.parent))
    from playwright.sync_api import sync_playwright

    exe = chromium or os.environ.get("SUPERPOSE_CHROMIUM", "/usr/bin/chromium")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp = pdf.with_name("." + pdf.name + ".part")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=args, headless=True)
        try:
            page = browser.new_page()
            page.goto(pages[0].resolve().as_uri(), wait_until="load")
            n_math = page.locator("span.math, div.math").count()
            if n_math:
                page.wait_for_function(
                    "n => document.querySelectorAll('mjx-container').length >= n", arg=n_math, timeout=300_000
                )
            page.emulate_media(media="print")
            page.pdf(
                path=str(tmp),
                format="A4",
                print_background=True,
                margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
            )
        finally:
            browser.close()
    os.replace(tmp, pdf)
    return pdf


# ------------------------------------------------------------------ kernels


def kernel_env(folder: str | os.PathLike | None = None) -> dict:
    """Environment for the kernels that execute chapters: an IPython profile
    (`IPYTHONDIR`: `folder`, by default a private folder under the temporary directory) whose
    inline backend draws figures as 2× PNGs ("retina": shown at their nominal size, sharp
    when enlarged), so that every chapter's figures are, whether or not it calls
    `plots.book_style()`. `execute_chapter` passes its run's own temporary folder, removed
    after the run."""
    if folder is None:
        folder = Path(tempfile.gettempdir()) / f"superpose-ipython-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    folder = Path(folder)
    conf = folder / "profile_default" / "ipython_kernel_config.py"
    text = (
        "# Written by superpose_lib.render.kernel_env: the book's figures as 2x PNGs.\n"
        "c.InlineBackend.figure_formats = {'retina'}\n"
    )
    if not conf.is_file() or conf.read_text() != text:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
    return {"IPYTHONDIR": str(folder)}
