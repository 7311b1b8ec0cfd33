// sparseinfer/kernels/avx2.hpp - AVX2 + FMA kernels for the row format, in
// namespace sparseinfer::kernels::avx2, compiled in their own target region so
// this header builds with baseline x86-64 flags; kernels/isa.hpp runs them only
// on a CPU (and OS) that has AVX2 and FMA. Semantics: kernels/scalar.hpp; the
// loops over rows, panels and chunks: kernels/detail/row_walk.inc. This file
// holds the AVX2 arithmetic they run on.
//
// Codes times int8 values: vpmaddubsw (u8 codes x s8 values, pairs summed in
// int16) and vpmaddwd by ones give exact int32 partial sums; 8-bit codes are
// widened to int16 first (255 * 127 * 2 would saturate int16). 4-bit codes go
// two blocks per 32-byte load, one per 128-bit lane, and the panel's limbs are
// stored in that order; the two vpmaddubsw of a block's halves add in int16
// (at most 2 * 2 * 15 * 127 = 7620). Per chunk of 8 blocks the sums reduce to
// one vector of 8 block sums, are converted once and scaled by the 8 products
// (scale code * activation scale) in one FMA; the min term is one FMA of 8
// (min code, activation block sum) pairs.
//
//   if (sparseinfer::detail::detect_cpu_features().avx2)
//       y = sparseinfer::kernels::avx2::table_for_bits<4>.dot_row(layout, row, x);
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

/// Blocks per chunk: group parameters and block sums are handled 8 at a time.
constexpr std::size_t chunk_blocks = 8;
/// 4-bit blocks per 32-byte vector of codes.
constexpr std::size_t nibble_blocks = 2;
/// 2-bit blocks per 32-byte vector of codes (their 8-byte low planes).
constexpr std::size_t crumb_blocks = 4;
/// Float x runs on the integer dot products, split into three int8 limbs.
constexpr bool splits_float_x = true;
/// The path whose copies of the kernels without int8 dot products this one
/// uses (SPARSEINFER_BUILT_PATH): its own.
namespace shared_path = ::sparseinfer::kernels::avx2;

SPARSEINFER_KERNEL_INLINE float hsum(__m256 v) noexcept {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

/// A row's accumulators against an activation panel: per-block scaled dots, and min terms.
struct ChunkAcc {
    __m256 s, m;
    // Written out: an implicit constructor would be compiled outside the target region.
    ChunkAcc() noexcept : s(_mm256_setzero_ps()), m(_mm256_setzero_ps()) {}
    float scaled_sum() const noexcept { return hsum(s); }
    float min_sum() const noexcept { return hsum(m); }
};

#include "detail/row_walk.inc"

/// Lanes i < n set (n may exceed 8).
SPARSEINFER_KERNEL_INLINE __m256i lane_mask(std::size_t n) noexcept {
    const int k = n > 8 ? 8 : static_cast<int>(n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
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
        // bpg divides chunk_blocks, so it is a power of two: shifts, not divisions.
        const unsigned sh = static_cast<unsigned>(__builtin_ctzll(bpg));
        const std::size_t g0 = first >> sh, want = chunk_blocks >> sh;
        c = load_low(plane + g0, l.groups - g0 < want ? l.groups - g0 : want);
        if (bpg > 1) {
            const __m128i iota = _mm_set_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
            const __m128i idx =
                _mm_and_si128(_mm_srl_epi16(iota, _mm_cvtsi32_si128(__builtin_ctzll(bpg))), _mm_set1_epi8(15));
            c = _mm_shuffle_epi8(c, idx);
        }
    } else {
        std::uint64_t v = 0;
#pragma GCC unroll 8
        for (std::size_t i = 0; i < 8; ++i) {
            const std::size_t g = (first + i) / bpg;
            v |= static_cast<std::uint64_t>(g < l.groups ? plane[g] : 0) << (8 * i);
        }
        c = _mm_cvtsi64_si128(static_cast<long long>(v));
    }
    return Signed ? _mm256_cvtepi8_epi32(c) : _mm256_cvtepu8_epi32(c);
}

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
#pragma GCC unroll 8
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
#pragma GCC unroll 8
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
#pragma GCC unroll 8
        for (int k = 0; k < 4; ++k) xv[k] = _mm256_loadu_ps(x + col + 8 * k);
    } else {
        const std::size_t r = cols - col;
#pragma GCC unroll 8
        for (std::size_t k = 0; k < 4; ++k)
            xv[k] = 8 * k < r ? _mm256_maskload_ps(x + col + 8 * k, lane_mask(r - 8 * k)) : _mm256_setzero_ps();
    }
    a0 = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q[0]), vd, vm), xv[0], a0);
    a1 = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q[1]), vd, vm), xv[1], a1);
    a2 = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q[2]), vd, vm), xv[2], a2);
    a3 = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q[3]), vd, vm), xv[3], a3);
}

