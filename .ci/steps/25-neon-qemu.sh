#!/usr/bin/env bash
# packages: g++-aarch64-linux-gnu qemu-user
# Cross-builds the tests for aarch64 (armv8.2-a+dotprod, so both the neon and
# neon_dotprod paths exist) and runs them under qemu-user, once per NEON path.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-march=armv8.2-a+dotprod ${CXXFLAGS:-}" \
    -DSPARSEINFER_BUILD_EXAMPLES=OFF -DSPARSEINFER_BUILD_BENCHMARKS=OFF -DSPARSEINFER_HEADER_CHECK=OFF \
    -DSPARSEINFER_INSTALL=OFF
cmake --build build-aarch64 -j2
for isa in neon neon_dotprod; do
    echo "--- aarch64 under qemu, SPARSEINFER_ISA=$isa"
    SPARSEINFER_ISA=$isa ctest --test-dir build-aarch64 --output-on-failure -j2
done
