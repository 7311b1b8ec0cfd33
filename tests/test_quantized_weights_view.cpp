// Tests of <sparseinfer/quantized_weights_view.hpp>: zero-copy views over weights files.
#include <sparseinfer/quantized_weights_view.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "file_test_util.hpp"

namespace si = sparseinfer;
using file_test::make_weights;
using file_test::save_to_string;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Every kernel of the view gives bit-identical results to the owned matrix.
template <int Bits, class V>
void check_same_results(const si::QuantizedWeights<Bits>& w, const V& v) {
    REQUIRE(v.rows() == w.rows());
    REQUIRE(v.cols() == w.cols());
    REQUIRE(v.row_bytes() == w.row_bytes());
    const std::size_t rows = w.rows(), cols = w.cols();
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    std::vector<float> x(cols);
    for (auto& e : x) e = nd(rng);
    const auto xq = si::quantize_activations(x.data(), x.size());

    CHECK(same_bits(v.to_f32(), w.to_f32()));
    std::vector<float> a(cols), b(cols);
    for (std::size_t r = 0; r < rows; ++r) {
        w.dequantize_row(r, a.data());
        v.dequantize_row(r, b.data());
        CHECK(same_bits(a, b));
        const float fw = w.dot_row(r, x.data()), fv = v.dot_row(r, x.data());
        CHECK(std::memcmp(&fw, &fv, sizeof fw) == 0);
        const float qw = w.dot_row(r, xq), qv = v.dot_row(r, xq);
        CHECK(std::memcmp(&qw, &qv, sizeof qw) == 0);
    }
    std::vector<float> yw(rows), yv(rows);
    w.gemv(x.data(), yw.data());
    v.gemv(x.data(), yv.data());
    CHECK(same_bits(yw, yv));
    w.gemv(xq, yw.data());
    v.gemv(xq, yv.data());
    CHECK(same_bits(yw, yv));

    std::vector<std::uint32_t> sel;
    for (std::size_t r = rows; r-- > 0;)
        if (r % 2 == 0) sel.push_back(static_cast<std::uint32_t>(r));
    std::vector<float> sw(sel.size()), sv(sel.size());
    w.gemv_rows(sel.data(), sel.size(), x.data(), sw.data());
    v.gemv_rows(sel.data(), sel.size(), x.data(), sv.data());
    CHECK(same_bits(sw, sv));
    w.gemv_rows(sel.data(), sel.size(), xq, sw.data());
    v.gemv_rows(sel.data(), sel.size(), xq, sv.data());
    CHECK(same_bits(sw, sv));

    std::vector<float> coef(sel.size(), 0.5f), aw(cols, 1.0f), av(cols, 1.0f);
    w.axpy_rows(sel.data(), sel.size(), coef.data(), aw.data());
    v.axpy_rows(sel.data(), sel.size(), coef.data(), av.data());
    CHECK(same_bits(aw, av));

    std::vector<float> dw(sel.size() * cols), dv(sel.size() * cols);
    w.dequantize_rows(sel.data(), sel.size(), dw.data());
    v.dequantize_rows(sel.data(), sel.size(), dv.data());
    CHECK(same_bits(dw, dv));
}

template <int Bits>
void check_view_of_file(std::size_t rows, std::size_t cols, std::size_t gs, std::size_t misalign) {
    INFO("bits " << Bits << ", " << rows << "x" << cols << ", group " << gs << ", base offset " << misalign);
    const auto w = make_weights<Bits>(rows, cols, gs, static_cast<unsigned>(rows + cols));
    const std::string file = save_to_string(w);
    std::vector<std::uint8_t> buf(file.size() + 64);
    // Find a base with the wanted misalignment relative to 64 bytes.
    std::size_t shift = 0;
    while ((reinterpret_cast<std::uintptr_t>(buf.data() + shift) % 64) != misalign) ++shift;
    std::memcpy(buf.data() + shift, file.data(), file.size());
    const auto v = si::QuantizedWeightsView<Bits>::from_bytes(buf.data() + shift, file.size());
    CHECK(v.data() == buf.data() + shift + 64);  // no copy
    check_same_results(w, v);
}

}  // namespace

TEST_CASE("view kernels equal owned kernels exactly, aligned and unaligned") {
    for (std::size_t misalign : {0, 1, 3}) {
        check_view_of_file<2>(7, 100, 32, misalign);
        check_view_of_file<3>(7, 100, 64, misalign);
        check_view_of_file<4>(7, 100, 32, misalign);
        check_view_of_file<4>(3, 4096, 128, misalign);
        check_view_of_file<8>(5, 33, 32, misalign);
    }
}

