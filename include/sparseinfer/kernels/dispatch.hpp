// sparseinfer/kernels/dispatch.hpp - the kernel entry points, routed to the best
// instruction set the CPU has.
//
// These take a RowLayout and raw row bytes, like the scalar reference, and
// perform no checks: the classes in front of them validate. They do not
// allocate or throw, and may be called from several threads at once on
// disjoint outputs.
//
//   const auto& l = weights.layout();
//   sparseinfer::kernels::gemv_rows(l, weights.data(), rows, n, x, y);
#pragma once

#include <cstddef>
#include <cstdint>

#include "../detail/row_format.hpp"
#include "../quantized_activations.hpp"
#include "scalar.hpp"

namespace sparseinfer {

/// Name of the kernel path in use ("scalar" until SIMD paths are added).
inline const char* active_isa() noexcept { return "scalar"; }

namespace kernels {

using detail::RowLayout;

/// out[0..cols) = decoded row.
inline void dequantize_row(const RowLayout& l, const std::uint8_t* row, float* out) noexcept {
    scalar::dequantize_row(l, row, out);
}

/// Returns row . x (x has cols floats).
inline float dot_row(const RowLayout& l, const std::uint8_t* row, const float* x) noexcept {
    return scalar::dot_row(l, row, x);
}

/// Returns row . x for int8-quantized activations.
inline float dot_row(const RowLayout& l, const std::uint8_t* row, const QuantizedActivations& x) noexcept {
    return scalar::dot_row_q8(l, row, x.values.data(), x.scales.data(), x.sums.data());
}

/// y[i] = row(rows[i]) . x; rows == nullptr means rows 0..n-1.
inline void gemv_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const float* x, float* y) noexcept {
    scalar::gemv_rows(l, base, rows, n, x, y);
}

/// gemv_rows for int8-quantized activations.
inline void gemv_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const QuantizedActivations& x, float* y) noexcept {
    scalar::gemv_rows_q8(l, base, rows, n, x.values.data(), x.scales.data(), x.sums.data(), y);
}

/// y[0..cols) += sum_i a[i] * row(rows[i]); rows == nullptr means rows 0..n-1.
inline void axpy_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const float* a, float* y) noexcept {
    scalar::axpy_rows(l, base, rows, n, a, y);
}

}  // namespace kernels
}  // namespace sparseinfer
