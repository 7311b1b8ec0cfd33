#!/usr/bin/env bash
# Prints a ctest -R regex matching the tests of a build directory whose result
# can depend on the kernel path: those whose executable holds the string
# SPARSEINFER_ISA, which is there exactly when the program can read that
# variable (the path choice in kernels/isa.hpp, or the test itself). The other
# tests give the same result on every path, so the CI steps that rerun the suite
# once per path run them once, on the default path.
#   ctest --test-dir build -R "$(.ci/isa-dependent-tests.sh build)"
# (test_kernels is not among them: it runs every path the CPU has in each run.)
# Fails when a test executable is missing, or when test_dispatch is not among
# the matches (the check is then broken, not the tests).
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
names=()
for src in "$(dirname "$0")"/../tests/test_*.cpp; do
    name=$(basename "$src" .cpp)
    exe="$build/tests/$name"
    [ -f "$exe" ] || { echo "$0: $exe was not built" >&2; exit 1; }
    if grep -q SPARSEINFER_ISA "$exe"; then names+=("$name"); fi
done
[[ " ${names[*]} " == *" test_dispatch "* ]] || { echo "$0: test_dispatch does not read SPARSEINFER_ISA" >&2; exit 1; }
echo "^($(IFS='|'; echo "${names[*]}"))\$"
