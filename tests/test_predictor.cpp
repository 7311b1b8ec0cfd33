// Tests of <sparseinfer/predictor.hpp> (selection: test_selection.cpp).
#include <sparseinfer/predictor.hpp>
#include <sparseinfer/quantized_activations.hpp>
#include <sparseinfer/quantized_weights_view.hpp>
#include <sparseinfer/selection.hpp>
#include <sparseinfer/thread_pool.hpp>

#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"

using sparseinfer::LowRankPredictor;
using sparseinfer::PredictorOptions;
using RowMatrix = LowRankPredictor::RowMatrix;

namespace {

/// G = U V (rank `rank`) + noise * N(0, 1/d), row-major hidden x d.
RowMatrix planted(std::size_t hidden, std::size_t d, std::size_t rank, float noise, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    RowMatrix U(hidden, rank), V(rank, d), N(hidden, d);
    for (Eigen::Index i = 0; i < U.size(); ++i) U.data()[i] = nd(rng);
    for (Eigen::Index i = 0; i < V.size(); ++i) V.data()[i] = nd(rng) / std::sqrt(static_cast<float>(d));
    for (Eigen::Index i = 0; i < N.size(); ++i) N.data()[i] = noise * nd(rng) / std::sqrt(static_cast<float>(d));
    return U * V / std::sqrt(static_cast<float>(rank)) + N;
}

std::vector<float> random_x(std::size_t d, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> x(d);
    for (auto& v : x) v = nd(rng);
    return x;
}

/// Mean recall of the top `frac` of neurons (by |silu(G x)|) over `tokens` random inputs.
double mean_recall(LowRankPredictor& p, const RowMatrix& G, double frac, int tokens) {
    const std::size_t h = static_cast<std::size_t>(G.rows()), d = static_cast<std::size_t>(G.cols());
    const std::size_t k = static_cast<std::size_t>(std::ceil(frac * static_cast<double>(h)));
    std::vector<float> exact(h), predicted(h);
    std::vector<std::uint32_t> truth(h), chosen(h);
    double sum = 0;
    for (int t = 0; t < tokens; ++t) {
        const std::vector<float> x = random_x(d, 1000 + static_cast<unsigned>(t));
        for (std::size_t i = 0; i < h; ++i) {
            double g = 0;
            for (std::size_t j = 0; j < d; ++j)
                g += double(G(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j))) * x[j];
            exact[i] = static_cast<float>(std::fabs(g / (1.0 + std::exp(-g))));
        }
        p.scores(x.data(), sparseinfer::Activation::silu, predicted.data());
        sparseinfer::select_top_k(exact.data(), h, k, truth.data());
        sparseinfer::select_top_k(predicted.data(), h, k, chosen.data());
        sum += sparseinfer::recall(chosen.data(), k, truth.data(), k);
    }
    return sum / tokens;
}

double frobenius_error(const LowRankPredictor& p, const RowMatrix& G) { return (G - p.P() * p.Q()).norm() / G.norm(); }

}  // namespace

TEST_CASE("the predictor recovers a planted low-rank gate: recall of the top 10% >= 0.9") {
    const RowMatrix G = planted(400, 128, 8, 0.05f, 1);
    auto p = LowRankPredictor::from_gate(G.data(), 400, 128, PredictorOptions{8});
    CHECK(p.rank() == 8);
    CHECK(p.hidden() == 400);
    CHECK(p.d_model() == 128);
    CHECK(frobenius_error(p, G) < 0.1);
    CHECK(mean_recall(p, G, 0.10, 20) >= 0.9);
    // Stored quantized, the prediction stays as good.
    p.quantize();
    CHECK(p.quantized());
    CHECK(mean_recall(p, G, 0.10, 20) >= 0.9);
    // With a rank that fills whole 32-value blocks, 8-bit factors take under a third of the float bytes.
    auto p32 = LowRankPredictor::from_gate(G.data(), 400, 128, PredictorOptions{32});
    const std::size_t float_bytes = p32.memory_bytes();
    CHECK(float_bytes == (400 + 128) * 32 * sizeof(float));
    p32.quantize();
    CHECK(p32.memory_bytes() < float_bytes / 3);
    // A rank-2 predictor of a rank-8 gate is worse.
    auto low = LowRankPredictor::from_gate(G.data(), 400, 128, PredictorOptions{2});
    CHECK(mean_recall(low, G, 0.10, 20) < 0.8);
}

