// sparseinfer/detail/checksum.hpp - the 64-bit checksum of sparseinfer's files.
//
// Four independent lanes over little-endian 64-bit words (multiply, rotate,
// xor, as in xxHash64), so the pass runs at several bytes per cycle without
// SIMD; the tail and the length are folded in at the end. It detects damage,
// not malice: it is not a cryptographic hash.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparseinfer::detail {

class Checksum64 {
public:
    /// Feeds bytes; any split of the same bytes into calls gives the same digest.
    void update(const void* data, std::size_t size) noexcept {
        const auto* p = static_cast<const std::uint8_t*>(data);
        length_ += size;
        // Fill a pending partial stripe first.
        while (size > 0 && pending_ != 0) {
            buffer_[pending_++] = *p++;
            --size;
            if (pending_ == stripe) {
                consume(buffer_);
                pending_ = 0;
            }
        }
        for (; size >= stripe; p += stripe, size -= stripe) consume(p);
        for (; size > 0; --size) buffer_[pending_++] = *p++;
    }

    /// The digest of everything fed so far.
    std::uint64_t digest() const noexcept {
        std::uint64_t h = rotl(lane_[0], 1) + rotl(lane_[1], 7) + rotl(lane_[2], 12) + rotl(lane_[3], 18);
        h ^= length_ * prime1;
        for (std::size_t i = 0; i < pending_; ++i) h = rotl(h ^ (buffer_[i] * prime5), 11) * prime1;
        h ^= h >> 33;
        h *= prime2;
        h ^= h >> 29;
        h *= prime3;
        h ^= h >> 32;
        return h;
    }

    /// One-shot digest of a byte range.
    static std::uint64_t of(const void* data, std::size_t size) noexcept {
        Checksum64 c;
        c.update(data, size);
        return c.digest();
    }

private:
    static constexpr std::size_t stripe = 32;
    static constexpr std::uint64_t prime1 = 0x9E3779B185EBCA87ull;
    static constexpr std::uint64_t prime2 = 0xC2B2AE3D27D4EB4Full;
    static constexpr std::uint64_t prime3 = 0x165667B19E3779F9ull;
    static constexpr std::uint64_t prime5 = 0x27D4EB2F165667C5ull;

    static std::uint64_t rotl(std::uint64_t x, int r) noexcept { return (x << r) | (x >> (64 - r)); }
    static std::uint64_t read64(const std::uint8_t* p) noexcept {
        std::uint64_t v = 0;
        for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];  // little-endian on every host
        return v;
    }
    void consume(const std::uint8_t* p) noexcept {
        for (int i = 0; i < 4; ++i) lane_[i] = rotl(lane_[i] + read64(p + 8 * i) * prime2, 31) * prime1;
    }

    std::uint64_t lane_[4] = {prime1 + prime2, prime2, 0, 0 - prime1};
    std::uint8_t buffer_[stripe] = {};
    std::size_t pending_ = 0;
    std::uint64_t length_ = 0;
};

}  // namespace sparseinfer::detail