/// The 8 block sums of a[0..8) (a[i] = 8 partial sums of block i), in block order.
SPARSEINFER_KERNEL_INLINE __m256i reduce_blocks(const __m256i* a) noexcept {
    const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
}

/// The 8 block sums of p[0..4) (p[u] = 4 partial sums of block 2u in its low
/// lane, of block 2u + 1 in its high lane), in block order: two rounds of
/// pairwise sums leave the low lane blocks 0, 2, 4, 6 and the high lane 1, 3,
/// 5, 7; one permute puts them in order.
SPARSEINFER_KERNEL_INLINE __m256i reduce_pairs(const __m256i* p) noexcept {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    return _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/// The 16 bytes at p in the low lane, the high lane zero.
SPARSEINFER_KERNEL_INLINE __m256i load_low_lane(const std::uint8_t* p) noexcept {
    return _mm256_inserti128_si256(_mm256_setzero_si256(), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), 0);
}

/// The dots of blocks [first, first + n) of `codes` (n <= 8; zero beyond n)
/// with the panel's limbs, in block order, as l0 + l1 / 254 + l2 / 254^2.
template <int Bits, int L>
SPARSEINFER_KERNEL_INLINE __m256 chunk_limb_dots(const std::uint8_t* codes, const LimbPanel<L>& p, std::size_t first,
                                                 std::size_t n) noexcept {
    constexpr std::size_t bb = sparseinfer::detail::block_bytes(Bits);
    const __m256i z = _mm256_setzero_si256(), ones = _mm256_set1_epi16(1);
    __m256i s[L];
    if constexpr (Bits == 4) {
        const __m256i f = _mm256_set1_epi8(15);
        __m256i a[L][4];
#pragma GCC unroll 8
        for (std::size_t u = 0; u < 4; ++u) {
            const std::size_t b = first + 2 * u;
            const __m256i v = 2 * u + 2 <= n ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * bb))
                              : 2 * u < n    ? load_low_lane(codes + b * bb)
                                             : z;
            const __m256i lo = _mm256_and_si256(v, f), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), f);
#pragma GCC unroll 8
            for (int k = 0; k < L; ++k) {
                const std::int8_t* X = p.limbs[k] + b * 32;
                const __m256i prod = _mm256_add_epi16(
                    _mm256_maddubs_epi16(lo, _mm256_load_si256(reinterpret_cast<const __m256i*>(X))),
                    _mm256_maddubs_epi16(hi, _mm256_load_si256(reinterpret_cast<const __m256i*>(X + 32))));
                a[k][u] = _mm256_madd_epi16(prod, ones);
            }
        }
#pragma GCC unroll 8
        for (int k = 0; k < L; ++k) s[k] = reduce_pairs(a[k]);
    } else if constexpr (Bits == 2) {
        // 32 code bytes are 4 blocks; shifting them by 2e gives values 8e..8e+7
        // of each block in its 8 bytes, dotted with the limbs stored in that
        // order; the 4 shifts' vpmaddubsw add in int16 (at most 4 * 2 * 3 * 127 =
        // 3048), so vpmaddwd leaves 2 int32 per block.
        const __m256i three = _mm256_set1_epi8(3);
        __m256i a[L][2];
#pragma GCC unroll 2
        for (std::size_t u = 0; u < 2; ++u) {
            const std::size_t b = first + 4 * u;
            const std::size_t valid = n > 4 * u ? (n - 4 * u < 4 ? n - 4 * u : 4) : 0;
            const __m256i v = valid == 4  ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * bb))
                              : valid > 0 ? _mm256_maskload_epi64(
                                                reinterpret_cast<const long long*>(codes + b * bb),
                                                _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(valid)),
                                                                   _mm256_setr_epi64x(0, 1, 2, 3)))
                                          : z;
            __m256i c[4];
