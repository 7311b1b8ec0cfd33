// llama2c/gguf_model.hpp - the engine's models as LLaMA-architecture GGUF files.
//
// export_gguf writes a Model as llama.cpp lays out a LLaMA model:
//   metadata  general.architecture = "llama", llama.context_length,
//             llama.embedding_length, llama.block_count, llama.feed_forward_length,
//             llama.attention.head_count, llama.attention.head_count_kv,
//             llama.rope.dimension_count (the head size), llama.rope.freq_base,
//             llama.attention.layer_norm_rms_epsilon, general.file_type and,
//             when a tokenizer is given, tokenizer.ggml.* (model "llama").
//   tensors   token_embd.weight, output_norm.weight, output.weight (only when the
//             classifier is not the embedding), and per block N:
//             blk.N.attn_norm / attn_q / attn_k / attn_v / attn_output /
//             ffn_norm / ffn_gate / ffn_up / ffn_down .weight.
// Shapes follow ggml: ne[0] is the row length, so a [out][in] matrix is
// ne = {in, out} and ffn_down, a row per output, is ne = {hidden, d_model}.
// Norm weights are always F32; the matrices take the requested type, except
// a matrix whose rows are not a whole number of the type's 32-value blocks
// (stories260K's ffn_down has rows of 172), which is stored F16 as llama.cpp's
// converter falls back to F16 for such tensors. With ffn_only, attention and
// embeddings stay F32 and only the FFN matrices take the type (a mixed file,
// as llama.cpp reads any type per tensor).
//
// RoPE layout: llama2.c rotates consecutive pairs (q[2i], q[2i+1]) of each
// head, as Meta's LLaMA does and as llama.cpp's "llama" architecture does
// (its normal RoPE mode). llama.cpp permutes q/k rows only when converting
// Hugging Face checkpoints, whose rows were permuted to rotate halves; its own
// llama2.c converter copies wq and wk as they are. So do we: no permutation,
// and the floats of an F32 file are the checkpoint's, bit for bit.
//
// PowerInfer's sparse layout (its gguf-py constants and
// convert-hf-to-powerinfer-gguf.py) replaces blk.N.ffn_down.weight by
// blk.N.ffn_down_t.weight, down transposed (ne = {d_model, hidden}: a row per
// neuron), and adds its activation predictor per block, an MLP
// fc2(relu(fc1 x)): blk.N.fc1.weight (ne = {d_model, rank}) and
// blk.N.fc2.weight (ne = {rank, hidden}). The reader takes ffn_down_t when
// present (transposed back at load) and returns fc1/fc2 when present; the
// engine's selectors do not use them yet (how PowerInfer thresholds the MLP's
// output is not stated in those files).
//
// The tokenizer: -z's llama2.c tokenizer.bin is stored as tokenizer.ggml.*
// (model "llama", spaces as U+2581, llama.cpp's token types) when given at
// export; without it the file holds no tokenizer and -z supplies one at run time.
//
//   llama2c::export_gguf(model, "stories.q8_0.gguf", {sparseinfer::GgmlType::q8_0});
//   llama2c::GgufModel g = llama2c::load_gguf("stories.q8_0.gguf");
//   llama2c::Engine e(g.model, {/*bits=*/8});
#pragma once

#include <sparseinfer/gguf.hpp>
#include <sparseinfer/gguf_writer.hpp>
#include <sparseinfer/mapped_file.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine.hpp"

