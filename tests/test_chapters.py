"""Every chapter in _toc.yml executes at its smoke parameters (papermill), and the book
builds strictly from those executed notebooks (-W -n --keep-going, errors raise).

The executed notebooks are kept in artifacts/executed/ for inspection (a failing one as
<name>.failed.ipynb); the smoke site is built into artifacts/site/.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from superpose_lib.chapters import execute_chapter, list_chapters

from conftest import ARTIFACTS, ROOT

EXECUTED = ARTIFACTS / "executed"
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
    missing = [c.name for c in CHAPTERS if not (EXECUTED / f"{c.name}.ipynb").is_file()]
    if missing:
        for c in CHAPTERS:
            if c.name in missing:
                execute_chapter(c, EXECUTED, smoke=True)
    src = ARTIFACTS / "site-src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(
        ROOT, src,
        ignore=shutil.ignore_patterns(".git", ".venv", "_build", "artifacts", "__pycache__", ".pytest_cache", ".hypothesis"),
    )
    for c in CHAPTERS:
        rel = c.path.relative_to(ROOT)
        (src / rel).unlink()
        shutil.copy(EXECUTED / f"{c.name}.ipynb", (src / rel).with_suffix(".ipynb"))
    cfg = src / "_config.yml"
    cfg.write_text(cfg.read_text().replace("execute_notebooks: force", "execute_notebooks: \"off\""))
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(src), "--all", "-W", "-n", "--keep-going"],
        capture_output=True, text=True,
    )
    log = proc.stdout + proc.stderr
    (ARTIFACTS / "book-build.log").write_text(log)
    assert proc.returncode == 0, log[-5000:]
    site = ARTIFACTS / "site"
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(src / "_build" / "html", site)
    assert (site / "index.html").is_file()
