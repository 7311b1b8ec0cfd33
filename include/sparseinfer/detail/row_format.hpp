// sparseinfer/detail/row_format.hpp - the byte layout of one quantized row.
//
// A row (one neuron) is one contiguous byte range, so a single neuron can be
// read, dequantized, prefetched or streamed from a file on its own:
//
//   offset 0              float32  scale unit  (little-endian)
//   offset 4              float32  min unit
//   offset 8              uint8    scale code of each group      [groups]
//   offset 8 + groups     int8     min code of each group        [groups]
//   offset 8 + 2*groups   packed codes, one block of 32 values after another
//
// Row r of a matrix starts at base + r * row_stride (row_stride == row_bytes
// unless rows of several matrices are bundled).
// Group g decodes as  w = (scale_unit * scale_code[g]) * q + (min_unit * min_code[g])
// with q in [0, 2^Bits). A group of group_size values spans group_size/32 blocks.
// Within a block of 32 values, codes are packed so that unpacking is shifts and
// masks with no shuffles:
//   8-bit: 32 bytes, byte j = q[j].
//   4-bit: 16 bytes, byte j = q[j] | q[j+16] << 4.
//   2-bit:  8 bytes, byte j = q[j] | q[j+8] << 2 | q[j+16] << 4 | q[j+24] << 6.
//   3-bit: 12 bytes, the low two bits of every value in an 8-byte plane laid
//          out exactly as 2-bit, then a 4-byte plane whose bit j (byte j/8,
//          bit j%8) is bit 2 of q[j].
// The last group of a row whose cols is not a multiple of group_size is padded
// with zero codes; padding is excluded from fitting and never reaches a result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "../error.hpp"

