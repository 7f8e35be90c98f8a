"""Sphinx extension for the superpose book (registered in _config.yml `sphinx: local_extensions`).

1. Stamp: every page's footer names the book's version (from pyproject.toml) and the git
   commit it was built from (`git rev-parse --short HEAD`, "+dirty" when the checkout has
   uncommitted changes, "unknown" outside a git checkout), so a citation names exactly what
   was read. `SUPERPOSE_COMMIT` overrides the commit (e.g. for builds from an export).
2. Offline MathJax: Jupyter Book adds every `*.js` under `_static/` to every page; the
   vendored MathJax (`_static/mathjax/`, loaded through `mathjax_path` with the config
   Sphinx writes) must not be loaded a second time that way.
3. `.. superpose-api::` (use inside `{eval-rst}`): the public API of `superpose_lib`, found
   at build time so that new modules appear without editing the page: a table of the
   package's top-level `__all__`, then every module with its documented members.
4. Docstrings are written for people reading the source (|x|, e_t, [T, d] ...), not always
   as valid reStructuredText; one that would not parse cleanly is shown verbatim (a
   literal block) instead of breaking the strict (-W) build.
5. The source repository: ONE setting holds its URL, `repository: url:` in `_config.yml`
   (Jupyter Book passes it on as the theme option `repository_url`); the environment
   variable `SUPERPOSE_REPOSITORY_URL` fills or overrides it (the Pages workflow sets it to
   the repository it runs in). With a URL the site shows the theme's repository button,
   the cite page gives the clone command (`.. superpose-source::`), the BibTeX entry gets
   `url`, and the published `CITATION.cff` gets `repository-code`. Without one (a local
   build) those places say that this build records no repository URL.
6. Figures: every image is a link to its full-size file (click to enlarge), as Sphinx does
   for images with an explicit size.
7. Executed notebooks: each chapter page's download menu offers the executed notebook
   (`_sources/<page>.executed.ipynb`: every output kept — myst-nb's own copy in
   `jupyter_execute/` lacks the glue outputs — and the run record in its metadata; also
   kept in `_build/superpose_executed/`, from which `scripts/book_pdf.sh` prints the PDF), and
   `.. superpose-execution::` lists every chapter with the run that produced its page: run
   time, parameters, commit and date (from `metadata.superpose.run` of a notebook executed
   by `superpose run`/the tests, or from myst-nb's execution record when the build itself
   executed it).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import io
import os
import pkgutil
import re
import shutil
import tomllib
import urllib.parse
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

PACKAGE = "superpose_lib"


# ---------------------------------------------------------------- stamp


def build_commit(srcdir: str | os.PathLike) -> str:
    """Short hash of the checkout's HEAD, with "+dirty" for uncommitted tracked changes;
    "unknown" when `srcdir` is not inside a git checkout (or git is missing);
    `SUPERPOSE_COMMIT` overrides it (`superpose_lib.book.render.git_commit`)."""
    from superpose_lib.book.render import git_commit

    return git_commit(srcdir)


def repository_url(config) -> str:
    """The repository URL of this build: `SUPERPOSE_REPOSITORY_URL`, else the theme option
    `repository_url` (`repository: url:` in _config.yml); "" when neither is set."""
    env = os.environ.get("SUPERPOSE_REPOSITORY_URL", "").strip()
    opts = config.html_theme_options or {}
    return (env or str(opts.get("repository_url") or "")).strip().rstrip("/")


def book_version(srcdir: str | os.PathLike) -> str:
    """`project.version` of the nearest pyproject.toml at or above `srcdir`."""
    for p in [Path(srcdir).resolve(), *Path(srcdir).resolve().parents]:
        f = p / "pyproject.toml"
        if f.is_file():
            try:
                return tomllib.loads(f.read_text())["project"]["version"]
            except (KeyError, tomllib.TOMLDecodeError):
                break
    return "unknown"


def _build_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds
    when = _dt.datetime.fromtimestamp(int(epoch), _dt.UTC) if epoch else _dt.datetime.now(_dt.UTC)
    return when.strftime("%Y-%m-%d")


def _on_config_inited(app, config):
    # Kernels this build starts (myst-nb) draw figures as 2x PNGs, as `superpose run` does.
    from superpose_lib.book.render import kernel_env

    for key, value in kernel_env().items():
        os.environ.setdefault(key, value)
    version = book_version(app.srcdir)
    commit = build_commit(app.srcdir)
    date = _build_date()
    config.version = config.release = version
    repo = repository_url(config)
    config.html_context = {
        **(config.html_context or {}),
        "superpose_version": version,
        "superpose_commit": commit,
        "superpose_build_date": date,
        "superpose_repository_url": repo,
    }
    stamp = (
        f'<p class="superpose-stamp" data-version="{version}" data-commit="{commit}">'
        f"superpose version {version}, built from commit <code>{commit}</code> on {date}."
        f' <a href="{{cite}}">How to cite</a>'
        # (a PDF of the whole book, when the publishing workflow prints one: scripts/book_pdf.sh)
        + (' · <a href="{pdf}">PDF of the whole book</a>' if os.environ.get("SUPERPOSE_BOOK_PDF") else "")
        + "</p>"
    )
    config.html_theme_options = dict(config.html_theme_options or {})
    config.html_theme_options["extra_footer"] = stamp
    # (5) one repository URL: the theme's button shows only when there is one.
    config.html_theme_options["repository_url"] = repo
    config.html_theme_options["use_repository_button"] = bool(repo)
    if repo:
        for provider in ("github", "gitlab", "bitbucket"):
            if provider in urllib.parse.urlsplit(repo).netloc:
                config.html_theme_options.setdefault("repository_provider", provider)
    # (2) the vendored MathJax is loaded once, by sphinx.ext.mathjax via mathjax_path.
    config.html_js_files = [
        js
        for js in (config.html_js_files or [])
        if not (isinstance(js, str) and js.startswith("mathjax/"))
        and not (isinstance(js, tuple) and str(js[0]).startswith("mathjax/"))
    ]


def _dedupe_assets(app, pagename, templatename, context, doctree):
    # Jupyter Book 1 registers sphinx-thebe's and sphinx-togglebutton's inline scripts twice;
    # the second `const THEBE_JS_URL` is a JavaScript error on every page. Keep the first.
    for key in ("script_files", "css_files"):
        files, seen, kept = context.get(key) or [], set(), []
        for f in files:
            # (an inline script's filename is None from one caller and "" from another)
            ident = (str(getattr(f, "filename", f) or ""), repr(sorted(getattr(f, "attributes", {}).items())))
            if ident not in seen:
                seen.add(ident)
                kept.append(f)
        if files:
            context[key] = kept


def _on_page_context(app, pagename, templatename, context, doctree):
    # The footer's "How to cite" link, relative to this page (absent: no link).
    opts = context.get("theme_extra_footer")
    if not opts:
        return
    pdf = os.environ.get("SUPERPOSE_BOOK_PDF")
    if pdf:
        opts = opts.replace("{pdf}", context["pathto"](pdf, 1))
    cite = "book/cite"
    if cite in app.env.all_docs:
        href = context["pathto"](cite)
        context["theme_extra_footer"] = opts.replace("{cite}", href)
    else:
        context["theme_extra_footer"] = re.sub(r' <a href="\{cite\}">How to cite</a>', "", opts)


# ---------------------------------------------------------------- docstrings


def _rst_is_clean(text: str) -> bool:
    """Whether `text` parses as reStructuredText without warnings or errors."""
    from docutils.core import publish_doctree

    stream = io.StringIO()
    try:
        doctree = publish_doctree(
            text,
            settings_overrides={
                "report_level": 2,
                "halt_level": 5,
                "warning_stream": stream,
                "file_insertion_enabled": False,
                "raw_enabled": False,
            },
        )
    except Exception:  # a Sphinx-only directive needing the build env: trust the author
        return True
    return not stream.getvalue() and not any(True for _ in doctree.findall(nodes.problematic))


def _on_process_docstring(app, what, name, obj, options, lines):
    if not name.startswith(PACKAGE) or not lines:
        return
    text = "\n".join(lines)
    if _rst_is_clean(text):
        return
    lines[:] = ["::", ""] + ["    " + line if line.strip() else "" for line in text.splitlines()] + [""]


# ---------------------------------------------------------------- API page

_RST_SPECIAL = re.compile(r"([\\`*_|\[\]<>:])")


def _escape(text: str) -> str:
    return _RST_SPECIAL.sub(r"\\\1", text)


def _summary(obj) -> str:
    """First paragraph of the docstring as safe reST: `code` spans kept as literals, the
    rest escaped. Constants (whose __doc__ is their type's) get none."""
    if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
        return ""
    doc = inspect.getdoc(obj) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    parts = re.split(r"`([^`]+)`", first)
    return "".join(f"``{p}``" if i % 2 else _escape(p) for i, p in enumerate(parts))


def public_modules(package: str = PACKAGE) -> list[str]:
    """Every public module and subpackage of `package`, at any depth (no part of the dotted
    name with a leading underscore), in the order of the folder tree."""
    pkg = importlib.import_module(package)
    return sorted(
        m.name
        for m in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}.")
        if not any(part.startswith("_") for part in m.name.split("."))
    )


