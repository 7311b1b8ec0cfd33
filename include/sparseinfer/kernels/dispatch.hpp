// sparseinfer/kernels/dispatch.hpp - the kernel entry points, routed to the best
// instruction set the CPU has (chosen once; see kernels/isa.hpp for the choice,
// SPARSEINFER_ISA and init_kernels()).
//
// These take a RowLayout and raw row bytes, like the scalar reference, and
// perform no checks: the classes in front of them validate. A caller that
// knows the code width at compile time names it (gemv_rows<4>(...)), so only
// that width's kernels are compiled; without it the layout's width is used at
// run time and every width's kernels are compiled. They do not
// allocate or throw, and may be called from several threads at once on
// disjoint outputs.
//
//   sparseinfer::kernels::init_kernels();  // once: reports a bad SPARSEINFER_ISA
//   const auto& l = weights.layout();
//   sparseinfer::kernels::gemv_rows(l, weights.data(), rows, n, x, y);
#pragma once

#include <cstddef>
#include <cstdint>

#include "../detail/row_format.hpp"
#include "../quantized_activations.hpp"
#include "isa.hpp"

namespace sparseinfer::kernels {

using sparseinfer::detail::RowLayout;

/// The chosen kernel Op for l: width Bits alone, or l.bits' table when Bits is 0.
template <KernelOp Op, int Bits>
KernelFn<Op> chosen_kernel(const RowLayout& l) noexcept {
    if constexpr (Bits == 0)
        return sparseinfer::detail::active_table(l.bits).*kernel_member<Op>();
    else
        return sparseinfer::detail::active_kernel<Bits, Op>();
}

/// out[0..cols) = decoded row.
template <int Bits = 0>
void dequantize_row(const RowLayout& l, const std::uint8_t* row, float* out) noexcept {
    chosen_kernel<KernelOp::dequantize_row, Bits>(l)(l, row, out);
}

/// Returns row . x (x has cols floats).
template <int Bits = 0>
float dot_row(const RowLayout& l, const std::uint8_t* row, const float* x) noexcept {
    return chosen_kernel<KernelOp::dot_row, Bits>(l)(l, row, x);
}

/// Returns row . x for int8-quantized activations.
template <int Bits = 0>
float dot_row(const RowLayout& l, const std::uint8_t* row, const QuantizedActivations& x) noexcept {
    return chosen_kernel<KernelOp::dot_row_q8, Bits>(l)(l, row, x.values.data(), x.scales.data(), x.sums.data());
}

/// y[i] = row(rows[i]) . x; rows == nullptr means rows 0..n-1.
template <int Bits = 0>
void gemv_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n, const float* x,
               float* y) noexcept {
    chosen_kernel<KernelOp::gemv_rows, Bits>(l)(l, base, rows, n, x, y);
}

/// gemv_rows for int8-quantized activations.
template <int Bits = 0>
void gemv_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
               const QuantizedActivations& x, float* y) noexcept {
    chosen_kernel<KernelOp::gemv_rows_q8, Bits>(l)(l, base, rows, n, x.values.data(), x.scales.data(), x.sums.data(),
                                                   y);
}

/// y[0..cols) += sum_i a[i] * row(rows[i]); rows == nullptr means rows 0..n-1.
template <int Bits = 0>
void axpy_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n, const float* a,
               float* y) noexcept {
    chosen_kernel<KernelOp::axpy_rows, Bits>(l)(l, base, rows, n, a, y);
}

}  // namespace sparseinfer::kernels
