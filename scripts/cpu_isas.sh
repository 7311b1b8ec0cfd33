#!/usr/bin/env bash
# Prints the kernel paths (SPARSEINFER_ISA values) this CPU can run, one a line,
# weakest first: scalar always, then avx2 / avx512 / avx512_vnni on x86-64 or
# neon / neon_dotprod on arm64. Used to run the tests once per path:
#   for isa in $(scripts/cpu_isas.sh); do SPARSEINFER_ISA=$isa ctest --test-dir build; done
# The conditions mirror the runtime detection in include/sparseinfer/detail/cpu_features.hpp.
set -euo pipefail
echo scalar
case "$(uname -m)" in
    x86_64 | amd64)
        if [ -r /proc/cpuinfo ]; then
            flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
        else  # macOS on Intel
            flags=" $(sysctl -n machdep.cpu.features machdep.cpu.leaf7_features 2>/dev/null | tr 'A-Z.' 'a-z_' | tr '\n' ' ') "
            flags=${flags//avx512vnni/avx512_vnni}
        fi
        has() { for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
        has avx2 fma && echo avx2
        has avx512f avx512bw avx512vl avx512dq && {
            echo avx512
            has avx512_vnni && echo avx512_vnni
        }
        ;;
    aarch64 | arm64)
        echo neon
        if [ -r /proc/cpuinfo ]; then  # Linux: HWCAP_ASIMDDP, as the library reads it
            grep -m1 '^Features' /proc/cpuinfo | grep -qw asimddp && echo neon_dotprod
        elif echo | "${CXX:-c++}" -dM -E -x c++ - 2>/dev/null | grep -q __ARM_FEATURE_DOTPROD; then
            # macOS: no runtime query in the library, so the compiler's target decides.
            echo neon_dotprod
        fi
        ;;
esac
