// Tests of the SIMD kernels (kernels/avx2.hpp, avx512.hpp, neon.hpp) against the
// scalar reference (kernels/scalar.hpp): every kernel x every instruction set
// this CPU supports x Bits {2,3,4,8} x group sizes {32,64,128} x cols
// {1,31,32,33,4096,11008}, on random row bytes (random codes, padding included).
//
// Bounds:
//  - float path (dot_row, gemv_rows): |simd - scalar| <= 1e-5 * sum_j (|d q_j x_j| + |m x_j|);
//    a path whose gemv_rows (8 rows and 1024 columns or more) splits each
//    block of 32 of x into three int8 limbs, within 2^-23 of the block's max |x|
//    per element, so its bound adds 2^-23 * sum_b max|x_b| sum_{j in b} (|d q_j| + |m|).
//    That term is below the first for typical x; it dominates only when a block
//    mixes magnitudes far apart and its largest |x| meets a near-zero weight
//    (e.g. x = 2^64 times a zero weight beside O(1) values);
//  - int8 path: |simd - scalar| <= 1e-5 * sum_b (|d| s_b sum_j q_j |xq_j| + |m| |xsum_b|)
//    (both sum the same exact integer block sums; only float rounding differs);
//  - dequantize_row: within 2 float ulps of |d q| + |m| (fma vs multiply-add);
//  - axpy_rows: |simd - scalar| <= 1e-5 * (|y| + sum_i |a_i| (|d q| + |m|));
//  - quantize_activations: bit-identical to the scalar reference.
#include <sparseinfer/kernels/dispatch.hpp>
#include <sparseinfer/quantized_weights.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "kernel_test_util.hpp"

namespace sk = sparseinfer::kernels;
using sparseinfer::Isa;

namespace {

const std::size_t kCols[] = {1, 31, 32, 33, 4096, 11008};
const int kBits[] = {2, 3, 4, 8};
// 32, 64, 128 as used; 96 (3 blocks per group), 256 and 1024 reach the kernels' generic group paths.
const std::size_t kGroups[] = {32, 64, 128, 96, 256, 1024};

std::size_t rows_for(std::size_t cols) { return cols >= 4096 ? 3 : 9; }

sparseinfer::QuantizedActivations scalar_quantize(const float* x, std::size_t n) {
    sparseinfer::QuantizedActivations q;
    q.size = n;
    const std::size_t blocks = (n + 31) / 32;
    q.values.resize(blocks * 32);
    q.scales.resize(blocks);
    q.sums.resize(blocks);
    sk::scalar::quantize_activations(x, n, q.values.data(), q.scales.data(), q.sums.data());
    return q;
}

std::string label(int bits, std::size_t group, std::size_t cols) {
    return "bits=" + std::to_string(bits) + " group=" + std::to_string(group) + " cols=" + std::to_string(cols);
}

// Calls fn(m, t, ref) for a random matrix m of every Bits x group size x cols
// case, with t the kernel table of `isa` and ref the scalar reference's.
template <class Fn>
void for_each_matrix(Isa isa, unsigned seed_per_col, Fn&& fn) {
    for (int bits : kBits)
        for (std::size_t group : kGroups)
            for (std::size_t cols : kCols) {
                INFO(label(bits, group, cols));
                const auto m = kt::random_matrix(bits, rows_for(cols), cols, group,
                                                 static_cast<unsigned>(cols * seed_per_col + bits));
                fn(m, sk::table_for(isa, bits), sk::scalar::table(bits));
            }
}

}  // namespace

TEST_CASE("scalar is always among the supported paths and tables match their path") {
    const auto isas = sk::supported_isas();
    REQUIRE(!isas.empty());
    CHECK(isas.front() == Isa::scalar);
    kt::for_each_supported_isa([](Isa isa) {
        for (int bits : kBits) {
            CHECK(sk::table_for(isa, bits).isa == isa);
            CHECK(sk::table_for(isa, bits).bits == bits);
        }
    });
}

