// Tests of the llama2c example engine on GGUF files (examples/llama2c/gguf_model.hpp).
//
// The exported file is read back twice: through the engine's loader, and
// field by field through sparseinfer::GgufFile, so a shape or name written
// wrong is caught even when the loader agrees with the writer. Malformed
// files are written here with GgufWriter directly, independent of the
// engine's exporter.
//
// On the real stories260K checkpoint (skipped when ../shared/data is absent):
// checkpoint -> GGUF F32 -> the same 64 greedy tokens; Q8_0 FFN matrices
// within the engine's 8-bit bar (KL <= 0.01, top-1 >= 0.95 over 128
// positions, as in test_llama2c.cpp); every matrix Q8_0, and Q4_0, measured.
#include <sparseinfer/gguf.hpp>
#include <sparseinfer/gguf_writer.hpp>
#include <sparseinfer/mapped_file.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../examples/llama2c/gguf_model.hpp"
#include "catch.hpp"

namespace si = sparseinfer;
namespace fs = std::filesystem;

namespace {

const std::string model_path = std::string(SPARSEINFER_TEST_DATA_DIR) + "/stories260K.bin";

bool model_present() {
    if (std::ifstream(model_path, std::ios::binary).good()) return true;
    WARN("skipped: " << model_path << " is absent");
    return false;
}

/// A file name in the temporary directory, removed at scope exit.
struct TempFile {
    std::string path;
    explicit TempFile(const std::string& name)
        : path((fs::temp_directory_path() / ("sparseinfer_llama2c_gguf_" + name)).string()) {}
    ~TempFile() {
        std::error_code ec;
        fs::remove(path, ec);
    }
};

std::uint32_t bits_of(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

/// Number of positions where two float arrays differ in any bit.
std::size_t differing(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return std::max(a.size(), b.size());
    std::size_t n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) n += bits_of(a[i]) != bits_of(b[i]);
    return n;
}

void check_same_weights(const llama2c::Model& a, const llama2c::Model& b) {
    CHECK(a.config.dim == b.config.dim);
    CHECK(a.config.hidden_dim == b.config.hidden_dim);
    CHECK(a.config.n_layers == b.config.n_layers);
    CHECK(a.config.n_heads == b.config.n_heads);
    CHECK(a.config.n_kv_heads == b.config.n_kv_heads);
    CHECK(a.config.vocab_size == b.config.vocab_size);
    CHECK(a.config.seq_len == b.config.seq_len);
    CHECK(a.config.shared_classifier == b.config.shared_classifier);
    CHECK(a.config.rope_theta == b.config.rope_theta);
    CHECK(a.config.norm_eps == b.config.norm_eps);
    CHECK(differing(a.token_embedding, b.token_embedding) == 0);
    CHECK(differing(a.rms_att, b.rms_att) == 0);
    CHECK(differing(a.wq, b.wq) == 0);
    CHECK(differing(a.wk, b.wk) == 0);
    CHECK(differing(a.wv, b.wv) == 0);
    CHECK(differing(a.wo, b.wo) == 0);
    CHECK(differing(a.rms_ffn, b.rms_ffn) == 0);
    CHECK(differing(a.w1, b.w1) == 0);
    CHECK(differing(a.w2, b.w2) == 0);
    CHECK(differing(a.w3, b.w3) == 0);
    CHECK(differing(a.rms_final, b.rms_final) == 0);
    CHECK(differing(a.classifier, b.classifier) == 0);
}

/// The synthetic model with a separate classifier (so output.weight is exercised too).
llama2c::Model synthetic_unshared() {
    llama2c::Model m = llama2c::synthetic_model(7);
    m.config.shared_classifier = false;
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& v : m.classifier) v = nd(rng);
    return m;
}

struct Mapped {
    si::MappedFile file;
    si::GgufFile gguf;
    explicit Mapped(const std::string& path) : file(path), gguf(si::GgufFile::from_file(file)) {}
};

