// Tests of <sparseinfer/predictor.hpp> (selection: test_selection.cpp).
#include <sparseinfer/predictor.hpp>
#include <sparseinfer/selection.hpp>

#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
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
