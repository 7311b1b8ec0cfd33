#!/usr/bin/env bash
# packages: g++-aarch64-linux-gnu qemu-user
# Cross-builds the tests for aarch64 (armv8.2-a+dotprod, so both the neon and
# neon_dotprod paths exist), header-only and runs them under qemu-user: the whole suite on
# neon_dotprod, and the tests that can depend on the path
# (.ci/isa-dependent-tests.sh) on neon as well.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-march=armv8.2-a+dotprod ${CXXFLAGS:-}" \
    -DSPARSEINFER_BUILD_EXAMPLES=OFF -DSPARSEINFER_BUILD_BENCHMARKS=OFF -DSPARSEINFER_HEADER_CHECK=OFF \
    -DSPARSEINFER_SEPARATE_KERNELS=OFF -DSPARSEINFER_INSTALL=OFF >/dev/null
cmake --build build-aarch64 -j2 --target sparseinfer_tests
echo "--- aarch64 under qemu, SPARSEINFER_ISA=neon_dotprod"
SPARSEINFER_ISA=neon_dotprod ctest --test-dir build-aarch64 --output-on-failure -j2
echo "--- aarch64 under qemu, SPARSEINFER_ISA=neon"
SPARSEINFER_ISA=neon ctest --test-dir build-aarch64 --output-on-failure -j2 -R "$(.ci/isa-dependent-tests.sh build-aarch64)"