TEST_CASE("8-bit factors: the prediction stays within the rounding bound of the float P (Q x)") {
    // Hidden 300 is not a multiple of the 16-row panels; ranks below, at and
    // above 32, and ones that are not multiples of 4 (zero padded depth).
    for (std::size_t rank : {1u, 7u, 32u, 45u}) {
        const RowMatrix G = planted(300, 96, 48, 0.1f, 7);
        auto p = LowRankPredictor::from_gate(G.data(), 300, 96, PredictorOptions{rank});
        auto q = p;
        q.quantize();
        std::mt19937 rng(5);
        std::normal_distribution<float> nd;
        std::vector<float> x(96), ref(300), got(300), s(300);
        for (int t = 0; t < 5; ++t) {
            for (auto& v : x) v = nd(rng);
            // Reference: float P times float Q x, in double.
            const Eigen::VectorXd qx =
                p.Q().cast<double>() * Eigen::Map<const Eigen::VectorXf>(x.data(), 96).cast<double>();
            double scale = 0;
            for (std::size_t i = 0; i < 300; ++i) {
                ref[i] = static_cast<float>(p.P().row(static_cast<Eigen::Index>(i)).cast<double>().dot(qx));
                scale = std::max(scale, static_cast<double>(std::fabs(ref[i])));
            }
            q.predict(x.data(), got.data());
            q.scores(x.data(), sparseinfer::Activation::relu, s.data());
            // Bound per neuron: the error dt_j of (Q x)_j from Q's 8-bit rows (a
            // quarter of the group's max-min step per weight, max|Q_j| / 510) and
            // from x rounded to int8 per block of 32 (half its block's step s_b / 2,
            // times |Q_jl| + max|Q_j| / 255), then the int8 rounding of P's row and
            // of Q x (half a step of 1/127 of their largest value each).
            double xsum = 0;
            for (float v : x) xsum += std::fabs(v);
            const auto xq = sparseinfer::quantize_activations(x.data(), x.size());
            const Eigen::VectorXd qmax = p.Q().cast<double>().cwiseAbs().rowwise().maxCoeff();
            Eigen::VectorXd dt = qmax * (xsum / 510.0);
            for (Eigen::Index j = 0; j < dt.size(); ++j)
                for (Eigen::Index l = 0; l < 96; ++l)
                    dt[j] += (std::fabs(static_cast<double>(p.Q()(j, l))) + qmax[j] / 255.0) *
                             xq.scales[static_cast<std::size_t>(l) / 32] / 2.0;
            for (std::size_t i = 0; i < 300; ++i) {
                const Eigen::Index ii = static_cast<Eigen::Index>(i);
                const Eigen::VectorXd pa = p.P().row(ii).cast<double>().cwiseAbs().transpose();
                const double bound = pa.dot(dt) +
                                     static_cast<double>(rank) * pa.maxCoeff() *
                                         (qx.cwiseAbs().maxCoeff() + dt.maxCoeff()) * (2.0 / 254) +
                                     1e-6;
                CHECK(std::fabs(static_cast<double>(got[i]) - ref[i]) <= bound);
                CHECK(s[i] == std::max(got[i], 0.0f));
            }
            (void)scale;
        }
    }
    // A NaN input gives NaN predictions (ranked last), not a crash.
    const RowMatrix G = planted(64, 32, 4, 0.1f, 8);
    auto q = LowRankPredictor::from_gate(G.data(), 64, 32, PredictorOptions{4});
    q.quantize();
    std::vector<float> x(32, 1.0f), out(64);
    x[3] = std::numeric_limits<float>::quiet_NaN();
    q.predict(x.data(), out.data());
    for (float v : out) CHECK(std::isnan(v));
    x[3] = 1.0f;
    x[20] = -std::numeric_limits<float>::infinity();
    q.predict(x.data(), out.data());
    for (float v : out) CHECK(std::isnan(v));
    x[20] = 1.0f;
    q.predict(x.data(), out.data());
    for (float v : out) CHECK(std::isfinite(v));
}

