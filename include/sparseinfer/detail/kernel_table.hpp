// sparseinfer/detail/kernel_table.hpp - the function table one instruction set
// provides for one code width.
//
// Every instruction-set header (kernels/scalar.hpp, avx2.hpp, avx512.hpp,
// neon.hpp) fills one KernelTable per Bits; kernels/registry.hpp lists them and
// kernels/isa.hpp picks the table of the best instruction set the CPU has. The
// entries take raw pointers and a RowLayout and have the semantics of the
// scalar reference (kernels/scalar.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "int8_panels.hpp"
#include "row_format.hpp"

namespace sparseinfer {

/// The kernel paths; kernels/registry.hpp lists them with their names, CPU checks and tables.
enum class Isa { scalar, avx2, avx512, avx512_vnni, neon, neon_dotprod };

namespace kernels {

/// One instruction set's kernels for one code width.
struct KernelTable {
    Isa isa;
    int bits;
    /// out[0..cols) = the decoded row.
    void (*dequantize_row)(const detail::RowLayout&, const std::uint8_t* row, float* out) noexcept;
    /// row . x, x of cols floats.
    float (*dot_row)(const detail::RowLayout&, const std::uint8_t* row, const float* x) noexcept;
    /// row . x for int8 activations (values, per-block scales, per-block scale * sum).
    float (*dot_row_q8)(const detail::RowLayout&, const std::uint8_t* row, const std::int8_t* xq, const float* xscale,
                        const float* xsum) noexcept;
    /// y[i] = row(rows[i]) . x; rows == nullptr means rows 0..n-1.
    void (*gemv_rows)(const detail::RowLayout&, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const float* x, float* y) noexcept;
    /// gemv_rows for int8 activations.
    void (*gemv_rows_q8)(const detail::RowLayout&, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                         const std::int8_t* xq, const float* xscale, const float* xsum, float* y) noexcept;
    /// y[0..cols) += sum_i a[i] * row(rows[i]); rows == nullptr means rows 0..n-1.
    void (*axpy_rows)(const detail::RowLayout&, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const float* a, float* y) noexcept;
    /// Quantizes x[0..n) to int8 per block of 32: q has ceil(n/32)*32 entries
    /// (zero-padded), scales and sums one per block.
    void (*quantize_activations)(const float* x, std::size_t n, std::int8_t* q, float* scales, float* sums) noexcept;
    /// y[i] = (float(sum_j P[i][j] * t[j]) * row_scales[i]) * t_scale for i < rows:
    /// P int8 rows in panels of padded depth D (a multiple of 4, at most 65536;
    /// codes in [-127, 127]; detail/int8_panels.hpp), t of D int8 codes. Exact
    /// integer sums, so every path gives the same bits. Independent of the code width.
    void (*gemv_s8_panels)(const std::int8_t* panels, const float* row_scales, std::size_t rows, std::size_t D,
                           const std::int8_t* t, float t_scale, float* y) noexcept;
    /// gemv_rows splits float x into three int8 limbs per block of 32 (from 8
    /// rows and 1024 columns on, x finite and within 2^64): its error bound adds
    /// 2^-23 of each block's largest |x| (kernels/detail/row_walk.inc).
    bool splits_float_x = false;
};

/// One kernel of a KernelTable, asked for alone (PathTables<I>::kernel<Bits, Op>()):
/// a unit then compiles only the kernels it calls, not the whole table.
enum class KernelOp {
    dequantize_row,
    dot_row,
    dot_row_q8,
    gemv_rows,
    gemv_rows_q8,
    axpy_rows,
    quantize_activations,
    gemv_s8_panels
};

/// The KernelTable member that holds kernel Op.
template <KernelOp Op>
constexpr auto kernel_member() noexcept {
    if constexpr (Op == KernelOp::dequantize_row)
        return &KernelTable::dequantize_row;
    else if constexpr (Op == KernelOp::dot_row)
        return &KernelTable::dot_row;
    else if constexpr (Op == KernelOp::dot_row_q8)
        return &KernelTable::dot_row_q8;
    else if constexpr (Op == KernelOp::gemv_rows)
        return &KernelTable::gemv_rows;
    else if constexpr (Op == KernelOp::gemv_rows_q8)
        return &KernelTable::gemv_rows_q8;
    else if constexpr (Op == KernelOp::axpy_rows)
        return &KernelTable::axpy_rows;
    else if constexpr (Op == KernelOp::quantize_activations)
        return &KernelTable::quantize_activations;
    else
        return &KernelTable::gemv_s8_panels;
}

/// The function pointer type of kernel Op.
template <KernelOp Op>
using KernelFn =
    std::remove_cv_t<std::remove_reference_t<decltype(std::declval<const KernelTable&>().*kernel_member<Op>())>>;

/// Index of a code width in a 4-entry per-Bits array (2, 3, 4, 8 -> 0..3).
constexpr int bits_index(int bits) noexcept { return bits == 2 ? 0 : bits == 3 ? 1 : bits == 4 ? 2 : 3; }

/// Calls f(std::integral_constant<int, B>{}) for the code width B == bits
/// (2, 3, 4 or 8; anything else is taken as 8, like bits_index): how a width
/// known only at run time reaches code instantiated per width.
template <class F>
decltype(auto) with_width(int bits, F&& f) {
    switch (bits) {
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    default: return f(std::integral_constant<int, 8>{});
    }
}

#if defined(SPARSEINFER_SEPARATE_KERNELS)
inline namespace compiled_mode {
#endif
/// The kernel tables of path I, one per code width: `built` tells whether this
/// build has the path, `table<Bits>()` gives its kernels for a width (nullptr
/// when not built). A path's primitives file specializes it when the build has
/// the path; kernels/registry.hpp defines the rest. A width's kernels are
/// compiled only where some code asks for that width's table, so a unit that
/// uses 4-bit weights alone compiles only the 4-bit kernels.
template <Isa I>
struct PathTables;
#if defined(SPARSEINFER_SEPARATE_KERNELS)
}  // namespace compiled_mode
#endif

}  // namespace kernels
}  // namespace sparseinfer

