// sparseinfer/detail/ggml_blocks.hpp - ggml's block layouts: fp16 conversion,
// dequantizers and the reference quantizers GgufWriter uses.
//
// Every decoder computes each value with the same float operations, in the
// same order, as ggml's reference dequantizer, so the results are bit-exact.
// Where ggml multiplies and then adds, the product is exact in float (its
// factors carry at most 21 significant bits together), so a compiler that
// fuses the two into an FMA cannot change the result either.
//
// The layouts (little-endian, blocks back to back along a row):
//   Q4_0  32 values, 18 bytes: fp16 d, 16 bytes of nibbles; v = (q - 8) d
//   Q4_1  32 values, 20 bytes: fp16 d, fp16 m, 16 bytes of nibbles; v = q d + m
//         (byte j holds value j in its low nibble and value j + 16 in its high one)
//   Q8_0  32 values, 34 bytes: fp16 d, 32 int8; v = q d
//   Q4_K  256 values, 144 bytes: fp16 d, fp16 dmin, 12 bytes of 6-bit scale and
//         min codes for 8 sub-blocks of 32, 128 bytes of nibbles (each 32 bytes
//         hold two sub-blocks: low nibbles, then high); v = d sc q - dmin m
//   Q6_K  256 values, 210 bytes: 128 bytes of low nibbles, 64 bytes of high
//         2-bit pairs, 16 int8 scales (one per 16 values), fp16 d at the end;
//         v = (d sc) (q - 32)
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sparseinfer::detail::ggml {

inline constexpr std::size_t qk = 32;     ///< values per Q4_0 / Q4_1 / Q8_0 block
inline constexpr std::size_t qk_k = 256;  ///< values per K-quant super-block

inline std::uint16_t load_u16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }
inline void store_u16(std::uint8_t* p, std::uint16_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
}
inline float float_from_bits(std::uint32_t u) noexcept {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
inline std::uint32_t bits_from_float(float f) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

/// IEEE half to float; exact for every input (subnormals, infinities, NaN payloads).
inline float fp16_to_fp32(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) return float_from_bits(sign | 0x7F800000u | mant << 13);
    if (exp != 0) return float_from_bits(sign | (exp + 112) << 23 | mant << 13);
    if (mant == 0) return float_from_bits(sign);
    // Subnormal: mant * 2^-24. Normalise so the leading one reaches bit 10.
    std::uint32_t shift = 0;
    while ((mant & 0x400u) == 0) {
        mant <<= 1;
        ++shift;
    }
    return float_from_bits(sign | (113 - shift) << 23 | (mant & 0x3FFu) << 13);
}

/// Float to IEEE half, rounding to nearest, ties to even (what F16C's
/// vcvtps2ph with rounding mode 0 and ggml's portable fallback both do);
/// overflow gives infinity, NaN stays NaN (quiet).
inline std::uint16_t fp32_to_fp16(float f) noexcept {
    std::uint32_t x = bits_from_float(f);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    x &= 0x7FFFFFFFu;
    if (x > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((x >> 13) & 0x3FFu));
    if (x >= 0x47800000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65536: infinity
    auto round_shift = [](std::uint32_t v, std::uint32_t s) {                 // v / 2^s, ties to even
        const std::uint32_t q = v >> s, rem = v & ((1u << s) - 1), half = 1u << (s - 1);
        return q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
    };
    if (x >= 0x38800000u)  // normal half (>= 2^-14); a carry into the exponent is still right
        return static_cast<std::uint16_t>(sign | round_shift(x - (112u << 23), 13));
    const std::uint32_t exp = x >> 23;
    if (exp < 102) return sign;  // below 2^-25 (ties at 2^-25 go to zero, the even choice)
    // Subnormal half: round(value * 2^24) = round(mantissa_with_one * 2^(exp - 126)).
    return static_cast<std::uint16_t>(sign | round_shift((x & 0x7FFFFFu) | 0x800000u, 126 - exp));
}

inline void dequantize_f32(const std::uint8_t* src, std::size_t n, float* out) noexcept {
    if (n != 0) std::memcpy(out, src, n * sizeof(float));  // an empty tensor's out may be null
}

inline void dequantize_f16(const std::uint8_t* src, std::size_t n, float* out) noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(load_u16(src + 2 * i));
}

