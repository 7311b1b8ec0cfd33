// sparseinfer/detail/array_file.hpp - the on-disk format of one plain array,
// the second kind of tensor a tensor file holds (tensor_file.hpp).
//
// Some data has no quantized row format: a low-rank predictor's int8 panels
// (detail/int8_panels.hpp) and its per-neuron floats. An array file stores such
// a one-dimensional array as it is in memory after a 64-byte header, so the
// payload starts 64-byte aligned and is read in place. Little-endian:
//
//   offset  size  field
//        0     8  magic 89 'S' 'I' 'A' 'R' 0D 0A 1A
//        8     4  u32 format version (1)
//       12     4  u32 element type (1: int8, 2: float32)
//       16     8  u64 element count (>= 1)
//       24     8  u64 payload bytes (must equal count * element bytes)
//       32    24  reserved, zero
//       56     8  u64 checksum: StripeChecksum64 of the payload then bytes [0, 56)
//       64     .  payload; the file ends there
//
// The format code is std-only: what the values mean (and which are valid) is
// up to the reader of a named array, e.g. model_file.hpp for a predictor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

#include "../error.hpp"
#include "row_format.hpp"
#include "stripe_checksum.hpp"
#include "weights_file.hpp"

namespace sparseinfer {

/// The element type of a plain array in a tensor file (TensorFile::Entry::array).
enum class ArrayType : std::uint32_t {
    none = 0,     ///< not an array: a quantized matrix
    int8 = 1,     ///< std::int8_t
    float32 = 2,  ///< IEEE float32, little-endian
};

}  // namespace sparseinfer

namespace sparseinfer::detail {

inline constexpr std::uint8_t array_magic[8] = {0x89, 'S', 'I', 'A', 'R', 0x0D, 0x0A, 0x1A};
inline constexpr std::uint32_t array_format_version = 1;
inline constexpr std::size_t array_header_bytes = 64;

namespace array_field {
inline constexpr std::size_t magic = 0, version = 8, type = 12, count = 16, payload_bytes = 24, reserved = 32,
                             checksum = 56;
}

/// Bytes of one element, 0 for an unknown type.
constexpr std::size_t array_element_bytes(ArrayType t) noexcept {
    return t == ArrayType::int8 ? 1 : t == ArrayType::float32 ? 4 : 0;
}

/// The name of an element type, for messages.
inline const char* array_type_name(ArrayType t) noexcept {
    return t == ArrayType::int8 ? "int8" : t == ArrayType::float32 ? "float32" : "no array";
}

/// True when the bytes start with an array file's magic.
inline bool is_array_file(const std::uint8_t* p, std::size_t size) noexcept {
    if (size < sizeof array_magic) return false;
    for (std::size_t i = 0; i < sizeof array_magic; ++i)
        if (p[i] != array_magic[i]) return false;
    return true;
}

/// The checksum of an array file: StripeChecksum64 of the payload then header bytes [0, 56).
inline std::uint64_t array_checksum(const std::uint8_t* header, const std::uint8_t* payload, std::size_t n) noexcept {
    StripeChecksum64 c;
    c.update(payload, n);
    c.update(header, array_field::checksum);
    return c.digest();
}

/// Bytes of the array file of `count` elements of type t (the caller checked for overflow).
constexpr std::size_t array_file_bytes(ArrayType t, std::size_t count) noexcept {
    return array_header_bytes + count * array_element_bytes(t);
}

/// Writes one array file of `count` elements at `data` (already little-endian
/// as stored); throws sparseinfer::error if the stream fails.
inline void write_array_file(std::ostream& os, ArrayType t, std::size_t count, const void* data) {
    namespace f = array_field;
    std::uint8_t h[array_header_bytes] = {};
    const std::size_t payload = count * array_element_bytes(t);
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i < sizeof array_magic; ++i) h[i] = array_magic[i];
    store_u32(h + f::version, array_format_version);
    store_u32(h + f::type, static_cast<std::uint32_t>(t));
    store_u64(h + f::count, count);
    store_u64(h + f::payload_bytes, payload);
    store_u64(h + f::checksum, array_checksum(h, p, payload));
    os.write(reinterpret_cast<const char*>(h), static_cast<std::streamsize>(array_header_bytes));
    constexpr std::size_t chunk = std::size_t{1} << 30;  // payloads beyond std::streamsize's range
    for (std::size_t done = 0; done < payload && os; done += chunk) {
        const std::size_t n = payload - done < chunk ? payload - done : chunk;
        os.write(reinterpret_cast<const char*>(p + done), static_cast<std::streamsize>(n));
    }
    if (!os) throw error("writing the array file failed");
}

/// What a valid array file holds.
struct ArrayFileInfo {
    ArrayType type = ArrayType::none;
    std::size_t count = 0;
};

/// Validates an array file of exactly `size` bytes at p: header fields, sizes
/// and, with Verify::full, the checksum. Throws format_error naming `what` and
/// the byte offset (base + offset within the array file).
inline ArrayFileInfo parse_array_file(const std::uint8_t* p, std::size_t size, Verify verify, const std::string& what,
                                      std::uint64_t base) {
    namespace f = array_field;
    if (size < array_header_bytes)
        format_fail(what, base + size, "array is " + std::to_string(size) + " bytes, shorter than its 64-byte header");
    if (!is_array_file(p, size)) format_fail(what, base, "bad magic; not a sparseinfer array");
    const std::uint32_t version = load_u32(p + f::version);
    if (version != array_format_version)
        format_fail(what, base + f::version,
                    "array format version is " + std::to_string(version) + "; this library reads version 1");
    const std::uint32_t type = load_u32(p + f::type);
    const ArrayType t = static_cast<ArrayType>(type);
    if (array_element_bytes(t) == 0)
        format_fail(what, base + f::type,
                    "element type is " + std::to_string(type) + "; known types are 1 (int8) and 2 (float32)");
    for (std::size_t i = f::reserved; i < f::checksum; ++i)
        if (p[i] != 0) format_fail(what, base + i, "reserved header byte is not zero");
    const std::uint64_t count = load_u64(p + f::count);
    if (count == 0) format_fail(what, base + f::count, "element count is 0");
    const std::size_t room = size - array_header_bytes, eb = array_element_bytes(t);
    if (count > room / eb)
        format_fail(what, base + f::count,
                    "element count " + std::to_string(count) + " of " + array_type_name(t) + " needs more than the " +
                        std::to_string(room) + " payload bytes present");
    const std::uint64_t payload = load_u64(p + f::payload_bytes);
    if (payload != count * eb)
        format_fail(what, base + f::payload_bytes,
                    "payload bytes is " + std::to_string(payload) + "; " + std::to_string(count) + " elements of " +
                        array_type_name(t) + " take " + std::to_string(count * eb));
    if (payload != room)
        format_fail(what, base + array_header_bytes + payload,
                    std::to_string(room - payload) + " unexpected bytes after the array's payload");
    if (verify == Verify::full) {
        const std::uint64_t stored = load_u64(p + f::checksum);
        const std::uint64_t got = array_checksum(p, p + array_header_bytes, static_cast<std::size_t>(payload));
        if (stored != got)
            format_fail(what, base + f::checksum,
                        "checksum mismatch: stored " + hex64(stored) + ", computed " + hex64(got));
    }
    return {t, static_cast<std::size_t>(count)};
}

}  // namespace sparseinfer::detail