TEST_CASE("a view of an owned matrix shares its bytes and saves the same file") {
    const auto w = make_weights<4>(4, 65, 64, 1);
    const si::QuantizedWeightsView<4> v(w);
    CHECK(v.data() == w.data());
    check_same_results(w, v);
    CHECK(save_to_string(v) == save_to_string(w));
}

TEST_CASE("a 1x1 matrix views and computes") {
    const float one = 0.75f;
    const auto w = si::QuantizedWeights<8>::from_f32(&one, 1, 1);
    const std::string f = save_to_string(w);
    const auto v = si::QuantizedWeightsView<8>::from_bytes(f.data(), f.size());
    float x = 2.0f, y = 0;
    v.gemv(&x, &y);
    CHECK(y == Approx(1.5f).epsilon(1e-6));
}

TEST_CASE("from_bytes rejects bad arguments and a type of another width") {
    CHECK_THROWS_AS(si::QuantizedWeightsView<4>::from_bytes(nullptr, 10), si::error);
    CHECK_THROWS_AS(si::QuantizedWeightsView<4>::from_bytes(nullptr, 0), si::format_error);
    const std::string f = save_to_string(make_weights<2>(2, 40, 32, 2));
    try {
        (void)si::QuantizedWeightsView<4>::from_bytes(f.data(), f.size());
        FAIL("accepted a 2-bit file as 4-bit");
    } catch (const si::format_error& e) {
        const std::string m = e.what();
        CHECK(m.find("2-bit") != std::string::npos);
        CHECK(m.find("byte offset 12") != std::string::npos);
    }
}

TEST_CASE("from_bytes needs the exact file size") {
    const std::string f = save_to_string(make_weights<4>(2, 40, 32, 4));
    std::string longer = f + std::string(3, '\0');
    try {
        (void)si::QuantizedWeightsView<4>::from_bytes(longer.data(), longer.size());
        FAIL("accepted trailing bytes");
    } catch (const si::format_error& e) {
        CHECK(std::string(e.what()).find("3 unexpected bytes") != std::string::npos);
        CHECK(std::string(e.what()).find("byte offset " + std::to_string(f.size())) != std::string::npos);
    }
    try {
        (void)si::QuantizedWeightsView<4>::from_bytes(f.data(), f.size() - 1);
        FAIL("accepted a truncated file");
    } catch (const si::format_error& e) {
        CHECK(std::string(e.what()).find("truncated") != std::string::npos);
    }
}

TEST_CASE("Verify::structure skips the payload, Verify::full checks it") {
    const auto w = make_weights<4>(3, 64, 32, 5);
    std::string f = save_to_string(w);
    f[64 + 20] = static_cast<char>(f[64 + 20] ^ 0x11);  // a code byte of row 0
    CHECK_THROWS_AS(si::QuantizedWeightsView<4>::from_bytes(f.data(), f.size()), si::format_error);
    const auto v = si::QuantizedWeightsView<4>::from_bytes(f.data(), f.size(), si::Verify::structure);
    CHECK(v.rows() == 3);
    std::vector<float> out(64);
    v.dequantize_row(0, out.data());  // runs; the numbers are whatever the bytes say
    // Header damage is still caught without the checksum pass.
    f[12] = 5;
    CHECK_THROWS_AS(si::QuantizedWeightsView<4>::from_bytes(f.data(), f.size(), si::Verify::structure),
                    si::format_error);
}

TEST_CASE("damaged-file corpus: from_bytes rejects every damaged file with format_error") {
    const std::string good = save_to_string(make_weights<4>(2, 40, 32, 6));
    auto rejected = [](const std::string& bytes, si::Verify verify) {
        return file_test::rejected([&] {
            // A fresh heap copy of exactly the bytes, so ASan sees any read past the end.
            std::vector<std::uint8_t> exact(bytes.begin(), bytes.end());
            const auto v = si::QuantizedWeightsView<4>::from_bytes(exact.data(), exact.size(), verify);
            // Accepted (possible without the checksum pass): the kernels must stay in bounds.
            std::vector<float> x(v.cols(), 1.0f), y(v.rows());
            v.gemv(x.data(), y.data());
            const auto xq = si::quantize_activations(x.data(), x.size());
            v.gemv(xq, y.data());
        });
    };
    REQUIRE_FALSE(rejected(good, si::Verify::full));
    CHECK(file_test::accepted_damaged_files(good, {7, 400, 24}, rejected) == 0);
}
