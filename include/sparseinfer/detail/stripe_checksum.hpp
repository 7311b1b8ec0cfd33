// sparseinfer/detail/stripe_checksum.hpp - the checksum of version-2 weights
// files, built to keep up with a read of the bytes it covers.
//
// Eight 64-bit lanes over 64-byte stripes, sixteen stripes to a 1 KiB block.
// Word i of stripe s is xored with its own key (keys[s + i]); the product of
// the result's two 32-bit halves is added into lane i and the word itself into
// lane i ^ 1. After every block each lane is scrambled (xorshift, key, multiply
// by a 32-bit prime). Within a block the lanes are independent, so the pass
// runs at vector width: SSE2 (the x86-64 baseline), AVX2 and AVX-512 (chosen
// at run time) give exactly the digest of the scalar code, which defines it. Like
// Checksum64 it detects damage, not malice: it is not a cryptographic hash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu_features.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define SPARSEINFER_STRIPE_SSE2 1
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "../kernels/detail/target_region.hpp"
#define SPARSEINFER_STRIPE_AVX2 1
#endif

namespace sparseinfer::detail {

namespace stripe_keys {
/// Keys of the stripe checksum: SplitMix64 from a fixed seed. Stripe s, lane i
/// uses keys[s + i] (s < 16, i < 8); the scramble and the final mix keys[24 + i].
struct Table {
    std::uint64_t k[32];
};
constexpr Table make() {
    Table out{};
    std::uint64_t x = 0x5350494E46455232ull;
    for (auto& k : out.k) {
        x += 0x9E3779B97F4A7C15ull;
        std::uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        k = z ^ (z >> 31);
    }
    return out;
}
inline constexpr Table table = make();
inline constexpr std::size_t scramble = 24;
inline constexpr std::uint32_t scramble_prime = 0x9E3779B1u;
inline constexpr std::size_t stripe = 64, lanes = 8, block = 1024, stripes_per_block = block / stripe;
}  // namespace stripe_keys

#if defined(SPARSEINFER_STRIPE_SSE2)
namespace stripe_sse2 {
/// n whole blocks at p into the eight lanes at acc (two per register).
inline void blocks(std::uint64_t* acc, const std::uint8_t* p, std::size_t n) noexcept {
    namespace k = stripe_keys;
    const std::uint64_t* keys = k::table.k;
    __m128i a[4];
    for (int j = 0; j < 4; ++j) a[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(acc + 2 * j));
    const __m128i prime = _mm_set1_epi64x(k::scramble_prime);
    for (; n > 0; --n, p += k::block) {
        for (std::size_t s = 0; s < k::stripes_per_block; ++s)
            for (int j = 0; j < 4; ++j) {
                const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k::stripe * s + 16 * j));
                const __m128i x = _mm_xor_si128(d, _mm_loadu_si128(reinterpret_cast<const __m128i*>(keys + s + 2 * j)));
                const __m128i prod = _mm_mul_epu32(x, _mm_srli_epi64(x, 32));
                a[j] = _mm_add_epi64(a[j], _mm_add_epi64(prod, _mm_shuffle_epi32(d, _MM_SHUFFLE(1, 0, 3, 2))));
            }
        for (int j = 0; j < 4; ++j) {
            __m128i v = _mm_xor_si128(a[j], _mm_srli_epi64(a[j], 47));
            v = _mm_xor_si128(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(keys + k::scramble + 2 * j)));
            const __m128i lo = _mm_mul_epu32(v, prime), hi = _mm_mul_epu32(_mm_srli_epi64(v, 32), prime);
            a[j] = _mm_add_epi64(lo, _mm_slli_epi64(hi, 32));
        }
    }
    for (int j = 0; j < 4; ++j) _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + 2 * j), a[j]);
}
}  // namespace stripe_sse2
#endif

