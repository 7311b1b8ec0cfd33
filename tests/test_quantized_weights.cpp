// Tests of <sparseinfer/quantized_weights.hpp>: the row format, both quantizers,
// the scalar kernels and every error of the checked API.
//
// The row layout is re-implemented here from its documentation (value by value,
// not block by block) so the tests pin the format instead of echoing the code.
#include <sparseinfer/detail/quant_sweep.hpp>
#include <sparseinfer/quantized_weights.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"

using sparseinfer::QuantizedWeights;
using sparseinfer::QuantMethod;
using sparseinfer::QuantOptions;

namespace {

std::vector<float> normal_matrix(std::size_t n, unsigned seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

float read_f32(const std::uint8_t* p) {
    float f;
    std::memcpy(&f, p, 4);  // the test machine is little-endian, like the format
    return f;
}

/// Code of value j of a 32-value block, read from the documented packing.
int documented_code(int bits, const std::uint8_t* block, int j) {
    switch (bits) {
    case 8: return block[j];
    case 4: return j < 16 ? block[j] & 15 : block[j - 16] >> 4;
    case 2: return (block[j % 8] >> (2 * (j / 8))) & 3;
    case 3: {
        int low = (block[j % 8] >> (2 * (j / 8))) & 3;
        int high = (block[8 + j / 8] >> (j % 8)) & 1;
        return low | high << 2;
    }
    default: return -1;
    }
}

/// A row's decoded parameters and codes, read through the documented layout.
struct DecodedRow {
    std::vector<float> d, m;
    std::vector<int> codes;  // padded_cols entries
};

template <int Bits>
DecodedRow decode_documented(const QuantizedWeights<Bits>& w, std::size_t row) {
    const std::uint8_t* p = w.row_data(row);
    const std::size_t groups = (w.cols() + w.group_size() - 1) / w.group_size();
    const std::size_t blocks = groups * (w.group_size() / 32);
    const std::size_t block_bytes = 32 * Bits / 8;
    REQUIRE(w.row_bytes() == 8 + 2 * groups + blocks * block_bytes);
    DecodedRow r;
    const float d_unit = read_f32(p), m_unit = read_f32(p + 4);
    for (std::size_t g = 0; g < groups; ++g) {
        r.d.push_back(d_unit * static_cast<float>(p[8 + g]));
        r.m.push_back(m_unit * static_cast<float>(static_cast<std::int8_t>(p[8 + groups + g])));
    }
    const std::uint8_t* codes = p + 8 + 2 * groups;
    for (std::size_t b = 0; b < blocks; ++b)
        for (int j = 0; j < 32; ++j) r.codes.push_back(documented_code(Bits, codes + b * block_bytes, j));
    return r;
}

double group_sse(const float* x, std::size_t n, const float* decoded) {
    double e = 0;
    for (std::size_t i = 0; i < n; ++i) e += (static_cast<double>(decoded[i]) - x[i]) * (decoded[i] - x[i]);
    return e;
}

template <int Bits>
void check_round_trip(std::size_t rows, std::size_t cols, std::size_t gs, QuantMethod method) {
    INFO("bits " << Bits << ", " << rows << " x " << cols << ", group " << gs << ", method "
                 << (method == QuantMethod::min_max ? "min_max" : "optimized"));
    const auto x = normal_matrix(rows * cols, static_cast<unsigned>(rows * 131 + cols + gs));
    const auto w = QuantizedWeights<Bits>::from_f32(x.data(), rows, cols, {gs, method});
    REQUIRE(w.rows() == rows);
    REQUIRE(w.cols() == cols);
    REQUIRE(w.group_size() == gs);
    const auto all = w.to_f32();
    REQUIRE(all.size() == rows * cols);
    const int qmax = (1 << Bits) - 1;
    std::vector<float> one(cols);
    for (std::size_t r = 0; r < rows; ++r) {
        w.dequantize_row(r, one.data());
        REQUIRE(std::equal(one.begin(), one.end(), all.begin() + static_cast<std::ptrdiff_t>(r * cols)));
        const DecodedRow dec = decode_documented(w, r);
        for (std::size_t c = 0; c < dec.codes.size(); ++c) {
            const std::size_t g = c / gs;
            if (c >= cols) {
                REQUIRE(dec.codes[c] == 0);  // padding codes are zero
                continue;
            }
            // Every value decodes as d * q + m with the documented parameters, to
            // float rounding (a SIMD path may fuse the multiply-add: one rounding, not two)...
            const double dq = static_cast<double>(dec.d[g]) * dec.codes[c];
            REQUIRE(std::fabs(one[c] - (dq + dec.m[g])) <= 0x1p-23 * (std::fabs(dq) + std::fabs(dec.m[g])));
            // ...and q is the nearest code for x under those parameters.
            const float v = x[r * cols + c];
            const double ideal = dec.d[g] > 0 ? (v - dec.m[g]) / static_cast<double>(dec.d[g]) : 0.0;
            const double expected = std::min<double>(qmax, std::max(0.0, std::floor(ideal + 0.5)));
            if (std::fabs(ideal - std::floor(ideal) - 0.5) > 1e-4)  // away from exact ties
                REQUIRE(dec.codes[c] == static_cast<int>(expected));
        }
    }
}

}  // namespace

TEST_CASE("QuantizedWeights refuses bad arguments with messages that name them") {
    const std::vector<float> x(64, 1.0f);
    using W = QuantizedWeights<4>;
    auto message = [](auto&& f) {
        try {
            f();
        } catch (const sparseinfer::error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_THAT(message([&] { W::from_f32(nullptr, 1, 1); }), Catch::Matchers::Contains("'data' is a null pointer"));
    CHECK_THAT(message([&] { W::from_f32(x.data(), 0, 8); }), Catch::Matchers::Contains("rows is 0"));
    CHECK_THAT(message([&] { W::from_f32(x.data(), 8, 0); }), Catch::Matchers::Contains("cols is 0"));
    CHECK_THAT(message([&] { W::from_f32(x.data(), 1, 64, {0}); }), Catch::Matchers::Contains("group_size is 0"));
    CHECK_THAT(message([&] { W::from_f32(x.data(), 1, 64, {48}); }), Catch::Matchers::Contains("group_size is 48"));
    CHECK_THAT(message([&] { W::from_f32(x.data(), 1, 64, {16}); }), Catch::Matchers::Contains("multiple of 32"));
    const std::size_t huge = std::size_t(1) << 40;
    CHECK_THAT(message([&] { W::from_f32(x.data(), std::size_t(1) << 31, huge); }),
               Catch::Matchers::Contains("overflows"));
    CHECK_THAT(message([&] { W::from_f32(x.data(), std::size_t(1) << 33, 1); }), Catch::Matchers::Contains("32-bit"));

    std::vector<float> bad(3 * 40, 0.5f);
    bad[2 * 40 + 17] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THAT(message([&] { W::from_f32(bad.data(), 3, 40); }), Catch::Matchers::Contains("row 2, column 17"));
    bad[2 * 40 + 17] = 0.0f;
    bad[1 * 40 + 3] = -std::numeric_limits<float>::infinity();
    CHECK_THAT(message([&] { W::from_f32(bad.data(), 3, 40); }), Catch::Matchers::Contains("row 1, column 3"));

    const auto w = W::from_f32(x.data(), 2, 32);
    std::vector<float> out(32), y(2);
    std::uint32_t rows[] = {0, 2};
    CHECK_THAT(message([&] { w.dot_row(2, x.data()); }), Catch::Matchers::Contains("row index 2 is out of range"));
    CHECK_THAT(message([&] { w.dequantize_row(5, out.data()); }), Catch::Matchers::Contains("out of range"));
    CHECK_THAT(message([&] { w.row_data(2); }), Catch::Matchers::Contains("out of range"));
    CHECK_THAT(message([&] { w.gemv_rows(rows, 2, x.data(), y.data()); }),
               Catch::Matchers::Contains("rows[1] = 2 is out of range"));
    CHECK_THAT(message([&] { w.axpy_rows(rows, 2, x.data(), out.data()); }), Catch::Matchers::Contains("rows[1]"));
    CHECK_THAT(message([&] { w.dequantize_rows(rows, 2, out.data()); }), Catch::Matchers::Contains("rows[1]"));
    CHECK_THAT(message([&] { w.dot_row(0, static_cast<const float*>(nullptr)); }),
               Catch::Matchers::Contains("'x' is a null pointer"));
    CHECK_THAT(message([&] { w.gemv(x.data(), nullptr); }), Catch::Matchers::Contains("'y' is a null pointer"));
    CHECK_THAT(message([&] { w.gemv_rows(nullptr, 1, x.data(), y.data()); }),
               Catch::Matchers::Contains("'rows' is a null pointer"));
    // Every library error is a sparseinfer::error, itself a std::runtime_error.
    CHECK_THROWS_AS(W::from_f32(x.data(), 0, 1), std::runtime_error);
}

TEST_CASE("Empty row lists are a no-op") {
    const auto x = normal_matrix(3 * 40, 1);
    const auto w = QuantizedWeights<4>::from_f32(x.data(), 3, 40);
    std::vector<float> y(40, 7.0f);
    w.axpy_rows(nullptr, 0, nullptr, y.data());
    w.gemv_rows(nullptr, 0, x.data(), y.data());
    CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 7.0f; }));
}

