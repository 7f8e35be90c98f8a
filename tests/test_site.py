"""The website as a reader meets it.

Static checks over the sources (cheap, no browser): every figure has a name and is
referenced with {numref}; every chapter opens by saying what it shows and ends with
conclusions; the reference pages are in the table of contents; CITATION.cff is valid.

Browser test: the smoke site (artifacts/site/, built by the book-build test or here through
the same helper) is served on 127.0.0.1 and every page is opened in headless Chromium
(Debian's /usr/bin/chromium driven by playwright). On each page: no request leaves the
machine, every same-origin link and anchor resolves, every image loads, math is typeset
offline by the vendored MathJax, no traceback or error output shows, the footer names the
version and commit; chapter pages offer their notebook for download. A screenshot of every
page goes to artifacts/screenshots/. Without chromium the test skips, unless CI is set.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from superpose_lib.chapters import toc_files, list_chapters

from conftest import ARTIFACTS, ROOT, SITE, build_smoke_site

CHAPTERS = list_chapters(ROOT)
TOC = toc_files(ROOT)
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
CHROMIUM = os.environ.get("SUPERPOSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


# ------------------------------------------------------------------ static checks

FIGURE = re.compile(r"^(?P<fence>```+|:::+)\{(?P<kind>glue:figure|figure)\}[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$",
                    re.M | re.S)


def _book_text() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "book").glob("*.md")))


def _figures(path: Path):
    for m in FIGURE.finditer(path.read_text()):
        name = re.search(r"^:?name:\s*(\S+)\s*$", m["body"], re.M)  # `:name: x` or YAML `name: x`
        yield m["kind"], (name[1] if name else None), m.group(0).splitlines()[0]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_every_figure_is_named_captioned_and_referenced(chapter):
    text = _book_text()
    for kind, name, head in _figures(chapter.path):
        assert name, f"{chapter.path.name}: {head!r} has no :name: label"
        assert re.search(r"\{numref\}`(?:[^`<]*<)?" + re.escape(name) + r">?`", text), (
            f"{chapter.path.name}: figure {name} is never referenced with {{numref}}`{name}`"
        )


def test_figure_labels_are_unique_across_the_book():
    names = [n for p in sorted((ROOT / "book").glob("*.md")) for _, n, _ in _figures(p) if n]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"figure labels used twice: {dupes}"


def _markdown_cells(path: Path) -> list[str]:
    import jupytext

    return [c.source for c in jupytext.read(path).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_chapter_opens_with_what_it_shows(chapter):
    """A title, then a paragraph of prose before the first code cell."""
    import jupytext

    cells = jupytext.read(chapter.path).cells
    first_code = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    intro = "\n".join(c.source for c in cells[:first_code] if c.cell_type == "markdown")
    assert re.search(r"^# \S", intro, re.M), f"{chapter.path.name} has no '# Title' before its first code cell"
    prose = re.sub(r"^#.*$", "", intro, flags=re.M).strip()
    assert len(prose.split()) >= 20, (
        f"{chapter.path.name}: open with a paragraph saying what the chapter shows, before the code"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_chapter_ends_with_conclusions(chapter):
    md = "\n".join(_markdown_cells(chapter.path))
    headings = re.findall(r"^(##+)\s+(.*)$", md, re.M)
    h2 = [t for level, t in headings if level == "##"]
    assert h2 and re.match(r"conclusions?\b", h2[-1].strip(), re.I), (
        f"{chapter.path.name} must end with a '## Conclusions' section (its last section is {h2[-1:]!r})"
    )


def test_reference_pages_are_in_the_toc():
    for page in ("book/intro", "book/bibliography", "book/api", "book/cite"):
        assert page in TOC, f"{page} missing from _toc.yml"
    last_chapter = max(TOC.index(f"book/{c.name}") for c in CHAPTERS)
    assert TOC.index("book/bibliography") > last_chapter, "the bibliography comes after the chapters"


def test_intro_links_every_chapter():
    intro = (ROOT / "book" / "intro.md").read_text()
    if "{tableofcontents}" in intro:
        return  # the directive lists every toc entry (checked in the browser below)
    for c in CHAPTERS:
        assert f"{c.name}.md" in intro or f"{c.name}.ipynb" in intro, f"intro does not link {c.name}"


def test_every_citation_key_exists():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", bib, re.M))
    used = {k.strip() for m in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", _book_text()) for k in m.split(",")}
    assert used, "no {cite} in the book"
    assert used <= keys, f"cited but not in references.bib: {sorted(used - keys)}"


# ------------------------------------------------------------------ citation metadata

CFF = yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_cff_matches_the_schema():
    """Validated against the Citation File Format 1.2.0 JSON schema, vendored in
    tests/data/ (jsonschema is installed with nbformat)."""
    import jsonschema

    schema = json.loads((ROOT / "tests" / "data" / "cff-schema-1.2.0.json").read_text())
    doc = json.loads(json.dumps(CFF, default=str))  # YAML dates -> strings, as cffconvert does
    jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)


def test_citation_cff_version_is_the_package_version():
    assert str(CFF["version"]) == VERSION, "bump CITATION.cff's version together with pyproject.toml"


def _cffconvert() -> str | None:
    for cand in (os.environ.get("CFFCONVERT"), shutil.which("cffconvert"), "/tmp/cffenv/bin/cffconvert"):
        if cand and Path(cand).is_file():
            return cand
    return None


@pytest.mark.skipif(_cffconvert() is None, reason="cffconvert not installed (python3 -m venv /tmp/cffenv && "
                    "/tmp/cffenv/bin/pip install cffconvert; it pins old deps, keep it out of .venv)")
def test_citation_cff_passes_cffconvert():
    proc = subprocess.run([_cffconvert(), "--validate", "-i", str(ROOT / "CITATION.cff")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pages_workflow_publishes_the_built_book():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on:` as True
    assert "main" in on["push"]["branches"]
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    steps = [s.get("uses", "") + " " + s.get("run", "") for job in wf["jobs"].values() for s in job["steps"]]
    for needed in ("actions/checkout", "actions/setup-python", "scripts/build_book.sh",
                   "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert any(needed in s for s in steps), f"pages.yml lacks {needed}"
    upload = next(s for job in wf["jobs"].values() for s in job["steps"]
                  if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"].strip("./") == "_build/html"


# ------------------------------------------------------------------ the book's Sphinx extension

@pytest.fixture
def ext():
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        yield importlib.import_module("superpose_book")
    finally:
        sys.path.remove(str(ROOT / "_ext"))


def test_stamp_names_commit_or_unknown(ext, tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERPOSE_COMMIT", raising=False)
    assert ext.build_commit(tmp_path) == "unknown"  # not a git checkout
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert ext.build_commit(ROOT).removesuffix("+dirty") == head.stdout.strip()
    monkeypatch.setenv("SUPERPOSE_COMMIT", "abc1234")
    assert ext.build_commit(tmp_path) == "abc1234"
    assert ext.book_version(ROOT) == VERSION


def test_bibtex_entry_comes_from_citation_cff(ext):
    entry = ext.bibtex_entry(ext.citation_metadata(ROOT), "abc1234")
    assert entry.startswith("@software{superpose") and entry.rstrip().endswith("}")
    assert f"version = {{{VERSION}}}" in entry and "commit abc1234" in entry
    assert CFF["title"] in entry
    assert entry.count("{") == entry.count("}")


def test_docstrings_that_are_not_clean_rst_are_shown_verbatim(ext):
    assert ext._rst_is_clean("Run `net` on inputs [B, d]; returns a tensor.")
    lines = ["x on the unit circle (|x| = 1), e_t^l the S-hot vector."]
    ext._on_process_docstring(None, "function", "superpose_lib.m.f", None, {}, lines)
    assert lines[0] == "::" and lines[2].strip() == "x on the unit circle (|x| = 1), e_t^l the S-hot vector."


def test_mathjax_is_vendored_and_configured():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    path = cfg["sphinx"]["config"]["mathjax_path"]
    assert not path.startswith(("http:", "https:", "//")), "MathJax must load offline"
    js = ROOT / "_static" / path
    assert js.is_file() and js.stat().st_size > 1_000_000
    assert cfg["sphinx"]["local_extensions"]["superpose_book"] == "_ext"


# ------------------------------------------------------------------ browser

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    if not (SITE / "index.html").is_file():
        build_smoke_site()
    return SITE


@pytest.fixture(scope="module")
def server(site):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        msg = f"no chromium at {CHROMIUM} (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI is set, so the browser test must run")
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "id" or (tag == "a" and k == "name"):
                self.ids.add(v)


@functools.lru_cache(maxsize=None)
def _fetch(url: str) -> tuple[int, frozenset]:
    """HTTP status of `url` and, for HTML, the ids it defines."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
            status = r.status
            ctype = r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, frozenset()
    ids = frozenset()
    if "html" in ctype:
        p = _Ids()
        p.feed(body.decode("utf8", "replace"))
        ids = frozenset(p.ids)
    return status, ids


