#!/usr/bin/env bash
# Everything the README's test command does not build: the examples, the
# benchmarks and the one-translation-unit-per-header check, in the same build
# directory (warnings are errors: .ci/run exports CXXFLAGS with -Werror; a
# changed CXXFLAGS needs a fresh build directory).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f build/CMakeCache.txt ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
# Every target of the default build exists after it: nothing was left out.
for src in examples/*.cpp bench/bench_*.cpp; do
    t="build/${src%.cpp}"
    [ -x "$t" ] || { echo "FAIL: $t was not built" >&2; exit 1; }
done
[ -x build/examples/llama2c/llama2c ] || { echo "FAIL: build/examples/llama2c/llama2c was not built" >&2; exit 1; }
echo "examples, benchmarks and header checks build (CXXFLAGS: ${CXXFLAGS:-})"
