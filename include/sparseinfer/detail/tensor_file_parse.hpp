// sparseinfer/detail/tensor_file_parse.hpp - the byte layout of a tensor file
// (tensor_file.hpp, docs/format.md) and its validation: header, table, names,
// placement and padding, and each tensor's weights or array file.
//
// Every size read from the file is checked against the bytes present before
// it is used; every rejection is a format_error naming the byte offset.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "array_file.hpp"
#include "checksum.hpp"
#include "row_format.hpp"
#include "weights_file.hpp"

namespace sparseinfer::detail {

inline constexpr std::uint8_t tensor_file_magic[8] = {0x89, 'S', 'I', 'T', 'F', 0x0D, 0x0A, 0x1A};
/// The version of a file without arrays; one with arrays is tensor_file_version_arrays.
inline constexpr std::uint32_t tensor_file_version = 1;
inline constexpr std::uint32_t tensor_file_version_arrays = 2;
inline constexpr std::size_t tensor_file_header_bytes = 64;
inline constexpr std::size_t tensor_toc_entry_bytes = 32;

namespace tensor_field {
inline constexpr std::size_t magic = 0, version = 8, reserved0 = 12, count = 16, names_bytes = 24, data_offset = 32,
                             file_bytes = 40, reserved1 = 48, checksum = 56;
}

/// The width a tensor's weights header declares (checked by parse_any_bits).
inline int tensor_bits(const std::uint8_t* t, std::size_t bytes, const std::string& what, std::size_t at) {
    if (bytes < weights_header_bytes)
        format_fail(what, at + bytes,
                    "tensor is " + std::to_string(bytes) + " bytes, shorter than a 64-byte weights header");
    return static_cast<int>(load_u32(t + weights_field::bits));
}

/// A tensor's weights file, of whatever width it declares.
inline WeightsFileInfo parse_any_bits(int bits, const std::uint8_t* t, std::size_t bytes, Verify verify,
                                      const std::string& what, std::size_t at) {
    // An unsupported width is reported by the header check itself.
    const int expected = is_supported_bits(bits) ? bits : 4;
    return parse_weights_file(t, bytes, expected, verify, what, at);
}

/// Validates the tensor file in p[0, size) (see TensorFile::from_bytes) and
/// fills `entries` (file order) and `by_name` (indices sorted by name). Entry
/// is TensorFile::Entry.
template <class Entry>
void parse_tensor_file(const std::uint8_t* p, std::size_t size, Verify verify, std::vector<Entry>& entries,
                       std::vector<std::size_t>& by_name) {
    namespace f = tensor_field;
    const std::string what = "tensor file";
    if (size < tensor_file_header_bytes)
        format_fail(what, size, "file is " + std::to_string(size) + " bytes, shorter than the 64-byte header");
    for (std::size_t i = 0; i < sizeof tensor_file_magic; ++i)
        if (p[i] != tensor_file_magic[i]) format_fail(what, i, "bad magic; not a sparseinfer tensor file");
    const std::uint32_t version = load_u32(p + f::version);
    if (version != tensor_file_version && version != tensor_file_version_arrays)
        format_fail(what, f::version,
                    "format version is " + std::to_string(version) + "; this library reads versions 1 and 2");
    if (load_u32(p + f::reserved0) != 0) format_fail(what, f::reserved0, "reserved field is not zero");
    if (load_u64(p + f::reserved1) != 0) format_fail(what, f::reserved1, "reserved field is not zero");
    const std::uint64_t file_bytes = load_u64(p + f::file_bytes);
    if (file_bytes != size)
        format_fail(what, file_bytes < size ? file_bytes : size,
                    file_bytes > size
                        ? "truncated: the header declares " + std::to_string(file_bytes) + " bytes, only " +
                              std::to_string(size) + " are present"
                        : std::to_string(size - file_bytes) + " unexpected bytes after the declared end of the file");
    // Every size below is checked against the bytes present before use.
    const std::size_t room = size - tensor_file_header_bytes;
    const std::uint64_t count = load_u64(p + f::count);
    if (count > room / tensor_toc_entry_bytes)
        format_fail(what, f::count, "tensor count " + std::to_string(count) + " needs a table larger than the file");
    const std::size_t n = static_cast<std::size_t>(count);
    const std::size_t names_at = tensor_file_header_bytes + n * tensor_toc_entry_bytes;
    const std::uint64_t names_bytes = load_u64(p + f::names_bytes);
    if (names_bytes > size - names_at)
        format_fail(what, f::names_bytes,
                    "names bytes " + std::to_string(names_bytes) + " runs past the end of the file");
    std::size_t data_offset = 0;
    align_file_offset(names_at + static_cast<std::size_t>(names_bytes), data_offset);  // <= size + 63
    if (load_u64(p + f::data_offset) != data_offset)
        format_fail(what, f::data_offset,
                    "data offset is " + std::to_string(load_u64(p + f::data_offset)) + "; the table and names give " +
                        std::to_string(data_offset));
    if (data_offset > size) format_fail(what, size, "truncated inside the padding after the names");
    Checksum64 c;
    c.update(p, f::checksum);
    c.update(p + tensor_file_header_bytes, data_offset - tensor_file_header_bytes);
    const std::uint64_t stored = load_u64(p + f::checksum), got = c.digest();
    if (stored != got)
        format_fail(what, f::checksum,
                    "checksum mismatch: stored " + hex64(stored) + ", computed " + hex64(got) +
                        " over bytes [0, 56) and [64, " + std::to_string(data_offset) + ")");
    const std::size_t names_end = names_at + static_cast<std::size_t>(names_bytes);
    for (std::size_t i = names_end; i < data_offset; ++i)
        if (p[i] != 0) format_fail(what, i, "padding byte after the names is not zero");

    // No reserve(n): entries are kept only once validated, each backed by a
    // tensor of at least 64 bytes, so memory stays a fraction of the input.
    std::size_t name_at = 0, end = data_offset;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t e_at = tensor_file_header_bytes + i * tensor_toc_entry_bytes;
        const std::uint8_t* e = p + e_at;
        const std::string tag = "table entry " + std::to_string(i);
        if (load_u64(e) != name_at)
            format_fail(what, e_at,
                        tag + ": name offset is " + std::to_string(load_u64(e)) +
                            "; names are stored back to back, expected " + std::to_string(name_at));
        const std::uint64_t name_len = load_u64(e + 8);
        if (name_len == 0) format_fail(what, e_at + 8, tag + ": name is empty");
        if (name_len > names_bytes - name_at) format_fail(what, e_at + 8, tag + ": name runs past the names area");
        Entry en{};
        en.name =
            std::string_view(reinterpret_cast<const char*>(p + names_at + name_at), static_cast<std::size_t>(name_len));
        if (en.name.find('\0') != std::string_view::npos)
            format_fail(what, names_at + name_at + en.name.find('\0'), tag + ": name contains a NUL byte");
        name_at += static_cast<std::size_t>(name_len);
        std::size_t expected_at = 0;
        align_file_offset(end, expected_at);
        const std::string tensor_what = "tensor file, tensor '" + std::string(en.name) + "'";
        if (load_u64(e + 16) != expected_at)
            format_fail(tensor_what, e_at + 16,
                        "offset is " + std::to_string(load_u64(e + 16)) +
                            "; tensors follow each other 64-byte aligned, expected " + std::to_string(expected_at));
        if (expected_at > size) format_fail(tensor_what, size, "truncated before the tensor starts");
        for (std::size_t k = end; k < expected_at; ++k)
            if (p[k] != 0) format_fail(tensor_what, k, "padding byte before the tensor is not zero");
        const std::uint64_t bytes = load_u64(e + 24);
        if (bytes > size - expected_at)
            format_fail(tensor_what, e_at + 24, "size " + std::to_string(bytes) + " runs past the end of the file");
        if (is_array_file(p + expected_at, static_cast<std::size_t>(bytes))) {
            if (version == tensor_file_version)
                format_fail(tensor_what, expected_at, "is an array, which a version 1 tensor file cannot hold");
            const ArrayFileInfo info =
                parse_array_file(p + expected_at, static_cast<std::size_t>(bytes), verify, tensor_what, expected_at);
            en.array = info.type;
            en.rows = info.count;
            en.cols = 1;
        } else {
            const int bits = tensor_bits(p + expected_at, static_cast<std::size_t>(bytes), tensor_what, expected_at);
            const WeightsFileInfo info = parse_any_bits(bits, p + expected_at, static_cast<std::size_t>(bytes), verify,
                                                        tensor_what, expected_at);
            en.bits = bits;
            en.group_size = info.layout.group_size;
            en.rows = info.rows;
            en.cols = info.layout.cols;
        }
        en.offset = expected_at;
        en.bytes = static_cast<std::size_t>(bytes);
        end = expected_at + en.bytes;
        entries.push_back(en);
    }
    if (name_at != names_bytes)
        format_fail(what, names_at + name_at,
                    std::to_string(names_bytes - name_at) + " bytes of the names area belong to no tensor");
    if (end != size) format_fail(what, end, std::to_string(size - end) + " bytes after the last tensor");
    by_name.resize(n);
    for (std::size_t i = 0; i < n; ++i) by_name[i] = i;
    std::sort(by_name.begin(), by_name.end(),
              [&](std::size_t a, std::size_t b) { return entries[a].name < entries[b].name; });
    for (std::size_t i = 1; i < n; ++i)
        if (entries[by_name[i]].name == entries[by_name[i - 1]].name)
            format_fail(what,
                        names_at + (entries[by_name[i]].name.data() - reinterpret_cast<const char*>(p + names_at)),
                        "tensor name '" + std::string(entries[by_name[i]].name) + "' appears twice");
}

}  // namespace sparseinfer::detail