def _pages(site: Path) -> list[str]:
    skip = ("_static/", "_sources/", "_images/", "reports/")
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not p.relative_to(site).as_posix().startswith(skip) and p.name != "index.html")


# Text of the page a reader sees, less code and the MathJax-typeset math.
_VISIBLE_PROSE = """() => {
  const main = document.querySelector('main') || document.body;
  const c = main.cloneNode(true);
  c.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  return c.innerText;
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_in_a_real_browser(site, server, browser):
    shots = ARTIFACTS / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    origin = urllib.parse.urlsplit(server).netloc
    chapter_pages = {f"book/{c.name}.html" for c in CHAPTERS}
    problems: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    offsite: list[str] = []
    ctx.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"),
              lambda route: (offsite.append(route.request.url), route.abort()))
    page = ctx.new_page()
    bad_responses: list[str] = []
    page.on("response", lambda r: bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))

    # The root index.html redirects to the first page.
    page.goto(server, wait_until="load")
    page.wait_for_url(re.compile(r"/book/intro\.html"), timeout=15_000)

    pages = _pages(site)
    assert {"book/intro.html", "book/api.html", "book/cite.html", "book/bibliography.html"} <= set(pages)
    assert chapter_pages <= set(pages), f"chapters missing from the site: {chapter_pages - set(pages)}"
    for rel in pages:
        url = server + rel
        bad_responses.clear()
        console_errors.clear()
        page.goto(url, wait_until="load")
        where = f"{rel}:"

        # Math: every Sphinx math element typeset by MathJax as SVG, no TeX error, no raw TeX left.
        n_math = page.locator("span.math, div.math").count()
        if n_math:
            try:
                page.wait_for_function(
                    "n => document.querySelectorAll('mjx-container').length >= n", arg=n_math, timeout=30_000)
            except Exception:
                problems.append(f"{where} MathJax typeset {page.locator('mjx-container').count()} of {n_math} formulas")
            if page.locator("mjx-container svg").count() == 0:
                problems.append(f"{where} math is not rendered as SVG")
            if page.locator("mjx-merror, [data-mjx-error]").count():
                problems.append(f"{where} MathJax reports a TeX error")
        prose = page.evaluate(_VISIBLE_PROSE)
        for raw in ("$$", "\\(", "\\[", "\\begin{"):
            if raw in prose:
                problems.append(f"{where} raw TeX {raw!r} shows in the text")

        # Images: all loaded.
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=15_000)
        for fig in page.evaluate(
                "() => Array.from(document.querySelectorAll('main figure'))"
                ".filter(f => !f.querySelector('img, svg')).map(f => f.id || f.innerText.slice(0, 60))"):
            problems.append(f"{where} figure without an image (a glued figure saved as text?): {fig}")
        for src in page.evaluate(
                "() => Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)"):
            problems.append(f"{where} image does not load: {src}")

        # No traceback, error output or build error shows.
        if "Traceback" in page.inner_text("body"):
            problems.append(f"{where} shows a traceback")
        n_err = page.locator(".output.stderr, .output.traceback, .output.error, .system-message, .problematic").count()
        if n_err:
            problems.append(f"{where} shows {n_err} error/stderr output(s)")

        # Footer stamp: version and commit.
        stamp = page.locator(".superpose-stamp")
        if stamp.count() != 1 or not stamp.first.is_visible():
            problems.append(f"{where} has no visible version/commit stamp")
        else:
            text = stamp.inner_text()
            if VERSION not in text or not re.search(r"commit (unknown|[0-9a-f]{7,}(\+dirty)?)", text):
                problems.append(f"{where} stamp lacks version {VERSION} or a commit: {text!r}")

        # Links: every same-origin link and anchor resolves.
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for href in set(hrefs):
            parts = urllib.parse.urlsplit(href)
            if parts.scheme not in ("http", "https") or parts.netloc != origin:
                continue
            target = urllib.parse.urlunsplit(parts._replace(fragment=""))
            status, ids = _fetch(target)
            if status >= 400:
                problems.append(f"{where} link to {href} gives {status}")
            elif parts.fragment and urllib.parse.unquote(parts.fragment) not in ids and parts.path.endswith(".html"):
                problems.append(f"{where} anchor #{parts.fragment} not found in {parts.path}")

        # Chapter pages offer their source notebook for download.
        if rel in chapter_pages:
            dl = [h for h in hrefs if re.search(r"/_sources/.+\.(ipynb|md)$", h)]
            if not dl:
                problems.append(f"{where} offers no .ipynb/.md download")

        for r in bad_responses:
            problems.append(f"{where} request failed: {r}")
        for m in console_errors:
            problems.append(f"{where} console error: {m}")
        page.screenshot(path=str(shots / (rel.replace("/", "__").removesuffix(".html") + ".png")), full_page=True)

    # The intro's own text links every chapter.
    page.goto(server + "book/intro.html", wait_until="load")
    article = page.eval_on_selector_all("article a[href], main a[href]", "els => els.map(e => e.href)")
    for c in CHAPTERS:
        if not any(h.split("#")[0].endswith(f"book/{c.name}.html") for h in article):
            problems.append(f"book/intro.html: no link to chapter {c.name} in its text")

    ctx.close()
    problems += [f"request left the machine (blocked): {u}" for u in sorted(set(offsite))]
    assert not problems, "\n".join(problems)
    assert len(list(shots.glob("*.png"))) == len(pages)
