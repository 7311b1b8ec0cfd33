// sparseinfer/kernels/scalar.hpp - the scalar reference kernels on the row format.
//
// Every SIMD kernel is tested against these. Kernels know nothing of the
// classes: they take a RowLayout, the first row's bytes and plain pointers, so
// they run unchanged on owned storage and on views over mapped files. They do
// not allocate, do not throw and only write their outputs, so several threads
// may call them at once on disjoint outputs.
//
// Row addressing: row r starts at base + r * layout.row_stride. A `rows` list of
// nullptr means rows 0, 1, ..., n-1 (the dense case).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "../detail/int8_panels.hpp"
#include "../detail/kernel_table.hpp"
#include "../detail/row_format.hpp"

namespace sparseinfer::kernels::scalar {

using detail::RowLayout;

/// Decoded scale and min of group g of a row.
inline void group_params(const RowLayout& l, const std::uint8_t* row, std::size_t g, float& d, float& m) noexcept {
    d = detail::load_f32(row) * static_cast<float>(row[l.scales_offset() + g]);
    m = detail::load_f32(row + 4) * static_cast<float>(static_cast<std::int8_t>(row[l.mins_offset() + g]));
}

/// out[0..cols) = the decoded row.
inline void dequantize_row(const RowLayout& l, const std::uint8_t* row, float* out) noexcept {
    const std::uint8_t* codes = row + l.codes_offset();
    const std::size_t bb = detail::block_bytes(l.bits), bpg = l.blocks_per_group();
    for (std::size_t g = 0; g < l.groups; ++g) {
        float d, m;
        group_params(l, row, g, d, m);
        for (std::size_t b = 0; b < bpg; ++b) {
            const std::size_t block = g * bpg + b, first = block * detail::block_values;
            if (first >= l.cols) break;
            std::uint8_t q[detail::block_values];
            detail::unpack_block(l.bits, codes + block * bb, q);
            const std::size_t n = l.cols - first < detail::block_values ? l.cols - first : detail::block_values;
            for (std::size_t j = 0; j < n; ++j) out[first + j] = d * static_cast<float>(q[j]) + m;
        }
    }
}

/// Returns row . x, x of length cols. Per group: d * sum(q * x) + m * sum(x),
/// so the min term costs one multiply-add per group.
inline float dot_row(const RowLayout& l, const std::uint8_t* row, const float* x) noexcept {
    const std::uint8_t* codes = row + l.codes_offset();
    const std::size_t bb = detail::block_bytes(l.bits), bpg = l.blocks_per_group();
    float acc = 0;
    for (std::size_t g = 0; g < l.groups; ++g) {
        float d, m;
        group_params(l, row, g, d, m);
        float sqx = 0, sx = 0;
        for (std::size_t b = 0; b < bpg; ++b) {
            const std::size_t block = g * bpg + b, first = block * detail::block_values;
            if (first >= l.cols) break;
            std::uint8_t q[detail::block_values];
            detail::unpack_block(l.bits, codes + block * bb, q);
            const std::size_t n = l.cols - first < detail::block_values ? l.cols - first : detail::block_values;
            for (std::size_t j = 0; j < n; ++j) {
                sqx += static_cast<float>(q[j]) * x[first + j];
                sx += x[first + j];
            }
        }
        acc += d * sqx + m * sx;
    }
    return acc;
}

/// Returns row . x for activations quantized to int8 per block of 32: xq holds
/// the padded int8 values, xscale and xsum each block's scale and scale * sum(q).
/// Per block the codes times xq are an exact integer sum; per group the min
/// term is one multiply-add with the blocks' sums.
inline float dot_row_q8(const RowLayout& l, const std::uint8_t* row, const std::int8_t* xq, const float* xscale,
                        const float* xsum) noexcept {
    const std::uint8_t* codes = row + l.codes_offset();
    const std::size_t bb = detail::block_bytes(l.bits), bpg = l.blocks_per_group();
    const std::size_t valid_blocks = (l.cols + detail::block_values - 1) / detail::block_values;
    float acc = 0;
    for (std::size_t g = 0; g < l.groups; ++g) {
        float d, m;
        group_params(l, row, g, d, m);
        float sqx = 0, sx = 0;
        for (std::size_t b = 0; b < bpg; ++b) {
            const std::size_t block = g * bpg + b;
            if (block >= valid_blocks) break;
            std::uint8_t q[detail::block_values];
            detail::unpack_block(l.bits, codes + block * bb, q);
            std::int32_t isum = 0;
            for (std::size_t j = 0; j < detail::block_values; ++j)
                isum += static_cast<std::int32_t>(q[j]) * xq[block * detail::block_values + j];
            sqx += xscale[block] * static_cast<float>(isum);
            sx += xsum[block];
        }
        acc += d * sqx + m * sx;
    }
    return acc;
}

/// y[i] = row(rows[i]) . x for i in [0, n); rows == nullptr means row i.
inline void gemv_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const float* x, float* y) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t r = rows ? rows[i] : i;
        y[i] = dot_row(l, base + r * l.row_stride, x);
    }
}

/// gemv_rows for int8-quantized activations (see dot_row_q8).
inline void gemv_rows_q8(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                         const std::int8_t* xq, const float* xscale, const float* xsum, float* y) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t r = rows ? rows[i] : i;
        y[i] = dot_row_q8(l, base + r * l.row_stride, xq, xscale, xsum);
    }
}