TEST_CASE("dot_row, gemv_rows and dequantize_row match the scalar reference on every path") {
    kt::for_each_supported_isa([](Isa isa) {
        for_each_matrix(isa, 7, [](const kt::RandomMatrix& m, const sk::KernelTable& t, const sk::KernelTable& ref) {
            const auto& l = m.layout;
            const std::size_t rows = m.rows, cols = l.cols, group = l.group_size;
            kt::Vec x(cols, static_cast<unsigned>(cols + group));
            const auto xq = scalar_quantize(x.p, cols);

            for (std::size_t r = 0; r < rows; ++r) {
                const std::uint8_t* row = m.row(r);
                const double fs = kt::float_scale(l, row, x.p), qs = kt::q8_scale(l, row, xq);
                CHECK(std::fabs(t.dot_row(l, row, x.p) - ref.dot_row(l, row, x.p)) <= kt::rel_tol * fs);
                const float a8 = t.dot_row_q8(l, row, xq.values.data(), xq.scales.data(), xq.sums.data());
                const float r8 = ref.dot_row_q8(l, row, xq.values.data(), xq.scales.data(), xq.sums.data());
                CHECK(std::fabs(a8 - r8) <= kt::rel_tol * qs);

                // dequantize_row writes exactly cols values.
                kt::Vec out(cols, 1, 12345.0f), want(cols, 1, 12345.0f);
                t.dequantize_row(l, row, out.p);
                ref.dequantize_row(l, row, want.p);
                CHECK(out.storage.back() == 12345.0f);
                CHECK(out.storage.front() == 12345.0f);
                bool close = true;
                for (std::size_t j = 0; j < cols; ++j) {
                    double d, mn;
                    kt::params(l, row, j, d, mn);
                    const double tol = 2.5e-7 * (std::fabs(want.p[j] - mn) + std::fabs(mn)) + 1e-30;
                    close = close && std::fabs(out.p[j] - want.p[j]) <= tol;
                }
                CHECK(close);
            }

            // gemv_rows: repeated rows, an unaligned row list and output, the dense case.
            std::vector<std::uint32_t> list_storage{0, 0, 1, static_cast<std::uint32_t>(rows - 1), 1, 2};
            list_storage.insert(list_storage.begin(), 99);  // row list starts at an odd index
            const std::uint32_t* list = list_storage.data() + 1;
            const std::size_t n = list_storage.size() - 1;
            kt::Vec y(n, 2, -7.0f), yr(n, 2, -7.0f), y8(n, 2, -7.0f), yr8(n, 2, -7.0f);
            t.gemv_rows(l, m.data(), list, n, x.p, y.p);
            ref.gemv_rows(l, m.data(), list, n, x.p, yr.p);
            t.gemv_rows_q8(l, m.data(), list, n, xq.values.data(), xq.scales.data(), xq.sums.data(), y8.p);
            ref.gemv_rows_q8(l, m.data(), list, n, xq.values.data(), xq.scales.data(), xq.sums.data(), yr8.p);
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint8_t* row = m.row(list[i]);
                CHECK(std::fabs(y.p[i] - yr.p[i]) <= kt::rel_tol * kt::float_scale(l, row, x.p));
                CHECK(std::fabs(y8.p[i] - yr8.p[i]) <= kt::rel_tol * kt::q8_scale(l, row, xq));
            }
            CHECK(y.storage.back() == -7.0f);
            CHECK(y8.storage.back() == -7.0f);

            kt::Vec yd(rows, 3, -7.0f), yd8(rows, 3, -7.0f);
            t.gemv_rows(l, m.data(), nullptr, rows, x.p, yd.p);
            t.gemv_rows_q8(l, m.data(), nullptr, rows, xq.values.data(), xq.scales.data(), xq.sums.data(), yd8.p);
            for (std::size_t r = 0; r < rows; ++r) {
                CHECK(std::fabs(yd.p[r] - ref.dot_row(l, m.row(r), x.p)) <=
                      kt::rel_tol * kt::float_scale(l, m.row(r), x.p));
                CHECK(std::fabs(yd8.p[r] -
                                ref.dot_row_q8(l, m.row(r), xq.values.data(), xq.scales.data(), xq.sums.data())) <=
                      kt::rel_tol * kt::q8_scale(l, m.row(r), xq));
            }
            CHECK(yd.storage.back() == -7.0f);

            // An empty row list touches nothing.
            kt::Vec ye(1, 4, -7.0f);
            t.gemv_rows(l, m.data(), list, 0, x.p, ye.p);
            t.gemv_rows_q8(l, m.data(), list, 0, xq.values.data(), xq.scales.data(), xq.sums.data(), ye.p);
            CHECK(ye.storage[0] == -7.0f);
            CHECK(ye.storage[2] == -7.0f);
        });
    });
}

