#!/usr/bin/env bash
# Reruns the tests whose result can depend on the kernel path once per path
# this CPU supports, with SPARSEINFER_ISA forcing the path, so every SIMD path
# runs every such test (the README's test command, run before the steps, ran
# the whole suite on the default path; .ci/isa-dependent-tests.sh says which
# tests can depend on the path).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The paths this CPU has (the kernels' own CPUID checks agree; test_dispatch
# fails if a forced path is not the active one).
tests=$(.ci/isa-dependent-tests.sh build)
echo "tests that read SPARSEINFER_ISA: $tests"
for isa in $(scripts/cpu_isas.sh); do
    echo "--- SPARSEINFER_ISA=$isa"
    SPARSEINFER_ISA=$isa ctest --test-dir build --output-on-failure -j2 -R "$tests"
done
echo "--- SPARSEINFER_ISA=bogus (checked calls must report it)"
SPARSEINFER_ISA=bogus build/tests/test_dispatch "[.bad-env]"