namespace llama2c {

/// Which tensors carry the down projection (and the predictor).
enum class GgufLayout {
    llama,       ///< blk.N.ffn_down.weight, a row per output (llama.cpp)
    powerinfer,  ///< blk.N.ffn_down_t.weight, a row per neuron, plus fc1/fc2 when given (PowerInfer)
};

/// One block's PowerInfer activation predictor, scores = fc2 relu(fc1 x).
struct MlpPredictor {
    std::size_t rank = 0;
    std::vector<float> fc1;  ///< [rank][d_model]
    std::vector<float> fc2;  ///< [hidden][rank]
};

/// What export_gguf writes.
struct GgufExportOptions {
    sparseinfer::GgmlType type = sparseinfer::GgmlType::f32;  ///< the matrices: F32, F16, Q8_0 or Q4_0
    GgufLayout layout = GgufLayout::llama;
    const Vocabulary* vocabulary = nullptr;                 ///< stored as tokenizer.ggml.* when given
    const std::vector<MlpPredictor>* predictors = nullptr;  ///< PowerInfer layout: fc1/fc2 per block
    bool ffn_only = false;  ///< `type` for the FFN matrices only; attention and embeddings stay F32
};

/// A model read from a GGUF file, with what the file holds beyond the Model.
struct GgufModel {
    Model model;
    bool down_transposed = false;          ///< the file held ffn_down_t (PowerInfer layout) for some block
    std::vector<MlpPredictor> predictors;  ///< per block when the file holds fc1/fc2, else empty
    Vocabulary vocabulary;                 ///< empty when the file holds no tokenizer.ggml.tokens
};

/// "blk.<layer>.<part>.weight"
inline std::string block_tensor(int layer, const char* part) {
    return "blk." + std::to_string(layer) + "." + part + ".weight";
}

/// The type a matrix with rows of `cols` values is stored as: `type`, or F16
/// when a row is not a whole number of the type's blocks.
inline sparseinfer::GgmlType stored_type(sparseinfer::GgmlType type, std::size_t cols) {
    return cols % sparseinfer::ggml_type_info(type).block_values == 0 ? type : sparseinfer::GgmlType::f16;
}

/// "f32", "f16", "q8_0" or "q4_0"; throws std::invalid_argument for anything else.
inline sparseinfer::GgmlType parse_gguf_type(const std::string& name) {
    using T = sparseinfer::GgmlType;
    if (name == "f32") return T::f32;
    if (name == "f16") return T::f16;
    if (name == "q8_0") return T::q8_0;
    if (name == "q4_0") return T::q4_0;
    throw std::invalid_argument("--gguf-type must be f32, f16, q8_0 or q4_0 (got '" + name + "')");
}

/// True when the file at `path` starts with the GGUF magic.
inline bool is_gguf_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F';
}

namespace detail {

/// llama.cpp's file type for a model whose matrices are `type` (LLAMA_FTYPE_*).
inline std::uint32_t file_type(sparseinfer::GgmlType type) {
    using T = sparseinfer::GgmlType;
    return type == T::f32 ? 0 : type == T::f16 ? 1 : type == T::q4_0 ? 2 : 7;  // 7: MOSTLY_Q8_0
}

/// SentencePiece spells a space U+2581; llama2.c's pieces use ' '.
inline std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}
const std::string sp_space = "\xe2\x96\x81";

/// llama.cpp's token type of a llama2.c piece: 2 unknown, 3 control, 6 byte, 1 normal.
inline std::int32_t token_type(std::size_t id, const std::string& piece) {
    unsigned byte = 0;
    if (id == 0) return 2;
    if (id == 1 || id == 2) return 3;
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1) return 6;
    return 1;
}

}  // namespace detail