TEST_CASE("full rank reproduces the gate exactly; the randomized SVD is near the optimum") {
    const RowMatrix G = planted(150, 64, 64, 0.3f, 2);
    auto full = LowRankPredictor::from_gate(G.data(), 150, 64, PredictorOptions{1000});
    CHECK(full.rank() == 64);
    CHECK(frobenius_error(full, G) < 1e-5);
    const std::vector<float> x = random_x(64, 3);
    std::vector<float> pre(150);
    full.predict(x.data(), pre.data());
    for (Eigen::Index i = 0; i < 150; ++i) {
        double g = 0;
        for (Eigen::Index j = 0; j < 64; ++j) g += double(G(i, j)) * x[static_cast<std::size_t>(j)];
        CHECK(std::fabs(pre[static_cast<std::size_t>(i)] - g) <= 1e-4 * (1 + std::fabs(g)));
    }

    // Randomized range finder vs the exact truncated SVD on a decaying spectrum.
    const RowMatrix H = planted(600, 200, 16, 0.2f, 4);
    PredictorOptions exact{16}, randomized{16};
    randomized.exact_svd_limit = 0;
    auto pe = LowRankPredictor::from_gate(H.data(), 600, 200, exact);
    auto pr = LowRankPredictor::from_gate(H.data(), 600, 200, randomized);
    const double ee = frobenius_error(pe, H), er = frobenius_error(pr, H);
    INFO("exact " << ee << ", randomized " << er);
    CHECK(er <= ee * 1.01);
    CHECK(er >= ee * (1 - 1e-4));  // the optimum cannot be beaten
}

TEST_CASE("least-squares refinement fits the recorded inputs at least as well as the SVD") {
    const std::size_t h = 120, d = 48, n = 200;
    const RowMatrix G = planted(h, d, 48, 0.5f, 7);  // not low rank
    // Inputs concentrated in a 6-dimensional subspace, as real hidden states are anisotropic.
    RowMatrix basis = planted(6, d, 6, 0.0f, 8), X(n, d);
    std::mt19937 rng(9);
    std::normal_distribution<float> nd;
    for (std::size_t t = 0; t < n; ++t) {
        Eigen::RowVectorXf c(6);
        for (int i = 0; i < 6; ++i) c(i) = nd(rng);
        X.row(static_cast<Eigen::Index>(t)) = c * basis;
    }
    auto p = LowRankPredictor::from_gate(G.data(), h, d, PredictorOptions{6});
    const RowMatrix target = X * G.transpose();
    const double before = (X * p.Q().transpose() * p.P().transpose() - target).norm();
    p.refine(X.data(), n, G.data(), 1e-8);
    const double after = (X * p.Q().transpose() * p.P().transpose() - target).norm();
    INFO("before " << before << ", after " << after);
    CHECK(after <= before * 1.0001);
    CHECK_THROWS_AS(p.refine(nullptr, n, G.data()), sparseinfer::error);
    CHECK_THROWS_AS(p.refine(X.data(), 0, G.data()), sparseinfer::error);
}

TEST_CASE("the kept region's edges solve |act(z)| = cut and bound exactly the kept pre-activations") {
    using sparseinfer::Activation;
    for (Activation act : {Activation::silu, Activation::gelu, Activation::relu})
        for (float cut : {0.01f, 0.1f, 0.16f, 0.2f, 0.27f, 0.3f, 1.0f, 7.0f}) {
            INFO("activation " << static_cast<int>(act) << ", cut " << cut);
            const auto r = sparseinfer::detail::kept_region(act, cut);
            // The negative part exists exactly when cut is below the peak of |act| on z < 0
            // (SiLU 0.2785 at -1.2785, GELU 0.1700 at -0.7518; ReLU none).
            const float peak = act == Activation::silu ? 0.2785f : act == Activation::gelu ? 0.1700f : 0.0f;
            if (std::fabs(cut - peak) > 1e-3f) CHECK(r.has_neg == (cut < peak));
            auto a = [act](double z) { return std::fabs(static_cast<double>(sparseinfer::activate(act, float(z)))); };
            CHECK(a(r.pos) == Approx(cut).epsilon(1e-5));
            if (r.has_neg) {
                CHECK(r.neg_lo < r.neg_hi);
                CHECK(r.neg_hi < 0);
                CHECK(a(r.neg_lo) == Approx(cut).epsilon(1e-4));
                CHECK(a(r.neg_hi) == Approx(cut).epsilon(1e-4));
            }
            // Membership on a grid, away from the edges (float rounding there).
            bool agree = true;
            for (double z = -30; z <= 30; z += 0.01) {
                if (r.distance(static_cast<float>(z)) < 1e-3f) continue;
                const bool kept = z >= r.pos || (r.has_neg && z >= r.neg_lo && z <= r.neg_hi);
                agree = agree && (kept == (a(z) >= cut));
            }
            CHECK(agree);
        }
    // No edge for cuts that keep everything or nothing.
    CHECK(sparseinfer::detail::kept_region(Activation::silu, 0.0f).distance(5.0f) == 5.0f);
}