TEST_CASE("Round trips follow the documented layout for every width, group size and shape") {
    const std::size_t shapes[][2] = {{1, 1}, {1, 33}, {7, 100}, {3, 4096}, {2, 200}};
    for (auto method : {QuantMethod::min_max, QuantMethod::optimized})
        for (std::size_t gs : {32, 64, 128})
            for (const auto& s : shapes) {
                check_round_trip<2>(s[0], s[1], gs, method);
                check_round_trip<3>(s[0], s[1], gs, method);
                check_round_trip<4>(s[0], s[1], gs, method);
                check_round_trip<8>(s[0], s[1], gs, method);
            }
}

TEST_CASE("A golden 4-bit block pins the byte layout") {
    // One row of 32 values 0..31, min_max: min 0, max 31, so every group parameter
    // is exact (scale code 255 under a unit of (31/15)/255, min 0) and q_j = round(j * 15 / 31).
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[static_cast<std::size_t>(j)] = static_cast<float>(j);
    const auto w = QuantizedWeights<4>::from_f32(x.data(), 1, 32, {32, QuantMethod::min_max});
    const std::uint8_t* p = w.row_data(0);
    REQUIRE(w.row_bytes() == 8 + 2 + 16);
    CHECK(read_f32(p) == static_cast<float>(31.0 / 15.0 / 255.0));
    CHECK(read_f32(p + 4) == 0.0f);
    CHECK(p[8] == 255);
    CHECK(p[9] == 0);
    const int expected_q[32] = {0, 0, 1, 1, 2,  2,  3,  3,  4,  4,  5,  5,  6,  6,  7,  7,
                                8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15};
    for (int j = 0; j < 16; ++j) CHECK(p[10 + j] == (expected_q[j] | expected_q[j + 16] << 4));
}

