// sparseinfer/detail/quant_sweep.hpp - the candidate sweep of the optimized
// quantizer (detail/quantizer.hpp): up to 16 candidate code assignments of
// one group evaluated in one pass over its values, lanes being candidates, on
// AVX-512, AVX2 or portable code that give the same sums bit for bit.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "cpu_features.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "../kernels/detail/target_region.hpp"
#define SPARSEINFER_QUANT_AVX2 1
#endif

// The sweeps' sums must be the same on every path and under any flags, so no
// multiply and add of theirs may fuse into an FMA (GCC fuses even intrinsics
// where the target has FMA; Clang fuses within an expression; MSVC does not
// fuse without /fp:contract).
#if defined(__clang__)
#define SPARSEINFER_NO_FMA_BEGIN
#define SPARSEINFER_NO_FMA_END
#define SPARSEINFER_NO_FMA_BODY _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define SPARSEINFER_NO_FMA_BEGIN _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=off\")")
#define SPARSEINFER_NO_FMA_END _Pragma("GCC pop_options")
#define SPARSEINFER_NO_FMA_BODY
#else
#define SPARSEINFER_NO_FMA_BEGIN
#define SPARSEINFER_NO_FMA_END
#define SPARSEINFER_NO_FMA_BODY
#endif

namespace sparseinfer::detail {

/// The sums a least-squares fit and its error need, for one candidate's codes.
struct CodePass {
    double s1 = 0, s2 = 0, sqy = 0;  ///< sum q, sum q^2, sum q y
    double sse = 0;                  ///< sum (d q + m - y)^2 for the candidate's (d, m)
};

/// Up to 16 candidates evaluated in one sweep over a group's normalized values
/// y: candidate k assigns codes q = clamp(round((y - off[k]) * sc[k]), 0, qmax)
/// and sums what a CodePass holds, for its own (d[k], m[k]). Candidates live in
/// lanes, so the sweep runs on vectors with no reduction across lanes, and
/// each candidate's sums run over the values in order (the same on every path).
/// An unused lane has sc = 0 and costs nothing but its slot.
struct PassBatch {
    static constexpr std::size_t width = 16;
    float off[width] = {}, sc[width] = {}, d[width] = {}, m[width] = {};
    float s1[width] = {}, s2[width] = {}, sqy[width] = {}, sse[width] = {};

    /// Sets lane k to codes under (off, sc) and the error of (d, m).
    void set(std::size_t k, double off_k, double sc_k, double d_k, double m_k) noexcept {
        off[k] = static_cast<float>(off_k);
        sc[k] = static_cast<float>(sc_k);
        d[k] = static_cast<float>(d_k);
        m[k] = static_cast<float>(m_k);
    }
    /// Lane k's sums.
    CodePass lane(std::size_t k) const noexcept { return {s1[k], s2[k], sqy[k], sse[k]}; }
};

SPARSEINFER_NO_FMA_BEGIN
/// The sweep in portable code; the compiler vectorizes the lane loop.
template <bool Sums, bool Sse>
void run_batch_portable(PassBatch& b, const float* y, std::size_t n, float qmax) noexcept {
    SPARSEINFER_NO_FMA_BODY
    constexpr std::size_t w = PassBatch::width;
    float a1[w] = {}, a2[w] = {}, a3[w] = {}, a4[w] = {};
    for (std::size_t i = 0; i < n; ++i) {
        const float v = y[i];
        for (std::size_t k = 0; k < w; ++k) {
            float t = (v - b.off[k]) * b.sc[k];
            t = t > 0.0f ? t : 0.0f;  // also maps NaN to 0
            t = t < qmax ? t : qmax;
            const auto q = static_cast<float>(static_cast<int>(t + 0.5f));
            if (Sums) {
                a1[k] += q;
                a2[k] += q * q;
                a3[k] += q * v;
            }
            if (Sse) {
                const float e = b.d[k] * q + b.m[k] - v;
                a4[k] += e * e;
            }
        }
    }
    for (std::size_t k = 0; k < w; ++k) {
        b.s1[k] = a1[k];
        b.s2[k] = a2[k];
        b.sqy[k] = a3[k];
        b.sse[k] = a4[k];
    }
}

#if defined(SPARSEINFER_QUANT_AVX2)
SPARSEINFER_TARGET_REGION_BEGIN("avx2", "avx2")
namespace quant_avx2 {
/// run_batch_portable on two 8-float registers per quantity, the same
/// operations in the same order (no FMA: each product is rounded before its
/// sum, as there), so the sums are equal bit for bit.
template <bool Sums, bool Sse>
void run_batch(PassBatch& b, const float* y, std::size_t n, float qmax) noexcept {
    const __m256 vq = _mm256_set1_ps(qmax), half = _mm256_set1_ps(0.5f), zero = _mm256_setzero_ps();
    for (std::size_t h = 0; h < PassBatch::width; h += 8) {
        const __m256 off = _mm256_loadu_ps(b.off + h), sc = _mm256_loadu_ps(b.sc + h), d = _mm256_loadu_ps(b.d + h),
                     m = _mm256_loadu_ps(b.m + h);
        __m256 a1 = zero, a2 = zero, a3 = zero, a4 = zero;
        for (std::size_t i = 0; i < n; ++i) {
            const __m256 v = _mm256_set1_ps(y[i]);
            // max(t, 0) gives 0 for a NaN t; min(t, qmax) gives t only when t < qmax: the ternaries.
            const __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_sub_ps(v, off), sc), zero), vq);
            const __m256 q = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(_mm256_add_ps(t, half)));
            if (Sums) {
                a1 = _mm256_add_ps(a1, q);
                a2 = _mm256_add_ps(a2, _mm256_mul_ps(q, q));
                a3 = _mm256_add_ps(a3, _mm256_mul_ps(q, v));
            }
            if (Sse) {
                const __m256 e = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(d, q), m), v);
                a4 = _mm256_add_ps(a4, _mm256_mul_ps(e, e));
            }
        }
        _mm256_storeu_ps(b.s1 + h, a1);
        _mm256_storeu_ps(b.s2 + h, a2);
        _mm256_storeu_ps(b.sqy + h, a3);
        _mm256_storeu_ps(b.sse + h, a4);
    }
}
}  // namespace quant_avx2
SPARSEINFER_TARGET_REGION_END

