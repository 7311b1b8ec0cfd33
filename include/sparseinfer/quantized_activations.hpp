// sparseinfer/quantized_activations.hpp - activations quantized once per token to int8.
//
// An activation vector is cut into blocks of 32 values; each block stores 32
// int8 values q, its float scale s (x ~= s * q, s = max|x| / 127) and its sum
// s * sum(q). Kernels then multiply weight codes by q with integer dot-product
// instructions and pay one multiply-add per group for the asymmetric min.
// The last block is zero-padded, so padding adds nothing to any dot product.
// A block holding NaN or +-Inf gets a NaN scale and sum, so every dot product
// that touches it is NaN, as on the float path.
//
//   std::vector<float> x(4096);
//   auto xq = sparseinfer::quantize_activations(x.data(), x.size());
//   float y0 = weights.dot_row(0, xq);
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "detail/aligned_allocator.hpp"
#include "detail/row_format.hpp"
#include "error.hpp"

namespace sparseinfer {

/// An activation vector quantized to int8 per block of 32 (see the header comment).
struct QuantizedActivations {
    std::size_t size = 0;  ///< length of the float vector
    std::vector<std::int8_t, detail::AlignedAllocator<std::int8_t>> values;  ///< blocks * 32, zero-padded
    std::vector<float> scales;  ///< per block: x ~= scale * q
    std::vector<float> sums;    ///< per block: scale * sum(q)

    std::size_t blocks() const noexcept { return scales.size(); }
};

namespace detail {

/// Quantizes one block of n <= 32 values into q[32] (zero-padded); returns its scale
/// and writes scale * sum(q) to sum.
inline float quantize_activation_block(const float* x, std::size_t n, std::int8_t* q, float& sum) noexcept {
    float amax = 0;
    bool finite = true;
    for (std::size_t j = 0; j < n; ++j) {
        finite = finite && std::isfinite(x[j]);
        amax = std::fabs(x[j]) > amax ? std::fabs(x[j]) : amax;
    }
    for (std::size_t j = 0; j < block_values; ++j) q[j] = 0;
    if (!finite) {
        sum = std::numeric_limits<float>::quiet_NaN();
        return sum;
    }
    const float scale = amax / 127.0f;
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    // 127 / amax overflows float when amax < ~3.7e-37 (a denormal block); then
    // scale by 2^64 first, exactly, so every value still maps into [-127, 127].
    const float pre = std::isfinite(inv) ? 1.0f : 18446744073709551616.0f;
    if (pre != 1.0f) inv = 127.0f / (amax * pre);
    int isum = 0;
    for (std::size_t j = 0; j < n; ++j) {
        // Round half away from zero; |x * inv| <= 127 so the cast cannot overflow.
        const float v = (x[j] * pre) * inv;
        const int r = static_cast<int>(v + (v < 0 ? -0.5f : 0.5f));
        q[j] = static_cast<std::int8_t>(r > 127 ? 127 : r < -127 ? -127 : r);
        isum += q[j];
    }
    sum = scale * static_cast<float>(isum);
    return scale;
}

}  // namespace detail

/// Quantizes x[0..n) into `out`, reusing its storage (no allocation once it is large enough).
inline void quantize_activations(const float* x, std::size_t n, QuantizedActivations& out) {
    if (x == nullptr && n != 0) throw error("argument 'x' is a null pointer");
    const std::size_t blocks = (n + detail::block_values - 1) / detail::block_values;
    out.size = n;
    out.values.resize(blocks * detail::block_values);
    out.scales.resize(blocks);
    out.sums.resize(blocks);
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t first = b * detail::block_values;
        const std::size_t len = n - first < detail::block_values ? n - first : detail::block_values;
        out.scales[b] = detail::quantize_activation_block(x + first, len, out.values.data() + first, out.sums[b]);
    }
}

/// Returns x[0..n) quantized to int8 per block of 32.
inline QuantizedActivations quantize_activations(const float* x, std::size_t n) {
    QuantizedActivations out;
    quantize_activations(x, n, out);
    return out;
}

}  // namespace sparseinfer
