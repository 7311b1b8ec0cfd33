// Tests of the llama2c example engine (examples/llama2c).
//
// On the real stories260K checkpoint (skipped when ../shared/data is absent)
// the engine's float path must reproduce the published reference tokens and
// the 64 greedy tokens of an independent reference written here from the
// format description: its own file reader, double-precision arithmetic
// throughout, RoPE angles computed per (position, pair) in double.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../examples/llama2c/engine.hpp"
#include "catch.hpp"

namespace {

const std::string model_path = std::string(SPARSEINFER_TEST_DATA_DIR) + "/stories260K.bin";

bool model_present() { return std::ifstream(model_path, std::ios::binary).good(); }

/// Independent reference: reads the checkpoint into doubles and decodes greedily.
std::vector<int> reference_greedy(const std::string& path, int steps) {
    std::ifstream f(path, std::ios::binary);
    std::int32_t hd[7];
    f.read(reinterpret_cast<char*>(hd), sizeof hd);
    const int D = hd[0], H = hd[1], L = hd[2], NH = hd[3], NKV = hd[4], V = std::abs(hd[5]), S = hd[6];
    const int HS = D / NH, KV = D * NKV / NH;
    auto take = [&](std::size_t n) {
        std::vector<float> tmp(n);
        f.read(reinterpret_cast<char*>(tmp.data()), static_cast<std::streamsize>(n * sizeof(float)));
        return std::vector<double>(tmp.begin(), tmp.end());
    };
    const auto emb = take(std::size_t(V) * D), ra = take(std::size_t(L) * D), wq = take(std::size_t(L) * D * D),
               wk = take(std::size_t(L) * KV * D), wv = take(std::size_t(L) * KV * D),
               wo = take(std::size_t(L) * D * D), rf = take(std::size_t(L) * D), w1 = take(std::size_t(L) * H * D),
               w2 = take(std::size_t(L) * D * H), w3 = take(std::size_t(L) * H * D), rfin = take(std::size_t(D));
    REQUIRE(f.good());
    const std::vector<double>& cls = emb;  // stories260K shares the classifier (vocab > 0)
    REQUIRE(hd[5] > 0);

    // out = W[rows][cols] * in
    auto mv = [](const double* W, const std::vector<double>& in, int rows, int cols) {
        std::vector<double> out(static_cast<std::size_t>(rows), 0.0);
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < cols; ++c) out[r] += W[std::size_t(r) * cols + c] * in[c];
        return out;
    };
    auto norm = [&](const std::vector<double>& x, const double* w) {
        double ms = 0;
        for (double v : x) ms += v * v;
        ms = 1.0 / std::sqrt(ms / D + 1e-5);
        std::vector<double> o(x.size());
        for (int i = 0; i < D; ++i) o[i] = x[i] * ms * w[i];
        return o;
    };
    std::vector<std::vector<std::vector<double>>> kc(L), vc(L);  // [layer][pos][kv]
    std::vector<int> out;
    int tok = 1;
    for (int pos = 0; pos < steps; ++pos) {
        std::vector<double> x(emb.begin() + std::ptrdiff_t(tok) * D, emb.begin() + std::ptrdiff_t(tok + 1) * D);
        for (int l = 0; l < L; ++l) {
            auto xb = norm(x, &ra[std::size_t(l) * D]);
            auto q = mv(&wq[std::size_t(l) * D * D], xb, D, D);
            auto k = mv(&wk[std::size_t(l) * KV * D], xb, KV, D);
            auto v = mv(&wv[std::size_t(l) * KV * D], xb, KV, D);
            auto rotate = [&](std::vector<double>& vec) {
                for (std::size_t i = 0; i + 1 < vec.size(); i += 2) {
                    const double th = pos * std::pow(10000.0, -double(i % HS) / HS);
                    const double a = vec[i], b = vec[i + 1];
                    vec[i] = a * std::cos(th) - b * std::sin(th);
                    vec[i + 1] = a * std::sin(th) + b * std::cos(th);
                }
            };
            rotate(q);
            rotate(k);
            kc[l].push_back(k);
            vc[l].push_back(v);
            std::vector<double> att(static_cast<std::size_t>(D), 0.0);
            for (int h = 0; h < NH; ++h) {
                const int g = h / (NH / NKV);
                std::vector<double> sc;
                double mx = -1e300;
                for (int t = 0; t <= pos; ++t) {
                    double s = 0;
                    for (int i = 0; i < HS; ++i) s += q[h * HS + i] * kc[l][t][g * HS + i];
                    sc.push_back(s / std::sqrt(double(HS)));
                    mx = std::max(mx, sc.back());
                }
                double z = 0;
                for (double& s : sc) z += (s = std::exp(s - mx));
                for (int t = 0; t <= pos; ++t)
                    for (int i = 0; i < HS; ++i) att[h * HS + i] += sc[t] / z * vc[l][t][g * HS + i];
            }
            auto o = mv(&wo[std::size_t(l) * D * D], att, D, D);
            for (int i = 0; i < D; ++i) x[i] += o[i];
            xb = norm(x, &rf[std::size_t(l) * D]);
            auto a = mv(&w1[std::size_t(l) * H * D], xb, H, D);
            const auto b = mv(&w3[std::size_t(l) * H * D], xb, H, D);
            for (int i = 0; i < H; ++i) a[i] = a[i] / (1.0 + std::exp(-a[i])) * b[i];
            const auto y = mv(&w2[std::size_t(l) * D * H], a, D, H);
            for (int i = 0; i < D; ++i) x[i] += y[i];
        }
        const auto logits = mv(cls.data(), norm(x, rfin.data()), V, D);
        tok = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        out.push_back(tok);
    }
    (void)S;
    return out;
}

}  // namespace

