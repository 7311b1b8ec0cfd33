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

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "detail/aligned_allocator.hpp"
#include "detail/row_format.hpp"
#include "error.hpp"
#include "kernels/isa.hpp"

namespace sparseinfer {

/// An activation vector quantized to int8 per block of 32 (see the header comment).
struct QuantizedActivations {
    std::size_t size = 0;                                                    ///< length of the float vector
    std::vector<std::int8_t, detail::AlignedAllocator<std::int8_t>> values;  ///< blocks * 32, zero-padded
    std::vector<float> scales;                                               ///< per block: x ~= scale * q
    std::vector<float> sums;                                                 ///< per block: scale * sum(q)

    /// Number of 32-value blocks.
    std::size_t blocks() const noexcept { return scales.size(); }
};

/// Quantizes x[0..n) into `out`, reusing its storage (no allocation once it is large enough).
/// Runs the SIMD path in use (bit-identical to the scalar reference); throws
/// sparseinfer::error on a null x or a bad SPARSEINFER_ISA (see kernels/isa.hpp).
inline void quantize_activations(const float* x, std::size_t n, QuantizedActivations& out) {
    if (x == nullptr && n != 0) throw error("argument 'x' is a null pointer");
    const std::size_t blocks = (n + detail::block_values - 1) / detail::block_values;
    out.size = n;
    out.values.resize(blocks * detail::block_values);
    out.scales.resize(blocks);
    out.sums.resize(blocks);
    kernels::init_kernels();
    detail::active_kernel<4, kernels::KernelOp::quantize_activations>()(x, n, out.values.data(), out.scales.data(),
                                                                        out.sums.data());
}

namespace detail {

/// Throws unless x is a well-formed quantization of a vector of n values (what
/// the checked APIs taking QuantizedActivations require). `what` names the
/// consumer in the message, e.g. "the matrix has 4096 columns".
inline void check_quantized_activations(const QuantizedActivations& x, std::size_t n, const std::string& what) {
    const std::size_t blocks = (n + block_values - 1) / block_values;
    if (x.size != n) throw error("quantized activations have size " + std::to_string(x.size) + "; " + what);
    if (x.blocks() != blocks || x.values.size() != blocks * block_values || x.sums.size() != blocks)
        throw error("quantized activations of size " + std::to_string(n) + " hold " + std::to_string(x.blocks()) +
                    " scales, " + std::to_string(x.sums.size()) + " sums and " + std::to_string(x.values.size()) +
                    " values; expected " + std::to_string(blocks) + ", " + std::to_string(blocks) + " and " +
                    std::to_string(blocks * block_values) + " (use quantize_activations)");
}

}  // namespace detail

/// Returns x[0..n) quantized to int8 per block of 32.
inline QuantizedActivations quantize_activations(const float* x, std::size_t n) {
    QuantizedActivations out;
    quantize_activations(x, n, out);
    return out;
}

}  // namespace sparseinfer
