// llama2c/model.hpp - a llama2.c checkpoint (legacy version 0) and its float forward pass.
//
// The engine in this directory keeps attention, norms and embeddings in float
// and hands each layer's FFN to a callback, so the same transformer runs with
// the float FFN (the reference) or with sparseinfer's quantized, sparse layer.
//
//   llama2c::Model m = llama2c::load_checkpoint("stories260K.bin");
//   llama2c::Transformer t(m);                     // float FFN
//   const std::vector<float>& logits = t.forward(/*token=*/1, /*pos=*/0);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace llama2c {

struct Config {
    int dim = 0;
    int hidden_dim = 0;
    int n_layers = 0;
    int n_heads = 0;
    int n_kv_heads = 0;
    int vocab_size = 0;
    int seq_len = 0;
    bool shared_classifier = true;  ///< classifier = token embedding
    float rope_theta = 10000.0f;    ///< RoPE frequency base (llama2.c fixes it; GGUF records it)
    float norm_eps = 1e-5f;         ///< RMSNorm epsilon (llama2.c fixes it; GGUF records it)

    int head_size() const { return dim / n_heads; }
    int kv_dim() const { return dim * n_kv_heads / n_heads; }
};

/// The FFN's nonlinearity. llama2.c files do not record it: SwiGLU models
/// (stories260K) use silu; a ReLU-fied model must be run as it was trained.
enum class FfnActivation {
    silu,   ///< SwiGLU: silu(gate) * up
    relu,   ///< ReGLU: relu(gate) * up
    drelu,  ///< dReLU: relu(gate) * relu(up)
};

inline const char* to_string(FfnActivation a) {
    return a == FfnActivation::silu ? "silu" : a == FfnActivation::relu ? "relu" : "drelu";
}

/// "silu", "relu" or "drelu"; throws std::invalid_argument for anything else.
inline FfnActivation parse_activation(const std::string& name) {
    for (FfnActivation a : {FfnActivation::silu, FfnActivation::relu, FfnActivation::drelu})
        if (name == to_string(a)) return a;
    throw std::invalid_argument("--activation must be silu, relu or drelu (got '" + name + "')");
}

/// The activation applied to a gate value (relu for both ReLU variants).
inline float gate_activation(FfnActivation a, float g) {
    return a == FfnActivation::silu ? g / (1.0f + std::exp(-g)) : (g > 0.0f ? g : 0.0f);
}

/// A neuron's value from its gate and up values; exactly 0 whenever a relu
/// variant's gate is not positive (the zeros a sparse pass may skip).
inline float neuron_value(FfnActivation a, float g, float u) {
    if (a == FfnActivation::drelu) u = u > 0.0f ? u : 0.0f;
    return gate_activation(a, g) * u;
}

/// All weights, float32, row-major [out][in] as in the file.
struct Model {
    Config config;
    FfnActivation activation = FfnActivation::silu;  ///< how the FFN runs; set by the caller
    std::vector<float> token_embedding;              // [vocab][dim]
    std::vector<float> rms_att;                      // [layers][dim]
    std::vector<float> wq, wk, wv, wo;               // [layers][dim][dim], [layers][kv_dim][dim] x2, [layers][dim][dim]
    std::vector<float> rms_ffn;                      // [layers][dim]
    std::vector<float> w1, w2, w3;  // gate [layers][hidden][dim], down [layers][dim][hidden], up like gate
    std::vector<float> rms_final;   // [dim]
    std::vector<float> classifier;  // [vocab][dim]; a copy of token_embedding when shared

    const float* gate(int layer) const { return w1.data() + layer_offset(layer, config.hidden_dim, config.dim); }
    const float* up(int layer) const { return w3.data() + layer_offset(layer, config.hidden_dim, config.dim); }
    const float* down(int layer) const { return w2.data() + layer_offset(layer, config.dim, config.hidden_dim); }

private:
    static std::size_t layer_offset(int layer, int rows, int cols) {
        return static_cast<std::size_t>(layer) * static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
    }
};