TEST_CASE("Golden 2-, 3- and 8-bit blocks pin the bit planes") {
    // Values chosen as exact codes: x_j = q_j with min 0 and max qmax present.
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[static_cast<std::size_t>(j)] = static_cast<float>((j * 5 + 3) % 8);
    x[0] = 0.0f;
    x[1] = 7.0f;
    const auto w3 = QuantizedWeights<3>::from_f32(x.data(), 1, 32, {32, QuantMethod::min_max});
    const std::uint8_t* p = w3.row_data(0) + 10;
    for (int j = 0; j < 8; ++j) {
        int byte = 0;
        for (int k = 0; k < 4; ++k) byte |= (static_cast<int>(x[static_cast<std::size_t>(j + 8 * k)]) & 3) << (2 * k);
        CHECK(p[j] == byte);
    }
    for (int b = 0; b < 4; ++b) {
        int byte = 0;
        for (int k = 0; k < 8; ++k) byte |= ((static_cast<int>(x[static_cast<std::size_t>(8 * b + k)]) >> 2) & 1) << k;
        CHECK(p[8 + b] == byte);
    }
    for (auto& v : x) v = static_cast<float>(static_cast<int>(v) & 3);
    x[0] = 0.0f;
    x[1] = 3.0f;
    const auto w2 = QuantizedWeights<2>::from_f32(x.data(), 1, 32, {32, QuantMethod::min_max});
    p = w2.row_data(0) + 10;
    for (int j = 0; j < 8; ++j) {
        int byte = 0;
        for (int k = 0; k < 4; ++k) byte |= static_cast<int>(x[static_cast<std::size_t>(j + 8 * k)]) << (2 * k);
        CHECK(p[j] == byte);
    }
    for (int j = 0; j < 32; ++j) x[static_cast<std::size_t>(j)] = static_cast<float>(j * 8);
    x[31] = 255.0f;
    const auto w8 = QuantizedWeights<8>::from_f32(x.data(), 1, 32, {32, QuantMethod::min_max});
    p = w8.row_data(0) + 10;
    for (int j = 0; j < 32; ++j) CHECK(p[j] == static_cast<int>(x[static_cast<std::size_t>(j)]));
}

TEST_CASE("min_max follows the classic formula up to the 8-bit coding of its parameters") {
    const std::size_t rows = 5, cols = 160, gs = 32;
    const auto x = normal_matrix(rows * cols, 3);
    const auto w = QuantizedWeights<4>::from_f32(x.data(), rows, cols, {gs, QuantMethod::min_max});
    for (std::size_t r = 0; r < rows; ++r) {
        const std::uint8_t* p = w.row_data(r);
        const float d_unit = read_f32(p), m_unit = read_f32(p + 4);
        const DecodedRow dec = decode_documented(w, r);
        double max_d = 0, max_m = 0;
        for (std::size_t g = 0; g < cols / gs; ++g) {
            const float* gx = x.data() + r * cols + g * gs;
            const double lo = *std::min_element(gx, gx + gs), hi = *std::max_element(gx, gx + gs);
            max_d = std::max(max_d, (hi - lo) / 15);
            max_m = std::max(max_m, std::fabs(lo));
            // Classic scale (max - min) / 15 and zero point min, each to within half a code.
            CHECK(std::fabs(dec.d[g] - (hi - lo) / 15) <= 0.5 * d_unit * (1 + 1e-5));
            CHECK(std::fabs(dec.m[g] - lo) <= 0.5 * m_unit * (1 + 1e-5));
        }
        // The units are the largest classic parameters over the code range.
        CHECK(d_unit == Approx(max_d / 255).epsilon(1e-6));
        CHECK(m_unit == Approx(max_m / 127).epsilon(1e-6));
    }
}

