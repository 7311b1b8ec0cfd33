#!/usr/bin/env bash
# Every public header compiles on its own, warning-free, with GCC and Clang, as
# C++17 and as C++20; and the version macros agree with the CMake project version.
# packages: clang
set -euo pipefail
cd "$(dirname "$0")/../.."

# The version in version.hpp must be the one in project(... VERSION x.y.z).
cmake_version=$(sed -n '/^project(/,/)/s/^ *VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt | head -n 1)
header=include/sparseinfer/version.hpp
macro() { sed -n "s/^#define SPARSEINFER_VERSION_$1 \"\{0,1\}\([0-9.]*\)\"\{0,1\}.*/\1/p" "$header"; }
header_version="$(macro MAJOR).$(macro MINOR).$(macro PATCH)"
if [ -z "$cmake_version" ] || [ "$cmake_version" != "$header_version" ] || [ "$(macro STRING)" != "$header_version" ]; then
    echo "version mismatch: CMakeLists.txt '$cmake_version', $header numbers '$header_version'," \
         "string '$(macro STRING)'" >&2
    exit 1
fi
echo "version $cmake_version (CMakeLists.txt and $header agree)"

eigen_dir=/usr/include/eigen3
compilers=(g++ clang++)
standards=(c++17 c++20)
flags=(-fsyntax-only -Wall -Wextra -Wpedantic -Werror -Iinclude -isystem "$eigen_dir")

mapfile -t headers < <(find include/sparseinfer -name '*.hpp' | LC_ALL=C sort)
[ ${#headers[@]} -gt 0 ] || { echo "no public headers found under include/sparseinfer" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A header must compile when it is the first and only include of a translation
# unit, and twice (include guards / #pragma once).
failures=0
for cxx in "${compilers[@]}"; do
    command -v "$cxx" >/dev/null || { echo "$cxx not found" >&2; exit 1; }
    for std in "${standards[@]}"; do
        for h in "${headers[@]}"; do
            name=${h#include/}
            src="$tmp/$(echo "$name" | tr '/.' '__').cpp"
            printf '#include <%s>\n#include <%s>\n' "$name" "$name" >"$src"
            if ! out=$("$cxx" -std="$std" "${flags[@]}" "$src" 2>&1); then
                echo "FAIL: $cxx -std=$std $name"
                echo "$out" | head -n 30
                failures=$((failures + 1))
            fi
        done
        echo "$("$cxx" --version | head -n 1) -std=$std: ${#headers[@]} headers checked"
    done
done

if [ "$failures" -gt 0 ]; then
    echo "$failures header compilations failed" >&2
    exit 1
fi
echo "every public header compiles alone and warning-free (${compilers[*]} x ${standards[*]})"