namespace {

/// G = diag(s) (U V + noise), s_i a power law over a random order of the rows:
/// the error of a low-rank predictor differs from row to row, as in bench_ffn.
RowMatrix planted_scaled(std::size_t hidden, std::size_t d, std::size_t rank, float noise, unsigned seed) {
    RowMatrix G = planted(hidden, d, rank, noise, seed);
    std::mt19937 rng(seed + 1);
    std::vector<std::size_t> order(hidden);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t i = 0; i < hidden; ++i)
        G.row(static_cast<Eigen::Index>(i)) *= 3.0f * std::pow(1.0f + static_cast<float>(order[i]), -0.35f);
    return G;
}

std::vector<double> exact_gate(const RowMatrix& G, const std::vector<float>& x) {
    std::vector<double> g(static_cast<std::size_t>(G.rows()), 0.0);
    for (Eigen::Index i = 0; i < G.rows(); ++i)
        for (Eigen::Index j = 0; j < G.cols(); ++j)
            g[static_cast<std::size_t>(i)] += double(G(i, j)) * x[static_cast<std::size_t>(j)];
    return g;
}

}  // namespace

TEST_CASE("error_scale is the norm of each row of the residual G - P Q") {
    const RowMatrix G = planted_scaled(300, 64, 6, 0.3f, 3);
    for (std::size_t limit : {std::size_t{1024}, std::size_t{0}}) {  // exact and randomized SVD
        PredictorOptions o{6};
        o.exact_svd_limit = limit;
        auto p = LowRankPredictor::from_gate(G.data(), 300, 64, o);
        REQUIRE(p.error_scale().size() == 300);
        for (Eigen::Index i = 0; i < 300; ++i) {
            double r2 = 0;
            for (Eigen::Index j = 0; j < 64; ++j) {
                double pq = 0;
                for (Eigen::Index c = 0; c < 6; ++c) pq += double(p.P()(i, c)) * p.Q()(c, j);
                r2 += (G(i, j) - pq) * (G(i, j) - pq);
            }
            CHECK(p.error_scale()[static_cast<std::size_t>(i)] == Approx(std::sqrt(r2)).epsilon(1e-3));
        }
    }
}

TEST_CASE("checked top-k: no checks is the plain top k, all checks the exact top k") {
    const std::size_t h = 500, d = 64, k = 50;
    const RowMatrix G = planted_scaled(h, d, 4, 0.4f, 5);
    auto p = LowRankPredictor::from_gate(G.data(), h, d, PredictorOptions{4});
    std::vector<std::uint32_t> got(h), want(h);
    std::vector<float> s(h);
    for (unsigned t = 0; t < 5; ++t) {
        const std::vector<float> x = random_x(d, 50 + t);
        const std::vector<double> g = exact_gate(G, x);
        std::size_t calls = 0;
        auto exact = [&](const std::uint32_t* ids, std::size_t m, float* pre) {
            ++calls;
            for (std::size_t j = 0; j < m; ++j) {
                REQUIRE(ids[j] < h);
                if (j > 0) REQUIRE(ids[j - 1] < ids[j]);  // ascending, distinct
                pre[j] = static_cast<float>(g[ids[j]]);
            }
        };
        // No checks: the top k of scores(), and exact_gate is not called.
        p.scores(x.data(), sparseinfer::Activation::silu, s.data());
        sparseinfer::select_top_k(s.data(), h, k, want.data());
        REQUIRE(p.select_top_k_checked(x.data(), sparseinfer::Activation::silu, k, 0, exact, got.data()) == k);
        CHECK(std::equal(got.begin(), got.begin() + k, want.begin()));
        CHECK(calls == 0);
        // Every neuron checked: the exact top k.
        for (std::size_t i = 0; i < h; ++i) s[i] = std::fabs(sparseinfer::silu(static_cast<float>(g[i])));
        sparseinfer::select_top_k(s.data(), h, k, want.data());
        REQUIRE(p.select_top_k_checked(x.data(), sparseinfer::Activation::silu, k, h + 7, exact, got.data()) == k);
        CHECK(std::equal(got.begin(), got.begin() + k, want.begin()));
        CHECK(calls == 1);
    }
    CHECK(p.select_top_k_checked(
              random_x(d, 1).data(), sparseinfer::Activation::silu, 0, 10,
              [](const std::uint32_t*, std::size_t, float*) { FAIL("no checks for k = 0"); }, got.data()) == 0);
    auto none = [](const std::uint32_t*, std::size_t, float*) {};
    CHECK_THROWS_AS(p.select_top_k_checked(nullptr, sparseinfer::Activation::silu, 5, 5, none, got.data()),
                    sparseinfer::error);
    CHECK_THROWS_AS(p.select_top_k_checked(random_x(d, 1).data(), sparseinfer::Activation::silu, 5, 5, none, nullptr),
                    sparseinfer::error);
}