TEST_CASE("optimized is never worse than min_max on any group") {
    for (std::size_t gs : {32, 64}) {
        const std::size_t rows = 16, cols = 512;
        auto x = normal_matrix(rows * cols, 11);
        for (std::size_t i = 0; i < x.size(); i += 97) x[i] *= 6;  // outliers make clipping pay
        auto check = [&](auto tag) {
            constexpr int B = decltype(tag)::value;
            const auto a = QuantizedWeights<B>::from_f32(x.data(), rows, cols, {gs, QuantMethod::min_max}).to_f32();
            const auto b = QuantizedWeights<B>::from_f32(x.data(), rows, cols, {gs, QuantMethod::optimized}).to_f32();
            double total_a = 0, total_b = 0;
            for (std::size_t g = 0; g < rows * cols / gs; ++g) {
                const double ea = group_sse(x.data() + g * gs, gs, a.data() + g * gs);
                const double eb = group_sse(x.data() + g * gs, gs, b.data() + g * gs);
                INFO("bits " << B << " group " << g);
                CHECK(eb <= ea);
                total_a += ea;
                total_b += eb;
            }
            CHECK(total_b < total_a);  // and better overall
        };
        check(std::integral_constant<int, 2>{});
        check(std::integral_constant<int, 3>{});
        check(std::integral_constant<int, 4>{});
        check(std::integral_constant<int, 8>{});
    }
}

TEST_CASE("Constant rows and zero rows decode exactly") {
    for (float c : {0.0f, 0.3f, -1.7f, 1e-3f, 12345.678f, -1e30f}) {
        std::vector<float> x(100, c);
        auto check = [&](auto tag) {
            constexpr int B = decltype(tag)::value;
            for (auto method : {QuantMethod::min_max, QuantMethod::optimized}) {
                const auto back = QuantizedWeights<B>::from_f32(x.data(), 1, 100, {32, method}).to_f32();
                INFO("bits " << B << " value " << c);
                CHECK(std::all_of(back.begin(), back.end(), [&](float v) { return v == c; }));
            }
        };
        check(std::integral_constant<int, 2>{});
        check(std::integral_constant<int, 3>{});
        check(std::integral_constant<int, 4>{});
        check(std::integral_constant<int, 8>{});
    }
}

TEST_CASE("Extreme magnitudes and denormals quantize without overflow") {
    SECTION("values near +-1e30 keep their relative error") {
        auto x = normal_matrix(4 * 64, 5, 1e30f);
        const auto back = QuantizedWeights<4>::from_f32(x.data(), 4, 64).to_f32();
        double e = 0, n = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            REQUIRE(std::isfinite(back[i]));
            e += (static_cast<double>(back[i]) - x[i]) * (static_cast<double>(back[i]) - x[i]);
            n += static_cast<double>(x[i]) * x[i];
        }
        CHECK(std::sqrt(e / n) < 0.1);
    }
    SECTION("denormal rows decode finite and close") {
        std::vector<float> x(64);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 1e-42f;
        const auto back = QuantizedWeights<8>::from_f32(x.data(), 1, 64).to_f32();
        for (std::size_t i = 0; i < x.size(); ++i) {
            REQUIRE(std::isfinite(back[i]));
            CHECK(std::fabs(back[i] - x[i]) <= 64e-42f);
        }
    }
    SECTION("a group spanning more than the float range is refused with its row") {
        std::vector<float> x(2 * 32, 1.0f);
        x[32] = 3e38f;
        x[33] = -3e38f;
        CHECK_THROWS_WITH(QuantizedWeights<4>::from_f32(x.data(), 2, 32),
                          Catch::Matchers::Contains("row 1") && Catch::Matchers::Contains("float range"));
    }
}

TEST_CASE("Memory accounting and the bits-per-weight bars on N(0,1) 512 x 4096") {
    const std::size_t rows = 512, cols = 4096;
    const auto x = normal_matrix(rows * cols, 2026);
    // bars from the issue: bits/weight and relative RMSE at most
    struct Bar {
        double bpw, rmse;
    };
    auto check = [&](auto tag, Bar bar) {
        constexpr int B = decltype(tag)::value;
        const auto w = QuantizedWeights<B>::from_f32(x.data(), rows, cols);
        const std::size_t groups = cols / 32;
        CHECK(w.memory_bytes() == rows * (8 + 2 * groups + groups * 4 * B));
        CHECK(w.bits_per_weight() == Approx(w.memory_bytes() * 8.0 / (rows * cols)));
        const auto back = w.to_f32();
        double e = 0, n = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            e += (static_cast<double>(back[i]) - x[i]) * (static_cast<double>(back[i]) - x[i]);
            n += static_cast<double>(x[i]) * x[i];
        }
        INFO("bits " << B << ": " << w.bits_per_weight() << " bits/weight, relative RMSE " << std::sqrt(e / n));
        CHECK(w.bits_per_weight() <= bar.bpw);
        CHECK(std::sqrt(e / n) <= bar.rmse);
    };
    check(std::integral_constant<int, 8>{}, {8.53, 0.0050});
    check(std::integral_constant<int, 4>{}, {4.53, 0.0710});
    check(std::integral_constant<int, 3>{}, {3.53, 0.150});
    check(std::integral_constant<int, 2>{}, {2.53, 0.315});
}