#pragma GCC unroll 4
            for (int e = 0; e < 4; ++e) c[e] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * e), three);
#pragma GCC unroll 3
            for (int k = 0; k < L; ++k) {
                const std::int8_t* X = p.limbs[k] + b * 32;
                __m256i prod = _mm256_maddubs_epi16(c[0], _mm256_load_si256(reinterpret_cast<const __m256i*>(X)));
#pragma GCC unroll 3
                for (int e = 1; e < 4; ++e)
                    prod = _mm256_add_epi16(
                        prod,
                        _mm256_maddubs_epi16(c[e], _mm256_load_si256(reinterpret_cast<const __m256i*>(X + 32 * e))));
                a[k][u] = _mm256_madd_epi16(prod, ones);
            }
        }
        // Per quad, lanes hold [b0 b0 b1 b1 | b2 b2 b3 b3]: one round of pairwise
        // sums and one permute give the 8 block sums in order.
#pragma GCC unroll 3
        for (int k = 0; k < L; ++k)
            s[k] = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(a[k][0], a[k][1]),
                                               _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
    } else {
        __m256i a[L][8];
#pragma GCC unroll 8
        for (std::size_t i = 0; i < 8; ++i) {
            if (i >= n) {
#pragma GCC unroll 8
                for (int k = 0; k < L; ++k) a[k][i] = z;
                continue;
            }
            const std::size_t b = first + i;
            if constexpr (Bits == 8) {
                const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * bb));
                const __m256i ul = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(u));
                const __m256i uh = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(u, 1));
#pragma GCC unroll 8
                for (int k = 0; k < L; ++k) {
                    const std::int8_t* X = p.limbs[k] + b * 32;
                    const __m256i xl = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(X)));
                    const __m256i xh = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(X + 16)));
                    a[k][i] = _mm256_add_epi32(_mm256_madd_epi16(ul, xl), _mm256_madd_epi16(uh, xh));
                }
            } else {
                const __m256i u = unpack_block_epi8<Bits>(codes + b * bb);
#pragma GCC unroll 8
                for (int k = 0; k < L; ++k)
                    a[k][i] = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(u,
                                             _mm256_load_si256(reinterpret_cast<const __m256i*>(p.limbs[k] + b * 32))),
                        ones);
            }
        }
#pragma GCC unroll 8
        for (int k = 0; k < L; ++k) s[k] = reduce_blocks(a[k]);
    }
    if constexpr (L == 1) {
        return _mm256_cvtepi32_ps(s[0]);
    } else {
        return _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(s[2]), _mm256_set1_ps(1.0f / 64516.0f),
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[1]), _mm256_set1_ps(1.0f / 254.0f), _mm256_cvtepi32_ps(s[0])));
    }
}

template <int Bits, int L>
SPARSEINFER_KERNEL_INLINE void chunk_limb_step(const RowLayout& l, const std::uint8_t* row, std::size_t b0,
                                               std::size_t first, std::size_t n, const LimbPanel<L>& p,
                                               ChunkAcc& acc) noexcept {
    constexpr std::size_t bb = sparseinfer::detail::block_bytes(Bits);
    const __m256 dc = _mm256_cvtepi32_ps(block_codes<false>(l, row + l.scales_offset(), b0 + first));
    const __m256 mc = _mm256_cvtepi32_ps(block_codes<true>(l, row + l.mins_offset(), b0 + first));
    const __m256 dots = chunk_limb_dots<Bits, L>(row + l.codes_offset() + b0 * bb, p, first, n);
    acc.s = _mm256_fmadd_ps(dots, _mm256_mul_ps(dc, _mm256_load_ps(p.scales + first)), acc.s);
    acc.m = _mm256_fmadd_ps(mc, _mm256_load_ps(p.sums + first), acc.m);
}

