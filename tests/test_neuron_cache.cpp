// Tests of <sparseinfer/neuron_cache.hpp>: recording, statistics, errors, pins, merge,
// hot_first_order, the profile file (round trip and malformed files) and the attached slot store.
#include <sparseinfer/neuron_cache.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "file_test_util.hpp"

namespace si = sparseinfer;
namespace policy = sparseinfer::policy;
using Ids = std::vector<std::uint32_t>;

TEST_CASE("an empty cache: zero neurons, no NaN anywhere") {
    si::NeuronCache<> c(0);
    CHECK(c.num_neurons() == 0);
    c.record_activations(nullptr, 0);
    const si::CacheStats s = c.stats();
    CHECK(s.hot_ratio == 0);
    CHECK(s.hit_rate == 0);
    CHECK(s.total_activations == 1);
    CHECK(c.hot_first_order().empty());
    CHECK_THROWS_AS(c.is_hot(0), si::error);
    CHECK_THROWS_AS(c.record_activations(Ids{0}), si::error);
}

TEST_CASE("record_activations: out-of-range index throws before any state changes") {
    si::NeuronCache<policy::Lru> c(4, {2});
    c.record_activations(Ids{1});
    CHECK_THROWS_AS(c.record_activations(Ids{0, 2, 4}), si::error);
    CHECK_THROWS_AS(c.record_activations(nullptr, 3), si::error);
    CHECK(c.total_activations() == 1);
    CHECK(c.activation_count(0) == 0);
    CHECK(c.activation_count(2) == 0);
    CHECK(c.hot_neurons() == Ids{1});
    CHECK(c.stats().misses == 1);
    CHECK(c.stats().churn == 1);
    try {
        c.record_activations(Ids{0, 7});
        FAIL("no exception");
    } catch (const si::error& e) {
        CHECK(std::string(e.what()).find("active[1] = 7") != std::string::npos);
    }
    // Valid neurons, repeats among them, before the bad index: each is counted back exactly once.
    CHECK_THROWS_AS(c.record_activations(Ids{1, 3, 1, 3, 0, 4, 2}), si::error);
    CHECK(c.activation_count(0) == 0);
    CHECK(c.activation_count(1) == 1);
    CHECK(c.activation_count(3) == 0);
    CHECK(c.total_activations() == 1);
    CHECK(c.stats().hits == 0);
    CHECK(c.stats().misses == 1);
    c.record_activations(Ids{3, 1, 3});
    CHECK(c.activation_count(1) == 2);
    CHECK(c.activation_count(3) == 1);
    CHECK(c.stats().hits == 1);
    CHECK(c.stats().misses == 2);
}

TEST_CASE("a neuron repeated within one call counts once") {
    si::NeuronCache<policy::Lru> c(4, {2});
    c.record_activations(Ids{2, 2, 2, 3, 2});
    CHECK(c.activation_count(2) == 1);
    CHECK(c.activation_frequency(2) == 1.0);
    CHECK(c.stats().misses == 2);
    c.record_activations(Ids{2, 2});
    CHECK(c.stats().hits == 1);
    CHECK(c.activation_frequency(2) == 1.0);  // never above 1
    CHECK(c.activation_frequency(3) == 0.5);
    CHECK(c.activation_frequency(0) == 0.0);
    CHECK_THROWS_AS(c.activation_frequency(4), si::error);
}

TEST_CASE("repeats count once over many calls, across the reuse of the per-call marks") {
    // The marks that recognise a repeat are reused every 63 calls: 500 calls cross that several
    // times, with many neurons still unseen at each crossing. Model: per-call distinct neurons,
    // hits against the hot set before the call.
    const std::uint32_t n = 300;
    si::NeuronCache<policy::Lru> c(n, {40});
    std::vector<std::uint64_t> count(n, 0);
    std::uint64_t hits = 0, misses = 0;
    std::mt19937 rng(9);
    Ids active;
    for (int t = 0; t < 500; ++t) {
        active.clear();
        const std::size_t k = rng() % 12;
        for (std::size_t i = 0; i < k; ++i) active.push_back(static_cast<std::uint32_t>(rng() % n));
        if (k > 0 && t % 3 == 0) active.push_back(active.front());  // a sure repeat
        std::vector<bool> seen(n, false);
        for (std::uint32_t x : active) {
            if (seen[x]) continue;
            seen[x] = true;
            ++count[x];
            (c.is_hot(x) ? hits : misses) += 1;
        }
        c.record_activations(active);
    }
    for (std::uint32_t x = 0; x < n; ++x) REQUIRE(c.activation_count(x) == count[x]);
    CHECK(c.stats().hits == hits);
    CHECK(c.stats().misses == misses);
}