TEST_CASE("Scalar kernels match float arithmetic on the dequantized rows") {
    for (std::size_t cols : {1, 31, 33, 100, 1000}) {
        const std::size_t rows = 9;
        const auto x = normal_matrix(rows * cols, static_cast<unsigned>(cols));
        const auto v = normal_matrix(cols, 99);
        const auto w = QuantizedWeights<4>::from_f32(x.data(), rows, cols, {64});
        const auto dq = w.to_f32();
        // Float accumulation over cols terms: error at most cols * eps * sum |w_j v_j|.
        auto bound = [&](double abs_sum) { return 2.0 * cols * 6e-8 * abs_sum + 1e-30; };
        std::vector<float> y(rows);
        w.gemv(v.data(), y.data());
        for (std::size_t r = 0; r < rows; ++r) {
            double exact = 0, abs_sum = 0;
            for (std::size_t c = 0; c < cols; ++c) {
                exact += static_cast<double>(dq[r * cols + c]) * v[c];
                abs_sum += std::fabs(static_cast<double>(dq[r * cols + c]) * v[c]);
            }
            INFO("cols " << cols << " row " << r);
            CHECK(std::fabs(w.dot_row(r, v.data()) - exact) <= bound(abs_sum));
            CHECK(std::fabs(y[r] - exact) <= bound(abs_sum));
        }
        // gemv_rows with repeated and unordered rows.
        const std::uint32_t list[] = {4, 0, 4, 8};
        std::vector<float> ys(4);
        w.gemv_rows(list, 4, v.data(), ys.data());
        for (std::size_t i = 0; i < 4; ++i) {
            double exact = 0, abs_sum = 0;
            for (std::size_t c = 0; c < cols; ++c) {
                exact += static_cast<double>(dq[list[i] * cols + c]) * v[c];
                abs_sum += std::fabs(static_cast<double>(dq[list[i] * cols + c]) * v[c]);
            }
            CHECK(std::fabs(ys[i] - exact) <= bound(abs_sum));
        }
        // axpy_rows: y += sum_i a_i row(list_i), repeated rows counted twice. A kernel
        // may form a*d*q + a*m in any order, so each term's rounding is bounded by its
        // parts |a d q| + |a m| (the decoded value itself can be much smaller).
        const float a[] = {0.5f, -2.0f, 1.25f, 3.0f};
        std::vector<float> acc(cols, 1.0f);
        w.axpy_rows(list, 4, a, acc.data());
        std::vector<DecodedRow> decoded;
        for (std::size_t i = 0; i < 4; ++i) decoded.push_back(decode_documented(w, list[i]));
        for (std::size_t c = 0; c < cols; ++c) {
            double exact = 1.0, parts = 1.0;
            for (std::size_t i = 0; i < 4; ++i) {
                const std::size_t g = c / 64;
                exact += a[i] * static_cast<double>(dq[list[i] * cols + c]);
                parts += std::fabs(a[i]) * (std::fabs(static_cast<double>(decoded[i].d[g]) * decoded[i].codes[c]) +
                                            std::fabs(decoded[i].m[g]));
            }
            CHECK(std::fabs(acc[c] - exact) <= 16 * 0x1p-24 * parts);
        }
        // dequantize_rows equals the listed rows of to_f32.
        std::vector<float> some(4 * cols);
        w.dequantize_rows(list, 4, some.data());
        for (std::size_t i = 0; i < 4; ++i)
            CHECK(std::equal(some.begin() + static_cast<std::ptrdiff_t>(i * cols),
                             some.begin() + static_cast<std::ptrdiff_t>((i + 1) * cols),
                             dq.begin() + static_cast<std::ptrdiff_t>(list[i] * cols)));
    }
}

TEST_CASE("Kernels never read activations beyond cols") {
    // Place x at the very end of a buffer followed by NaNs: padding must not leak.
    const std::size_t cols = 45;
    const auto x = normal_matrix(3 * cols, 8);
    const auto w = QuantizedWeights<4>::from_f32(x.data(), 3, cols);
    std::vector<float> buf(cols + 64, std::numeric_limits<float>::quiet_NaN());
    const auto v = normal_matrix(cols, 9);
    std::copy(v.begin(), v.end(), buf.begin());
    for (std::size_t r = 0; r < 3; ++r) CHECK(std::isfinite(w.dot_row(r, buf.data())));
    std::vector<float> y(cols + 64, std::numeric_limits<float>::quiet_NaN());
    std::fill_n(y.begin(), cols, 0.0f);
    const std::uint32_t list[] = {0, 1, 2};
    const float a[] = {1, 1, 1};
    w.axpy_rows(list, 3, a, y.data());
    for (std::size_t c = 0; c < cols; ++c) CHECK(std::isfinite(y[c]));
    for (std::size_t c = cols; c < y.size(); ++c) CHECK(std::isnan(y[c]));  // untouched
}

