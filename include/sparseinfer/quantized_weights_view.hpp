// sparseinfer/quantized_weights_view.hpp - a quantized matrix over caller-owned bytes.
//
// QuantizedWeightsView<Bits> has the read API of QuantizedWeights<Bits> (row
// access, dequantization, every dot/gemv/axpy kernel) but does not own its
// bytes: it points into a weights file held in memory, typically a mapped one,
// so opening it copies nothing. from_bytes validates before returning and the
// kernels then run on the bytes unchanged. Any base address works: alignment
// is a matter of speed, not validity (the kernels read bytes unaligned).
//
//   sparseinfer::MappedFile file("ffn_down.siqw");
//   auto w = sparseinfer::QuantizedWeightsView<4>::from_bytes(file.data(), file.size());
//   w.gemv(x.data(), y.data());
//
// The bytes must outlive the view and stay unchanged while it is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

#include "detail/row_format.hpp"
#include "detail/weights_api.hpp"
#include "detail/weights_file.hpp"
#include "error.hpp"
#include "quantized_weights.hpp"

namespace sparseinfer {

/// A read-only quantized matrix over bytes the caller owns (see the header comment).
template <int Bits>
class QuantizedWeightsView : public detail::WeightsReadApi<QuantizedWeightsView<Bits>, Bits> {
    static_assert(detail::is_supported_bits(Bits), "QuantizedWeightsView supports 2, 3, 4 and 8 bits");

public:
    /// Validates the weights file in bytes [data, data + size) and views it.
    /// Verify::full (default) checks the header, every size (with overflow
    /// checks), the width against Bits, the checksum and the row contents;
    /// Verify::structure skips the checksum and content pass (O(1), the payload
    /// is not touched) for files you trust. `size` must be the file's exact size.
    /// Throws sparseinfer::format_error naming what was wrong and its byte offset.
    static QuantizedWeightsView from_bytes(const void* data, std::size_t size, Verify verify = Verify::full) {
        if (data == nullptr && size != 0) throw error("argument 'data' is a null pointer");
        const auto* p = static_cast<const std::uint8_t*>(data);
        const detail::WeightsFileInfo info = detail::parse_weights_file(p, size, Bits, verify, "weights file", 0);
        return QuantizedWeightsView(info.layout, info.rows, p + detail::weights_header_bytes);
    }

    /// An empty view (no rows), to be assigned.
    QuantizedWeightsView() = default;

    /// A view of an owned matrix (no copy); `w` must outlive the view.
    explicit QuantizedWeightsView(const QuantizedWeights<Bits>& w) noexcept
        : layout_(w.layout()), rows_(w.rows()), data_(w.data()) {}

    /// Rows (neurons).
    std::size_t rows() const noexcept { return rows_; }
    /// The geometry of a row; what the kernels take.
    const detail::RowLayout& layout() const noexcept { return layout_; }
    /// All rows' bytes, row r at data() + r * row_bytes(); as aligned as the caller's buffer.
    const std::uint8_t* data() const noexcept { return data_; }

    /// Writes the viewed matrix as a weights file (the same bytes QuantizedWeights::save writes).
    void save(std::ostream& os) const { detail::write_weights_file(os, layout_, rows_, data_); }

private:
    QuantizedWeightsView(const detail::RowLayout& layout, std::size_t rows, const std::uint8_t* data) noexcept
        : layout_(layout), rows_(rows), data_(data) {}

    detail::RowLayout layout_{};
    std::size_t rows_ = 0;
    const std::uint8_t* data_ = nullptr;
};

template <int Bits>
QuantizedWeightsView<Bits> QuantizedWeights<Bits>::view() const noexcept {
    return QuantizedWeightsView<Bits>(*this);
}

}  // namespace sparseinfer
