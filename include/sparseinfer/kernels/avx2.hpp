// sparseinfer/kernels/avx2.hpp - AVX2 + FMA kernels for the row format, in
// namespace sparseinfer::kernels::avx2, compiled in their own target region so
// this header builds with baseline x86-64 flags; kernels/isa.hpp runs them only
// on a CPU (and OS) that has AVX2 and FMA. Semantics: kernels/scalar.hpp.
//
// Float path: a block of 32 codes becomes four vectors of 8 int32, converted,
// w = d*q + m, multiplied into the accumulators. Int8 path: a block becomes 32
// bytes in value order; vpmaddubsw + vpmaddwd give its exact int32 partial sums
// (8-bit codes are widened to int16 first: 255 * 127 * 2 would saturate int16;
// full chunks of 4-bit codes go two blocks per load, see chunk_sums_q4);
// per chunk of 8 blocks the sums are reduced to one vector of 8 block sums,
// converted once and scaled by 8 (scale code * activation scale) products in one
// FMA; the min term is one FMA of 8 (min code, activation block sum) pairs.
// gemv/gemv_rows go one row at a time and prefetch the row 4 ahead, spread
// over the current row's chunks; axpy_rows adds 4 rows per pass over y and
// prefetches the next 4 the same way.
//
//   if (sparseinfer::detail::detect_cpu_features().avx2)
//       y = sparseinfer::kernels::avx2::table(4).dot_row(layout, row, x);
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../detail/int8_panels.hpp"
#include "../detail/kernel_table.hpp"
#include "../detail/row_format.hpp"
#include "detail/target_region.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define SPARSEINFER_HAS_AVX2_KERNELS 1
#include <immintrin.h>

SPARSEINFER_TARGET_REGION_BEGIN("avx2,fma,bmi2", "avx2,fma,bmi2")

namespace sparseinfer::kernels::avx2 {

using sparseinfer::detail::RowLayout;

/// Blocks per chunk: group parameters and block sums are handled 8 at a time.
constexpr std::size_t chunk_blocks = 8;

/// Lanes i < n set (n may exceed 8).
SPARSEINFER_KERNEL_INLINE __m256i lane_mask(std::size_t n) noexcept {
    const int k = n > 8 ? 8 : static_cast<int>(n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
}

SPARSEINFER_KERNEL_INLINE float hsum(__m256 v) noexcept {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

/// Up to 8 bytes from p into the low bytes of a vector (the rest zero); reads only n bytes.
SPARSEINFER_KERNEL_INLINE __m128i load_low(const std::uint8_t* p, std::size_t n) noexcept {
    if (n >= 8) return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    std::uint64_t v = 0;
    std::memcpy(&v, p, n);
    return _mm_cvtsi64_si128(static_cast<long long>(v));
}

/// The per-block group codes of blocks [first, first + 8) as 8 int32.
template <bool Signed>
SPARSEINFER_KERNEL_INLINE __m256i block_codes(const RowLayout& l, const std::uint8_t* plane,
                                              std::size_t first) noexcept {
    const std::size_t bpg = l.blocks_per_group();
    __m128i c;
    if (chunk_blocks % bpg == 0) {
        const std::size_t g0 = first / bpg, want = chunk_blocks / bpg;
        c = load_low(plane + g0, l.groups - g0 < want ? l.groups - g0 : want);
        if (bpg > 1) {
            const __m128i iota = _mm_set_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
            const __m128i idx =
                _mm_and_si128(_mm_srl_epi16(iota, _mm_cvtsi32_si128(__builtin_ctzll(bpg))), _mm_set1_epi8(15));
            c = _mm_shuffle_epi8(c, idx);
        }
    } else {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < 8; ++i) {
            const std::size_t g = (first + i) / bpg;
            v |= static_cast<std::uint64_t>(g < l.groups ? plane[g] : 0) << (8 * i);
        }
        c = _mm_cvtsi64_si128(static_cast<long long>(v));
    }
    return Signed ? _mm256_cvtepi8_epi32(c) : _mm256_cvtepu8_epi32(c);
}

/// Scale (d) and min (m) of blocks [first, first + 8), each times `mul`.
SPARSEINFER_KERNEL_INLINE void block_params(const RowLayout& l, const std::uint8_t* row, std::size_t first, float mul,
                                            float* d, float* m) noexcept {
    const __m256 su = _mm256_set1_ps(sparseinfer::detail::load_f32(row) * mul);
    const __m256 mu = _mm256_set1_ps(sparseinfer::detail::load_f32(row + 4) * mul);
    _mm256_storeu_ps(d, _mm256_mul_ps(_mm256_cvtepi32_ps(block_codes<false>(l, row + l.scales_offset(), first)), su));
    _mm256_storeu_ps(m, _mm256_mul_ps(_mm256_cvtepi32_ps(block_codes<true>(l, row + l.mins_offset(), first)), mu));
}

/// Codes of one block as int32, q[k] = values 8k .. 8k+7.
template <int Bits>
SPARSEINFER_KERNEL_INLINE void unpack_block_epi32(const std::uint8_t* c, __m256i* q) noexcept {
    if constexpr (Bits == 8) {
        for (int k = 0; k < 4; ++k)
            q[k] = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + 8 * k)));
    } else if constexpr (Bits == 4) {
        const __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c)));
        const __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + 8)));
        const __m256i f = _mm256_set1_epi32(15);
        q[0] = _mm256_and_si256(v0, f);
        q[1] = _mm256_and_si256(v1, f);
        q[2] = _mm256_srli_epi32(v0, 4);
        q[3] = _mm256_srli_epi32(v1, 4);
    } else {
        const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c)));
        const __m256i three = _mm256_set1_epi32(3);
        q[0] = _mm256_and_si256(v, three);
        q[1] = _mm256_and_si256(_mm256_srli_epi32(v, 2), three);
        q[2] = _mm256_and_si256(_mm256_srli_epi32(v, 4), three);
        q[3] = _mm256_srli_epi32(v, 6);
        if constexpr (Bits == 3) {
            std::uint32_t h32;
            std::memcpy(&h32, c + 8, 4);
            const __m256i h = _mm256_set1_epi32(static_cast<int>(h32));
            const __m256i one = _mm256_set1_epi32(1);
            for (int k = 0; k < 4; ++k) {
                const __m256i j = _mm256_set_epi32(8 * k + 7, 8 * k + 6, 8 * k + 5, 8 * k + 4, 8 * k + 3, 8 * k + 2,
                                                   8 * k + 1, 8 * k);
                q[k] = _mm256_or_si256(q[k], _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(h, j), one), 2));
            }
        }
    }
}