// Used by a primitives file, at global scope and outside its target region,
// for a path this build has: path ISA's kernels for width Bits are
// NS::table_for_bits<Bits>, and each of them alone NS::<kernel><Bits> (the
// width-independent ones NS::quantize_activations and NS::gemv_s8_panels).
// The kernels that use no int8 dot product (dequantize_row, float dot_row,
// axpy_rows, quantize_activations) are NS::shared_path's: a path that differs
// from another only in its dot-product instruction (avx512_vnni, neon_dotprod)
// names that path there, so those kernels are compiled once for both; any
// other path names itself. Only the branch of the kernel asked for is
// instantiated.
#define SPARSEINFER_BUILT_PATH(ISA, NS)                                      \
    template <>                                                              \
    struct sparseinfer::kernels::PathTables<ISA> {                           \
        static constexpr bool built = true;                                  \
        template <int Bits>                                                  \
        static const ::sparseinfer::kernels::KernelTable* table() noexcept { \
            return &NS::table_for_bits<Bits>;                                \
        }                                                                    \
        template <int Bits, ::sparseinfer::kernels::KernelOp Op>             \
        static ::sparseinfer::kernels::KernelFn<Op> kernel() noexcept {      \
            using K = ::sparseinfer::kernels::KernelOp;                      \
            if constexpr (Op == K::dequantize_row)                           \
                return &NS::shared_path::dequantize_row<Bits>;               \
            else if constexpr (Op == K::dot_row)                             \
                return &NS::shared_path::dot_row<Bits>;                      \
            else if constexpr (Op == K::dot_row_q8)                          \
                return &NS::dot_row_q8<Bits>;                                \
            else if constexpr (Op == K::gemv_rows)                           \
                return &NS::gemv_rows<Bits>;                                 \
            else if constexpr (Op == K::gemv_rows_q8)                        \
                return &NS::gemv_rows_q8<Bits>;                              \
            else if constexpr (Op == K::axpy_rows)                           \
                return &NS::shared_path::axpy_rows<Bits>;                    \
            else if constexpr (Op == K::quantize_activations)                \
                return &NS::shared_path::quantize_activations;               \
            else                                                             \
                return &NS::gemv_s8_panels;                                  \
        }                                                                    \
    };

namespace sparseinfer {
namespace kernels {}  // namespace kernels
}  // namespace sparseinfer
