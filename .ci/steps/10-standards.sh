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

# The umbrella header includes every top-level public header but the two that
# need Eigen, and compiles without Eigen on the include path.
umbrella=include/sparseinfer/sparseinfer.hpp
eigen_only=(eigen.hpp predictor.hpp)
[ -f "$umbrella" ] || { echo "missing $umbrella (the umbrella header)" >&2; exit 1; }
for h in include/sparseinfer/*.hpp; do
    name=${h#include/sparseinfer/}
    [ "$name" = sparseinfer.hpp ] && continue
    if [[ " ${eigen_only[*]} " == *" $name "* ]]; then
        grep -q "^#include \"$name\"" "$umbrella" &&
            { echo "$umbrella includes $name, which needs Eigen" >&2; exit 1; }
    else
        grep -q "^#include \"$name\"" "$umbrella" ||
            { echo "$umbrella does not include $name" >&2; exit 1; }
    fi
done
echo '#include <sparseinfer/sparseinfer.hpp>' | g++ -std=c++17 -fsyntax-only -Wall -Wextra -Werror -Iinclude -x c++ - ||
    { echo "$umbrella does not compile without Eigen" >&2; exit 1; }
echo "umbrella header: includes every public header but ${eigen_only[*]}; needs no Eigen"

eigen_dir=/usr/include/eigen3
compilers=(g++ clang++)
standards=(c++17 c++20)
flags=(-fsyntax-only -Wall -Wextra -Wpedantic -Werror -Iinclude -isystem "$eigen_dir")

mapfile -t headers < <(find include/sparseinfer -name '*.hpp' | LC_ALL=C sort)
[ ${#headers[@]} -gt 0 ] || { echo "no public headers found under include/sparseinfer" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A header must compile when it is the first and only include of a translation
# unit, and twice (include guards / #pragma once). Two compilations at a time:
# the machine has two cores.
for cxx in "${compilers[@]}"; do
    command -v "$cxx" >/dev/null || { echo "$cxx not found" >&2; exit 1; }
done
for h in "${headers[@]}"; do
    name=${h#include/}
    printf '#include <%s>\n#include <%s>\n' "$name" "$name" >"$tmp/$(echo "$name" | tr '/.' '__').cpp"
done
export tmp
check_one() {  # compiler standard flags... header; prints a report and fails on any error or warning
    local cxx=$1 std=$2 name=${*: -1} out
    name=${name#include/}
    if ! out=$("$cxx" -std="$std" "${@:3:$#-3}" "$tmp/$(echo "$name" | tr '/.' '__').cpp" 2>&1); then
        printf 'FAIL: %s -std=%s %s\n%s\n' "$cxx" "$std" "$name" "$(echo "$out" | head -n 30)"
        return 1
    fi
}
export -f check_one
status=0
for cxx in "${compilers[@]}"; do
    for std in "${standards[@]}"; do
        printf '%s\0' "${headers[@]}" |
            xargs -0 -n 1 -P 2 bash -c 'check_one "$@"' _ "$cxx" "$std" "${flags[@]}" 2>&1 || status=1
        echo "$("$cxx" --version | head -n 1) -std=$std: ${#headers[@]} headers checked"
    done
done

if [ "$status" -ne 0 ]; then
    echo "some header compilations failed (above)" >&2
    exit 1
fi
echo "every public header compiles alone and warning-free (${compilers[*]} x ${standards[*]})"