/// Codes of one block as 32 bytes in value order.
template <int Bits>
SPARSEINFER_KERNEL_INLINE __m256i unpack_block_epi8(const std::uint8_t* c) noexcept {
    if constexpr (Bits == 8) {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c));
    } else if constexpr (Bits == 4) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
        return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(15));
    } else {
        std::uint64_t lo;
        std::memcpy(&lo, c, 8);
        __m256i q = _mm256_and_si256(
            _mm256_srlv_epi64(_mm256_set1_epi64x(static_cast<long long>(lo)), _mm256_set_epi64x(6, 4, 2, 0)),
            _mm256_set1_epi8(3));
        if constexpr (Bits == 3) {
            std::uint32_t h32;
            std::memcpy(&h32, c + 8, 4);
            const __m256i hb = _mm256_shuffle_epi8(
                _mm256_set1_epi32(static_cast<int>(h32)),
                _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0));
            const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
            q = _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(4)));
        }
        return q;
    }
}

/// The 8 int32 partial sums of codes (unsigned) times activations (signed) of one block.
template <int Bits>
SPARSEINFER_KERNEL_INLINE __m256i block_dot(__m256i u, const std::int8_t* xq) noexcept {
    if constexpr (Bits == 8) {
        const __m256i ul = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(u));
        const __m256i uh = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(u, 1));
        const __m256i xl = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq)));
        const __m256i xh = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq + 16)));
        return _mm256_add_epi32(_mm256_madd_epi16(ul, xl), _mm256_madd_epi16(uh, xh));
    } else {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
        return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
    }
}

/// The 8 block sums of a[0..8) (a[i] = 8 partial sums of block i), in block order.
SPARSEINFER_KERNEL_INLINE __m256i reduce_blocks(const __m256i* a) noexcept {
    const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
}

