// Tests of <sparseinfer/kernels/dispatch.hpp> and <sparseinfer/kernels/isa.hpp>:
// choosing the path, SPARSEINFER_ISA parsing, and the public entry points
// against the scalar reference through whichever path is active.
#include <sparseinfer/kernels/dispatch.hpp>
#include <sparseinfer/quantized_weights.hpp>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "catch.hpp"
#include "kernel_test_util.hpp"

namespace sk = sparseinfer::kernels;
using sparseinfer::Isa;

namespace {

// Runs f with SPARSEINFER_ISA set to value (nullptr: unset), restoring it after.
template <class F>
void with_env(const char* value, F f) {
    const char* old = std::getenv("SPARSEINFER_ISA");
    const std::string saved = old ? old : "";
    if (value)
        setenv("SPARSEINFER_ISA", value, 1);
    else
        unsetenv("SPARSEINFER_ISA");
    f();
    if (old)
        setenv("SPARSEINFER_ISA", saved.c_str(), 1);
    else
        unsetenv("SPARSEINFER_ISA");
}

}  // namespace

TEST_CASE("path names round-trip and unknown names are errors") {
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512_vnni, Isa::neon, Isa::neon_dotprod})
        CHECK(sk::parse_isa(sparseinfer::isa_name(isa)) == isa);
    CHECK_THROWS_AS(sk::parse_isa("sse2"), sparseinfer::error);
    CHECK_THROWS_AS(sk::parse_isa("AVX2"), sparseinfer::error);
    CHECK_THROWS_AS(sk::parse_isa(""), sparseinfer::error);
    try {
        sk::parse_isa("avx1024");
        FAIL("no error");
    } catch (const sparseinfer::error& e) {
        CHECK(std::string(e.what()).find("avx1024") != std::string::npos);
        CHECK(std::string(e.what()).find("avx512_vnni") != std::string::npos);
    }
}

TEST_CASE("select_isa reads SPARSEINFER_ISA fresh and rejects what the CPU lacks") {
    const auto isas = sk::supported_isas();
    with_env(nullptr, [&] { CHECK(sk::select_isa() == sk::best_isa()); });
    with_env("", [&] { CHECK(sk::select_isa() == sk::best_isa()); });
    CHECK(sk::best_isa() == isas.back());
    for (Isa isa : isas) with_env(sparseinfer::isa_name(isa), [&] { CHECK(sk::select_isa() == isa); });
    with_env("bogus", [] { CHECK_THROWS_AS(sk::select_isa(), sparseinfer::error); });
    // A path this machine cannot run: an ARM one on x86 or an x86 one on ARM.
    for (Isa isa : {Isa::avx2, Isa::avx512, Isa::avx512_vnni, Isa::neon, Isa::neon_dotprod})
        if (!sk::isa_supported(isa)) {
            try {
                sk::select_isa(sparseinfer::isa_name(isa));
                FAIL("no error");
            } catch (const sparseinfer::error& e) {
                CHECK(std::string(e.what()).find("does not support") != std::string::npos);
            }
        }
}

TEST_CASE("the active path honours SPARSEINFER_ISA and is the best one otherwise") {
    const char* forced = std::getenv("SPARSEINFER_ISA");
    REQUIRE_NOTHROW(sk::init_kernels());
    if (forced && *forced)
        CHECK(std::string(sparseinfer::active_isa()) == forced);
    else
        CHECK(std::string(sparseinfer::active_isa()) == sparseinfer::isa_name(sk::best_isa()));
}