/// n is a multiple of 32 (blocks of 18 bytes).
inline void dequantize_q4_0(const std::uint8_t* src, std::size_t n, float* out) noexcept {
    for (std::size_t b = 0; b < n / qk; ++b, src += 18, out += qk) {
        const float d = fp16_to_fp32(load_u16(src));
        for (std::size_t j = 0; j < qk / 2; ++j) {
            out[j] = static_cast<float>((src[2 + j] & 0x0F) - 8) * d;
            out[j + qk / 2] = static_cast<float>((src[2 + j] >> 4) - 8) * d;
        }
    }
}

/// n is a multiple of 32 (blocks of 20 bytes).
inline void dequantize_q4_1(const std::uint8_t* src, std::size_t n, float* out) noexcept {
    for (std::size_t b = 0; b < n / qk; ++b, src += 20, out += qk) {
        const float d = fp16_to_fp32(load_u16(src)), m = fp16_to_fp32(load_u16(src + 2));
        for (std::size_t j = 0; j < qk / 2; ++j) {
            out[j] = static_cast<float>(src[4 + j] & 0x0F) * d + m;
            out[j + qk / 2] = static_cast<float>(src[4 + j] >> 4) * d + m;
        }
    }
}

/// n is a multiple of 32 (blocks of 34 bytes).
inline void dequantize_q8_0(const std::uint8_t* src, std::size_t n, float* out) noexcept {
    for (std::size_t b = 0; b < n / qk; ++b, src += 34, out += qk) {
        const float d = fp16_to_fp32(load_u16(src));
        for (std::size_t j = 0; j < qk; ++j) out[j] = static_cast<float>(static_cast<std::int8_t>(src[2 + j])) * d;
    }
}

/// Sub-block j's 6-bit scale and min codes from Q4_K's 12 packed bytes: the
/// first four sub-blocks keep theirs in the low 6 bits of bytes 0-3 (scale)
/// and 4-7 (min); the last four split theirs between a nibble of bytes 8-11
/// and the top two bits of bytes 0-7.
inline void q4_k_scale_min(std::size_t j, const std::uint8_t* s, std::uint8_t& scale, std::uint8_t& min) noexcept {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = static_cast<std::uint8_t>((s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4);
        min = static_cast<std::uint8_t>((s[j + 4] >> 4) | (s[j] >> 6) << 4);
    }
}

