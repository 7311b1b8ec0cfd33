// Tests of <sparseinfer/selection.hpp>: top-k and threshold selection, recall,
// threshold calibration.
#include <sparseinfer/selection.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "catch.hpp"

namespace {

/// The documented order, written as a plain sort: larger score first, -0 == +0,
/// NaN below everything, ties to the lower index; the first k, ascending.
std::vector<std::uint32_t> reference_top_k(const std::vector<float>& s, std::size_t k) {
    std::vector<std::uint32_t> idx(s.size());
    std::iota(idx.begin(), idx.end(), 0u);
    std::stable_sort(idx.begin(), idx.end(), [&](std::uint32_t a, std::uint32_t b) {
        const bool na = std::isnan(s[a]), nb = std::isnan(s[b]);
        if (na || nb) return !na && nb;
        return s[a] > s[b];
    });
    idx.resize(std::min(k, s.size()));
    std::sort(idx.begin(), idx.end());
    return idx;
}

}  // namespace

TEST_CASE("select_top_k returns the k largest in ascending order, ties to the lower index, NaN last") {
    const float s[] = {0.5f, 3.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f, -1.0f, 2.0f};
    std::vector<std::uint32_t> out(6);
    CHECK(sparseinfer::select_top_k(s, 6, 0, out.data()) == 0);
    REQUIRE(sparseinfer::select_top_k(s, 6, 2, out.data()) == 2);
    CHECK(out[0] == 1);
    CHECK(out[1] == 3);
    REQUIRE(sparseinfer::select_top_k(s, 6, 3, out.data()) == 3);
    CHECK((out[0] == 1 && out[1] == 3 && out[2] == 5));
    REQUIRE(sparseinfer::select_top_k(s, 6, 5, out.data()) == 5);
    CHECK(std::find(out.begin(), out.begin() + 5, 2u) == out.begin() + 5);  // the NaN is left out
    CHECK(sparseinfer::select_top_k(s, 6, 99, out.data()) == 6);
    const float one[] = {7.0f};
    CHECK(sparseinfer::select_top_k(one, 1, 1, out.data()) == 1);
    CHECK(out[0] == 0);
}

TEST_CASE("select_at_least keeps every score at or above the threshold") {
    const float s[] = {0.5f, 3.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f, -1.0f, 2.0f};
    std::vector<std::uint32_t> out(6);
    REQUIRE(sparseinfer::select_at_least(s, 6, 2.0f, out.data()) == 3);
    CHECK((out[0] == 1 && out[1] == 3 && out[2] == 5));
    CHECK(sparseinfer::select_at_least(s, 6, 10.0f, out.data()) == 0);
    CHECK(sparseinfer::select_at_least(s, 6, -std::numeric_limits<float>::infinity(), out.data()) == 5);
    CHECK(sparseinfer::select(sparseinfer::Selection::at_least(3.0f), s, 6, out.data()) == 2);
    CHECK(sparseinfer::select(sparseinfer::Selection::top_k(1), s, 6, out.data()) == 1);
}

TEST_CASE("recall counts the share of the true set that was chosen") {
    const std::uint32_t truth[] = {1, 5, 9, 12};
    const std::uint32_t chosen[] = {12, 2, 1, 7, 8};
    CHECK(sparseinfer::recall(chosen, 5, truth, 4) == Approx(0.5));
    CHECK(sparseinfer::recall(chosen, 0, truth, 4) == 0.0);
    CHECK(sparseinfer::recall(chosen, 5, truth, 0) == 1.0);
}