TEST_CASE("counts stay exact over a million calls, through a profile, a merge and clear") {
    si::NeuronCache<policy::Lru> c(3, {1});
    const std::uint32_t every[] = {0, 0, 1}, odd[] = {0, 2, 1, 2};
    const std::uint64_t calls = (std::uint64_t{1} << 20) + 7;
    for (std::uint64_t t = 0; t < calls; ++t) {
        if (t % 2)
            c.record_activations(odd, 4);
        else
            c.record_activations(every, 3);
    }
    CHECK(c.total_activations() == calls);
    CHECK(c.activation_count(0) == calls);
    CHECK(c.activation_count(1) == calls);
    CHECK(c.activation_count(2) == calls / 2);
    CHECK(c.activation_frequency(0) == 1.0);
    // The saved profile, a merge and hot_first_order see the same counts.
    std::stringstream file;
    c.save_profile(file);
    si::NeuronCache<policy::Lru> loaded(3, {1});
    loaded.load_profile(file);
    CHECK(loaded.activation_count(2) == calls / 2);
    c.merge(loaded);
    CHECK(c.activation_count(0) == 2 * calls);
    CHECK(c.activation_count(2) == 2 * (calls / 2));
    CHECK(c.hot_first_order() == Ids{0, 1, 2});
    c.record_activations(Ids{2});
    CHECK(c.activation_count(2) == 2 * (calls / 2) + 1);
    c.clear();
    CHECK(c.activation_count(0) == 0);
    c.record_activations(Ids{0});
    CHECK(c.activation_count(0) == 1);
}

TEST_CASE("hits count against the hot set before the token") {
    si::NeuronCache<policy::Lru> c(3, {1});
    c.record_activations(Ids{0});  // miss (admitted during the token)
    c.record_activations(Ids{0});  // hit
    c.record_activations(Ids{1});  // miss
    const si::CacheStats s = c.stats();
    CHECK(s.hits == 1);
    CHECK(s.misses == 2);
    CHECK(s.hit_rate == Approx(1.0 / 3.0));
}

TEST_CASE("clear() forgets statistics and the resident set but keeps pins") {
    si::NeuronCache<policy::Lru> c(6, {3});
    c.pin(Ids{4});
    c.record_activations(Ids{0, 1});
    c.clear();
    CHECK(c.total_activations() == 0);
    CHECK(c.stats().churn == 0);
    CHECK(c.stats().hits == 0);
    CHECK(c.hot_neurons() == Ids{4});
    CHECK(c.is_pinned(4));
    c.record_activations(Ids{4, 0});
    CHECK(c.stats().hits == 1);
    CHECK(c.hot_neurons() == Ids{0, 4});
}

TEST_CASE("pin validates every index first; repeated pins count once") {
    si::NeuronCache<policy::Lru> c(5, {2});
    CHECK_THROWS_AS(c.pin(Ids{1, 9}), si::error);
    CHECK(c.hot_neurons().empty());
    CHECK_THROWS_AS(c.pin(nullptr, 2), si::error);
    c.pin(Ids{1, 1, 1});
    CHECK(c.hot_neurons() == Ids{1});
    c.pin(Ids{2});
    CHECK_THROWS_AS(c.pin(Ids{3}), si::error);
    CHECK(c.hot_neurons() == Ids{1, 2});
}

TEST_CASE("FrequencyThreshold pins are hot regardless of counts") {
    si::NeuronCache<> c(4, {0.5, 1});
    c.pin(Ids{3});
    c.record_activations(Ids{0});
    CHECK(c.hot_neurons() == Ids{0, 3});
}

