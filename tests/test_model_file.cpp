// Tests of <sparseinfer/model_file.hpp>: a model's layers written under their
// names, mapped back, and every layer from the file computing exactly what the
// layer it was written from computes.
#include <sparseinfer/mapped_file.hpp>
#include <sparseinfer/model_file.hpp>
#include <sparseinfer/predictor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
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

TEST_CASE("predictor tensor names follow the documented scheme") {
    CHECK(si::predictor_tensor_name(0, si::PredictorPart::q) == "layers.0.predictor.q");
    CHECK(si::predictor_tensor_name(7, si::PredictorPart::p_panels) == "layers.7.predictor.p_panels");
    CHECK(si::predictor_tensor_name(10, si::PredictorPart::p_scales) == "layers.10.predictor.p_scales");
    CHECK(si::predictor_tensor_name(2, si::PredictorPart::sigma) == "layers.2.predictor.sigma");
}

TEST_CASE("predictors saved beside their layers are rebuilt from views, bit for bit") {
    // hidden 40: not a multiple of the panels' 16 rows; rank 6: not a multiple of 4.
    const std::size_t d = 64, h = 40, layers = 2, rank = 6, k = 8, checks = 10;
    std::vector<si::SparseFfn<4>> ffn;
    std::vector<si::LowRankPredictor> pred;
    std::vector<std::vector<float>> gates;
    for (std::size_t l = 0; l < layers; ++l) {
        gates.push_back(normal(h * d, 40 + l));
        const auto u = normal(h * d, 50 + l), dn = normal(d * h, 60 + l);
        ffn.emplace_back(gates[l].data(), u.data(), dn.data(), d, h, si::Activation::silu);
        pred.push_back(si::LowRankPredictor::from_gate(gates[l].data(), h, d, {rank}));
        pred.back().quantize();
    }
    si::TensorFileWriter out;
    for (std::size_t l = 0; l < layers; ++l) {
        si::add_ffn_layer(out, l, ffn[l]);
        if (l == 0) si::add_predictor(out, l, pred[l].factors());  // layer 1 has none: predictors are optional
    }
    const std::string path = temp_path("predictor");
    out.write(path);
    {
        si::MappedFile file(path);
        const auto tf = si::TensorFile::from_bytes(file.data(), file.size());
        REQUIRE(si::ffn_layer_count(tf) == layers);
        CHECK(si::has_predictor(tf, 0));
        CHECK_FALSE(si::has_predictor(tf, 1));
        CHECK_THROWS_WITH(si::predictor_from(tf, 1), Catch::Contains("no tensor 'layers.1.predictor.q'"));
        const si::PredictorFactors f = si::predictor_from(tf, 0);
        CHECK(reinterpret_cast<const std::uint8_t*>(f.p_panels) ==
              tf.array<std::int8_t>("layers.0.predictor.p_panels").bytes());  // read in place
        CHECK(f.q.data() == tf.view<8>("layers.0.predictor.q").data());
        auto v = si::LowRankPredictor::from_views(f);
        CHECK(v.error_scale() == pred[0].error_scale());
        auto layer = si::ffn_layer_from<4>(tf, 0, si::Activation::silu);
        for (unsigned t = 0; t < 5; ++t) {
            const auto x = normal(d, 200 + t);
            const auto xq = si::quantize_activations(x.data(), d);
            std::vector<float> a(h), b(h);
            pred[0].scores(xq, si::Activation::silu, a.data());
            v.scores(xq, si::Activation::silu, b.data());
            CHECK(same_bits(a, b));
            auto gate = [&](si::SparseFfn<4>& ffn_l) {
                return [&ffn_l, &xq](const std::uint32_t* ids, std::size_t m, float* pre) {
                    si::kernels::gemv_rows(ffn_l.layout(), ffn_l.matrix_data(si::FfnMatrix::gate), ids, m, xq, pre);
                };
            };
            std::vector<std::uint32_t> sa(h), sb(h);
            const std::size_t na =
                pred[0].select_top_k_checked(xq, si::Activation::silu, k, checks, gate(ffn[0]), sa.data());
            const std::size_t nb = v.select_top_k_checked(xq, si::Activation::silu, k, checks, gate(layer), sb.data());
            REQUIRE(na == nb);
            CHECK(std::equal(sa.begin(), sa.begin() + na, sb.begin()));
        }
    }
    std::filesystem::remove(path);
}

