#!/usr/bin/env bash
# Reruns the whole test suite once per kernel path this CPU supports, with
# SPARSEINFER_ISA forcing the path, so every SIMD path runs every test.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The paths this CPU has (the kernels' own CPUID checks agree; test_dispatch
# fails if a forced path is not the active one).
isas="scalar"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then isas="$isas avx2"; fi
if grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
    isas="$isas avx512"
    if grep -qw avx512_vnni /proc/cpuinfo; then isas="$isas avx512_vnni"; fi
fi
for isa in $isas; do
    echo "--- SPARSEINFER_ISA=$isa"
    SPARSEINFER_ISA=$isa ctest --test-dir build --output-on-failure -j2
done
echo "--- SPARSEINFER_ISA=bogus (checked calls must report it)"
SPARSEINFER_ISA=bogus build/tests/test_dispatch "[.bad-env]"
