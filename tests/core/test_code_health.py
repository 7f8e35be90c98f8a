"""Module boundaries: one __all__ per module naming what exists, helpers used across
modules public, one network base class, and the derived quantities in one home. (The
import graph itself is checked in test_architecture.py.)"""

import ast
import importlib
from pathlib import Path

import pytest

import superpose_lib
from superpose_lib.core.network import StructuredNetwork, SuperposedNetwork

LIB = Path(superpose_lib.__file__).parent
# dotted names under superpose_lib of every module (the packages' __init__ only re-export)
MODULES = sorted(
    ".".join(p.relative_to(LIB).with_suffix("").parts)
    for p in LIB.rglob("*.py")
    if p.name != "__init__.py" and p.name != "_version.py"
)


def _path(name):
    return LIB.joinpath(*name.split(".")).with_suffix(".py")


def _tree(name):
    return ast.parse(_path(name).read_text())


@pytest.mark.parametrize("name", MODULES)
def test_one_all_per_module_naming_what_exists(name):
    tree = _tree(name)
    assigns = [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in getattr(n, "targets", [getattr(n, "target", None)])
        )
    ]
    assert len(assigns) == 1 and isinstance(assigns[0], ast.Assign), f"{name}: {len(assigns)} __all__ statements"
    mod = importlib.import_module(f"superpose_lib.{name}")
    missing = [x for x in mod.__all__ if not hasattr(mod, x)]
    assert not missing, f"{name}.__all__ names {missing}, which do not exist"


def _imported_modules(name):
    return {n.module for n in ast.walk(_tree(name)) if isinstance(n, ast.ImportFrom) and n.level >= 1}


def test_checks_imports_no_other_library_module():
    assert "config" not in _imported_modules("core.assignment")
    assert _imported_modules("core.checks") == set(), "checks imports no other library module"


@pytest.mark.parametrize("name", MODULES)
def test_no_private_helper_imported_across_modules(name):
    for n in ast.walk(_tree(name)):
        if isinstance(n, ast.ImportFrom) and n.level >= 1:
            private = [a.name for a in n.names if a.name.startswith("_") and not a.name.startswith("__")]
            assert not private or n.module == "_startup", f"{name} imports private {private} from {n.module}"


def test_graph_network_shares_the_base_and_its_init():
    from superpose_lib.graph import GraphNetwork

    assert issubclass(GraphNetwork, StructuredNetwork) and issubclass(SuperposedNetwork, StructuredNetwork)
    assert not issubclass(GraphNetwork, SuperposedNetwork)
    init = next(n for n in ast.walk(_tree("graph.network")) if isinstance(n, ast.ClassDef) and n.name == "GraphNetwork")
    src = ast.unparse(init)
    assert "super().__init__(" in src and "Module.__init__" not in src
    for shared in ("embed", "layers_iter", "forward", "readout"):
        assert shared not in vars(GraphNetwork) and shared not in vars(SuperposedNetwork)


def test_rotation_row_builder_lives_with_the_experiment():
    assert "def rotation_rows" not in (LIB / "sweep.py").read_text()
    assert "def rotation_rows" in _path("core.experiment").read_text()


def test_derived_quantities_are_not_rewritten_in_my_modules():
    """ε and T(d/D)² are computed in theory.py only (config delegates to it)."""
    for name in ("core.config", "core.experiment", "sweep", "core.assignment"):
        text = _path(name).read_text()
        assert "d / self.D" not in text and "(d / D) ** 2" not in text and "1.0 / (S * T)" not in text, name