TEST_CASE("a stored predictor whose parts are missing, of the wrong kind or size is named in a format_error") {
    const std::size_t d = 32, h = 20;
    const auto g = normal(h * d, 3), u = normal(h * d, 4), dn = normal(d * h, 5);
    si::SparseFfn<8> ffn(g.data(), u.data(), dn.data(), d, h, si::Activation::silu);
    auto pred = si::LowRankPredictor::from_gate(g.data(), h, d, {4});
    pred.quantize();
    const si::PredictorFactors f = pred.factors();
    // Writes the layer and the predictor's parts, `edit` changing them first; returns predictor_from's error.
    auto error_of = [&](auto edit) -> std::string {
        si::PredictorFactors e = f;
        si::TensorFileWriter out;
        si::add_ffn_layer(out, 0, ffn);
        std::vector<float> scales = e.p_scales, sigma = e.error_scale;
        std::size_t panel_bytes = e.p_panel_bytes;
        const si::QuantizedWeightsView<8>* q = &e.q;
        const auto q4 = si::QuantizedWeights<4>::from_f32(pred.Q().data(), pred.rank(), d);
        edit(scales, sigma, panel_bytes, q, q4, out);
        if (q != nullptr) out.add(si::predictor_tensor_name(0, si::PredictorPart::q), *q);
        if (panel_bytes != 0)
            out.add_array(si::predictor_tensor_name(0, si::PredictorPart::p_panels), e.p_panels, panel_bytes);
        if (!scales.empty())
            out.add_array(si::predictor_tensor_name(0, si::PredictorPart::p_scales), scales.data(), scales.size());
        if (!sigma.empty())
            out.add_array(si::predictor_tensor_name(0, si::PredictorPart::sigma), sigma.data(), sigma.size());
        std::ostringstream os;
        out.write(os);
        const std::string bytes = os.str();
        const auto tf = si::TensorFile::from_bytes(bytes.data(), bytes.size());
        try {
            (void)si::LowRankPredictor::from_views(si::predictor_from(tf, 0));
        } catch (const si::format_error& err) {
            return err.what();
        }
        return "";
    };
    using V = std::vector<float>;
    using Q = const si::QuantizedWeightsView<8>*;
    using Q4 = si::QuantizedWeights<4>;
    CHECK(error_of([](V&, V&, std::size_t&, Q&, const Q4&, si::TensorFileWriter&) {}).empty());
    CHECK_THAT(error_of([](V&, V& sigma, std::size_t&, Q&, const Q4&, si::TensorFileWriter&) { sigma.clear(); }),
               Catch::Contains("layer 0's predictor") && Catch::Contains("no tensor 'layers.0.predictor.sigma'"));
    CHECK_THAT(error_of([](V&, V& sigma, std::size_t&, Q&, const Q4&, si::TensorFileWriter&) { sigma.pop_back(); }),
               Catch::Contains("'layers.0.predictor.sigma' holds 19 values"));
    CHECK_THAT(error_of([](V&, V&, std::size_t& n, Q&, const Q4&, si::TensorFileWriter&) { n -= 4; }),
               Catch::Contains("'layers.0.predictor.p_panels' holds") && Catch::Contains("in panels of 16"));
    CHECK_THAT(
        error_of([](V& s, V& sigma, std::size_t& n, Q&, const Q4&, si::TensorFileWriter&) {
            s.resize(16);
            sigma.resize(16);
            n = 16 * 4;
        }),
        Catch::Contains("predicts 16 neurons from 32 inputs") && Catch::Contains("'layers.0.ffn.up' is 20 x 32"));
    CHECK_THAT(error_of([](V&, V&, std::size_t&, Q& q, const Q4& q4, si::TensorFileWriter& out) {
                   q = nullptr;
                   out.add(si::predictor_tensor_name(0, si::PredictorPart::q), q4);
               }),
               Catch::Contains("'layers.0.predictor.q' is a 4-bit matrix; expected an 8-bit matrix"));
    CHECK_THAT(error_of([](V& s, V&, std::size_t&, Q&, const Q4&, si::TensorFileWriter&) {
                   s[3] = std::numeric_limits<float>::infinity();
               }),
               Catch::Contains("scale of row 3"));
    CHECK_THAT(error_of([](V&, V&, std::size_t& n, Q&, const Q4&, si::TensorFileWriter& out) {
                   static const std::vector<float> as_floats(4, 0.0f);
                   n = 0;
                   out.add_array(si::predictor_tensor_name(0, si::PredictorPart::p_panels), as_floats.data(), 4);
               }),
               Catch::Contains("'layers.0.predictor.p_panels' is an array of float32; expected an array of int8"));
}