TEST_CASE("gemv_rows over many rows: every column panel, extreme and non-finite activations") {
    // A path with splits_float_x switches to x split into int8 limbs (every width)
    // from 8 rows and 1024 columns on, per panel of 4096 columns, and back to the
    // fp32 path for |x| > 2^64, NaN, Inf or every |x| below 2^-60.
    const std::size_t rows = 20;
    std::vector<std::uint32_t> list_storage{7, 3, 3, 19, 0, 11, 5, 5, 18, 2, 9, 14, 1, 16, 0, 12, 19};
    const std::uint32_t* list = list_storage.data() + 1;  // starts at an odd index
    const std::size_t n = list_storage.size() - 1;
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> expo(-100, 60);
    kt::for_each_supported_isa([&](Isa isa) {
        for (int bits : kBits)
            for (std::size_t group : {std::size_t{32}, std::size_t{96}, std::size_t{128}})
                // 4096 + 197: a last panel of 7 blocks, its second unit of 4 blocks partial.
                for (std::size_t cols : {std::size_t{1}, std::size_t{33}, std::size_t{1024}, std::size_t{4097},
                                         std::size_t{4096 + 197}, std::size_t{8192 + 96}, std::size_t{11008}}) {
                    INFO(label(bits, group, cols));
                    const auto m = kt::random_matrix(bits, rows, cols, group, static_cast<unsigned>(cols + bits));
                    const auto& l = m.layout;
                    const auto& t = sk::table_for(isa, bits);
                    const auto& ref = sk::scalar::table(bits);
                    kt::Vec x(cols, static_cast<unsigned>(cols * 3 + group));
                    // 0: plain; 1: elements times 2^-100..2^60; 2: one element of
                    // 2^70 (fp32 path); 3: NaN; 4: +Inf; 5: a denormal; 6: one
                    // element of 2^64 (the largest the split paths take), the first
                    // block zero and the second denormal; 7: every element times 2^-120
                    // (fp32 path); 8: every element times 2^-58 (split paths); 9: in every
                    // block one element 2^12 times the others (the split's precision
                    // relative to the block's largest |x|: two limbs fail here).
                    for (int variant = 0; variant < 10; ++variant) {
                        INFO("variant " << variant);
                        kt::Vec xv = x;
                        xv.p = xv.storage.data() + 1;
                        const std::size_t at = cols / 2;
                        if (variant == 1)
                            for (std::size_t j = 0; j < cols; ++j) xv.p[j] = std::ldexp(xv.p[j], expo(rng));
                        if (variant == 2) xv.p[at] = std::ldexp(1.0f, 70);
                        if (variant == 3) xv.p[at] = std::numeric_limits<float>::quiet_NaN();
                        if (variant == 4) xv.p[at] = std::numeric_limits<float>::infinity();
                        if (variant == 5) xv.p[at] = std::numeric_limits<float>::denorm_min() * 3;
                        if (variant == 6) {
                            xv.p[at] = std::ldexp(1.0f, 64);
                            for (std::size_t j = 0; j < 64 && j < cols; ++j)
                                xv.p[j] = j < 32 ? 0.0f : std::ldexp(xv.p[j], -130);
                        }
                        if (variant == 7)
                            for (std::size_t j = 0; j < cols; ++j) xv.p[j] = std::ldexp(xv.p[j], -120);
                        if (variant == 8)
                            for (std::size_t j = 0; j < cols; ++j) xv.p[j] = std::ldexp(xv.p[j], -58);
                        if (variant == 9)
                            for (std::size_t j = 0; j < cols; j += 32) xv.p[j] = std::ldexp(1.0f, 12);
                        kt::Vec y(n, 2, -7.0f), yd(rows, 3, -7.0f);
                        t.gemv_rows(l, m.data(), list, n, xv.p, y.p);
                        t.gemv_rows(l, m.data(), nullptr, rows, xv.p, yd.p);
                        CHECK(y.storage.back() == -7.0f);
                        CHECK(yd.storage.back() == -7.0f);
                        // Error over its bound, worst row; non-finite results must stay
                        // non-finite (which of NaN or Inf depends on the order of the sums).
                        double worst = 0;
                        bool finite_alike = true, nan_kept = true;
                        const double split_tol = t.splits_float_x ? std::ldexp(1.0, -23) : 0.0;
                        for (std::size_t i = 0; i < n + rows; ++i) {
                            const std::uint8_t* row = m.row(i < n ? list[i] : i - n);
                            const float got = i < n ? y.p[i] : yd.p[i - n], want = ref.dot_row(l, row, xv.p);
                            finite_alike = finite_alike && std::isfinite(got) == std::isfinite(want);
                            if (variant == 3) nan_kept = nan_kept && std::isnan(got);
                            if (std::isfinite(want))
                                worst = std::max(worst, std::fabs(got - want) /
                                                            (kt::rel_tol * kt::float_scale(l, row, xv.p) +
                                                             split_tol * kt::block_max_scale(l, row, xv.p) + 1e-37));
                        }
                        CHECK(worst <= 1.0);
                        CHECK(finite_alike);
                        CHECK(nan_kept);
                    }
                }
    });
}