/// Reads a checkpoint; throws std::runtime_error saying what is wrong with the file.
inline Model load_checkpoint(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open checkpoint '" + path + "'");
    in.seekg(0, std::ios::end);
    const auto file_size = static_cast<std::uint64_t>(in.tellg());
    in.seekg(0);
    std::int32_t h[7];
    if (!in.read(reinterpret_cast<char*>(h), sizeof h))
        throw std::runtime_error("'" + path + "' is shorter than the 28-byte llama2.c header");
    Model m;
    Config& c = m.config;
    c.dim = h[0];
    c.hidden_dim = h[1];
    c.n_layers = h[2];
    c.n_heads = h[3];
    c.n_kv_heads = h[4];
    c.shared_classifier = h[5] > 0;
    c.vocab_size = h[5] < 0 ? -h[5] : h[5];
    c.seq_len = h[6];
    const int limit = 1 << 20;
    for (int v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len})
        if (v <= 0 || v > limit)
            throw std::runtime_error("'" + path + "': implausible header value " + std::to_string(v));
    if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0 || c.head_size() % 2 != 0)
        throw std::runtime_error("'" + path + "': heads do not divide the model width");

    const std::uint64_t d = c.dim, hd = c.hidden_dim, L = c.n_layers, V = c.vocab_size, kv = c.kv_dim();
    const std::uint64_t rope = static_cast<std::uint64_t>(c.seq_len) * c.head_size() / 2;
    const std::uint64_t floats = V * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d + 3 * L * hd * d + d +
                                 2 * rope + (c.shared_classifier ? 0 : V * d);
    if (sizeof h + floats * 4 != file_size)
        throw std::runtime_error("'" + path + "' holds " + std::to_string(file_size) + " bytes; its header implies " +
                                 std::to_string(sizeof h + floats * 4));
    auto read = [&](std::vector<float>& v, std::uint64_t n) {
        v.resize(n);
        in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
    };
    read(m.token_embedding, V * d);
    read(m.rms_att, L * d);
    read(m.wq, L * d * d);
    read(m.wk, L * kv * d);
    read(m.wv, L * kv * d);
    read(m.wo, L * d * d);
    read(m.rms_ffn, L * d);
    read(m.w1, L * hd * d);
    read(m.w2, L * d * hd);
    read(m.w3, L * hd * d);
    read(m.rms_final, d);
    in.seekg(static_cast<std::streamoff>(2 * rope * 4), std::ios::cur);  // legacy RoPE tables: computed instead
    if (c.shared_classifier)
        m.classifier = m.token_embedding;
    else
        read(m.classifier, V * d);
    if (!in) throw std::runtime_error("'" + path + "': read failed");
    return m;
}

/// out[r] = sum_c w[r][c] * x[c] for a row-major rows x cols matrix.
inline void matvec(const float* w, const float* x, float* out, int rows, int cols) {
    for (int r = 0; r < rows; ++r) {
        const float* row = w + static_cast<std::size_t>(r) * cols;
        float s = 0;
        for (int c = 0; c < cols; ++c) s += row[c] * x[c];
        out[r] = s;
    }
}