/// The 8 block sums of a full chunk of 4-bit codes times int8 activations, in
/// block order. Two blocks per 32-byte load, one per 128-bit lane: the low
/// nibbles are values 0-15 of both blocks, the high nibbles values 16-31, dotted
/// with the matching activation halves (two lane permutes); the two vpmaddubsw
/// results add in int16 (at most 2 * 2 * 15 * 127 = 7620) before one vpmaddwd.
SPARSEINFER_KERNEL_INLINE __m256i chunk_sums_q4(const std::uint8_t* codes, const std::int8_t* xq) noexcept {
    const __m256i f = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256i s[4];
    for (int p = 0; p < 4; ++p) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * p));
        const __m256i xa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * p));
        const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * p + 32));
        const __m256i lo = _mm256_and_si256(v, f), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), f);
        const __m256i prod = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_permute2x128_si256(xa, xb, 0x20)),
                                              _mm256_maddubs_epi16(hi, _mm256_permute2x128_si256(xa, xb, 0x31)));
        s[p] = _mm256_madd_epi16(prod, ones);  // lane 0: block 2p, lane 1: block 2p + 1
    }
    // Two rounds of pairwise sums leave lane 0 = blocks 0, 2, 4, 6 and lane 1 =
    // blocks 1, 3, 5, 7; one permute puts them in order.
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    return _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/// acc[k] += w[8k..8k+8) * x[col+8k..) for block b (scale d, min m); x is read
/// only below cols.
template <int Bits>
SPARSEINFER_KERNEL_INLINE void block_dot_f32(const std::uint8_t* codes, std::size_t b, float d, float m, const float* x,
                                             std::size_t cols, __m256& a0, __m256& a1, __m256& a2,
                                             __m256& a3) noexcept {
    constexpr std::size_t bb = sparseinfer::detail::block_bytes(Bits);
    const std::size_t col = b * 32;
    __m256i q[4];
    unpack_block_epi32<Bits>(codes + b * bb, q);
    const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    __m256 xv[4];
    if (col + 32 <= cols) {
        for (int k = 0; k < 4; ++k) xv[k] = _mm256_loadu_ps(x + col + 8 * k);
    } else {
        const std::size_t r = cols - col;
        for (std::size_t k = 0; k < 4; ++k)
            xv[k] = 8 * k < r ? _mm256_maskload_ps(x + col + 8 * k, lane_mask(r - 8 * k)) : _mm256_setzero_ps();
    }
    a0 = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q[0]), vd, vm), xv[0], a0);
    a1 = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q[1]), vd, vm), xv[1], a1);
    a2 = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q[2]), vd, vm), xv[2], a2);
    a3 = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q[3]), vd, vm), xv[3], a3);
}

/// Selected rows are prefetched this many rows ahead of the one being computed.
constexpr std::size_t rows_ahead = 4;

/// Software prefetch of a row spread over the chunks of the current row: each
/// chunk issues its share of the row's cache lines (no bursts that fill the
/// load queue). See kernels/detail/avx512_body.inc for the measurements.
struct RowPrefetch {
    const std::uint8_t* row = nullptr;  ///< row to prefetch (nullptr: none)
    std::size_t pos = 0, per = 0, bytes = 0;
    RowPrefetch() noexcept = default;
    RowPrefetch(const RowLayout& l, const std::uint8_t* r) noexcept : row(r), bytes(l.row_bytes) {
        const std::size_t chunks = ((l.cols + 31) / 32 + chunk_blocks - 1) / chunk_blocks;
        per = ((l.row_bytes + 63) / 64 + chunks - 1) / chunks * 64;
    }
    void step() noexcept {
        if (!row) return;
        const std::size_t end = pos + per < bytes ? pos + per : bytes;
        for (; pos < end; pos += 64) _mm_prefetch(reinterpret_cast<const char*>(row + pos), _MM_HINT_T0);
    }
};

