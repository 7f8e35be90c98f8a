#!/usr/bin/env bash
# Set up and build the book into _build/html, executing every chapter at its full parameters.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "book"
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg
rm -rf _build/.jupyter_cache
.venv/bin/jupyter-book build . --all -W -n --keep-going
echo "Built: $(pwd)/_build/html/index.html"