TEST_CASE("checked top-k: the checks are the neurons nearest an edge in units of sigma, by a plain sort") {
    const std::size_t h = 700, d = 48, k = 70;
    const RowMatrix G = planted_scaled(h, d, 4, 0.3f, 21);
    auto p = LowRankPredictor::from_gate(G.data(), h, d, PredictorOptions{4});
    std::vector<std::uint32_t> out(h);
    std::vector<float> s(h), pre(h);
    for (sparseinfer::Activation act : {sparseinfer::Activation::silu, sparseinfer::Activation::gelu}) {
        for (std::size_t checks : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{300}}) {
            const std::vector<float> x = random_x(d, 70 + static_cast<unsigned>(checks));
            // Reference: the cut is the k-th largest score; margins as documented.
            p.scores(x.data(), act, s.data());
            std::vector<float> sorted = s;
            std::sort(sorted.begin(), sorted.end(), std::greater<float>());
            const sparseinfer::detail::KeptRegion region = sparseinfer::detail::kept_region(act, sorted[k - 1]);
            p.predict(x.data(), pre.data());
            std::vector<std::uint32_t> idx(h);
            std::iota(idx.begin(), idx.end(), 0u);
            std::vector<float> margin(h);
            for (std::size_t i = 0; i < h; ++i) {
                const float sigma = p.error_scale()[i];
                const float inv = sigma > 0 ? 1.0f / sigma : std::numeric_limits<float>::infinity();
                margin[i] = region.distance(pre[i]) * inv;
            }
            std::stable_sort(idx.begin(), idx.end(), [&](std::uint32_t a, std::uint32_t b) {
                return margin[a] < margin[b];  // ties keep the lower index first
            });
            std::vector<std::uint32_t> want(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(checks));
            std::sort(want.begin(), want.end());
            std::vector<std::uint32_t> got;
            p.select_top_k_checked(
                x.data(), act, k, checks,
                [&](const std::uint32_t* ids, std::size_t m, float* z) {
                    got.assign(ids, ids + m);
                    for (std::size_t j = 0; j < m; ++j) z[j] = pre[ids[j]];  // the prediction itself
                },
                out.data());
            INFO(sparseinfer::to_string(act) << ", " << checks << " checks");
            CHECK(got == want);
        }
    }
}

TEST_CASE("checked top-k: checks placed by the error model beat as many random checks") {
    // Rank-6 predictor of a rank-6 gate with 15% noise and power-law row scales:
    // recall of the top 10% is held back by the noise alone.
    const std::size_t h = 2000, d = 128, k = 200, checks = 100;
    const RowMatrix G = planted_scaled(h, d, 6, 0.4f, 11);
    auto p = LowRankPredictor::from_gate(G.data(), h, d, PredictorOptions{6});
    std::mt19937 rng(3);
    std::vector<std::uint32_t> got(h), truth(h), random_ids(h);
    std::vector<float> s(h);
    double plain = 0, checked = 0, random_checked = 0;
    const int tokens = 20;
    for (int t = 0; t < tokens; ++t) {
        const std::vector<float> x = random_x(d, 300 + static_cast<unsigned>(t));
        const std::vector<double> g = exact_gate(G, x);
        for (std::size_t i = 0; i < h; ++i) s[i] = std::fabs(sparseinfer::silu(static_cast<float>(g[i])));
        sparseinfer::select_top_k(s.data(), h, k, truth.data());
        auto exact = [&](const std::uint32_t* ids, std::size_t m, float* pre) {
            for (std::size_t j = 0; j < m; ++j) pre[j] = static_cast<float>(g[ids[j]]);
        };
        p.select_top_k_checked(x.data(), sparseinfer::Activation::silu, k, 0, exact, got.data());
        plain += sparseinfer::recall(got.data(), k, truth.data(), k);
        p.select_top_k_checked(x.data(), sparseinfer::Activation::silu, k, checks, exact, got.data());
        checked += sparseinfer::recall(got.data(), k, truth.data(), k);
        // The same number of checks on random neurons.
        p.scores(x.data(), sparseinfer::Activation::silu, s.data());
        std::iota(random_ids.begin(), random_ids.end(), 0u);
        std::shuffle(random_ids.begin(), random_ids.end(), rng);
        for (std::size_t j = 0; j < checks; ++j)
            s[random_ids[j]] = std::fabs(sparseinfer::silu(static_cast<float>(g[random_ids[j]])));
        sparseinfer::select_top_k(s.data(), h, k, got.data());
        random_checked += sparseinfer::recall(got.data(), k, truth.data(), k);
    }
    plain /= tokens;
    checked /= tokens;
    random_checked /= tokens;
    INFO("plain " << plain << ", random checks " << random_checked << ", checked " << checked);
    CHECK(plain < 0.95);  // the noise leaves room to improve
    // Random checks fix about checks / h of the misses; the error model's go where the misses are:
    // they fix at least three times as many and at least a quarter of all misses.
    CHECK(checked - plain >= 3 * (random_checked - plain));
    CHECK((1 - checked) <= 0.75 * (1 - plain));
}

