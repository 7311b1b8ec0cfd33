// Tests of <sparseinfer/model_file.hpp>: a model's layers written under their
// names, mapped back, and every layer from the file computing exactly what the
// layer it was written from computes.
#include <sparseinfer/mapped_file.hpp>
#include <sparseinfer/model_file.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"

namespace si = sparseinfer;

namespace {

std::vector<float> normal(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.2f);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

std::string temp_path(const std::string& tag) {
    return (std::filesystem::temp_directory_path() /
            ("sparseinfer_test_model_" + tag + "_" + std::to_string(std::random_device{}()) + ".sitf"))
        .string();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("tensor names follow the documented scheme") {
    CHECK(si::ffn_tensor_name(0, si::FfnMatrix::gate) == "layers.0.ffn.gate");
    CHECK(si::ffn_tensor_name(12, si::FfnMatrix::up) == "layers.12.ffn.up");
    CHECK(si::ffn_tensor_name(3, si::FfnMatrix::down) == "layers.3.ffn.down_t");
}

TEST_CASE("a model file round-trips every layer bit for bit, gated or not") {
    const std::size_t d = 64, h = 96, layers = 3;
    for (bool gated : {true, false}) {
        INFO((gated ? "gated" : "plain MLP"));
        std::vector<si::SparseFfn<4>> original;
        for (std::size_t l = 0; l < layers; ++l) {
            const auto g = normal(h * d, 10 + l), u = normal(h * d, 20 + l), dn = normal(d * h, 30 + l);
            original.emplace_back(gated ? g.data() : nullptr, u.data(), dn.data(), d, h, si::Activation::silu);
        }
        si::TensorFileWriter out;
        for (std::size_t l = 0; l < layers; ++l) si::add_ffn_layer(out, l, original[l]);
        const auto extra = si::QuantizedWeights<8>::from_f32(normal(32, 1).data(), 1, 32);
        out.add("engine.something_else", extra);  // other tensors may sit beside the layers
        const std::string path = temp_path(gated ? "gated" : "mlp");
        out.write(path);
        {
            si::MappedFile file(path);
            const auto tf = si::TensorFile::from_bytes(file.data(), file.size());
            REQUIRE(si::ffn_layer_count(tf) == layers);
            const auto x = normal(d, 99);
            for (std::size_t l = 0; l < layers; ++l) {
                auto from_file = si::ffn_layer_from<4>(tf, l, si::Activation::silu);
                CHECK(from_file.gated() == gated);
                CHECK(from_file.matrix_data(si::FfnMatrix::up) ==
                      tf.view<4>(si::ffn_tensor_name(l, si::FfnMatrix::up)).data());  // read in place
                std::vector<float> want(d), got(d);
                original[l].forward_dense(x.data(), want.data());
                from_file.forward_dense(x.data(), got.data());
                CHECK(same_bits(want, got));
            }
            CHECK_THROWS_WITH(si::ffn_layer_from<4>(tf, layers, si::Activation::silu),
                              Catch::Contains("no layer 3") && Catch::Contains("layers.3.ffn.up"));
            CHECK_THROWS_WITH(si::ffn_layer_from<8>(tf, 0, si::Activation::silu), Catch::Contains("not 8-bit"));
        }
        std::filesystem::remove(path);
    }
}

TEST_CASE("a layer missing its down matrix is named in the error") {
    const auto u = si::QuantizedWeights<4>::from_f32(normal(4 * 32, 2).data(), 4, 32);
    si::TensorFileWriter out;
    out.add(si::ffn_tensor_name(0, si::FfnMatrix::up), u);
    const std::string path = temp_path("nodown");
    out.write(path);
    {
        si::MappedFile file(path);
        const auto tf = si::TensorFile::from_bytes(file.data(), file.size());
        CHECK(si::ffn_layer_count(tf) == 1);
        CHECK_THROWS_WITH(si::ffn_layer_from<4>(tf, 0, si::Activation::relu), Catch::Contains("layers.0.ffn.down_t"));
    }
    std::filesystem::remove(path);
}
