// Tests of <sparseinfer/predictor_factors.hpp>: the stored form of a quantized
// predictor's factors, decoded here by the documented layout and compared with
// the float factors they were rounded from (from_views: test_predictor.cpp,
// in model files: test_model_file.cpp).
#include <sparseinfer/predictor.hpp>
#include <sparseinfer/predictor_factors.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "catch.hpp"

namespace si = sparseinfer;

TEST_CASE("an empty PredictorFactors predicts no neurons") {
    const si::PredictorFactors f;
    CHECK(f.hidden() == 0);
    CHECK(f.p_panels == nullptr);
    CHECK(f.q.rows() == 0);
}

TEST_CASE("factors(): P's panels follow the documented layout and decode to P within half a step") {
    for (std::size_t h : {std::size_t(1), std::size_t(16), std::size_t(33)}) {
        for (std::size_t r : {std::size_t(1), std::size_t(4), std::size_t(7)}) {
            INFO("hidden " << h << ", rank " << r);
            const std::size_t d = 40;
            std::mt19937 rng(static_cast<unsigned>(h * 10 + r));
            std::normal_distribution<float> nd;
            std::vector<float> gate(h * d);
            for (auto& v : gate) v = nd(rng);
            auto p = si::LowRankPredictor::from_gate(gate.data(), h, d, {r});
            p.quantize();
            const si::PredictorFactors f = p.factors();
            const std::size_t rank = p.rank(), D = (rank + 3) / 4 * 4, panels = (h + 15) / 16;
            REQUIRE(f.hidden() == h);
            CHECK(f.q.rows() == rank);
            CHECK(f.q.cols() == d);
            REQUIRE(f.p_panel_bytes == panels * 16 * D);
            CHECK(f.error_scale == p.error_scale());
            for (std::size_t i = 0; i < panels * 16; ++i) {
                float amax = 0;
                for (std::size_t j = 0; j < rank && i < h; ++j) amax = std::max(amax, std::fabs(p.P()(i, j)));
                if (i < h) CHECK(f.p_scales[i] == amax / 127.0f);
                for (std::size_t j = 0; j < D; ++j) {
                    const std::int8_t code = f.p_panels[(i / 16) * 16 * D + (j / 4) * 64 + (i % 16) * 4 + j % 4];
                    if (i >= h || j >= rank) {
                        CHECK(code == 0);  // padding
                        continue;
                    }
                    CHECK(code != -128);
                    CHECK(std::fabs(f.p_scales[i] * code - p.P()(i, j)) <= 0.5f * f.p_scales[i] * 1.0001f);
                }
            }
        }
    }
}