inline void rmsnorm(const float* x, const float* weight, float* out, int n, float eps = 1e-5f) {
    float ss = 0;
    for (int i = 0; i < n; ++i) ss += x[i] * x[i];
    const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    for (int i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

/// The float FFN of one layer: out = down (act(gate x, up x)), e.g. silu(gate x) * (up x).
inline void float_ffn(const Model& m, int layer, const float* x, float* out) {
    const Config& c = m.config;
    std::vector<float> g(c.hidden_dim), u(c.hidden_dim);
    matvec(m.gate(layer), x, g.data(), c.hidden_dim, c.dim);
    matvec(m.up(layer), x, u.data(), c.hidden_dim, c.dim);
    for (int i = 0; i < c.hidden_dim; ++i) g[i] = neuron_value(m.activation, g[i], u[i]);
    matvec(m.down(layer), g.data(), out, c.dim, c.hidden_dim);
}

/// Decoder with a KV cache; each layer's FFN goes through `ffn` (float by default).
class Transformer {
public:
    /// ffn(layer, normed input [dim], output [dim]); the output is added to the residual.
    using Ffn = std::function<void(int layer, const float* x, float* out)>;

    explicit Transformer(const Model& m, Ffn ffn = {}) : m_(m), ffn_(std::move(ffn)) {
        const Config& c = m.config;
        x_.resize(c.dim);
        xb_.resize(c.dim);
        xb2_.resize(c.dim);
        q_.resize(c.dim);
        att_.resize(c.seq_len);
        logits_.resize(c.vocab_size);
        const std::size_t cache = static_cast<std::size_t>(c.n_layers) * c.seq_len * c.kv_dim();
        key_cache_.assign(cache, 0.0f);
        value_cache_.assign(cache, 0.0f);
        if (!ffn_) ffn_ = [this](int layer, const float* x, float* out) { float_ffn(m_, layer, x, out); };
    }

    /// Runs token at position pos (0 <= pos < seq_len) and returns the next-token logits.
    const std::vector<float>& forward(int token, int pos) {
        const Config& c = m_.config;
        if (token < 0 || token >= c.vocab_size) throw std::runtime_error("token id out of range");
        if (pos < 0 || pos >= c.seq_len) throw std::runtime_error("position beyond the model's sequence length");
        const int dim = c.dim, kv_dim = c.kv_dim(), hs = c.head_size();
        const int kv_mul = c.n_heads / c.n_kv_heads;
        std::copy_n(m_.token_embedding.data() + static_cast<std::size_t>(token) * dim, dim, x_.data());
        for (int l = 0; l < c.n_layers; ++l) {
            rmsnorm(x_.data(), m_.rms_att.data() + l * dim, xb_.data(), dim, c.norm_eps);
            const std::size_t loff = static_cast<std::size_t>(l) * c.seq_len * kv_dim;
            float* k = key_cache_.data() + loff + static_cast<std::size_t>(pos) * kv_dim;
            float* v = value_cache_.data() + loff + static_cast<std::size_t>(pos) * kv_dim;
            matvec(m_.wq.data() + static_cast<std::size_t>(l) * dim * dim, xb_.data(), q_.data(), dim, dim);
            matvec(m_.wk.data() + static_cast<std::size_t>(l) * kv_dim * dim, xb_.data(), k, kv_dim, dim);
            matvec(m_.wv.data() + static_cast<std::size_t>(l) * kv_dim * dim, xb_.data(), v, kv_dim, dim);
            for (int i = 0; i < dim; i += 2) {  // RoPE on each consecutive pair
                const float freq = 1.0f / std::pow(c.rope_theta, static_cast<float>(i % hs) / static_cast<float>(hs));
                const float angle = static_cast<float>(pos) * freq, fc = std::cos(angle), fs = std::sin(angle);
                for (int which = 0; which < (i < kv_dim ? 2 : 1); ++which) {
                    float* vec = which == 0 ? q_.data() : k;
                    const float a = vec[i], b = vec[i + 1];
                    vec[i] = a * fc - b * fs;
                    vec[i + 1] = a * fs + b * fc;
                }
            }
            for (int h = 0; h < c.n_heads; ++h) {  // grouped-query attention
                const float* qh = q_.data() + h * hs;
                const int kvh = h / kv_mul;
                float max_score = -INFINITY;
                for (int t = 0; t <= pos; ++t) {
                    const float* kt = key_cache_.data() + loff + static_cast<std::size_t>(t) * kv_dim + kvh * hs;
                    float s = 0;
                    for (int i = 0; i < hs; ++i) s += qh[i] * kt[i];
                    att_[t] = s / std::sqrt(static_cast<float>(hs));
                    max_score = std::max(max_score, att_[t]);
                }
                float sum = 0;
                for (int t = 0; t <= pos; ++t) sum += (att_[t] = std::exp(att_[t] - max_score));
                float* out = xb_.data() + h * hs;
                std::fill_n(out, hs, 0.0f);
                for (int t = 0; t <= pos; ++t) {
                    const float* vt = value_cache_.data() + loff + static_cast<std::size_t>(t) * kv_dim + kvh * hs;
                    const float a = att_[t] / sum;
                    for (int i = 0; i < hs; ++i) out[i] += a * vt[i];
                }
            }
            matvec(m_.wo.data() + static_cast<std::size_t>(l) * dim * dim, xb_.data(), xb2_.data(), dim, dim);
            for (int i = 0; i < dim; ++i) x_[i] += xb2_[i];
            rmsnorm(x_.data(), m_.rms_ffn.data() + l * dim, xb_.data(), dim, c.norm_eps);
            ffn_(l, xb_.data(), xb2_.data());
            for (int i = 0; i < dim; ++i) x_[i] += xb2_[i];
        }
        rmsnorm(x_.data(), m_.rms_final.data(), x_.data(), dim, c.norm_eps);
        matvec(m_.classifier.data(), x_.data(), logits_.data(), c.vocab_size, dim);
        return logits_;
    }

private:
    const Model& m_;
    Ffn ffn_;
    std::vector<float> x_, xb_, xb2_, q_, att_, logits_, key_cache_, value_cache_;
};

inline int argmax(const std::vector<float>& v) {
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace llama2c
