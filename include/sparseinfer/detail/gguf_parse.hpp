// sparseinfer/detail/gguf_parse.hpp - validation of a GGUF file's header,
// metadata and tensor infos (the structure GgufFile hands out).
//
// The byte layout (GGUF versions 2 and 3, little-endian; version 3 only adds
// big-endian files, which this reader refuses by their version field):
//
//   "GGUF"  u32 version  u64 tensor count  u64 metadata count
//   metadata, each:  string key  u32 value type  value
//   tensor infos, each:  string name  u32 n_dims  u64 ne[n_dims]  u32 ggml type  u64 offset
//   zero padding to the alignment (general.alignment, default 32)
//   tensor data: each tensor at data start + offset, offsets multiples of the alignment
//
// A string is a u64 byte count and the bytes (no terminator). A value is
// u8, i8, u16, i16, u32, i32, f32, bool (one byte, 0 or 1), string, array
// (u32 element type, u64 count, the elements; arrays may nest), u64, i64 or
// f64 (types 0 to 12 in that order). ne[0] is the row length.
//
// Every count and length is checked against the bytes left before anything
// is read or allocated; memory kept is a small multiple of the input's size.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../ggml_types.hpp"
#include "weights_file.hpp"

namespace sparseinfer::detail::gguf {

inline constexpr std::uint8_t magic[4] = {'G', 'G', 'U', 'F'};
inline constexpr std::uint32_t default_alignment = 32;
inline constexpr std::uint32_t max_dims = 4;       ///< ggml's GGML_MAX_DIMS
inline constexpr int max_array_depth = 16;         ///< nesting beyond this is refused (bounds the recursion)
inline constexpr std::size_t min_kv_bytes = 13;    ///< empty key, type, one-byte value
inline constexpr std::size_t min_info_bytes = 24;  ///< empty name, n_dims 0, type, offset

/// GGUF metadata value types, numbered as in files.
enum class ValueType : std::uint32_t {
    uint8 = 0,
    int8 = 1,
    uint16 = 2,
    int16 = 3,
    uint32 = 4,
    int32 = 5,
    float32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    uint64 = 10,
    int64 = 11,
    float64 = 12,
};

inline const char* value_type_name(ValueType t) noexcept {
    static const char* const names[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
                                        "bool",  "string", "array",  "uint64", "int64",  "float64"};
    const auto i = static_cast<std::uint32_t>(t);
    return i < 13 ? names[i] : "invalid";
}

/// Bytes of a fixed-size value type; 0 for string, array and invalid types.
inline std::size_t fixed_size(ValueType t) noexcept {
    switch (t) {
    case ValueType::uint8:
    case ValueType::int8:
    case ValueType::boolean: return 1;
    case ValueType::uint16:
    case ValueType::int16: return 2;
    case ValueType::uint32:
    case ValueType::int32:
    case ValueType::float32: return 4;
    case ValueType::uint64:
    case ValueType::int64:
    case ValueType::float64: return 8;
    default: return 0;
    }
}

[[noreturn]] inline void fail(std::size_t at, const std::string& message) { format_fail("GGUF file", at, message); }

/// Reads forward through [p, p + size); every read is checked first.
struct Reader {
    const std::uint8_t* p = nullptr;
    std::size_t size = 0;
    std::size_t at = 0;

    std::size_t left() const noexcept { return size - at; }
    void need(std::uint64_t n, const char* what) const {
        if (n > left())
            fail(at, std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes, " +
                         std::to_string(left()) + " are left");
    }
    std::uint32_t u32(const char* what) {
        need(4, what);
        at += 4;
        return load_u32(p + at - 4);
    }
    std::uint64_t u64(const char* what) {
        need(8, what);
        at += 8;
        return load_u64(p + at - 8);
    }
    std::string_view string(const char* what) {
        const std::size_t len_at = at;
        const std::uint64_t n = u64(what);
        if (n > left())
            fail(len_at, std::string(what) + " is " + std::to_string(n) + " bytes long, only " +
                             std::to_string(left()) + " are left");
        at += static_cast<std::size_t>(n);
        return std::string_view(reinterpret_cast<const char*>(p + at - n), static_cast<std::size_t>(n));
    }
    ValueType value_type(const char* what) {
        const std::size_t type_at = at;
        const std::uint32_t t = u32(what);
        if (t > 12) fail(type_at, std::string(what) + " is " + std::to_string(t) + "; GGUF value types are 0 to 12");
        return static_cast<ValueType>(t);
    }

