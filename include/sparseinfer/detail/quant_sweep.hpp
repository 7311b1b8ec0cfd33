// sparseinfer/detail/quant_sweep.hpp - the candidate sweep of the optimized
// quantizer (detail/quantizer.hpp): up to 16 candidate code assignments of
// one group evaluated in one pass over its values, lanes being candidates, on
// AVX-512, AVX2 or portable code that give the same sums bit for bit; with the
// sweep's companions on the same paths and under the same rule: the
// least-squares fit of every lane (LaneFits) and a group's error under two
// decoded parameter pairs (SsePair).
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
/// Only lanes [0, lanes) are swept; the outputs of the others are zero. A
/// batch of at most 8 lanes fills one AVX2 register, so it costs half as much
/// there. An unused lane below `lanes` has sc = 0 and costs its slot only.
struct PassBatch {
    static constexpr std::size_t width = 16;
    float off[width] = {}, sc[width] = {}, d[width] = {}, m[width] = {};
    float s1[width] = {}, s2[width] = {}, sqy[width] = {}, sse[width] = {};
    std::size_t lanes = width;  ///< lanes swept, in [1, width]

    /// Sets lane k to codes under (off, sc) and the error of (d, m).
    void set(std::size_t k, double off_k, double sc_k, double d_k, double m_k) noexcept {
        off[k] = static_cast<float>(off_k);
        sc[k] = static_cast<float>(sc_k);
        d[k] = static_cast<float>(d_k);
        m[k] = static_cast<float>(m_k);
    }
    /// Lane k's sums.
    CodePass lane(std::size_t k) const noexcept { return {s1[k], s2[k], sqy[k], sse[k]}; }
    /// Zeroes the outputs of the lanes not swept (the portable sweep ends with
    /// it; the vector sweeps mask their stores instead, as a wide load of
    /// lanes written by scalar stores would wait for them).
    void clear_unswept() noexcept {
        for (std::size_t k = lanes; k < width; ++k) s1[k] = s2[k] = sqy[k] = sse[k] = 0.0f;
    }
};

/// The least-squares fit of each lane of a swept batch: the (d, m) minimising
/// sum (d q + m - y)^2 over the lane's codes, from its sums, n values and their
/// sum sy, in double. ok[k] when the codes determine a positive scale; then
/// `next` lane k is set (as PassBatch::set) to codes nearest under that fit and
/// its error, else zero (unused). Lanes with zero sums (unused ones) are never
/// ok; next sweeps as many lanes as the batch. The same operations on the same
/// values on every path, without branches.
struct LaneFits {
    double d[PassBatch::width], m[PassBatch::width];
    bool ok[PassBatch::width];
};

