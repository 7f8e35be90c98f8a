"""Every chapter in _toc.yml executes at its smoke parameters (papermill), and the book
builds strictly from those executed notebooks (-W -n --keep-going, errors raise).

The executed notebooks are kept in artifacts/executed/ for inspection (a failing one as
<name>.failed.ipynb); the smoke site is built into artifacts/site/.
"""

import chapter_measures
import pytest
from conftest import EXECUTED, ROOT, SITE, build_smoke_site

from superpose_lib.book.run import execute_chapter, list_chapters

CHAPTERS = list_chapters(ROOT)

pytestmark = pytest.mark.slow


def test_toc_lists_chapters():
    assert [c.name for c in CHAPTERS], "no executable chapter listed in _toc.yml"
    for c in CHAPTERS:
        assert c.smoke, f"{c.name} declares no smoke parameters in its front matter"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_chapter_executes_at_smoke_size(chapter):
    out = execute_chapter(chapter, EXECUTED, smoke=True)
    assert out.is_file()


def test_book_builds_strictly_from_smoke_notebooks():
    """Build the site from the smoke-executed notebooks: a copy of the book whose chapters
    are the executed .ipynb files, with execution off (they already ran above)."""
    build_smoke_site()
    assert (SITE / "index.html").is_file()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_papermill_reads_every_parameter(chapter):
    """papermill parses the parameters cell itself (to inject overrides); a line it cannot
    parse (e.g. '=' inside a comment) makes it warn and treat the name as unknown."""
    from papermill.translators import PythonTranslator

    from superpose_lib.book.run import _read_notebook

    cell = next(c for c in _read_notebook(chapter.path).cells if "parameters" in c.metadata.get("tags", []))
    assert {p.name for p in PythonTranslator.inspect({"source": cell.source})} == set(chapter.parameters)


@pytest.mark.parametrize("name", chapter_measures.CHAPTERS)
def test_every_chapter_is_thin(name):
    """The targets of BOOK_STYLE's thin chapter (`chapter_measures.TARGETS`): median and
    largest code cell, code against prose, bookkeeping, no unfolded plot/table/assert cell."""
    m = chapter_measures.measure(ROOT / "book" / f"{name}.md")
    t = chapter_measures.TARGETS
    assert m["median"] <= t["median"] and m["max"] <= t["max"], m
    assert m["code_prose"] <= t["code_prose"] and m["bookkeeping"] <= t["bookkeeping"], m
    assert m["unfolded"] == t["unfolded"], m
