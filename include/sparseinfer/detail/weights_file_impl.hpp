// sparseinfer/detail/weights_file_impl.hpp - the bodies of detail/weights_file.hpp:
// included by that header in the header-only mode, and compiled once by the
// kernels target (src/sparseinfer_separate.cpp) in the compiled mode.
#pragma once

#include <algorithm>
#include <cstring>
#include <ios>
#include <istream>
#include <ostream>
#include <string>

#include "checksum.hpp"
#include "stripe_checksum.hpp"
#include "weights_file.hpp"

namespace sparseinfer::detail {

SPARSEINFER_SEPARATE_FN WeightsFileInfo parse_weights_header(const std::uint8_t* h, const std::string& what,
                                                             std::uint64_t base, int expected_bits) {
    namespace f = weights_field;
    for (std::size_t i = 0; i < sizeof weights_magic; ++i)
        if (h[i] != weights_magic[i]) format_fail(what, base + i, "bad magic; not a sparseinfer weights file");
    const std::uint32_t version = load_u32(h + f::version);
    if (version < weights_format_version_min || version > weights_format_version)
        format_fail(what, base + f::version,
                    "format version is " + std::to_string(version) + "; this library reads versions 1 and 2");
    const std::uint32_t bits = load_u32(h + f::bits);
    if (bits > 8 || !is_supported_bits(static_cast<int>(bits)))
        format_fail(what, base + f::bits, "bits is " + std::to_string(bits) + "; supported widths are 2, 3, 4 and 8");
    if (static_cast<int>(bits) != expected_bits)
        format_fail(what, base + f::bits,
                    "file holds " + std::to_string(bits) + "-bit weights; the reader expects " +
                        std::to_string(expected_bits) + "-bit");
    const std::uint32_t group_size = load_u32(h + f::group_size);
    if (group_size == 0 || group_size % block_values != 0)
        format_fail(what, base + f::group_size,
                    "group size is " + std::to_string(group_size) + "; it must be a positive multiple of 32");
    const std::uint32_t param_layout = load_u32(h + f::param_layout);
    if (param_layout != param_layout_row_units)
        format_fail(what, base + f::param_layout,
                    "parameter layout id is " + std::to_string(param_layout) + "; this library reads layout 1");
    const std::uint64_t rows = load_u64(h + f::rows);
    if (rows == 0 || rows > 0xFFFFFFFFull)
        format_fail(what, base + f::rows, "rows is " + std::to_string(rows) + "; it must be in [1, 2^32 - 1]");
    const std::uint64_t cols = load_u64(h + f::cols);
    if (cols == 0 || cols > static_cast<std::uint64_t>(static_cast<std::size_t>(-1)))
        format_fail(what, base + f::cols, "cols is " + std::to_string(cols) + "; it must be at least 1");
    WeightsFileInfo info;
    try {
        info.layout = make_row_layout(static_cast<int>(bits), static_cast<std::size_t>(cols), group_size);
    } catch (const error&) {
        format_fail(what, base + f::cols, "cols " + std::to_string(cols) + " makes the row size overflow");
    }
    const std::uint64_t row_bytes = load_u64(h + f::row_bytes);
    if (row_bytes != info.layout.row_bytes)
        format_fail(what, base + f::row_bytes,
                    "row bytes is " + std::to_string(row_bytes) + "; the row format gives " +
                        std::to_string(info.layout.row_bytes) + " for these bits, cols and group size");
    info.rows = static_cast<std::size_t>(rows);
    const std::uint64_t payload = load_u64(h + f::payload_bytes);
    std::size_t expected = 0;
    if (!checked_mul(info.rows, info.layout.row_bytes, expected) ||
        !checked_add(expected, weights_header_bytes, info.file_bytes))
        format_fail(what, base + f::rows, "rows * row bytes overflows");
    if (payload != expected)
        format_fail(
            what, base + f::payload_bytes,
            "payload bytes is " + std::to_string(payload) + "; rows * row bytes is " + std::to_string(expected));
    info.payload_bytes = expected;
    info.checksum = load_u64(h + f::checksum);
    info.version = version;
    return info;
}

SPARSEINFER_SEPARATE_FN std::uint64_t weights_checksum(const std::uint8_t* header, const std::uint8_t* payload,
                                                       std::size_t n) noexcept {
    if (load_u32(header + weights_field::version) == 1) {
        Checksum64 c;
        c.update(header, weights_field::checksum);
        c.update(payload, n);
        return c.digest();
    }
    StripeChecksum64 c;
    c.update(payload, n);
    c.update(header, weights_field::checksum);
    return c.digest();
}

SPARSEINFER_SEPARATE_FN void check_weights_rows(const RowLayout& l, std::size_t row_begin, std::size_t row_end,
                                                const std::uint8_t* payload, const std::string& what,
                                                std::uint64_t payload_offset) {
    const std::size_t bb = block_bytes(l.bits);
    const std::size_t valid_blocks = (l.cols + block_values - 1) / block_values;
    const std::size_t tail = l.cols % block_values;  // values in a partial last block, 0 if none
    for (std::size_t r = row_begin; r < row_end; ++r) {
        const std::uint8_t* row = payload + r * l.row_bytes;
        const std::uint64_t at = payload_offset + static_cast<std::uint64_t>(r) * l.row_bytes;
        if (!std::isfinite(load_f32(row)))
            format_fail(what, at, "row " + std::to_string(r) + ": scale unit is not finite");
        if (!std::isfinite(load_f32(row + 4)))
            format_fail(what, at + 4, "row " + std::to_string(r) + ": min unit is not finite");
        if (const void* bad = std::memchr(row + l.mins_offset(), 0x80, l.groups)) {
            const auto g = static_cast<std::size_t>(static_cast<const std::uint8_t*>(bad) - (row + l.mins_offset()));
            format_fail(what, at + l.mins_offset() + g,
                        "row " + std::to_string(r) + ", group " + std::to_string(g) +
                            ": min code is -128; codes are in [-127, 127]");
        }
        const std::uint8_t* codes = row + l.codes_offset();
        if (tail != 0) {
            std::uint8_t q[block_values];
            unpack_block(l.bits, codes + (valid_blocks - 1) * bb, q);
            for (std::size_t j = tail; j < block_values; ++j)
                if (q[j] != 0)
                    format_fail(what, at + l.codes_offset() + (valid_blocks - 1) * bb,
                                "row " + std::to_string(r) + ": padding code past the last column is not zero");
        }
        for (std::size_t i = valid_blocks * bb; i < l.blocks * bb; ++i)
            if (codes[i] != 0)
                format_fail(what, at + l.codes_offset() + i,
                            "row " + std::to_string(r) + ": padding block past the last column is not zero");
    }
}

SPARSEINFER_SEPARATE_FN void verify_weights_payload(const std::uint8_t* header, const std::uint8_t* payload,
                                                    const WeightsFileInfo& info, const std::string& what,
                                                    std::uint64_t base) {
    // A multiple of the stripe checksum's block, so chunks are read in place;
    // small enough that a chunk's rows are still in L1/L2 when they are checked.
    constexpr std::size_t chunk = 32 * StripeChecksum64::block;
    auto run = [&](auto& sum) {
        std::size_t row = 0, at = 0;
        try {
            while (at < info.payload_bytes) {
                const std::size_t n = std::min(chunk, info.payload_bytes - at);
                sum.update(payload + at, n);
                at += n;
                const std::size_t complete = at / info.layout.row_bytes;
                check_weights_rows(info.layout, row, complete, payload, what, base + weights_header_bytes);
                row = complete;
            }
        } catch (const format_error&) {
            // Finish the checksum: a mismatch names the damage better than the row.
            sum.update(payload + at, info.payload_bytes - at);
            return false;
        }
        return true;
    };
    bool rows_ok = false;
    std::uint64_t got = 0;
    if (info.version == 1) {
        Checksum64 sum;
        sum.update(header, weights_field::checksum);
        rows_ok = run(sum);
        got = sum.digest();
    } else {
        StripeChecksum64 sum;
        rows_ok = run(sum);
        sum.update(header, weights_field::checksum);
        got = sum.digest();
    }
    const std::string covered = info.version == 1 ? "bytes [0, 56) and [64, " + std::to_string(info.file_bytes) + ")"
                                                  : "bytes [64, " + std::to_string(info.file_bytes) + ") and [0, 56)";
    if (got != info.checksum)
        format_fail(
            what, base + weights_field::checksum,
            "checksum mismatch: stored " + hex64(info.checksum) + ", computed " + hex64(got) + " over " + covered);
    if (!rows_ok)  // the checksum holds, so the row's fault is in the file as written: report it
        check_weights_rows(info.layout, 0, info.rows, payload, what, base + weights_header_bytes);
}

SPARSEINFER_SEPARATE_FN void encode_weights_header(const RowLayout& l, std::size_t rows, const std::uint8_t* payload,
                                                   std::uint8_t* h) {
    namespace f = weights_field;
    std::size_t payload_bytes = 0;
    if (!checked_mul(rows, l.row_bytes, payload_bytes)) throw error("rows * row bytes overflows");
    std::memset(h, 0, weights_header_bytes);
    std::memcpy(h, weights_magic, sizeof weights_magic);
    store_u32(h + f::version, weights_format_version);
    store_u32(h + f::bits, static_cast<std::uint32_t>(l.bits));
    store_u32(h + f::group_size, static_cast<std::uint32_t>(l.group_size));
    store_u32(h + f::param_layout, param_layout_row_units);
    store_u64(h + f::rows, rows);
    store_u64(h + f::cols, l.cols);
    store_u64(h + f::row_bytes, l.row_bytes);
    store_u64(h + f::payload_bytes, payload_bytes);
    store_u64(h + f::checksum, weights_checksum(h, payload, payload_bytes));
}

SPARSEINFER_SEPARATE_FN void write_weights_file(std::ostream& os, const RowLayout& l, std::size_t rows,
                                                const std::uint8_t* data) {
    if (l.row_stride != l.row_bytes) throw error("cannot save a matrix whose rows are bundled with others");
    std::uint8_t h[weights_header_bytes];
    encode_weights_header(l, rows, data, h);
    os.write(reinterpret_cast<const char*>(h), static_cast<std::streamsize>(weights_header_bytes));
    const std::size_t payload = rows * l.row_bytes;
    // Chunked so that a payload larger than std::streamsize's range is still written.
    constexpr std::size_t chunk = std::size_t{1} << 30;
    for (std::size_t done = 0; done < payload && os; done += chunk) {
        const std::size_t n = payload - done < chunk ? payload - done : chunk;
        os.write(reinterpret_cast<const char*>(data + done), static_cast<std::streamsize>(n));
    }
    if (!os) throw error("writing the weights file failed");
}

SPARSEINFER_SEPARATE_FN WeightsFileInfo parse_weights_file(const std::uint8_t* p, std::size_t size, int expected_bits,
                                                           Verify verify, const std::string& what, std::uint64_t base) {
    if (size < weights_header_bytes)
        format_fail(what, base + size, "file is " + std::to_string(size) + " bytes, shorter than the 64-byte header");
    WeightsFileInfo info = parse_weights_header(p, what, base, expected_bits);
    if (size < info.file_bytes)
        format_fail(what, base + size,
                    "truncated: the header declares " + std::to_string(info.file_bytes) + " bytes, only " +
                        std::to_string(size) + " are present");
    if (size > info.file_bytes)
        format_fail(what, base + info.file_bytes,
                    std::to_string(size - info.file_bytes) + " unexpected bytes after the end of the file");
    if (verify == Verify::full) {
        verify_weights_payload(p, p + weights_header_bytes, info, what, base);
    }
    return info;
}

/// Reads exactly n bytes; returns how many arrived (fewer at end of stream).
inline std::size_t read_some(std::istream& is, std::uint8_t* out, std::size_t n, std::uint64_t offset) {
    try {
        is.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n));
    } catch (const std::ios_base::failure& e) {
        format_fail("weights stream", offset, std::string("read failed: ") + e.what());
    }
    return static_cast<std::size_t>(is.gcount());
}