TEST_CASE("axpy_rows matches the scalar reference and writes only y[0..cols)") {
    kt::for_each_supported_isa([](Isa isa) {
        for_each_matrix(isa, 3, [](const kt::RandomMatrix& m, const sk::KernelTable& t, const sk::KernelTable& ref) {
            const auto& l = m.layout;
            const std::size_t rows = m.rows, cols = l.cols;
            for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{6}, std::size_t{9}}) {
                std::vector<std::uint32_t> list(n + 1);
                for (std::size_t i = 0; i < n; ++i) list[i + 1] = static_cast<std::uint32_t>((i * 5) % rows);
                kt::Vec a(n + 1, 5);
                kt::Vec y(cols, 6, 777.0f), yr(cols, 6, 777.0f);
                t.axpy_rows(l, m.data(), list.data() + 1, n, a.p, y.p);
                ref.axpy_rows(l, m.data(), list.data() + 1, n, a.p, yr.p);
                CHECK(y.storage.front() == 777.0f);
                CHECK(y.storage.back() == 777.0f);
                // Error scale per column: |y| + sum_i |a_i| (|d q| + |m|).
                std::vector<double> scale(cols);
                for (std::size_t j = 0; j < cols; ++j) scale[j] = std::fabs(yr.p[j]) + 1e-30;
                for (std::size_t i = 0; i < n; ++i) {
                    std::vector<float> w(cols);
                    ref.dequantize_row(l, m.row(list[i + 1]), w.data());
                    for (std::size_t j = 0; j < cols; ++j) {
                        double d, mn;
                        kt::params(l, m.row(list[i + 1]), j, d, mn);
                        scale[j] += std::fabs(a.p[i]) * (std::fabs(w[j] - mn) + std::fabs(mn));
                    }
                }
                bool close = true;
                for (std::size_t j = 0; j < cols; ++j)
                    close = close && std::fabs(y.p[j] - yr.p[j]) <= kt::rel_tol * scale[j];
                CHECK(close);
                // Dense: rows == nullptr means rows 0..n-1.
                if (n <= rows) {
                    kt::Vec yd(cols, 6), ydr(cols, 6);
                    t.axpy_rows(l, m.data(), nullptr, n, a.p, yd.p);
                    ref.axpy_rows(l, m.data(), nullptr, n, a.p, ydr.p);
                    double worst = 0;
                    for (std::size_t j = 0; j < cols; ++j)
                        worst = std::max(worst, std::fabs(yd.p[j] - ydr.p[j]) / (1.0 + std::fabs(ydr.p[j])));
                    CHECK(worst <= 1e-4);
                }
            }
        });
    });
}

