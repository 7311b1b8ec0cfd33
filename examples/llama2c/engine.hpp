// llama2c/engine.hpp - the llama2.c transformer with sparseinfer's FFN layer.
//
// Attention, norms and embeddings stay float (model.hpp); each layer's FFN is
// one of:
//   - bits 32: the float weights; dense, or sparse with the neurons a selector picks;
//   - bits 8/4/3/2: a sparseinfer::SparseFfn<Bits, Policy> (quantized, bundled rows,
//     a neuron cache per layer), dense or sparse.
// Selectors (for active < 1): `gate` computes the gate densely and keeps the
// top share by |act(gate)| (exact gate-first); `predictor` scores neurons with a
// low-rank predictor of the gate (truncated SVD, 8-bit factors for quantized
// layers) and keeps the top share; `nonzero` (any --active) is gate-first and
// keeps exactly the neurons whose activation is not zero: lossless for the
// ReLU variants (Model::activation), whose other neurons contribute exactly 0.
//
// Quantized FFNs come from the checkpoint's floats (quantized at start) or,
// with ffn_file, from a model file (sparseinfer/model_file.hpp) that save_ffn
// wrote: mapped, checked and read in place, with the same outputs. With the
// `predictor` selector, save_ffn also writes each layer's quantized predictor
// and a run from the file reads it in place instead of calibrating (a file
// without predictors: calibrated at start from the checkpoint, as before).
//
//   llama2c::Engine e(model, {/*bits=*/4, /*active=*/0.5});
//   std::vector<int> tokens = e.generate(64);
//   e.save_ffn("stories.sitf");   // later: EngineOptions::ffn_file = "stories.sitf"
#pragma once

#include <sparseinfer/mapped_file.hpp>
#include <sparseinfer/model_file.hpp>
#include <sparseinfer/neuron_cache.hpp>
#include <sparseinfer/policies.hpp>
#include <sparseinfer/predictor.hpp>
#include <sparseinfer/selection.hpp>
#include <sparseinfer/sparse_ffn.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model.hpp"