TEST_CASE("Real FFN weights of stories260K: optimized beats min_max at every width") {
    const std::string path = std::string(SPARSEINFER_TEST_DATA_DIR) + "/stories260K.bin";
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        WARN("skipped: " << path << " is absent");
        return;
    }
    std::int32_t h[7];
    REQUIRE(std::fread(h, 4, 7, f) == 7);
    const std::size_t dim = static_cast<std::size_t>(h[0]), hidden = static_cast<std::size_t>(h[1]);
    const std::size_t layers = static_cast<std::size_t>(h[2]), vocab = static_cast<std::size_t>(std::abs(h[5]));
    const std::size_t kv = dim * static_cast<std::size_t>(h[4]) / static_cast<std::size_t>(h[3]);
    // Skip embedding, attention norms, wq, wk, wv, wo and FFN norms to reach w1 (gate).
    const std::size_t skip = vocab * dim + layers * dim + layers * dim * dim * 2 + 2 * layers * kv * dim + layers * dim;
    REQUIRE(std::fseek(f, static_cast<long>(28 + skip * 4), SEEK_SET) == 0);
    std::vector<float> gate(layers * hidden * dim);
    REQUIRE(std::fread(gate.data(), 4, gate.size(), f) == gate.size());
    std::fclose(f);
    auto rmse = [&](auto tag, QuantMethod m) {
        constexpr int B = decltype(tag)::value;
        const auto back = QuantizedWeights<B>::from_f32(gate.data(), layers * hidden, dim, {32, m}).to_f32();
        double e = 0, n = 0;
        for (std::size_t i = 0; i < gate.size(); ++i) {
            e += (static_cast<double>(back[i]) - gate[i]) * (static_cast<double>(back[i]) - gate[i]);
            n += static_cast<double>(gate[i]) * gate[i];
        }
        return std::sqrt(e / n);
    };
    CHECK(rmse(std::integral_constant<int, 8>{}, QuantMethod::optimized) <
          rmse(std::integral_constant<int, 8>{}, QuantMethod::min_max));
    CHECK(rmse(std::integral_constant<int, 4>{}, QuantMethod::optimized) <
          rmse(std::integral_constant<int, 4>{}, QuantMethod::min_max));
    CHECK(rmse(std::integral_constant<int, 2>{}, QuantMethod::optimized) <
          rmse(std::integral_constant<int, 2>{}, QuantMethod::min_max));
    CHECK(rmse(std::integral_constant<int, 4>{}, QuantMethod::optimized) < 0.08);
}

// One candidate's code sum and squared error by a plain loop over the values,
// compiled as the sweeps are: without fusing a multiply and an add (aarch64
// has FMA in its baseline, and GCC would fuse this loop's arithmetic there).
SPARSEINFER_NO_FMA_BEGIN
static void plain_sweep_sums(const std::vector<float>& y, float off, float sc, float dd, float mm, float& s1,
                             float& sse) {
    SPARSEINFER_NO_FMA_BODY
    for (float v : y) {
        const float t = std::min(std::max((v - off) * sc, 0.0f), 15.0f);
        const auto q = static_cast<float>(static_cast<int>(t + 0.5f));
        s1 += q;
        const float e = dd * q + mm - v;
        sse += e * e;
    }
}
SPARSEINFER_NO_FMA_END

TEST_CASE("optimized's candidate sweep gives the same sums on every path") {
    namespace d = sparseinfer::detail;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-0.05f, 1.05f);
    // 16 lanes (13 set, the last three unused: sc = 0), 9 (just past one AVX2
    // register), 8 (one AVX2 register) and 5 lanes swept.
    for (std::size_t lanes : {16u, 9u, 8u, 5u})
        for (std::size_t n : {1u, 7u, 31u, 32u, 64u, 97u}) {
            std::vector<float> y(n);
            for (auto& v : y) v = u(rng);
            d::PassBatch ref;
            for (std::size_t k = 0; k + 3 < d::PassBatch::width; ++k)  // the last lanes stay unused
                ref.set(k, u(rng) * 0.1, 14.0 + 0.2 * static_cast<double>(k), 0.07, u(rng) * 0.1);
            ref.lanes = lanes;
            d::PassBatch portable = ref;
            d::run_batch_portable<true, true>(ref, y.data(), n, 15.0f);
            // The sums are those of a plain loop over the values, lane by lane.
            for (std::size_t k = 0; k < 4; ++k) {
                float s1 = 0, sse = 0;
                plain_sweep_sums(y, portable.off[k], portable.sc[k], portable.d[k], portable.m[k], s1, sse);
                CHECK(ref.s1[k] == s1);
                CHECK(ref.sse[k] == sse);
            }
            CHECK(ref.s1[d::PassBatch::width - 1] == 0);  // sc = 0 or not swept: every code 0
            // Lanes not swept have zero outputs, though their parameters are set.
            for (std::size_t k = lanes; k < d::PassBatch::width; ++k) {
                INFO("lanes = " << lanes << ", lane " << k);
                CHECK(ref.s1[k] == 0);
                CHECK(ref.s2[k] == 0);
                CHECK(ref.sqy[k] == 0);
                CHECK(ref.sse[k] == 0);
            }
            if (lanes == 16) CHECK(ref.sse[d::PassBatch::width - 1] > 0);  // swept with sc = 0: the error of code 0
#if defined(SPARSEINFER_QUANT_AVX2)
            auto expect_equal = [&](const d::PassBatch& got, const char* path) {
                INFO("path " << path << ", n = " << n << ", lanes = " << lanes);
                for (std::size_t k = 0; k < d::PassBatch::width; ++k) {
                    CHECK(got.s1[k] == ref.s1[k]);
                    CHECK(got.s2[k] == ref.s2[k]);
                    CHECK(got.sqy[k] == ref.sqy[k]);
                    CHECK(got.sse[k] == ref.sse[k]);
                }
            };
            const auto cpu = d::detect_cpu_features();
            if (cpu.avx2) {
                d::PassBatch b = portable;
                d::quant_avx2::run_batch<true, true>(b, y.data(), n, 15.0f);
                expect_equal(b, "avx2");
            }
            if (cpu.avx512) {
                d::PassBatch b = portable;
                d::quant_avx512::run_batch<true, true>(b, y.data(), n, 15.0f);
                expect_equal(b, "avx512");
            }
#endif
        }
}