/// Starts loading the row at p into the cache (all its lines).
SPARSEINFER_KERNEL_INLINE void prefetch_row(const std::uint8_t* p, std::size_t bytes) noexcept {
    for (std::size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}

/// Row i of a gemv/axpy: rows[i], or i when rows is nullptr.
SPARSEINFER_KERNEL_INLINE const std::uint8_t* next_row(const RowLayout& l, const std::uint8_t* base,
                                                       const std::uint32_t* rows, std::size_t i) noexcept {
    return base + (rows ? rows[i] : i) * l.row_stride;
}

/// The prefetch for row i of a gemv: row i + rows_ahead, if any.
SPARSEINFER_KERNEL_INLINE RowPrefetch prefetch_for(const RowLayout& l, const std::uint8_t* base,
                                                   const std::uint32_t* rows, std::size_t i, std::size_t n) noexcept {
    return i + rows_ahead < n ? RowPrefetch(l, next_row(l, base, rows, i + rows_ahead)) : RowPrefetch();
}

/// dot_row, stepping the prefetch of a row ahead once per chunk when Ahead.
template <int Bits, bool Ahead>
SPARSEINFER_KERNEL_INLINE float dot_row_ahead(const RowLayout& l, const std::uint8_t* row, const float* x,
                                              RowPrefetch ahead) noexcept {
    const std::uint8_t* codes = row + l.codes_offset();
    const std::size_t nb = (l.cols + 31) / 32;
    // Eight named accumulators, two blocks in flight (an indexed array of
    // vectors would live on the stack).
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    alignas(32) float d[8], m[8];
    for (std::size_t first = 0; first < nb; first += chunk_blocks) {
        if constexpr (Ahead) ahead.step();
        block_params(l, row, first, 1.0f, d, m);
        const std::size_t n = nb - first < chunk_blocks ? nb - first : chunk_blocks;
        std::size_t i = 0;
        for (; i + 2 <= n; i += 2) {
            block_dot_f32<Bits>(codes, first + i, d[i], m[i], x, l.cols, a0, a1, a2, a3);
            block_dot_f32<Bits>(codes, first + i + 1, d[i + 1], m[i + 1], x, l.cols, a4, a5, a6, a7);
        }
        if (i < n) block_dot_f32<Bits>(codes, first + i, d[i], m[i], x, l.cols, a0, a1, a2, a3);
    }
    const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                   _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    return hsum(s);
}

template <int Bits>
inline float dot_row(const RowLayout& l, const std::uint8_t* row, const float* x) noexcept {
    return dot_row_ahead<Bits, false>(l, row, x, RowPrefetch());
}

/// dot_row_q8, stepping the prefetch of a row ahead once per chunk when Ahead.
template <int Bits, bool Ahead>
SPARSEINFER_KERNEL_INLINE float dot_row_q8_ahead(const RowLayout& l, const std::uint8_t* row, const std::int8_t* xq,
                                                 const float* xscale, const float* xsum, RowPrefetch ahead) noexcept {
    constexpr std::size_t bb = sparseinfer::detail::block_bytes(Bits);
    const std::uint8_t* codes = row + l.codes_offset();
    const std::size_t nb = (l.cols + 31) / 32;
    __m256 accs = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (std::size_t first = 0; first < nb; first += chunk_blocks) {
        if constexpr (Ahead) ahead.step();
        const std::size_t n = nb - first < chunk_blocks ? nb - first : chunk_blocks;
        __m256i sums;
        if (Bits == 4 && n == chunk_blocks) {
            sums = chunk_sums_q4(codes + first * bb, xq + first * 32);
        } else {
            __m256i a[8];
            for (std::size_t i = 0; i < 8; ++i)
                a[i] = i < n ? block_dot<Bits>(unpack_block_epi8<Bits>(codes + (first + i) * bb), xq + (first + i) * 32)
                             : _mm256_setzero_si256();
            sums = reduce_blocks(a);
        }
        const __m256 isum = _mm256_cvtepi32_ps(sums);
        __m256 xs, xm;
        if (n == chunk_blocks) {
            xs = _mm256_loadu_ps(xscale + first);
            xm = _mm256_loadu_ps(xsum + first);
        } else {
            const __m256i k = lane_mask(n);
            xs = _mm256_maskload_ps(xscale + first, k);
            xm = _mm256_maskload_ps(xsum + first, k);
        }
        const __m256 sc = _mm256_mul_ps(_mm256_cvtepi32_ps(block_codes<false>(l, row + l.scales_offset(), first)), xs);
        accs = _mm256_fmadd_ps(isum, sc, accs);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_codes<true>(l, row + l.mins_offset(), first)), xm, accm);
    }
    return sparseinfer::detail::load_f32(row) * hsum(accs) + sparseinfer::detail::load_f32(row + 4) * hsum(accm);
}