TEST_CASE("a threshold calibrated for a fraction keeps that fraction of similar scores") {
    sparseinfer::ThresholdCalibrator cal;
    CHECK_THROWS_AS(cal.threshold_for_fraction(0.1), sparseinfer::error);
    std::mt19937 rng(3);
    std::exponential_distribution<float> ed(1.0f);
    std::vector<float> s(1000);
    for (int t = 0; t < 20; ++t) {
        for (auto& v : s) v = ed(rng);
        cal.record(s.data(), s.size());
    }
    CHECK(cal.recorded() == 20000);
    CHECK_THROWS_AS(cal.threshold_for_fraction(0.0), sparseinfer::error);
    CHECK_THROWS_AS(cal.threshold_for_fraction(1.5), sparseinfer::error);
    for (double f : {0.05, 0.1, 0.25, 0.5}) {
        const float th = cal.threshold_for_fraction(f);
        CHECK(th == Approx(-std::log(f)).epsilon(0.08));  // the exponential's quantile
        // On fresh scores from the same distribution the kept share is close to f.
        std::size_t kept = 0;
        std::vector<std::uint32_t> out(s.size());
        for (int t = 0; t < 10; ++t) {
            for (auto& v : s) v = ed(rng);
            kept += sparseinfer::select_at_least(s.data(), s.size(), th, out.data());
        }
        CHECK(static_cast<double>(kept) / 10000.0 == Approx(f).margin(0.02));
    }
    CHECK(cal.threshold_for_fraction(1.0) <= 1e-3f);
}

TEST_CASE("select_top_k matches a plain sort on ties, signed zeros, infinities, NaN and denormals") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const float tiny = std::numeric_limits<float>::denorm_min();
    // Pools of values drawn with replacement, so ties are common.
    const std::vector<std::vector<float>> pools = {
        {0.0f, -0.0f, 1.0f, -1.0f, nan, inf, -inf, tiny, -tiny, 3.5f},
        {1.0f, 1.0f, 2.0f},
        {nan},
        {-inf, -3.0f, -0.0f},
        {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(), 1e-30f, -1e-30f},
    };
    std::mt19937 rng(12);
    for (const auto& pool : pools)
        for (std::size_t n : {1, 2, 3, 7, 64, 1000, 5000}) {
            std::vector<float> s(n);
            for (auto& v : s) v = pool[rng() % pool.size()];
            for (std::size_t k : {std::size_t{1}, std::size_t{2}, n / 3, n / 2, n - 1, n}) {
                if (k == 0) continue;
                INFO("pool of " << pool.size() << ", n=" << n << ", k=" << k);
                std::vector<std::uint32_t> out(n, 77);
                REQUIRE(sparseinfer::select_top_k(s.data(), n, k, out.data()) == std::min(k, n));
                out.resize(std::min(k, n));
                CHECK(out == reference_top_k(s, k));
            }
        }
}

TEST_CASE("select_top_k matches a plain sort on continuous and clustered scores") {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    for (int trial = 0; trial < 40; ++trial) {
        const std::size_t n = 1 + rng() % 20000;
        std::vector<float> s(n);
        // Half the trials: values in a narrow band, so the radix digits below the top ones decide.
        const float spread = trial % 2 ? 1e-6f : 10.0f;
        for (auto& v : s) v = 1.0f + spread * nd(rng);
        const std::size_t k = 1 + rng() % n;
        INFO("n=" << n << ", k=" << k << ", spread=" << spread);
        std::vector<std::uint32_t> out(n);
        REQUIRE(sparseinfer::select_top_k(s.data(), n, k, out.data()) == k);
        out.resize(k);
        CHECK(out == reference_top_k(s, k));
    }
}

TEST_CASE("score_of_key inverts rank_key: numbers come back bit for bit, -0 as +0, NaN as NaN") {
    using sparseinfer::detail::rank_key;
    using sparseinfer::detail::score_of_key;
    const float values[] = {1.0f,
                            -1.0f,
                            0.5f,
                            -3e38f,
                            3e38f,
                            1e-45f,
                            -1e-45f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            123.456f,
                            -0.001f};
    for (float v : values) {
        INFO("v = " << v);
        const float back = score_of_key(rank_key(v));
        std::uint32_t a, b;
        std::memcpy(&a, &v, sizeof a);
        std::memcpy(&b, &back, sizeof b);
        CHECK(a == b);
    }
    CHECK(score_of_key(rank_key(-0.0f)) == 0.0f);
    CHECK_FALSE(std::signbit(score_of_key(rank_key(-0.0f))));
    CHECK(std::isnan(score_of_key(rank_key(std::numeric_limits<float>::quiet_NaN()))));
}
