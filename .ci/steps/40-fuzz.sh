#!/usr/bin/env bash
# Fuzzes each file parser for a bounded time (FUZZ_SECONDS, default 60 s each)
# with libFuzzer + ASan + UBSan; any crash, sanitizer report, exception other
# than format_error or single allocation over 64 MB fails the step. Two
# fuzzers run at a time (one per core), each for its full time.
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
    if "build-fuzz/$1" "$corpus" -max_total_time="$seconds" -malloc_limit_mb=64 -max_len=8192 \
        -artifact_prefix=build-fuzz/findings/"$1"- -print_final_stats=1 >"$log" 2>&1; then
        # One write per report, so the two fuzzers' reports do not interleave.
        printf -- '--- %s (%s s)\n%s\n' "$1" "$seconds" \
            "$(grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log")"
    else
        printf -- '--- %s (%s s)\n%s\nFAILED: %s found a problem; the input is in build-fuzz/findings/\n' \
            "$1" "$seconds" "$(tail -n 80 "$log")" "$1"
        return 1
    fi
}
# Two at a time; each pair is waited for, and any failure fails the step.
status=0
run fuzz_weights_load "$seeds/weights" & p1=$!
run fuzz_weights_view "$seeds/weights" & p2=$!
wait "$p1" || status=1
wait "$p2" || status=1
run fuzz_tensor_file "$seeds/tensors" & p1=$!
run fuzz_gguf "$seeds/gguf" & p2=$!
wait "$p1" || status=1
wait "$p2" || status=1
exit "$status"