template <int Bits>
inline float dot_row_q8(const RowLayout& l, const std::uint8_t* row, const std::int8_t* xq, const float* xscale,
                        const float* xsum) noexcept {
    return dot_row_q8_ahead<Bits, false>(l, row, xq, xscale, xsum, RowPrefetch());
}

template <int Bits>
inline void gemv_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const float* x, float* y) noexcept {
    for (std::size_t i = 0; i < rows_ahead && i < n; ++i) prefetch_row(next_row(l, base, rows, i), l.row_bytes);
    for (std::size_t i = 0; i < n; ++i)
        y[i] = dot_row_ahead<Bits, true>(l, next_row(l, base, rows, i), x, prefetch_for(l, base, rows, i, n));
}

template <int Bits>
inline void gemv_rows_q8(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                         const std::int8_t* xq, const float* xscale, const float* xsum, float* y) noexcept {
    for (std::size_t i = 0; i < rows_ahead && i < n; ++i) prefetch_row(next_row(l, base, rows, i), l.row_bytes);
    for (std::size_t i = 0; i < n; ++i)
        y[i] = dot_row_q8_ahead<Bits, true>(l, next_row(l, base, rows, i), xq, xscale, xsum,
                                            prefetch_for(l, base, rows, i, n));
}

template <int Bits>
inline void dequantize_row(const RowLayout& l, const std::uint8_t* row, float* out) noexcept {
    constexpr std::size_t bb = sparseinfer::detail::block_bytes(Bits);
    const std::uint8_t* codes = row + l.codes_offset();
    const std::size_t nb = (l.cols + 31) / 32;
    alignas(32) float d[8], m[8];
    for (std::size_t first = 0; first < nb; first += chunk_blocks) {
        block_params(l, row, first, 1.0f, d, m);
        const std::size_t n = nb - first < chunk_blocks ? nb - first : chunk_blocks;
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t b = first + i, col = b * 32, r = l.cols - col;
            __m256i q[4];
            unpack_block_epi32<Bits>(codes + b * bb, q);
            const __m256 vd = _mm256_set1_ps(d[i]), vm = _mm256_set1_ps(m[i]);
            for (std::size_t k = 0; k < 4 && 8 * k < r; ++k) {
                const __m256 w = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[k]), vd, vm);
                if (r >= 8 * k + 8)
                    _mm256_storeu_ps(out + col + 8 * k, w);
                else
                    _mm256_maskstore_ps(out + col + 8 * k, lane_mask(r - 8 * k), w);
            }
        }
    }
}

/// y[0..cols) += sum_i a[i] * row(rows[i]); up to 4 rows share each pass over y.
template <int Bits>
inline void axpy_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const float* a, float* y) noexcept {
    constexpr std::size_t bb = sparseinfer::detail::block_bytes(Bits);
    constexpr std::size_t R = 4;
    const std::size_t nb = (l.cols + 31) / 32;
    alignas(32) float d[R][8], m[R][8], msum[8];
    for (std::size_t i0 = 0; i0 < n; i0 += R) {
        const std::size_t nr = n - i0 < R ? n - i0 : R;
        const std::uint8_t* row[R];
        for (std::size_t r = 0; r < R; ++r) {
            const std::size_t i = i0 + (r < nr ? r : 0);
            row[r] = base + (rows ? rows[i] : i) * l.row_stride;
        }
        if (i0 == 0)
            for (std::size_t r = 0; r < R && r < n; ++r) prefetch_row(next_row(l, base, rows, r), l.row_bytes);
        RowPrefetch ahead[R];
        for (std::size_t r = 0; r < R && i0 + R + r < n; ++r)
            ahead[r] = RowPrefetch(l, next_row(l, base, rows, i0 + R + r));
        for (std::size_t first = 0; first < nb; first += chunk_blocks) {
            for (std::size_t r = 0; r < R; ++r) ahead[r].step();
            __m256 ms = _mm256_setzero_ps();
            for (std::size_t r = 0; r < R; ++r) {
                block_params(l, row[r], first, r < nr ? a[i0 + r] : 0.0f, d[r], m[r]);
                ms = _mm256_add_ps(ms, _mm256_load_ps(m[r]));
            }
            _mm256_store_ps(msum, ms);
            const std::size_t cnt = nb - first < chunk_blocks ? nb - first : chunk_blocks;
            for (std::size_t i = 0; i < cnt; ++i) {
                const std::size_t b = first + i, col = b * 32, rem = l.cols - col;
                __m256 acc[4];
                const __m256 vm = _mm256_set1_ps(msum[i]);
                for (int k = 0; k < 4; ++k) acc[k] = vm;
                for (std::size_t r = 0; r < R; ++r) {
                    __m256i q[4];
                    unpack_block_epi32<Bits>(row[r] + l.codes_offset() + b * bb, q);
                    const __m256 vd = _mm256_set1_ps(d[r][i]);
                    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[k]), vd, acc[k]);
                }
                for (std::size_t k = 0; k < 4 && 8 * k < rem; ++k) {
                    float* yp = y + col + 8 * k;
                    if (rem >= 8 * k + 8) {
                        _mm256_storeu_ps(yp, _mm256_add_ps(_mm256_loadu_ps(yp), acc[k]));
                    } else {
                        const __m256i mk = lane_mask(rem - 8 * k);
                        _mm256_maskstore_ps(yp, mk, _mm256_add_ps(_mm256_maskload_ps(yp, mk), acc[k]));
                    }
                }
            }
        }
    }
}

