// Tests of <sparseinfer/slot_store.hpp>.
#include <sparseinfer/slot_store.hpp>

#include <cstdint>
#include <map>
#include <random>
#include <stdexcept>
#include <vector>

#include "catch.hpp"

using sparseinfer::SlotStore;

namespace {
// Neuron n's bytes: (n * 31 + i) mod 251, so a byte in the wrong slot is visible.
std::uint8_t pattern(std::uint32_t n, std::size_t i) { return static_cast<std::uint8_t>((n * 31u + i) % 251u); }
SlotStore::Loader pattern_loader() {
    return [](std::uint32_t n, std::uint8_t* dst, std::size_t bytes) {
        for (std::size_t i = 0; i < bytes; ++i) dst[i] = pattern(n, i);
    };
}
bool holds(const std::uint8_t* p, std::uint32_t n, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i)
        if (p[i] != pattern(n, i)) return false;
    return true;
}
}  // namespace

TEST_CASE("SlotStore rejects nonsensical construction") {
    CHECK_THROWS_AS(SlotStore(10, 0, 100, pattern_loader()), sparseinfer::error);
    CHECK_THROWS_AS(SlotStore(10, 16, 15, pattern_loader()), sparseinfer::error);  // budget below one slot
    CHECK_THROWS_AS(SlotStore(10, 16, 160, SlotStore::Loader{}), sparseinfer::error);
    CHECK_THROWS_AS(SlotStore(0xFFFFFFFFull, 16, 160, pattern_loader()), sparseinfer::error);
}

TEST_CASE("SlotStore capacity is the budget in whole slots, never more than the neurons") {
    SlotStore s(10, 16, 16 * 3 + 15, pattern_loader());
    CHECK(s.capacity() == 3);
    CHECK(s.size() == 0);
    CHECK(s.slot_stride() == 16);
    CHECK(reinterpret_cast<std::uintptr_t>(s.data()) % 64 == 0);
    SlotStore big(4, 8, 1 << 20, pattern_loader());
    CHECK(big.capacity() == 4);
}

TEST_CASE("SlotStore with one neuron and one slot") {
    SlotStore s(1, 5, 5, pattern_loader());
    CHECK(s.find(0) == nullptr);
    CHECK(s.slot_of(0) == SlotStore::npos);
    const std::uint8_t* p = s.insert(0);
    CHECK(p == s.data());
    CHECK(holds(p, 0, 5));
    CHECK(s.full());
    s.evict(0);
    CHECK(s.size() == 0);
    CHECK_FALSE(s.contains(0));
    CHECK(s.bytes_loaded() == 5);
}

TEST_CASE("SlotStore errors: out of range, full, evicting a non-resident neuron") {
    SlotStore s(4, 8, 16, pattern_loader());
    CHECK_THROWS_AS(s.insert(4), sparseinfer::error);
    CHECK_THROWS_AS(s.evict(4), sparseinfer::error);
    CHECK_THROWS_AS(s.evict(1), sparseinfer::error);
    s.insert(0);
    s.insert(1);
    CHECK_THROWS_AS(s.insert(2), sparseinfer::error);
    CHECK(s.insert(1) == s.find(1));  // resident: returned, not reloaded
    CHECK(s.bytes_loaded() == 16);
    CHECK(s.slot_of(99) == SlotStore::npos);
    CHECK(s.neuron_at(2) == SlotStore::npos);
    CHECK(s.find(99) == nullptr);
}

TEST_CASE("SlotStore: a throwing loader leaves the store unchanged") {
    bool fail = false;
    SlotStore s(8, 4, 32, [&](std::uint32_t n, std::uint8_t* dst, std::size_t bytes) {
        if (fail) throw std::runtime_error("disk read failed");
        for (std::size_t i = 0; i < bytes; ++i) dst[i] = pattern(n, i);
    });
    s.insert(3);
    fail = true;
    CHECK_THROWS_AS(s.insert(5), std::runtime_error);
    CHECK(s.size() == 1);
    CHECK_FALSE(s.contains(5));
    CHECK(s.bytes_loaded() == 4);
    CHECK(holds(s.find(3), 3, 4));
}

TEST_CASE("SlotStore eviction moves the last slot into the hole") {
    SlotStore s(10, 3, 9, pattern_loader());
    s.insert(7);
    s.insert(2);
    s.insert(5);
    const std::uint8_t* base = s.data();
    s.evict(7);               // slot 0 freed: neuron 5 (last slot) moves there
    CHECK(s.data() == base);  // no reallocation
    CHECK(s.slot_of(5) == 0);
    CHECK(s.neuron_at(0) == 5);
    CHECK(s.slot_of(2) == 1);
    CHECK(holds(s.find(5), 5, 3));
    CHECK(s.find(5) == base);
}

TEST_CASE("SlotStore bookkeeping matches a std::map model under random inserts and evictions") {
    const std::size_t neurons = 61, bytes = 7, capacity = 13;
    SlotStore s(neurons, bytes, capacity * bytes + 3, pattern_loader());
    REQUIRE(s.capacity() == capacity);
    std::map<std::uint32_t, bool> model;  // resident neurons
    std::mt19937 rng(11);
    std::uint64_t loaded = 0;
    for (int step = 0; step < 20000; ++step) {
        const auto n = static_cast<std::uint32_t>(rng() % (neurons + 2));  // sometimes out of range
        const bool do_insert = rng() % 2 == 0;
        if (n >= neurons) {
            CHECK_THROWS_AS(do_insert ? (void)s.insert(n) : s.evict(n), sparseinfer::error);
            continue;
        }
        if (do_insert) {
            if (model.count(n)) {
                CHECK(s.insert(n) == s.find(n));
            } else if (model.size() == capacity) {
                CHECK_THROWS_AS(s.insert(n), sparseinfer::error);
            } else {
                s.insert(n);
                model[n] = true;
                loaded += bytes;
            }
        } else {
            if (model.count(n)) {
                s.evict(n);
                model.erase(n);
            } else {
                CHECK_THROWS_AS(s.evict(n), sparseinfer::error);
            }
        }
        if (step % 97 == 0 || step < 200) {
            REQUIRE(s.size() == model.size());
            for (std::uint32_t i = 0; i < neurons; ++i) {
                const bool resident = model.count(i) > 0;
                REQUIRE(s.contains(i) == resident);
                if (resident) {
                    const std::uint32_t slot = s.slot_of(i);
                    REQUIRE(slot < s.size());
                    REQUIRE(s.neuron_at(slot) == i);
                    REQUIRE(s.find(i) == s.data() + slot * s.slot_stride());
                    REQUIRE(holds(s.find(i), i, bytes));
                }
            }
        }
    }
    CHECK(s.bytes_loaded() == loaded);
    s.clear();
    CHECK(s.size() == 0);
    for (std::uint32_t i = 0; i < neurons; ++i) CHECK_FALSE(s.contains(i));
}