namespace llama2c {

enum class Selector { gate, predictor, nonzero };

/// The library's activation for a model's FFN: the ReLU variants rank and
/// select neurons by relu(gate) (dReLU's relu on up is applied by the engine).
inline sparseinfer::Activation library_activation(FfnActivation a) {
    return a == FfnActivation::silu ? sparseinfer::Activation::silu : sparseinfer::Activation::relu;
}

/// Keeps the scores above 0: a threshold at the smallest positive float.
inline sparseinfer::Selection nonzero_selection() {
    return sparseinfer::Selection::at_least(std::numeric_limits<float>::denorm_min());
}

struct EngineOptions {
    int bits = 32;        ///< 32 (float), 8, 4, 3 or 2
    double active = 1.0;  ///< share of FFN neurons computed per token, (0, 1]
    Selector selector = Selector::gate;
    std::string policy = "frequency";  ///< frequency | static | lru | window | adaptive
    double budget = 0.0;               ///< slot store per layer, as a share of the layer's neurons (0 = none)
    std::size_t rank = 0;              ///< predictor rank; 0 = dim / 4
    bool int8 = false;                 ///< int8 activations for the gate/up dot products
    std::string ffn_file;              ///< a model file of the FFN layers (save_ffn), instead of quantizing
};

/// Validates options against a model; throws std::invalid_argument with a message.
inline void validate(const EngineOptions& o) {
    if (o.bits != 32 && o.bits != 8 && o.bits != 4 && o.bits != 3 && o.bits != 2)
        throw std::invalid_argument("--bits must be 32, 8, 4, 3 or 2 (got " + std::to_string(o.bits) + ")");
    if (!(o.active > 0.0 && o.active <= 1.0))
        throw std::invalid_argument("--active must be in (0, 1] (got " + std::to_string(o.active) + ")");
    if (!(o.budget >= 0.0 && o.budget <= 1.0))
        throw std::invalid_argument("--budget must be in [0, 1] (got " + std::to_string(o.budget) + ")");
    const std::string& p = o.policy;
    if (p != "frequency" && p != "static" && p != "lru" && p != "window" && p != "adaptive")
        throw std::invalid_argument("--policy must be frequency, static, lru, window or adaptive (got '" + p + "')");
    if (!o.ffn_file.empty() && o.bits == 32)
        throw std::invalid_argument("--ffn needs --bits 8, 4, 3 or 2 (the width the file was saved with)");
}

/// Work of one layer, summed over tokens.
struct LayerCounters {
    std::uint64_t bytes = 0, neurons = 0, hits = 0, misses = 0;
};

/// One layer's FFN behind a virtual call (the bit width is chosen at run time).
class FfnLayer {
public:
    virtual ~FfnLayer() = default;
    virtual void forward(const float* x, float* y) = 0;
    virtual LayerCounters counters() const = 0;
    /// Adds the layer's quantized matrices to a model file (quantized layers only).
    virtual void save(sparseinfer::TensorFileWriter&, std::size_t) const {
        throw std::invalid_argument("--save needs quantized FFN layers (--bits 8, 4, 3 or 2)");
    }
};

/// Keeps ceil(share * hidden) neurons, at least one.
inline std::size_t neurons_for(double share, std::size_t hidden) {
    const auto k = static_cast<std::size_t>(std::ceil(share * static_cast<double>(hidden) - 1e-9));
    return k < 1 ? 1 : k > hidden ? hidden : k;
}

/// The float FFN: dense, or gate-first / predictor-selected neurons only.
class FloatFfn : public FfnLayer {
public:
    FloatFfn(const Model& m, int layer, const EngineOptions& o)
        : m_(m),
          layer_(layer),
          d_(m.config.dim),
          h_(m.config.hidden_dim),
          k_(neurons_for(o.active, h_)),
          dense_(o.active >= 1.0 && o.selector != Selector::nonzero),
          selector_(o.selector),
          act_(m.activation),
          g_(h_),
          u_(h_),
          s_(h_),
          idx_(h_) {
        if (!dense_ && selector_ == Selector::predictor)
            pred_.emplace(sparseinfer::LowRankPredictor::from_gate(m.gate(layer), h_, d_, {o.rank ? o.rank : d_ / 4}));
    }
    void forward(const float* x, float* y) override {
        const float* gate = m_.gate(layer_);
        const float* up = m_.up(layer_);
        const float* down = m_.down(layer_);
        auto dot = [&](const float* row) {
            float s = 0;
            for (std::size_t c = 0; c < d_; ++c) s += row[c] * x[c];
            return s;
        };
        const bool gate_first = dense_ || selector_ != Selector::predictor;
        if (gate_first) {
            for (std::size_t i = 0; i < h_; ++i) {
                g_[i] = dot(gate + i * d_);
                s_[i] = std::fabs(gate_activation(act_, g_[i]));
            }
            c_.bytes += h_ * d_ * sizeof(float);
        } else {
            pred_->scores(x, library_activation(act_), s_.data());
            c_.bytes += pred_->memory_bytes();
        }
        std::size_t n = h_;
        if (dense_)
            std::iota(idx_.begin(), idx_.end(), 0u);
        else
            n = selector_ == Selector::nonzero ? sparseinfer::select(nonzero_selection(), s_.data(), h_, idx_.data())
                                               : sparseinfer::select_top_k(s_.data(), h_, k_, idx_.data());
        // Ascending neurons, dense or selected, through the same loop: with the
        // zeros dropped, every output sums the same nonzero terms in the same
        // order and with the same operations (a compiler that fuses multiply-adds
        // fuses them alike), so skipping exact zeros changes no bit.
        std::fill_n(y, d_, 0.0f);
        for (std::size_t j = 0; j < n; ++j) {
            const std::size_t i = idx_[j];
            const float g = gate_first ? g_[i] : dot(gate + i * d_);
            const float hv = neuron_value(act_, g, dot(up + i * d_));
            for (std::size_t r = 0; r < d_; ++r) y[r] += down[r * h_ + i] * hv;
        }
        c_.bytes += n * (gate_first ? 2 : 3) * d_ * sizeof(float);
        c_.neurons += n;
    }
    LayerCounters counters() const override { return c_; }

private:
    const Model& m_;
    int layer_;
    std::size_t d_, h_, k_;
    bool dense_;
    Selector selector_;
    FfnActivation act_;
    std::optional<sparseinfer::LowRankPredictor> pred_;
    std::vector<float> g_, u_, s_;
    std::vector<std::uint32_t> idx_;
    LayerCounters c_;
};

/// A quantized SparseFfn layer with its selector.
template <int Bits, class Policy>
class QuantFfn : public FfnLayer {
public:
    /// From the model file `file` when given (its layer `layer`), else quantized from the checkpoint.
    QuantFfn(const Model& m, int layer, const EngineOptions& o, Policy policy, const sparseinfer::TensorFile* file)
        : ffn_(file != nullptr
                   ? from_file(m, *file, layer, policy)
                   : sparseinfer::SparseFfn<Bits, Policy>(
                         m.gate(layer), m.up(layer), m.down(layer), static_cast<std::size_t>(m.config.dim),
                         static_cast<std::size_t>(m.config.hidden_dim), library_activation(m.activation), {}, policy)),
          k_(neurons_for(o.active, ffn_.hidden())),
          dense_(o.active >= 1.0 && o.selector != Selector::nonzero),
          selector_(o.selector),
          s_(ffn_.hidden()),
          idx_(ffn_.hidden()) {
        ffn_.set_int8_activations(o.int8);
        if (o.budget > 0) ffn_.attach_store(neurons_for(o.budget, ffn_.hidden()) * ffn_.bundle_bytes());
        if (!dense_ && selector_ == Selector::predictor) {
            const std::size_t d = ffn_.d_model();
            if (file != nullptr && sparseinfer::has_predictor(*file, static_cast<std::size_t>(layer))) {
                // Saved beside the layer: its factors are read in place, as calibrated then.
                pred_.emplace(sparseinfer::LowRankPredictor::from_views(
                    sparseinfer::predictor_from(*file, static_cast<std::size_t>(layer))));
            } else {
                pred_.emplace(sparseinfer::LowRankPredictor::from_gate(m.gate(layer), ffn_.hidden(), d,
                                                                       {o.rank ? o.rank : d / 4}));
                pred_->quantize();
            }
        }
    }
    void forward(const float* x, float* y) override {
        if (dense_) {
            ffn_.forward_dense(x, y);
        } else if (selector_ == Selector::gate) {
            ffn_.forward_gate_first(x, sparseinfer::Selection::top_k(k_), y);
        } else if (selector_ == Selector::nonzero) {
            ffn_.forward_gate_first(x, nonzero_selection(), y);
        } else {
            // The predictor's Q x runs on x quantized to int8; with int8 activations
            // the layer reuses that quantization instead of making its own.
            sparseinfer::quantize_activations(x, ffn_.d_model(), xq_);
            pred_->scores(xq_, ffn_.activation(), s_.data());
            pred_bytes_ += pred_->memory_bytes();
            const std::size_t n = sparseinfer::select_top_k(s_.data(), ffn_.hidden(), k_, idx_.data());
            if (ffn_.int8_activations())
                ffn_.forward_sparse(xq_, idx_.data(), n, y);
            else
                ffn_.forward_sparse(x, idx_.data(), n, y);
        }
    }
    LayerCounters counters() const override {
        const sparseinfer::CacheStats s = ffn_.cache().stats();
        return {ffn_.stats().bytes_read + pred_bytes_, ffn_.stats().neurons, s.hits, s.misses};
    }
    void save(sparseinfer::TensorFileWriter& out, std::size_t layer) const override {
        sparseinfer::add_ffn_layer(out, layer, ffn_);
        if (pred_) sparseinfer::add_predictor(out, layer, pred_->factors());
    }

private:
    static sparseinfer::SparseFfn<Bits, Policy> from_file(const Model& m, const sparseinfer::TensorFile& file,
                                                          int layer, Policy policy) {
        auto ffn = sparseinfer::ffn_layer_from<Bits, Policy>(file, static_cast<std::size_t>(layer),
                                                             library_activation(m.activation), policy);
        if (ffn.d_model() != static_cast<std::size_t>(m.config.dim) ||
            ffn.hidden() != static_cast<std::size_t>(m.config.hidden_dim) || !ffn.gated())
            throw std::invalid_argument(
                "the FFN file's layer " + std::to_string(layer) + " does not fit the checkpoint (d_model " +
                std::to_string(ffn.d_model()) + ", hidden " + std::to_string(ffn.hidden()) + ", " +
                (ffn.gated() ? "gated" : "no gate") + "; the model has " + std::to_string(m.config.dim) + ", " +
                std::to_string(m.config.hidden_dim) + ", gated)");
        return ffn;
    }

