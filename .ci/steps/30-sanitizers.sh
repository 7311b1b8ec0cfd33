#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer,
# built header-only (SPARSEINFER_SEPARATE_KERNELS=OFF: every test compiles the
# kernels itself), so this build also checks the header-only mode, while the
# test command's build is the compiled mode's. Every test runs on the default
# path, and the tests that can depend on the path (.ci/isa-dependent-tests.sh)
# once more per other path this CPU has. Any sanitizer report fails the step.
set -euo pipefail
cd "$(dirname "$0")/../.."

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSPARSEINFER_SEPARATE_KERNELS=OFF \
    -DCMAKE_CXX_FLAGS="${CXXFLAGS:-} ${flags}" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined,float-cast-overflow" \
    -DSPARSEINFER_BUILD_EXAMPLES=OFF -DSPARSEINFER_BUILD_BENCHMARKS=OFF -DSPARSEINFER_HEADER_CHECK=OFF \
    -DSPARSEINFER_INSTALL=OFF >/dev/null
cmake --build build-asan -j2 --target sparseinfer_tests
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "--- header-only, default path"
ctest --test-dir build-asan --output-on-failure -j2
tests=$(.ci/isa-dependent-tests.sh build-asan)
best=$(scripts/cpu_isas.sh | tail -n 1)
for isa in $(scripts/cpu_isas.sh); do
    [ "$isa" = "$best" ] && continue  # the default path, run above
    echo "--- header-only, SPARSEINFER_ISA=$isa"
    SPARSEINFER_ISA=$isa ctest --test-dir build-asan --output-on-failure -j2 -R "$tests"
done
