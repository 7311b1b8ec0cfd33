#!/usr/bin/env bash
# Runs every benchmark of a Release build, keeps their JSON in docs/data/ and
# regenerates docs/plots/*.png and docs/results.md from it:
#   cmake --workflow --preset release && scripts/run_benchmarks.sh build/release
# Extra arguments go to every benchmark (e.g. --quick for a smoke run).
# Run on a quiet machine: the figures are single-thread timings.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
shift || true
[ -d "$build/bench" ] || { echo "no $build/bench: build the release preset first" >&2; exit 1; }
mkdir -p docs/data
ran=0
for b in "$build"/bench/bench_*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    name=$(basename "$b")
    echo "=== $name"
    "$b" "$PWD/docs/data/$name.json" "$@"
    ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "no benchmark executables in $build/bench" >&2; exit 1; }
# The predictor's recall against rank on stories260K's real layers (no timings).
model=../shared/data/stories260K.bin
if [ -x "$build/examples/llama2c/llama2c" ] && [ -f "$model" ]; then
    echo "=== llama2c --recall-json"
    "$build/examples/llama2c/llama2c" "$model" --steps 128 --recall-json "$PWD/docs/data/stories260K_recall_vs_rank.json" >/dev/null
fi
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" scripts/plot_results.py --json-dir docs/data --out docs