SPARSEINFER_NO_FMA_BEGIN
/// The sweep in portable code; the compiler vectorizes the lane loop. With
/// Clamp false the caller guarantees every off[k] is 0 and 0 <= y[i] * sc[k] <
/// qmax + 0.5, where the offset and the clamps change nothing: the codes, so
/// the sums, are those of Clamp true, for fewer operations.
template <bool Sums, bool Sse, bool Clamp = true>
void run_batch_portable(PassBatch& b, const float* y, std::size_t n, float qmax) noexcept {
    SPARSEINFER_NO_FMA_BODY
    constexpr std::size_t w = PassBatch::width;
    float a1[w] = {}, a2[w] = {}, a3[w] = {}, a4[w] = {};
    const std::size_t lanes = b.lanes;
    for (std::size_t i = 0; i < n; ++i) {
        const float v = y[i];
        for (std::size_t k = 0; k < lanes; ++k) {
            float t = Clamp ? (v - b.off[k]) * b.sc[k] : v * b.sc[k];
            if (Clamp) {
                t = t > 0.0f ? t : 0.0f;  // also maps NaN to 0
                t = t < qmax ? t : qmax;
            }
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
    b.clear_unswept();
}

/// LaneFits in portable code.
inline void fit_lanes_portable(const PassBatch& b, double n, double sy, LaneFits& f, PassBatch& next) noexcept {
    SPARSEINFER_NO_FMA_BODY
    next.lanes = b.lanes;
    for (std::size_t k = 0; k < PassBatch::width; ++k) {
        const double s1 = b.s1[k], s2 = b.s2[k], sqy = b.sqy[k];
        const double det = n * s2 - s1 * s1;
        const double inv_det = 1.0 / det;
        const double d = (n * sqy - s1 * sy) * inv_det;
        const double m = (s2 * sy - s1 * sqy) * inv_det;
        const bool ok = (det > 0) & (d > 0);
        f.d[k] = d;
        f.m[k] = m;
        f.ok[k] = ok;
        next.off[k] = ok ? static_cast<float>(m) : 0.0f;
        next.sc[k] = ok ? static_cast<float>(1.0 / d) : 0.0f;
        next.d[k] = ok ? static_cast<float>(d) : 0.0f;
        next.m[k] = ok ? static_cast<float>(m) : 0.0f;
    }
}

/// The squared error of a group's values x under two parameter pairs
/// (d[j], m[j]) with nearest codes (round half up, clamped to [0, qmax]), in
/// double: sse[j] is four partial sums, value i going to partial i % 4 in
/// order (the tail after the last four whole too), added as (p0 + p1) + (p2 + p3).
/// Four partials are one 4-double register, so every path sums the same way.
struct SsePair {
    double d[2] = {}, m[2] = {};
    double sse[2] = {};
};

/// One value's term of SsePair for pair j, into partial `part`.
inline void sse_pair_term(double& part, double v, double d, double m, double id, double dq) noexcept {
    SPARSEINFER_NO_FMA_BODY
    double t = (v - m) * id;
    t = t > 0 ? t : 0.0;  // also maps NaN to 0
    t = t < dq ? t : dq;
    const double e = d * static_cast<double>(static_cast<int>(t + 0.5)) + m - v;
    part += e * e;
}

/// The inverse scale SsePair's codes use: 0 for a scale that is not positive
/// (every code 0).
inline double sse_pair_inverse(double d) noexcept { return d > 0 ? 1.0 / d : 0.0; }

/// SsePair in portable code.
inline void sse_pair_portable(SsePair& p, const float* x, std::size_t n, int qmax) noexcept {
    SPARSEINFER_NO_FMA_BODY
    const auto dq = static_cast<double>(qmax);
    for (std::size_t j = 0; j < 2; ++j) {
        const double id = sse_pair_inverse(p.d[j]);
        double part[4] = {};
        std::size_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (std::size_t k = 0; k < 4; ++k) sse_pair_term(part[k], x[i + k], p.d[j], p.m[j], id, dq);
        for (std::size_t k = 0; i < n; ++i, ++k) sse_pair_term(part[k], x[i], p.d[j], p.m[j], id, dq);
        p.sse[j] = (part[0] + part[1]) + (part[2] + part[3]);
    }
}

#if defined(SPARSEINFER_QUANT_AVX2)
SPARSEINFER_TARGET_REGION_BEGIN("avx2", "avx2")
namespace quant_avx2 {
/// One 8-lane half of run_batch_portable's step for one value: the code under
/// (off, sc) and the sums it adds (no FMA: each product is rounded before its
/// sum, as there).
template <bool Sums, bool Sse, bool Clamp>
SPARSEINFER_KERNEL_INLINE void step(__m256 v, __m256 off, __m256 sc, __m256 d, __m256 m, __m256 vq, __m256& a1,
                                    __m256& a2, __m256& a3, __m256& a4) noexcept {
    const __m256 zero = _mm256_setzero_ps();
    // max(t, 0) gives 0 for a NaN t; min(t, qmax) gives t only when t < qmax: the ternaries.
    __m256 t = _mm256_mul_ps(Clamp ? _mm256_sub_ps(v, off) : v, sc);
    if (Clamp) t = _mm256_min_ps(_mm256_max_ps(t, zero), vq);
    const __m256 q = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_set1_ps(0.5f))));
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

/// run_batch_portable on two 8-float registers per quantity, both halves in
/// one pass over the values (their sums are independent chains), the same
/// operations in the same order, so the sums are equal bit for bit; the
/// second half only when the batch sweeps more than 8 lanes.
template <bool Sums, bool Sse, bool Clamp = true>
void run_batch(PassBatch& b, const float* y, std::size_t n, float qmax) noexcept {
    const __m256 vq = _mm256_set1_ps(qmax), zero = _mm256_setzero_ps();
    const __m256 off0 = _mm256_loadu_ps(b.off), sc0 = _mm256_loadu_ps(b.sc), d0 = _mm256_loadu_ps(b.d),
                 m0 = _mm256_loadu_ps(b.m);
    const __m256 off1 = _mm256_loadu_ps(b.off + 8), sc1 = _mm256_loadu_ps(b.sc + 8), d1 = _mm256_loadu_ps(b.d + 8),
                 m1 = _mm256_loadu_ps(b.m + 8);
    __m256 a1 = zero, a2 = zero, a3 = zero, a4 = zero, c1 = zero, c2 = zero, c3 = zero, c4 = zero;
    if (b.lanes <= 8) {
        for (std::size_t i = 0; i < n; ++i)
            step<Sums, Sse, Clamp>(_mm256_set1_ps(y[i]), off0, sc0, d0, m0, vq, a1, a2, a3, a4);
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            const __m256 v = _mm256_set1_ps(y[i]);
            step<Sums, Sse, Clamp>(v, off0, sc0, d0, m0, vq, a1, a2, a3, a4);
            step<Sums, Sse, Clamp>(v, off1, sc1, d1, m1, vq, c1, c2, c3, c4);
        }
    }
    // Lanes from b.lanes on are stored as zero.
    const __m256i swept = _mm256_set1_epi32(static_cast<int>(b.lanes));
    const __m256 k0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(swept, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    const __m256 k1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(swept, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15)));
    _mm256_storeu_ps(b.s1, _mm256_and_ps(a1, k0));
    _mm256_storeu_ps(b.s2, _mm256_and_ps(a2, k0));
    _mm256_storeu_ps(b.sqy, _mm256_and_ps(a3, k0));
    _mm256_storeu_ps(b.sse, _mm256_and_ps(a4, k0));
    _mm256_storeu_ps(b.s1 + 8, _mm256_and_ps(c1, k1));
    _mm256_storeu_ps(b.s2 + 8, _mm256_and_ps(c2, k1));
    _mm256_storeu_ps(b.sqy + 8, _mm256_and_ps(c3, k1));
    _mm256_storeu_ps(b.sse + 8, _mm256_and_ps(c4, k1));
}