    sparseinfer::SparseFfn<Bits, Policy> ffn_;
    std::size_t k_;
    bool dense_;
    Selector selector_;
    std::optional<sparseinfer::LowRankPredictor> pred_;
    std::vector<float> s_;
    std::vector<std::uint32_t> idx_;
    sparseinfer::QuantizedActivations xq_;
    std::uint64_t pred_bytes_ = 0;
};

template <int Bits>
std::unique_ptr<FfnLayer> make_quant_layer(const Model& m, int layer, const EngineOptions& o,
                                           const sparseinfer::TensorFile* f) {
    namespace pol = sparseinfer::policy;
    const std::size_t cap = neurons_for(o.budget > 0 ? o.budget : 0.25, static_cast<std::size_t>(m.config.hidden_dim));
    if (o.policy == "static")
        return std::make_unique<QuantFfn<Bits, pol::StaticProfile>>(m, layer, o, pol::StaticProfile{cap, 16}, f);
    if (o.policy == "lru") return std::make_unique<QuantFfn<Bits, pol::Lru>>(m, layer, o, pol::Lru{cap}, f);
    if (o.policy == "window")
        return std::make_unique<QuantFfn<Bits, pol::SlidingWindow>>(m, layer, o, pol::SlidingWindow{4, cap}, f);
    if (o.policy == "adaptive")
        return std::make_unique<QuantFfn<Bits, pol::Adaptive>>(m, layer, o, pol::Adaptive{cap}, f);
    return std::make_unique<QuantFfn<Bits, pol::FrequencyThreshold>>(m, layer, o, pol::FrequencyThreshold{0.2, 16}, f);
}

inline std::unique_ptr<FfnLayer> make_layer(const Model& m, int layer, const EngineOptions& o,
                                            const sparseinfer::TensorFile* f = nullptr) {
    if (o.bits != 32 && m.activation == FfnActivation::drelu)
        throw std::invalid_argument(
            "--activation drelu runs with --bits 32 only: the quantized layer applies its activation to the gate "
            "alone (relu gives ReGLU)");
    switch (o.bits) {
    case 8: return make_quant_layer<8>(m, layer, o, f);
    case 4: return make_quant_layer<4>(m, layer, o, f);
    case 3: return make_quant_layer<3>(m, layer, o, f);
    case 2: return make_quant_layer<2>(m, layer, o, f);
    default: return std::make_unique<FloatFfn>(m, layer, o);
    }
}

/// The transformer with one configured FFN layer per model layer, timing the FFN.
class Engine {
public:
    Engine(const Model& m, const EngineOptions& o) : m_(m), opts_(o) {
        validate(o);
        if (!o.ffn_file.empty()) {  // mapped and fully checked; the layers read it in place
            ffn_map_ = std::make_unique<sparseinfer::MappedFile>(o.ffn_file);
            ffn_file_ = std::make_unique<sparseinfer::TensorFile>(
                sparseinfer::TensorFile::from_bytes(ffn_map_->data(), ffn_map_->size()));
            const std::size_t n = sparseinfer::ffn_layer_count(*ffn_file_);
            if (n != static_cast<std::size_t>(m.config.n_layers))
                throw std::invalid_argument("the FFN file holds " + std::to_string(n) + " layers; the model has " +
                                            std::to_string(m.config.n_layers));
        }
        for (int l = 0; l < m.config.n_layers; ++l) layers_.push_back(make_layer(m, l, o, ffn_file_.get()));
        t_ = std::make_unique<Transformer>(m, [this](int layer, const float* x, float* out) {
            const auto t0 = std::chrono::steady_clock::now();
            layers_[static_cast<std::size_t>(layer)]->forward(x, out);
            ffn_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        });
    }

