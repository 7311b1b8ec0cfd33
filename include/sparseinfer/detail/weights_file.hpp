// sparseinfer/detail/weights_file.hpp - the on-disk format of one quantized matrix.
//
// A weights file is a 64-byte header followed by the rows exactly as they are
// in memory (detail/row_format.hpp), so the payload starts 64-byte aligned and
// a view over a mapped file needs no copy. All integers are little-endian.
//
//   offset  size  field
//        0     8  magic 89 'S' 'I' 'Q' 'W' 0D 0A 1A
//        8     4  u32 format version (2; version 1 is still read)
//       12     4  u32 bits per code (2, 3, 4 or 8)
//       16     4  u32 group size (a positive multiple of 32)
//       20     4  u32 parameter layout id (1: per-row float units, u8 scale codes, i8 min codes)
//       24     8  u64 rows (1 .. 2^32 - 1)
//       32     8  u64 cols (>= 1)
//       40     8  u64 row bytes (must equal the size the row format gives)
//       48     8  u64 payload bytes (must equal rows * row bytes)
//       56     8  u64 checksum: version 2, StripeChecksum64 of the payload
//                 [64, 64 + payload) then bytes [0, 56); version 1, Checksum64
//                 of bytes [0, 56) then the payload
//       64     .  payload: rows * row bytes; the file ends there
//
// The two versions differ only in the checksum: version 2's runs at vector
// width (detail/stripe_checksum.hpp) and starts at the 64-byte aligned payload,
// so verifying a mapped file costs little more than reading it.
//
// Every byte is covered: the header fields are checked one by one, the
// checksum covers the rest, and the full check also rejects what the writer
// never produces (non-finite units, min code -128, non-zero padding codes).
// The full check is one pass: each chunk of rows is checksummed, then its rows
// are checked while their bytes are still in cache.
// The format code is std-only and knows nothing of the classes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <string>
#include <vector>

#include "../error.hpp"
#include "aligned_allocator.hpp"
#include "compiled_mode.hpp"
#include "row_format.hpp"

namespace sparseinfer {

/// How much of a file a reader checks before handing out a view.
enum class Verify {
    /// Header, sizes, checksum and row contents: safe on any bytes (the default).
    full,
    /// Header and sizes only, O(1): the payload is never touched, so a file you
    /// trust (e.g. one you wrote) maps in constant time. Kernels still stay in
    /// bounds whatever the payload holds; damaged bytes give wrong numbers, never UB.
    structure,
};

}  // namespace sparseinfer

