#!/usr/bin/env bash
# Benchmarks spar against OpenSpiel (pyspiel) and TextArena side by side, in one run.
# Installs the peers from PyPI into .venv-bench, builds spar in release, and prints a table
# of ratios (see docs/BENCHMARKS.md). Run by hand, not in CI:  bash scripts/bench_peers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv-bench/bin/python ]]; then
  python3 -m venv .venv-bench
fi
.venv-bench/bin/pip install --quiet open_spiel textarena
cargo build --release -p spar-cli
.venv-bench/bin/python scripts/bench_peers.py --spar target/release/spar "$@"