#if defined(SPARSEINFER_STRIPE_AVX2)
SPARSEINFER_TARGET_REGION_BEGIN("avx2", "avx2")
namespace stripe_avx2 {
/// n whole blocks at p into the eight lanes at acc (four per register).
inline void blocks(std::uint64_t* acc, const std::uint8_t* p, std::size_t n) noexcept {
    namespace k = stripe_keys;
    const std::uint64_t* keys = k::table.k;
    __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc));
    __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 4));
    const __m256i prime = _mm256_set1_epi64x(k::scramble_prime);
    for (; n > 0; --n, p += k::block) {
        for (std::size_t s = 0; s < k::stripes_per_block; ++s) {
            const __m256i d0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k::stripe * s));
            const __m256i d1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k::stripe * s + 32));
            const __m256i x0 = _mm256_xor_si256(d0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + s)));
            const __m256i x1 = _mm256_xor_si256(d1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + s + 4)));
            a0 = _mm256_add_epi64(a0, _mm256_add_epi64(_mm256_mul_epu32(x0, _mm256_srli_epi64(x0, 32)),
                                                       _mm256_shuffle_epi32(d0, _MM_SHUFFLE(1, 0, 3, 2))));
            a1 = _mm256_add_epi64(a1, _mm256_add_epi64(_mm256_mul_epu32(x1, _mm256_srli_epi64(x1, 32)),
                                                       _mm256_shuffle_epi32(d1, _MM_SHUFFLE(1, 0, 3, 2))));
        }
        __m256i* regs[2] = {&a0, &a1};
        for (int j = 0; j < 2; ++j) {
            __m256i v = _mm256_xor_si256(*regs[j], _mm256_srli_epi64(*regs[j], 47));
            v = _mm256_xor_si256(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + k::scramble + 4 * j)));
            const __m256i lo = _mm256_mul_epu32(v, prime), hi = _mm256_mul_epu32(_mm256_srli_epi64(v, 32), prime);
            *regs[j] = _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32));
        }
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc), a0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 4), a1);
}
}  // namespace stripe_avx2
SPARSEINFER_TARGET_REGION_END

SPARSEINFER_TARGET_REGION_BEGIN("avx512f", "avx512f")
namespace stripe_avx512 {
/// n whole blocks at p into the eight lanes at acc (one register).
inline void blocks(std::uint64_t* acc, const std::uint8_t* p, std::size_t n) noexcept {
    namespace k = stripe_keys;
    const std::uint64_t* keys = k::table.k;
    __m512i a = _mm512_loadu_si512(acc);
    const __m512i prime = _mm512_set1_epi64(k::scramble_prime);
    const __m512i scramble_keys = _mm512_loadu_si512(keys + k::scramble);
    for (; n > 0; --n, p += k::block) {
        for (std::size_t s = 0; s < k::stripes_per_block; ++s) {
            const __m512i d = _mm512_loadu_si512(p + k::stripe * s);
            const __m512i x = _mm512_xor_si512(d, _mm512_loadu_si512(keys + s));
            a = _mm512_add_epi64(a, _mm512_add_epi64(_mm512_mul_epu32(x, _mm512_srli_epi64(x, 32)),
                                                     _mm512_shuffle_epi32(d, _MM_PERM_BADC)));
        }
        const __m512i v = _mm512_xor_si512(_mm512_xor_si512(a, _mm512_srli_epi64(a, 47)), scramble_keys);
        a = _mm512_add_epi64(_mm512_mul_epu32(v, prime),
                             _mm512_slli_epi64(_mm512_mul_epu32(_mm512_srli_epi64(v, 32), prime), 32));
    }
    _mm512_storeu_si512(acc, a);
}
}  // namespace stripe_avx512
SPARSEINFER_TARGET_REGION_END
#endif

/// The stripe checksum (see the header comment). Any split of the same bytes
/// into update() calls gives the same digest; pieces that are whole 1 KiB
/// blocks, fed from a block boundary, are read in place without a copy.
class StripeChecksum64 {
public:
    /// Bytes of one block.
    static constexpr std::size_t block = stripe_keys::block;

    /// The ways to run whole blocks; every one gives the same digest.
    enum class Path { scalar, sse2, avx2, avx512 };

    /// The paths this build and CPU can run, scalar first.
    static std::vector<Path> paths() {
        std::vector<Path> out{Path::scalar};
#if defined(SPARSEINFER_STRIPE_SSE2)
        out.push_back(Path::sse2);
#endif
#if defined(SPARSEINFER_STRIPE_AVX2)
        const CpuFeatures cpu = detect_cpu_features();
        if (cpu.avx2) out.push_back(Path::avx2);
        if (cpu.avx512) out.push_back(Path::avx512);
#endif
        return out;
    }

    /// Feeds bytes, whole blocks on `path` (the best one the CPU has by default).
    void update(const void* data, std::size_t size) noexcept { update_on(best_path(), data, size); }

    /// Feeds bytes, whole blocks on a chosen path (tests compare the paths).
    void update_on(Path path, const void* data, std::size_t size) noexcept {
        const auto* p = static_cast<const std::uint8_t*>(data);
        length_ += size;
        if (pending_ != 0) {
            const std::size_t take = size < block - pending_ ? size : block - pending_;
            std::memcpy(buffer_ + pending_, p, take);
            pending_ += take;
            p += take;
            size -= take;
            if (pending_ < block) return;
            run_blocks(path, acc_, buffer_, 1);
            pending_ = 0;
        }
        const std::size_t whole = size / block;
        if (whole != 0) run_blocks(path, acc_, p, whole);
        p += whole * block;
        size -= whole * block;
        if (size != 0) std::memcpy(buffer_, p, size);
        pending_ = size;
    }

