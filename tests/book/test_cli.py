"""The `superpose` command as a reader uses it (run as a subprocess).

Most tests use a tiny throwaway book (one chapter that asserts on its parameter and makes
one glued figure) so that they are fast and independent of the real chapters; `list` and
the error messages are also checked against the real book, generically over _toc.yml.
"""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

from superpose_lib.book.run import list_chapters

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
assert label != "fail", "label asks the chapter to fail"
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot(range(n), [scale * i for i in range(n)])
glue("tiny-line", fig, display=False)
plt.close(fig)
print("n =", n, "label =", label, "device =", device)
```
"""


# The real console script (PYTHONPATH makes it import this checkout); `python -m` where the
# environment has no script (an uninstalled checkout).
_SCRIPT = Path(sys.executable).with_name("superpose")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "superpose_lib.book.cli"]


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", **extra}


def _superpose(*args, cwd=None, env=None):
    return subprocess.run(
        [*COMMAND, *args], cwd=cwd or ROOT, capture_output=True, text=True, env=env or _env(), timeout=300
    )


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
    assert scripts["superpose"] == "superpose_lib.book.cli:main"


def test_list_shows_every_chapter_with_defaults_and_smoke_values():
    proc = _superpose("list")
    assert proc.returncode == 0, proc.stderr
    for c in CHAPTERS:
        assert c.name in proc.stdout
        for name, value in c.parameters.items():
            assert f"{name}" in proc.stdout and repr(value) in proc.stdout
        for name, value in c.smoke.items():
            assert f"smoke: {value!r}" in proc.stdout


def test_presets_are_listed_resolved_and_checked(tmp_path):
    proc = _superpose("list")
    with_presets = [c for c in CHAPTERS if c.presets]
    assert {"asymptotic", "error_correction", "trained"} <= {c.name for c in with_presets}
    for c in with_presets:
        for preset, values in c.presets.items():
            assert f"preset {preset}:" in proc.stdout
            resolved = c.resolve(preset=preset)
            assert all(resolved[k] == v for k, v in values.items())
            # everything the preset does not set stays at its default
            assert all(resolved[k] == v for k, v in c.parameters.items() if k not in values)
    c = with_presets[0]
    with pytest.raises(ValueError, match="preset='huge' is not a preset"):
        c.resolve(preset="huge")
    with pytest.raises(ValueError, match="give one of them"):
        c.resolve(preset=next(iter(c.presets)), smoke=True)
    line = _one_line_error(_superpose("run", c.name, "--preset", "huge", "--out", str(tmp_path)), "huge")
    assert "allowed" in line


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
    text = (book / "book" / "tiny.md").read_text().replace('device = "cpu"\n', "").replace(', "device =", device', "")
    (book / "book" / "tiny.md").write_text(text)
    _one_line_error(
        _superpose("--book", str(book), "run", "tiny", "--device", "cpu", "--out", str(tmp_path / "o")),
        "no device parameter",
        "n, scale, label",
    )


@pytest.mark.slow
def test_run_writes_notebook_and_figures_and_failure_leaves_nothing_half_written(book, tmp_path):
    out = tmp_path / "runs"
    ok = _superpose(
        "--book", str(book), "run", "tiny", "-p", "n", "7", "-p", "label", "mine", "--device", "cpu", "--out", str(out)
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    nb_path, fig = out / "tiny.ipynb", out / "tiny-figures" / "tiny-line.png"
    assert f"executed notebook: {nb_path}" in ok.stdout
    assert str(fig) in ok.stdout
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = nb_path.read_text()
    assert "n = 7 label = mine device = cpu" in text  # the overrides reached the kernel
    assert "Executing" in ok.stderr or "%" in ok.stderr  # papermill's progress bar
    assert "without encryption" not in ok.stderr and "Traceback" not in ok.stderr  # no kernel log noise
    assert sorted(p.name for p in out.iterdir()) == ["tiny-figures", "tiny-html", "tiny.ipynb"]
    assert f"readable page: {out / 'tiny-html' / 'tiny.html'}" in ok.stdout  # superpose_lib.book.render

    # The smoke values start from the front matter.
    smoke = _superpose("--book", str(book), "run", "tiny", "--smoke", "--no-progress", "--out", str(out))
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    assert "n = 2 label = tiny" in nb_path.read_text()

    # A value that makes the chapter raise: one-line error, exit 1; the previous complete
    # notebook and figures stay as they were; the partial one is kept as tiny.failed.ipynb.
    before = nb_path.read_bytes()
    bad = _superpose("--book", str(book), "run", "tiny", "-p", "label", "fail", "--no-progress", "--out", str(out))
    assert bad.returncode == 1
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("superpose: error: chapter 'tiny' failed") and "asks the chapter to fail" in last, bad.stderr
    assert "Traceback" not in bad.stderr
    assert nb_path.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["tiny-figures", "tiny-html", "tiny.failed.ipynb", "tiny.ipynb"]

    # A value outside the chapter's own checks (its n values are positive) never starts it.
    refused = _superpose("--book", str(book), "run", "tiny", "-p", "n", "-3", "--no-progress", "--out", str(out))
    _one_line_error(refused, "'n'", "n=-3")
    assert nb_path.read_bytes() == before

    # A failure in a fresh folder leaves no tiny.ipynb at all.
    fresh = tmp_path / "fresh"
    bad = _superpose("--book", str(book), "run", "tiny", "-p", "label", "fail", "--no-progress", "--out", str(fresh))
    assert bad.returncode == 1
    assert sorted(p.name for p in fresh.iterdir()) == ["tiny.failed.ipynb"]


# ---- issue 14: every bad input or fault is one line, nothing half-written is left ----------
def test_out_that_cannot_be_written_is_one_line(book, tmp_path):
    b = ["--book", str(book), "run", "tiny", "--no-progress"]
    afile = tmp_path / "a-file"
    afile.write_text("x")
    _one_line_error(_superpose(*b, "--out", str(afile)), "--out", "not a folder")
    _one_line_error(_superpose(*b, "--out", str(afile / "sub")), "--out")
    _one_line_error(_superpose(*b, "--out", "/sys/superpose-runs"), "--out", "/sys/superpose-runs")
    _one_line_error(_superpose(*b, "--out", "/proc/1"), "--out", "cannot write")  # unwritable even for root
    if os.geteuid() != 0:  # root writes through permission bits
        ro = tmp_path / "read-only"
        ro.mkdir(mode=0o555)
        _one_line_error(_superpose(*b, "--out", str(ro)), "--out", "cannot write")
        _one_line_error(_superpose(*b, "--out", str(ro / "sub")), "--out", "cannot create")


def test_p_device_goes_through_the_device_check(book, tmp_path):
    b = ["--book", str(book), "run", "tiny", "--out", str(tmp_path / "o")]
    _one_line_error(_superpose(*b, "-p", "device", "not-a-device"), "-p device", "not-a-device")
    _one_line_error(_superpose(*b, "-p", "device", "meta"), "-p device", "meta")
    import torch

    if not torch.cuda.is_available():
        _one_line_error(_superpose(*b, "-p", "device", "cuda"), "-p device", "CUDA is not available")
    assert not (tmp_path / "o").exists()


LIST_PARAMS = [(c, n) for c in CHAPTERS for n, v in c.parameters.items() if isinstance(v, list) and v][:1]


@pytest.mark.parametrize(("chapter", "name"), LIST_PARAMS, ids=[f"{c.name}-{n}" for c, n in LIST_PARAMS])
def test_empty_list_parameter_is_one_line(chapter, name, tmp_path):
    """`-p zs '[]'` ended in KeyError: 'relative difference' inside the regime chapter."""
    _one_line_error(_superpose("run", chapter.name, "-p", name, "[]", "--out", str(tmp_path)), name, "non-empty")


def test_non_literal_parameters_cell_names_the_chapter(book):
    (book / "book" / "tiny.md").write_text(TINY.replace("n = 5\n", 'n = int("5")\n'))
    _one_line_error(_superpose("--book", str(book), "list"), "chapter 'tiny'", "n = int('5')", "not a Python literal")


@pytest.mark.parametrize(
    "toc",
    [
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: [book/tiny\n",
        "just a string\n",
        "root: book/intro\nchapters: 5\n",
    ],
    ids=["bad-yaml", "not-a-mapping", "chapters-not-a-list"],
)
def test_malformed_toc_is_one_line(book, toc):
    (book / "_toc.yml").write_text(toc)
    _one_line_error(_superpose("--book", str(book), "list"), "_toc.yml")


def test_book_without_book_folder_is_one_line_not_a_fallback(tmp_path):
    """A --book folder with _toc.yml but no book/ used to fall back silently to another book."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    _one_line_error(_superpose("--book", str(tmp_path), "list", cwd=ROOT), "no book/ folder")


def test_base_install_without_book_extra_says_which_extra(tmp_path):
    """Simulates `pip install -e .` without the `book` extra: jupytext cannot be imported."""
    fake = tmp_path / "no-extras" / "jupytext"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'jupytext'\", name='jupytext')\n")
    env = _env(PYTHONPATH=os.pathsep.join([str(fake.parent), str(ROOT)]))
    line = _one_line_error(_superpose("list", env=env), "'book' extra", "superpose[book]")
    assert "jupytext" in line


# The sleep cell follows the parameters cell (papermill injects `-p wait 60` right after it).
SLOW = TINY.replace("n = 5\n", "n = 5\nwait = 0\n").replace(
    'device = "cpu"\n```\n', 'device = "cpu"\n```\n\n```{code-cell} ipython3\nimport time\ntime.sleep(wait)\n```\n'
)


def _start_slow(book, out, tmpdir):
    (book / "book" / "tiny.md").write_text(SLOW)
    tmpdir.mkdir()
    return subprocess.Popen(
        [*COMMAND, "--book", str(book), "run", "tiny", "-p", "wait", "60", "--no-progress", "--out", str(out)],
        cwd=ROOT,
        env=_env(TMPDIR=str(tmpdir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_kernel(out, proc, timeout=120):
    """Until papermill has saved the partial notebook once (the kernel runs the first cell)."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        parts = [p for p in out.glob(".tiny.*.part.ipynb") if p.stat().st_size]
        if parts:
            time.sleep(1.0)
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("the chapter never started")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signals", "rc"), [([signal.SIGTERM], 143), ([signal.SIGINT, signal.SIGINT], 130)], ids=["SIGTERM", "Ctrl-C-twice"]
)
def test_sigterm_and_double_ctrl_c_keep_the_partial_notebook_and_leave_no_temporaries(book, tmp_path, signals, rc):
    out, tmpdir = tmp_path / "runs", tmp_path / "tmp"
    proc = _start_slow(book, out, tmpdir)
    _wait_for_kernel(out, proc)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.3)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == rc, stderr
    assert "Traceback" not in stderr and "without encryption" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("superpose: interrupted") and "tiny.failed.ipynb" in last, stderr
    assert sorted(p.name for p in out.iterdir()) == ["tiny.failed.ipynb"]  # no hidden .part file
    assert json.loads((out / "tiny.failed.ipynb").read_text())["cells"]
    assert list(tmpdir.iterdir()) == []  # no tmp*.json connection files left behind
    assert _processes_mentioning(str(tmpdir)) == [], "no orphan kernel left running"


def _processes_mentioning(text):
    """PIDs whose command line contains `text` (Linux /proc; the kernel's names its connection file)."""
    pids = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if text.encode() in (p / "cmdline").read_bytes():
                pids.append(int(p.name))
        except OSError:
            pass
    return pids


@pytest.mark.slow
def test_ctrl_c_during_start_up_is_one_line():
    proc = subprocess.Popen(
        [*COMMAND, "list"], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(1.0)  # the guard is in place after ~0.1 s; importing torch takes seconds more
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (130, 0), stderr  # 0: it finished before the signal arrived
    assert "Traceback" not in stderr, stderr
    if proc.returncode:
        assert stderr.strip().splitlines()[-1].startswith("superpose: interrupted")


def _figure_notebook(path, label):
    import base64

    import nbformat

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + label.encode()).decode()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": label})]
    nb.cells = [cell]
    nbformat.write(nb, str(path))


def test_notebook_and_figures_are_replaced_together_or_not_at_all(book, tmp_path, monkeypatch):
    """A full disk while the figures are written leaves the old notebook and the old figures
    (no new notebook beside old figures) and no hidden temporary files."""
    import papermill

    from superpose_lib.book import run as ch

    chapter = ch.get_chapter("tiny", book)
    out = tmp_path / "runs"
    label = {"v": "first"}
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, path, **kw: _figure_notebook(path, label["v"]))
    ch.execute_chapter(chapter, out, figures=True)
    nb_before = (out / "tiny.ipynb").read_bytes()
    figs = sorted((out / "tiny-figures").iterdir())
    assert len(figs) == 1 and figs[0].read_bytes().endswith(b"first")

    label["v"] = "second"
    real_write = Path.write_bytes

    def full_disk(self, data):
        if self.suffix == ".png":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(ch.ChapterFailed, match=r"No space left on device: .*\.png") as err:
        ch.execute_chapter(chapter, out, figures=True)
    assert "\n" not in str(err.value) and "tiny.failed.ipynb" in str(err.value)
    assert (out / "tiny.ipynb").read_bytes() == nb_before
    assert [p.read_bytes() for p in sorted((out / "tiny-figures").iterdir())] == [figs[0].read_bytes()]
    # the executed notebook is kept for the reader, nothing hidden is left
    assert sorted(p.name for p in out.iterdir()) == ["tiny-figures", "tiny.failed.ipynb", "tiny.ipynb"]

    monkeypatch.setattr(Path, "write_bytes", real_write)
    ch.execute_chapter(chapter, out, figures=True)  # the disk has room again: both replaced
    assert b"second" in (out / "tiny.ipynb").read_bytes()
    assert next((out / "tiny-figures").iterdir()).read_bytes().endswith(b"second")
    assert sorted(p.name for p in out.iterdir()) == ["tiny-figures", "tiny.ipynb"]


def test_a_failing_rename_restores_the_old_pair(tmp_path, monkeypatch):
    from superpose_lib.book import run as ch

    out = tmp_path
    (out / "c.ipynb").write_text("old nb")
    (out / "c-figures").mkdir()
    (out / "c-figures" / "a.png").write_text("old fig")
    new_nb = out / ".c.part.ipynb"
    new_nb.write_text("new nb")
    new_figs = out / ".c-figures.new"
    new_figs.mkdir()
    (new_figs / "a.png").write_text("new fig")
    real = os.replace

    def fail_on_notebook(src, dst):
        if str(dst).endswith("c.ipynb"):
            raise OSError(errno.EIO, "I/O error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_notebook)
    with pytest.raises(OSError):
        ch._install(new_nb, out / "c.ipynb", new_figs, out / "c-figures")
    assert (out / "c.ipynb").read_text() == "old nb"
    assert (out / "c-figures" / "a.png").read_text() == "old fig"
    # the new notebook is left to the caller (kept as c.failed.ipynb); no other temporary
    assert sorted(p.name for p in out.iterdir()) == [".c.part.ipynb", "c-figures", "c.ipynb"]


# ---- issue 23: malformed chapters, the chapters' own checks, whole-run publishing ------------
MALFORMED = {
    "superpose-not-a-mapping": TINY.replace("superpose:\n  smoke:\n    n: 2\n", "superpose: 5\n"),
    "smoke-not-a-mapping": TINY.replace("  smoke:\n    n: 2\n", "  smoke: [1, 2]\n"),
    "preset-not-a-mapping": TINY.replace("  smoke:\n    n: 2\n", "  smoke:\n    n: 2\n  presets:\n    large: 5\n"),
    "preset-unknown-name": TINY.replace(
        "  smoke:\n    n: 2\n", "  smoke:\n    n: 2\n  presets:\n    large:\n      m: 3\n"
    ),
    "unclosed-yaml": TINY.replace("    n: 2\n", "    n: [2\n"),
    "random-bytes": bytes(range(256)) * 8,
}


def _in_process(capsys, *args):
    """`superpose ARGS` in this process (fast: nothing to import again); (exit status, the
    one stderr line)."""
    from superpose_lib.book.cli import main

    capsys.readouterr()
    rc = main(list(args))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("superpose: error: "), err
    return rc, err[0]


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_chapter_is_one_line_naming_the_file(book, tmp_path, capsys, kind):
    path = book / "book" / "tiny.md"
    text = MALFORMED[kind]
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    for args in (("run", "tiny", "--out", str(tmp_path / "o")), ("list",)):
        rc, line = _in_process(capsys, "--book", str(book), *args)
        assert rc == 2 and str(path) in line, line
    assert not (tmp_path / "o").exists()
    if kind == "random-bytes":  # and so it reads from the command itself
        _one_line_error(_superpose("--book", str(book), "run", "tiny", "--out", str(tmp_path / "o")), str(path))


def test_a_malformed_chapter_does_not_stop_another(book):
    from superpose_lib.book import run as ch

    (book / "book" / "other.md").write_text(MALFORMED["unclosed-yaml"])
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/tiny\n  - file: book/other\n"
    )
    assert ch.get_chapter("tiny", book).parameters["n"] == 5
    with pytest.raises(ValueError, match="other.md: malformed front matter"):
        ch.get_chapter("other", book)
    with pytest.raises(ValueError, match="unknown chapter 'nope': choose one of tiny, other"):
        ch.get_chapter("nope", book)


def _fake_chapter(tmp_path, params: dict, smoke: dict | None = None):
    from superpose_lib.book.run import Chapter

    return Chapter("fake", tmp_path / "fake.md", params, smoke or {})


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("batch", 0, "batch=0 is out of range"),
        ("batch", -5, "batch=-5"),
        ("x_show", float("inf"), "x_show=inf"),
        ("D_large", [1024, 0], "D_large=0"),
        ("seed", -1, "seed=-1"),
        ("L", 10**5, "L=100000"),
        ("seeds", [0, 1.5], "seeds=1.5"),
        ("layout_seeds", 0, "layout_seeds=0"),
        ("on_rate", 2.0, "on_rate=2.0"),
        ("workers", 0, "workers=0"),
        ("lm_d_model", 0, "lm_d_model=0"),
        ("corpus_docs", -1, "corpus_docs=-1"),
        ("lr", float("nan"), "lr=nan"),
        ("n", 10**30, "n=10"),
    ],
)
def test_chapter_values_go_through_the_library_checks(tmp_path, name, value, needle):
    from superpose_lib.book.run import check_parameter

    chapter = _fake_chapter(
        tmp_path,
        {
            "batch": 500,
            "x_show": 0.0005,
            "D_large": [1024, 2048],
            "seed": 0,
            "L": 4,
            "seeds": [0, 1],
            "layout_seeds": 3,
            "on_rate": 1e-3,
            "workers": 2,
            "lm_d_model": 128,
            "corpus_docs": 0,
            "lr": 3e-3,
            "n": 5,
        },
        {"corpus_docs": 45},
    )
    for n, v in chapter.parameters.items():  # the chapter's own values pass
        check_parameter(chapter, n, v)
    with pytest.raises(ValueError, match=f"parameter '{name}' of chapter 'fake': {re.escape(needle)}"):
        check_parameter(chapter, name, value)


def test_the_real_chapters_refuse_bad_values_before_a_kernel_starts(tmp_path, capsys):
    out = tmp_path / "never"
    for args, needles in (
        (("construction", "-p", "batch", "0"), ("'batch'", "batch=0")),
        (("construction", "-p", "batch", "-5"), ("'batch'", "batch=-5")),
        (("regime", "-p", "x_show", "1e999"), ("'x_show'", "x_show=inf")),
        (("construction", "--device", "cpu", "-p", "device", "cuda"), ("--device cpu and -p device cuda disagree",)),
    ):
        rc, line = _in_process(capsys, "--book", str(ROOT), "run", *args, "--out", str(out))
        assert rc == 2 and all(n in line for n in needles), line
    rc, line = _in_process(capsys, "--book", str(ROOT), "run", "construction", "--out", "")
    assert rc == 2 and "--out" in line and "empty" in line
    assert not out.exists()


def test_relative_paths_are_the_callers_and_the_cache_goes_under_out(tmp_path, monkeypatch):
    from superpose_lib.book import cli

    chapter = _fake_chapter(tmp_path, {"cache_dir": "_build/.superpose_cache", "gpt2_path": "", "label": "a/b"})
    monkeypatch.chdir(tmp_path)
    assert cli._caller_path(chapter, "cache_dir", "rel/c") == str(tmp_path / "rel" / "c")
    assert cli._caller_path(chapter, "gpt2_path", "/abs/w") == "/abs/w"
    assert cli._caller_path(chapter, "gpt2_path", "") == ""  # empty: the chapter's own search
    assert cli._caller_path(chapter, "label", "a/b") == "a/b"  # not a path parameter
    out = Path("runs")
    assert cli._run_cache("_build/.superpose_cache", out) == str(tmp_path / "runs" / ".superpose_cache")
    assert cli._run_cache("../.superpose_cache/correction", out) == str(
        tmp_path / "runs" / ".superpose_cache" / "correction"
    )
    assert cli._run_cache("", out) == ""


def _published(out):
    return {p.name: (p.read_bytes() if p.is_file() else sorted(q.name for q in p.iterdir())) for p in out.iterdir()}


@pytest.mark.parametrize("fault", ["sphinx-fails", "interrupt"])
def test_the_notebook_figures_and_page_publish_together_or_not_at_all(book, tmp_path, monkeypatch, fault):
    """A failed or interrupted one-page build leaves the earlier notebook, figures and page as
    they were (no new notebook beside an old page), keeps the executed notebook, and says so
    in one line."""
    import papermill

    from superpose_lib.book import run as ch
    from superpose_lib.book.render import PageBuildFailed

    chapter = ch.get_chapter("tiny", book)
    out = tmp_path / "runs"
    label = {"v": "first"}
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, path, **kw: _figure_notebook(path, label["v"]))

    def page(nb, out_dir, root, *, name, **kw):
        if label["v"] == "second":
            if fault == "interrupt":
                raise KeyboardInterrupt("SIGINT")
            raise PageBuildFailed(
                "one-page build of x failed (exit 2): OSError: [Errno 28] No space left on device: 'x.html'"
            )
        tmp = out_dir.parent / f".{out_dir.name}.{os.getpid()}.x"
        tmp.mkdir()
        (tmp / f"{name}.html").write_text(label["v"])
        return tmp

    monkeypatch.setattr(ch, "build_page", page)
    ch.execute_chapter(chapter, out, figures=True, html=True, root=book)
    before = _published(out)
    assert sorted(before) == ["tiny-figures", "tiny-html", "tiny.ipynb"]
    label["v"] = "second"
    if fault == "interrupt":
        with pytest.raises(ch.ChapterInterrupted) as err:
            ch.execute_chapter(chapter, out, figures=True, html=True, root=book)
    else:
        with pytest.raises(ch.ChapterFailed, match="No space left on device") as err:
            ch.execute_chapter(chapter, out, figures=True, html=True, root=book)
        assert "\n" not in str(err.value)
    assert err.value.failed == out / "tiny.failed.ipynb"
    after = _published(out)
    assert b"second" in after.pop("tiny.failed.ipynb")
    assert after == before


def test_leftovers_of_a_killed_run_are_removed_and_a_running_ones_kept(tmp_path, monkeypatch):
    from superpose_lib.book.run import remove_leftovers

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmpdir))
    out = tmp_path / "runs"
    out.mkdir()
    names = [
        ".tiny.{}.ab12.part.ipynb",
        "..tiny.{}.ab12.part.ipynb.stamp",
        ".tiny-figures.{}.x1",
        ".tiny-figures.old.{}.x2",
        ".tiny-html.{}.x3",
        ".tiny-html-src.{}.x4",
    ]
    for pid in (dead.pid, os.getpid()):
        for n in names:
            p = out / n.format(pid)
            p.write_text("x") if n.endswith(("ipynb", "stamp")) else p.mkdir()
        (tmpdir / f"superpose-run-{pid}-abc").mkdir()
    (out / "tiny.ipynb").write_text("a result")
    (out / ".other.1.x").write_text("not ours")
    removed = remove_leftovers(out, "tiny")
    assert len(removed) == len(names) + 1
    assert all(str(dead.pid) in p.name for p in removed)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".other.1.x", "tiny.ipynb"] + [n.format(os.getpid()) for n in names]
    )
    assert [p.name for p in tmpdir.iterdir()] == [f"superpose-run-{os.getpid()}-abc"]
