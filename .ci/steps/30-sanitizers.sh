#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer,
# in the compiled mode (SPARSEINFER_SEPARATE_KERNELS=ON), so the SIMD kernels
# are compiled once, in the kernels unit, with the sanitizers like everything
# else. (The header-only mode runs the whole suite in 25-neon-qemu.sh and the
# consumer programs in 50-consumers.sh; 10-standards.sh compiles every header
# alone in both modes.) Every test runs on the default path, and the tests
# that can depend on the path (.ci/isa-dependent-tests.sh) once more per other
# path this CPU has. Any sanitizer report fails the step.
set -euo pipefail
cd "$(dirname "$0")/../.."

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSPARSEINFER_SEPARATE_KERNELS=ON \
    -DCMAKE_CXX_FLAGS="${CXXFLAGS:-} ${flags}" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined,float-cast-overflow" \
    -DSPARSEINFER_BUILD_EXAMPLES=OFF -DSPARSEINFER_BUILD_BENCHMARKS=OFF -DSPARSEINFER_HEADER_CHECK=OFF \
    -DSPARSEINFER_INSTALL=OFF >/dev/null
cmake --build build-asan -j2 --target sparseinfer_tests
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "--- default path"
ctest --test-dir build-asan --output-on-failure -j2
tests=$(.ci/isa-dependent-tests.sh build-asan)
best=$(scripts/cpu_isas.sh | tail -n 1)
for isa in $(scripts/cpu_isas.sh); do
    [ "$isa" = "$best" ] && continue  # the default path, run above
    echo "--- SPARSEINFER_ISA=$isa"
    SPARSEINFER_ISA=$isa ctest --test-dir build-asan --output-on-failure -j2 -R "$tests"
done