TEST_CASE("predictor construction and use reject bad arguments") {
    const RowMatrix G = planted(10, 8, 2, 0.1f, 1);
    CHECK_THROWS_AS(LowRankPredictor::from_gate(nullptr, 10, 8), sparseinfer::error);
    CHECK_THROWS_AS(LowRankPredictor::from_gate(G.data(), 0, 8), sparseinfer::error);
    CHECK_THROWS_AS(LowRankPredictor::from_gate(G.data(), 10, 8, PredictorOptions{0}), sparseinfer::error);
    RowMatrix bad = G;
    bad(3, 4) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(LowRankPredictor::from_gate(bad.data(), 10, 8), Catch::Contains("row 3, column 4"));
    auto p = LowRankPredictor::from_gate(G.data(), 10, 8, PredictorOptions{2});
    std::vector<float> out(10), x(8, 1.0f);
    CHECK_THROWS_AS(p.predict(nullptr, out.data()), sparseinfer::error);
    CHECK_THROWS_AS(p.predict(x.data(), nullptr), sparseinfer::error);
}

TEST_CASE("int8 input: predict, scores and checked top-k from a quantized x equal those from the float x") {
    const std::size_t h = 300, d = 96, k = 30;
    const RowMatrix G = planted_scaled(h, d, 6, 0.3f, 12);
    auto p = LowRankPredictor::from_gate(G.data(), h, d, PredictorOptions{6});
    const std::vector<float> x = random_x(d, 4);
    const sparseinfer::QuantizedActivations xq = sparseinfer::quantize_activations(x.data(), d);
    std::vector<float> out(h);
    // The float factors multiply float x: int8 input is refused, not silently dequantized.
    CHECK_THROWS_WITH(p.predict(xq, out.data()), Catch::Contains("quantize()"));
    p.quantize();
    std::vector<float> want(h), got(h, 7.0f);
    p.predict(x.data(), want.data());
    p.predict(xq, got.data());
    CHECK(got == want);
    p.scores(x.data(), sparseinfer::Activation::gelu, want.data());
    p.scores(xq, sparseinfer::Activation::gelu, got.data());
    CHECK(got == want);
    const std::vector<double> g = exact_gate(G, x);
    auto exact = [&](const std::uint32_t* ids, std::size_t m, float* pre) {
        for (std::size_t j = 0; j < m; ++j) pre[j] = static_cast<float>(g[ids[j]]);
    };
    std::vector<std::uint32_t> a(h), b(h);
    REQUIRE(p.select_top_k_checked(x.data(), sparseinfer::Activation::silu, k, 25, exact, a.data()) == k);
    REQUIRE(p.select_top_k_checked(xq, sparseinfer::Activation::silu, k, 25, exact, b.data()) == k);
    CHECK(std::equal(a.begin(), a.begin() + k, b.begin()));
    // Shape errors name the sizes.
    const std::vector<float> longer = random_x(d + 1, 2);
    CHECK_THROWS_WITH(p.predict(sparseinfer::quantize_activations(longer.data(), d + 1), got.data()),
                      Catch::Contains("size 97") && Catch::Contains("d_model is 96"));
    CHECK_THROWS_AS(p.scores(xq, sparseinfer::Activation::silu, nullptr), sparseinfer::error);
    CHECK_THROWS_AS(p.select_top_k_checked(xq, sparseinfer::Activation::silu, k, 5, exact, nullptr),
                    sparseinfer::error);
}

