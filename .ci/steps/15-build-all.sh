#!/usr/bin/env bash
# Everything the README's test command does not build: the examples and the
# benchmarks, in the same build directory (the compiled mode, like the tests;
# warnings are errors: .ci/run exports CXXFLAGS with -Werror; a changed
# CXXFLAGS needs a fresh build directory). The CMake header check
# (SPARSEINFER_HEADER_CHECK, one unit per public header) is left out: it
# compiles what 10-standards.sh compiles with g++ -std=c++17, and that step
# also compiles every header with clang++ and as C++20.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSPARSEINFER_HEADER_CHECK=OFF >/dev/null
cmake --build build -j2
# Every target of the default build exists after it: nothing was left out.
for src in examples/*.cpp bench/bench_*.cpp; do
    t="build/${src%.cpp}"
    [ -x "$t" ] || { echo "FAIL: $t was not built" >&2; exit 1; }
done
[ -x build/examples/llama2c/llama2c ] || { echo "FAIL: build/examples/llama2c/llama2c was not built" >&2; exit 1; }
[ -f build/libsparseinfer_kernels.a ] || { echo "FAIL: the kernels unit was not built" >&2; exit 1; }
echo "examples and benchmarks build (CXXFLAGS: ${CXXFLAGS:-})"
