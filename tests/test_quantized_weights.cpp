// Tests of <sparseinfer/quantized_weights.hpp>.
#include <sparseinfer/quantized_weights.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "catch.hpp"

TEST_CASE("4-bit round trip of a small matrix stays within half a quantization step") {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    std::vector<float> w(7 * 100);
    for (auto& v : w) v = nd(rng);
    auto q = sparseinfer::QuantizedWeights<4>::from_f32(w.data(), 7, 100);
    auto back = q.to_f32();
    REQUIRE(back.size() == w.size());
    for (std::size_t i = 0; i < w.size(); ++i) CHECK(std::fabs(back[i] - w[i]) < 1.0f);
}
