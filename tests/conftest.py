"""Shared test settings: CPU threads pinned (several processes share 2 cores in CI), no hub."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Kernels started by papermill import superpose_lib from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)

ARTIFACTS = ROOT / "artifacts"
EXECUTED = ARTIFACTS / "executed"
SITE = ARTIFACTS / "site"


def build_smoke_site():
    """Build artifacts/site/ strictly from the smoke-executed notebooks in artifacts/executed/
    (executing any chapter whose notebook is missing). Shared by the book-build test and the
    browser test; raises with the end of the build log on any warning."""
    from superpose_lib.book.run import build_site, execute_chapter, list_chapters

    for c in list_chapters(ROOT):
        if not (EXECUTED / f"{c.name}.ipynb").is_file():
            execute_chapter(c, EXECUTED, smoke=True)
    return build_site(EXECUTED, SITE, root=ROOT, log=ARTIFACTS / "book-build.log")