// One pair's squared error by a plain loop in double (quantizer.hpp's former
// group_sse): value i into partial i % 4, then (p0 + p1) + (p2 + p3).
SPARSEINFER_NO_FMA_BEGIN
static double plain_pair_sse(const std::vector<float>& x, double dd, double mm, int qmax) {
    SPARSEINFER_NO_FMA_BODY
    const double id = dd > 0 ? 1.0 / dd : 0.0;
    double part[4] = {};
    for (std::size_t i = 0; i < x.size(); ++i) {
        double t = (x[i] - mm) * id;
        t = t > 0 ? t : 0.0;
        t = t < qmax ? t : static_cast<double>(qmax);
        const double e = dd * static_cast<double>(static_cast<int>(t + 0.5)) + mm - x[i];
        part[i % 4] += e * e;
    }
    return (part[0] + part[1]) + (part[2] + part[3]);
}
SPARSEINFER_NO_FMA_END

TEST_CASE("The unclamped sweep gives the clamped sums where its contract holds, on every path") {
    namespace d = sparseinfer::detail;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (std::size_t n : {1u, 31u, 32u, 97u}) {
        std::vector<float> y(n);
        for (auto& v : y) v = u(rng);
        y[0] = 1.0f;  // the top of the range: y * sc may pass qmax, never qmax + 0.5
        d::PassBatch in;
        for (std::size_t k = 0; k < 12; ++k) in.set(k, 0.0, 15.0 + 0.1 * (static_cast<double>(k) - 9), 0, 0);
        d::PassBatch clamped = in, ref = in;
        d::run_batch_portable<true, false>(clamped, y.data(), n, 15.0f);
        d::run_batch_portable<true, false, false>(ref, y.data(), n, 15.0f);
        INFO("n = " << n);
        for (std::size_t k = 0; k < d::PassBatch::width; ++k) {
            CHECK(ref.s1[k] == clamped.s1[k]);
            CHECK(ref.s2[k] == clamped.s2[k]);
            CHECK(ref.sqy[k] == clamped.sqy[k]);
        }
#if defined(SPARSEINFER_QUANT_AVX2)
        const auto cpu = d::detect_cpu_features();
        auto expect_equal = [&](const d::PassBatch& got, const char* path) {
            INFO("path " << path);
            for (std::size_t k = 0; k < d::PassBatch::width; ++k) {
                CHECK(got.s1[k] == ref.s1[k]);
                CHECK(got.s2[k] == ref.s2[k]);
                CHECK(got.sqy[k] == ref.sqy[k]);
            }
        };
        if (cpu.avx2) {
            d::PassBatch b = in;
            d::quant_avx2::run_batch<true, false, false>(b, y.data(), n, 15.0f);
            expect_equal(b, "avx2");
        }
        if (cpu.avx512) {
            d::PassBatch b = in;
            d::quant_avx512::run_batch<true, false, false>(b, y.data(), n, 15.0f);
            expect_equal(b, "avx512");
        }
#endif
    }
}