    /// Runs one token at one position; returns the next-token logits.
    const std::vector<float>& forward(int token, int pos) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<float>& logits = t_->forward(token, pos);
        total_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ++tokens_;
        return logits;
    }

    /// Greedy decoding from BOS (token 1) for `steps` positions.
    std::vector<int> generate(int steps) {
        std::vector<int> out;
        int token = 1;
        for (int pos = 0; pos < steps; ++pos) {
            token = argmax(forward(token, pos));
            out.push_back(token);
        }
        return out;
    }

    /// Writes every layer's quantized FFN matrices to a model file at `path`.
    void save_ffn(const std::string& path) const {
        sparseinfer::TensorFileWriter out;
        for (std::size_t l = 0; l < layers_.size(); ++l) layers_[l]->save(out, l);
        out.write(path);
    }

    double tokens_per_second() const { return total_seconds_ > 0 ? static_cast<double>(tokens_) / total_seconds_ : 0; }
    double ffn_share() const { return total_seconds_ > 0 ? ffn_seconds_ / total_seconds_ : 0; }
    /// Cache hit rate over every layer (0 when nothing was recorded, e.g. dense float).
    double hit_rate() const {
        std::uint64_t h = 0, n = 0;
        for (const auto& l : layers_) {
            const LayerCounters c = l->counters();
            h += c.hits;
            n += c.hits + c.misses;
        }
        return n ? static_cast<double>(h) / static_cast<double>(n) : 0.0;
    }
    /// FFN weight bytes read per token, every layer (predictor factors included).
    double bytes_per_token() const {
        std::uint64_t b = 0;
        for (const auto& l : layers_) b += l->counters().bytes;
        return tokens_ ? static_cast<double>(b) / static_cast<double>(tokens_) : 0.0;
    }
    /// Share of FFN neurons computed per token.
    double active_share() const {
        std::uint64_t n = 0;
        for (const auto& l : layers_) n += l->counters().neurons;
        const double all = static_cast<double>(tokens_) * m_.config.n_layers * m_.config.hidden_dim;
        return all > 0 ? static_cast<double>(n) / all : 0.0;
    }

private:
    const Model& m_;
    EngineOptions opts_;
    std::unique_ptr<sparseinfer::MappedFile> ffn_map_;  // before layers_: they view its bytes
    std::unique_ptr<sparseinfer::TensorFile> ffn_file_;
    std::vector<std::unique_ptr<FfnLayer>> layers_;
    std::unique_ptr<Transformer> t_;
    double ffn_seconds_ = 0, total_seconds_ = 0;
    std::uint64_t tokens_ = 0;
};

