// Numeric hardening across the library: float limits, degenerate rows, code
// ranges, int8 accumulation bounds and NaN activations, through the public API.
#include <sparseinfer/quantized_activations.hpp>
#include <sparseinfer/quantized_weights.hpp>
#include <sparseinfer/quantized_weights_view.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "file_test_util.hpp"

namespace si = sparseinfer;

namespace {

constexpr float flt_max = std::numeric_limits<float>::max();
const float qnan = std::numeric_limits<float>::quiet_NaN();
const float pinf = std::numeric_limits<float>::infinity();

bool all_finite(const std::vector<float>& v) {
    for (float x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

template <int Bits>
double sse(const si::QuantizedWeights<Bits>& q, const std::vector<float>& w) {
    const auto back = q.to_f32();
    double s = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
        const double e = static_cast<double>(back[i]) - w[i];
        s += e * e;
    }
    return s;
}

const si::QuantMethod methods[] = {si::QuantMethod::min_max, si::QuantMethod::optimized};

}  // namespace

TEST_CASE("a group whose range exceeds the float range is rejected with sparseinfer::error") {
    const std::vector<float> w = {1.0f, -3e38f, 3e38f, 0.0f};
    for (auto m : methods) {
        try {
            (void)si::QuantizedWeights<4>::from_f32(w.data(), 1, 4, {32, m});
            FAIL("quantized a range of 6e38");
        } catch (const si::format_error&) {
            FAIL("a quantizer error is not a format error");
        } catch (const si::error& e) {
            CHECK(std::string(e.what()).find("row 0") != std::string::npos);
            CHECK(std::string(e.what()).find("float range") != std::string::npos);
        }
    }
}

TEST_CASE("values near the float limits quantize to finite values within half a step") {
    for (auto m : methods) {
        INFO("method " << static_cast<int>(m));
        // A range of 3e38, just under FLT_MAX: min/max error is at most half a
        // step (range / 15 / 2) plus float rounding of the parameters.
        std::vector<float> w(64);
        std::mt19937 rng(1);
        std::uniform_real_distribution<float> u(-1.5e38f, 1.5e38f);
        for (auto& v : w) v = u(rng);
        w[0] = -1.5e38f;
        w[1] = 1.5e38f;
        const auto q = si::QuantizedWeights<4>::from_f32(w.data(), 1, w.size(), {32, m});
        const auto back = q.to_f32();
        REQUIRE(all_finite(back));
        if (m == si::QuantMethod::min_max)
            for (std::size_t i = 0; i < w.size(); ++i)
                CHECK(std::fabs(static_cast<double>(back[i]) - w[i]) <= 0.5 * 3e38 / 15 * 1.0001 + 1e33);
        // Groups reaching FLT_MAX from either side stay finite.
        std::vector<float> edge(64);
        for (std::size_t i = 0; i < 32; ++i) edge[i] = flt_max / 2 + (flt_max / 2) * (static_cast<float>(i) / 31);
        for (std::size_t i = 32; i < 64; ++i) edge[i] = -edge[i - 32];
        for (float v : si::QuantizedWeights<4>::from_f32(edge.data(), 1, 64, {32, m}).to_f32()) CHECK(std::isfinite(v));
        for (float v : si::QuantizedWeights<8>::from_f32(edge.data(), 1, 64, {32, m}).to_f32()) CHECK(std::isfinite(v));
        // Constant rows at +-FLT_MAX decode to themselves up to float rounding.
        for (float c : {flt_max, -flt_max}) {
            std::vector<float> row(40, c);
            const auto qc = si::QuantizedWeights<8>::from_f32(row.data(), 1, row.size(), {32, m});
            for (float v : qc.to_f32()) {
                REQUIRE(std::isfinite(v));
                CHECK(std::fabs(static_cast<double>(v) - c) <= 1e-6 * flt_max);
            }
        }
    }
}

TEST_CASE("denormal and tiny values quantize without overflow or UB") {
    const float tiny = std::numeric_limits<float>::denorm_min();
    for (auto m : methods) {
        std::vector<float> w = {tiny, -tiny, 0.0f, 1e-40f, -1e-40f, 5e-39f, 0.0f, tiny};
        const auto q = si::QuantizedWeights<4>::from_f32(w.data(), 1, w.size(), {32, m});
        const auto back = q.to_f32();
        REQUIRE(all_finite(back));
        for (std::size_t i = 0; i < w.size(); ++i) CHECK(std::fabs(back[i] - w[i]) <= 1e-38f);
    }
}

TEST_CASE("rows with a single non-zero decode it closely and the zeros of other groups exactly") {
    const float values[] = {1.0f, -1.0f, 1e-30f, -7.5e-20f, 3e38f, -3e38f};
    for (auto m : methods)
        for (float v : values)
            for (std::size_t pos : {0, 31, 33, 99}) {
                INFO("method " << static_cast<int>(m) << ", value " << v << " at " << pos);
                std::vector<float> w(100, 0.0f);
                w[pos] = v;
                auto check = [&](const std::vector<float>& back, double step) {
                    REQUIRE(all_finite(back));
                    for (std::size_t i = 0; i < w.size(); ++i) {
                        if (i / 32 != pos / 32)
                            CHECK(back[i] == 0.0f);  // all-zero groups: zero scale and min
                        else
                            CHECK(std::fabs(static_cast<double>(back[i]) - w[i]) <= step);
                    }
                };
                // The group holds 0 and v: both are grid points of min/max, so only
                // rounding of the 8-bit parameter codes and float units remains.
                const double tol = 1e-5 * std::fabs(v);
                check(si::QuantizedWeights<2>::from_f32(w.data(), 1, 100, {32, m}).to_f32(), tol);
                check(si::QuantizedWeights<3>::from_f32(w.data(), 1, 100, {32, m}).to_f32(), tol);
                check(si::QuantizedWeights<4>::from_f32(w.data(), 1, 100, {32, m}).to_f32(), tol);
                check(si::QuantizedWeights<8>::from_f32(w.data(), 1, 100, {32, m}).to_f32(), tol);
            }
}

TEST_CASE("group parameters beyond the row's code range are clamped, never wrapped") {
    // Group 0 spans 1e30 with a min of 1e-44; group 1 is tiny; group 2 is a
    // large negative constant. The per-row units follow the largest group, so a
    // fitted scale or min of another group can lie far outside the 8-bit code
    // range: it must clamp, not wrap or overflow the conversion.
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> w(96);
    for (std::size_t i = 0; i < 32; ++i) w[i] = 1e30f * u(rng);
    w[0] = 1e-44f;
    w[1] = 1e30f;
    for (std::size_t i = 32; i < 64; ++i) w[i] = 1e-30f * (u(rng) - 0.5f);
    for (std::size_t i = 64; i < 96; ++i) w[i] = -5e29f;
    for (auto m : methods) {
        INFO("method " << static_cast<int>(m));
        const auto q = si::QuantizedWeights<4>::from_f32(w.data(), 1, w.size(), {32, m});
        const std::uint8_t* row = q.row_data(0);
        for (std::size_t g = 0; g < 3; ++g)
            CHECK(row[q.layout().mins_offset() + g] != 0x80);  // min codes in [-127, 127]
        const auto back = q.to_f32();
        REQUIRE(all_finite(back));
        // The tiny group collapses to about zero: its error is its own size.
        for (std::size_t i = 32; i < 64; ++i) CHECK(std::fabs(back[i]) <= 1e-29f);
        // The constant group is on the min grid: -5e29 = unit * code, unit = 5e29 / 127.
        for (std::size_t i = 64; i < 96; ++i) CHECK(std::fabs(back[i] + 5e29f) <= 1e-5f * 5e29f);
        // The large group: min/max error at most half a step (1e30 / 15 / 2) plus unit rounding.
        if (m == si::QuantMethod::min_max)
            for (std::size_t i = 0; i < 32; ++i) CHECK(std::fabs(back[i] - w[i]) <= 1e30f / 30 * 1.01f);
    }
    // Group 0 alone with its min at 1e-38: the min unit is 1e-38 / 127, a
    // denormal, while the least-squares min of the group is of the order of
    // 1e28: a code ratio near 1e68, far outside int.
    std::vector<float> w0(w.begin(), w.begin() + 32);
    w0[0] = 1e-38f;
    const auto q0 = si::QuantizedWeights<4>::from_f32(w0.data(), 1, 32, {32, si::QuantMethod::optimized});
    REQUIRE(all_finite(q0.to_f32()));
    CHECK(sse(q0, w0) <= sse(si::QuantizedWeights<4>::from_f32(w0.data(), 1, 32, {32, si::QuantMethod::min_max}), w0));
    // The optimized fit is never worse than min/max per row.
    const auto mm = si::QuantizedWeights<4>::from_f32(w.data(), 1, w.size(), {32, si::QuantMethod::min_max});
    const auto opt = si::QuantizedWeights<4>::from_f32(w.data(), 1, w.size(), {32, si::QuantMethod::optimized});
    CHECK(sse(opt, w) <= sse(mm, w));
}

TEST_CASE("finite units whose products overflow give Inf or NaN, never UB") {
    // A hand-made file: 8-bit, scale unit FLT_MAX, so scale = FLT_MAX * 255 = Inf.
    std::vector<float> w(32, 1.0f);
    w[0] = 0.0f;
    const auto q = si::QuantizedWeights<8>::from_f32(w.data(), 1, 32);
    std::string f = file_test::save_to_string(q);
    const float big = flt_max;
    std::uint32_t u;
    std::memcpy(&u, &big, 4);
    for (int i = 0; i < 4; ++i) f[64 + static_cast<std::size_t>(i)] = static_cast<char>(u >> (8 * i));
    file_test::reseal_weights_file(f);
    const auto v = si::QuantizedWeightsView<8>::from_bytes(f.data(), f.size());  // finite units: accepted
    std::vector<float> x(32, 1.0f), out(32);
    v.dequantize_row(0, out.data());
    CHECK(std::isnan(out[0]));  // Inf * code 0
    CHECK(std::isinf(out[1]));
    CHECK_FALSE(std::isfinite(v.dot_row(0, x.data())));
    const auto xq = si::quantize_activations(x.data(), x.size());
    CHECK_FALSE(std::isfinite(v.dot_row(0, xq)));
}

TEST_CASE("int8 dot products whose row sum exceeds int32 stay exact per block") {
    // Per block of 32, |sum q * a| <= 32 * 255 * 127 = 1,036,320 < 2^31; the
    // kernels convert each block's sum to float, so no row length can overflow.
    // 131072 columns of code 255 times activation 127 sum to 4.2e9 > 2^31.
    const std::size_t cols = 131072;
    std::vector<float> w(cols, 1.0f);
    for (std::size_t i = 0; i < cols; i += 64) w[i] = 0.0f;  // codes 0 and 255; block 1 of each group is all 255
    const auto q = si::QuantizedWeights<8>::from_f32(w.data(), 1, cols, {64, si::QuantMethod::min_max});
    const auto back = q.to_f32();
    for (float sign : {1.0f, -1.0f}) {
        std::vector<float> x(cols, sign);
        const auto xq = si::quantize_activations(x.data(), cols);
        REQUIRE(xq.values[5] == static_cast<std::int8_t>(127 * sign));
        // Reference in double from the decoded weights and activations.
        double ref = 0;
        for (std::size_t i = 0; i < cols; ++i)
            ref += static_cast<double>(back[i]) * (static_cast<double>(xq.scales[i / 32]) * xq.values[i]);
        const float got = q.dot_row(0, xq);
        CHECK(std::fabs(got - ref) <= 5e-4 * std::fabs(ref));
        float y = 0;
        const std::uint32_t r0 = 0;
        q.gemv_rows(&r0, 1, xq, &y);
        CHECK(std::fabs(y - ref) <= 5e-4 * std::fabs(ref));
        CHECK(std::fabs(q.dot_row(0, x.data()) - ref) <= 5e-4 * std::fabs(ref));
    }
    // Extreme mixed signs: +127 against code 255 and -127 against code 0.
    std::vector<float> x(cols);
    for (std::size_t i = 0; i < cols; ++i) x[i] = w[i] > 0 ? 1.0f : -1.0f;
    const auto xq = si::quantize_activations(x.data(), cols);
    double ref = 0;
    for (std::size_t i = 0; i < cols; ++i)
        ref += static_cast<double>(back[i]) * (static_cast<double>(xq.scales[i / 32]) * xq.values[i]);
    CHECK(std::fabs(q.dot_row(0, xq) - ref) <= 5e-4 * std::fabs(ref));
}

TEST_CASE("NaN activations propagate on the float path") {
    std::vector<float> w(3 * 70);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 7) - 3.0f;
    const auto q = si::QuantizedWeights<4>::from_f32(w.data(), 3, 70);
    std::vector<float> x(70, 0.25f);
    x[40] = qnan;
    std::vector<float> y(3);
    q.gemv(x.data(), y.data());
    for (float v : y) CHECK(std::isnan(v));
    x[40] = pinf;
    q.gemv(x.data(), y.data());
    for (float v : y) CHECK_FALSE(std::isfinite(v));
    // A NaN coefficient spreads over the whole output row of axpy.
    std::vector<float> out(70, 0.0f);
    const std::uint32_t rows[] = {1};
    const float a = qnan;
    q.axpy_rows(rows, 1, &a, out.data());
    for (float v : out) CHECK(std::isnan(v));
}