TEST_CASE("8-bit predictions are bit-identical for 1, 2 and 3 threads", "[threads]") {
    for (std::size_t h : {std::size_t(17), std::size_t(700), std::size_t(3100)}) {
        INFO("hidden " << h);
        const std::size_t d = 64, k = h / 10 + 1;
        const RowMatrix G = planted_scaled(h, d, 6, 0.3f, 5);
        auto p = LowRankPredictor::from_gate(G.data(), h, d, PredictorOptions{8});
        p.quantize();
        const std::vector<float> x = random_x(d, 9);
        const sparseinfer::QuantizedActivations xq = sparseinfer::quantize_activations(x.data(), d);
        std::vector<float> pre1(h), s1(h);
        std::vector<std::uint32_t> top1(h);
        auto exact = [&](const std::uint32_t* ids, std::size_t m, float* pre) {
            for (std::size_t j = 0; j < m; ++j) pre[j] = static_cast<float>(ids[j] % 7) - 3.0f;
        };
        p.predict(x.data(), pre1.data());
        p.scores(xq, sparseinfer::Activation::silu, s1.data());
        const std::size_t n1 = p.select_top_k_checked(xq, sparseinfer::Activation::silu, k, 5, exact, top1.data());
        for (std::size_t threads : {2, 3}) {
            INFO(threads << " threads");
            sparseinfer::ThreadPool pool(threads);
            LowRankPredictor q = p;  // shares the 8-bit factors
            q.set_executor(pool);
            std::vector<float> pre(h, 1.0f), s(h, 1.0f);
            std::vector<std::uint32_t> top(h);
            q.predict(x.data(), pre.data());
            CHECK(std::memcmp(pre.data(), pre1.data(), h * sizeof(float)) == 0);
            q.scores(xq, sparseinfer::Activation::silu, s.data());
            CHECK(std::memcmp(s.data(), s1.data(), h * sizeof(float)) == 0);
            CHECK(q.select_top_k_checked(xq, sparseinfer::Activation::silu, k, 5, exact, top.data()) == n1);
            CHECK(std::equal(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(n1), top1.begin()));
        }
    }
}

namespace {

/// The factors' bytes copied away from the predictor (Q as a weights file in
/// memory, P's panels in a buffer of their own), so that a predictor from
/// views of them shares no memory with the one they came from.
struct CopiedFactors {
    std::string q_file;
    std::vector<std::int8_t> panels;
    sparseinfer::PredictorFactors f;

    explicit CopiedFactors(const sparseinfer::PredictorFactors& from) {
        std::ostringstream os;
        from.q.save(os);
        q_file = os.str();
        panels.assign(from.p_panels, from.p_panels + from.p_panel_bytes);
        f = from;
        f.q = sparseinfer::QuantizedWeightsView<8>::from_bytes(q_file.data(), q_file.size());
        f.p_panels = panels.data();
    }
};

}  // namespace

TEST_CASE("from_views: the saved factors predict, score and select bit for bit as the predictor they came from") {
    // Sizes off the panels' grid: hidden not a multiple of 16, rank not one of 4.
    for (std::size_t h : {std::size_t(1), std::size_t(37), std::size_t(300)}) {
        const std::size_t d = 64, r = 5, k = (h + 9) / 10;
        INFO("hidden " << h);
        const RowMatrix G = planted_scaled(h, d, 6, 0.3f, 31);
        auto p = LowRankPredictor::from_gate(G.data(), h, d, PredictorOptions{r});
        CHECK_THROWS_WITH(p.factors(), Catch::Contains("quantize()"));
        p.quantize();
        const auto stored = p.factors();
        REQUIRE(stored.hidden() == h);
        REQUIRE(stored.q.rows() == std::min(r, h));
        CopiedFactors copy(stored);
        auto v = LowRankPredictor::from_views(copy.f);
        CHECK(v.quantized());
        CHECK(v.hidden() == h);
        CHECK(v.rank() == p.rank());
        CHECK(v.d_model() == d);
        CHECK(v.memory_bytes() == p.memory_bytes());
        CHECK(v.P().size() == 0);
        CHECK(v.error_scale() == p.error_scale());
        for (unsigned t = 0; t < 4; ++t) {
            const std::vector<float> x = random_x(d, 70 + t);
            const auto xq = sparseinfer::quantize_activations(x.data(), d);
            std::vector<float> a(h), b(h, 5.0f);
            p.predict(x.data(), a.data());
            v.predict(x.data(), b.data());
            CHECK(std::memcmp(a.data(), b.data(), h * sizeof(float)) == 0);
            p.scores(xq, sparseinfer::Activation::silu, a.data());
            v.scores(xq, sparseinfer::Activation::silu, b.data());
            CHECK(std::memcmp(a.data(), b.data(), h * sizeof(float)) == 0);
            const std::vector<double> g = exact_gate(G, x);
            std::vector<std::uint32_t> asked_p, asked_v;
            auto exact = [&](std::vector<std::uint32_t>& asked) {
                return [&g, &asked](const std::uint32_t* ids, std::size_t m, float* pre) {
                    for (std::size_t j = 0; j < m; ++j) {
                        asked.push_back(ids[j]);
                        pre[j] = static_cast<float>(g[ids[j]]);
                    }
                };
            };
            std::vector<std::uint32_t> sa(h), sb(h);
            const std::size_t checks = h / 4 + 1;
            const std::size_t na =
                p.select_top_k_checked(xq, sparseinfer::Activation::silu, k, checks, exact(asked_p), sa.data());
            const std::size_t nb =
                v.select_top_k_checked(xq, sparseinfer::Activation::silu, k, checks, exact(asked_v), sb.data());
            REQUIRE(na == nb);
            CHECK(std::equal(sa.begin(), sa.begin() + na, sb.begin()));
            CHECK(asked_p == asked_v);  // the same neurons checked: sigma travelled
        }
        // A copy of the view predictor reads the same bytes.
        LowRankPredictor w = v;
        const std::vector<float> x = random_x(d, 99);
        std::vector<float> a(h), b(h);
        v.predict(x.data(), a.data());
        w.predict(x.data(), b.data());
        CHECK(std::memcmp(a.data(), b.data(), h * sizeof(float)) == 0);
        // No float factors to refine or quantize again.
        CHECK_THROWS_WITH(w.refine(x.data(), 1, G.data()), Catch::Contains("from views"));
        CHECK_THROWS_WITH(w.quantize(), Catch::Contains("from views"));
    }
}