    /// The digest of everything fed so far.
    std::uint64_t digest() const noexcept {
        namespace k = stripe_keys;
        std::uint64_t acc[k::lanes];
        std::memcpy(acc, acc_, sizeof acc);
        // An unfinished block: its whole stripes, then the last partial stripe
        // padded with zeros (the length, mixed in below, tells them apart).
        std::size_t s = 0;
        for (; (s + 1) * k::stripe <= pending_; ++s) accumulate(acc, buffer_ + s * k::stripe, s);
        if (pending_ % k::stripe != 0) {
            std::uint8_t last[k::stripe] = {};
            std::memcpy(last, buffer_ + s * k::stripe, pending_ % k::stripe);
            accumulate(acc, last, s);
        }
        std::uint64_t h = length_ * prime1;
        for (std::size_t i = 0; i < k::lanes; ++i)
            h = rotl(h ^ ((acc[i] ^ k::table.k[k::scramble + i]) * prime2), 27) * prime1;
        h ^= h >> 33;
        h *= prime2;
        h ^= h >> 29;
        h *= prime3;
        h ^= h >> 32;
        return h;
    }

    /// One-shot digest of a byte range.
    static std::uint64_t of(const void* data, std::size_t size) noexcept {
        StripeChecksum64 c;
        c.update(data, size);
        return c.digest();
    }

private:
    static constexpr std::uint64_t prime1 = 0x9E3779B185EBCA87ull;
    static constexpr std::uint64_t prime2 = 0xC2B2AE3D27D4EB4Full;
    static constexpr std::uint64_t prime3 = 0x165667B19E3779F9ull;

    static std::uint64_t rotl(std::uint64_t x, int r) noexcept { return (x << r) | (x >> (64 - r)); }
    static std::uint64_t read64(const std::uint8_t* p) noexcept {
        std::uint64_t v = 0;
        for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];  // little-endian on every host
        return v;
    }

    // The definition of the digest; the vector paths compute exactly this.
    static void accumulate(std::uint64_t* acc, const std::uint8_t* p, std::size_t s) noexcept {
        namespace k = stripe_keys;
        for (std::size_t i = 0; i < k::lanes; ++i) {
            const std::uint64_t d = read64(p + 8 * i), x = d ^ k::table.k[s + i];
            acc[i] += (x & 0xFFFFFFFFull) * (x >> 32);
            acc[i ^ 1] += d;
        }
    }
    static void blocks_scalar(std::uint64_t* acc, const std::uint8_t* p, std::size_t n) noexcept {
        namespace k = stripe_keys;
        for (; n > 0; --n, p += block) {
            for (std::size_t s = 0; s < k::stripes_per_block; ++s) accumulate(acc, p + s * k::stripe, s);
            for (std::size_t i = 0; i < k::lanes; ++i)
                acc[i] = (acc[i] ^ (acc[i] >> 47) ^ k::table.k[k::scramble + i]) * k::scramble_prime;
        }
    }

    static void run_blocks(Path path, std::uint64_t* acc, const std::uint8_t* p, std::size_t n) noexcept {
        switch (path) {
#if defined(SPARSEINFER_STRIPE_AVX2)
        case Path::avx2: stripe_avx2::blocks(acc, p, n); return;
        case Path::avx512: stripe_avx512::blocks(acc, p, n); return;
#endif
#if defined(SPARSEINFER_STRIPE_SSE2)
        case Path::sse2: stripe_sse2::blocks(acc, p, n); return;
#endif
        default: blocks_scalar(acc, p, n); return;
        }
    }

    // The widest path the CPU has, capped as the kernels are by SPARSEINFER_ISA
    // ("avx2": no wider; "scalar": the build's baseline), so a forced path
    // measures and tests the checksum it would run with.
    static Path best_path() noexcept {
        static const Path best = [] {
            const std::vector<Path> all = paths();
            Path cap = Path::avx512;
            if (const char* isa = std::getenv("SPARSEINFER_ISA")) {
                if (std::strcmp(isa, "avx2") == 0) cap = Path::avx2;
                if (std::strcmp(isa, "scalar") == 0) cap = Path::sse2;
            }
            Path out = Path::scalar;
            for (Path p : all)
                if (static_cast<int>(p) <= static_cast<int>(cap)) out = p;
            return out;
        }();
        return best;
    }

    std::uint64_t acc_[stripe_keys::lanes] = {stripe_keys::table.k[0], stripe_keys::table.k[1], stripe_keys::table.k[2],
                                              stripe_keys::table.k[3], stripe_keys::table.k[4], stripe_keys::table.k[5],
                                              stripe_keys::table.k[6], stripe_keys::table.k[7]};
    std::uint8_t buffer_[block] = {};
    std::size_t pending_ = 0;
    std::uint64_t length_ = 0;
};

}  // namespace sparseinfer::detail