/// Mean KL(reference || configured) of next-token distributions and the share
/// of positions with the same top-1 token, teacher-forcing the reference's own
/// greedy sequence of `steps` positions. The reference is the float model, or
/// another configuration (e.g. dense at the same bit width), of this model or
/// of another with the same vocabulary (e.g. the checkpoint a GGUF file came from).
struct Fidelity {
    double kld = 0, top1 = 0;
    std::vector<int> reference_tokens;
};

inline Fidelity compare(const Model& reference_model, const EngineOptions& reference_options, const Model& m,
                        const EngineOptions& o, int steps) {
    if (reference_model.config.vocab_size != m.config.vocab_size)
        throw std::invalid_argument("the models to compare have different vocabularies");
    Engine reference(reference_model, reference_options);
    Engine engine(m, o);
    Fidelity f;
    int token = 1;
    std::size_t same = 0;
    double kl_sum = 0;
    for (int pos = 0; pos < steps; ++pos) {
        const std::vector<float> p = reference.forward(token, pos);
        const std::vector<float>& q = engine.forward(token, pos);
        // log-softmax of both in double
        auto log_softmax = [](const std::vector<float>& v) {
            double mx = v[0];
            for (float x : v) mx = std::max(mx, static_cast<double>(x));
            double s = 0;
            for (float x : v) s += std::exp(x - mx);
            std::vector<double> out(v.size());
            for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[i] - mx - std::log(s);
            return out;
        };
        const std::vector<double> lp = log_softmax(p), lq = log_softmax(q);
        double kl = 0;
        for (std::size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
        kl_sum += kl;
        const int next = argmax(p);
        same += next == argmax(q) ? 1 : 0;
        f.reference_tokens.push_back(next);
        token = next;
    }
    f.kld = kl_sum / steps;
    f.top1 = static_cast<double>(same) / steps;
    return f;
}

/// Two configurations of the same model.
inline Fidelity compare(const Model& m, const EngineOptions& reference_options, const EngineOptions& o, int steps) {
    return compare(m, reference_options, m, o, steps);
}

/// Against the float model (dense float FFN).
inline Fidelity compare(const Model& m, const EngineOptions& o, int steps) { return compare(m, {}, o, steps); }

/// A small random model of the stories260K shape, for when no checkpoint is at hand.
inline Model synthetic_model(unsigned seed = 1) {
    Model m;
    Config& c = m.config;
    c.dim = 64;
    c.hidden_dim = 172;
    c.n_layers = 5;
    c.n_heads = 8;
    c.n_kv_heads = 4;
    c.vocab_size = 512;
    c.seq_len = 512;
    c.shared_classifier = true;
    std::mt19937 rng(seed);
    auto fill = [&](std::vector<float>& v, std::size_t n, float sd, float mean = 0.0f) {
        std::normal_distribution<float> nd(mean, sd);
        v.resize(n);
        for (auto& x : v) x = nd(rng);
    };
    const std::size_t d = 64, h = 172, L = 5, V = 512, kv = 32;
    fill(m.token_embedding, V * d, 1.0f);
    fill(m.rms_att, L * d, 0.1f, 1.0f);
    fill(m.wq, L * d * d, 0.125f);
    fill(m.wk, L * kv * d, 0.125f);
    fill(m.wv, L * kv * d, 0.125f);
    fill(m.wo, L * d * d, 0.125f);
    fill(m.rms_ffn, L * d, 0.1f, 1.0f);
    fill(m.w1, L * h * d, 0.125f);
    fill(m.w2, L * d * h, 0.076f);
    fill(m.w3, L * h * d, 0.125f);
    fill(m.rms_final, d, 0.1f, 1.0f);
    m.classifier = m.token_embedding;
    return m;
}

/// A llama2.c tokenizer's pieces and scores (tokenizer.ggml.tokens / .scores).
struct Vocabulary {
    std::vector<std::string> pieces;
    std::vector<float> scores;
};

/// Reads a llama2.c tokenizer file (a max length, then per token a score, a length and the bytes).
inline Vocabulary read_vocabulary(const std::string& path, int vocab_size) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open tokenizer '" + path + "'");
    std::int32_t max_len = 0;
    if (!in.read(reinterpret_cast<char*>(&max_len), 4))
        throw std::runtime_error("'" + path + "' is not a tokenizer file");
    Vocabulary v;
    for (int i = 0; i < vocab_size; ++i) {
        float score = 0;
        std::int32_t len = 0;
        if (!in.read(reinterpret_cast<char*>(&score), 4) || !in.read(reinterpret_cast<char*>(&len), 4) || len < 0 ||
            len > 1 << 16)
            throw std::runtime_error("'" + path + "': token " + std::to_string(i) + " is malformed or missing");
        std::string s(static_cast<std::size_t>(len), '\0');
        if (!in.read(s.data(), len))
            throw std::runtime_error("'" + path + "': token " + std::to_string(i) + " is truncated");
        v.pieces.push_back(std::move(s));
        v.scores.push_back(score);
    }
    return v;
}

/// Decodes token ids to text with a llama2.c vocabulary.
class Tokenizer {
public:
    /// From a llama2.c tokenizer file.
    Tokenizer(const std::string& path, int vocab_size) : pieces_(read_vocabulary(path, vocab_size).pieces) {}
    /// From pieces already read (e.g. a GGUF file's tokenizer.ggml.tokens).
    explicit Tokenizer(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
    /// The text of a token following `prev` (a leading space after BOS is dropped; <0xXX> is a byte).
    std::string decode(int prev, int token) const {
        std::string s = pieces_.at(static_cast<std::size_t>(token));
        if (prev == 1 && !s.empty() && s[0] == ' ') s.erase(0, 1);
        unsigned byte = 0;
        if (s.size() == 6 && std::sscanf(s.c_str(), "<0x%02X>", &byte) == 1)
            return std::string(1, static_cast<char>(byte));
        return s;
    }

private:
    std::vector<std::string> pieces_;
};

}  // namespace llama2c
