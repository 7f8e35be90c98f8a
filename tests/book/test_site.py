"""The website as a reader meets it.

Static checks over the sources (cheap, no browser): every figure has a name and is
referenced with {numref}; every chapter opens by saying what it shows and ends with
conclusions; the reference pages are in the table of contents; CITATION.cff is valid; no
file refers to anything outside the repository; every bibliography entry has a URL, keeps
its title's capitals and has an author-year label of its own.

Browser test: the smoke site (artifacts/site/, built by the book-build test or here through
the same helper) is served on 127.0.0.1 and every page is opened in headless Chromium
(Debian's /usr/bin/chromium driven by playwright), at 1400 px and at 400 px wide. On each
page: no request leaves the machine, every same-origin link and anchor resolves, every
image loads, math is typeset offline by the vendored MathJax, no traceback or error output
shows, the footer names the version and commit; no image is drawn at more than 1.5x its
displayed size without a link to the full image; nothing overflows sideways at 400 px; no
bare glue box (an output holding one number) and no nan/inf/np.int64(...) repr shows; every
citation leads to one bibliography entry with a URL; chapter pages offer their executed
notebook; the Execution page lists every chapter's run; the cite page gives the source
(or says that this build has no repository URL). Screenshots of every page at both widths
go to artifacts/screenshots/. Without chromium the test skips, unless CI is set.
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
from conftest import ARTIFACTS, EXECUTED, ROOT, SITE, build_smoke_site

from superpose_lib.book.run import list_chapters, toc_files

CHAPTERS = list_chapters(ROOT)
TOC = toc_files(ROOT)
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
CHROMIUM = os.environ.get("SUPERPOSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# ------------------------------------------------------------------ static checks

FIGURE = re.compile(
    r"^(?P<fence>```+|:::+)\{(?P<kind>glue:figure|figure)\}[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S
)


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


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout (an export): every file under the root
        files = [
            p
            for p in ROOT.rglob("*")
            if p.is_file()
            and not any(
                part.startswith(".") or part in ("_build", "artifacts", "runs") for part in p.relative_to(ROOT).parts
            )
        ]
    else:
        files = [ROOT / f for f in out.stdout.splitlines()]
    keep = []
    for f in files:
        if (
            f.suffix in {".py", ".md", ".yml", ".yaml", ".toml", ".cff", ".bib", ".sh", ".txt", ".css", ".cfg", ""}
            and f.is_file()
            and f.stat().st_size < 2_000_000
        ):
            keep.append(f)
    return keep


# Spelled in pieces so that this file does not match itself.
_OUTSIDE = re.compile("RESEARCH" + r"\.md|\.\./shared|/work/" + "shared")


def test_nothing_refers_to_files_outside_the_repository():
    hits = []
    for f in _tracked_text_files():
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            if _OUTSIDE.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)


_BOOK_WORDS = {
    r"\bthe seed(?:'s| discussion)\b|\bseed discussion\b": "name the source as 'the LessWrong comment thread of RiS', not 'the seed'",
    r"\bthis machine\b|\bour machine\b|\bthe build machine\b": "no remarks about the machine the book was built on",
}


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.name)
def test_book_words(page):
    text = page.read_text()
    problems = [
        f"{page.name}: {why}: {m.group(0)!r}" for pat, why in _BOOK_WORDS.items() for m in re.finditer(pat, text, re.I)
    ]
    assert not problems, "\n".join(problems)


def _bib_entries():
    from pybtex.database import parse_file

    return parse_file(str(ROOT / "book" / "references.bib")).entries


def test_bibliography_entries_have_urls_capitals_and_unambiguous_labels():
    raw = (ROOT / "book" / "references.bib").read_text()
    labels: dict[str, list[str]] = {}
    for key, e in _bib_entries().items():
        assert e.fields.get("url", "").startswith(("http://", "https://")), f"{key}: no url"
        title = re.search(r"@\w+\{" + re.escape(key) + r",.*?\btitle\s*=\s*(\{.*?\}),\s*\n", raw, re.S)
        assert title and title.group(1).startswith("{{"), f"{key}: wrap the title in {{...}} to keep its capitals"
        people = e.persons.get("author", [])
        who = " and ".join(" ".join(p.last_names) for p in people[:2]) + (" et al." if len(people) > 2 else "")
        labels.setdefault(f"{who}, {e.fields.get('year')}", []).append(key)
    dupes = {k: v for k, v in labels.items() if len(v) > 1}
    assert not dupes, f"two works share one author-year label (add a/b to the year): {dupes}"


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


@pytest.mark.skipif(
    _cffconvert() is None,
    reason="cffconvert not installed (python3 -m venv /tmp/cffenv && "
    "/tmp/cffenv/bin/pip install cffconvert; it pins old deps, keep it out of .venv)",
)
def test_citation_cff_passes_cffconvert():
    proc = subprocess.run(
        [_cffconvert(), "--validate", "-i", str(ROOT / "CITATION.cff")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pages_workflow_publishes_the_built_book():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on:` as True
    assert "main" in on["push"]["branches"]
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    steps = [s.get("uses", "") + " " + s.get("run", "") for job in wf["jobs"].values() for s in job["steps"]]
    for needed in (
        "actions/checkout",
        "actions/setup-python",
        "scripts/build_book.sh",
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
    ):
        assert any(needed in s for s in steps), f"pages.yml lacks {needed}"
    upload = next(
        s for job in wf["jobs"].values() for s in job["steps"] if "upload-pages-artifact" in s.get("uses", "")
    )
    assert upload["with"]["path"].strip("./") == "_build/html"
    build = next(s for job in wf["jobs"].values() for s in job["steps"] if "build_book.sh" in s.get("run", ""))
    env = {
        **wf.get("env", {}),
        **next(j for j in wf["jobs"].values() if build in j["steps"]).get("env", {}),
        **build.get("env", {}),
    }
    assert env.get("SUPERPOSE_REPOSITORY_URL") == "${{ github.server_url }}/${{ github.repository }}", (
        "the Pages build must fill the repository URL from the repository it runs in"
    )


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
    assert "url" not in entry or CFF.get("repository-code") or CFF.get("url"), "no invented URL"
    with_url = ext.bibtex_entry(ext.citation_metadata(ROOT), "abc1234", "https://github.com/o/superpose")
    assert "url     = {https://github.com/o/superpose}" in with_url


def test_repository_url_is_one_setting(ext, monkeypatch):
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "url" in cfg["repository"], "_config.yml: repository: url: is the one setting"

    class C:
        html_theme_options = {"repository_url": cfg["repository"]["url"]}

    monkeypatch.delenv("SUPERPOSE_REPOSITORY_URL", raising=False)
    assert ext.repository_url(C) == (cfg["repository"]["url"] or "").rstrip("/")
    monkeypatch.setenv("SUPERPOSE_REPOSITORY_URL", "https://github.com/o/r/")
    assert ext.repository_url(C) == "https://github.com/o/r"


def test_plot_table_has_enough_distinct_colours():
    from matplotlib.colors import to_rgb

    from superpose_lib import plots

    assert len(set(plots.PALETTE)) == len(plots.PALETTE) >= 12
    for c in plots.PALETTE:
        assert sum(to_rgb(c)) / 3 < 0.8, f"{c} is too light on white"
    for kind, table in plots.COLORS.items():
        assert len(set(table.values())) == len(table), f"two {kind} values share a colour"
    with pytest.raises(ValueError, match="names"):
        plots.palette([str(i) for i in range(len(plots.PALETTE) + 1)])


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
    return sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if not p.relative_to(site).as_posix().startswith(skip) and p.name != "index.html"
    )


# Text of the page a reader sees, less code and the MathJax-typeset math.
_VISIBLE_PROSE = """() => {
  const main = document.querySelector('main') || document.body;
  const c = main.cloneNode(true);
  c.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  return c.innerText;
}"""

# Text a reader sees including outputs, less the code of code cells and the maths.
_VISIBLE_OUTPUT = """() => {
  const main = document.querySelector('main') || document.body;
  const c = main.cloneNode(true);
  c.querySelectorAll('.cell_input, details.hide, script, style, mjx-container, .superpose-clone, '
                   + '.superpose-bibtex, dl.py, .sig').forEach(e => e.remove());
  return c.innerText;
}"""

# Images drawn at more than 1.5x their displayed size with no link to a larger file.
_SHRUNK_IMAGES = """() => Array.from(document.querySelectorAll('main img'))
  .filter(i => i.naturalWidth > 0 && i.clientWidth > 0 && i.naturalWidth > 1.5 * i.clientWidth)
  .filter(i => { const a = i.closest('a[href]');
                 return !(a && /\\.(png|svg|jpe?g|gif|webp)$/i.test(a.getAttribute('href'))); })
  .map(i => `${i.currentSrc.split('/').pop()} (${i.naturalWidth}px drawn at ${i.clientWidth}px)`)"""

# Elements that stick out of the viewport at a narrow width (the page scrolls sideways).
_OVERFLOW = """() => {
  const w = window.innerWidth;
  if (document.documentElement.scrollWidth <= w + 1) return [];
  const out = [];
  for (const e of document.querySelectorAll('main *')) {
    const r = e.getBoundingClientRect();
    if (r.right > w + 1 && r.width > 0) {
      let p = e.parentElement, clipped = false;
      while (p) { const o = getComputedStyle(p).overflowX;
                  if (o === 'auto' || o === 'scroll' || o === 'hidden') { clipped = true; break; }
                  p = p.parentElement; }
      if (!clipped) out.push(`${e.tagName.toLowerCase()}.${[...e.classList].join('.')} (right edge ${Math.round(r.right)}px)`);
    }
    if (out.length >= 5) break;
  }
  return out.length ? out : [`page is ${document.documentElement.scrollWidth}px wide`];
}"""

# Output boxes that hold a single number: a glue() for the text without display=False.
_BARE_BOXES = """() => Array.from(document.querySelectorAll('main .cell_output .output, main .cell_output pre'))
  .map(e => e.innerText.trim())
  .filter(t => t.length > 0 && t.length < 30 && /^['"]?[-+]?[0-9][0-9.,]*(e[-+]?[0-9]+)?%?['"]?$/i.test(t))"""

_REPRS = re.compile(r"\bnp\.(?:int|float|bool|str|uint)\w*\(|\b(?:nan|NaN|inf|-inf|Infinity)\b")
_NP_REPRS = re.compile(r"\bnp\.(?:int|float|bool|str|uint)\w*\(")

SCREEN_WIDTHS = (1400, 400)


def _bibliography_entries(page, server) -> dict:
    """id -> (label, has an external URL) of every entry on the bibliography page."""
    page.goto(server + "book/bibliography.html", wait_until="load")
    return {
        e["id"]: (e["label"], e["url"])
        for e in page.evaluate(
            "() => Array.from(document.querySelectorAll('.citation')).map(c => ({id: c.id, "
            "label: (c.querySelector('.label') || {innerText: ''}).innerText.trim(), "
            "url: !!c.querySelector('a.reference.external[href^=\"http\"]')}))"
        )
    }


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_in_a_real_browser(site, server, browser):
    shots = ARTIFACTS / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    origin = urllib.parse.urlsplit(server).netloc
    chapter_pages = {f"book/{c.name}.html" for c in CHAPTERS}
    problems: list[str] = []
    pages = _pages(site)
    assert {
        "book/intro.html",
        "book/api.html",
        "book/cite.html",
        "book/bibliography.html",
        "book/execution.html",
    } <= set(pages)
    assert chapter_pages <= set(pages), f"chapters missing from the site: {chapter_pages - set(pages)}"

    for width in SCREEN_WIDTHS:
        ctx = browser.new_context(viewport={"width": width, "height": 900})
        offsite: list[str] = []
        ctx.route(
            re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"),
            lambda route: (offsite.append(route.request.url), route.abort()),
        )
        page = ctx.new_page()
        bad_responses: list[str] = []
        page.on("response", lambda r: bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(str(e)))

        # The root index.html redirects to the first page.
        page.goto(server, wait_until="load")
        page.wait_for_url(re.compile(r"/book/intro\.html"), timeout=15_000)
        bib = _bibliography_entries(page, server)
        if width == SCREEN_WIDTHS[0]:
            labels = [label for label, _ in bib.values()]
            for label in sorted({x for x in labels if labels.count(x) > 1}):
                problems.append(f"book/bibliography.html: two entries share the label {label!r}")
            for ident, (label, has_url) in sorted(bib.items()):
                if not has_url:
                    problems.append(f"book/bibliography.html: entry {label!r} has no URL")

        for rel in pages:
            bad_responses.clear()
            console_errors.clear()
            page.goto(server + rel, wait_until="load")
            where = f"{rel} @{width}px:"
            _check_math(page, where, problems)
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=15_000)
            for shrunk in page.evaluate(_SHRUNK_IMAGES):
                problems.append(f"{where} image drawn smaller than 1/1.5 of its size without a link to it: {shrunk}")
            if width < 600:
                for e in page.evaluate(_OVERFLOW):
                    problems.append(f"{where} overflows sideways: {e}")
            if width == SCREEN_WIDTHS[0]:
                _check_page(page, rel, where, origin, chapter_pages, bib, problems)
            for r in bad_responses:
                problems.append(f"{where} request failed: {r}")
            for m in console_errors:
                problems.append(f"{where} console error: {m}")
            name = rel.replace("/", "__").removesuffix(".html")
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
        ctx.close()
        problems += [f"request left the machine (blocked): {u}" for u in sorted(set(offsite))]

    assert not problems, "\n".join(problems)
    assert len(list(shots.glob("*.png"))) == len(pages) * len(SCREEN_WIDTHS)


def _check_math(page, where, problems):
    # Math: every Sphinx math element typeset by MathJax as SVG, no TeX error, no raw TeX left.
    n_math = page.locator("span.math, div.math").count()
    if n_math:
        try:
            page.wait_for_function(
                "n => document.querySelectorAll('mjx-container').length >= n", arg=n_math, timeout=30_000
            )
        except Exception:
            problems.append(f"{where} MathJax typeset {page.locator('mjx-container').count()} of {n_math} formulas")
        if page.locator("mjx-container svg").count() == 0:
            problems.append(f"{where} math is not rendered as SVG")
        if page.locator("mjx-merror, [data-mjx-error]").count():
            problems.append(f"{where} MathJax reports a TeX error")
    prose = page.evaluate(_VISIBLE_PROSE)
    for raw in ("$$", "\\(", "\\[", "\\begin{", "{glue"):
        if raw in prose:
            problems.append(f"{where} raw markup {raw!r} shows in the text")


def _check_page(page, rel, where, origin, chapter_pages, bib, problems):
    """The checks that do not depend on the width."""
    for fig in page.evaluate(
        "() => Array.from(document.querySelectorAll('main figure'))"
        ".filter(f => !f.querySelector('img, svg')).map(f => f.id || f.innerText.slice(0, 60))"
    ):
        problems.append(f"{where} figure without an image (a glued figure saved as text?): {fig}")
    for src in page.evaluate("() => Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)"):
        problems.append(f"{where} image does not load: {src}")

    # No traceback, error output or build error shows.
    if "Traceback" in page.inner_text("body"):
        problems.append(f"{where} shows a traceback")
    n_err = page.locator(".output.stderr, .output.traceback, .output.error, .system-message, .problematic").count()
    if n_err:
        problems.append(f"{where} shows {n_err} error/stderr output(s)")

    # What a reader would notice in the outputs: bare glue boxes, reprs of censored values.
    for box in page.evaluate(_BARE_BOXES):
        problems.append(f"{where} a bare output box shows only {box!r} (glue(..., display=False)?)")
    text = page.evaluate(_VISIBLE_OUTPUT)
    # (the library reference may name NaN and inf in its docstrings; results may not)
    reprs = _REPRS if rel in chapter_pages else _NP_REPRS
    for m in sorted({m.group(0) for m in reprs.finditer(text)}):
        problems.append(f"{where} shows the repr {m!r} (write censored values in words)")

    # Footer stamp: version and commit.
    stamp = page.locator(".superpose-stamp")
    if stamp.count() != 1 or not stamp.first.is_visible():
        problems.append(f"{where} has no visible version/commit stamp")
    else:
        stamp_text = stamp.inner_text()
        if VERSION not in stamp_text or not re.search(r"commit (unknown|[0-9a-f]{7,}(\+dirty)?)", stamp_text):
            problems.append(f"{where} stamp lacks version {VERSION} or a commit: {stamp_text!r}")

    # Links: every same-origin link and anchor resolves; citations lead to an entry with a URL.
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
        if parts.path.endswith("/book/bibliography.html") and parts.fragment and rel != "book/bibliography.html":
            entry = bib.get(urllib.parse.unquote(parts.fragment))
            if parts.fragment.startswith("id") and entry is None:
                problems.append(f"{where} citation #{parts.fragment} leads to no bibliography entry")
            elif entry is not None and not entry[1]:
                problems.append(f"{where} cites {entry[0]!r}, which has no URL")

    # Chapter pages offer their executed notebook (with outputs) for download.
    if rel in chapter_pages:
        dl = [h for h in hrefs if re.search(r"/_sources/.+\.executed\.ipynb$", h)]
        if not dl:
            problems.append(f"{where} offers no executed notebook (.executed.ipynb) for download")
        else:
            with urllib.request.urlopen(dl[0], timeout=30) as r:
                nb = json.loads(r.read())
            if not any(c.get("outputs") for c in nb.get("cells", []) if c.get("cell_type") == "code"):
                problems.append(f"{where} the downloadable notebook has no outputs (not executed)")

    # The Execution page: a row per chapter with its date, run time and commit.
    if rel == "book/execution.html":
        rows = page.evaluate(
            "() => Array.from(document.querySelectorAll('table.superpose-execution tbody tr'))"
            ".map(r => Array.from(r.cells).map(c => c.innerText.trim()))"
        )
        titled = {c.name: False for c in CHAPTERS}
        links = page.eval_on_selector_all("table.superpose-execution a[href]", "els => els.map(e => e.href)")
        for c in CHAPTERS:
            titled[c.name] = any(h.split("#")[0].endswith(f"book/{c.name}.html") for h in links)
        for name, ok in titled.items():
            if not ok:
                problems.append(f"{where} lists no run of chapter {name}")
        for r in rows:
            if len(r) < 4 or not re.search(r"\d{4}-\d\d-\d\d", r[1]) or not re.search(r"\d", r[2]):
                problems.append(f"{where} execution row without date or run time: {r}")

    # The cite page: the source (clone command) or, without a repository URL, a note saying so.
    if rel == "book/cite.html":
        clone = page.locator(".superpose-clone")
        if clone.count() != 1:
            problems.append(f"{where} gives no command to get the source")
        else:
            repo = os.environ.get("SUPERPOSE_REPOSITORY_URL", "")
            has_clone = "git clone" in clone.inner_text()
            if bool(repo) != has_clone:
                problems.append(f"{where} clone command {'missing' if repo else 'invents a repository URL'}")

    # The intro's own text links every chapter.
    if rel == "book/intro.html":
        article = page.eval_on_selector_all("article a[href], main a[href]", "els => els.map(e => e.href)")
        for c in CHAPTERS:
            if not any(h.split("#")[0].endswith(f"book/{c.name}.html") for h in article):
                problems.append(f"book/intro.html: no link to chapter {c.name} in its text")


def test_executed_chapters_glue_text_without_display(site):
    """A glue() whose value is only for the text must say display=False: otherwise a bare box
    with the value appears in the page. Checked in the executed notebooks the site is built from."""
    import nbformat

    problems = []
    for c in CHAPTERS:
        nb = nbformat.read(EXECUTED / f"{c.name}.ipynb", as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                meta = (out.get("metadata") or {}).get("scrapbook") or {}
                if (
                    meta
                    and meta.get("mime_prefix", "") == ""
                    and not any(k.startswith("image/") for k in out.get("data", {}))
                ):
                    problems.append(f"{c.name}: glue({meta.get('name')!r}) is displayed (add display=False)")
    assert not problems, "\n".join(problems)


def test_rerun_page_renders_glued_numbers(site, tmp_path):
    """`superpose run` writes the chapter as one HTML page (superpose_lib.book.render): glued numbers
    rendered by myst-nb, no raw {glue} roles left, the run's commit in the footer."""
    from superpose_lib.book.render import render_html, run_record

    nb = EXECUTED / "construction.ipynb"
    page = render_html(nb, tmp_path / "construction-html", ROOT)
    text = page.read_text()
    assert "{glue" not in re.sub(r"<pre.*?</pre>", "", text, flags=re.S), "raw glue roles left in the page"
    record = run_record(nb)
    assert record and record["commit"] in text
    T = record["parameters"]["T"]
    assert re.search(rf"<strong>{T}</strong>|>{T}<", text), f"the glued T = {T} is not on the page"
    assert (page.parent / "_static" / "mathjax" / "tex-svg-full.js").is_file()


def test_chapter_kernels_draw_2x_pngs():
    """Every kernel that executes a chapter (superpose run, the tests, the book build) gets
    an IPython profile whose inline backend draws 2x PNGs (sharp when enlarged)."""
    from superpose_lib.book.render import kernel_env

    env = kernel_env()
    conf = Path(env["IPYTHONDIR"]) / "profile_default" / "ipython_kernel_config.py"
    assert "c.InlineBackend.figure_formats = {'retina'}" in conf.read_text()
