// sparseinfer/quantized_weights.hpp - group-wise quantized weight matrices.
//
// QuantizedWeights<Bits> stores a rows x cols float matrix (row = neuron) with
// Bits-bit codes (2, 3, 4 or 8) in groups of group_size values (a multiple of
// 32) that share a scale and a min. Groups never straddle rows and each row is
// one contiguous byte range; the exact layout is in detail/row_format.hpp and
// the README. At 4 bits and groups of 32 a weight costs 4.5 bits plus 64 bits
// per row: the per-group scale and min are 8-bit codes under per-row float
// units.
//
//   std::vector<float> w(512 * 4096), x(4096), y(512);
//   auto q = sparseinfer::QuantizedWeights<4>::from_f32(w.data(), 512, 4096);
//   q.gemv(x.data(), y.data());                  // y = W x, every row
//   std::uint32_t active[] = {3, 17, 42};
//   q.gemv_rows(active, 3, x.data(), y.data());  // y[i] = row(active[i]) . x
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <istream>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "detail/aligned_allocator.hpp"
#include "detail/quantizer.hpp"
#include "detail/row_format.hpp"
#include "detail/weights_api.hpp"
#include "detail/weights_file.hpp"
#include "detail/write_file.hpp"
#include "error.hpp"

namespace sparseinfer {

template <int Bits>
class QuantizedWeightsView;

/// A rows x cols matrix quantized to Bits bits per value in groups along each row.
/// The read API (row access, dequantization and the dot/gemv/axpy kernels) is
/// documented in detail/weights_api.hpp and shared with QuantizedWeightsView.
template <int Bits>
class QuantizedWeights : public detail::WeightsReadApi<QuantizedWeights<Bits>, Bits> {
    static_assert(detail::is_supported_bits(Bits), "QuantizedWeights supports 2, 3, 4 and 8 bits");

public:
    /// Quantizes a row-major rows x cols float matrix. Throws sparseinfer::error on
    /// a null pointer, zero or overflowing sizes, a bad group size or a NaN/Inf
    /// value (naming its row and column).
    static QuantizedWeights from_f32(const float* data, std::size_t rows, std::size_t cols, QuantOptions opts = {}) {
        if (rows == 0) throw error("rows is 0; a quantized matrix needs at least one row");
        if (cols == 0) throw error("cols is 0; a quantized matrix needs at least one column");
        if (data == nullptr) throw error("argument 'data' is a null pointer");
        if (rows > std::numeric_limits<std::uint32_t>::max())
            throw error("rows is " + std::to_string(rows) + "; row indices are 32-bit, at most 4294967295 rows");
        QuantizedWeights w;
        w.layout_ = detail::make_row_layout(Bits, cols, opts.group_size);
        std::size_t values = 0, bytes = 0;
        if (!detail::checked_mul(rows, cols, values) || !detail::checked_mul(rows, w.layout_.row_bytes, bytes))
            throw error("rows * cols overflows (rows = " + std::to_string(rows) + ", cols = " + std::to_string(cols) +
                        ")");
        for (std::size_t i = 0; i < values; ++i)
            if (!std::isfinite(data[i]))
                throw error("value at row " + std::to_string(i / cols) + ", column " + std::to_string(i % cols) +
                            " is not finite (" + std::to_string(data[i]) + ")");
        w.rows_ = rows;
        w.bytes_.assign(bytes, 0);
        std::vector<detail::GroupFit> fits(w.layout_.groups);
        for (std::size_t r = 0; r < rows; ++r)
            detail::quantize_row(w.layout_, opts.method, r, data + r * cols, w.bytes_.data() + r * w.layout_.row_bytes,
                                 fits.data());
        return w;
    }

    /// Rows (neurons).
    std::size_t rows() const noexcept { return rows_; }
    /// The geometry of a row; what the kernels take.
    const detail::RowLayout& layout() const noexcept { return layout_; }
    /// All rows' bytes, row r at data() + r * row_bytes(); 64-byte aligned.
    const std::uint8_t* data() const noexcept { return bytes_.data(); }

    /// A view of this matrix (no copy), e.g. to build a SparseFfn from; this
    /// matrix must outlive it. Defined in quantized_weights_view.hpp, which
    /// this header includes at its end.
    QuantizedWeightsView<Bits> view() const noexcept;

    /// Writes the matrix in sparseinfer's weights file format (see serialize.hpp).
    /// Throws sparseinfer::error if the stream fails.
    void save(std::ostream& os) const { detail::write_weights_file(os, layout_, rows_, bytes_.data()); }

    /// Writes the matrix to a file at `path` (created or truncated).
    void save(const std::string& path) const {
        detail::write_file(path, "QuantizedWeights::save", [this](std::ostream& os) { save(os); });
    }

    /// Reads one weights file from the stream and validates all of it (header,
    /// sizes, checksum, row contents). Throws sparseinfer::format_error naming
    /// the problem and its byte offset; memory grows only with bytes actually read.
    static QuantizedWeights load(std::istream& is) {
        QuantizedWeights w;
        detail::WeightsFileInfo info = detail::read_weights_file(is, Bits, w.bytes_);
        w.layout_ = info.layout;
        w.rows_ = info.rows;
        return w;
    }

    /// Reads a weights file from `path`; sparseinfer::error if it cannot be opened.
    static QuantizedWeights load(const std::string& path) {
        std::ifstream is(path, std::ios::binary);
        if (!is) throw error("cannot open '" + path + "' for reading");
        return load(is);
    }

private:
    QuantizedWeights() = default;

    detail::RowLayout layout_{};
    std::size_t rows_ = 0;
    std::vector<std::uint8_t, detail::AlignedAllocator<std::uint8_t>> bytes_;
};

}  // namespace sparseinfer

// The view type, which needs QuantizedWeights complete: included last so that
// either header alone gives both classes.
#include "quantized_weights_view.hpp"