/// Writes a LLaMA GGUF of the synthetic model by hand (not with export_gguf),
/// letting a test drop or reshape one tensor or metadata key.
struct HandWritten {
    std::string skip_tensor, skip_key, reshape_tensor;
    std::function<void(si::GgufWriter&)> extra;

    void write(const llama2c::Model& m, const std::string& path) const {
        const llama2c::Config& c = m.config;
        si::GgufWriter w;
        auto u32 = [&](const std::string& key, int v) {
            if (key != skip_key) w.set(key, static_cast<std::uint32_t>(v));
        };
        if (skip_key != "general.architecture") w.set("general.architecture", "llama");
        u32("llama.context_length", c.seq_len);
        u32("llama.embedding_length", c.dim);
        u32("llama.block_count", c.n_layers);
        u32("llama.feed_forward_length", c.hidden_dim);
        u32("llama.attention.head_count", c.n_heads);
        u32("llama.attention.head_count_kv", c.n_kv_heads);
        const std::size_t d = 64, hd = 172, kv = 32, V = 512;
        auto add = [&](const std::string& name, const float* p, std::size_t rows, std::size_t cols) {
            if (name == skip_tensor) return;
            if (name == reshape_tensor) {  // the same values, one row fewer
                w.add(name, p, rows - 1, cols, si::GgmlType::f32);
                return;
            }
            w.add(name, p, rows, cols, si::GgmlType::f32);
        };
        add("token_embd.weight", m.token_embedding.data(), V, d);
        add("output_norm.weight", m.rms_final.data(), 1, d);
        for (int l = 0; l < c.n_layers; ++l) {
            const std::size_t L = static_cast<std::size_t>(l);
            auto name = [&](const char* part) { return "blk." + std::to_string(l) + "." + part + ".weight"; };
            add(name("attn_norm"), m.rms_att.data() + L * d, 1, d);
            add(name("attn_q"), m.wq.data() + L * d * d, d, d);
            add(name("attn_k"), m.wk.data() + L * kv * d, kv, d);
            add(name("attn_v"), m.wv.data() + L * kv * d, kv, d);
            add(name("attn_output"), m.wo.data() + L * d * d, d, d);
            add(name("ffn_norm"), m.rms_ffn.data() + L * d, 1, d);
            add(name("ffn_gate"), m.gate(l), hd, d);
            add(name("ffn_up"), m.up(l), hd, d);
            add(name("ffn_down"), m.down(l), d, hd);
        }
        if (extra) extra(w);
        w.write(path);
    }
};

