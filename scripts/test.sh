#!/usr/bin/env bash
# Set up and run every test: the library, every chapter at smoke size (papermill), the
# strict book build from those notebooks, the browser test of the built site, the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "book,dev,dask"
bash scripts/setup_browser.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" HF_HUB_OFFLINE=1 MPLBACKEND=Agg
.venv/bin/ruff check superpose_lib tests bench _ext
.venv/bin/ruff format --check superpose_lib tests bench _ext
.venv/bin/python -m pytest "$@"