/// Bit-exact SIMD version of the scalar activation quantizer.
inline void quantize_activations(const float* x, std::size_t n, std::int8_t* q, float* scales, float* sums) noexcept {
    const std::size_t blocks = (n + 31) / 32;
    const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
    const __m256 half = _mm256_set1_ps(0.5f), mhalf = _mm256_set1_ps(-0.5f);
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t first = b * 32, len = n - first < 32 ? n - first : 32;
        __m256 v[4];
        int bad = 0;
        __m256 ax = zero;
        for (std::size_t k = 0; k < 4; ++k) {
            v[k] = len >= 8 * k + 8 ? _mm256_loadu_ps(x + first + 8 * k)
                   : len > 8 * k    ? _mm256_maskload_ps(x + first + 8 * k, lane_mask(len - 8 * k))
                                    : zero;
            bad |= _mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(v[k], v[k]), zero, _CMP_NEQ_UQ));
            ax = _mm256_max_ps(ax, _mm256_andnot_ps(sign, v[k]));
        }
        if (bad) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + first), _mm256_setzero_si256());
            scales[b] = sums[b] = std::numeric_limits<float>::quiet_NaN();
            continue;
        }
        __m128 t = _mm_max_ps(_mm256_castps256_ps128(ax), _mm256_extractf128_ps(ax, 1));
        t = _mm_max_ps(t, _mm_movehl_ps(t, t));
        t = _mm_max_ss(t, _mm_movehdup_ps(t));
        const float amax = _mm_cvtss_f32(t);
        const float scale = amax / 127.0f;
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        if (!(inv <= std::numeric_limits<float>::max())) {  // a denormal block: as the scalar reference
            const __m256 pre = _mm256_set1_ps(18446744073709551616.0f);
            for (int k = 0; k < 4; ++k) v[k] = _mm256_mul_ps(v[k], pre);
            inv = 127.0f / (amax * 18446744073709551616.0f);
        }
        const __m256 vinv = _mm256_set1_ps(inv);
        const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
        __m256i iq[4];
        __m256i isum = _mm256_setzero_si256();
        for (int k = 0; k < 4; ++k) {
            const __m256 s = _mm256_mul_ps(v[k], vinv);
            const __m256 r = _mm256_add_ps(s, _mm256_blendv_ps(half, mhalf, _mm256_cmp_ps(s, zero, _CMP_LT_OQ)));
            iq[k] = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvttps_epi32(r), lim), nlim);
            isum = _mm256_add_epi32(isum, iq[k]);
        }
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(iq[0], iq[1]), _mm256_packs_epi32(iq[2], iq[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + first),
                            _mm256_permutevar8x32_epi32(p, _mm256_set_epi32(7, 3, 6, 2, 5, 1, 4, 0)));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(isum), _mm256_extracti128_si256(isum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        scales[b] = scale;
        sums[b] = scale * static_cast<float>(_mm_cvtsi128_si32(s4));
    }
}