std::string load_error(const std::string& path) {
    try {
        (void)llama2c::load_gguf(path);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("type names, file detection and the F16 fallback for rows that are not whole blocks") {
    CHECK(llama2c::parse_gguf_type("q8_0") == si::GgmlType::q8_0);
    CHECK(llama2c::parse_gguf_type("q4_0") == si::GgmlType::q4_0);
    CHECK(llama2c::parse_gguf_type("f32") == si::GgmlType::f32);
    CHECK_THROWS_WITH(llama2c::parse_gguf_type("q4_1"), Catch::Contains("--gguf-type"));
    CHECK(llama2c::stored_type(si::GgmlType::q4_0, 64) == si::GgmlType::q4_0);
    CHECK(llama2c::stored_type(si::GgmlType::q8_0, 172) == si::GgmlType::f16);
    CHECK(llama2c::stored_type(si::GgmlType::f32, 172) == si::GgmlType::f32);
    CHECK(llama2c::block_tensor(3, "ffn_down_t") == "blk.3.ffn_down_t.weight");
    CHECK_FALSE(llama2c::is_gguf_file("/nonexistent/model.gguf"));
}

TEST_CASE("F32 export: llama.cpp's names, shapes, types and metadata, read field by field") {
    const llama2c::Model m = synthetic_unshared();
    TempFile f("layout.gguf");
    llama2c::export_gguf(m, f.path);
    REQUIRE(llama2c::is_gguf_file(f.path));
    const Mapped mapped(f.path);
    const si::GgufFile& g = mapped.gguf;
    CHECK(g.metadata_string("general.architecture") == std::optional<std::string_view>("llama"));
    CHECK(g.metadata_uint("llama.embedding_length") == 64u);
    CHECK(g.metadata_uint("llama.feed_forward_length") == 172u);
    CHECK(g.metadata_uint("llama.block_count") == 5u);
    CHECK(g.metadata_uint("llama.attention.head_count") == 8u);
    CHECK(g.metadata_uint("llama.attention.head_count_kv") == 4u);
    CHECK(g.metadata_uint("llama.context_length") == 512u);
    CHECK(g.metadata_uint("llama.rope.dimension_count") == 8u);  // head size 64 / 8
    CHECK(g.metadata_float("llama.rope.freq_base") == 10000.0);
    CHECK(g.metadata_float("llama.attention.layer_norm_rms_epsilon") == Approx(1e-5).epsilon(1e-6));
    CHECK(g.metadata_uint("general.file_type") == 0u);
    // 2 + 1 (output) + 5 blocks of 9
    CHECK(g.size() == 48);
    struct Expect {
        const char* name;
        std::uint64_t ne0, ne1;
    };
    for (const Expect& e : {Expect{"token_embd.weight", 64, 512}, Expect{"output.weight", 64, 512},
                            Expect{"output_norm.weight", 64, 1}, Expect{"blk.4.attn_q.weight", 64, 64},
                            Expect{"blk.4.attn_k.weight", 64, 32}, Expect{"blk.4.attn_v.weight", 64, 32},
                            Expect{"blk.4.attn_output.weight", 64, 64}, Expect{"blk.4.attn_norm.weight", 64, 1},
                            Expect{"blk.4.ffn_norm.weight", 64, 1}, Expect{"blk.4.ffn_gate.weight", 64, 172},
                            Expect{"blk.4.ffn_up.weight", 64, 172}, Expect{"blk.4.ffn_down.weight", 172, 64}}) {
        INFO(e.name);
        const si::GgufTensor* t = g.find(e.name);
        REQUIRE(t != nullptr);
        CHECK(t->type == si::GgmlType::f32);
        CHECK(t->ne[0] == e.ne0);
        CHECK(t->ne[1] == e.ne1);
    }
    // ffn_down holds a row per output: element (r, i) is down[r][i] of the checkpoint, unpermuted;
    // attn_q likewise (no RoPE permutation).
    const auto down = g.dequantize(*g.find("blk.2.ffn_down.weight"));
    CHECK(differing(down, std::vector<float>(m.down(2), m.down(2) + 64 * 172)) == 0);
    const auto q = g.dequantize(*g.find("blk.1.attn_q.weight"));
    CHECK(differing(q, std::vector<float>(m.wq.begin() + 64 * 64, m.wq.begin() + 2 * 64 * 64)) == 0);
}

TEST_CASE("F32 round trip: every weight bit for bit, the same tokens; a shared classifier stays shared") {
    for (bool shared : {true, false}) {
        INFO("shared classifier " << shared);
        const llama2c::Model m = shared ? llama2c::synthetic_model(3) : synthetic_unshared();
        TempFile f("roundtrip.gguf");
        llama2c::export_gguf(m, f.path);
        const llama2c::GgufModel g = llama2c::load_gguf(f.path);
        CHECK_FALSE(g.down_transposed);
        CHECK(g.predictors.empty());
        CHECK(g.vocabulary.pieces.empty());
        check_same_weights(m, g.model);
        if (shared) CHECK(Mapped(f.path).gguf.find("output.weight") == nullptr);
        llama2c::Engine a(m, {}), b(g.model, {});
        CHECK(a.generate(32) == b.generate(32));
    }
}

TEST_CASE("Q8_0 and Q4_0 exports: matrices in the type, norms F32, the 172-wide ffn_down F16; values near") {
    const llama2c::Model m = llama2c::synthetic_model(5);
    for (si::GgmlType type : {si::GgmlType::q8_0, si::GgmlType::q4_0, si::GgmlType::f16}) {
        INFO(si::ggml_type_info(type).name);
        TempFile f("quant.gguf");
        llama2c::export_gguf(m, f.path, {type});
        {
            const Mapped mapped(f.path);
            const si::GgufFile& g = mapped.gguf;
            CHECK(g.find("blk.0.attn_q.weight")->type == type);
            CHECK(g.find("blk.0.ffn_gate.weight")->type == type);
            CHECK(g.find("token_embd.weight")->type == type);
            CHECK(g.find("blk.0.attn_norm.weight")->type == si::GgmlType::f32);
            CHECK(g.find("output_norm.weight")->type == si::GgmlType::f32);
            CHECK(g.find("blk.0.ffn_down.weight")->type == si::GgmlType::f16);
            CHECK(g.metadata_uint("general.file_type") == (type == si::GgmlType::q8_0   ? 7u
                                                           : type == si::GgmlType::q4_0 ? 2u
                                                                                        : 1u));
        }
        const llama2c::Model q = llama2c::load_gguf(f.path).model;
        CHECK(differing(q.rms_att, m.rms_att) == 0);
        // Each value within half a quantization step of its block's range: Q4_0 steps are |max| / 8, Q8_0 |max| / 127.
        const double step = type == si::GgmlType::q4_0 ? 1.0 / 8 : type == si::GgmlType::q8_0 ? 1.0 / 127 : 1.0 / 1024;
        double worst = 0;
        for (std::size_t b = 0; b < m.wq.size() / 32; ++b) {
            double amax = 0;
            for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(double(m.wq[b * 32 + i])));
            for (std::size_t i = 0; i < 32; ++i)
                worst = std::max(worst, std::fabs(double(q.wq[b * 32 + i]) - m.wq[b * 32 + i]) / (amax * step));
        }
        CHECK(worst <= 1.0 + 1e-3);
        CHECK(worst > 0.0);  // quantized, not copied
    }
}

TEST_CASE("PowerInfer layout: ffn_down_t is a row per neuron, fc1/fc2 map to the predictor, same tokens") {
    const llama2c::Model m = llama2c::synthetic_model(9);
    std::vector<llama2c::MlpPredictor> preds(5);
    std::mt19937 rng(4);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& p : preds) {
        p.rank = 32;
        p.fc1.resize(32 * 64);
        p.fc2.resize(172 * 32);
        for (auto& v : p.fc1) v = nd(rng);
        for (auto& v : p.fc2) v = nd(rng);
    }
    TempFile f("powerinfer.gguf");
    llama2c::GgufExportOptions o;
    o.layout = llama2c::GgufLayout::powerinfer;
    o.predictors = &preds;
    llama2c::export_gguf(m, f.path, o);
    {
        const Mapped mapped(f.path);
        const si::GgufFile& g = mapped.gguf;
        CHECK(g.find("blk.0.ffn_down.weight") == nullptr);
        const si::GgufTensor* t = g.find("blk.3.ffn_down_t.weight");
        REQUIRE(t != nullptr);
        CHECK(t->ne[0] == 64);   // d_model: a row per neuron
        CHECK(t->ne[1] == 172);  // hidden
        const auto rows = g.dequantize(*t);
        const float* down = m.down(3);  // [d_model][hidden]
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < 172; ++i)
            for (std::size_t r = 0; r < 64; ++r) wrong += bits_of(rows[i * 64 + r]) != bits_of(down[r * 172 + i]);
        CHECK(wrong == 0);
        const si::GgufTensor* fc1 = g.find("blk.3.fc1.weight");
        const si::GgufTensor* fc2 = g.find("blk.3.fc2.weight");
        REQUIRE(fc1 != nullptr);
        REQUIRE(fc2 != nullptr);
        CHECK((fc1->ne[0] == 64 && fc1->ne[1] == 32));   // nn.Linear(d_model, rank).weight
        CHECK((fc2->ne[0] == 32 && fc2->ne[1] == 172));  // nn.Linear(rank, hidden).weight
    }
    const llama2c::GgufModel g = llama2c::load_gguf(f.path);
    CHECK(g.down_transposed);
    check_same_weights(m, g.model);
    REQUIRE(g.predictors.size() == 5);
    for (std::size_t l = 0; l < 5; ++l) {
        CHECK(g.predictors[l].rank == 32);
        CHECK(differing(g.predictors[l].fc1, preds[l].fc1) == 0);
        CHECK(differing(g.predictors[l].fc2, preds[l].fc2) == 0);
    }
    llama2c::Engine a(m, {}), b(g.model, {});
    CHECK(a.generate(32) == b.generate(32));

    // At Q8_0 the transposed down has rows of d_model = 64: every matrix quantizes, none falls back.
    TempFile q("powerinfer_q8.gguf");
    o.type = si::GgmlType::q8_0;
    o.predictors = nullptr;
    llama2c::export_gguf(m, q.path, o);
    const Mapped mq(q.path);
    CHECK(mq.gguf.find("blk.0.ffn_down_t.weight")->type == si::GgmlType::q8_0);
    CHECK(mq.gguf.find("blk.0.fc1.weight") == nullptr);
}

