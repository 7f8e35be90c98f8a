"""The book's chapters as executable notebooks: list them, read their parameters, run them.

A chapter is a MyST Markdown notebook listed in `_toc.yml`. Its `parameters`-tagged cell
holds the full values the book build uses (plain `NAME = literal` lines); its front matter
holds small smoke values under `superpose: smoke:` for tests. papermill cannot read `.md`,
so chapters are read with jupytext and executed in memory.
"""

from __future__ import annotations

import ast
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Chapter",
    "find_root",
    "list_chapters",
    "get_chapter",
    "coerce_parameter",
    "execute_chapter",
]


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The book's root: the nearest folder at or above `start` (default: cwd, then this
    package's checkout) holding `_toc.yml`."""
    candidates = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent.parent]
    for c in candidates:
        for p in [c, *c.parents]:
            if (p / "_toc.yml").is_file() and (p / "book").is_dir():
                return p
    raise ValueError("no book found: run from the superpose checkout (a folder with _toc.yml)")


@dataclass(frozen=True)
class Chapter:
    """One chapter: its name (file stem), path, full parameters and smoke overrides."""

    name: str
    path: Path
    parameters: dict
    smoke: dict

    def resolve(self, overrides: dict | None = None, *, smoke: bool = False) -> dict:
        """Parameters for a run: the defaults, then smoke values, then `overrides`
        (validated: unknown names or wrong types raise ValueError)."""
        params = dict(self.parameters)
        if smoke:
            params.update(self.smoke)
        for name, value in (overrides or {}).items():
            params[name] = coerce_parameter(self, name, value)
        return params


def _toc_files(root: Path) -> list[str]:
    """Files listed in `_toc.yml` (root first), in reading order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
            for part in e.get("parts", []) if "parts" in e else []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def _read_notebook(path: Path):
    import jupytext

    return jupytext.read(path)


def _parameters_cell(nb) -> dict:
    """NAME = literal assignments of the cell tagged `parameters`."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            params = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    params[node.targets[0].id] = ast.literal_eval(node.value)
            return params
    return {}


def list_chapters(root: str | os.PathLike | None = None) -> list[Chapter]:
    """Every executable chapter of the book (notebooks with a `parameters` cell), in toc order."""
    root = find_root(root)
    out = []
    for f in _toc_files(root):
        path = root / (f if f.endswith(".md") else f + ".md")
        if not path.is_file():
            continue
        nb = _read_notebook(path)
        if not any(c.cell_type == "code" for c in nb.cells):
            continue
        params = _parameters_cell(nb)
        smoke = dict(nb.metadata.get("superpose", {}).get("smoke", {}))
        unknown = set(smoke) - set(params)
        if unknown:
            raise ValueError(f"{path.name}: smoke parameters {sorted(unknown)} are not in its parameters cell")
        out.append(Chapter(path.stem, path, params, smoke))
    return out


def get_chapter(name: str, root=None) -> Chapter:
    """The chapter called `name`; a ValueError lists the valid names otherwise."""
    chapters = list_chapters(root)
    for c in chapters:
        if c.name == name:
            return c
    raise ValueError(f"unknown chapter {name!r}: choose one of {', '.join(c.name for c in chapters)}")


def coerce_parameter(chapter: Chapter, name: str, value):
    """Convert `value` (a string from the command line, or a Python value) to the type of
    the chapter's default for `name`; raise ValueError naming the problem otherwise."""
    if name not in chapter.parameters:
        raise ValueError(
            f"unknown parameter {name!r} for chapter {chapter.name!r}: "
            f"choose one of {', '.join(sorted(chapter.parameters))}"
        )
    default = chapter.parameters[name]
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(
                f"parameter {name!r} of chapter {chapter.name!r} expects {kind.__name__} "
                f"(default {default!r}), got {value!r}"
            ) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if default is not None and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(
            f"parameter {name!r} of chapter {chapter.name!r} expects {kind.__name__} "
            f"(default {default!r}), got {value!r}"
        )
    if isinstance(default, (list, tuple)) and default and value:
        inner = type(default[0])
        if not all(isinstance(v, inner) or (inner is float and isinstance(v, int)) for v in value):
            raise ValueError(
                f"parameter {name!r} of chapter {chapter.name!r} expects a {kind.__name__} of "
                f"{inner.__name__}, got {value!r}"
            )
    return value


def execute_chapter(
    chapter: Chapter,
    out_dir: str | os.PathLike,
    parameters: dict | None = None,
    *,
    smoke: bool = False,
    progress: bool = False,
    env: dict | None = None,
) -> Path:
    """Execute `chapter` with papermill into `out_dir/<name>.ipynb` and return that path.

    Runs with the chapter's folder as working directory. The notebook is written to a
    temporary file and moved into place only when it is complete; on failure the partial
    notebook is kept as `<name>.failed.ipynb` for inspection and the error is re-raised.
    """
    import papermill as pm

    params = chapter.resolve(parameters, smoke=smoke)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{chapter.name}.ipynb"
    fd, tmp = tempfile.mkstemp(prefix=f".{chapter.name}.", suffix=".ipynb", dir=out_dir)
    os.close(fd)
    old_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        pm.execute_notebook(
            _read_notebook(chapter.path),
            tmp,
            parameters=params,
            cwd=str(chapter.path.parent),
            progress_bar=progress,
            kernel_name="python3",
            language="python",
        )
    except BaseException:
        failed = out_dir / f"{chapter.name}.failed.ipynb"
        if Path(tmp).exists():
            os.replace(tmp, failed)
        raise
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    os.replace(tmp, target)
    return target