TEST_CASE("axpy_rows over columns past one panel of y, and over many rows") {
    // avx512* sum the min terms per block of a panel of 16384 columns and add
    // them to y at the end: 16384 + 103 columns make a second, partial panel.
    const std::size_t cols = 16384 + 103, rows = 7;
    std::vector<std::uint32_t> list{6, 0, 3, 3, 5, 1, 2, 4, 6, 0, 1};
    kt::for_each_supported_isa([&](Isa isa) {
        for (int bits : kBits)
            for (std::size_t group : {std::size_t{32}, std::size_t{128}}) {
                INFO(label(bits, group, cols));
                const auto m = kt::random_matrix(bits, rows, cols, group, static_cast<unsigned>(bits * 7 + group));
                const auto& l = m.layout;
                for (std::size_t n : {std::size_t{1}, std::size_t{5}, list.size()}) {
                    kt::Vec a(n, 9);
                    kt::Vec y(cols, 10, 777.0f), yr(cols, 10, 777.0f);
                    sk::table_for(isa, bits).axpy_rows(l, m.data(), list.data(), n, a.p, y.p);
                    sk::scalar::table(bits).axpy_rows(l, m.data(), list.data(), n, a.p, yr.p);
                    CHECK(y.storage.front() == 777.0f);
                    CHECK(y.storage.back() == 777.0f);
                    std::vector<double> scale(cols);
                    for (std::size_t j = 0; j < cols; ++j) scale[j] = std::fabs(yr.p[j]) + 1e-30;
                    std::vector<float> w(cols);
                    for (std::size_t i = 0; i < n; ++i) {
                        sk::scalar::table(bits).dequantize_row(l, m.row(list[i]), w.data());
                        for (std::size_t j = 0; j < cols; ++j) {
                            double d, mn;
                            kt::params(l, m.row(list[i]), j, d, mn);
                            scale[j] += std::fabs(a.p[i]) * (std::fabs(w[j] - mn) + std::fabs(mn));
                        }
                    }
                    double worst = 0;
                    for (std::size_t j = 0; j < cols; ++j)
                        worst = std::max(worst, std::fabs(y.p[j] - yr.p[j]) / (kt::rel_tol * scale[j]));
                    CHECK(worst <= 1.0);
                }
            }
    });
}

TEST_CASE("quantize_activations is bit-identical to the scalar reference on every path") {
    std::vector<std::size_t> sizes{0, 1, 5, 31, 32, 33, 64, 100, 4096, 4101};
    kt::for_each_supported_isa([&](Isa isa) {
        for (std::size_t n : sizes) {
            INFO("n=" + std::to_string(n));
            kt::Vec x(n, static_cast<unsigned>(n + 11));
            if (n > 40) {
                x.p[3] = std::numeric_limits<float>::quiet_NaN();           // block 0 -> NaN
                x.p[33] = std::numeric_limits<float>::infinity();           // block 1 -> NaN
                for (std::size_t j = 64; j < 96 && j < n; ++j) x.p[j] = 0;  // an all-zero block
            }
            if (n > 130)  // exact ties: amax 127 makes inv 1, so k + 0.5 rounds away from zero
                for (std::size_t j = 96; j < 128; ++j)
                    x.p[j] = static_cast<float>(j % 2 ? 127 : -(static_cast<int>(j) - 96)) +
                             (j % 3 ? 0.5f : -0.5f) * (j % 2 ? 0 : 1);
            const std::size_t blocks = (n + 31) / 32;
            std::vector<std::int8_t> q(blocks * 32 + 1, 99), qr(blocks * 32 + 1, 99);
            std::vector<float> s(blocks + 1, 5), sr(blocks + 1, 5), u(blocks + 1, 5), ur(blocks + 1, 5);
            sk::table_for(isa, 4).quantize_activations(x.p, n, q.data(), s.data(), u.data());
            sk::scalar::quantize_activations(x.p, n, qr.data(), sr.data(), ur.data());
            CHECK(q == qr);
            bool same = true;
            for (std::size_t b = 0; b <= blocks; ++b) {
                same = same && ((std::isnan(s[b]) && std::isnan(sr[b])) || s[b] == sr[b]);
                same = same && ((std::isnan(u[b]) && std::isnan(ur[b])) || u[b] == ur[b]);
            }
            CHECK(same);
            if (n > 40) {
                CHECK(std::isnan(s[0]));
                CHECK(std::isnan(u[1]));
            }
        }
    });
}