/// Largest lane of v.
SPARSEINFER_KERNEL_INLINE float hmax(__m256 v) noexcept {
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

/// The 32 int32 of q[0..4) (values in order) as int8, saturated, in value order.
SPARSEINFER_KERNEL_INLINE __m256i pack_epi8(const __m256i* q) noexcept {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/// 32 floats of x from col, zero at and beyond cols (only x below cols is read).
SPARSEINFER_KERNEL_INLINE void load_block_f32(const float* x, std::size_t col, std::size_t cols, __m256* v) noexcept {
    const std::size_t r = col < cols ? cols - col : 0;
#pragma GCC unroll 8
    for (std::size_t k = 0; k < 4; ++k)
        v[k] = r >= 8 * k + 8 ? _mm256_loadu_ps(x + col + 8 * k)
               : r > 8 * k    ? _mm256_maskload_ps(x + col + 8 * k, lane_mask(r - 8 * k))
                              : _mm256_setzero_ps();
}

template <int Bits>
SPARSEINFER_KERNEL_INLINE void split_block_limbs(const float* x, std::size_t cols, std::size_t b, std::size_t pb,
                                                 LimbPanel<3>& p) noexcept {
    __m256 v[4];
    load_block_f32(x, b * 32, cols, v);
    p.sums[pb] = hsum(_mm256_add_ps(_mm256_add_ps(v[0], v[1]), _mm256_add_ps(v[2], v[3])));
    const __m256 sign = _mm256_set1_ps(-0.0f), up = _mm256_set1_ps(4294967296.0f);  // 2^32
    // |x| <= 2^64, so x 2^32 is exact and finite, and so is 127 / (2^32 max|x|).
    const float amax = hmax(_mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                          _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])))) *
                       4294967296.0f;
    p.scales[pb] = amax / 127.0f;
    const __m256 inv = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f), k254 = _mm256_set1_ps(254.0f);
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k) v[k] = _mm256_mul_ps(_mm256_mul_ps(v[k], up), inv);
#pragma GCC unroll 8
    for (int limb = 0; limb < 3; ++limb) {
        // |v| <= 127 (1 + 2^-23) rounds to at most 127; the rest is exact and
        // within 1/2, so 254 times it rounds to at most 127 again.
        __m256i q[4];
#pragma GCC unroll 8
        for (int k = 0; k < 4; ++k) {
            q[k] = _mm256_cvtps_epi32(v[k]);
            v[k] = _mm256_mul_ps(_mm256_sub_ps(v[k], _mm256_cvtepi32_ps(q[k])), k254);
        }
        alignas(32) std::int8_t bytes[32];
        _mm256_store_si256(reinterpret_cast<__m256i*>(bytes), pack_epi8(q));
        place_limbs<Bits>(p.limbs[limb], pb, bytes);
    }
}

SPARSEINFER_KERNEL_INLINE bool split_x_in_range(const float* x, std::size_t n) noexcept {
    const __m256 lim = _mm256_set1_ps(split_max_abs), sign = _mm256_set1_ps(-0.0f);
    __m256 bad = _mm256_setzero_ps(), big = _mm256_setzero_ps();
    for (std::size_t i = 0; i < n; i += 8) {
        const __m256 v = i + 8 <= n ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, lane_mask(n - i));
        const __m256 a = _mm256_andnot_ps(sign, v);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, lim, _CMP_NLE_UQ));
        big = _mm256_max_ps(big, a);
    }
    return _mm256_movemask_ps(bad) == 0 && hmax(big) >= split_min_max_abs;
}