TEST_CASE("public entry points agree with the scalar reference") {
    for (int bits : {2, 3, 4, 8})
        for (std::size_t cols : {std::size_t{33}, std::size_t{4096}}) {
            INFO("bits=" << bits << " cols=" << cols);
            const auto m = kt::random_matrix(bits, 5, cols, 64, 42);
            const auto& l = m.layout;
            kt::Vec x(cols, 8);
            const auto xq = sparseinfer::quantize_activations(x.p, cols);
            const std::uint32_t rows[] = {4, 0, 4};
            std::vector<float> y(3), y8(3);
            sk::gemv_rows(l, m.data(), rows, 3, x.p, y.data());
            sk::gemv_rows(l, m.data(), rows, 3, xq, y8.data());
            for (int i = 0; i < 3; ++i) {
                const std::uint8_t* row = m.row(rows[i]);
                CHECK(std::fabs(y[i] - sk::scalar::dot_row(l, row, x.p)) <= kt::rel_tol * kt::float_scale(l, row, x.p));
                CHECK(std::fabs(y8[i] -
                                sk::scalar::dot_row_q8(l, row, xq.values.data(), xq.scales.data(), xq.sums.data())) <=
                      kt::rel_tol * kt::q8_scale(l, row, xq));
                CHECK(std::fabs(sk::dot_row(l, row, x.p) - y[i]) <= kt::rel_tol * kt::float_scale(l, row, x.p));
                CHECK(std::fabs(sk::dot_row(l, row, xq) - y8[i]) <= kt::rel_tol * kt::q8_scale(l, row, xq));
            }
            std::vector<float> w(cols), wr(cols);
            sk::dequantize_row(l, m.row(1), w.data());
            sk::scalar::dequantize_row(l, m.row(1), wr.data());
            for (std::size_t j = 0; j < cols; ++j) CHECK(std::fabs(w[j] - wr[j]) <= 1e-6f * (1 + std::fabs(wr[j])));
            const float a[] = {0.5f, -2.0f, 1.0f};
            std::vector<float> acc(cols, 1.0f), accr(cols, 1.0f);
            sk::axpy_rows(l, m.data(), rows, 3, a, acc.data());
            sk::scalar::axpy_rows(l, m.data(), rows, 3, a, accr.data());
            std::vector<std::vector<float>> wi(3, std::vector<float>(cols));
            for (int i = 0; i < 3; ++i) sk::scalar::dequantize_row(l, m.row(rows[i]), wi[i].data());
            for (std::size_t j = 0; j < cols; ++j) {
                double scale = std::fabs(accr[j]);  // |y| + sum_i |a_i| (|d q| + |m|)
                for (int i = 0; i < 3; ++i) {
                    double d, mn;
                    kt::params(l, m.row(rows[i]), j, d, mn);
                    scale += std::fabs(a[i]) * (std::fabs(wi[i][j] - mn) + std::fabs(mn));
                }
                CHECK(std::fabs(acc[j] - accr[j]) <= kt::rel_tol * scale);
            }
        }
}

// Run by .ci/steps/20-isa-paths.sh in a fresh process with SPARSEINFER_ISA=bogus
// (hidden otherwise: the process-wide choice is made once).
TEST_CASE("a bad SPARSEINFER_ISA is reported by every checked call, never by the raw kernels", "[.bad-env]") {
    const char* forced = std::getenv("SPARSEINFER_ISA");
    REQUIRE(forced != nullptr);
    REQUIRE_THROWS_AS(sk::select_isa(), sparseinfer::error);
    CHECK_THROWS_AS(sk::init_kernels(), sparseinfer::error);
    try {
        sk::init_kernels();
    } catch (const sparseinfer::error& e) {
        CHECK(std::string(e.what()).find(forced) != std::string::npos);
    }
    std::vector<float> w(4 * 64, 0.5f), x(64, 1.0f), y(4);
    const auto q = sparseinfer::QuantizedWeights<4>::from_f32(w.data(), 4, 64);
    CHECK_THROWS_AS(q.gemv(x.data(), y.data()), sparseinfer::error);
    CHECK_THROWS_AS(q.dot_row(0, x.data()), sparseinfer::error);
    CHECK_THROWS_AS(sparseinfer::quantize_activations(x.data(), x.size()), sparseinfer::error);
    // The raw noexcept kernels run the scalar reference instead of throwing.
    CHECK(std::string(sparseinfer::active_isa()) == "scalar");
    const float got = sk::dot_row(q.layout(), q.data(), x.data());
    CHECK(got == sk::scalar::dot_row(q.layout(), q.data(), x.data()));
}