SPARSEINFER_SEPARATE_FN WeightsFileInfo read_weights_file(std::istream& is, int expected_bits, AlignedBytes& payload) {
    const std::string what = "weights stream";
    std::uint8_t h[weights_header_bytes];
    const std::size_t got = read_some(is, h, weights_header_bytes, 0);
    if (got < weights_header_bytes)
        format_fail(what, got, "stream ends after " + std::to_string(got) + " bytes, inside the 64-byte header");
    WeightsFileInfo info = parse_weights_header(h, what, 0, expected_bits);
    constexpr std::size_t chunk = std::size_t{1} << 16;
    payload.clear();
    std::size_t have = 0;
    while (have < info.payload_bytes) {
        const std::size_t want = info.payload_bytes - have < chunk ? info.payload_bytes - have : chunk;
        payload.resize(have + want);  // geometric growth: at most twice what was read
        const std::size_t n = read_some(is, payload.data() + have, want, weights_header_bytes + have);
        have += n;
        if (n < want)
            format_fail(what, weights_header_bytes + have,
                        "truncated: the header declares " + std::to_string(info.file_bytes) +
                            " bytes, the stream ends after " + std::to_string(weights_header_bytes + have));
    }
    verify_weights_payload(h, payload.data(), info, what, 0);
    return info;
}

}  // namespace sparseinfer::detail
