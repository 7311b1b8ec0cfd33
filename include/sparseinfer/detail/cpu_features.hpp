// sparseinfer/detail/cpu_features.hpp - which SIMD instruction sets this CPU and
// operating system can run.
//
// x86-64: CPUID for the instruction bits, XGETBV for whether the OS saves the
// AVX (YMM) and AVX-512 (opmask, ZMM) register state; a feature the compiler
// flags already enable (__AVX2__, __AVX512F__, ...) counts without asking.
// aarch64: NEON is always there; the dot-product extension (sdot/udot) comes
// from __ARM_FEATURE_DOTPROD or getauxval(AT_HWCAP) & HWCAP_ASIMDDP.
#pragma once

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define SPARSEINFER_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace sparseinfer::detail {

struct CpuFeatures {
    bool avx2 = false;          ///< AVX2 and FMA, with OS support for YMM state
    bool avx512 = false;        ///< AVX-512 F, BW, VL and DQ, with OS support for ZMM state
    bool avx512_vnni = false;   ///< plus AVX512-VNNI (vpdpbusd)
    bool neon = false;          ///< Advanced SIMD (always on aarch64)
    bool neon_dotprod = false;  ///< plus the dot-product extension (sdot)
};

#if defined(SPARSEINFER_X86)
/// The OS-enabled register state (XCR0); only valid when CPUID reports OSXSAVE.
inline unsigned long long read_xcr0() noexcept {
    unsigned eax = 0, edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

/// Detects the features once per call (cheap; callers cache the result).
inline CpuFeatures detect_cpu_features() noexcept {
    CpuFeatures f;
#if defined(SPARSEINFER_X86)
    unsigned a = 0, b = 0, c = 0, d = 0;
    bool avx_os = false, avx512_os = false, fma = false;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
        fma = (c >> 12) & 1;
        if (osxsave && avx) {
            const unsigned long long xcr0 = read_xcr0();
            avx_os = (xcr0 & 0x6) == 0x6;                 // SSE and AVX state
            avx512_os = avx_os && (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM_Hi256, Hi16_ZMM
        }
    }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        const bool avx2 = (b >> 5) & 1, f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1,
                   vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
        f.avx2 = avx_os && avx2 && fma;
        f.avx512 = f.avx2 && avx512_os && f512 && dq && bw && vl;
        f.avx512_vnni = f.avx512 && vnni;
    }
#endif
    // Flags that already enable an instruction set need no runtime check.
#if defined(__AVX2__) && defined(__FMA__)
    f.avx2 = true;
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
    f.avx512 = true;
#if defined(__AVX512VNNI__)
    f.avx512_vnni = true;
#endif
#endif
#if defined(__aarch64__)
    f.neon = true;
#if defined(__ARM_FEATURE_DOTPROD)
    f.neon_dotprod = true;
#elif defined(__linux__)
    f.neon_dotprod = (getauxval(AT_HWCAP) & (1UL << 20)) != 0;  // HWCAP_ASIMDDP
#endif
#endif
    return f;
}

}  // namespace sparseinfer::detail
