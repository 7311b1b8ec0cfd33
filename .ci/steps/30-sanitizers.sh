#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer,
# built in the compiled mode (SPARSEINFER_SEPARATE_KERNELS: every test links
# sparseinfer::kernels, the one unit that holds the SIMD kernels), so this one
# build checks both the sanitizers and the compiled mode; the header-only mode
# is the README test command's build. Every test runs on the default path, and
# the tests that can depend on the path (.ci/isa-dependent-tests.sh) once more
# per other path this CPU has; test_dispatch fails if a forced path is not the
# active one. Any sanitizer report fails the step.
set -euo pipefail
cd "$(dirname "$0")/../.."

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSPARSEINFER_SEPARATE_KERNELS=ON \
    -DCMAKE_CXX_FLAGS="${CXXFLAGS:-} ${flags}" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined,float-cast-overflow" \
    -DSPARSEINFER_BUILD_EXAMPLES=OFF -DSPARSEINFER_BUILD_BENCHMARKS=OFF -DSPARSEINFER_HEADER_CHECK=OFF \
    -DSPARSEINFER_INSTALL=OFF >/dev/null
cmake --build build-asan -j2 --target sparseinfer_tests
# In the compiled mode a test's own unit sees declarations only: no test object
# defines a SIMD kernel (they are all in the kernels unit's object).
objs=$(find build-asan/tests -name 'test_*.o')
[ -n "$objs" ] || { echo "FAIL: no test objects under build-asan/tests" >&2; exit 1; }
for obj in $objs; do
    if nm -C --defined-only "$obj" | grep -Eq 'sparseinfer::kernels::(avx2|avx512|avx512_vnni|neon|neon_dotprod)::'; then
        echo "FAIL: $obj compiled SIMD kernels itself in the compiled mode" >&2
        exit 1
    fi
done
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "--- compiled mode, default path"
ctest --test-dir build-asan --output-on-failure -j2
tests=$(.ci/isa-dependent-tests.sh build-asan)
best=$(scripts/cpu_isas.sh | tail -n 1)
for isa in $(scripts/cpu_isas.sh); do
    [ "$isa" = "$best" ] && continue  # the default path, run above
    echo "--- compiled mode, SPARSEINFER_ISA=$isa"
    SPARSEINFER_ISA=$isa ctest --test-dir build-asan --output-on-failure -j2 -R "$tests"
done