/// y[0..cols) += sum_i a[i] * row(rows[i]); rows == nullptr means row i.
inline void axpy_rows(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
                      const float* a, float* y) noexcept {
    const std::size_t bb = detail::block_bytes(l.bits), bpg = l.blocks_per_group();
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t* row = base + (rows ? rows[i] : i) * l.row_stride;
        const std::uint8_t* codes = row + l.codes_offset();
        for (std::size_t g = 0; g < l.groups; ++g) {
            float d, m;
            group_params(l, row, g, d, m);
            const float ad = a[i] * d, am = a[i] * m;
            for (std::size_t b = 0; b < bpg; ++b) {
                const std::size_t block = g * bpg + b, first = block * detail::block_values;
                if (first >= l.cols) break;
                std::uint8_t q[detail::block_values];
                detail::unpack_block(l.bits, codes + block * bb, q);
                const std::size_t n_valid =
                    l.cols - first < detail::block_values ? l.cols - first : detail::block_values;
                for (std::size_t j = 0; j < n_valid; ++j) y[first + j] += ad * static_cast<float>(q[j]) + am;
            }
        }
    }
}

/// Quantizes one block of n <= 32 values into q[32] (zero-padded); returns its scale
/// and writes scale * sum(q) to sum. A block holding NaN or +-Inf gets NaN scale and sum.
inline float quantize_activation_block(const float* x, std::size_t n, std::int8_t* q, float& sum) noexcept {
    float amax = 0;
    bool finite = true;
    for (std::size_t j = 0; j < n; ++j) {
        finite = finite && std::isfinite(x[j]);
        amax = std::fabs(x[j]) > amax ? std::fabs(x[j]) : amax;
    }
    for (std::size_t j = 0; j < detail::block_values; ++j) q[j] = 0;
    if (!finite) {
        sum = std::numeric_limits<float>::quiet_NaN();
        return sum;
    }
    const float scale = amax / 127.0f;
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    // 127 / amax overflows float when amax < ~3.7e-37 (a denormal block): scale the
    // values by 2^64 first, exactly, so they still map into [-127, 127] with their
    // signs. The SIMD paths do the same, so they stay bit-identical.
    const float pre = inv <= std::numeric_limits<float>::max() ? 1.0f : 18446744073709551616.0f;
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

/// Quantizes x[0..n) per block of 32 (see KernelTable::quantize_activations).
inline void quantize_activations(const float* x, std::size_t n, std::int8_t* q, float* scales, float* sums) noexcept {
    const std::size_t blocks = (n + detail::block_values - 1) / detail::block_values;
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t first = b * detail::block_values;
        const std::size_t len = n - first < detail::block_values ? n - first : detail::block_values;
        scales[b] = quantize_activation_block(x + first, len, q + first, sums[b]);
    }
}

/// y[i] = (float(P_i . t) * row_scales[i]) * t_scale for int8 rows in panels
/// (see KernelTable::gemv_s8_panels and detail/int8_panels.hpp).
inline void gemv_s8_panels(const std::int8_t* panels, const float* row_scales, std::size_t rows, std::size_t D,
                           const std::int8_t* t, float t_scale, float* y) noexcept {
    for (std::size_t i = 0; i < rows; ++i) {
        const std::int8_t* p =
            panels + (i / detail::s8_panel_rows) * detail::s8_panel_rows * D + (i % detail::s8_panel_rows) * 4;
        std::int32_t acc = 0;
        for (std::size_t c = 0; c < D; c += 4, p += 4 * detail::s8_panel_rows)
            for (std::size_t k = 0; k < 4; ++k) acc += static_cast<std::int32_t>(p[k]) * t[c + k];
        y[i] = static_cast<float>(acc) * row_scales[i] * t_scale;
    }
}

template <int Bits>
inline constexpr KernelTable table_for_bits = {Isa::scalar,          Bits,          dequantize_row, dot_row,
                                               dot_row_q8,           gemv_rows,     gemv_rows_q8,   axpy_rows,
                                               quantize_activations, gemv_s8_panels};

/// The scalar kernels for a code width (2, 3, 4 or 8).
inline const KernelTable& table(int bits) noexcept {
    static constexpr const KernelTable* tables[4] = {&table_for_bits<2>, &table_for_bits<3>, &table_for_bits<4>,
                                                     &table_for_bits<8>};
    return *tables[bits_index(bits)];
}

}  // namespace sparseinfer::kernels::scalar

// Header-only, the scalar path is one more table of the registry; the compiled
// mode's units reach it through the kernels unit like the others (tests still
// call scalar::table directly, as the reference).
// Its kernels do not depend on the width (they read it from the layout), so
// the whole table is compiled once and each kernel is taken from it.
#if !defined(SPARSEINFER_SEPARATE_KERNELS)
/// The scalar path's kernels, which every build has.
template <>
struct sparseinfer::kernels::PathTables<sparseinfer::Isa::scalar> {
    static constexpr bool built = true;  ///< always
    /// The scalar kernels for code width Bits.
    template <int Bits>
    static const KernelTable* table() noexcept {
        return &scalar::table_for_bits<Bits>;
    }
    /// The scalar kernel Op for code width Bits.
    template <int Bits, KernelOp Op>
    static KernelFn<Op> kernel() noexcept {
        return scalar::table_for_bits<Bits>.*kernel_member<Op>();
    }
};
#endif