/// sse_pair_portable with the four partials of each pair in one register.
inline void sse_pair(SsePair& p, const float* x, std::size_t n, int qmax) noexcept {
    SPARSEINFER_NO_FMA_BODY
    const auto dq = static_cast<double>(qmax);
    const __m256d vdq = _mm256_set1_pd(dq), half = _mm256_set1_pd(0.5), zero = _mm256_setzero_pd();
    const double id0 = sse_pair_inverse(p.d[0]), id1 = sse_pair_inverse(p.d[1]);
    const __m256d d0 = _mm256_set1_pd(p.d[0]), m0 = _mm256_set1_pd(p.m[0]), i0 = _mm256_set1_pd(id0);
    const __m256d d1 = _mm256_set1_pd(p.d[1]), m1 = _mm256_set1_pd(p.m[1]), i1 = _mm256_set1_pd(id1);
    // The ternaries of sse_pair_term: max(t, 0) gives 0 for a NaN t, min(t, qmax) gives t only when t < qmax.
    auto term = [&](__m256d v, __m256d d, __m256d m, __m256d id, __m256d& acc) {
        const __m256d t = _mm256_min_pd(_mm256_max_pd(_mm256_mul_pd(_mm256_sub_pd(v, m), id), zero), vdq);
        const __m256d q = _mm256_cvtepi32_pd(_mm256_cvttpd_epi32(_mm256_add_pd(t, half)));
        const __m256d e = _mm256_sub_pd(_mm256_add_pd(_mm256_mul_pd(d, q), m), v);
        acc = _mm256_add_pd(acc, _mm256_mul_pd(e, e));
    };
    __m256d a0 = zero, a1 = zero;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        term(v, d0, m0, i0, a0);
        term(v, d1, m1, i1, a1);
    }
    double part0[4], part1[4];
    _mm256_storeu_pd(part0, a0);
    _mm256_storeu_pd(part1, a1);
    for (std::size_t k = 0; i < n; ++i, ++k) {
        sse_pair_term(part0[k], x[i], p.d[0], p.m[0], id0, dq);
        sse_pair_term(part1[k], x[i], p.d[1], p.m[1], id1, dq);
    }
    p.sse[0] = (part0[0] + part0[1]) + (part0[2] + part0[3]);
    p.sse[1] = (part1[0] + part1[1]) + (part1[2] + part1[3]);
}

