// sparseinfer/detail/int8_panels.hpp - int8 rows stored in panels of 16 rows,
// the operand of the panel GEMV kernel (KernelTable::gemv_s8_panels).
//
// Short int8 rows (a low-rank factor's rows are 32 wide) are too short for a
// row-at-a-time dot product: its set-up and horizontal reduction cost more than
// the multiplies. Stored as panels, one vector instruction multiplies 16 rows by
// the same 4 activation values and accumulates 16 row sums in 16 int32 lanes,
// with no horizontal reduction at all:
//   - rows are grouped 16 per panel; the last panel is zero padded;
//   - the depth (row length) is padded with zeros to D, a multiple of 4;
//   - a panel is D / 4 chunks of 64 bytes; chunk c holds
//     row0[4c..4c+3], row1[4c..4c+3], ..., row15[4c..4c+3];
//   - panels follow each other: value (i, j) is at byte
//     (i / 16) * 16 * D + (j / 4) * 64 + (i % 16) * 4 + j % 4.
// Codes are in [-127, 127] (detail::round_to_int8 gives these): the AVX2 and
// AVX-512 (no VNNI) kernels multiply |t| by P with t's sign applied, which
// -128 would overflow. Activation codes t may be any int8. D <= 65536 keeps
// every int32 sum exact, on every path.
//
//   std::vector<std::int8_t> panels(detail::s8_panel_bytes(rows, depth));
//   detail::pack_s8_panels(p_rows, rows, depth, /*src_stride=*/depth, panels.data());
//   table.gemv_s8_panels(panels.data(), scales, rows, detail::s8_panel_depth(depth), t, t_scale, y);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sparseinfer::detail {

/// Rows per panel.
constexpr std::size_t s8_panel_rows = 16;
/// The largest padded depth the kernels accept (int32 sums stay exact).
constexpr std::size_t s8_panel_max_depth = 65536;

/// The padded depth D of rows `depth` long: the next multiple of 4.
constexpr std::size_t s8_panel_depth(std::size_t depth) noexcept { return (depth + 3) / 4 * 4; }

/// Number of panels holding `rows` rows.
constexpr std::size_t s8_panel_count(std::size_t rows) noexcept { return (rows + s8_panel_rows - 1) / s8_panel_rows; }

/// Bytes of the panels of rows x depth values (the caller checks for overflow).
constexpr std::size_t s8_panel_bytes(std::size_t rows, std::size_t depth) noexcept {
    return s8_panel_count(rows) * s8_panel_rows * s8_panel_depth(depth);
}

/// Byte offset of value (i, j) in panels of padded depth D.
constexpr std::size_t s8_panel_offset(std::size_t i, std::size_t j, std::size_t D) noexcept {
    return (i / s8_panel_rows) * s8_panel_rows * D + (j / 4) * 4 * s8_panel_rows + (i % s8_panel_rows) * 4 + j % 4;
}

/// Packs rows x depth int8 values (row i at src + i * src_stride) into
/// out[0..s8_panel_bytes(rows, depth)), padding included.
inline void pack_s8_panels(const std::int8_t* src, std::size_t rows, std::size_t depth, std::size_t src_stride,
                           std::int8_t* out) noexcept {
    if (rows == 0) return;
    const std::size_t D = s8_panel_depth(depth);
    std::memset(out, 0, s8_panel_bytes(rows, depth));
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < depth; ++j) out[s8_panel_offset(i, j, D)] = src[i * src_stride + j];
}

/// Rounds v[0..n) to int8 with one scale, max |v| / 127, into q[0..n) and
/// returns the scale (0 for an all-zero v, whose codes are all 0). v is finite.
inline float round_to_int8(const float* v, std::size_t n, std::int8_t* q) noexcept {
    float amax = 0;
    for (std::size_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    for (std::size_t j = 0; j < n; ++j) q[j] = static_cast<std::int8_t>(std::lround(v[j] * inv));
    return amax / 127.0f;
}

}  // namespace sparseinfer::detail
