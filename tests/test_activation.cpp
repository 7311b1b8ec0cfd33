// Tests of <sparseinfer/activation.hpp>: the activation functions and the
// vectorizable activation_scores(), both against double-precision formulas.
#include <sparseinfer/activation.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "catch.hpp"

using sparseinfer::Activation;

namespace {

/// |act(x)| in double, from the textbook formulas (GELU as x sigmoid(2u), which
/// has no cancellation in the negative tail).
double exact_magnitude(Activation a, double x) {
    switch (a) {
    case Activation::silu: return std::fabs(x / (1.0 + std::exp(-x)));
    case Activation::gelu: {
        if (x > 10) return x;  // the documented limits
        if (x < -10) return 0;
        const double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
        return std::fabs(x / (1.0 + std::exp(-2.0 * u)));
    }
    case Activation::relu: return x > 0 ? x : 0;
    }
    return 0;
}

/// The documented bound of activation_scores: relative error where the
/// result exceeds 1e-30, else at most 1e-30 absolute.
double allowed_error(Activation a, double exact) {
    const double rel = a == Activation::silu ? 3e-7 : a == Activation::gelu ? 2e-5 : 0.0;
    return exact > 1e-30 ? rel * exact : 1e-30;
}

const Activation all_activations[] = {Activation::silu, Activation::gelu, Activation::relu};

}  // namespace

TEST_CASE("activation_scores: empty input writes nothing") {
    float out = 123.0f;
    for (Activation a : all_activations) sparseinfer::activation_scores(a, nullptr, 0, &out);
    CHECK(out == 123.0f);
}

TEST_CASE("activation_scores: NaN stays NaN, infinities and huge values reach the limits") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const float max = std::numeric_limits<float>::max(), denorm = std::numeric_limits<float>::denorm_min();
    const std::vector<float> z{nan,    -nan,  inf,    -inf,  max,    -max, 1e30f, -1e30f, 88.0f,
                               -88.0f, 87.5f, -87.5f, 10.5f, -10.5f, 0.0f, -0.0f, denorm, -denorm};
    for (Activation a : all_activations) {
        INFO(sparseinfer::to_string(a));
        std::vector<float> out(z.size());
        sparseinfer::activation_scores(a, z.data(), z.size(), out.data());
        CHECK(std::isnan(out[0]));
        CHECK(std::isnan(out[1]));
        CHECK(out[2] == inf);  // every activation is x for large x
        CHECK(out[3] == 0.0f);
        CHECK(out[4] == max);
        CHECK(out[5] == 0.0f);
        CHECK(out[6] == 1e30f);
        CHECK(out[7] == 0.0f);
        for (std::size_t i = 8; i < z.size(); ++i) {
            INFO("z = " << z[i]);
            const double exact = exact_magnitude(a, z[i]);
            CHECK(std::fabs(out[i] - exact) <= allowed_error(a, exact));
            CHECK(out[i] >= 0.0f);
        }
    }
}

TEST_CASE("activation_scores: within the documented error of the exact value on a fine grid") {
    std::vector<float> z;
    for (double x = -120.0; x <= 120.0; x += 0.00037) z.push_back(static_cast<float>(x));
    for (Activation a : all_activations) {
        INFO(sparseinfer::to_string(a));
        std::vector<float> out(z.size());
        sparseinfer::activation_scores(a, z.data(), z.size(), out.data());
        std::size_t bad = 0;
        for (std::size_t i = 0; i < z.size(); ++i)
            if (!(std::fabs(out[i] - exact_magnitude(a, z[i])) <= allowed_error(a, exact_magnitude(a, z[i])))) ++bad;
        CHECK(bad == 0);
    }
}

TEST_CASE("activation_scores: in place, at odd sizes and unaligned, as |activate()| within the bound") {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 4.0f);
    for (std::size_t n : {1u, 3u, 17u, 31u, 1001u}) {
        std::vector<float> buf(n + 1);
        for (auto& v : buf) v = nd(rng);
        float* z = buf.data() + 1;  // unaligned for any vector width
        const std::vector<float> before(z, z + n);
        for (Activation a : all_activations) {
            std::vector<float> zz = before;
            sparseinfer::activation_scores(a, zz.data(), n, zz.data());
            for (std::size_t i = 0; i < n; ++i) {
                const double ref = std::fabs(static_cast<double>(sparseinfer::activate(a, before[i])));
                const double exact = exact_magnitude(a, before[i]);
                // both are within their error of the exact value, so of each other
                CHECK(std::fabs(zz[i] - exact) <= allowed_error(a, exact));
                CHECK(std::fabs(zz[i] - ref) <= allowed_error(a, exact) + 1e-6 * exact + 1e-30);
            }
        }
    }
}

TEST_CASE("activate() is within the same bounds of the exact value, with no cancellation in the tails") {
    for (Activation a : all_activations) {
        INFO(sparseinfer::to_string(a));
        std::size_t bad = 0;
        for (double x = -120.0; x <= 120.0; x += 0.0011) {
            const float xf = static_cast<float>(x);
            const double exact = exact_magnitude(a, xf);
            const double got = std::fabs(static_cast<double>(sparseinfer::activate(a, xf)));
            if (!(std::fabs(got - exact) <= allowed_error(a, exact))) ++bad;
        }
        CHECK(bad == 0);
        CHECK(sparseinfer::activate(a, std::numeric_limits<float>::infinity()) ==
              std::numeric_limits<float>::infinity());
        CHECK(sparseinfer::activate(a, -1e30f) == 0.0f);
    }
}
