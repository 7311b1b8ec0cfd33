// Shared helpers of the fuzz targets: exercise the kernels on whatever a
// parser accepted, and re-seal checksums so mutated payloads reach the content
// checks instead of stopping at the checksum.
#pragma once

#include <sparseinfer/detail/array_file.hpp>
#include <sparseinfer/detail/checksum.hpp>
#include <sparseinfer/detail/weights_file.hpp>
#include <sparseinfer/quantized_activations.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace fuzz {

// Every kernel on every row: must stay in bounds whatever the payload holds.
template <class W>
void exercise(const W& w) {
    std::vector<float> x(w.cols(), 0.5f), y(w.rows()), row(w.cols());
    w.gemv(x.data(), y.data());
    const auto xq = sparseinfer::quantize_activations(x.data(), x.size());
    w.gemv(xq, y.data());
    std::vector<std::uint32_t> rows;
    for (std::size_t r = 0; r < w.rows(); r += 2) rows.push_back(static_cast<std::uint32_t>(r));
    std::vector<float> a(rows.size(), 0.25f);
    w.axpy_rows(rows.data(), rows.size(), a.data(), row.data());
    w.dequantize_row(w.rows() - 1, row.data());
}

// Writes the weights-file checksum a header at p (size bytes) would need.
inline void reseal_weights(std::uint8_t* p, std::size_t size) {
    if (size < sparseinfer::detail::weights_header_bytes) return;
    const std::uint64_t c = sparseinfer::detail::weights_checksum(p, p + sparseinfer::detail::weights_header_bytes,
                                                                  size - sparseinfer::detail::weights_header_bytes);
    sparseinfer::detail::store_u64(p + sparseinfer::detail::weights_field::checksum, c);
}

// Writes the checksum an array file at p (size bytes) would need.
inline void reseal_array(std::uint8_t* p, std::size_t size) {
    namespace d = sparseinfer::detail;
    if (size < d::array_header_bytes) return;
    const std::uint64_t c = d::array_checksum(p, p + d::array_header_bytes, size - d::array_header_bytes);
    d::store_u64(p + d::array_field::checksum, c);
}

// The width a weights header declares (byte 12), or 0 when absent or unsupported:
// only the reader of that width can accept the file, so the others are skipped.
inline int declared_bits(const std::uint8_t* p, std::size_t size) {
    if (size < 16) return 0;
    const std::uint32_t b = sparseinfer::detail::load_u32(p + 12);
    return b == 2 || b == 3 || b == 4 || b == 8 ? static_cast<int>(b) : 0;
}

// Calls f(std::integral_constant<int, Bits>) for the declared width, or for 4
// (to exercise the rejection) when there is none.
template <class F>
void with_bits(int bits, F f) {
    switch (bits) {
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    default: f(std::integral_constant<int, 4>{}); break;
    }
}

// Keeps the inputs small enough that each weights file's work stays bounded.
inline bool small_enough(std::size_t rows, std::size_t cols) { return rows * cols <= (std::size_t{1} << 20); }

}  // namespace fuzz
