// sparseinfer/activation_trace.hpp - recorded or synthetic per-token FFN activation traces.
//
// An ActivationTrace is the list of active neurons of each token of one layer,
// the input a NeuronCache replays. make_synthetic_trace() draws one from a
// seeded model of what real FFNs show: per-neuron popularity follows a Zipf
// law over a random ranking (exponent 0.89 reproduces OPT-30B's "26% of the
// neurons carry 80% of the activations"; 0.76 and 0.40 the ReGLU and SwiGLU
// LLaMA-70B figures), a fixed share of the neurons is active per token, a share
// `persistence` of each token's active neurons is carried into the next token
// (consecutive tokens share neurons), and optionally the popularity ranking is
// redrawn halfway (a topic change). The same options and seed give the same
// trace on every platform (own generator, no std:: distributions).
//
//   sparseinfer::SyntheticTraceOptions o;
//   o.zipf_exponent = 0.89; o.persistence = 0.5;
//   sparseinfer::ActivationTrace t = sparseinfer::make_synthetic_trace(o);
//   for (std::size_t i = 0; i < t.num_tokens(); ++i) cache.record_activations(t.token(i), t.token_size(i));
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "error.hpp"

namespace sparseinfer {

/// Active neurons per token, stored flat.
class ActivationTrace {
public:
    /// An empty trace over neurons 0..num_neurons-1.
    explicit ActivationTrace(std::size_t num_neurons = 0) : num_neurons_(num_neurons), offsets_{0} {}

    /// Neurons the trace indexes.
    std::size_t num_neurons() const noexcept { return num_neurons_; }
    /// Tokens recorded.
    std::size_t num_tokens() const noexcept { return offsets_.size() - 1; }
    /// Total active entries over all tokens.
    std::size_t num_activations() const noexcept { return neurons_.size(); }
    /// Token t's active neurons (token_size(t) of them); t < num_tokens().
    const std::uint32_t* token(std::size_t t) const noexcept { return neurons_.data() + offsets_[t]; }
    /// Number of active neurons of token t; t < num_tokens().
    std::size_t token_size(std::size_t t) const noexcept { return offsets_[t + 1] - offsets_[t]; }

