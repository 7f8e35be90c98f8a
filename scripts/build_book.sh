#!/usr/bin/env bash
# Set up and build the book into _build/html, executing every chapter at its full parameters.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "book"
# No MPLBACKEND=Agg here: the kernels need the inline backend for glued figures.
export HF_HUB_OFFLINE=1
rm -rf _build/.jupyter_cache
.venv/bin/jupyter-book build . --all -W -n --keep-going
echo "Built: $(pwd)/_build/html/index.html"