template <int Bits>
SPARSEINFER_KERNEL_INLINE float dot_row_f32(const RowLayout& l, const std::uint8_t* row, const float* x,
                                            RowPrefetch ahead) noexcept {
    const std::uint8_t* codes = row + l.codes_offset();
    const std::size_t nb = (l.cols + 31) / 32;
    // Eight named accumulators, two blocks in flight (an indexed array of
    // vectors would live on the stack).
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    alignas(32) float d[8], m[8];
    for (std::size_t first = 0; first < nb; first += chunk_blocks) {
        ahead.step();
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

/// Codes of one block as floats, w[k] = values 8k .. 8k+7.
template <int Bits>
SPARSEINFER_KERNEL_INLINE void unpack_block_ps(const std::uint8_t* c, __m256* w) noexcept {
    __m256i q[4];
    unpack_block_epi32<Bits>(c, q);
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k) w[k] = _mm256_cvtepi32_ps(q[k]);
}

template <int Bits, std::size_t R, bool Full>
SPARSEINFER_KERNEL_INLINE void axpy_block(const std::uint8_t* const* codes, std::size_t b, std::size_t i,
                                          const float (*d)[chunk_blocks], float* y, std::size_t cols) noexcept {
    constexpr std::size_t bb = sparseinfer::detail::block_bytes(Bits);
    const std::size_t col = b * 32, rem = Full ? 32 : cols - col;
    __m256 acc[4];
#pragma GCC unroll 8
    for (std::size_t k = 0; k < 4; ++k)
        acc[k] = Full          ? _mm256_loadu_ps(y + col + 8 * k)
                 : 8 * k < rem ? _mm256_maskload_ps(y + col + 8 * k, lane_mask(rem - 8 * k))
                               : _mm256_setzero_ps();
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
        __m256 w[4];
        unpack_block_ps<Bits>(codes[r] + b * bb, w);
        const __m256 vd = _mm256_set1_ps(d[r][i]);
#pragma GCC unroll 8
        for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(w[k], vd, acc[k]);
    }
#pragma GCC unroll 8
    for (std::size_t k = 0; k < 4; ++k) {
        if (Full)
            _mm256_storeu_ps(y + col + 8 * k, acc[k]);
        else if (8 * k < rem)
            _mm256_maskstore_ps(y + col + 8 * k, lane_mask(rem - 8 * k), acc[k]);
    }
}

SPARSEINFER_KERNEL_INLINE void add_to_block(float* y, std::size_t col, std::size_t cols, float v) noexcept {
    const __m256 vv = _mm256_set1_ps(v);
    const std::size_t rem = cols - col;
    for (std::size_t k = 0; k < 4 && 8 * k < rem; ++k) {
        float* p = y + col + 8 * k;
        if (rem >= 8 * k + 8) {
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), vv));
        } else {
            const __m256i mk = lane_mask(rem - 8 * k);
            _mm256_maskstore_ps(p, mk, _mm256_add_ps(_mm256_maskload_ps(p, mk), vv));
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
#pragma GCC unroll 8
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
        const float amax = hmax(ax);
        const float scale = amax / 127.0f;
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        if (!(inv <= std::numeric_limits<float>::max())) {  // a denormal block: as the scalar reference
            const __m256 pre = _mm256_set1_ps(18446744073709551616.0f);
#pragma GCC unroll 8
            for (int k = 0; k < 4; ++k) v[k] = _mm256_mul_ps(v[k], pre);
            inv = 127.0f / (amax * 18446744073709551616.0f);
        }
        const __m256 vinv = _mm256_set1_ps(inv);
        const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
        __m256i iq[4];
        __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 4; ++k) {
            const __m256 s = _mm256_mul_ps(v[k], vinv);
            const __m256 r = _mm256_add_ps(s, _mm256_blendv_ps(half, mhalf, _mm256_cmp_ps(s, zero, _CMP_LT_OQ)));
            iq[k] = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvttps_epi32(r), lim), nlim);
            isum = _mm256_add_epi32(isum, iq[k]);
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + first), pack_epi8(iq));
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
#pragma GCC unroll 8
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
                                               gemv_s8_panels,
                                               splits_float_x};

}  // namespace sparseinfer::kernels::avx2
SPARSEINFER_TARGET_REGION_END
SPARSEINFER_BUILT_PATH(::sparseinfer::Isa::avx2, ::sparseinfer::kernels::avx2)

#endif