def _module_members(modname: str):
    """(name, kind) of the members a module documents: its `__all__` if it has one, else its
    public names, plus every public class it defines (classes appear in signatures, whose
    cross-references must resolve); classes and functions only where defined there."""
    mod = importlib.import_module(modname)
    names = list(getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")])
    names += [
        n
        for n, o in vars(mod).items()
        if not n.startswith("_") and n not in names and inspect.isclass(o) and getattr(o, "__module__", None) == modname
    ]
    for name in names:
        obj = getattr(mod, name, None)
        if obj is None or inspect.ismodule(obj):
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if getattr(obj, "__module__", None) != modname:
                continue
            yield name, obj, ("class" if inspect.isclass(obj) else "function")
        elif hasattr(mod, "__all__") and name in mod.__all__:
            yield name, obj, "data"


def _identity(name: str, obj):
    """What makes two exported names the same object: identity, except for plain values
    (small ints and strings are shared by unrelated names), which go by name."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return ("name", name)
    return ("id", id(obj))


class SuperposeAPI(Directive):
    """Generate the API reference of superpose_lib (see module docstring, item 3)."""

    has_content = False

    def run(self):
        from sphinx.util.parsing import nested_parse_to_nodes

        pkg = importlib.import_module(PACKAGE)
        lines: list[str] = []
        where: dict = {}  # _identity(name, obj) -> documented target
        sections: list[str] = []
        for modname in public_modules():
            title = [f"``{modname}``", "-" * (len(modname) + 4), ""]
            try:
                importlib.import_module(modname)
            except ImportError as e:  # an optional dependency not installed for this build
                sections += title + [f"Not documented in this build: importing it failed ({_escape(str(e))}).", ""]
                continue
            body = title + [f".. automodule:: {modname}", ""]
            for name, obj, kind in _module_members(modname):
                key = _identity(name, obj)
                if key in where:
                    continue
                target = f"{modname}.{name}"
                where[key] = target
                if kind == "class":
                    body += [f".. autoclass:: {target}", "   :members:", ""]
                elif kind == "function":
                    body += [f".. autofunction:: {target}", ""]
                else:
                    body += [f".. autodata:: {target}", "   :no-value:", ""]
            sections += body
        lines += [
            f"The package ``{PACKAGE}`` (version {pkg.__version__}) exports these names at its top "
            f"level (``import {PACKAGE} as sp``; ``sp.NAME``). Each links to its documentation "
            "in the module that defines it, below.",
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 30 70",
            "",
            "   * - name",
            "     - summary",
        ]
        for name in getattr(pkg, "__all__", []):
            obj = getattr(pkg, name, None)
            target = where.get(_identity(name, obj))
            ref = f":py:obj:`{name} <{target}>`" if target else f"``{name}``"
            lines += [f"   * - {ref}", f"     - {_summary(obj) if obj is not None else ''}"]
        lines += [""] + sections
        return nested_parse_to_nodes(self.state, StringList(lines, source="<superpose-api>"))


# ---------------------------------------------------------------- citation


def citation_metadata(root: str | os.PathLike) -> dict:
    """The fields of the BibTeX entry, from CITATION.cff at the book's root (the single
    source: GitHub's "Cite this repository" reads the same file)."""
    import yaml

    for p in [Path(root).resolve(), *Path(root).resolve().parents]:
        f = p / "CITATION.cff"
        if f.is_file():
            return yaml.safe_load(f.read_text())
    raise FileNotFoundError("CITATION.cff not found above " + str(root))


def _bibtex_name(author: dict) -> str:
    if "family-names" in author:
        return f"{author['family-names']}, {author.get('given-names', '')}".strip(", ")
    return "{" + author["name"] + "}"  # an organisation: braces keep it one name


def bibtex_entry(cff: dict, commit: str, repository: str = "") -> str:
    """A ready @software entry naming the version and the commit this page was built from;
    `url` is the repository URL of this build (or CITATION.cff's `url`/`repository-code`)."""
    date = str(cff.get("date-released", ""))
    fields = {
        "title": "{" + cff["title"] + "}",
        "author": " and ".join(_bibtex_name(a) for a in cff["authors"]),
        "year": date[:4],
        "version": f"{cff['version']}",
        "note": f"Version {cff['version']}, commit {commit}",
    }
    url = repository or cff.get("repository-code") or cff.get("url")
    if url:
        fields["url"] = url
    key = "superpose" + date[:4]
    body = ",\n".join(f"  {k:<7} = {{{v}}}" for k, v in fields.items() if v)
    return f"@software{{{key},\n{body}\n}}"


class SuperposeBibtex(Directive):
    """The book's BibTeX entry, stamped with this build's version and commit."""

    has_content = False

    def run(self):
        env = self.state.document.settings.env
        cff = citation_metadata(env.srcdir)
        commit = env.config.html_context.get("superpose_commit", "unknown")
        text = bibtex_entry(cff, commit, env.config.html_context.get("superpose_repository_url", ""))
        node = nodes.literal_block(text, text, language="bibtex")
        node["classes"].append("superpose-bibtex")
        return [node]


# ---------------------------------------------------------------- source repository (5)


class SuperposeSource(Directive):
    """How to get the source: the clone command for this build's repository URL, or a note
    that this build records none (never an invented URL)."""

    has_content = False

    def run(self):
        env = self.state.document.settings.env
        repo = env.config.html_context.get("superpose_repository_url", "")
        commit = env.config.html_context.get("superpose_commit", "unknown").removesuffix("+dirty")
        out: list[nodes.Node] = []
        if repo:
            para = nodes.paragraph()
            para += nodes.Text("The source of this book, its library and its tests is at ")
            para += nodes.reference(repo, repo, refuri=repo)
            para += nodes.Text(". To get it at the commit these pages were built from:")
            out.append(para)
            name = repo.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "superpose"
            checkout = f"\ngit -C {name} checkout {commit}" if commit not in ("unknown", "") else ""
            text = f"git clone {repo}.git{checkout}" if not repo.endswith(".git") else f"git clone {repo}{checkout}"
        else:
            para = nodes.paragraph()
            para += nodes.Text("This copy of the book was built without a repository URL (a local build: the setting ")
            para += nodes.literal("repository: url:", "repository: url:")
            para += nodes.Text(" in ")
            para += nodes.literal("_config.yml", "_config.yml")
            para += nodes.Text(" is empty and ")
            para += nodes.literal("SUPERPOSE_REPOSITORY_URL", "SUPERPOSE_REPOSITORY_URL")
            para += nodes.Text(
                " is not set), so it cannot link to its source; the published site "
                "names its repository here. In a checkout of the source, the commit "
                "these pages were built from is:"
            )
            out.append(para)
            text = f"git checkout {commit}" if commit not in ("unknown", "") else "git log -1"
        block = nodes.literal_block(text, text, language="bash")
        block["classes"].append("superpose-clone")
        out.append(block)
        return out


def _write_citation_cff(app, exception):
    """(5) The published CITATION.cff: the repository's, with `repository-code` when this
    build knows its repository URL (CITATION.cff in the repository cannot hold an empty URL)."""
    if exception or app.builder.format != "html":
        return
    src = Path(app.srcdir) / "CITATION.cff"
    if not src.is_file():
        return
    text = src.read_text()
    repo = app.config.html_context.get("superpose_repository_url", "")
    if repo and "repository-code:" not in text:
        text = text.rstrip("\n") + f'\nrepository-code: "{repo}"\n'
    (Path(app.outdir) / "CITATION.cff").write_text(text)


# ---------------------------------------------------------------- figures (6)


def _link_images(app, doctree, docname):
    """Wrap every image that is not already a link in a link to its full-size file, at the
    path Sphinx copies it to (_images/<unique name>)."""
    if app.builder.format != "html":
        return
    from sphinx.util.osutil import relative_uri

    imgdir = relative_uri(app.builder.get_target_uri(docname), "_images")
    for node in list(doctree.findall(nodes.image)):
        if isinstance(node.parent, nodes.reference) or "no-scaled-link" in node["classes"]:
            continue
        uri = node.get("candidates", {}).get("*", node["uri"])
        if uri not in app.env.images or "://" in uri:
            continue
        ref = nodes.reference(
            "", "", refuri=f"{imgdir}/{app.env.images[uri][1]}", classes=["image-reference", "superpose-enlarge"]
        )
        ref["reftitle"] = "Open the full-size image"
        node.replace_self(ref)
        ref.append(node)


# ---------------------------------------------------------------- executed notebooks (7)

_CAPTURED: list = []  # the last notebook myst-nb executed, before it moved glue outputs out


def _capture_glue_stripping():
    """myst-nb moves every glue output out of the notebook it writes to jupyter_execute/
    (into <page>.glue.json); the executed notebook a reader downloads must keep them. Keep a
    copy of each notebook just before that step (reading is serial: one at a time)."""
    import copy

    try:
        from myst_nb.core.execute import base
    except ImportError:
        return
    original = base.extract_glue_data
    if getattr(original, "_superpose", False):
        return

    def extract_glue_data(notebook, *args, **kwargs):
        _CAPTURED[:] = [copy.deepcopy(notebook)]
        return original(notebook, *args, **kwargs)

    extract_glue_data._superpose = True
    base.extract_glue_data = extract_glue_data


def _full_dir(app) -> Path:
    # executed notebooks with every output (glue included) and their run record
    return Path(app.outdir).parent / "superpose_executed"


def _executed_dir(app) -> Path:
    # myst-nb writes every notebook it read (executed by this build or before) here.
    return Path(app.outdir).parent / "jupyter_execute"


def _executed_notebook(app, docname: str) -> Path | None:
    p = _executed_dir(app).joinpath(*docname.split("/")).with_suffix(".ipynb")
    p = p.with_name(docname.rsplit("/", 1)[-1] + ".ipynb")
    return p if p.is_file() else None


def _parameters_of(nb: dict) -> dict:
    from superpose_lib.book.render import _parameters_cell

    return _parameters_cell(nb)


def _on_doctree_read(app, doctree):
    """Record the run that produced this page, for the Execution page."""
    import json

    env = app.env
    docname = env.docname
    store = env.__dict__.setdefault("superpose_runs", {})
    store.pop(docname, None)
    path = _executed_notebook(app, docname)
    if path is None:
        return
    nb = json.loads(path.read_text())
    if not any(c.get("cell_type") == "code" for c in nb.get("cells", [])):
        return
    from superpose_lib.book.render import run_record

    record = run_record(nb)
    try:
        from myst_nb.sphinx_ import NbMetadataCollector

        exec_data = NbMetadataCollector.get_exec_data(env, docname)
    except Exception:  # myst-nb internals moved: fall back to the notebook's own record
        exec_data = None
    if exec_data and exec_data.get("runtime") is not None:
        # executed by this build (or served from its cache): its parameters are the cell's
        method = exec_data.get("method", "")
        when = _dt.datetime.fromtimestamp(exec_data["mtime"], _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        record = {
            "commit": app.config.html_context.get("superpose_commit", "unknown")
            if method != "cache"
            else "not recorded (cached run)",
            "date": when,
            "seconds": exec_data["runtime"],
            "parameters": _parameters_of(nb),
            "how": f"book build ({method})",
        }
    if record and record.get("parameters"):  # in the order of the chapter's parameters cell
        params, order = record["parameters"], list(_parameters_of(nb))
        record = {
            **record,
            "parameters": {
                **{k: params[k] for k in order if k in params},
                **{k: v for k, v in params.items() if k not in order},
            },
        }
    # The downloadable executed notebook: every output kept, its run record in its metadata.
    full = _CAPTURED[0] if _CAPTURED else None
    _CAPTURED.clear()
    src = Path(env.doc2path(docname))
    if full is None or len(full.cells) != len(nb.get("cells", [])):
        full = None
        if src.suffix == ".ipynb":  # built from an already-executed notebook: that one
            full = json.loads(src.read_text())
    if full is not None:
        import nbformat

        full = nbformat.from_dict(full) if isinstance(full, dict) else full
        if record and not full.metadata.get("superpose", {}).get("run"):
            full.metadata.setdefault("superpose", {})["run"] = record
        dest = _full_dir(app).joinpath(*docname.split("/")).with_name(docname.rsplit("/", 1)[-1] + ".ipynb")
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(full, dest)
    title = env.titles.get(docname)
    store[docname] = {"record": record, "title": title.astext() if title else docname, "notebook": path.name}


def _purge(app, env, docname):
    env.__dict__.get("superpose_runs", {}).pop(docname, None)


def _merge(app, env, docnames, other):
    env.__dict__.setdefault("superpose_runs", {}).update(
        {d: v for d, v in other.__dict__.get("superpose_runs", {}).items() if d in docnames}
    )


def _notebook_href(docname: str) -> str:
    return f"{docname}.executed.ipynb"  # under _sources/


def _offer_notebook(app, pagename, templatename, context, doctree):
    """(runs before the theme's download buttons) the executed notebook as the page's .ipynb."""
    if pagename in app.env.__dict__.get("superpose_runs", {}):
        context["ipynb_source"] = _notebook_href(pagename)


def _label_notebook(app, pagename, templatename, context, doctree):
    for group in context.get("header_buttons", []):
        for b in group.get("buttons", []) if isinstance(group, dict) else []:
            if b.get("label") == "download-notebook-button":
                b["text"] = ".ipynb (executed)"
                b["tooltip"] = "Download the executed notebook"


def _copy_notebooks(app, exception):
    if exception or app.builder.format != "html":
        return
    for docname in app.env.__dict__.get("superpose_runs", {}):
        full = _full_dir(app).joinpath(*docname.split("/")).with_name(docname.rsplit("/", 1)[-1] + ".ipynb")
        src = full if full.is_file() else _executed_notebook(app, docname)
        if src is None:
            continue
        dest = Path(app.outdir) / "_sources" / _notebook_href(docname)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


class execution_table(nodes.General, nodes.Element):
    """Placeholder, filled once every page has been read."""


class SuperposeExecution(Directive):
    """Every chapter with the run that produced its page (see module docstring, item 7)."""

    has_content = False

    def run(self):
        return [execution_table()]


def _fmt_seconds(x) -> str:
    if x is None:
        return "not recorded"
    x = float(x)
    return f"{x:.0f} s" if x < 600 else f"{x / 60:.1f} min"


def _fmt_value(v) -> str:
    return repr(v) if not isinstance(v, str) else repr(v)


def _table(header: list[str], rows: list[list[nodes.Node]], widths: list[int]) -> nodes.table:
    table = nodes.table(classes=["superpose-execution"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)
    thead = nodes.thead()
    group += thead
    row = nodes.row()
    for h in header:
        row += nodes.entry("", nodes.paragraph("", h))
    thead += row
    tbody = nodes.tbody()
    group += tbody
    for cells in rows:
        row = nodes.row()
        for c in cells:
            entry = nodes.entry()
            entry += (
                c if isinstance(c, nodes.Element) and not isinstance(c, nodes.Text) else nodes.paragraph("", str(c))
            )
            row += entry
        tbody += row
    return table


def _fill_execution(app, doctree, docname):
    runs = app.env.__dict__.get("superpose_runs", {})
    order = [d for d in app.env.found_docs if d in runs]
    try:  # reading order of the table of contents
        seq = []

        def walk(d):
            for c in app.env.toctree_includes.get(d, []):
                if c not in seq:
                    seq.append(c)
                    walk(c)

        walk(app.config.root_doc)
        order = [d for d in seq if d in runs] + sorted(d for d in runs if d not in seq)
    except Exception:
        order = sorted(runs)
    for node in list(doctree.findall(execution_table)):
        if not runs:
            node.replace_self(nodes.paragraph("", "No executed chapter in this build."))
            continue
        rows, details = [], []
        for d in order:
            info = runs[d]
            rec = info["record"] or {}
            ref = nodes.reference("", info["title"], internal=True, refuri=app.builder.get_relative_uri(docname, d))
            dl = nodes.reference(
                "", info["notebook"], internal=True, refuri=relative_path(docname, "_sources/" + _notebook_href(d))
            )
            p1, p2 = nodes.paragraph(), nodes.paragraph()
            p1 += ref
            p2 += dl
            rows.append(
                [
                    p1,
                    rec.get("date", "not recorded"),
                    _fmt_seconds(rec.get("seconds")),
                    nodes.paragraph("", "", nodes.literal(rec.get("commit", "unknown"), rec.get("commit", "unknown"))),
                    rec.get("how", "not recorded"),
                    p2,
                ]
            )
            params = rec.get("parameters") or {}
            sec = nodes.rubric("", f"Parameters of “{info['title']}”")
            text = "\n".join(f"{k} = {_fmt_value(v)}" for k, v in params.items()) or "(none recorded)"
            lit = nodes.literal_block(text, text, language="python")
            details += [sec, lit]
        table = _table(
            ["chapter", "run (UTC)", "run time", "commit", "how it ran", "executed notebook"],
            rows,
            [24, 16, 9, 12, 18, 21],
        )
        node.replace_self([table, *details])


def relative_path(docname: str, target: str) -> str:
    from sphinx.util.osutil import relative_uri

    return relative_uri(docname + ".html", target)


# ---------------------------------------------------------------- bibliography labels


def _register_bibtex_style():
    """pybtex style "superpose": the bibliography lists each work under the same author-year
    label the text cites it by ("Linsefors and Bushnaq, 2025b"), sorted by author and year,
    instead of alpha labels such as "Gib5a"."""
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.plain import Style as PlainStyle
    from pybtex.style.labels import BaseLabelStyle

    def last(person) -> str:
        return " ".join(str(n.render_as("text")) for n in person.rich_last_names)

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            for entry in sorted_entries:
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                if not people:
                    who = entry.fields.get("organization", entry.key)
                elif len(people) == 1:
                    who = last(people[0])
                elif len(people) == 2:
                    who = f"{last(people[0])} and {last(people[1])}"
                else:
                    who = f"{last(people[0])} et al."
                yield f"{who}, {entry.fields.get('year', 'n.d.')}"

    class AuthorYearStyle(PlainStyle):
        default_label_style = AuthorYearLabels

    register_plugin("pybtex.style.formatting", "superpose", AuthorYearStyle, force=True)


# ---------------------------------------------------------------- setup


def setup(app):
    _register_bibtex_style()
    _capture_glue_stripping()
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("config-inited", _on_config_inited)
    app.connect("html-page-context", _on_page_context)
    app.connect("html-page-context", _dedupe_assets, priority=900)
    app.connect("autodoc-process-docstring", _on_process_docstring, priority=900)
    app.add_directive("superpose-api", SuperposeAPI)
    app.add_directive("superpose-bibtex", SuperposeBibtex)
    app.add_directive("superpose-source", SuperposeSource)
    app.add_directive("superpose-execution", SuperposeExecution)
    app.add_node(execution_table)
    app.connect("doctree-read", _on_doctree_read)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("doctree-resolved", _fill_execution)
    app.connect("doctree-resolved", _link_images, priority=900)
    app.connect("html-page-context", _offer_notebook, priority=400)
    app.connect("html-page-context", _label_notebook, priority=600)
    app.connect("build-finished", _copy_notebooks)
    app.connect("build-finished", _write_citation_cff)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
