// sparseinfer/detail/cache_profile.hpp - the neuron-cache profile file: per-neuron activation counts.
//
// Little-endian, 64-byte aligned overall size:
//   offset  size  field
//        0     8  magic "SINCPROF"
//        8     4  u32 format version (1)
//       12     4  u32 header size in bytes (48)
//       16     8  u64 num_neurons N
//       24     8  u64 tokens recorded T
//       32     8  u64 payload size in bytes (8 N)
//       40     8  u64 Checksum64 of bytes 0..39 followed by the payload
//       48    8N  u64 count of each neuron, in neuron order (each <= T)
//   48 + 8N     -  zero padding up to the next multiple of 64 bytes
// Reading validates everything and throws sparseinfer::format_error naming the field and its byte
// offset; memory is bounded by the expected neuron count, never by a size read from the file.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "../error.hpp"
#include "checksum.hpp"

namespace sparseinfer::detail {

inline constexpr char profile_magic[8] = {'S', 'I', 'N', 'C', 'P', 'R', 'O', 'F'};
inline constexpr std::uint32_t profile_version = 1;
inline constexpr std::size_t profile_header_bytes = 48;

inline void put_le(std::uint8_t* p, std::uint64_t v, int bytes) noexcept {
    for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint64_t get_le(const std::uint8_t* p, int bytes) noexcept {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
inline std::size_t profile_padding(std::uint64_t n) noexcept {
    return static_cast<std::size_t>((64 - (profile_header_bytes + 8 * n) % 64) % 64);
}

inline void write_profile(std::ostream& out, const std::vector<std::uint64_t>& counts, std::uint64_t tokens) {
    const std::uint64_t n = counts.size();
    std::uint8_t header[profile_header_bytes] = {};
    for (int i = 0; i < 8; ++i) header[i] = static_cast<std::uint8_t>(profile_magic[i]);
    put_le(header + 8, profile_version, 4);
    put_le(header + 12, profile_header_bytes, 4);
    put_le(header + 16, n, 8);
    put_le(header + 24, tokens, 8);
    put_le(header + 32, 8 * n, 8);
    std::vector<std::uint8_t> payload(static_cast<std::size_t>(8 * n));
    for (std::size_t i = 0; i < counts.size(); ++i) put_le(payload.data() + 8 * i, counts[i], 8);
    Checksum64 sum;
    sum.update(header, 40);
    sum.update(payload.data(), payload.size());
    put_le(header + 40, sum.digest(), 8);
    const std::uint8_t zeros[64] = {};
    out.write(reinterpret_cast<const char*>(header), sizeof header);
    out.write(reinterpret_cast<const char*>(payload.data()), static_cast<std::streamsize>(payload.size()));
    out.write(reinterpret_cast<const char*>(zeros), static_cast<std::streamsize>(profile_padding(n)));
    if (!out) throw error("save_profile: writing the profile failed");
}

/// Reads a profile of exactly `expected_neurons` neurons; returns the counts, sets `tokens`.
inline std::vector<std::uint64_t> read_profile(std::istream& in, std::size_t expected_neurons, std::uint64_t& tokens) {
    auto fail = [](const std::string& what, std::uint64_t offset) -> format_error {
        return format_error("profile: " + what + " at byte offset " + std::to_string(offset));
    };
    // Reads up to `size` bytes; returns how many arrived.
    auto read = [&in](std::uint8_t* dst, std::size_t size) -> std::size_t {
        in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(size));
        return static_cast<std::size_t>(in.gcount());
    };
    std::uint8_t header[profile_header_bytes];
    if (const std::size_t got = read(header, sizeof header); got != sizeof header)
        throw fail("truncated header (" + std::to_string(got) + " of 48 bytes)", got);
    for (int i = 0; i < 8; ++i)
        if (header[i] != static_cast<std::uint8_t>(profile_magic[i]))
            throw fail("bad magic (not a sparseinfer neuron-cache profile)", static_cast<std::uint64_t>(i));
    if (const auto v = get_le(header + 8, 4); v != profile_version)
        throw fail("unsupported format version " + std::to_string(v), 8);
    if (const auto h = get_le(header + 12, 4); h != profile_header_bytes)
        throw fail("header size " + std::to_string(h) + " (expected 48)", 12);
    const std::uint64_t n = get_le(header + 16, 8);
    if (n != expected_neurons)
        throw fail(
            "num_neurons " + std::to_string(n) + " does not match the cache's " + std::to_string(expected_neurons), 16);
    tokens = get_le(header + 24, 8);
    if (const auto p = get_le(header + 32, 8); p != 8 * n)
        throw fail("payload size " + std::to_string(p) + " (expected " + std::to_string(8 * n) + ")", 32);
    const std::uint64_t stored_sum = get_le(header + 40, 8);

    Checksum64 sum;
    sum.update(header, 40);
    std::vector<std::uint64_t> counts(expected_neurons);
    std::uint8_t chunk[4096];
    std::size_t done = 0;  // neurons read
    while (done < expected_neurons) {
        const std::size_t want = std::min<std::size_t>(sizeof chunk / 8, expected_neurons - done);
        const std::size_t got = read(chunk, 8 * want);
        if (got != 8 * want)
            throw fail(
                "truncated payload (" + std::to_string(8 * done + got) + " of " + std::to_string(8 * n) + " bytes)",
                profile_header_bytes + 8 * done + got);
        sum.update(chunk, got);
        for (std::size_t i = 0; i < want; ++i) counts[done + i] = get_le(chunk + 8 * i, 8);
        done += want;
    }
    const std::uint64_t pad_at = profile_header_bytes + 8 * n;
    const std::size_t pad = profile_padding(n);
    std::uint8_t padding[64];
    if (const std::size_t got = read(padding, pad); got != pad)
        throw fail("truncated padding (" + std::to_string(got) + " of " + std::to_string(pad) + " bytes)",
                   pad_at + got);
    for (std::size_t i = 0; i < pad; ++i)
        if (padding[i] != 0) throw fail("nonzero padding byte", pad_at + i);
    if (sum.digest() != stored_sum) throw fail("checksum mismatch (header or counts damaged)", 40);
    for (std::size_t i = 0; i < counts.size(); ++i)
        if (counts[i] > tokens)
            throw fail("count " + std::to_string(counts[i]) + " of neuron " + std::to_string(i) + " exceeds tokens " +
                           std::to_string(tokens),
                       profile_header_bytes + 8 * i);
    return counts;
}

}  // namespace sparseinfer::detail