    /// Appends one token; throws sparseinfer::error when an index is out of range.
    void add_token(const std::uint32_t* active, std::size_t n) {
        for (std::size_t k = 0; k < n; ++k)
            if (active[k] >= num_neurons_)
                throw error("ActivationTrace::add_token: active[" + std::to_string(k) +
                            "] = " + std::to_string(active[k]) + " is out of range (num_neurons " +
                            std::to_string(num_neurons_) + ")");
        neurons_.insert(neurons_.end(), active, active + n);
        offsets_.push_back(neurons_.size());
    }
    /// Appends one token (as above).
    void add_token(const std::vector<std::uint32_t>& active) { add_token(active.data(), active.size()); }

private:
    std::size_t num_neurons_;
    std::vector<std::size_t> offsets_;
    std::vector<std::uint32_t> neurons_;
};

/// Parameters of make_synthetic_trace().
struct SyntheticTraceOptions {
    std::size_t num_neurons = 11008;  ///< neurons of the layer
    std::size_t tokens = 2000;        ///< tokens to draw
    double active_fraction = 0.10;    ///< share of the neurons active per token, in (0, 1]
    double zipf_exponent = 0.89;      ///< popularity of the neuron of rank r is (r + 1)^-exponent; >= 0
    double persistence = 0.0;         ///< share of a token's active neurons kept in the next token, [0, 1]
    bool drift = false;               ///< redraw the popularity ranking at token tokens / 2
    std::uint64_t seed = 1;           ///< of the random generator; equal seeds give equal traces
};

namespace detail {
/// SplitMix64: small, fast, and the same stream everywhere.
class TraceRng {
public:
    explicit TraceRng(std::uint64_t seed) noexcept : s_(seed) {}
    std::uint64_t next() noexcept {
        std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, 1).
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    /// Uniform in [0, n).
    std::size_t below(std::size_t n) noexcept { return static_cast<std::size_t>(uniform() * static_cast<double>(n)); }

private:
    std::uint64_t s_;
};
}  // namespace detail

/// A seeded synthetic trace (see the header comment). Each token keeps a random
/// round(persistence * K) of the previous token's K active neurons and draws the others from
/// the popularity law without replacement. Throws sparseinfer::error on invalid options.
inline ActivationTrace make_synthetic_trace(const SyntheticTraceOptions& o) {
    if (o.num_neurons == 0 || o.num_neurons >= 0xFFFFFFFFu)
        throw error("make_synthetic_trace: num_neurons (" + std::to_string(o.num_neurons) +
                    ") must be in [1, 2^32 - 1)");
    if (!(o.active_fraction > 0 && o.active_fraction <= 1))
        throw error("make_synthetic_trace: active_fraction (" + std::to_string(o.active_fraction) +
                    ") must be in (0, 1]");
    if (!(o.zipf_exponent >= 0 && std::isfinite(o.zipf_exponent)))
        throw error("make_synthetic_trace: zipf_exponent (" + std::to_string(o.zipf_exponent) + ") must be >= 0");
    if (!(o.persistence >= 0 && o.persistence <= 1))
        throw error("make_synthetic_trace: persistence (" + std::to_string(o.persistence) + ") must be in [0, 1]");

    const std::size_t n = o.num_neurons;
    const std::size_t k =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(o.active_fraction * static_cast<double>(n))));
    const std::size_t keep = static_cast<std::size_t>(std::lround(o.persistence * static_cast<double>(k)));
    detail::TraceRng rng(o.seed);

    // cumulative[r] = sum of the popularity of ranks 0..r; neuron_of_rank is a random ranking.
    std::vector<double> cumulative(n);
    double total = 0;
    for (std::size_t r = 0; r < n; ++r) cumulative[r] = total += std::pow(static_cast<double>(r + 1), -o.zipf_exponent);
    std::vector<std::uint32_t> neuron_of_rank(n);
    auto shuffle_ranking = [&] {
        for (std::size_t i = 0; i < n; ++i) neuron_of_rank[i] = static_cast<std::uint32_t>(i);
        for (std::size_t i = n - 1; i > 0; --i) std::swap(neuron_of_rank[i], neuron_of_rank[rng.below(i + 1)]);
    };
    shuffle_ranking();

    ActivationTrace trace(n);
    std::vector<std::uint32_t> prev, cur;
    std::vector<std::uint8_t> chosen(n, 0);
    for (std::size_t t = 0; t < o.tokens; ++t) {
        if (o.drift && t == o.tokens / 2 && t > 0) shuffle_ranking();
        cur.clear();
        // Carry a random `keep` of the previous token's neurons (partial Fisher-Yates).
        const std::size_t carried = std::min(keep, prev.size());
        for (std::size_t i = 0; i < carried; ++i) {
            std::swap(prev[i], prev[i + rng.below(prev.size() - i)]);
            cur.push_back(prev[i]);
            chosen[prev[i]] = 1;
        }
        // Fill from the popularity law, rejecting neurons already chosen; when most of the mass is
        // taken (k close to n), rejection stalls, so draw from the remaining neurons by a scan.
        std::size_t attempts = 0;
        while (cur.size() < k) {
            if (++attempts > 16 * k + 1024) {
                double rest = 0;
                for (std::size_t r = 0; r < n; ++r)
                    if (!chosen[neuron_of_rank[r]]) rest += cumulative[r] - (r ? cumulative[r - 1] : 0.0);
                double u = rng.uniform() * rest;
                std::size_t r = 0;
                for (; r + 1 < n; ++r) {
                    if (chosen[neuron_of_rank[r]]) continue;
                    u -= cumulative[r] - (r ? cumulative[r - 1] : 0.0);
                    if (u < 0) break;
                }
                while (chosen[neuron_of_rank[r]]) r = (r + 1) % n;
                chosen[neuron_of_rank[r]] = 1;
                cur.push_back(neuron_of_rank[r]);
                continue;
            }
            const double u = rng.uniform() * total;
            std::size_t r = static_cast<std::size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) -
                                                     cumulative.begin());
            if (r >= n) r = n - 1;
            const std::uint32_t x = neuron_of_rank[r];
            if (chosen[x]) continue;
            chosen[x] = 1;
            cur.push_back(x);
        }
        for (std::uint32_t x : cur) chosen[x] = 0;
        trace.add_token(cur);
        prev.swap(cur);
    }
    return trace;
}

}  // namespace sparseinfer
