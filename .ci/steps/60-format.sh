#!/usr/bin/env bash
# Formatting and static analysis:
#  - every C++ file under include/ tests/ examples/ bench/ fuzz/ is formatted
#    as .clang-format says (fix with the command printed on failure);
#  - clang-tidy (.clang-tidy) finds nothing in any public header nor in the
#    consumer program.
# packages: clang-format clang-tidy
set -euo pipefail
cd "$(dirname "$0")/../.."

pick() { for t in "$@"; do command -v "$t" >/dev/null && { echo "$t"; return; }; done; echo "none of: $*" >&2; exit 1; }
# The Debian 12 / Ubuntu 22.04 version first: formatting differs between versions.
format=$(pick clang-format-14 clang-format)
tidy=$(pick clang-tidy-14 clang-tidy)
echo "$("$format" --version)"

mapfile -t sources < <(find include tests examples bench fuzz \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \
                       -o -name '*.cc' \) -type f 2>/dev/null | LC_ALL=C sort)
unformatted=()
for f in "${sources[@]}"; do
    "$format" --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if [ ${#unformatted[@]} -gt 0 ]; then
    echo "FAIL: ${#unformatted[@]} of ${#sources[@]} files are not formatted; the first differences:" >&2
    for f in "${unformatted[@]:0:3}"; do "$format" "$f" | diff -u "$f" - | head -n 20 >&2 || true; done
    echo "files: ${unformatted[*]}" >&2
    echo "fix with: $format -i \$(find include tests examples bench fuzz -name '*.hpp' -o -name '*.cpp')" >&2
    exit 1
fi
echo "clang-format: ${#sources[@]} files formatted"

# clang-tidy: one translation unit that includes every public header (a finding
# in any header is reported once, through HeaderFilterRegex; that each header
# compiles alone is 10-standards.sh's job), plus the consumer program.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
find include/sparseinfer -name '*.hpp' | LC_ALL=C sort | sed 's|^include/\(.*\)|#include <\1>|' >"$tmp/all_headers.cpp"
units=("$tmp/all_headers.cpp")
[ -e include/sparseinfer/sparseinfer.hpp ] && units+=(tests/consumers/main.cpp)

export tidy tmp
# Two at a time: the machine has two cores.
if ! printf '%s\0' "${units[@]}" |
     xargs -0 -n 1 -P 2 sh -c '"$tidy" --quiet --config-file=.clang-tidy "$0" -- -std=c++17 -Iinclude \
                                -isystem /usr/include/eigen3 >"$tmp/$(basename "$0").log" 2>&1 ||
                                { cat "$tmp/$(basename "$0").log"; exit 1; }' 2>&1; then
    echo "FAIL: clang-tidy findings above" >&2
    exit 1
fi
echo "clang-tidy: $(grep -c include "$tmp/all_headers.cpp") public headers and ${#units[@]} translation units, no findings"