/// fit_lanes_portable four lanes at a time (a failed lane's outputs are masked to +0).
inline void fit_lanes(const PassBatch& b, double n, double sy, LaneFits& f, PassBatch& next) noexcept {
    next.lanes = b.lanes;
    const __m256d vn = _mm256_set1_pd(n), vsy = _mm256_set1_pd(sy), one = _mm256_set1_pd(1.0),
                  zero = _mm256_setzero_pd();
    for (std::size_t k = 0; k < PassBatch::width; k += 4) {
        const __m256d s1 = _mm256_cvtps_pd(_mm_loadu_ps(b.s1 + k)), s2 = _mm256_cvtps_pd(_mm_loadu_ps(b.s2 + k)),
                      sqy = _mm256_cvtps_pd(_mm_loadu_ps(b.sqy + k));
        const __m256d det = _mm256_sub_pd(_mm256_mul_pd(vn, s2), _mm256_mul_pd(s1, s1));
        const __m256d inv_det = _mm256_div_pd(one, det);
        const __m256d d = _mm256_mul_pd(_mm256_sub_pd(_mm256_mul_pd(vn, sqy), _mm256_mul_pd(s1, vsy)), inv_det);
        const __m256d m = _mm256_mul_pd(_mm256_sub_pd(_mm256_mul_pd(s2, vsy), _mm256_mul_pd(s1, sqy)), inv_det);
        const __m256d ok = _mm256_and_pd(_mm256_cmp_pd(det, zero, _CMP_GT_OQ), _mm256_cmp_pd(d, zero, _CMP_GT_OQ));
        _mm256_storeu_pd(f.d + k, d);
        _mm256_storeu_pd(f.m + k, m);
        const int bits = _mm256_movemask_pd(ok);
        for (std::size_t j = 0; j < 4; ++j) f.ok[k + j] = ((bits >> j) & 1) != 0;
        _mm_storeu_ps(next.off + k, _mm256_cvtpd_ps(_mm256_and_pd(m, ok)));
        _mm_storeu_ps(next.sc + k, _mm256_cvtpd_ps(_mm256_and_pd(_mm256_div_pd(one, d), ok)));
        _mm_storeu_ps(next.d + k, _mm256_cvtpd_ps(_mm256_and_pd(d, ok)));
        _mm_storeu_ps(next.m + k, _mm256_cvtpd_ps(_mm256_and_pd(m, ok)));
    }
}
}  // namespace quant_avx2
SPARSEINFER_TARGET_REGION_END