SPARSEINFER_TARGET_REGION_BEGIN("avx512f", "avx512f")
namespace quant_avx512 {
/// run_batch_portable on one 16-float register per quantity (as quant_avx2).
template <bool Sums, bool Sse>
void run_batch(PassBatch& b, const float* y, std::size_t n, float qmax) noexcept {
    const __m512 vq = _mm512_set1_ps(qmax), half = _mm512_set1_ps(0.5f), zero = _mm512_setzero_ps();
    const __m512 off = _mm512_loadu_ps(b.off), sc = _mm512_loadu_ps(b.sc), d = _mm512_loadu_ps(b.d),
                 m = _mm512_loadu_ps(b.m);
    __m512 a1 = zero, a2 = zero, a3 = zero, a4 = zero;
    for (std::size_t i = 0; i < n; ++i) {
        const __m512 v = _mm512_set1_ps(y[i]);
        const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_sub_ps(v, off), sc), zero), vq);
        const __m512 q = _mm512_cvtepi32_ps(_mm512_cvttps_epi32(_mm512_add_ps(t, half)));
        if (Sums) {
            a1 = _mm512_add_ps(a1, q);
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(q, q));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(q, v));
        }
        if (Sse) {
            const __m512 e = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(d, q), m), v);
            a4 = _mm512_add_ps(a4, _mm512_mul_ps(e, e));
        }
    }
    _mm512_storeu_ps(b.s1, a1);
    _mm512_storeu_ps(b.s2, a2);
    _mm512_storeu_ps(b.sqy, a3);
    _mm512_storeu_ps(b.sse, a4);
}
}  // namespace quant_avx512
SPARSEINFER_TARGET_REGION_END
#endif
SPARSEINFER_NO_FMA_END

/// The widest sweep the CPU has (0 portable, 1 AVX2, 2 AVX-512), capped as
/// the kernels are by SPARSEINFER_ISA ("avx2": no wider; "scalar": portable).
/// Every choice gives the same sums bit for bit.
inline int batch_path() noexcept {
#if defined(SPARSEINFER_QUANT_AVX2)
    static const int path = [] {
        const CpuFeatures cpu = detect_cpu_features();
        const char* isa = std::getenv("SPARSEINFER_ISA");
        int cap = 2;
        if (isa != nullptr && std::strcmp(isa, "avx2") == 0) cap = 1;
        if (isa != nullptr && std::strcmp(isa, "scalar") == 0) cap = 0;
        const int best = cpu.avx512 ? 2 : cpu.avx2 ? 1 : 0;
        return best < cap ? best : cap;
    }();
    return path;
#else
    return 0;
#endif
}

/// One sweep of a batch on the path batch_path() chose: the code sums when
/// Sums, the errors when Sse (the other outputs are left zero).
template <bool Sums, bool Sse>
void run_batch(PassBatch& b, const float* y, std::size_t n, float qmax) noexcept {
#if defined(SPARSEINFER_QUANT_AVX2)
    const int path = batch_path();
    if (path == 2) {
        quant_avx512::run_batch<Sums, Sse>(b, y, n, qmax);
        return;
    }
    if (path == 1) {
        quant_avx2::run_batch<Sums, Sse>(b, y, n, qmax);
        return;
    }
#endif
    run_batch_portable<Sums, Sse>(b, y, n, qmax);
}

}  // namespace sparseinfer::detail
