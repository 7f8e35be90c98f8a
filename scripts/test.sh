#!/usr/bin/env bash
# Set up and run every test: the library, every chapter at smoke size (papermill), the
# strict book build from those notebooks, and the browser test of the built site.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "book,dev,dask"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" HF_HUB_OFFLINE=1 MPLBACKEND=Agg
.venv/bin/python -m pytest "$@"
