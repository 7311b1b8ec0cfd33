#!/usr/bin/env bash
# The compiled mode: the whole test suite built with SPARSEINFER_SEPARATE_KERNELS
# (every test links sparseinfer::kernels, the one unit that holds the SIMD
# kernels), then run once per kernel path this CPU has; test_dispatch fails if
# a forced path is not the active one. Run by the hosted CI's compiled-mode job
# with each compiler; the local .ci/run covers the compiled mode in its
# sanitizer build (steps/30-sanitizers.sh) instead, to build the suite once less.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-separate -DCMAKE_BUILD_TYPE=Release -DSPARSEINFER_SEPARATE_KERNELS=ON \
    -DSPARSEINFER_BUILD_EXAMPLES=OFF -DSPARSEINFER_BUILD_BENCHMARKS=OFF -DSPARSEINFER_HEADER_CHECK=OFF \
    -DSPARSEINFER_INSTALL=OFF >/dev/null
cmake --build build-separate -j2 --target sparseinfer_tests
for isa in $(scripts/cpu_isas.sh); do
    echo "--- compiled mode, SPARSEINFER_ISA=$isa"
    SPARSEINFER_ISA=$isa ctest --test-dir build-separate --output-on-failure -j2
done
