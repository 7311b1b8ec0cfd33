// sparseinfer/detail/ffn_matrices.hpp - the checks and conversions that turn
// a layer's matrices into what SparseFfn reads: float input checked finite,
// down transposed (one row per neuron), and the three quantized matrices
// checked against each other (one layout, one row count), and decoded back
// for references.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../kernels/dispatch.hpp"
#include "row_format.hpp"

namespace sparseinfer::detail {

/// Throws sparseinfer::error naming the first non-finite value of matrix `name`
/// (`values` floats, rows of `cols`).
inline void check_finite_matrix(const float* m, std::size_t values, std::size_t cols, const char* name) {
    for (std::size_t i = 0; i < values; ++i)
        if (!std::isfinite(m[i]))
            throw error(std::string("matrix '") + name + "': value at row " + std::to_string(i / cols) + ", column " +
                        std::to_string(i % cols) + " is not finite");
}

/// down [d_model][hidden] transposed to [hidden][d_model], in tiles so both
/// sides are read in cache lines.
inline std::vector<float> transpose_down(const float* down, std::size_t d_model, std::size_t hidden) {
    std::vector<float> down_t(d_model * hidden);
    const std::size_t tile = 64;
    for (std::size_t i0 = 0; i0 < hidden; i0 += tile) {
        const std::size_t ni = std::min(tile, hidden - i0);
        for (std::size_t j = 0; j < d_model; ++j)
            for (std::size_t i = 0; i < ni; ++i) down_t[(i0 + i) * d_model + j] = down[j * hidden + i0 + i];
    }
    return down_t;
}

/// Checks a layer's views against each other: gate (optional), up and down_t
/// share one layout (columns, group size, row bytes) and row count, rows are
/// not bundled, up is not empty and neuron ids fit 32 bits. Throws
/// sparseinfer::error naming the mismatch.
/// Checks a float layer as a checkpoint gives it (gate may be null): throws
/// sparseinfer::error naming the argument, the size or the non-finite value.
inline void check_ffn_floats(const float* gate, const float* up, const float* down, std::size_t d_model,
                             std::size_t hidden) {
    if (up == nullptr) throw error("argument 'up' is a null pointer");
    if (down == nullptr) throw error("argument 'down' is a null pointer");
    if (d_model == 0) throw error("d_model is 0");
    if (hidden == 0) throw error("hidden is 0");
    if (hidden > std::numeric_limits<std::uint32_t>::max())
        throw error("hidden is " + std::to_string(hidden) + "; neuron ids are 32-bit");
    std::size_t values = 0;
    if (!checked_mul(hidden, d_model, values)) throw error("d_model * hidden overflows");
    if (gate != nullptr) check_finite_matrix(gate, values, d_model, "gate");
    check_finite_matrix(up, values, d_model, "up");
    check_finite_matrix(down, values, hidden, "down");
}

/// The decoded matrix of a view [rows][cols], or its transpose [cols][rows]
/// (down^T back to down as checkpoints hold it).
template <int Bits, class View>
std::vector<float> dequantize_matrix(const View& m, bool transposed) {
    const std::size_t rows = m.rows(), cols = m.cols();
    std::vector<float> out(rows * cols), row(cols);
    for (std::size_t i = 0; i < rows; ++i) {
        kernels::dequantize_row<Bits>(m.layout(), m.data() + i * m.layout().row_stride, row.data());
        for (std::size_t j = 0; j < cols; ++j) (transposed ? out[j * rows + i] : out[i * cols + j]) = row[j];
    }
    return out;
}

template <class View>
void check_ffn_views(const View* gate, const View& up, const View& down_t) {
    auto same_shape = [&](const View& m, const char* name) {
        const RowLayout& a = m.layout();
        const RowLayout& b = up.layout();
        if (m.rows() != up.rows())
            throw error(std::string("matrix '") + name + "' has " + std::to_string(m.rows()) + " rows; 'up' has " +
                        std::to_string(up.rows()) + " (both must be hidden)");
        if (a.cols != b.cols || a.group_size != b.group_size || a.row_bytes != b.row_bytes)
            throw error(std::string("matrix '") + name + "' has " + std::to_string(a.cols) + " columns in groups of " +
                        std::to_string(a.group_size) + "; 'up' has " + std::to_string(b.cols) + " in groups of " +
                        std::to_string(b.group_size) +
                        " (the layer needs one layout: d_model columns, one group size)");
        if (a.row_stride != a.row_bytes)
            throw error(std::string("matrix '") + name + "' has rows " + std::to_string(a.row_stride) +
                        " bytes apart, not row_bytes (" + std::to_string(a.row_bytes) + ")");
    };
    if (up.data() == nullptr || up.rows() == 0) throw error("matrix 'up' is empty");
    if (gate != nullptr) same_shape(*gate, "gate");
    same_shape(up, "up");
    same_shape(down_t, "down_t");
    if (up.rows() > std::numeric_limits<std::uint32_t>::max())
        throw error("hidden is " + std::to_string(up.rows()) + "; neuron ids are 32-bit");
}

}  // namespace sparseinfer::detail
