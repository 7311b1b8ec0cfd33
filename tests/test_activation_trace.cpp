// Tests of <sparseinfer/activation_trace.hpp>.
#include <sparseinfer/activation_trace.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <vector>

#include "catch.hpp"

namespace si = sparseinfer;

namespace {
std::vector<std::uint32_t> tok(const si::ActivationTrace& t, std::size_t i) {
    return std::vector<std::uint32_t>(t.token(i), t.token(i) + t.token_size(i));
}
/// Share of the activations that the `top` most frequent neurons carry.
double top_share(const si::ActivationTrace& t, std::size_t from, std::size_t to, std::size_t top,
                 std::vector<std::size_t>* counts_out = nullptr) {
    std::vector<std::size_t> counts(t.num_neurons(), 0);
    std::size_t all = 0;
    for (std::size_t i = from; i < to; ++i)
        for (std::size_t k = 0; k < t.token_size(i); ++k, ++all) ++counts[t.token(i)[k]];
    if (counts_out) *counts_out = counts;
    std::sort(counts.begin(), counts.end(), [](std::size_t a, std::size_t b) { return a > b; });
    std::size_t carried = 0;
    for (std::size_t i = 0; i < top; ++i) carried += counts[i];
    return static_cast<double>(carried) / static_cast<double>(all);
}
}  // namespace

TEST_CASE("ActivationTrace stores tokens and rejects out-of-range neurons") {
    si::ActivationTrace t(4);
    CHECK(t.num_tokens() == 0);
    t.add_token(std::vector<std::uint32_t>{});
    t.add_token(std::vector<std::uint32_t>{3, 0});
    CHECK(t.num_tokens() == 2);
    CHECK(t.token_size(0) == 0);
    CHECK(tok(t, 1) == std::vector<std::uint32_t>{3, 0});
    CHECK_THROWS_AS(t.add_token(std::vector<std::uint32_t>{1, 4}), si::error);
    CHECK(t.num_tokens() == 2);
    CHECK(t.num_activations() == 2);
}

TEST_CASE("make_synthetic_trace rejects invalid options") {
    si::SyntheticTraceOptions o;
    o.num_neurons = 0;
    CHECK_THROWS_AS(si::make_synthetic_trace(o), si::error);
    o = {};
    o.active_fraction = 0;
    CHECK_THROWS_AS(si::make_synthetic_trace(o), si::error);
    o.active_fraction = 1.5;
    CHECK_THROWS_AS(si::make_synthetic_trace(o), si::error);
    o = {};
    o.zipf_exponent = -1;
    CHECK_THROWS_AS(si::make_synthetic_trace(o), si::error);
    o = {};
    o.persistence = 1.1;
    CHECK_THROWS_AS(si::make_synthetic_trace(o), si::error);
}

TEST_CASE("synthetic traces are deterministic per seed, with distinct neurons and a fixed count per token") {
    si::SyntheticTraceOptions o;
    o.num_neurons = 500;
    o.tokens = 50;
    o.persistence = 0.5;
    const si::ActivationTrace a = si::make_synthetic_trace(o), b = si::make_synthetic_trace(o);
    o.seed = 2;
    const si::ActivationTrace c = si::make_synthetic_trace(o);
    bool differs = false;
    for (std::size_t i = 0; i < a.num_tokens(); ++i) {
        CHECK(tok(a, i) == tok(b, i));
        differs |= tok(a, i) != tok(c, i);
        auto s = tok(a, i);
        CHECK(s.size() == 50);
        std::sort(s.begin(), s.end());
        CHECK(std::adjacent_find(s.begin(), s.end()) == s.end());
    }
    CHECK(differs);
}

TEST_CASE("persistence carries that share of each token's neurons into the next") {
    for (double p : {0.0, 0.5, 0.8, 1.0}) {
        si::SyntheticTraceOptions o;
        o.num_neurons = 1000;
        o.tokens = 200;
        o.zipf_exponent = 0.0;  // uniform popularity: chance overlap is 10%
        o.persistence = p;
        const si::ActivationTrace t = si::make_synthetic_trace(o);
        double shared = 0;
        for (std::size_t i = 0; i + 1 < t.num_tokens(); ++i) {
            auto now = tok(t, i), next = tok(t, i + 1);
            std::sort(now.begin(), now.end());
            std::sort(next.begin(), next.end());
            std::vector<std::uint32_t> both;
            std::set_intersection(now.begin(), now.end(), next.begin(), next.end(), std::back_inserter(both));
            shared += static_cast<double>(both.size()) / static_cast<double>(now.size());
        }
        shared /= static_cast<double>(t.num_tokens() - 1);
        // Kept share p, plus the chance that a fresh draw (10% of the 90% not yet chosen... of the
        // rest) hits a neuron that was not kept: (1 - p) * 100 fresh of 900 candidates.
        const double expected = p + (1 - p) * (1 - p) * 100.0 / (1000.0 - 100.0 * p);
        INFO("persistence " << p);
        CHECK(shared == Approx(expected).margin(0.02));
    }
}

TEST_CASE("Zipf popularity: a larger exponent concentrates activations on fewer neurons") {
    auto share = [](double s) {
        si::SyntheticTraceOptions o;
        o.num_neurons = 2000;
        o.tokens = 300;
        o.zipf_exponent = s;
        return top_share(si::make_synthetic_trace(o), 0, 300, 520);  // top 26% of the neurons
    };
    const double s089 = share(0.89), s076 = share(0.76), s040 = share(0.40), s0 = share(0.0);
    CHECK(s089 > s076);
    CHECK(s076 > s040);
    CHECK(s040 > s0);
    CHECK(s0 < 0.35);   // uniform: about 26%, plus sampling noise
    CHECK(s089 > 0.5);  // heavy head
}

TEST_CASE("drift redraws the popularity ranking halfway") {
    si::SyntheticTraceOptions o;
    o.num_neurons = 1000;
    o.tokens = 400;
    o.zipf_exponent = 0.89;
    o.drift = true;
    const si::ActivationTrace t = si::make_synthetic_trace(o);
    std::vector<std::size_t> first, second;
    top_share(t, 0, 200, 10, &first);
    top_share(t, 200, 400, 10, &second);
    auto top = [](const std::vector<std::size_t>& counts) {
        std::vector<std::uint32_t> idx(counts.size());
        for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::uint32_t>(i);
        std::partial_sort(idx.begin(), idx.begin() + 20, idx.end(),
                          [&](std::uint32_t a, std::uint32_t b) { return counts[a] > counts[b]; });
        idx.resize(20);
        std::sort(idx.begin(), idx.end());
        return idx;
    };
    const auto a = top(first), b = top(second);
    std::vector<std::uint32_t> both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    CHECK(both.size() < 8);  // a random redraw keeps few of the top 20

    o.drift = false;
    const si::ActivationTrace still = si::make_synthetic_trace(o);
    top_share(still, 0, 200, 10, &first);
    top_share(still, 200, 400, 10, &second);
    const auto c = top(first), d = top(second);
    both.clear();
    std::set_intersection(c.begin(), c.end(), d.begin(), d.end(), std::back_inserter(both));
    CHECK(both.size() > 12);
}

TEST_CASE("active_fraction 1: every neuron active in every token (no stall)") {
    si::SyntheticTraceOptions o;
    o.num_neurons = 64;
    o.tokens = 5;
    o.active_fraction = 1.0;
    o.zipf_exponent = 2.0;
    const si::ActivationTrace t = si::make_synthetic_trace(o);
    for (std::size_t i = 0; i < t.num_tokens(); ++i) CHECK(t.token_size(i) == 64);
}
