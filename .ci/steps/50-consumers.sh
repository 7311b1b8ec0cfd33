#!/usr/bin/env bash
# The two ways users consume sparseinfer, tested from scratch in temporary
# directories:
#  - find_package: install a fresh build into an empty prefix, then build
#    tests/consumers/find_package against that prefix only;
#  - FetchContent: build tests/consumers/fetchcontent, which vendors this tree,
#    and prove that vendoring builds none of sparseinfer's tests, examples,
#    benchmarks or header checks (only the consumer's own target exists).
# Both consumer programs check their results against float computations.
# Each consumer is built in both modes: header-only (sparseinfer::sparseinfer)
# and compiled (sparseinfer::kernels, SPARSEINFER_SEPARATE_KERNELS).
# packages: python3
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
jobs=2
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)


echo "--- find_package: install into an empty prefix"
cmake -S "$src" -B "$tmp/lib" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release \
      -DSPARSEINFER_BUILD_TESTS=OFF -DSPARSEINFER_BUILD_EXAMPLES=OFF \
      -DSPARSEINFER_BUILD_BENCHMARKS=OFF -DSPARSEINFER_HEADER_CHECK=OFF >/dev/null
cmake --build "$tmp/lib" -j"$jobs" >/dev/null
cmake --install "$tmp/lib" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/sparseinfer/sparseinfer.hpp" || {
    echo "FAIL: the install has no umbrella header sparseinfer/sparseinfer.hpp" >&2; exit 1; }
modes=(header-only separate)
for mode in "${modes[@]}"; do
separate=OFF
[ "$mode" = separate ] && separate=ON
echo "--- find_package, $mode"
# Only the prefix may satisfy find_package: no package registry, no source tree.
cmake -S tests/consumers/find_package -B "$tmp/fp-$mode" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
      -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF -DSPARSEINFER_CONSUMER_SEPARATE=$separate | grep 'sparseinfer '
found=$(sed -n 's/^sparseinfer_DIR:PATH=//p' "$tmp/fp-$mode/CMakeCache.txt")
prefix_real=$(cd "$tmp/prefix" && pwd -P)  # /tmp may be a symlink (macOS)
case "$found" in
    "$tmp/prefix"/* | "$prefix_real"/*) ;;
    *) echo "FAIL: find_package found sparseinfer in '$found', not in the fresh prefix" >&2; exit 1 ;;
esac
cmake --build "$tmp/fp-$mode" -j"$jobs"
"$tmp/fp-$mode/find_package_consumer"

echo "--- FetchContent: vendor this source tree, $mode"
fc="$tmp/fc-$mode"
mkdir -p "$fc/.cmake/api/v1/query" && touch "$fc/.cmake/api/v1/query/codemodel-v2"
cmake -S tests/consumers/fetchcontent -B "$fc" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release \
      -DSPARSEINFER_SOURCE_DIR="$src" -DSPARSEINFER_CONSUMER_SEPARATE=$separate >/dev/null
cmake --build "$fc" -j"$jobs"
"$fc/fetchcontent_consumer"

# Every build target of the vendoring project, from CMake's file API (asked for
# before configuring): only the consumer's own target and sparseinfer's two
# libraries may be there (the kernels unit is built only when linked).
extra=$(python3 - "$fc/.cmake/api/v1/reply" <<'PY'
import glob, json, os, sys
reply = sys.argv[1]
index = json.load(open(max(glob.glob(os.path.join(reply, "index-*.json")))))
codemodel = next(o for o in index["objects"] if o["kind"] == "codemodel")
model = json.load(open(os.path.join(reply, codemodel["jsonFile"])))
names = {t["name"] for c in model["configurations"] for t in c["targets"]}
print("\n".join(sorted(names - {"fetchcontent_consumer", "sparseinfer", "sparseinfer_kernels"})))
PY
)
if [ -n "$extra" ]; then
    echo "FAIL: vendoring sparseinfer created targets besides the consumer's:" >&2
    echo "$extra" >&2
    exit 1
fi
for d in tests bench examples fuzz; do
    if [ -d "$fc/_deps/sparseinfer-build/$d" ]; then
        echo "FAIL: vendoring sparseinfer configured its $d/ directory" >&2
        exit 1
    fi
done
if [ "$mode" = header-only ] && find "$fc" -name '*sparseinfer_kernels*' -type f | grep -q '\.\(a\|lib\|o\|obj\)$'; then
    echo "FAIL: the header-only consumer built sparseinfer's kernels unit" >&2
    exit 1
fi
done
echo "consumers: find_package and FetchContent builds pass in both modes; vendoring builds only the consumer (and the kernels unit when linked)"