namespace sparseinfer::detail {

inline constexpr std::uint8_t weights_magic[8] = {0x89, 'S', 'I', 'Q', 'W', 0x0D, 0x0A, 0x1A};
/// The version the writer produces (2: StripeChecksum64); readers accept 1 and 2.
inline constexpr std::uint32_t weights_format_version = 2;
/// The oldest version still read (1: Checksum64, header first).
inline constexpr std::uint32_t weights_format_version_min = 1;
/// Parameter layout 1: the row format of detail/row_format.hpp.
inline constexpr std::uint32_t param_layout_row_units = 1;
inline constexpr std::size_t weights_header_bytes = 64;
/// Payloads start on this boundary within a file.
inline constexpr std::size_t file_alignment = 64;

namespace weights_field {
inline constexpr std::size_t magic = 0, version = 8, bits = 12, group_size = 16, param_layout = 20, rows = 24,
                             cols = 32, row_bytes = 40, payload_bytes = 48, checksum = 56;
}

inline std::uint32_t load_u32(const std::uint8_t* p) noexcept {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
inline std::uint64_t load_u64(const std::uint8_t* p) noexcept {
    return static_cast<std::uint64_t>(load_u32(p)) | static_cast<std::uint64_t>(load_u32(p + 4)) << 32;
}
inline void store_u32(std::uint8_t* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline void store_u64(std::uint8_t* p, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

/// Throws format_error "<what>: <message> (at byte offset <offset>)".
[[noreturn]] inline void format_fail(const std::string& what, std::uint64_t offset, const std::string& message) {
    throw format_error(what + ": " + message + " (at byte offset " + std::to_string(offset) + ")");
}

inline std::string hex64(std::uint64_t v) {
    static const char digits[] = "0123456789abcdef";
    std::string s = "0x";
    for (int i = 15; i >= 0; --i) s += digits[(v >> (4 * i)) & 15];
    return s;
}

/// Rounds up to the file alignment; false on overflow.
inline bool align_file_offset(std::size_t n, std::size_t& out) noexcept {
    if (!checked_add(n, file_alignment - 1, out)) return false;
    out -= out % file_alignment;
    return true;
}

/// What a validated header describes.
struct WeightsFileInfo {
    RowLayout layout{};
    std::size_t rows = 0;
    std::size_t payload_bytes = 0;
    std::size_t file_bytes = 0;  ///< header + payload
    std::uint64_t checksum = 0;  ///< as stored
    std::uint32_t version = 0;   ///< format version, which names the checksum
};

using AlignedBytes = std::vector<std::uint8_t, AlignedAllocator<std::uint8_t>>;

/// Validates a 64-byte header. `base` is the header's offset in the enclosing
/// file (for messages), `expected_bits` the width the caller's type needs.
SPARSEINFER_SEPARATE_FN WeightsFileInfo parse_weights_header(const std::uint8_t* h, const std::string& what,
                                                             std::uint64_t base, int expected_bits);

/// The checksum a file needs, for the version its header declares (bytes 8-11):
/// version 1, Checksum64 of header bytes [0, 56) then the payload; otherwise
/// StripeChecksum64 of the payload then header bytes [0, 56).
SPARSEINFER_SEPARATE_FN std::uint64_t weights_checksum(const std::uint8_t* header, const std::uint8_t* payload,
                                                       std::size_t n) noexcept;

/// Rejects what the writer never produces: non-finite units, min code -128 and
/// non-zero codes past the last column. None of these could make a kernel read
/// out of bounds (codes are bounded by their width); they mark a damaged or
/// hand-made file.
SPARSEINFER_SEPARATE_FN void check_weights_rows(const RowLayout& l, std::size_t row_begin, std::size_t row_end,
                                                const std::uint8_t* payload, const std::string& what,
                                                std::uint64_t payload_offset);

/// The full check of a payload in one pass: every chunk of rows is fed to the
/// checksum of the file's version, then the rows it completed are checked while
/// their bytes are in cache. A damaged file reports a checksum mismatch first,
/// as when the two checks ran one after the other.
SPARSEINFER_SEPARATE_FN void verify_weights_payload(const std::uint8_t* header, const std::uint8_t* payload,
                                                    const WeightsFileInfo& info, const std::string& what,
                                                    std::uint64_t base);

/// The 64-byte header of rows x layout stored contiguously at `payload`.
SPARSEINFER_SEPARATE_FN void encode_weights_header(const RowLayout& l, std::size_t rows, const std::uint8_t* payload,
                                                   std::uint8_t* h);

/// Writes one weights file; throws sparseinfer::error if the stream fails.
SPARSEINFER_SEPARATE_FN void write_weights_file(std::ostream& os, const RowLayout& l, std::size_t rows,
                                                const std::uint8_t* data);

/// Validates a whole weights file held in memory (exactly `size` bytes).
SPARSEINFER_SEPARATE_FN WeightsFileInfo parse_weights_file(const std::uint8_t* p, std::size_t size, int expected_bits,
                                                           Verify verify, const std::string& what, std::uint64_t base);

/// Reads and fully validates one weights file from a stream. The payload is
/// read in 64 KiB chunks into a buffer that grows geometrically, so memory is
/// at most about twice the bytes actually present, never a size taken from the
/// header alone.
SPARSEINFER_SEPARATE_FN WeightsFileInfo read_weights_file(std::istream& is, int expected_bits, AlignedBytes& payload);

}  // namespace sparseinfer::detail

#if !defined(SPARSEINFER_SEPARATE_KERNELS)
#include "weights_file_impl.hpp"
#endif