TEST_CASE("the tokenizer travels as tokenizer.ggml.*, spaces as U+2581, and reads back") {
    llama2c::Model m = llama2c::synthetic_model(2);
    llama2c::Vocabulary v;
    for (int i = 0; i < m.config.vocab_size; ++i) {
        v.pieces.push_back(i == 0 ? "<unk>" : i < 259 && i > 2 ? "<0x41>" : " piece" + std::to_string(i));
        v.scores.push_back(-static_cast<float>(i) * 0.5f);
    }
    TempFile f("vocab.gguf");
    llama2c::GgufExportOptions o;
    o.vocabulary = &v;
    llama2c::export_gguf(m, f.path, o);
    {
        const Mapped mapped(f.path);
        const auto tokens = mapped.gguf.metadata_strings("tokenizer.ggml.tokens");
        REQUIRE(tokens.has_value());
        CHECK((*tokens)[300] == "\xe2\x96\x81piece300");
        CHECK(mapped.gguf.metadata_string("tokenizer.ggml.model") == std::optional<std::string_view>("llama"));
        const auto types = mapped.gguf.metadata("tokenizer.ggml.token_type")->array();
        CHECK(types[0].as_int() == 2);    // unknown
        CHECK(types[1].as_int() == 3);    // control (BOS)
        CHECK(types[65].as_int() == 6);   // byte
        CHECK(types[300].as_int() == 1);  // normal
    }
    const llama2c::GgufModel g = llama2c::load_gguf(f.path);
    CHECK(g.vocabulary.pieces == v.pieces);
    CHECK(differing(g.vocabulary.scores, v.scores) == 0);
    CHECK(llama2c::Tokenizer(g.vocabulary.pieces).decode(1, 300) == "piece300");
    CHECK(llama2c::Tokenizer(g.vocabulary.pieces).decode(5, 70) == "A");
}