TEST_CASE("hot_first_order lists neurons by descending count, ties by index") {
    si::NeuronCache<> c(5);
    c.record_activations(Ids{3, 1});
    c.record_activations(Ids{3, 4});
    c.record_activations(Ids{3, 4});
    CHECK(c.hot_first_order() == Ids{3, 4, 1, 0, 2});
}

TEST_CASE("merge adds statistics and rejects another neuron count") {
    si::NeuronCache<policy::StaticProfile> a(4, {1}), b(4, {1});
    a.record_activations(Ids{0});
    a.record_activations(Ids{0, 1});
    b.record_activations(Ids{1});
    b.record_activations(Ids{1, 2});
    b.record_activations(Ids{1});
    a.merge(b);
    CHECK(a.total_activations() == 5);
    CHECK(a.activation_count(0) == 2);
    CHECK(a.activation_count(1) == 4);
    CHECK(a.activation_count(2) == 1);
    CHECK(a.hot_neurons().empty());  // left as is until reclassify
    a.reclassify();
    CHECK(a.hot_neurons() == Ids{1});
    si::NeuronCache<policy::StaticProfile> other(5, {1});
    CHECK_THROWS_AS(a.merge(other), si::error);
    a.merge(a);
    CHECK(a.activation_count(1) == 8);
    CHECK(a.total_activations() == 10);
}

namespace {
std::string profile_of(const si::NeuronCache<>& c) {
    std::ostringstream out;
    c.save_profile(out);
    return out.str();
}
template <class Cache>
void load(Cache& c, const std::string& bytes) {
    std::istringstream in(bytes);
    c.load_profile(in);
}
using file_test::le64;
}  // namespace

TEST_CASE("profile file: documented layout and round trip") {
    si::NeuronCache<> c(5);
    c.record_activations(Ids{0, 4});
    c.record_activations(Ids{4});
    c.record_activations(Ids{4, 2});
    const std::string bytes = profile_of(c);
    REQUIRE(bytes.size() == 128);  // 48 header + 40 counts, padded to 64
    CHECK(bytes.substr(0, 8) == "SINCPROF");
    CHECK(le64(bytes, 16) == 5);   // neurons
    CHECK(le64(bytes, 24) == 3);   // tokens
    CHECK(le64(bytes, 32) == 40);  // payload bytes
    CHECK(le64(bytes, 48 + 8 * 4) == 3);
    CHECK(le64(bytes, 48 + 8 * 2) == 1);
    for (std::size_t i = 88; i < 128; ++i) CHECK(bytes[i] == 0);

    si::NeuronCache<policy::StaticProfile> s(5, {2});
    load(s, bytes);
    CHECK(s.total_activations() == 3);
    CHECK(s.activation_count(4) == 3);
    CHECK(s.activation_count(0) == 1);
    CHECK(s.hot_neurons() == Ids{0, 4});  // placed from the loaded profile; 0 and 2 tie -> 0
    CHECK(s.stats().hits == 0);

    const std::string path = "test_neuron_cache_profile.bin";
    c.save_profile(path);
    si::NeuronCache<> d(5);
    d.load_profile(path);
    CHECK(d.hot_first_order() == c.hot_first_order());
    std::remove(path.c_str());
    CHECK_THROWS_AS(d.load_profile(std::string("/nonexistent/dir/profile.bin")), si::error);
}

TEST_CASE("profile file: every truncation and every byte flip is rejected with format_error") {
    si::NeuronCache<> c(7);
    std::mt19937 rng(1);
    for (int t = 0; t < 30; ++t) c.record_activations(Ids{static_cast<std::uint32_t>(rng() % 7), 3});
    const std::string good = profile_of(c);
    REQUIRE(good.size() % 64 == 0);
    si::NeuronCache<> target(7);
    for (std::size_t len = 0; len < good.size(); ++len) {
        INFO("truncated to " << len);
        CHECK_THROWS_AS(load(target, good.substr(0, len)), si::format_error);
    }
    for (std::size_t at = 0; at < good.size(); ++at)
        for (int bit : {0, 7}) {
            std::string bad = good;
            bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
            INFO("bit " << bit << " of byte " << at);
            CHECK_THROWS_AS(load(target, bad), si::format_error);
        }
    CHECK(target.total_activations() == 0);  // failed loads left it untouched
    load(target, good);
    CHECK(target.total_activations() == 30);
}