/// Writes `m` to `path` as a LLaMA-architecture GGUF file (see the top of this
/// file). Returns the tensors written with their stored types, in file order.
inline std::vector<std::pair<std::string, sparseinfer::GgmlType>> export_gguf(const Model& m, const std::string& path,
                                                                              const GgufExportOptions& o = {}) {
    using T = sparseinfer::GgmlType;
    if (o.type != T::f32 && o.type != T::f16 && o.type != T::q8_0 && o.type != T::q4_0)
        throw std::invalid_argument("export_gguf: the matrices are written as F32, F16, Q8_0 or Q4_0");
    const Config& c = m.config;
    const std::size_t d = static_cast<std::size_t>(c.dim), hd = static_cast<std::size_t>(c.hidden_dim),
                      kv = static_cast<std::size_t>(c.kv_dim()), V = static_cast<std::size_t>(c.vocab_size);
    if (o.predictors != nullptr) {
        if (o.layout != GgufLayout::powerinfer)
            throw std::invalid_argument("export_gguf: fc1/fc2 predictors belong to the PowerInfer layout");
        if (o.predictors->size() != static_cast<std::size_t>(c.n_layers))
            throw std::invalid_argument("export_gguf: one predictor per block is needed");
    }
    sparseinfer::GgufWriter w;
    w.set("general.architecture", "llama");
    w.set("general.name", "llama2c");
    w.set("general.file_type", detail::file_type(o.type));
    if (o.type == T::q8_0 || o.type == T::q4_0) w.set("general.quantization_version", std::uint32_t{2});
    w.set("llama.context_length", static_cast<std::uint32_t>(c.seq_len));
    w.set("llama.embedding_length", static_cast<std::uint32_t>(c.dim));
    w.set("llama.block_count", static_cast<std::uint32_t>(c.n_layers));
    w.set("llama.feed_forward_length", static_cast<std::uint32_t>(c.hidden_dim));
    w.set("llama.attention.head_count", static_cast<std::uint32_t>(c.n_heads));
    w.set("llama.attention.head_count_kv", static_cast<std::uint32_t>(c.n_kv_heads));
    w.set("llama.rope.dimension_count", static_cast<std::uint32_t>(c.head_size()));
    w.set("llama.rope.freq_base", c.rope_theta);
    w.set("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
    w.set("llama.vocab_size", static_cast<std::uint32_t>(c.vocab_size));
    if (o.vocabulary != nullptr) {
        const Vocabulary& v = *o.vocabulary;
        if (v.pieces.size() != V || v.scores.size() != V)
            throw std::invalid_argument("export_gguf: the tokenizer holds " + std::to_string(v.pieces.size()) +
                                        " tokens; the model has " + std::to_string(V));
        std::vector<std::string> tokens;
        std::vector<std::int32_t> types;
        for (std::size_t i = 0; i < V; ++i) {
            tokens.push_back(detail::replace_all(v.pieces[i], " ", detail::sp_space));
            types.push_back(detail::token_type(i, v.pieces[i]));
        }
        w.set("tokenizer.ggml.model", "llama");
        w.set("tokenizer.ggml.tokens", tokens);
        w.set("tokenizer.ggml.scores", v.scores);
        w.set("tokenizer.ggml.token_type", types);
        w.set("tokenizer.ggml.unknown_token_id", std::uint32_t{0});
        w.set("tokenizer.ggml.bos_token_id", std::uint32_t{1});
        w.set("tokenizer.ggml.eos_token_id", std::uint32_t{2});
    }
    std::vector<std::pair<std::string, T>> written;
    auto add = [&](const std::string& name, const float* data, std::size_t rows, std::size_t cols, T type) {
        w.add(name, data, rows, cols, type);
        written.emplace_back(name, type);
    };
    auto matrix = [&](const std::string& name, const float* data, std::size_t rows, std::size_t cols) {
        add(name, data, rows, cols, stored_type(o.type, cols));
    };
    auto other = [&](const std::string& name, const float* data, std::size_t rows, std::size_t cols) {
        add(name, data, rows, cols, o.ffn_only ? T::f32 : stored_type(o.type, cols));
    };
    other("token_embd.weight", m.token_embedding.data(), V, d);
    add("output_norm.weight", m.rms_final.data(), 1, d, T::f32);
    if (!c.shared_classifier) other("output.weight", m.classifier.data(), V, d);
    std::vector<float> down_t(hd * d);
    for (int l = 0; l < c.n_layers; ++l) {
        const std::size_t L = static_cast<std::size_t>(l);
        add(block_tensor(l, "attn_norm"), m.rms_att.data() + L * d, 1, d, T::f32);
        other(block_tensor(l, "attn_q"), m.wq.data() + L * d * d, d, d);
        other(block_tensor(l, "attn_k"), m.wk.data() + L * kv * d, kv, d);
        other(block_tensor(l, "attn_v"), m.wv.data() + L * kv * d, kv, d);
        other(block_tensor(l, "attn_output"), m.wo.data() + L * d * d, d, d);
        add(block_tensor(l, "ffn_norm"), m.rms_ffn.data() + L * d, 1, d, T::f32);
        matrix(block_tensor(l, "ffn_gate"), m.gate(l), hd, d);
        matrix(block_tensor(l, "ffn_up"), m.up(l), hd, d);
        if (o.layout == GgufLayout::llama) {
            matrix(block_tensor(l, "ffn_down"), m.down(l), d, hd);
        } else {
            const float* down = m.down(l);  // [d][hd] -> [hd][d]
            for (std::size_t r = 0; r < d; ++r)
                for (std::size_t i = 0; i < hd; ++i) down_t[i * d + r] = down[r * hd + i];
            matrix(block_tensor(l, "ffn_down_t"), down_t.data(), hd, d);
            if (o.predictors != nullptr) {
                const MlpPredictor& p = (*o.predictors)[L];
                if (p.rank == 0 || p.fc1.size() != p.rank * d || p.fc2.size() != hd * p.rank)
                    throw std::invalid_argument("export_gguf: block " + std::to_string(l) +
                                                "'s predictor is not [rank][d_model] and [hidden][rank]");
                matrix(block_tensor(l, "fc1"), p.fc1.data(), p.rank, d);
                matrix(block_tensor(l, "fc2"), p.fc2.data(), hd, p.rank);
            }
        }
    }
    w.write(path);
    return written;
}

/// Builds a Model from a validated GGUF file of the LLaMA architecture.
/// Throws std::runtime_error naming the metadata key or tensor that is
/// missing or does not fit (sparseinfer::error for a type it cannot decode).
inline GgufModel model_from_gguf(const sparseinfer::GgufFile& g) {
    using std::to_string;
    const auto arch = g.metadata_string("general.architecture");
    if (!arch) throw std::runtime_error("GGUF metadata 'general.architecture' is missing");
    if (*arch != "llama")
        throw std::runtime_error("GGUF metadata 'general.architecture' is '" + std::string(*arch) +
                                 "'; the engine runs 'llama'");
    auto need = [&](const char* key) -> int {
        const auto v = g.metadata_uint(key);
        if (!v) throw std::runtime_error(std::string("GGUF metadata '") + key + "' is missing");
        if (*v == 0 || *v > (1u << 20))
            throw std::runtime_error(std::string("GGUF metadata '") + key + "' is implausible: " + to_string(*v));
        return static_cast<int>(*v);
    };
    GgufModel out;
    Model& m = out.model;
    Config& c = m.config;
    c.dim = need("llama.embedding_length");
    c.hidden_dim = need("llama.feed_forward_length");
    c.n_layers = need("llama.block_count");
    c.n_heads = need("llama.attention.head_count");
    c.n_kv_heads = g.metadata("llama.attention.head_count_kv") ? need("llama.attention.head_count_kv") : c.n_heads;
    c.seq_len = need("llama.context_length");
    if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0 || c.head_size() % 2 != 0)
        throw std::runtime_error("GGUF: heads do not divide the model width (embedding_length " + to_string(c.dim) +
                                 ", head_count " + to_string(c.n_heads) + ", head_count_kv " + to_string(c.n_kv_heads) +
                                 ")");
    if (g.metadata("llama.rope.dimension_count") && need("llama.rope.dimension_count") != c.head_size())
        throw std::runtime_error("GGUF metadata 'llama.rope.dimension_count' is not the head size " +
                                 to_string(c.head_size()) + " (partial rotary embeddings are not supported)");
    if (const auto theta = g.metadata_float("llama.rope.freq_base")) c.rope_theta = static_cast<float>(*theta);
    if (const auto eps = g.metadata_float("llama.attention.layer_norm_rms_epsilon"))
        c.norm_eps = static_cast<float>(*eps);
    if (!(c.rope_theta > 0) || !(c.norm_eps >= 0) || !std::isfinite(c.rope_theta) || !std::isfinite(c.norm_eps))
        throw std::runtime_error("GGUF metadata: rope.freq_base and layer_norm_rms_epsilon must be finite, positive");

    const sparseinfer::GgufTensor* embd = g.find("token_embd.weight");
    if (embd == nullptr) throw std::runtime_error("GGUF tensor 'token_embd.weight' is missing");
    if (embd->rows == 0 || embd->rows > (1u << 20))
        throw std::runtime_error("GGUF tensor 'token_embd.weight' has an implausible vocabulary of " +
                                 to_string(embd->rows));
    c.vocab_size = static_cast<int>(embd->rows);
    if (const auto nv = g.metadata_uint("llama.vocab_size"); nv && *nv != embd->rows)
        throw std::runtime_error("GGUF metadata 'llama.vocab_size' (" + to_string(*nv) +
                                 ") differs from token_embd.weight's rows (" + to_string(embd->rows) + ")");

    const std::size_t d = static_cast<std::size_t>(c.dim), hd = static_cast<std::size_t>(c.hidden_dim),
                      kv = static_cast<std::size_t>(c.kv_dim()), V = static_cast<std::size_t>(c.vocab_size),
                      L = static_cast<std::size_t>(c.n_layers);
    auto tensor = [&](const std::string& name, std::size_t rows, std::size_t cols) -> const sparseinfer::GgufTensor& {
        const sparseinfer::GgufTensor* t = g.find(name);
        if (t == nullptr) throw std::runtime_error("GGUF tensor '" + name + "' is missing");
        if (t->rows != rows || t->cols != cols || t->n_dims > 2)
            throw std::runtime_error("GGUF tensor '" + name + "' has " + to_string(t->n_dims) + " dimensions, ne = {" +
                                     to_string(t->ne[0]) + ", " + to_string(t->ne[1]) + ", " + to_string(t->ne[2]) +
                                     ", " + to_string(t->ne[3]) + "}; the model needs ne = {" + to_string(cols) +
                                     (rows == 1 ? "}" : ", " + to_string(rows) + "}"));
        return *t;
    };
    auto check_finite = [](const std::string& name, const float* v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            if (!std::isfinite(v[i]))
                throw std::runtime_error("GGUF tensor '" + name + "': value " + to_string(i) + " is not finite");
    };
    auto load = [&](const std::string& name, std::size_t rows, std::size_t cols, float* dst) {
        g.dequantize(tensor(name, rows, cols), dst);
        check_finite(name, dst, rows * cols);
    };
    m.token_embedding.resize(V * d);
    m.rms_att.resize(L * d);
    m.wq.resize(L * d * d);
    m.wk.resize(L * kv * d);
    m.wv.resize(L * kv * d);
    m.wo.resize(L * d * d);
    m.rms_ffn.resize(L * d);
    m.w1.resize(L * hd * d);
    m.w2.resize(L * d * hd);
    m.w3.resize(L * hd * d);
    m.rms_final.resize(d);
    load("token_embd.weight", V, d, m.token_embedding.data());
    load("output_norm.weight", 1, d, m.rms_final.data());
    c.shared_classifier = g.find("output.weight") == nullptr;
    if (c.shared_classifier) {
        m.classifier = m.token_embedding;
    } else {
        m.classifier.resize(V * d);
        load("output.weight", V, d, m.classifier.data());
    }
    for (int l = 0; l < c.n_layers; ++l) {
        const std::size_t i = static_cast<std::size_t>(l);
        load(block_tensor(l, "attn_norm"), 1, d, m.rms_att.data() + i * d);
        load(block_tensor(l, "attn_q"), d, d, m.wq.data() + i * d * d);
        load(block_tensor(l, "attn_k"), kv, d, m.wk.data() + i * kv * d);
        load(block_tensor(l, "attn_v"), kv, d, m.wv.data() + i * kv * d);
        load(block_tensor(l, "attn_output"), d, d, m.wo.data() + i * d * d);
        load(block_tensor(l, "ffn_norm"), 1, d, m.rms_ffn.data() + i * d);
        load(block_tensor(l, "ffn_gate"), hd, d, m.w1.data() + i * hd * d);
        load(block_tensor(l, "ffn_up"), hd, d, m.w3.data() + i * hd * d);
        const std::string down_t = block_tensor(l, "ffn_down_t");
        float* down = m.w2.data() + i * d * hd;
        if (g.find(down_t) != nullptr) {  // a row per neuron: back to a row per output
            g.dequantize_transposed(tensor(down_t, hd, d), down);
            check_finite(down_t, down, d * hd);
            out.down_transposed = true;
        } else {
            load(block_tensor(l, "ffn_down"), d, hd, down);
        }
        const std::string fc1 = block_tensor(l, "fc1"), fc2 = block_tensor(l, "fc2");
        const sparseinfer::GgufTensor* t1 = g.find(fc1);
        const sparseinfer::GgufTensor* t2 = g.find(fc2);
        if ((t1 == nullptr) != (t2 == nullptr))
            throw std::runtime_error("GGUF tensor '" + (t1 == nullptr ? fc1 : fc2) + "' is missing (its pair '" +
                                     (t1 == nullptr ? fc2 : fc1) + "' is present)");
        if (l > 0 && (t1 != nullptr) != !out.predictors.empty())
            throw std::runtime_error("GGUF tensor '" + (t1 == nullptr ? fc1 : block_tensor(0, "fc1")) +
                                     "' is missing (predictors come in every block or in none)");
        if (t1 != nullptr) {
            MlpPredictor p;
            p.rank = t1->rows;
            if (p.rank == 0 || p.rank > hd * d)
                throw std::runtime_error("GGUF tensor '" + fc1 + "' has an implausible rank " + to_string(p.rank));
            p.fc1.resize(p.rank * d);
            p.fc2.resize(hd * p.rank);
            load(fc1, p.rank, d, p.fc1.data());
            load(fc2, hd, p.rank, p.fc2.data());
            out.predictors.push_back(std::move(p));
        }
    }
    if (const auto tokens = g.metadata_strings("tokenizer.ggml.tokens")) {
        if (tokens->size() != V)
            throw std::runtime_error("GGUF metadata 'tokenizer.ggml.tokens' holds " + to_string(tokens->size()) +
                                     " tokens; token_embd.weight has " + to_string(V) + " rows");
        for (const auto& t : *tokens)
            out.vocabulary.pieces.push_back(detail::replace_all(std::string(t), detail::sp_space, " "));
        if (const auto scores = g.metadata("tokenizer.ggml.scores")) {
            for (const auto& s : scores->array()) out.vocabulary.scores.push_back(static_cast<float>(s.as_float()));
            if (out.vocabulary.scores.size() != V)
                throw std::runtime_error("GGUF metadata 'tokenizer.ggml.scores' does not hold one score per token");
        } else {
            out.vocabulary.scores.assign(V, 0.0f);
        }
    }
    return out;
}

/// Maps, validates and reads a GGUF file (see model_from_gguf).
inline GgufModel load_gguf(const std::string& path) {
    const sparseinfer::MappedFile file(path);
    return model_from_gguf(sparseinfer::GgufFile::from_file(file));
}

/// A llama2.c checkpoint or, detected by its magic, a GGUF file.
inline Model load_model(const std::string& path) {
    return is_gguf_file(path) ? load_gguf(path).model : load_checkpoint(path);
}

}  // namespace llama2c