namespace sparseinfer::detail {

/// Values per packed block; group sizes are multiples of it.
inline constexpr std::size_t block_values = 32;
/// Bytes of the per-row header (scale unit, min unit).
inline constexpr std::size_t row_header_bytes = 8;

constexpr bool is_supported_bits(int bits) noexcept { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

/// Bytes of one packed block of 32 codes.
constexpr std::size_t block_bytes(int bits) noexcept { return block_values * static_cast<std::size_t>(bits) / 8; }

/// Largest code value, 2^bits - 1.
constexpr int max_code(int bits) noexcept { return (1 << bits) - 1; }

/// Geometry of a quantized matrix: everything needed to find a row's parts.
struct RowLayout {
    int bits = 0;
    std::size_t cols = 0;
    std::size_t group_size = 0;
    std::size_t groups = 0;     ///< groups per row, ceil(cols / group_size)
    std::size_t blocks = 0;     ///< packed 32-value blocks per row
    std::size_t row_bytes = 0;  ///< bytes of one whole row
    /// Distance between consecutive rows; row_bytes for a plain matrix, larger
    /// when rows of several matrices are bundled (e.g. a neuron's gate, up and down).
    std::size_t row_stride = 0;

    std::size_t scales_offset() const noexcept { return row_header_bytes; }
    std::size_t mins_offset() const noexcept { return row_header_bytes + groups; }
    std::size_t codes_offset() const noexcept { return row_header_bytes + 2 * groups; }
    std::size_t blocks_per_group() const noexcept { return group_size / block_values; }
    std::size_t padded_cols() const noexcept { return blocks * block_values; }
};

/// a * b, or false when it overflows std::size_t.
inline bool checked_mul(std::size_t a, std::size_t b, std::size_t& out) noexcept {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return false;
    out = a * b;
    return true;
}

/// a + b, or false when it overflows std::size_t.
inline bool checked_add(std::size_t a, std::size_t b, std::size_t& out) noexcept {
    if (b > std::numeric_limits<std::size_t>::max() - a) return false;
    out = a + b;
    return true;
}

/// Validates the geometry and computes the layout; throws sparseinfer::error.
inline RowLayout make_row_layout(int bits, std::size_t cols, std::size_t group_size) {
    if (!is_supported_bits(bits))
        throw error("bits is " + std::to_string(bits) + "; supported widths are 2, 3, 4 and 8");
    if (cols == 0) throw error("cols is 0; a quantized matrix needs at least one column");
    if (group_size == 0 || group_size % block_values != 0)
        throw error("group_size is " + std::to_string(group_size) + "; it must be a positive multiple of 32");
    RowLayout l;
    l.bits = bits;
    l.cols = cols;
    l.group_size = group_size;
    l.groups = cols / group_size + (cols % group_size != 0 ? 1 : 0);
    std::size_t blocks_per_group = group_size / block_values;
    std::size_t code_bytes = 0, param_bytes = 0, total = 0;
    if (!checked_mul(l.groups, blocks_per_group, l.blocks) || !checked_mul(l.blocks, block_bytes(bits), code_bytes) ||
        !checked_mul(l.groups, 2, param_bytes) || !checked_add(code_bytes, param_bytes, total) ||
        !checked_add(total, row_header_bytes, l.row_bytes))
        throw error("cols " + std::to_string(cols) + " makes the row size overflow");
    l.row_stride = l.row_bytes;
    return l;
}

/// Reads a little-endian float32 from possibly unaligned bytes.
inline float load_f32(const std::uint8_t* p) noexcept {
    std::uint32_t u = static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                      static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

/// Writes a float32 little-endian to possibly unaligned bytes.
inline void store_f32(std::uint8_t* p, float f) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    p[0] = static_cast<std::uint8_t>(u);
    p[1] = static_cast<std::uint8_t>(u >> 8);
    p[2] = static_cast<std::uint8_t>(u >> 16);
    p[3] = static_cast<std::uint8_t>(u >> 24);
}

/// Packs 32 codes (each < 2^bits) into one block in the layout above.
inline void pack_block(int bits, const std::uint8_t* q, std::uint8_t* out) noexcept {
    switch (bits) {
    case 8: std::memcpy(out, q, 32); break;
    case 4:
        for (int j = 0; j < 16; ++j) out[j] = static_cast<std::uint8_t>(q[j] | q[j + 16] << 4);
        break;
    case 2:
        for (int j = 0; j < 8; ++j)
            out[j] = static_cast<std::uint8_t>(q[j] | q[j + 8] << 2 | q[j + 16] << 4 | q[j + 24] << 6);
        break;
    case 3:
        for (int j = 0; j < 8; ++j)
            out[j] = static_cast<std::uint8_t>((q[j] & 3) | (q[j + 8] & 3) << 2 | (q[j + 16] & 3) << 4 |
                                               (q[j + 24] & 3) << 6);
        for (int b = 0; b < 4; ++b) {
            std::uint8_t hi = 0;
            for (int k = 0; k < 8; ++k) hi = static_cast<std::uint8_t>(hi | ((q[8 * b + k] >> 2) & 1) << k);
            out[8 + b] = hi;
        }
        break;
    default: break;
    }
}

/// Unpacks one block into 32 codes.
inline void unpack_block(int bits, const std::uint8_t* in, std::uint8_t* q) noexcept {
    switch (bits) {
    case 8: std::memcpy(q, in, 32); break;
    case 4:
        for (int j = 0; j < 16; ++j) {
            q[j] = in[j] & 15;
            q[j + 16] = in[j] >> 4;
        }
        break;
    case 2:
    case 3:
        for (int j = 0; j < 8; ++j) {
            q[j] = in[j] & 3;
            q[j + 8] = (in[j] >> 2) & 3;
            q[j + 16] = (in[j] >> 4) & 3;
            q[j + 24] = (in[j] >> 6) & 3;
        }
        if (bits == 3)
            for (int j = 0; j < 32; ++j) q[j] = static_cast<std::uint8_t>(q[j] | ((in[8 + j / 8] >> (j % 8)) & 1) << 2);
        break;
    default: break;
    }
}

}  // namespace sparseinfer::detail