/// n is a multiple of 256 (blocks of 144 bytes).
inline void dequantize_q4_k(const std::uint8_t* src, std::size_t n, float* out) noexcept {
    for (std::size_t b = 0; b < n / qk_k; ++b, src += 144) {
        const float d = fp16_to_fp32(load_u16(src)), dmin = fp16_to_fp32(load_u16(src + 2));
        const std::uint8_t* scales = src + 4;
        const std::uint8_t* q = src + 16;
        for (std::size_t sub = 0; sub < 8; sub += 2, q += 32) {
            std::uint8_t sc = 0, m = 0;
            q4_k_scale_min(sub, scales, sc, m);
            const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
            q4_k_scale_min(sub + 1, scales, sc, m);
            const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
            for (std::size_t l = 0; l < 32; ++l) *out++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
            for (std::size_t l = 0; l < 32; ++l) *out++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
    }
}

/// n is a multiple of 256 (blocks of 210 bytes). Each half of 128 values
/// takes 64 low-nibble bytes, 32 high-bit bytes and 8 scales; value l + 32 k
/// of a half (k = 0..3) is nibble k / 2 of ql[l + 32 (k % 2)] with bits
/// 2k..2k+1 of qh[l] above it, scaled by scale[l / 16 + 2 k].
inline void dequantize_q6_k(const std::uint8_t* src, std::size_t n, float* out) noexcept {
    for (std::size_t b = 0; b < n / qk_k; ++b, src += 210) {
        const float d = fp16_to_fp32(load_u16(src + 208));
        const std::uint8_t* ql = src;
        const std::uint8_t* qh = src + 128;
        const auto* sc = reinterpret_cast<const std::int8_t*>(src + 192);
        for (std::size_t half = 0; half < 2; ++half, out += 128, ql += 64, qh += 32, sc += 8) {
            for (std::size_t l = 0; l < 32; ++l) {
                const std::size_t is = l / 16;
                const int q1 = ((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                // (d * scale) first, as ggml does: that product is exact, the second rounds.
                out[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
                out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
                out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
                out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
            }
        }
    }
}

/// x * y rounded once to float, immune to FMA contraction with a following
/// add: the double product of two floats is exact, so converting it rounds
/// exactly as a float multiply does, and the conversion keeps the compiler
/// from fusing it with the add.
inline float exact_float_product(float x, float y) noexcept {
    return static_cast<float>(static_cast<double>(x) * static_cast<double>(y));
}

/// ggml's quantize_row_q4_0_ref over n (a multiple of 32) finite values whose
/// scale fits fp16: d = (the value of largest magnitude, first if tied) / -8,
/// code = min(15, trunc(v / d + 8.5)) with 1 / d computed in float.
inline void quantize_q4_0(const float* x, std::size_t n, std::uint8_t* dst) noexcept {
    for (std::size_t b = 0; b < n / qk; ++b, x += qk, dst += 18) {
        float amax = 0.0f, max = 0.0f;
        for (std::size_t j = 0; j < qk; ++j)
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        const float d = max / -8.0f;
        // A scale whose reciprocal overflows is below fp16's range (stored as
        // zero, so any code decodes to 0); ggml's result there is undefined.
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!std::isfinite(id)) id = 0.0f;
        store_u16(dst, fp32_to_fp16(d));
        for (std::size_t j = 0; j < qk / 2; ++j) {
            const float v0 = exact_float_product(x[j], id) + 8.5f;
            const float v1 = exact_float_product(x[j + qk / 2], id) + 8.5f;
            const int q0 = static_cast<int>(v0) < 15 ? static_cast<int>(v0) : 15;  // v0, v1 in [0.5, 16.5]
            const int q1 = static_cast<int>(v1) < 15 ? static_cast<int>(v1) : 15;
            dst[2 + j] = static_cast<std::uint8_t>(q0 | q1 << 4);
        }
    }
}

/// ggml's quantize_row_q8_0_ref over n (a multiple of 32) finite values whose
/// scale fits fp16: d = max |v| / 127, code = round-half-away(v * (1 / d)).
inline void quantize_q8_0(const float* x, std::size_t n, std::uint8_t* dst) noexcept {
    for (std::size_t b = 0; b < n / qk; ++b, x += qk, dst += 34) {
        float amax = 0.0f;
        for (std::size_t j = 0; j < qk; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!std::isfinite(id)) id = 0.0f;  // as in quantize_q4_0
        store_u16(dst, fp32_to_fp16(d));
        for (std::size_t j = 0; j < qk; ++j)
            dst[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::round(x[j] * id)));  // |.| <= 127
    }
}

inline void quantize_f16(const float* x, std::size_t n, std::uint8_t* dst) noexcept {
    for (std::size_t i = 0; i < n; ++i) store_u16(dst + 2 * i, fp32_to_fp16(x[i]));
}

inline void quantize_f32(const float* x, std::size_t n, std::uint8_t* dst) noexcept {
    if (n != 0) std::memcpy(dst, x, n * sizeof(float));  // an empty tensor's dst may be null
}

}  // namespace sparseinfer::detail::ggml