TEST_CASE("int8 path stays within the activation-rounding bound of the float path") {
    // Rigorous: |dot_q8 - dot_f| <= sum_j |w_j| * s_b / 2 (each activation is off
    // by at most half its block's step) + float rounding. On N(0,1) data we also
    // hold it to llama.cpp's 0.02 relative error, relative to ||w|| ||x||.
    kt::for_each_supported_isa([](Isa isa) {
        for (int bits : kBits)
            for (std::size_t group : kGroups) {
                const std::size_t cols = 4096;
                INFO(label(bits, group, cols));
                std::mt19937 rng(static_cast<unsigned>(bits * 100 + group));
                std::normal_distribution<float> nd;
                std::vector<float> w(4 * cols);
                for (auto& v : w) v = nd(rng);
                sparseinfer::QuantOptions opts;
                opts.group_size = group;
                opts.method = sparseinfer::QuantMethod::min_max;
                const auto& t = sk::table_for(isa, bits);
                auto check = [&](auto weights) {
                    const auto& l = weights.layout();
                    kt::Vec x(cols, 9);
                    const auto xq = scalar_quantize(x.p, cols);
                    for (std::size_t r = 0; r < 4; ++r) {
                        const std::uint8_t* row = weights.data() + r * l.row_stride;
                        std::vector<float> wd(cols);
                        sk::scalar::dequantize_row(l, row, wd.data());
                        double bound = 0, wn = 0, xn = 0;
                        for (std::size_t j = 0; j < cols; ++j) {
                            bound += std::fabs(wd[j]) * xq.scales[j / 32] / 2;
                            wn += double(wd[j]) * wd[j];
                            xn += double(x.p[j]) * x.p[j];
                        }
                        const double f = t.dot_row(l, row, x.p);
                        const double q = t.dot_row_q8(l, row, xq.values.data(), xq.scales.data(), xq.sums.data());
                        CHECK(std::fabs(q - f) <=
                              bound + kt::rel_tol * (kt::float_scale(l, row, x.p) + kt::q8_scale(l, row, xq)));
                        CHECK(std::fabs(q - f) <= 0.02 * std::sqrt(wn * xn));
                    }
                };
                switch (bits) {
                case 2: check(sparseinfer::QuantizedWeights<2>::from_f32(w.data(), 4, cols, opts)); break;
                case 3: check(sparseinfer::QuantizedWeights<3>::from_f32(w.data(), 4, cols, opts)); break;
                case 4: check(sparseinfer::QuantizedWeights<4>::from_f32(w.data(), 4, cols, opts)); break;
                default: check(sparseinfer::QuantizedWeights<8>::from_f32(w.data(), 4, cols, opts)); break;
                }
            }
    });
}

// ---- gemv_s8_panels: int8 rows in panels of 16 (detail/int8_panels.hpp) -----------