TEST_CASE("malformed files: the error names the missing or misshapen tensor or key") {
    const llama2c::Model m = llama2c::synthetic_model(1);
    TempFile f("bad.gguf");
    {
        HandWritten h;
        h.write(m, f.path);
        const llama2c::GgufModel g = llama2c::load_gguf(f.path);  // the hand-written file loads
        check_same_weights(m, g.model);
    }
    for (const char* name : {"blk.1.ffn_up.weight", "blk.4.ffn_down.weight", "token_embd.weight", "output_norm.weight",
                             "blk.0.attn_k.weight"}) {
        INFO(name);
        HandWritten h;
        h.skip_tensor = name;
        h.write(m, f.path);
        const std::string e = load_error(f.path);
        CHECK(e.find(std::string("'") + name + "' is missing") != std::string::npos);
    }
    {
        HandWritten h;
        h.reshape_tensor = "blk.2.attn_v.weight";
        h.write(m, f.path);
        const std::string e = load_error(f.path);
        INFO(e);
        CHECK(e.find("'blk.2.attn_v.weight'") != std::string::npos);
        CHECK(e.find("ne = {64, 31") != std::string::npos);
        CHECK(e.find("needs ne = {64, 32}") != std::string::npos);
    }
    for (const char* key : {"general.architecture", "llama.embedding_length", "llama.block_count",
                            "llama.feed_forward_length", "llama.attention.head_count", "llama.context_length"}) {
        INFO(key);
        HandWritten h;
        h.skip_key = key;
        h.write(m, f.path);
        CHECK(load_error(f.path).find(std::string("'") + key + "' is missing") != std::string::npos);
    }
    {
        HandWritten h;
        h.extra = [](si::GgufWriter& w) { w.set("general.architecture", "gpt2"); };
        h.write(m, f.path);
        CHECK(load_error(f.path).find("'gpt2'") != std::string::npos);
    }
    {  // fc1 without fc2
        HandWritten h;
        std::vector<float> fc1(8 * 64, 0.5f);
        h.extra = [&](si::GgufWriter& w) { w.add("blk.0.fc1.weight", fc1.data(), 8, 64, si::GgmlType::f32); };
        h.write(m, f.path);
        CHECK(load_error(f.path).find("'blk.0.fc2.weight' is missing") != std::string::npos);
    }
    {  // a NaN in an F32 tensor (the writer refuses it, so patch the bytes)
        HandWritten h;
        h.write(m, f.path);
        std::size_t at = 0;
        {
            const Mapped mapped(f.path);
            at = mapped.gguf.find("blk.3.ffn_gate.weight")->offset + 4 * 10;
        }
        std::fstream io(f.path, std::ios::binary | std::ios::in | std::ios::out);
        const float nan = std::nanf("");
        io.seekp(static_cast<std::streamoff>(at));
        io.write(reinterpret_cast<const char*>(&nan), 4);
        io.close();
        const std::string e = load_error(f.path);
        CHECK(e.find("'blk.3.ffn_gate.weight': value 10 is not finite") != std::string::npos);
    }
    CHECK_FALSE(load_error("/nonexistent/model.gguf").empty());
}

