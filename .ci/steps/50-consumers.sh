#!/usr/bin/env bash
# The two ways users consume sparseinfer, tested from scratch in temporary
# directories:
#  - find_package: install a fresh build into an empty prefix, then build
#    tests/consumers/find_package against that prefix only;
#  - FetchContent: build tests/consumers/fetchcontent, which vendors this tree,
#    and prove that vendoring builds none of sparseinfer's tests, examples,
#    benchmarks or header checks (only the consumer's own target exists).
# Both consumer programs check their results against float computations.
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
# Only the prefix may satisfy find_package: no package registry, no source tree.
cmake -S tests/consumers/find_package -B "$tmp/fp" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
      -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF | grep 'sparseinfer '
found=$(sed -n 's/^sparseinfer_DIR:PATH=//p' "$tmp/fp/CMakeCache.txt")
prefix_real=$(cd "$tmp/prefix" && pwd -P)  # /tmp may be a symlink (macOS)
case "$found" in
    "$tmp/prefix"/* | "$prefix_real"/*) ;;
    *) echo "FAIL: find_package found sparseinfer in '$found', not in the fresh prefix" >&2; exit 1 ;;
esac
cmake --build "$tmp/fp" -j"$jobs"
"$tmp/fp/find_package_consumer"

echo "--- FetchContent: vendor this source tree"
mkdir -p "$tmp/fc/.cmake/api/v1/query" && touch "$tmp/fc/.cmake/api/v1/query/codemodel-v2"
cmake -S tests/consumers/fetchcontent -B "$tmp/fc" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release \
      -DSPARSEINFER_SOURCE_DIR="$src" >/dev/null
cmake --build "$tmp/fc" -j"$jobs"
"$tmp/fc/fetchcontent_consumer"

# Every build target of the vendoring project, from CMake's file API (asked for
# before configuring): only the consumer's own target may be there.
extra=$(python3 - "$tmp/fc/.cmake/api/v1/reply" <<'PY'
import glob, json, os, sys
reply = sys.argv[1]
index = json.load(open(max(glob.glob(os.path.join(reply, "index-*.json")))))
codemodel = next(o for o in index["objects"] if o["kind"] == "codemodel")
model = json.load(open(os.path.join(reply, codemodel["jsonFile"])))
names = {t["name"] for c in model["configurations"] for t in c["targets"]}
print("\n".join(sorted(names - {"fetchcontent_consumer", "sparseinfer"})))
PY
)
if [ -n "$extra" ]; then
    echo "FAIL: vendoring sparseinfer created targets besides the consumer's:" >&2
    echo "$extra" >&2
    exit 1
fi
for d in tests bench examples fuzz; do
    if [ -d "$tmp/fc/_deps/sparseinfer-build/$d" ]; then
        echo "FAIL: vendoring sparseinfer configured its $d/ directory" >&2
        exit 1
    fi
done
echo "consumers: find_package and FetchContent builds pass; vendoring builds only the consumer"