TEST_CASE("quantize_activations: a block with NaN or Inf gets NaN scale and sum, others are unaffected") {
    std::vector<float> x(70, 0.5f);
    for (float bad : {qnan, pinf, -pinf}) {
        x[40] = bad;  // block 1
        const auto xq = si::quantize_activations(x.data(), x.size());
        REQUIRE(xq.blocks() == 3);
        CHECK(std::isnan(xq.scales[1]));
        CHECK(std::isnan(xq.sums[1]));
        for (std::size_t j = 32; j < 64; ++j) CHECK(xq.values[j] == 0);
        CHECK(xq.scales[0] == 0.5f / 127.0f);
        CHECK(xq.values[0] == 127);
        CHECK(std::isfinite(xq.sums[2]));
        std::vector<float> w(2 * 70, 1.0f);
        const auto q = si::QuantizedWeights<4>::from_f32(w.data(), 2, 70);
        std::vector<float> y(2);
        q.gemv(xq, y.data());
        CHECK(std::isnan(y[0]));
        CHECK(std::isnan(y[1]));
    }
}

TEST_CASE("quantize_activations handles denormal and float-limit blocks") {
    // 127 / amax overflows float for a denormal block; values keep their signs.
    const float d = std::numeric_limits<float>::denorm_min();
    std::vector<float> x = {d, -d, 0.0f, 3 * d, -3 * d};
    const auto xq = si::quantize_activations(x.data(), x.size());
    CHECK(xq.values[0] == 42);  // d / (3d) * 127 = 42.3
    CHECK(xq.values[1] == -42);
    CHECK(xq.values[2] == 0);
    CHECK(xq.values[3] == 127);
    CHECK(xq.values[4] == -127);
    CHECK(std::isfinite(xq.scales[0]));
    std::vector<float> big = {flt_max, -flt_max, flt_max / 4, 1.0f};
    const auto bq = si::quantize_activations(big.data(), big.size());
    CHECK(bq.values[0] == 127);
    CHECK(bq.values[1] == -127);
    CHECK(bq.values[2] == 32);  // 31.75
    CHECK(bq.values[3] == 0);
    CHECK(bq.scales[0] == flt_max / 127.0f);
}