TEST_CASE("The lanes' least-squares fits are the same on every path") {
    namespace d = sparseinfer::detail;
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(-0.05f, 1.05f);
    const std::size_t n = 32;
    std::vector<float> y(n);
    for (auto& v : y) v = u(rng);
    double sy = 0;
    for (float v : y) sy += v;
    d::PassBatch swept;
    for (std::size_t k = 0; k < 13; ++k) swept.set(k, 0.0, 14.0 + 0.2 * static_cast<double>(k), 0, 0);
    swept.set(13, 0.9, 0.5, 0, 0);   // every code 0 or 1, most 0
    swept.set(14, 2.0, 15.0, 0, 0);  // every code 0: no fit
    swept.set(15, 0.0, 15.0, 0, 0);  // not swept: zero sums, no fit
    swept.lanes = 15;
    d::run_batch_portable<true, false>(swept, y.data(), n, 15.0f);
    d::LaneFits ref;
    d::PassBatch ref_next;
    d::fit_lanes_portable(swept, static_cast<double>(n), sy, ref, ref_next);
    // The fit solves the normal equations of sum (d q + m - y)^2 where it is ok.
    std::size_t ok = 0;
    for (std::size_t k = 0; k < d::PassBatch::width; ++k) {
        INFO("lane " << k);
        if (!ref.ok[k]) {
            CHECK(ref_next.sc[k] == 0.0f);
            continue;
        }
        ++ok;
        const double s1 = swept.s1[k], s2 = swept.s2[k], sqy = swept.sqy[k];
        CHECK(ref.d[k] * s2 + ref.m[k] * s1 == Approx(sqy).epsilon(1e-9));
        CHECK(ref.d[k] * s1 + ref.m[k] * static_cast<double>(n) == Approx(sy).epsilon(1e-9));
        CHECK(ref_next.off[k] == static_cast<float>(ref.m[k]));
        CHECK(ref_next.sc[k] == static_cast<float>(1.0 / ref.d[k]));
    }
    CHECK(ok >= 13);
    CHECK_FALSE(ref.ok[14]);
    CHECK_FALSE(ref.ok[15]);
    CHECK(ref_next.lanes == 15);  // the next sweep covers the same lanes
#if defined(SPARSEINFER_QUANT_AVX2)
    const auto cpu = d::detect_cpu_features();
    auto expect_equal = [&](const d::LaneFits& got, const d::PassBatch& next, const char* path) {
        INFO("path " << path);
        CHECK(next.lanes == ref_next.lanes);
        for (std::size_t k = 0; k < d::PassBatch::width; ++k) {
            INFO("lane " << k);
            CHECK(got.ok[k] == ref.ok[k]);
            if (ref.ok[k]) {
                CHECK(got.d[k] == ref.d[k]);
                CHECK(got.m[k] == ref.m[k]);
            }
            CHECK(next.off[k] == ref_next.off[k]);
            CHECK(next.sc[k] == ref_next.sc[k]);
            CHECK(next.d[k] == ref_next.d[k]);
            CHECK(next.m[k] == ref_next.m[k]);
        }
    };
    if (cpu.avx2) {
        d::LaneFits f;
        d::PassBatch next;
        d::quant_avx2::fit_lanes(swept, static_cast<double>(n), sy, f, next);
        expect_equal(f, next, "avx2");
    }
    if (cpu.avx512) {
        d::LaneFits f;
        d::PassBatch next;
        d::quant_avx512::fit_lanes(swept, static_cast<double>(n), sy, f, next);
        expect_equal(f, next, "avx512");
    }
#endif
}

TEST_CASE("A pair's squared errors are a plain loop's, on every path") {
    namespace d = sparseinfer::detail;
    std::mt19937 rng(13);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (std::size_t n : {1u, 6u, 31u, 32u, 64u, 101u}) {
        std::vector<float> x(n);
        for (auto& v : x) v = nd(rng);
        d::SsePair in;
        in.d[0] = 0.21;
        in.m[0] = -1.7;
        in.d[1] = 0.0;  // a zero scale: every code 0
        in.m[1] = 0.3;
        d::SsePair ref = in;
        d::sse_pair_portable(ref, x.data(), n, 15);
        INFO("n = " << n);
        CHECK(ref.sse[0] == plain_pair_sse(x, in.d[0], in.m[0], 15));
        CHECK(ref.sse[1] == plain_pair_sse(x, in.d[1], in.m[1], 15));
        CHECK(ref.sse[0] > 0);
#if defined(SPARSEINFER_QUANT_AVX2)
        if (d::detect_cpu_features().avx2) {
            d::SsePair b = in;
            d::quant_avx2::sse_pair(b, x.data(), n, 15);
            CHECK(b.sse[0] == ref.sse[0]);
            CHECK(b.sse[1] == ref.sse[1]);
        }
#endif
    }
}

TEST_CASE("The quantizer's primitives follow SPARSEINFER_ISA's cap like the kernels") {
    namespace d = sparseinfer::detail;
    d::CpuFeatures wide;
    wide.avx2 = wide.avx512 = true;
    CHECK(d::batch_path_for(wide, nullptr) == 2);
    CHECK(d::batch_path_for(wide, "avx512_vnni") == 2);
    CHECK(d::batch_path_for(wide, "avx2") == 1);
    CHECK(d::batch_path_for(wide, "scalar") == 0);
    d::CpuFeatures avx2_only;
    avx2_only.avx2 = true;
    CHECK(d::batch_path_for(avx2_only, nullptr) == 1);
    CHECK(d::batch_path_for(avx2_only, "avx512") == 1);
    CHECK(d::batch_path_for(avx2_only, "scalar") == 0);
    CHECK(d::batch_path_for(d::CpuFeatures{}, "avx2") == 0);
#if defined(SPARSEINFER_QUANT_AVX2)
    // This process's choice: the environment's, as the kernels read it.
    CHECK(d::batch_path() == d::batch_path_for(d::detect_cpu_features(), std::getenv("SPARSEINFER_ISA")));
#else
    CHECK(d::batch_path() == 0);
#endif
}
