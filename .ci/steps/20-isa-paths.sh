#!/usr/bin/env bash
# The README test command's build (build/, the compiled mode: the tests link
# sparseinfer::kernels) checked twice over: no test's own object holds SIMD
# code, and the tests whose result can depend on the kernel path
# (.ci/isa-dependent-tests.sh) run once per path this CPU has, with
# SPARSEINFER_ISA forcing the path (test_dispatch fails if a forced path is not
# the active one). The test command ran the whole suite on the default path.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -q '^SPARSEINFER_SEPARATE_KERNELS:BOOL=ON' build/CMakeCache.txt ||
    { echo "FAIL: build/ is not in the compiled mode (SPARSEINFER_SEPARATE_KERNELS)" >&2; exit 1; }
objs=$(find build/tests -name 'test_*.o')
[ -n "$objs" ] || { echo "FAIL: no test objects under build/tests" >&2; exit 1; }
for obj in $objs; do
    if nm -C --defined-only "$obj" | grep -Eq 'sparseinfer::kernels::(avx2|avx512|avx512_vnni|neon|neon_dotprod)::'; then
        echo "FAIL: $obj compiled SIMD kernels itself in the compiled mode" >&2
        exit 1
    fi
done
echo "compiled mode: no test object holds SIMD kernel code"
tests=$(.ci/isa-dependent-tests.sh build)
echo "tests that read SPARSEINFER_ISA: $tests"
for isa in $(scripts/cpu_isas.sh); do
    echo "--- SPARSEINFER_ISA=$isa"
    SPARSEINFER_ISA=$isa ctest --test-dir build --output-on-failure -j2 -R "$tests"
done
echo "--- SPARSEINFER_ISA=bogus (checked calls must report it)"
SPARSEINFER_ISA=bogus build/tests/test_dispatch "[.bad-env]"