TEST_CASE("stories260K: checkpoint -> GGUF F32 -> the same 64 greedy tokens") {
    if (!model_present()) return;
    const llama2c::Model ck = llama2c::load_checkpoint(model_path);
    TempFile f("stories_f32.gguf");
    llama2c::export_gguf(ck, f.path);
    REQUIRE(llama2c::is_gguf_file(f.path));
    const llama2c::Model g = llama2c::load_model(f.path);
    check_same_weights(ck, g);
    llama2c::Engine a(ck, {}), b(g, {});
    const std::vector<int> want = a.generate(64), got = b.generate(64);
    for (std::size_t i = 0; i < 64; ++i) {
        INFO("position " << i);
        CHECK(got[i] == want[i]);
    }
    // The FFN through sparseinfer at 8 bits: the same tokens from the GGUF model as from the checkpoint.
    llama2c::EngineOptions o8;
    o8.bits = 8;
    llama2c::Engine c(ck, o8), d(g, o8);
    CHECK(c.generate(64) == d.generate(64));
}

TEST_CASE("stories260K: Q8_0 FFN matrices within the engine's 8-bit bar; every matrix Q8_0, and Q4_0, measured") {
    if (!model_present()) return;
    const llama2c::Model ck = llama2c::load_checkpoint(model_path);
    auto measure = [&](si::GgmlType type, llama2c::GgufLayout layout, bool ffn_only, int bits) {
        TempFile f("stories_q.gguf");
        llama2c::GgufExportOptions o;
        o.type = type;
        o.layout = layout;
        o.ffn_only = ffn_only;
        llama2c::export_gguf(ck, f.path, o);
        const llama2c::Model g = llama2c::load_gguf(f.path).model;
        llama2c::EngineOptions e;
        e.bits = bits;
        const llama2c::Fidelity fid = llama2c::compare(ck, {}, g, e, 128);
        std::printf(
            "stories260K %s GGUF (%s layout, %s), FFN at %d bits, against the float checkpoint over 128 "
            "positions: KL %.6f, top-1 %.4f\n",
            si::ggml_type_info(type).name, layout == llama2c::GgufLayout::llama ? "llama" : "powerinfer",
            ffn_only ? "FFN matrices only" : "every matrix", bits, fid.kld, fid.top1);
        return fid;
    };
    // The 8-bit bar of test_llama2c.cpp holds the FFN weights at 8 bits: here Q8_0 FFN matrices
    // (ffn_down's rows of 172 are not whole blocks: F16 in the llama layout, Q8_0 as ffn_down_t).
    for (auto layout : {llama2c::GgufLayout::llama, llama2c::GgufLayout::powerinfer}) {
        const llama2c::Fidelity q8 = measure(si::GgmlType::q8_0, layout, true, 32);
        CHECK(q8.top1 >= 0.95);
        CHECK(q8.kld <= 0.01);
    }
    // Q8_0 FFN matrices, then requantized by sparseinfer to its own 8 bits at load: the two
    // roundings add up (see the printed figure; the bar above is for the file's own values).
    const llama2c::Fidelity q8b = measure(si::GgmlType::q8_0, llama2c::GgufLayout::llama, true, 8);
    CHECK(q8b.top1 >= 0.95);
    // Every matrix Q8_0, as llama.cpp's Q8_0 files are: this 64-wide model's attention and embedding
    // are more sensitive than its FFN, and the 8-bit bar is not met (see the printed figures); held
    // only to ordering against the FFN-only file and to staying a usable model.
    const llama2c::Fidelity ffn8 = measure(si::GgmlType::q8_0, llama2c::GgufLayout::llama, true, 32);
    const llama2c::Fidelity all8 = measure(si::GgmlType::q8_0, llama2c::GgufLayout::llama, false, 32);
    CHECK(all8.kld > ffn8.kld);
    CHECK(q8b.kld > ffn8.kld);
    CHECK(all8.top1 >= 0.8);
    // Q4_0 (every matrix, and FFN only): measured; worse than Q8_0.
    const llama2c::Fidelity q4 = measure(si::GgmlType::q4_0, llama2c::GgufLayout::llama, false, 32);
    const llama2c::Fidelity q4f = measure(si::GgmlType::q4_0, llama2c::GgufLayout::llama, true, 32);
    CHECK(q4.kld > all8.kld);
    CHECK(q4f.kld > ffn8.kld);
}

TEST_CASE("a GGUF model's quantized FFN layers: --save then --ffn gives the same tokens") {
    const llama2c::Model m = llama2c::synthetic_model(6);
    TempFile f("save.gguf"), ffn("save.sitf");
    llama2c::export_gguf(m, f.path, {si::GgmlType::q8_0});
    const llama2c::Model g = llama2c::load_gguf(f.path).model;
    llama2c::EngineOptions o;
    o.bits = 4;
    llama2c::Engine a(g, o);
    a.save_ffn(ffn.path);
    const std::vector<int> want = a.generate(24);
    o.ffn_file = ffn.path;
    llama2c::Engine b(g, o);
    CHECK(b.generate(24) == want);
}