/// Row sums of NP consecutive int8 panels (detail/int8_panels.hpp): acc[2k] and
/// acc[2k + 1] get rows 0-7 and 8-15 of panel k. Per 4 depth positions: |t|
/// (u8) times P with t's sign applied (s8), so each vpmaddubsw pair sum is at
/// most 2 * 128 * 127 (no int16 saturation; P >= -127), then vpmaddwd by ones.
template <std::size_t NP>
SPARSEINFER_KERNEL_INLINE void s8_panel_sums(const std::int8_t* p, std::size_t D, const std::int8_t* t,
                                             __m256i* acc) noexcept {
    const std::size_t stride = sparseinfer::detail::s8_panel_rows * D;
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 16
    for (std::size_t k = 0; k < 2 * NP; ++k) acc[k] = _mm256_setzero_si256();
    for (std::size_t c = 0; c < D; c += 4) {
        std::int32_t t4;
        std::memcpy(&t4, t + c, 4);
        const __m256i tb = _mm256_set1_epi32(t4), ta = _mm256_abs_epi8(tb);
        const std::int8_t* q = p + 16 * c;
#pragma GCC unroll 16
        for (std::size_t k = 0; k < 2 * NP; ++k) {
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + (k / 2) * stride + (k % 2) * 32));
            acc[k] =
                _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(ta, _mm256_sign_epi8(w, tb)), ones));
        }
    }
}

/// y[0..n) = (float(sums) * row_scales) * t_scale for one panel's sums (n <= 16).
SPARSEINFER_KERNEL_INLINE void store_s8_panel(const __m256i* acc, const float* row_scales, float t_scale, float* y,
                                              std::size_t n) noexcept {
    const __m256 ts = _mm256_set1_ps(t_scale);
    for (std::size_t h = 0; h < 2 && 8 * h < n; ++h) {
        const __m256 sums = _mm256_cvtepi32_ps(acc[h]);
        if (n >= 8 * h + 8) {
            _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(_mm256_mul_ps(sums, _mm256_loadu_ps(row_scales + 8 * h)), ts));
        } else {
            const __m256i mk = lane_mask(n - 8 * h);
            _mm256_maskstore_ps(y + 8 * h, mk,
                                _mm256_mul_ps(_mm256_mul_ps(sums, _mm256_maskload_ps(row_scales + 8 * h, mk)), ts));
        }
    }
}

/// See KernelTable::gemv_s8_panels: four panels (64 rows) per pass, then one at a time.
inline void gemv_s8_panels(const std::int8_t* panels, const float* row_scales, std::size_t rows, std::size_t D,
                           const std::int8_t* t, float t_scale, float* y) noexcept {
    std::size_t i = 0;
    for (; i + 64 <= rows; i += 64) {
        __m256i acc[8];
        s8_panel_sums<4>(panels + i * D, D, t, acc);
        for (std::size_t k = 0; k < 4; ++k)
            store_s8_panel(acc + 2 * k, row_scales + i + 16 * k, t_scale, y + i + 16 * k, 16);
    }
    for (; i < rows; i += 16) {
        __m256i acc[2];
        s8_panel_sums<1>(panels + i * D, D, t, acc);
        store_s8_panel(acc, row_scales + i, t_scale, y + i, rows - i < 16 ? rows - i : 16);
    }
}

template <int Bits>
inline constexpr KernelTable table_for_bits = {Isa::avx2,
                                               Bits,
                                               dequantize_row<Bits>,
                                               dot_row<Bits>,
                                               dot_row_q8<Bits>,
                                               gemv_rows<Bits>,
                                               gemv_rows_q8<Bits>,
                                               axpy_rows<Bits>,
                                               quantize_activations,
                                               gemv_s8_panels};

/// The AVX2 kernels for a code width (2, 3, 4 or 8).
inline const KernelTable& table(int bits) noexcept {
    static constexpr const KernelTable* tables[4] = {&table_for_bits<2>, &table_for_bits<3>, &table_for_bits<4>,
                                                     &table_for_bits<8>};
    return *tables[bits_index(bits)];
}

}  // namespace sparseinfer::kernels::avx2
SPARSEINFER_TARGET_REGION_END

#endif
