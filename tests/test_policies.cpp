// Tests of <sparseinfer/policies.hpp>: each policy's semantics on small hand-made traces, the
// capacity bound and pins on random traces, and Belady's optimum as a floor.
#include <sparseinfer/activation_trace.hpp>
#include <sparseinfer/detail/cache_belady.hpp>
#include <sparseinfer/neuron_cache.hpp>
#include <sparseinfer/policies.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "catch.hpp"

namespace si = sparseinfer;
namespace policy = sparseinfer::policy;
using Ids = std::vector<std::uint32_t>;

TEST_CASE("policies reject nonsensical values at construction") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(si::NeuronCache<policy::FrequencyThreshold>(8, {0.0, 10}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::FrequencyThreshold>(8, {-0.1, 10}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::FrequencyThreshold>(8, {1.5, 10}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::FrequencyThreshold>(8, {nan, 10}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::FrequencyThreshold>(8, {0.2, 0}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::StaticProfile>(8, {0}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::Lru>(8, {0}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::SlidingWindow>(8, {0, 4}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::SlidingWindow>(8, {3, 0}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::Adaptive>(8, {0}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::Adaptive>(8, {4, 0.0}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::Adaptive>(8, {4, -3.0}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::Adaptive>(8, {4, inf}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::Adaptive>(8, {4, nan}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::Adaptive>(8, {4, 3.9}), si::error);
    CHECK_THROWS_AS(si::NeuronCache<policy::Adaptive>(8, {4, 2e6}), si::error);
    CHECK_NOTHROW(si::NeuronCache<policy::Adaptive>(8, {4, 4.0}));
    CHECK_NOTHROW(si::NeuronCache<policy::Adaptive>(8, {4, 1e6}));
    CHECK_NOTHROW(si::NeuronCache<policy::FrequencyThreshold>(8, {1.0, 1}));
    CHECK_NOTHROW(si::NeuronCache<policy::Lru>(8, {100}));  // capacity above the neuron count is fine
}

TEST_CASE("FrequencyThreshold: hot when count >= tokens * fraction, only at classification") {
    si::NeuronCache<policy::FrequencyThreshold> c(4, {0.5, 2});
    c.record_activations(Ids{0, 1});
    CHECK(c.hot_neurons().empty());  // one token: not a classification point
    c.record_activations(Ids{0});    // token 2: threshold 1 -> 0 (count 2) and 1 (count 1)
    CHECK(c.hot_neurons() == Ids{0, 1});
    CHECK(c.cold_neurons() == Ids{2, 3});
    c.record_activations(Ids{0, 2});  // token 3: 2 stays cold until the next classification
    CHECK_FALSE(c.is_hot(2));
    c.record_activations(Ids{3});  // token 4: threshold 2 -> only 0 (count 3)
    CHECK(c.hot_neurons() == Ids{0});
    const si::CacheStats s = c.stats();
    CHECK(s.hits == 1);    // 0 in token 3
    CHECK(s.misses == 5);  // 0, 1, 0, 2, 3
    CHECK(s.churn == 3);   // 0 and 1 admitted, 1 evicted
    CHECK(s.num_hot == 1);
    CHECK(s.num_cold == 3);
    CHECK(s.hot_ratio == 0.25);
}

TEST_CASE("FrequencyThreshold: reclassify() classifies now; a neuron never seen is never hot") {
    si::NeuronCache<policy::FrequencyThreshold> c(3, {1.0, 1000});
    c.reclassify();  // no tokens: threshold 0, but count 0 is never hot
    CHECK(c.hot_neurons().empty());
    c.record_activations(Ids{1});
    c.record_activations(Ids{1, 2});
    CHECK(c.hot_neurons().empty());
    c.reclassify();  // threshold 2 tokens * 1.0
    CHECK(c.hot_neurons() == Ids{1});
}

TEST_CASE("Lru keeps the most recently active neurons, later in a call counting as more recent") {
    si::NeuronCache<policy::Lru> c(5, {2});
    c.record_activations(Ids{0, 1});
    CHECK(c.hot_neurons() == Ids{0, 1});
    c.record_activations(Ids{2});  // 0 is the least recent
    CHECK(c.hot_neurons() == Ids{1, 2});
    c.record_activations(Ids{1});  // hit: 2 becomes the least recent
    c.record_activations(Ids{3});
    CHECK(c.hot_neurons() == Ids{1, 3});
    c.record_activations(Ids{0, 4});  // 0 evicts 1, then 4 evicts 3
    CHECK(c.hot_neurons() == Ids{0, 4});
    CHECK(c.stats().hits == 1);
    CHECK(c.stats().misses == 6);
    CHECK(c.stats().churn == 6 + 4);  // six admissions, four evictions
}

namespace {
/// Reference recency model: neurons in order of last use (a plain vector, O(N) per access).
struct RecencyModel {
    std::vector<std::uint32_t> order;  // least recent first
    std::vector<std::uint64_t> last;
    explicit RecencyModel(std::size_t n) : last(n, 0) {}
    void touch(std::uint32_t x, std::uint64_t t) {
        order.erase(std::remove(order.begin(), order.end(), x), order.end());
        order.push_back(x);
        last[x] = t;
    }
    /// The `capacity` most recent neurons (last used at or after token `since`), sorted.
    Ids resident(std::size_t capacity, std::uint64_t since) const {
        Ids out;
        for (std::size_t i = order.size(); i-- > 0 && out.size() < capacity;)
            if (last[order[i]] >= since) out.push_back(order[i]);
        std::sort(out.begin(), out.end());
        return out;
    }
};

/// Random tokens of 0..max_len neurons (repeats allowed) over n neurons.
Ids random_token(std::mt19937& rng, std::size_t n, std::size_t max_len) {
    Ids t(std::uniform_int_distribution<std::size_t>(0, max_len)(rng));
    for (auto& x : t) x = static_cast<std::uint32_t>(std::uniform_int_distribution<std::size_t>(0, n - 1)(rng));
    return t;
}
}  // namespace

TEST_CASE("Lru and SlidingWindow match a reference recency model on long random traces") {
    // Long enough to wrap the lazy recency ring many times; some tokens exceed the capacity.
    const std::size_t n = 40;
    for (std::size_t capacity : {1u, 3u, 8u, 25u}) {
        for (std::uint64_t window : {1u, 2u, 5u, 1000u}) {
            std::mt19937 rng(static_cast<unsigned>(capacity * 131 + window));
            si::NeuronCache<policy::Lru> lru(n, {capacity});
            si::NeuronCache<policy::SlidingWindow> win(n, {window, capacity});
            RecencyModel model(n);
            std::uint64_t hits_lru = 0, hits_win = 0;
            for (std::uint64_t t = 1; t <= 3000; ++t) {
                const Ids tok = random_token(rng, n, t % 97 == 0 ? 30 : 6);
                Ids unique;  // each neuron once, at its first position (a repeat counts once)
                for (std::uint32_t x : tok)
                    if (std::count(unique.begin(), unique.end(), x) == 0) unique.push_back(x);
                for (std::uint32_t x : unique) {
                    hits_lru += lru.is_hot(x);
                    hits_win += win.is_hot(x);
                }
                lru.record_activations(tok);
                win.record_activations(tok);
                for (std::uint32_t x : unique) model.touch(x, t);
                REQUIRE(lru.hot_neurons() == model.resident(capacity, 0));
                REQUIRE(win.hot_neurons() == model.resident(capacity, t >= window ? t - window + 1 : 0));
            }
            CHECK(lru.stats().hits == hits_lru);
            CHECK(win.stats().hits == hits_win);
        }
    }
}

TEST_CASE("SlidingWindow keeps the neurons of the last `tokens` tokens") {
    si::NeuronCache<policy::SlidingWindow> c(5, {2, 10});
    c.record_activations(Ids{0});
    c.record_activations(Ids{1});
    CHECK(c.hot_neurons() == Ids{0, 1});
    c.record_activations(Ids{2});  // 0 (token 1) leaves the window of tokens 2..3
    CHECK(c.hot_neurons() == Ids{1, 2});
    c.record_activations(Ids{1});  // hit: 1 was active in token 2
    CHECK(c.stats().hits == 1);
    CHECK(c.hot_neurons() == Ids{1, 2});
    c.record_activations(nullptr, 0);  // empty token: window 4..5 holds only 1
    CHECK(c.hot_neurons() == Ids{1});
    c.record_activations(nullptr, 0);
    CHECK(c.hot_neurons().empty());
}

TEST_CASE("SlidingWindow is capped by capacity, evicting the least recent first") {
    si::NeuronCache<policy::SlidingWindow> c(6, {10, 2});
    c.record_activations(Ids{0});
    c.record_activations(Ids{1});
    c.record_activations(Ids{2});
    CHECK(c.hot_neurons() == Ids{1, 2});
}

TEST_CASE("StaticProfile: placed from the profile, then immutable while serving") {
    si::NeuronCache<policy::StaticProfile> c(5, {2});
    c.record_activations(Ids{0, 1, 2});
    c.record_activations(Ids{2, 3});
    c.record_activations(Ids{2, 1});
    CHECK(c.hot_neurons().empty());  // not placed yet
    c.reclassify();                  // counts 1, 2, 3, 1, 0 -> {2, 1}
    CHECK(c.hot_neurons() == Ids{1, 2});
    for (int t = 0; t < 50; ++t) c.record_activations(Ids{0, 3, 4});
    CHECK(c.hot_neurons() == Ids{1, 2});  // serving never moves it
    CHECK(c.stats().churn == 2);
}

TEST_CASE("StaticProfile places itself after profile_tokens tokens; ties go to the lower index") {
    si::NeuronCache<policy::StaticProfile> c(6, {2, 3});
    c.record_activations(Ids{5, 4, 3});
    c.record_activations(Ids{5, 4, 3});
    CHECK(c.hot_neurons().empty());
    c.record_activations(Ids{5, 4, 3});  // all tied at 3: the two lowest indices win
    CHECK(c.hot_neurons() == Ids{3, 4});
    for (int t = 0; t < 10; ++t) c.record_activations(Ids{0, 1});
    CHECK(c.hot_neurons() == Ids{3, 4});
}

TEST_CASE("Adaptive keeps a neuron active in every token and the current working set") {
    si::NeuronCache<policy::Adaptive> c(50, {3});
    std::mt19937 rng(5);
    for (int t = 0; t < 400; ++t) {
        const auto other = static_cast<std::uint32_t>(1 + rng() % 49);
        c.record_activations(Ids{0, other});
        CHECK(c.stats().num_hot <= 3);
    }
    CHECK(c.is_hot(0));
    // Neuron 0 hits on every token after it was first admitted.
    si::NeuronCache<policy::Adaptive> d(50, {3});
    std::uint64_t zero_misses = 0;
    for (int t = 0; t < 400; ++t) {
        const bool hot_before = d.is_hot(0);
        d.record_activations(Ids{0, static_cast<std::uint32_t>(1 + rng() % 49)});
        zero_misses += !hot_before;
    }
    CHECK(zero_misses == 1);
}

TEST_CASE("Adaptive without persistence converges to the most frequent neurons") {
    // Neurons 0..3 are active with probability 0.6, the others 0.02, independently per token.
    si::NeuronCache<policy::Adaptive> c(40, {4, 64.0});
    std::mt19937 rng(9);
    std::uniform_real_distribution<double> u(0, 1);
    Ids active;
    for (int t = 0; t < 3000; ++t) {
        active.clear();
        for (std::uint32_t i = 0; i < 40; ++i)
            if (u(rng) < (i < 4 ? 0.6 : 0.02)) active.push_back(i);
        c.record_activations(active);
    }
    // The set right after the last token may hold one just-active rarity; the frequent ones
    // dominate: at least three of 0..3 resident.
    int frequent = 0;
    for (std::uint32_t i = 0; i < 4; ++i) frequent += c.is_hot(i);
    CHECK(frequent >= 3);
}

namespace {
template <class Policy>
void check_capacity_and_pins(Policy p, std::size_t capacity) {
    const std::size_t neurons = 64;
    si::NeuronCache<Policy> c(neurons, p);
    const Ids pins{5, 17};
    std::mt19937 rng(3);
    Ids active;
    for (int t = 0; t < 600; ++t) {
        if (t == 100) c.pin(pins);
        active.clear();
        const std::size_t n = rng() % 20;
        for (std::size_t k = 0; k < n; ++k) active.push_back(static_cast<std::uint32_t>(rng() % neurons));
        c.record_activations(active);
        REQUIRE(c.stats().num_hot <= capacity);
        REQUIRE(c.hot_neurons().size() == c.stats().num_hot);
        if (t >= 100)
            for (std::uint32_t x : pins) REQUIRE(c.is_hot(x));
        if (t == 300) c.reclassify();
    }
    CHECK_THROWS_AS(c.pin(Ids{0, 1, 2, 3, 4, 6, 7, 8, 9, 10}), si::error);  // 12 pins > capacity 8
    for (std::uint32_t x : pins) CHECK(c.is_hot(x));
}
}  // namespace

TEST_CASE("every capacity policy keeps the resident set within capacity and respects pins") {
    check_capacity_and_pins(policy::Lru{8}, 8);
    check_capacity_and_pins(policy::SlidingWindow{3, 8}, 8);
    check_capacity_and_pins(policy::StaticProfile{8, 50}, 8);
    check_capacity_and_pins(policy::Adaptive{8}, 8);
    check_capacity_and_pins(policy::Adaptive{8, 4.0}, 8);
    check_capacity_and_pins(policy::Adaptive{8, 1e6}, 8);
}

TEST_CASE("pins fill the capacity: nothing else is admitted, pins still hit") {
    si::NeuronCache<policy::Lru> c(10, {2});
    c.pin(Ids{3, 4});
    c.record_activations(Ids{3, 4, 5});
    CHECK(c.hot_neurons() == Ids{3, 4});
    CHECK(c.stats().hits == 2);
    CHECK(c.stats().misses == 1);
}

TEST_CASE("a pin under a full capacity policy evicts one of the policy's own neurons") {
    si::NeuronCache<policy::Lru> c(10, {2});
    c.record_activations(Ids{0});
    c.record_activations(Ids{1});
    c.pin(Ids{7});  // evicts 0, the least recent
    CHECK(c.hot_neurons() == Ids{1, 7});
    c.record_activations(Ids{2});  // only one unpinned slot: 2 replaces 1
    CHECK(c.hot_neurons() == Ids{2, 7});
}

TEST_CASE("Belady's optimum on a hand-made trace") {
    si::ActivationTrace t(3);
    t.add_token(Ids{0});
    t.add_token(Ids{1});  // 1 is never used again: bypassed
    t.add_token(Ids{0});
    const auto r = si::detail::belady(t, 1);
    CHECK(r.misses == 2);
    CHECK(r.hits == 1);
}

TEST_CASE("no policy beats Belady's optimum") {
    for (std::uint64_t seed : {1, 2, 3}) {
        si::SyntheticTraceOptions o;
        o.num_neurons = 200;
        o.tokens = 300;
        o.active_fraction = 0.1;
        o.persistence = 0.5;
        o.seed = seed;
        const si::ActivationTrace t = si::make_synthetic_trace(o);
        const std::uint64_t floor = si::detail::belady(t, 40).misses;
        auto misses = [&](auto p) {
            si::NeuronCache<decltype(p)> c(200, p);
            for (std::size_t i = 0; i < t.num_tokens(); ++i) c.record_activations(t.token(i), t.token_size(i));
            return c.stats().misses;
        };
        CHECK(floor <= misses(policy::Lru{40}));
        CHECK(floor <= misses(policy::SlidingWindow{2, 40}));
        CHECK(floor <= misses(policy::StaticProfile{40, 30}));
        CHECK(floor <= misses(policy::Adaptive{40}));
        CHECK(floor < misses(policy::Lru{40}));  // LRU is not optimal on this trace
    }
}

TEST_CASE("Adaptive stays consistent across weight renormalisations (short half-life, long run)") {
    // half_life 4: the challenger's half-life is 1, doubling its increment every token, so
    // renormalisation runs every ~100 tokens.
    si::NeuronCache<policy::Adaptive> c(30, {5, 4.0});
    std::mt19937 rng(4);
    Ids active;
    for (int t = 0; t < 2000; ++t) {
        active.clear();
        active.push_back(0);  // always active: must stay resident once admitted
        for (int k = 0; k < 3; ++k) active.push_back(static_cast<std::uint32_t>(1 + rng() % 29));
        c.record_activations(active);
        REQUIRE(c.stats().num_hot <= 5);
        if (t > 0) REQUIRE(c.is_hot(0));
        REQUIRE(std::isfinite(c.policy_state().rate(0)));
    }
    CHECK(c.stats().misses > 0);
}

TEST_CASE("Adaptive follows a popularity change with the shorter half-life, then returns") {
    // Phase 1: neurons 0..4 popular; phase 2: neurons 20..24; each active with chance 0.5,
    // the rest with 0.01, independently (no persistence).
    si::NeuronCache<policy::Adaptive> c(60, {5, 256.0});
    std::mt19937 rng(8);
    std::uniform_real_distribution<double> u(0, 1);
    Ids active;
    auto run = [&](std::uint32_t first_popular, int tokens) {
        for (int t = 0; t < tokens; ++t) {
            active.clear();
            for (std::uint32_t i = 0; i < 60; ++i)
                if (u(rng) < (i >= first_popular && i < first_popular + 5 ? 0.5 : 0.01)) active.push_back(i);
            c.record_activations(active);
        }
    };
    run(0, 1500);
    CHECK(c.policy_state().half_life() == 256.0);  // stationary: the long half-life predicts better
    run(20, 300);
    CHECK(c.policy_state().half_life() == 64.0);  // just after the change the short one does
    int popular = 0;
    for (std::uint32_t i = 20; i < 25; ++i) popular += c.is_hot(i);
    CHECK(popular >= 3);
    run(20, 3000);
    CHECK(c.policy_state().half_life() == 256.0);
}

TEST_CASE("Adaptive forgets the old ranking faster once a popularity change is detected") {
    // As above: neurons 0..4 popular, then 20..24. When the short half-life takes over, the long
    // estimator restarts from its rates and both age the past by a half-life, so 64 tokens later
    // the old favourites' long-half-life rates are well below what 256-token decay alone leaves.
    si::NeuronCache<policy::Adaptive> c(60, {5, 256.0});
    std::mt19937 rng(8);
    std::uniform_real_distribution<double> u(0, 1);
    Ids active;
    auto token = [&](std::uint32_t first_popular) {
        active.clear();
        for (std::uint32_t i = 0; i < 60; ++i)
            if (u(rng) < (i >= first_popular && i < first_popular + 5 ? 0.5 : 0.01)) active.push_back(i);
        c.record_activations(active);
    };
    const auto& s = c.policy_state();
    for (int t = 0; t < 1500; ++t) token(0);
    REQUIRE(s.half_life() == 256.0);
    double before = 0;  // the old favourites' mean rate under the long half-life at the change
    for (std::uint32_t i = 0; i < 5; ++i) before += s.rate(i) / 5;
    int d = 0;
    while (s.half_life() == 256.0 && d < 400) {
        token(20);
        ++d;
    }
    REQUIRE(s.half_life() == 64.0);
    for (std::uint32_t i = 0; i < 60; ++i)  // restarted from the short one's rates
        CHECK(s.challenger_rate(i) == Approx(s.rate(i)).epsilon(1e-4).margin(1e-9));
    for (int t = 0; t < 64; ++t) token(20);
    d += 64;
    double long_rate = 0;
    for (std::uint32_t i = 0; i < 5; ++i) long_rate += (s.half_life() == 256.0 ? s.rate(i) : s.challenger_rate(i)) / 5;
    // Neurons 0..4 are hardly active now: 256-token decay alone would leave about before * 2^(-d / 256).
    INFO("d = " << d << ", before = " << before << ", long-half-life rate = " << long_rate);
    CHECK(long_rate < 0.9 * before * std::exp2(-d / 256.0));
}