    /// Steps over a value of type t (already read), validating it.
    void skip_value(ValueType t, int depth) {
        if (t == ValueType::string) {
            string("string value");
        } else if (t == ValueType::array) {
            if (depth >= max_array_depth)
                fail(at, "arrays nest deeper than " + std::to_string(max_array_depth) + " levels");
            const ValueType et = value_type("array element type");
            const std::size_t count_at = at;
            const std::uint64_t count = u64("array count");
            const std::size_t fixed = fixed_size(et);
            // Every element takes at least 1 (fixed), 8 (string) or 12 (array) bytes.
            const std::size_t min_bytes = fixed != 0 ? fixed : et == ValueType::string ? 8 : 12;
            if (count > left() / min_bytes)
                fail(count_at, "array of " + std::to_string(count) + " " + value_type_name(et) +
                                   " values is larger than the " + std::to_string(left()) + " bytes left");
            if (fixed != 0) {
                if (et == ValueType::boolean)
                    for (std::size_t i = 0; i < count; ++i) check_bool(at + i);
                at += static_cast<std::size_t>(count) * fixed;
            } else {
                for (std::uint64_t i = 0; i < count; ++i) skip_value(et, depth + 1);
            }
        } else {
            need(fixed_size(t), value_type_name(t));
            if (t == ValueType::boolean) check_bool(at);
            at += fixed_size(t);
        }
    }
    void check_bool(std::size_t i) const {
        if (p[i] > 1) fail(i, "bool value is " + std::to_string(p[i]) + "; it must be 0 or 1");
    }
};

/// One metadata pair as found in the file.
struct RawKv {
    std::string_view key;
    std::size_t key_at = 0;
    ValueType type = ValueType::uint8;
    std::size_t type_at = 0;   ///< of the u32 value type
    std::size_t value_at = 0;  ///< of the value
};

/// One tensor info, validated: its type is known, its row length a multiple
/// of the block, its size fits size_t and its bytes lie within the file.
struct RawTensor {
    std::string_view name;
    std::size_t info_at = 0;
    std::uint32_t type_id = 0;
    const GgmlTypeInfo* type = nullptr;
    std::uint32_t n_dims = 0;
    std::uint64_t ne[max_dims] = {1, 1, 1, 1};
    std::size_t rows = 1, cols = 1;
    std::size_t data_at = 0;  ///< absolute offset in the file
    std::size_t bytes = 0;
};

struct Parsed {
    std::uint32_t version = 0;
    std::size_t alignment = default_alignment;
    std::size_t data_start = 0;
    std::vector<RawKv> kvs;
    std::vector<RawTensor> tensors;
    std::vector<std::size_t> kv_by_key;       ///< indices of kvs sorted by key
    std::vector<std::size_t> tensor_by_name;  ///< indices of tensors sorted by name
};

/// Sorts indices by name and fails at the second of two equal names.
template <class Items, class Name, class At>
std::vector<std::size_t> sorted_unique(const Items& items, Name name, At at, const char* what) {
    std::vector<std::size_t> idx(items.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
        return name(items[a]) != name(items[b]) ? name(items[a]) < name(items[b]) : a < b;
    });
    for (std::size_t i = 1; i < idx.size(); ++i)
        if (name(items[idx[i]]) == name(items[idx[i - 1]]))
            fail(at(items[idx[i]]), std::string(what) + " '" + std::string(name(items[idx[i]])) + "' appears twice");
    return idx;
}

inline bool fits_size(std::uint64_t v) noexcept { return static_cast<std::uint64_t>(static_cast<std::size_t>(v)) == v; }

inline RawTensor read_tensor_info(Reader& r) {
    RawTensor t;
    t.info_at = r.at;
    t.name = r.string("tensor name");
    if (t.name.empty()) fail(t.info_at, "tensor name is empty");
    const std::string tag = "tensor '" + std::string(t.name) + "': ";
    const std::size_t dims_at = r.at;
    t.n_dims = r.u32("tensor n_dims");
    if (t.n_dims > max_dims) fail(dims_at, tag + "n_dims is " + std::to_string(t.n_dims) + "; at most 4 are allowed");
    // rows = ne[1] ne[2] ne[3]; a zero row length must not hide an overflow there.
    std::uint64_t rows = 1;
    for (std::uint32_t d = 0; d < t.n_dims; ++d) {
        const std::size_t ne_at = r.at;
        t.ne[d] = r.u64("tensor dimension");
        if (t.ne[d] > static_cast<std::uint64_t>(INT64_MAX))
            fail(ne_at, tag + "dimension " + std::to_string(d) + " is negative as ggml's int64");
        if (d == 0) continue;
        if (t.ne[d] != 0 && rows > UINT64_MAX / t.ne[d]) fail(ne_at, tag + "the row count overflows");
        rows *= t.ne[d];
    }
    const std::size_t type_at = r.at;
    t.type_id = r.u32("tensor type");
    t.type = ggml_type_info(t.type_id);
    if (t.type == nullptr)
        fail(type_at, tag + "ggml type id " + std::to_string(t.type_id) + " is unknown or was removed from ggml");
    if (t.ne[0] % t.type->block_values != 0)
        fail(dims_at + 4, tag + "row length " + std::to_string(t.ne[0]) + " is not a multiple of " + t.type->name +
                              "'s block of " + std::to_string(t.type->block_values));
    const std::uint64_t blocks = t.ne[0] / t.type->block_values;
    std::size_t row_bytes = 0, bytes = 0;
    if (!fits_size(t.ne[0]) || !fits_size(blocks) || !fits_size(rows) ||
        !checked_mul(static_cast<std::size_t>(blocks), t.type->block_bytes, row_bytes) ||
        !checked_mul(static_cast<std::size_t>(rows), row_bytes, bytes))
        fail(dims_at, tag + "the byte size overflows");
    t.cols = static_cast<std::size_t>(t.ne[0]);
    t.rows = static_cast<std::size_t>(rows);
    t.bytes = bytes;
    t.data_at = r.at;  // the offset field for now; made absolute once the data start is known
    r.u64("tensor offset");
    return t;
}