TEST_CASE("from_views rejects factors whose sizes or values are wrong, naming what was wrong") {
    const std::size_t h = 20, d = 32;
    const RowMatrix G = planted_scaled(h, d, 3, 0.3f, 8);
    auto p = LowRankPredictor::from_gate(G.data(), h, d, PredictorOptions{3});
    p.quantize();
    CopiedFactors good(p.factors());
    using sparseinfer::format_error;
    {
        auto f = good.f;
        f.error_scale.pop_back();
        CHECK_THROWS_AS(LowRankPredictor::from_views(f), format_error);
        CHECK_THROWS_WITH(LowRankPredictor::from_views(f), Catch::Contains("19 error scales for 20 neurons"));
    }
    {
        auto f = good.f;
        f.p_panel_bytes -= 1;
        CHECK_THROWS_WITH(LowRankPredictor::from_views(f), Catch::Contains("panels are") && Catch::Contains("take"));
    }
    {
        auto f = good.f;
        f.p_scales.assign(0, 0.0f);
        f.error_scale.assign(0, 0.0f);
        CHECK_THROWS_WITH(LowRankPredictor::from_views(f), Catch::Contains("hidden is 0"));
    }
    {
        auto f = good.f;
        f.p_scales[7] = std::numeric_limits<float>::quiet_NaN();
        CHECK_THROWS_WITH(LowRankPredictor::from_views(f), Catch::Contains("scale of row 7"));
        f = good.f;
        f.error_scale[4] = -1.0f;
        CHECK_THROWS_WITH(LowRankPredictor::from_views(f), Catch::Contains("error scale of neuron 4"));
    }
    {
        auto f = good.f;
        f.p_panels = nullptr;
        CHECK_THROWS_AS(LowRankPredictor::from_views(f), sparseinfer::error);
        f = good.f;
        f.q = {};
        CHECK_THROWS_WITH(LowRankPredictor::from_views(f), Catch::Contains("empty"));
    }
    // Panel bytes: code (i, j) of P sits at (i / 16) * 16 * D + (j / 4) * 64 + (i % 16) * 4 + j % 4, D = 4 here.
    const std::size_t D = 4;
    auto at = [&](std::size_t i, std::size_t j) { return (i / 16) * 16 * D + (j / 4) * 64 + (i % 16) * 4 + j % 4; };
    {
        CopiedFactors bad(p.factors());
        bad.panels[at(17, 2)] = -128;
        CHECK_THROWS_WITH(LowRankPredictor::from_views(bad.f), Catch::Contains("row 17, column 2 is -128"));
        // Verify::structure does not read the panels.
        CHECK_NOTHROW(LowRankPredictor::from_views(bad.f, sparseinfer::Verify::structure));
    }
    {
        CopiedFactors bad(p.factors());
        bad.panels[at(3, 3)] = 1;  // column 3 pads rank 3 to D = 4
        CHECK_THROWS_WITH(LowRankPredictor::from_views(bad.f), Catch::Contains("row 3, column 3) but not zero"));
        CopiedFactors bad_row(p.factors());
        bad_row.panels[at(25, 0)] = 1;  // row 25 pads 20 rows to 32
        CHECK_THROWS_WITH(LowRankPredictor::from_views(bad_row.f), Catch::Contains("row 25, column 0) but not zero"));
    }
    CHECK_NOTHROW(LowRankPredictor::from_views(good.f));
}