TEST_CASE("the float path reproduces the reference tokens and an independent double reference") {
    if (!model_present()) {
        WARN("skipped: " << model_path << " is absent");
        return;
    }
    const llama2c::Model m = llama2c::load_checkpoint(model_path);
    llama2c::Engine engine(m, llama2c::EngineOptions{});
    const std::vector<int> got = engine.generate(64);
    const int published[16] = {461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283, 264};
    for (int i = 0; i < 16; ++i) CHECK(got[static_cast<std::size_t>(i)] == published[i]);
    const std::vector<int> ref = reference_greedy(model_path, 64);
    REQUIRE(ref.size() == 64);
    for (std::size_t i = 0; i < 64; ++i) {
        INFO("position " << i);
        CHECK(got[i] == ref[i]);
    }
}

TEST_CASE("8-bit FFN weights keep the real model's next-token distributions") {
    if (!model_present()) {
        WARN("skipped: " << model_path << " is absent");
        return;
    }
    const llama2c::Model m = llama2c::load_checkpoint(model_path);
    llama2c::EngineOptions o;
    o.bits = 8;
    const llama2c::Fidelity f = llama2c::compare(m, o, 128);
    CHECK(f.top1 >= 0.95);
    CHECK(f.kld <= 0.01);
    // The float path against itself is exact.
    const llama2c::Fidelity same = llama2c::compare(m, llama2c::EngineOptions{}, 32);
    CHECK(same.kld == Approx(0.0).margin(1e-12));
    CHECK(same.top1 == 1.0);
}

TEST_CASE("every configuration runs on the synthetic model; active 1 via a full gate selection equals dense") {
    const llama2c::Model m = llama2c::synthetic_model();
    for (int bits : {32, 8, 4, 3, 2})
        for (double active : {1.0, 0.5, 0.1})
            for (auto sel : {llama2c::Selector::gate, llama2c::Selector::predictor}) {
                llama2c::EngineOptions o;
                o.bits = bits;
                o.active = active;
                o.selector = sel;
                o.budget = 0.3;
                o.policy = "lru";
                llama2c::Engine e(m, o);
                const std::vector<int> t = e.generate(8);
                CHECK(t.size() == 8);
                CHECK(e.active_share() == Approx(std::ceil(active * 172 - 1e-9) / 172).margin(1e-9));
                CHECK(e.bytes_per_token() > 0);
            }
    // Dense 8-bit vs float on the synthetic model: the same greedy tokens are not guaranteed,
    // but the distributions must be close.
    llama2c::EngineOptions o8;
    o8.bits = 8;
    CHECK(llama2c::compare(m, o8, 16).kld < 0.05);
}

namespace {

/// Tokens from layers quantized at start, then from the model file those layers were saved to.
void check_saved_ffn(const llama2c::Model& m, llama2c::EngineOptions o, int steps) {
    INFO("bits " << o.bits << ", active " << o.active);
    const std::string path =
        (std::filesystem::temp_directory_path() / ("sparseinfer_test_llama2c_" + std::to_string(o.bits) + "_" +
                                                   std::to_string(std::random_device{}()) + ".sitf"))
            .string();
    std::vector<int> at_start;
    {
        llama2c::Engine quantized(m, o);
        quantized.save_ffn(path);
        at_start = quantized.generate(steps);
    }
    o.ffn_file = path;
    {
        llama2c::Engine mapped(m, o);
        const std::vector<int> from_file = mapped.generate(steps);
        REQUIRE(from_file.size() == at_start.size());
        for (std::size_t i = 0; i < at_start.size(); ++i) {
            INFO("position " << i);
            CHECK(from_file[i] == at_start[i]);
        }
        // A file of another width is refused, naming the widths.
        llama2c::EngineOptions other = o;
        other.bits = o.bits == 8 ? 4 : 8;
        CHECK_THROWS_WITH(llama2c::Engine(m, other), Catch::Contains("-bit"));
    }
    std::filesystem::remove(path);
}

}  // namespace

TEST_CASE("--save then --ffn: the same greedy tokens as quantizing at start, 8 and 4 bits") {
    const llama2c::Model synthetic = llama2c::synthetic_model();
    for (int bits : {8, 4}) {
        llama2c::EngineOptions o;
        o.bits = bits;
        check_saved_ffn(synthetic, o, 16);
        o.active = 0.3;  // gate-first sparse, with a slot store
        o.budget = 0.2;
        check_saved_ffn(synthetic, o, 16);
    }
    if (!model_present()) {
        WARN("skipped on the real model: " << model_path << " is absent");
        return;
    }
    const llama2c::Model m = llama2c::load_checkpoint(model_path);
    for (int bits : {8, 4}) {
        llama2c::EngineOptions o;
        o.bits = bits;
        check_saved_ffn(m, o, 64);
    }
}

TEST_CASE("bad engine options are rejected with a message") {
    llama2c::EngineOptions o;
    o.bits = 5;
    CHECK_THROWS_AS(llama2c::validate(o), std::invalid_argument);
    o = {};
    o.active = 0;
    CHECK_THROWS_AS(llama2c::validate(o), std::invalid_argument);
    o = {};
    o.budget = 2;
    CHECK_THROWS_AS(llama2c::validate(o), std::invalid_argument);
    o = {};
    o.policy = "mru";
    CHECK_THROWS_WITH(llama2c::validate(o), Catch::Contains("--policy"));
    CHECK_THROWS_AS(llama2c::load_checkpoint("/nonexistent/model.bin"), std::runtime_error);
    o = {};
    o.ffn_file = "model.sitf";  // a model file holds quantized layers
    CHECK_THROWS_WITH(llama2c::validate(o), Catch::Contains("--ffn"));
}