/// Validates everything but the tensor bytes themselves; throws format_error.
inline Parsed parse(const std::uint8_t* p, std::size_t size) {
    Reader r{p, size, 0};
    Parsed out;
    r.need(4, "magic");
    for (std::size_t i = 0; i < 4; ++i)
        if (p[i] != magic[i]) fail(i, "bad magic; not a GGUF file");
    r.at = 4;
    out.version = r.u32("version");
    if (out.version != 2 && out.version != 3)
        fail(4, "version is " + std::to_string(out.version) +
                    (out.version == 1 ? "; version 1 (32-bit counts) is not supported"
                                      : "; this reader reads versions 2 and 3 (little-endian)"));
    const std::uint64_t n_tensors = r.u64("tensor count");
    const std::uint64_t n_kv = r.u64("metadata count");
    if (n_kv > r.left() / min_kv_bytes)
        fail(16, "metadata count " + std::to_string(n_kv) + " needs more bytes than the file holds");
    for (std::uint64_t i = 0; i < n_kv; ++i) {
        RawKv kv;
        kv.key_at = r.at;
        kv.key = r.string("metadata key");
        kv.type_at = r.at;
        kv.type = r.value_type("metadata value type");
        kv.value_at = r.at;
        r.skip_value(kv.type, 0);
        out.kvs.push_back(kv);
    }
    out.kv_by_key = sorted_unique(
        out.kvs, [](const RawKv& k) { return k.key; }, [](const RawKv& k) { return k.key_at; }, "metadata key");
    for (const RawKv& kv : out.kvs) {
        if (kv.key != "general.alignment") continue;
        if (kv.type != ValueType::uint32)
            fail(kv.type_at, std::string("general.alignment is a ") + value_type_name(kv.type) + ", not a uint32");
        const std::uint32_t a = load_u32(p + kv.value_at);
        if (a == 0 || (a & (a - 1)) != 0)
            fail(kv.value_at, "general.alignment is " + std::to_string(a) + "; it must be a power of two");
        out.alignment = a;
    }
    if (n_tensors > r.left() / min_info_bytes)
        fail(8, "tensor count " + std::to_string(n_tensors) + " needs more bytes than the file holds");
    for (std::uint64_t i = 0; i < n_tensors; ++i) out.tensors.push_back(read_tensor_info(r));
    out.tensor_by_name = sorted_unique(
        out.tensors, [](const RawTensor& t) { return t.name; }, [](const RawTensor& t) { return t.info_at; },
        "tensor name");
    // Data start: the end of the infos rounded up to the alignment.
    const std::size_t infos_end = r.at;
    out.data_start = infos_end + (out.alignment - infos_end % out.alignment) % out.alignment;
    if (out.data_start < infos_end) fail(infos_end, "the data start overflows");
    if (!out.tensors.empty() && out.data_start > size)
        fail(size, "truncated inside the padding before the tensor data");
    for (RawTensor& t : out.tensors) {
        const std::size_t field_at = t.data_at;
        const std::uint64_t offset = load_u64(p + field_at);
        const std::string tag = "tensor '" + std::string(t.name) + "': ";
        if (offset % out.alignment != 0)
            fail(field_at, tag + "data offset " + std::to_string(offset) + " is not a multiple of the alignment " +
                               std::to_string(out.alignment));
        if (offset > size - out.data_start || t.bytes > size - out.data_start - offset)
            fail(field_at, tag + std::to_string(t.bytes) + " bytes at data offset " + std::to_string(offset) +
                               " run past the end of the file (" + std::to_string(size - out.data_start) +
                               " data bytes)");
        t.data_at = out.data_start + static_cast<std::size_t>(offset);
    }
    return out;
}

}  // namespace sparseinfer::detail::gguf