SPARSEINFER_TARGET_REGION_BEGIN("avx512f", "avx512f")
namespace quant_avx512 {
/// run_batch_portable on one 16-float register per quantity (as quant_avx2).
template <bool Sums, bool Sse, bool Clamp = true>
void run_batch(PassBatch& b, const float* y, std::size_t n, float qmax) noexcept {
    const __m512 vq = _mm512_set1_ps(qmax), half = _mm512_set1_ps(0.5f), zero = _mm512_setzero_ps();
    const __m512 off = _mm512_loadu_ps(b.off), sc = _mm512_loadu_ps(b.sc), d = _mm512_loadu_ps(b.d),
                 m = _mm512_loadu_ps(b.m);
    __m512 a1 = zero, a2 = zero, a3 = zero, a4 = zero;
    for (std::size_t i = 0; i < n; ++i) {
        const __m512 v = _mm512_set1_ps(y[i]);
        __m512 t = _mm512_mul_ps(Clamp ? _mm512_sub_ps(v, off) : v, sc);
        if (Clamp) t = _mm512_min_ps(_mm512_max_ps(t, zero), vq);
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
    // Lanes from b.lanes on are stored as zero.
    const auto swept = static_cast<__mmask16>((1u << b.lanes) - 1u);
    _mm512_storeu_ps(b.s1, _mm512_maskz_mov_ps(swept, a1));
    _mm512_storeu_ps(b.s2, _mm512_maskz_mov_ps(swept, a2));
    _mm512_storeu_ps(b.sqy, _mm512_maskz_mov_ps(swept, a3));
    _mm512_storeu_ps(b.sse, _mm512_maskz_mov_ps(swept, a4));
}

/// fit_lanes_portable eight lanes at a time (a failed lane's outputs are zeroed by mask).
inline void fit_lanes(const PassBatch& b, double n, double sy, LaneFits& f, PassBatch& next) noexcept {
    next.lanes = b.lanes;
    const __m512d vn = _mm512_set1_pd(n), vsy = _mm512_set1_pd(sy), one = _mm512_set1_pd(1.0),
                  zero = _mm512_setzero_pd();
    for (std::size_t k = 0; k < PassBatch::width; k += 8) {
        const __m512d s1 = _mm512_cvtps_pd(_mm256_loadu_ps(b.s1 + k)), s2 = _mm512_cvtps_pd(_mm256_loadu_ps(b.s2 + k)),
                      sqy = _mm512_cvtps_pd(_mm256_loadu_ps(b.sqy + k));
        const __m512d det = _mm512_sub_pd(_mm512_mul_pd(vn, s2), _mm512_mul_pd(s1, s1));
        const __m512d inv_det = _mm512_div_pd(one, det);
        const __m512d d = _mm512_mul_pd(_mm512_sub_pd(_mm512_mul_pd(vn, sqy), _mm512_mul_pd(s1, vsy)), inv_det);
        const __m512d m = _mm512_mul_pd(_mm512_sub_pd(_mm512_mul_pd(s2, vsy), _mm512_mul_pd(s1, sqy)), inv_det);
        const __mmask8 ok = _mm512_cmp_pd_mask(det, zero, _CMP_GT_OQ) & _mm512_cmp_pd_mask(d, zero, _CMP_GT_OQ);
        _mm512_storeu_pd(f.d + k, d);
        _mm512_storeu_pd(f.m + k, m);
        for (std::size_t j = 0; j < 8; ++j) f.ok[k + j] = ((ok >> j) & 1) != 0;
        _mm256_storeu_ps(next.off + k, _mm512_cvtpd_ps(_mm512_maskz_mov_pd(ok, m)));
        _mm256_storeu_ps(next.sc + k, _mm512_cvtpd_ps(_mm512_maskz_mov_pd(ok, _mm512_div_pd(one, d))));
        _mm256_storeu_ps(next.d + k, _mm512_cvtpd_ps(_mm512_maskz_mov_pd(ok, d)));
        _mm256_storeu_ps(next.m + k, _mm512_cvtpd_ps(_mm512_maskz_mov_pd(ok, m)));
    }
}
}  // namespace quant_avx512
SPARSEINFER_TARGET_REGION_END
#endif
SPARSEINFER_NO_FMA_END

/// The sweep path for a CPU and a SPARSEINFER_ISA value (nullptr: unset): the
/// widest the CPU has (0 portable, 1 AVX2, 2 AVX-512), capped as the kernels
/// are ("avx2": no wider; "scalar": portable). Every choice gives the same
/// sums bit for bit.
inline int batch_path_for(const CpuFeatures& cpu, const char* isa) noexcept {
    int cap = 2;
    if (isa != nullptr && std::strcmp(isa, "avx2") == 0) cap = 1;
    if (isa != nullptr && std::strcmp(isa, "scalar") == 0) cap = 0;
    const int best = cpu.avx512 ? 2 : cpu.avx2 ? 1 : 0;
    return best < cap ? best : cap;
}

/// batch_path_for this CPU and the environment, chosen once; every primitive
/// here (sweeps, lane fits, pair errors) follows it.
inline int batch_path() noexcept {
#if defined(SPARSEINFER_QUANT_AVX2)
    static const int path = batch_path_for(detect_cpu_features(), std::getenv("SPARSEINFER_ISA"));
    return path;
#else
    return 0;
#endif
}

/// One sweep of a batch on the path batch_path() chose: the code sums when
/// Sums, the errors when Sse (the other outputs are left zero).
template <bool Sums, bool Sse, bool Clamp = true>
void run_batch(PassBatch& b, const float* y, std::size_t n, float qmax) noexcept {
#if defined(SPARSEINFER_QUANT_AVX2)
    const int path = batch_path();
    if (path == 2) {
        quant_avx512::run_batch<Sums, Sse, Clamp>(b, y, n, qmax);
        return;
    }
    if (path == 1) {
        quant_avx2::run_batch<Sums, Sse, Clamp>(b, y, n, qmax);
        return;
    }
#endif
    run_batch_portable<Sums, Sse, Clamp>(b, y, n, qmax);
}

/// The errors of a pair on the path batch_path() chose (AVX-512 takes the
/// AVX2 code: two pairs of four partials fill its registers no better).
inline void sse_pair(SsePair& p, const float* x, std::size_t n, int qmax) noexcept {
#if defined(SPARSEINFER_QUANT_AVX2)
    if (batch_path() >= 1) {
        quant_avx2::sse_pair(p, x, n, qmax);
        return;
    }
#endif
    sse_pair_portable(p, x, n, qmax);
}

/// The fits of a batch's lanes on the path batch_path() chose.
inline void fit_lanes(const PassBatch& b, double n, double sy, LaneFits& f, PassBatch& next) noexcept {
#if defined(SPARSEINFER_QUANT_AVX2)
    const int path = batch_path();
    if (path == 2) {
        quant_avx512::fit_lanes(b, n, sy, f, next);
        return;
    }
    if (path == 1) {
        quant_avx2::fit_lanes(b, n, sy, f, next);
        return;
    }
#endif
    fit_lanes_portable(b, n, sy, f, next);
}

}  // namespace sparseinfer::detail