TEST_CASE("profile file: rejections name the field and offset") {
    si::NeuronCache<> c(3);
    c.record_activations(Ids{1});
    const std::string good = profile_of(c);
    auto message = [](auto& cache, const std::string& bytes) {
        try {
            load(cache, bytes);
        } catch (const si::format_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    si::NeuronCache<> other(4);
    CHECK(message(other, good).find("num_neurons 3") != std::string::npos);
    CHECK(message(other, good).find("offset 16") != std::string::npos);
    std::string bad = good;
    bad[8] = 9;  // version
    CHECK(message(c, bad).find("version 9") != std::string::npos);
    bad = good;
    bad[60] = 1;  // padding after 3 counts (48 + 24 = 72) is at 72..127; 60 is a count byte
    CHECK(message(c, bad).find("checksum") != std::string::npos);
    bad = good;
    bad[100] = 1;
    CHECK(message(c, bad).find("offset 100") != std::string::npos);
}

TEST_CASE("profile file: a count above tokens is rejected even with a valid checksum") {
    std::ostringstream out;
    si::detail::write_profile(out, {1, 5, 0}, 4);
    si::NeuronCache<> c(3);
    std::istringstream in(out.str());
    try {
        c.load_profile(in);
        FAIL("accepted");
    } catch (const si::format_error& e) {
        CHECK(std::string(e.what()).find("offset 56") != std::string::npos);
    }
}

namespace {
std::uint8_t byte_of(std::uint32_t n, std::size_t i) { return static_cast<std::uint8_t>(n * 7 + i); }
si::SlotStore::Loader loader(std::uint64_t* calls = nullptr) {
    return [calls](std::uint32_t n, std::uint8_t* dst, std::size_t bytes) {
        if (calls) ++*calls;
        for (std::size_t i = 0; i < bytes; ++i) dst[i] = byte_of(n, i);
    };
}
}  // namespace

TEST_CASE("attach_store under a capacity policy: the store holds exactly the hot set") {
    si::NeuronCache<policy::Adaptive> c(40, {6});
    CHECK(c.store() == nullptr);
    CHECK(c.resident_data(0) == nullptr);
    CHECK_THROWS_AS(c.attach_store(16, 16 * 5, loader()), si::error);  // 5 slots < capacity 6
    c.record_activations(Ids{1, 2, 3});
    c.attach_store(16, 16 * 6, loader());
    REQUIRE(c.store() != nullptr);
    std::mt19937 rng(2);
    for (int t = 0; t < 500; ++t) {
        Ids a;
        for (int k = 0; k < 4; ++k) a.push_back(static_cast<std::uint32_t>(rng() % 40));
        c.record_activations(a);
        if (t == 200) c.pin(Ids{39});
        for (std::uint32_t n = 0; n < 40; ++n) {
            const std::uint8_t* p = c.resident_data(n);
            REQUIRE((p != nullptr) == c.is_hot(n));
            if (p) REQUIRE((p[0] == byte_of(n, 0) && p[15] == byte_of(n, 15)));
        }
    }
    CHECK(c.store()->size() == c.stats().num_hot);
    CHECK(c.store()->bytes_loaded() >= 16 * c.stats().num_hot);
}

TEST_CASE("attach_store under FrequencyThreshold holds the most frequent hot neurons that fit") {
    si::NeuronCache<> c(6, {0.1, 1});
    c.attach_store(4, 8, loader());  // 2 slots
    c.record_activations(Ids{0, 1, 2});
    c.record_activations(Ids{1, 2});
    c.record_activations(Ids{2});
    // Each token classifies: 0, 1, 2 became hot at token 1 in index order (equal counts), so the
    // store took 0 and 1; 2 is hot without resident data.
    CHECK(c.hot_neurons() == Ids{0, 1, 2});
    CHECK(c.store()->size() == 2);
    CHECK(c.resident_data(0) != nullptr);
    CHECK(c.resident_data(1) != nullptr);
    CHECK(c.resident_data(2) == nullptr);
    c.pin(Ids{5});  // a pin takes a slot from an unpinned hot neuron
    CHECK(c.resident_data(5) != nullptr);
    CHECK(c.store()->size() == 2);
    CHECK(c.is_hot(0));
    CHECK(c.is_hot(1));
    CHECK_THROWS_AS(c.pin(Ids{3, 4}), si::error);  // 3 pins > 2 slots
}

TEST_CASE("attach_store loads the current hot set, pins first") {
    si::NeuronCache<policy::Lru> c(10, {3});
    c.pin(Ids{9});
    c.record_activations(Ids{1, 2});
    std::uint64_t calls = 0;
    c.attach_store(8, 8 * 3, loader(&calls));
    CHECK(calls == 3);
    CHECK(c.resident_data(9) != nullptr);
    CHECK(c.resident_data(1) != nullptr);
    CHECK(c.resident_data(2) != nullptr);
    c.record_activations(Ids{3});  // evicts 1
    CHECK(c.resident_data(1) == nullptr);
    CHECK(c.resident_data(3) != nullptr);
    CHECK(calls == 4);
    c.detach_store();
    CHECK(c.store() == nullptr);
}

TEST_CASE("a throwing loader leaves the neuron cold and the cache consistent") {
    si::NeuronCache<policy::Lru> c(8, {2});
    bool fail = false;
    c.attach_store(4, 8, [&](std::uint32_t n, std::uint8_t* dst, std::size_t bytes) {
        if (fail) throw std::runtime_error("read failed");
        for (std::size_t i = 0; i < bytes; ++i) dst[i] = static_cast<std::uint8_t>(n);
    });
    c.record_activations(Ids{0, 1});
    fail = true;
    CHECK_THROWS_AS(c.record_activations(Ids{2}), std::runtime_error);
    CHECK_FALSE(c.is_hot(2));
    CHECK(c.stats().num_hot <= 2);
    CHECK(c.store()->size() == c.stats().num_hot);
    for (std::uint32_t n = 0; n < 8; ++n) CHECK((c.resident_data(n) != nullptr) == c.is_hot(n));
    fail = false;
    c.record_activations(Ids{2});
    CHECK(c.is_hot(2));
    CHECK(c.resident_data(2)[0] == 2);
}

TEST_CASE("Adaptive with a loader that throws now and then keeps every resident tracked") {
    // Admissions are applied in batches after the decisions; a throw part-way must leave no
    // resident the policy forgot (it would then stay hot for good) and never exceed the capacity.
    si::NeuronCache<policy::Adaptive> c(60, {12, 200.0});  // no renormalisation (which refiles all) in 1400 tokens
    std::mt19937 rng(11);
    bool flaky = true;
    c.attach_store(4, 4 * 12, [&](std::uint32_t n, std::uint8_t* dst, std::size_t bytes) {
        if (flaky && rng() % 8 == 0) throw std::runtime_error("read failed");
        for (std::size_t i = 0; i < bytes; ++i) dst[i] = static_cast<std::uint8_t>(n);
    });
    Ids active, previous;
    int throws = 0;
    auto token = [&](std::uint32_t base) {
        active.clear();
        for (std::uint32_t x : previous)
            if (rng() % 2 == 0) active.push_back(x);  // persistence: the working set churns
        while (active.size() < 8) {
            const std::uint32_t x = base + static_cast<std::uint32_t>(rng() % 30);
            if (std::find(active.begin(), active.end(), x) == active.end()) active.push_back(x);
        }
        previous = active;
        try {
            c.record_activations(active);
        } catch (const std::runtime_error&) {
            ++throws;
        }
        REQUIRE(c.stats().num_hot <= 12);
        REQUIRE(c.store()->size() == c.stats().num_hot);
        REQUIRE(c.policy_state().tracked() == c.stats().num_hot);
        for (std::uint32_t n = 0; n < 60; ++n) REQUIRE((c.resident_data(n) != nullptr) == c.is_hot(n));
    };
    for (int t = 0; t < 400; ++t) token(0);
    CHECK(throws > 20);
    // Only neurons 30..59 from now on, no failures: every neuron of the first phase must leave.
    flaky = false;
    previous.clear();
    for (int t = 0; t < 1000; ++t) token(30);
    for (std::uint32_t n : c.hot_neurons()) CHECK(n >= 30);
    CHECK(c.stats().num_hot == 12);
}
