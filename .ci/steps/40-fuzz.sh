#!/usr/bin/env bash
# Fuzzes each file parser for a bounded time (FUZZ_SECONDS, default 60 s each)
# with libFuzzer + ASan + UBSan; any crash, sanitizer report, exception other
# than format_error or single allocation over 64 MB fails the step.
# packages: clang libclang-rt-14-dev
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${FUZZ_SECONDS:-60}"
cxx="$(command -v clang++ || command -v clang++-14)"
cmake -S fuzz -B build-fuzz -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-fuzz -j2

seeds=build-fuzz/seeds
rm -rf "$seeds" build-fuzz/corpus
build-fuzz/make_seeds "$seeds"
run() {  # target, seed dir
    local corpus="build-fuzz/corpus/$1" log="build-fuzz/$1.log"
    mkdir -p "$corpus" build-fuzz/findings
    cp "$2"/* "$corpus"/
    echo "--- $1 (${seconds} s)"
    if "build-fuzz/$1" "$corpus" -max_total_time="$seconds" -malloc_limit_mb=64 -max_len=8192 \
        -artifact_prefix=build-fuzz/findings/"$1"- -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log"
    else
        tail -n 80 "$log"
        echo "FAILED: $1 found a problem; the input is in build-fuzz/findings/"
        return 1
    fi
}
run fuzz_weights_load "$seeds/weights"
run fuzz_weights_view "$seeds/weights"
run fuzz_tensor_file "$seeds/tensors"
run fuzz_gguf "$seeds/gguf"
