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
"""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import io
import os
import pkgutil
import re
import subprocess
import tomllib
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

PACKAGE = "superpose_lib"


# ---------------------------------------------------------------- stamp

def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def build_commit(srcdir: str | os.PathLike) -> str:
    """Short hash of the checkout's HEAD, with "+dirty" for uncommitted tracked changes;
    "unknown" when `srcdir` is not inside a git checkout (or git is missing)."""
    env = os.environ.get("SUPERPOSE_COMMIT")
    if env:
        return env
    cwd = Path(srcdir)
    head = _git(["rev-parse", "--short", "HEAD"], cwd)
    if not head:
        return "unknown"
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return head + ("+dirty" if status else "")


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
    version = book_version(app.srcdir)
    commit = build_commit(app.srcdir)
    date = _build_date()
    config.version = config.release = version
    config.html_context = {
        **(config.html_context or {}),
        "superpose_version": version,
        "superpose_commit": commit,
        "superpose_build_date": date,
    }
    stamp = (
        f'<p class="superpose-stamp" data-version="{version}" data-commit="{commit}">'
        f"superpose version {version}, built from commit <code>{commit}</code> on {date}."
        f' <a href="{{cite}}">How to cite</a></p>'
    )
    config.html_theme_options = dict(config.html_theme_options or {})
    config.html_theme_options["extra_footer"] = stamp
    # (2) the vendored MathJax is loaded once, by sphinx.ext.mathjax via mathjax_path.
    config.html_js_files = [
        js for js in (config.html_js_files or [])
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
            settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": stream,
                                "file_insertion_enabled": False, "raw_enabled": False},
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
    """Every public module of `package` (no leading underscore), sorted."""
    pkg = importlib.import_module(package)
    return sorted(
        f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")
    )


def _module_members(modname: str):
    """(name, kind) of the members a module documents: its `__all__` if it has one, else its
    public names, plus every public class it defines (classes appear in signatures, whose
    cross-references must resolve); classes and functions only where defined there."""
    mod = importlib.import_module(modname)
    names = list(getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")])
    names += [n for n, o in vars(mod).items() if not n.startswith("_") and n not in names
              and inspect.isclass(o) and getattr(o, "__module__", None) == modname]
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


def bibtex_entry(cff: dict, commit: str) -> str:
    """A ready @software entry naming the version and the commit this page was built from."""
    date = str(cff.get("date-released", ""))
    fields = {
        "title": "{" + cff["title"] + "}",
        "author": " and ".join(_bibtex_name(a) for a in cff["authors"]),
        "year": date[:4],
        "version": f"{cff['version']}",
        "note": f"Version {cff['version']}, commit {commit}",
    }
    url = cff.get("url") or cff.get("repository-code")
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
        text = bibtex_entry(cff, commit)
        node = nodes.literal_block(text, text, language="bibtex")
        node["classes"].append("superpose-bibtex")
        return [node]


# ---------------------------------------------------------------- setup

def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("config-inited", _on_config_inited)
    app.connect("html-page-context", _on_page_context)
    app.connect("html-page-context", _dedupe_assets, priority=900)
    app.connect("autodoc-process-docstring", _on_process_docstring, priority=900)
    app.add_directive("superpose-api", SuperposeAPI)
    app.add_directive("superpose-bibtex", SuperposeBibtex)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