namespace {

/// Row-major int8 rows, their panels (stored one byte past an aligned start)
/// and random scales, for the panel kernel.
struct PanelCase {
    std::size_t rows, depth, D;
    std::vector<std::int8_t> P;          // row-major [rows][depth], codes in [-127, 127]
    std::vector<std::int8_t> storage;    // 1 + panel bytes: panels start unaligned
    std::vector<float> scale_storage;    // 1 + rows: row scales start unaligned
    std::vector<std::int8_t> t_storage;  // 1 + D: t starts unaligned, zero padded
    const std::int8_t* panels() const { return storage.data() + 1; }
    const float* scales() const { return scale_storage.data() + 1; }
    const std::int8_t* t() const { return t_storage.data() + 1; }
};

/// Codes: `extreme` 0 random, 1 every P = 127 and t = -128, 2 P = -127 and t = 127,
/// 3 P = -127 and t = -128 (the largest sums the layout allows).
PanelCase panel_case(std::size_t rows, std::size_t depth, unsigned seed, int extreme = 0) {
    PanelCase c{rows, depth, sparseinfer::detail::s8_panel_depth(depth), {}, {}, {}, {}};
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> code(-127, 127), tcode(-128, 127);
    std::uniform_real_distribution<float> unit(0.001f, 0.05f);
    c.P.resize(rows * depth);
    for (auto& v : c.P) v = static_cast<std::int8_t>(extreme == 1 ? 127 : extreme >= 2 ? -127 : code(rng));
    if (extreme == 0 && rows > 2) {  // one row of each extreme among random ones
        for (std::size_t j = 0; j < depth; ++j) c.P[1 * depth + j] = 127;
        for (std::size_t j = 0; j < depth; ++j) c.P[2 * depth + j] = -127;
    }
    c.storage.assign(1 + sparseinfer::detail::s8_panel_bytes(rows, depth), 0x55);
    sparseinfer::detail::pack_s8_panels(c.P.data(), rows, depth, depth, c.storage.data() + 1);
    c.scale_storage.resize(1 + rows);
    for (auto& v : c.scale_storage) v = unit(rng);
    c.t_storage.assign(1 + c.D, 0);
    for (std::size_t j = 0; j < depth; ++j)
        c.t_storage[1 + j] = static_cast<std::int8_t>(extreme == 1 || extreme == 3 ? -128
                                                      : extreme == 2               ? 127
                                                                                   : tcode(rng));
    return c;
}

/// The panel kernel's result from the row-major rows: exact int64 dot, then the same two float multiplies.
std::vector<float> panel_expected(const PanelCase& c, float t_scale) {
    std::vector<float> y(c.rows);
    for (std::size_t i = 0; i < c.rows; ++i) {
        std::int64_t acc = 0;
        for (std::size_t j = 0; j < c.depth; ++j) acc += std::int64_t{c.P[i * c.depth + j]} * c.t()[j];
        y[i] = static_cast<float>(acc) * c.scales()[i] * t_scale;
    }
    return y;
}

/// Runs a kernel into y with sentinels on both sides; checks it wrote only y[0..rows).
std::vector<float> run_panels(const sk::KernelTable& k, const PanelCase& c, float t_scale) {
    std::vector<float> out(c.rows + 3, -7.0f);
    k.gemv_s8_panels(c.panels(), c.scales(), c.rows, c.D, c.t(), t_scale, out.data() + 1);
    CHECK(out.front() == -7.0f);
    CHECK(out[c.rows + 1] == -7.0f);
    CHECK(out[c.rows + 2] == -7.0f);
    return std::vector<float>(out.begin() + 1, out.begin() + 1 + static_cast<std::ptrdiff_t>(c.rows));
}

}  // namespace