TEST_CASE("cache profiles saved beside their layers load count for count") {
    namespace policy = si::policy;
    // 97 neurons (not a multiple of 8), a skewed random trace.
    const std::size_t neurons = 97, tokens = 300;
    si::NeuronCache<policy::Lru> recorded(neurons, {10});
    std::mt19937 rng(3);
    std::uniform_int_distribution<std::uint32_t> any(0, neurons - 1);
    for (std::size_t t = 0; t < tokens; ++t) {
        std::vector<std::uint32_t> active;
        for (std::uint32_t n = 0; n < neurons; ++n)
            if (any(rng) < (n % 7 == 0 ? 80u : 10u)) active.push_back(n);
        recorded.record_activations(active);
    }
    si::TensorFileWriter out;
    si::add_cache_profile(out, 0, recorded);  // layer 1 has none: profiles are optional
    out.add_array("layers.2.cache.profile", std::vector<float>{1.0f, 2.0f}.data(), 2);  // the wrong kind
    const std::string path = temp_path("profile");
    out.write(path);
    {
        si::MappedFile file(path);
        const auto tf = si::TensorFile::from_bytes(file.data(), file.size());
        CHECK(si::cache_profile_tensor_name(0) == "layers.0.cache.profile");
        CHECK(si::has_cache_profile(tf, 0));
        CHECK_FALSE(si::has_cache_profile(tf, 1));
        // Loaded from the file, the counts are the recorded ones, and a static
        // set placed from them is the one placed from the recording's own profile.
        si::NeuronCache<policy::StaticProfile> from_file(neurons, {10}), from_stream(neurons, {10});
        si::load_cache_profile(tf, 0, from_file);
        std::stringstream saved;
        recorded.save_profile(saved);
        from_stream.load_profile(saved);
        CHECK(from_file.total_activations() == tokens);
        for (std::uint32_t n = 0; n < neurons; ++n) {
            INFO("neuron " << n);
            CHECK(from_file.activation_count(n) == recorded.activation_count(n));
        }
        CHECK(from_file.hot_first_order() == recorded.hot_first_order());
        CHECK(from_file.stats().num_hot == 10);  // the static set, placed on loading
        CHECK(from_stream.stats().num_hot == 10);
        // Missing, of the wrong kind, or for another number of neurons: named errors, the cache unchanged.
        CHECK_THROWS_WITH(si::load_cache_profile(tf, 1, from_file),
                          Catch::Contains("no tensor 'layers.1.cache.profile'"));
        CHECK_THROWS_WITH(si::load_cache_profile(tf, 2, from_file),
                          Catch::Contains("'layers.2.cache.profile' is not an int8 array"));
        si::NeuronCache<policy::Lru> other(neurons + 1, {10});
        CHECK_THROWS_WITH(si::load_cache_profile(tf, 0, other),
                          Catch::Contains("'layers.0.cache.profile'") && Catch::Contains("num_neurons 97"));
        CHECK(other.total_activations() == 0);
    }
    // A profile byte changed in the file: the profile's checksum catches it.
    std::vector<char> bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::remove(path.c_str());
    const char magic[] = "SINCPROF";
    const auto at = std::search(bytes.begin(), bytes.end(), magic, magic + 8);
    REQUIRE(at != bytes.end());
    at[48 + 8 * 5] ^= 1;  // neuron 5's count
    const auto tf = si::TensorFile::from_bytes(bytes.data(), bytes.size(), si::Verify::structure);
    si::NeuronCache<policy::Lru> c(neurons, {10});
    CHECK_THROWS_AS(si::load_cache_profile(tf, 0, c), si::format_error);
    CHECK(c.total_activations() == 0);
}
