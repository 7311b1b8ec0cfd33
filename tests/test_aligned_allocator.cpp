// Tests of <sparseinfer/detail/aligned_allocator.hpp>: alignment for small and
// huge-page sized allocations, and that the storage is usable end to end.
#include <sparseinfer/detail/aligned_allocator.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "catch.hpp"

using sparseinfer::detail::AlignedAllocator;
using sparseinfer::detail::huge_page_bytes;

namespace {
std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
}  // namespace

TEST_CASE("Small allocations are 64-byte aligned and usable") {
    for (std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{64}, std::size_t{4097}, huge_page_bytes - 1}) {
        std::vector<std::uint8_t, AlignedAllocator<std::uint8_t>> v(n);
        CHECK(addr(v.data()) % 64 == 0);
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i) bad += v[i] != static_cast<std::uint8_t>(i * 7);
        CHECK(bad == 0);
    }
}

TEST_CASE("Allocations of 2 MiB and more are 2 MiB aligned and usable") {
    for (std::size_t n : {huge_page_bytes, huge_page_bytes + 1, 3 * huge_page_bytes + 12345}) {
        std::vector<std::uint8_t, AlignedAllocator<std::uint8_t>> v(n);
        CHECK(addr(v.data()) % huge_page_bytes == 0);
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 13);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i) bad += v[i] != static_cast<std::uint8_t>(i * 13);
        CHECK(bad == 0);
    }
    // Element types wider than a byte: the threshold is in bytes.
    std::vector<float, AlignedAllocator<float>> f(huge_page_bytes / sizeof(float));
    CHECK(addr(f.data()) % huge_page_bytes == 0);
    std::vector<float, AlignedAllocator<float>> g(16);
    CHECK(addr(g.data()) % 64 == 0);
}

TEST_CASE("Growing across the huge-page threshold keeps the contents") {
    std::vector<std::uint32_t, AlignedAllocator<std::uint32_t>> v;
    for (std::uint32_t i = 0; i < 1u << 20; ++i) v.push_back(i);  // 4 MiB, reallocated many times
    CHECK(addr(v.data()) % huge_page_bytes == 0);
    std::size_t bad = 0;
    for (std::uint32_t i = 0; i < 1u << 20; ++i) bad += v[i] != i;
    CHECK(bad == 0);
    v.resize(10);
    v.shrink_to_fit();
    CHECK(addr(v.data()) % 64 == 0);
    CHECK(v[9] == 9);
}
