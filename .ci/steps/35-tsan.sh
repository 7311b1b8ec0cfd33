#!/usr/bin/env bash
# The threaded tests under ThreadSanitizer (Clang 14): the pool, the executor
# contract, the layer's threaded forward functions and the predictor's 8-bit
# product ([threads] test cases). Built in the compiled mode, so the SIMD
# kernels are compiled once (in the kernels unit), not in each test.
# packages: clang-14 libclang-rt-14-dev
set -euo pipefail
cd "$(dirname "$0")/../.."

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=thread"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 -DSPARSEINFER_SEPARATE_KERNELS=ON \
    -DCMAKE_CXX_FLAGS="${CXXFLAGS:-} ${flags}" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
    -DSPARSEINFER_BUILD_EXAMPLES=OFF -DSPARSEINFER_BUILD_BENCHMARKS=OFF -DSPARSEINFER_HEADER_CHECK=OFF
cmake --build build-tsan -j2 --target test_thread_pool test_executor test_sparse_ffn test_predictor
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
build-tsan/tests/test_thread_pool
build-tsan/tests/test_executor
build-tsan/tests/test_sparse_ffn "[threads]"
build-tsan/tests/test_predictor "[threads]"