TEST_CASE("s8 panels: the layout puts row i's values j..j+3 in 4 adjacent bytes of 64-byte chunks") {
    using namespace sparseinfer::detail;
    CHECK(s8_panel_depth(1) == 4);
    CHECK(s8_panel_depth(32) == 32);
    CHECK(s8_panel_depth(33) == 36);
    CHECK(s8_panel_bytes(17, 32) == 2 * 16 * 32);
    CHECK(s8_panel_bytes(0, 32) == 0);
    // Hand-computed offsets: panel 1 starts at 16 * D; chunk c at 64 c; row r at 4 r.
    CHECK(s8_panel_offset(0, 0, 8) == 0);
    CHECK(s8_panel_offset(0, 3, 8) == 3);
    CHECK(s8_panel_offset(1, 0, 8) == 4);
    CHECK(s8_panel_offset(15, 7, 8) == 64 + 60 + 3);
    CHECK(s8_panel_offset(16, 0, 8) == 128);
    CHECK(s8_panel_offset(17, 5, 8) == 128 + 64 + 4 + 1);
    // Packing 17 rows of depth 5: padding (depth 5..7, rows 17..31) is zero.
    std::vector<std::int8_t> src(17 * 5), out(s8_panel_bytes(17, 5), 99);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::int8_t>(i % 200 - 100);
    pack_s8_panels(src.data(), 17, 5, 5, out.data());
    std::size_t nonzero_padding = 0;
    for (std::size_t i = 0; i < 32; ++i)
        for (std::size_t j = 0; j < 8; ++j) {
            const std::int8_t v = out[s8_panel_offset(i, j, 8)];
            if (i < 17 && j < 5)
                CHECK(v == src[i * 5 + j]);
            else
                nonzero_padding += v != 0;
        }
    CHECK(nonzero_padding == 0);
}

TEST_CASE("gemv_s8_panels is bit-identical to the exact integer dot on every path") {
    // Integer sums are exact on every path (|P| <= 127, any t, D <= 65536), and
    // the float part is the same two multiplies, so every path must give the
    // bit pattern of the row-major reference. Rows around the 16-row panel and
    // the kernels' 64-row passes; depths 1..64 (padded to multiples of 4, odd
    // multiples included); the tables of every code width point at the kernel.
    const std::size_t rows_list[] = {0, 1, 15, 16, 17, 31, 48, 63, 64, 65, 80, 129, 11008};
    const std::size_t depths[] = {1, 3, 4, 8, 12, 16, 20, 28, 31, 32, 36, 44, 48, 52, 60, 64};
    kt::for_each_supported_isa([&](Isa isa) {
        for (int bits : kBits) CHECK(sk::table_for(isa, bits).gemv_s8_panels == sk::table_for(isa, 8).gemv_s8_panels);
        const auto& k = sk::table_for(isa, 8);
        for (std::size_t rows : rows_list)
            for (std::size_t depth : depths) {
                if (rows == 11008 && depth % 16 != 0) continue;  // the large case at a few depths suffices
                for (int extreme = 0; extreme < 4; ++extreme) {
                    if (extreme != 0 && (rows > 129 || depth % 4 != 0)) continue;
                    INFO("rows=" << rows << " depth=" << depth << " extreme=" << extreme);
                    const PanelCase c = panel_case(rows, depth, static_cast<unsigned>(rows * 131 + depth), extreme);
                    const float t_scale = 0.0123f;
                    const auto want = panel_expected(c, t_scale);
                    CHECK(run_panels(k, c, t_scale) == want);
                    CHECK(run_panels(sk::scalar::table(8), c, t_scale) == want);
                }
            }
    });
}

TEST_CASE("gemv_s8_panels keeps int32 sums exact at the largest depth") {
    // D = 65536 with P = +-127 and t = -128/127: |sum| = 127 * 128 * 65536 < 2^31;
    // with VNNI's offset form (P + 128) * t the partial sums come closest to int32's limit.
    const std::size_t rows = 17, depth = sparseinfer::detail::s8_panel_max_depth;
    kt::for_each_supported_isa([&](Isa isa) {
        for (int extreme = 1; extreme < 4; ++extreme) {
            INFO("extreme=" << extreme);
            const PanelCase c = panel_case(rows, depth, 3, extreme);
            const auto want = panel_expected(c, 1.0f);
            CHECK(std::fabs(want[0]) > 1e9f * c.scales()[0]);
            CHECK(run_panels(sk::table_for(isa, 8), c, 1.0f) == want);
        }
    });
}
