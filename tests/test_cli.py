"""The `superpose` command as a reader uses it (run as a subprocess).

Most tests use a tiny throwaway book (one chapter that asserts on its parameter and makes
one glued figure) so that they are fast and independent of the real chapters; `list` and
the error messages are also checked against the real book, generically over _toc.yml.
"""

import os
import subprocess
import sys
import textwrap
import tomllib

import pytest

from superpose_lib.chapters import list_chapters

from conftest import ROOT

CHAPTERS = list_chapters(ROOT)

TINY = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
superpose:
  smoke:
    n: 2
---

# Tiny

A chapter for the command-line tests.

```{code-cell} ipython3
:tags: [parameters]
n = 5
scale = 1.5
label = "tiny"
device = "cpu"
```

```{code-cell} ipython3
import matplotlib.pyplot as plt
from myst_nb import glue

assert n > 0, "n must be positive"
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot(range(n), [scale * i for i in range(n)])
glue("tiny-line", fig, display=False)
plt.close(fig)
print("n =", n, "label =", label, "device =", device)
```
"""


def _superpose(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "superpose_lib.cli", *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def book(tmp_path):
    root = tmp_path / "book-root"
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/tiny\n")
    (root / "book" / "intro.md").write_text("# Intro\n\nText.\n")
    (root / "book" / "tiny.md").write_text(TINY)
    return root


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("superpose: error: ")
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def test_entry_point_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["superpose"] == "superpose_lib.cli:main"


def test_list_shows_every_chapter_with_defaults_and_smoke_values():
    proc = _superpose("list")
    assert proc.returncode == 0, proc.stderr
    for c in CHAPTERS:
        assert c.name in proc.stdout
        for name, value in c.parameters.items():
            assert f"{name}" in proc.stdout and repr(value) in proc.stdout
        for name, value in c.smoke.items():
            assert f"smoke: {value!r}" in proc.stdout


def test_unknown_chapter_names_the_choices():
    line = _one_line_error(_superpose("run", "no-such-chapter"), "no-such-chapter")
    for c in CHAPTERS:
        assert c.name in line


@pytest.mark.parametrize("chapter", CHAPTERS[:1], ids=[c.name for c in CHAPTERS[:1]])
def test_unknown_parameter_names_the_choices(chapter):
    line = _one_line_error(_superpose("run", chapter.name, "-p", "no_such_param", "1"), "no_such_param")
    for name in chapter.parameters:
        assert name in line


def test_bad_values_and_flags_are_one_line_errors(book, tmp_path):
    out = tmp_path / "runs"
    b = ["--book", str(book)]
    _one_line_error(_superpose(*b, "run", "tiny", "-p", "n", "five", "--out", str(out)), "'n'", "int", "five")
    _one_line_error(_superpose(*b, "run", "tiny", "-p", "n", "2.5", "--out", str(out)), "'n'", "int")
    _one_line_error(_superpose(*b, "run", "tiny", "-p", "scale", "[1]", "--out", str(out)), "'scale'", "float")
    _one_line_error(_superpose(*b, "run", "tiny", "-p", "n", "--out", str(out)), "-p")  # VALUE missing
    _one_line_error(_superpose(*b, "run", "tiny", "--device", "not-a-device", "--out", str(out)), "not-a-device")
    _one_line_error(_superpose(*b, "frobnicate"), "frobnicate")
    assert not out.exists(), "nothing is written for bad input"


def test_device_needs_a_device_parameter(book, tmp_path):
    text = (book / "book" / "tiny.md").read_text().replace('device = "cpu"\n', "").replace(
        ', "device =", device', "")
    (book / "book" / "tiny.md").write_text(text)
    _one_line_error(_superpose("--book", str(book), "run", "tiny", "--device", "cpu", "--out", str(tmp_path / "o")),
                    "no device parameter", "n, scale, label")


@pytest.mark.slow
def test_run_writes_notebook_and_figures_and_failure_leaves_nothing_half_written(book, tmp_path):
    out = tmp_path / "runs"
    ok = _superpose("--book", str(book), "run", "tiny", "-p", "n", "7", "-p", "label", "mine",
                    "--device", "cpu", "--out", str(out))
    assert ok.returncode == 0, ok.stderr[-3000:]
    nb_path, fig = out / "tiny.ipynb", out / "tiny-figures" / "tiny-line.png"
    assert f"executed notebook: {nb_path}" in ok.stdout
    assert str(fig) in ok.stdout
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = nb_path.read_text()
    assert "n = 7 label = mine device = cpu" in text  # the overrides reached the kernel
    assert "Executing" in ok.stderr or "%" in ok.stderr  # papermill's progress bar
    assert sorted(p.name for p in out.iterdir()) == ["tiny-figures", "tiny-html", "tiny.ipynb"]
    assert f"readable page: {out / 'tiny-html' / 'tiny.html'}" in ok.stdout  # superpose_lib.render

    # The smoke values start from the front matter.
    smoke = _superpose("--book", str(book), "run", "tiny", "--smoke", "--no-progress", "--out", str(out))
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    assert "n = 2 label = tiny" in nb_path.read_text()

    # A value that makes the chapter raise: one-line error, exit 1; the previous complete
    # notebook and figures stay as they were; the partial one is kept as tiny.failed.ipynb.
    before = nb_path.read_bytes()
    bad = _superpose("--book", str(book), "run", "tiny", "-p", "n", "-3", "--no-progress", "--out", str(out))
    assert bad.returncode == 1
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("superpose: error: chapter 'tiny' failed") and "n must be positive" in last, bad.stderr
    assert "Traceback" not in bad.stderr
    assert nb_path.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["tiny-figures", "tiny-html", "tiny.failed.ipynb", "tiny.ipynb"]

    # A failure in a fresh folder leaves no tiny.ipynb at all.
    fresh = tmp_path / "fresh"
    bad = _superpose("--book", str(book), "run", "tiny", "-p", "n", "0", "--no-progress", "--out", str(fresh))
    assert bad.returncode == 1
    assert sorted(p.name for p in fresh.iterdir()) == ["tiny.failed.ipynb"]
