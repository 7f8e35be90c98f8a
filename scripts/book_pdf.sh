#!/usr/bin/env bash
# The whole book as one PDF, _build/html/superpose-book.pdf, after scripts/build_book.sh:
# the chapters that build executed (_build/superpose_executed/, every output kept) are
# rebuilt as one page with execution off and printed by headless Chromium (Debian's
# chromium, or SUPERPOSE_CHROMIUM).
# Nothing is executed twice and nothing is downloaded (superpose_lib.book.render.book_pdf).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_browser.sh
.venv/bin/python - <<'PY'
from pathlib import Path

from superpose_lib.book.run import build_site
from superpose_lib.book.render import book_pdf

root = Path(".").resolve()
work = root / "_build" / "pdf"
work.mkdir(parents=True, exist_ok=True)
build_site(root / "_build" / "superpose_executed" / "book", work / "site", root=root, log=work / "build.log")
print("PDF:", book_pdf(work / "site-src", root / "_build" / "html" / "superpose-book.pdf", log=work / "singlehtml.log"))
PY
