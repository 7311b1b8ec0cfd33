// sparseinfer/predictor.hpp - a low-rank predictor of which FFN neurons fire.
//
// A gated FFN's neuron i is active when act(gate_i . x) is large. The
// predictor approximates the gate matrix G [hidden][d_model] by a rank-r
// product P Q (P [hidden][r], Q [r][d_model]) and scores every neuron with
// |act((P (Q x))_i)| for r (hidden + d_model) multiply-adds instead of
// hidden * d_model. It is calibrated without training:
//   - the truncated SVD of G, exact for small matrices and randomized for
//     large ones (detail/low_rank_fit.hpp);
//   - optionally refine(): P re-fitted by least squares so that P Q x matches
//     the exact gate values on recorded inputs (ridge-regularized).
// quantize() stores Q as 8-bit QuantizedWeights (Q x on int8 activations) and
// P as int8 rows with one scale per row, in panels of 16 rows for the panel
// GEMV kernel (detail/int8_panels.hpp; Q x rounded to int8 once): a quarter of
// the float bytes, and 16 rows per vector instruction.
// factors() exposes the 8-bit factors as stored, and from_views builds a
// predictor over such factors in someone else's bytes (a mapped model file,
// model_file.hpp) without copying them: its predictions are bit-identical to
// those of the predictor the factors came from (predictor_factors.hpp,
// detail/int8_factors.hpp).
//
// Checked top-k (select_top_k_checked): what a rank-r predictor cannot see is
// the residual G - P Q; for inputs with unit variance per coordinate the error
// of neuron i is about N(0, sigma_i^2) with sigma_i = ||(G - P Q)_i||
// (error_scale(), from calibration). A neuron is misplaced only when its
// predicted pre-activation lies within a few sigma_i of an edge of the kept
// region {z : |act(z)| >= cut}, cut being the k-th largest score (for SiLU and
// GELU the region has a negative part too: |act| peaks at 0.28 resp. 0.17
// below zero). The `checks` neurons nearest an edge in units of their own
// sigma_i get their exact gate value from the caller (the layer's gate rows),
// the rest keep the prediction (detail/kept_region.hpp, detail/nearest_edge.hpp;
// recall and cost are measured in docs/ffn.md).
//
// The predictor holds scratch and is used by one thread at a time; given a
// pool (set_executor), the 8-bit product over P runs on the pool's threads.
//
//   auto pred = sparseinfer::LowRankPredictor::from_gate(gate, 11008, 4096, {/*rank=*/64});
//   pred.quantize();
//   std::vector<float> s(11008);
//   pred.scores(x, sparseinfer::Activation::silu, s.data());
//   std::vector<std::uint32_t> active(11008);
//   std::size_t n = sparseinfer::select_top_k(s.data(), 11008, 1100, active.data());
//   ffn.forward_sparse(x, active.data(), n, y);
//   // or, with 128 exact checks against the layer's 4-bit gate rows, x quantized
//   // to int8 once for the predictor, the checks and the layer:
//   auto xq = sparseinfer::quantize_activations(x, 4096);
//   n = pred.select_top_k_checked(xq, sparseinfer::Activation::silu, 1100, 128,
//       [&](const std::uint32_t* ids, std::size_t m, float* pre) {
//           sparseinfer::kernels::gemv_rows(ffn.layout(), ffn.matrix_data(sparseinfer::FfnMatrix::gate),
//                                           ids, m, xq, pre);
//       }, active.data());
//   ffn.forward_sparse(xq, active.data(), n, y);
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "activation.hpp"
#include "detail/aligned_allocator.hpp"
#include "detail/int8_factors.hpp"
#include "detail/int8_panels.hpp"
#include "detail/kept_region.hpp"
#include "detail/low_rank_fit.hpp"
#include "detail/nearest_edge.hpp"
#include "detail/weights_file.hpp"
#include "error.hpp"
#include "executor.hpp"
#include "kernels/isa.hpp"
#include "predictor_factors.hpp"
#include "quantized_activations.hpp"
#include "quantized_weights.hpp"
#include "quantized_weights_view.hpp"
#include "selection.hpp"
#include "thread_pool.hpp"

namespace sparseinfer {

/// How a LowRankPredictor is calibrated.
struct PredictorOptions {
    std::size_t rank = 64;               ///< r, the number of factor columns
    std::size_t oversample = 10;         ///< extra random directions of the range finder
    int power_iterations = 2;            ///< subspace iterations (more: closer to the exact SVD)
    std::size_t exact_svd_limit = 1024;  ///< use a full BDCSVD when min(hidden, d_model) <= this
    std::uint64_t seed = 1;              ///< of the range finder's Gaussian matrix
};

/// Predicts the gate pre-activations of every neuron with a rank-r factorization.
class LowRankPredictor {
public:
    using RowMatrix = detail::RowMatrixF;  ///< row-major float matrix of the factors

    /// Calibrates from a gate matrix [hidden][d_model], row-major, by truncated
    /// SVD (exact or randomized, see the header comment). rank is clamped to
    /// min(hidden, d_model). Throws on a null matrix, zero sizes or rank 0.
    static LowRankPredictor from_gate(const float* gate, std::size_t hidden, std::size_t d_model,
                                      PredictorOptions opts = {}) {
        if (gate == nullptr) throw error("argument 'gate' is a null pointer");
        if (hidden == 0 || d_model == 0) throw error("the gate matrix is empty (hidden or d_model is 0)");
        if (opts.rank == 0) throw error("rank is 0; a predictor needs rank >= 1");
        for (std::size_t i = 0; i < hidden * d_model; ++i)
            if (!std::isfinite(gate[i]))
                throw error("gate value at row " + std::to_string(i / d_model) + ", column " +
                            std::to_string(i % d_model) + " is not finite");
        const auto m = static_cast<Eigen::Index>(hidden), n = static_cast<Eigen::Index>(d_model);
        const Eigen::Index r = static_cast<Eigen::Index>(std::min<std::size_t>(opts.rank, std::min(hidden, d_model)));
        Eigen::Map<const RowMatrix> G(gate, m, n);
        LowRankPredictor p;
        detail::truncated_svd(G, r, {opts.oversample, opts.power_iterations, opts.exact_svd_limit, opts.seed}, p.P_,
                              p.Q_);
        p.set_sizes(hidden, static_cast<std::size_t>(r), d_model);
        p.set_error_scale(G);
        return p;
    }

    /// A quantized predictor over 8-bit factors someone else owns, e.g. views of
    /// a mapped model file (model_file.hpp): f.q and f.p_panels are read in
    /// place and must outlive the predictor and its copies; the row scales and
    /// error scales are copied. Predictions are bit-identical to those of the
    /// predictor whose factors() were saved. With Verify::full every byte of
    /// P's panels is checked (codes in [-127, 127], zero padding); the sizes,
    /// scales and error scales (finite, >= 0) always are. Throws
    /// sparseinfer::format_error naming what was wrong (sparseinfer::error for
    /// null pointers). There are no float factors: P() and Q() are empty and
    /// refine() and quantize() throw.
    ///
    ///   auto f = pred.factors();   // of a quantized predictor; save them, map them, then:
    ///   auto same = sparseinfer::LowRankPredictor::from_views(f);
    static LowRankPredictor from_views(const PredictorFactors& f, Verify verify = Verify::full) {
        const std::size_t h = f.hidden();
        if (f.error_scale.size() != h)
            throw format_error("predictor factors: " + std::to_string(f.error_scale.size()) + " error scales for " +
                               std::to_string(h) + " neurons (P's row scales)");
        LowRankPredictor p;
        p.f8_ = detail::Int8Factors::view(f.q, f.p_panels, f.p_panel_bytes, f.p_scales.data(), h, verify);
        p.sigma_ = f.error_scale;
        p.inv_sigma_.resize(h);
        for (std::size_t i = 0; i < h; ++i) {
            const float s = p.sigma_[i];
            if (!(std::isfinite(s) && s >= 0.0f))
                throw format_error("predictor factors: error scale of neuron " + std::to_string(i) + " is " +
                                   std::to_string(s) + "; error scales are finite and >= 0");
            p.inv_sigma_[i] = s > 0 ? 1.0f / s : std::numeric_limits<float>::infinity();
        }
        p.set_sizes(h, f.q.rows(), f.q.cols());
        return p;
    }

    /// The 8-bit factors as stored: Q and P's panels point into this predictor
    /// (valid while it or a copy lives, until quantize() or refine()), the
    /// scales are copies. Throws unless quantized(). Write them with
    /// add_predictor (model_file.hpp).
    PredictorFactors factors() const {
        if (!quantized()) throw error("the predictor has no 8-bit factors; call quantize() first");
        return {f8_.q(), f8_.panels(), f8_.panel_bytes(), f8_.scales(), sigma_};
    }

    /// Re-fits P by least squares on n recorded inputs (row-major [n][d_model])
    /// so that P Q x matches gate x on them; `ridge` regularizes the normal
    /// equations relative to their scale. Drops a quantized copy (call quantize() again).
    void refine(const float* inputs, std::size_t n, const float* gate, double ridge = 1e-4) {
        if (inputs == nullptr) throw error("argument 'inputs' is a null pointer");
        if (gate == nullptr) throw error("argument 'gate' is a null pointer");
        if (n == 0) throw error("refine needs at least one recorded input (n is 0)");
        if (P_.size() == 0) throw error("a predictor built from views has no float factors to refine");
        const Eigen::Index d = Q_.cols(), m = P_.rows();
        Eigen::Map<const RowMatrix> X(inputs, static_cast<Eigen::Index>(n), d);
        Eigen::Map<const RowMatrix> G(gate, m, d);
        P_ = detail::ridge_refit(X, Q_, G, ridge);
        f8_ = {};
        set_error_scale(G);
    }

    /// Stores the factors in 8 bits; predict() then uses them. Q becomes
    /// QuantizedWeights<8> (`opts`; its rows are d_model long), multiplied by x
    /// quantized to int8 per block of 32. P's rows are only `rank` long, too
    /// short for the row kernels' per-row set-up to pay off, so P is stored as
    /// int8 rows with one float scale per row in panels of 16 rows
    /// (detail/int8_panels.hpp), and Q x is rounded to int8 with one scale: the
    /// panel kernel then computes 16 neurons per vector instruction, from a
    /// quarter of the float bytes. Throws if rank is above the panel kernel's
    /// depth limit (65536).
    void quantize(QuantOptions opts = {}) {
        if (P_.size() == 0) throw error("a predictor built from views has no float factors to quantize");
        f8_ = detail::Int8Factors::quantize(P_.data(), Q_.data(), hidden_, rank_, d_model_, opts);
    }
    bool quantized() const noexcept { return !f8_.empty(); }  ///< true after quantize() or from_views

    /// Runs the 8-bit factors' product over P (predict, scores, select_top_k_checked
    /// from either input) on a pool's threads; the split does not depend on the
    /// thread count, so the outputs are bit-identical for any pool. The float
    /// factors (before quantize()) run on the caller's thread. The pool must
    /// outlive its use here (see executor.hpp for plugging in another pool).
    void set_executor(ThreadPool& pool) noexcept { executor_ = pool.executor(); }
    /// set_executor for any pool plugged in as an Executor (executor.hpp).
    void set_executor(Executor executor) noexcept { executor_ = executor; }

    std::size_t rank() const noexcept { return rank_; }        ///< r
    std::size_t hidden() const noexcept { return hidden_; }    ///< neurons predicted
    std::size_t d_model() const noexcept { return d_model_; }  ///< length of x
    /// Bytes predict() reads: both factors, float or quantized.
    std::size_t memory_bytes() const noexcept {
        if (quantized()) return f8_.memory_bytes();
        return static_cast<std::size_t>(P_.size() + Q_.size()) * sizeof(float);
    }
    /// The float factors (P [hidden][rank], Q [rank][d_model]); empty for a
    /// predictor from views.
    const RowMatrix& P() const noexcept { return P_; }
    const RowMatrix& Q() const noexcept { return Q_; }  ///< the float factor Q [rank][d_model]
    /// sigma_i = ||(G - P Q)_i||, the standard deviation of neuron i's prediction
    /// error for inputs with independent unit-variance coordinates (set by
    /// from_gate and refine; the 8-bit factors' rounding is not included).
    const std::vector<float>& error_scale() const noexcept { return sigma_; }

    /// pre[0..hidden) = P (Q x), the predicted gate pre-activations.
    void predict(const float* x, float* pre) {
        if (x == nullptr) throw error("argument 'x' is a null pointer");
        if (pre == nullptr) throw error("argument 'pre' is a null pointer");
        predict_impl(x, pre);
    }
    /// The same from x already quantized to int8 (quantize_activations), the
    /// form predict(const float*) quantizes x to itself: a token that also
    /// feeds xq to SparseFfn and to exact gate checks quantizes x once. Needs
    /// the 8-bit factors (quantize()); throws otherwise or on a size mismatch.
    void predict(const QuantizedActivations& xq, float* pre) {
        check_input(xq);
        if (pre == nullptr) throw error("argument 'pre' is a null pointer");
        predict_q8(xq, pre);
    }

    /// scores[i] = |act(predicted pre-activation i)|, comparable with
    /// SparseFfn::exact_scores; feed them to select_top_k / select_at_least.
    void scores(const float* x, Activation act, float* scores) {
        if (x == nullptr) throw error("argument 'x' is a null pointer");
        if (scores == nullptr) throw error("argument 'scores' is a null pointer");
        predict_impl(x, scores);
        activation_scores(act, scores, hidden(), scores);
    }
    /// The same from x already quantized to int8 (see predict); needs quantize().
    void scores(const QuantizedActivations& xq, Activation act, float* scores) {
        check_input(xq);
        if (scores == nullptr) throw error("argument 'scores' is a null pointer");
        predict_q8(xq, scores);
        activation_scores(act, scores, hidden(), scores);
    }

    /// Top k with exact checks (see the header comment): predicts every neuron,
    /// then asks exact_gate(ids, m, pre) for the exact pre-activations of the
    /// m = min(checks, hidden) neurons predicted nearest an edge of the kept
    /// region in units of error_scale(), and writes the top k of the scores,
    /// the checked ones exact, to out[0..k) in ascending order (as
    /// select_top_k; `out` must hold hidden() entries). Returns min(k, hidden).
    /// checks == 0 is the plain top k of scores(); checks == hidden() the exact
    /// top k. exact_gate must write pre[0..m); the ids are ascending.
    template <class ExactGate>
    std::size_t select_top_k_checked(const float* x, Activation act, std::size_t k, std::size_t checks,
                                     ExactGate&& exact_gate, std::uint32_t* out) {
        if (out == nullptr) throw error("argument 'out' is a null pointer");
        const std::size_t h = hidden();
        if (x == nullptr) throw error("argument 'x' is a null pointer");
        pre_.resize(h);
        predict_impl(x, pre_.data());
        return select_checked(act, k, checks, exact_gate, out);
    }
    /// The same from x already quantized to int8 (see predict); needs quantize().
    template <class ExactGate>
    std::size_t select_top_k_checked(const QuantizedActivations& xq, Activation act, std::size_t k, std::size_t checks,
                                     ExactGate&& exact_gate, std::uint32_t* out) {
        if (out == nullptr) throw error("argument 'out' is a null pointer");
        check_input(xq);
        pre_.resize(hidden());
        predict_q8(xq, pre_.data());
        return select_checked(act, k, checks, exact_gate, out);
    }

private:
    LowRankPredictor() = default;

    /// select_top_k_checked once pre_ holds the predictions.
    template <class ExactGate>
    std::size_t select_checked(Activation act, std::size_t k, std::size_t checks, ExactGate& exact_gate,
                               std::uint32_t* out) {
        const std::size_t h = hidden();
        score_.resize(h);
        activation_scores(act, pre_.data(), h, score_.data());
        k = std::min(k, h);
        checks = std::min(checks, h);
        if (k == 0 || k == h || checks == 0) return select_top_k(score_.data(), h, k, out);
        // The cut: the k-th largest predicted score (its key; scores are >= 0 or NaN).
        std::size_t ties = 0;
        const std::uint32_t cut_key = detail::kth_largest_key(score_.data(), h, k, out, ties);
        const float cut = detail::score_of_key(cut_key);  // NaN (fewer than k numbers): kept_region has no edge
        checked_.clear();
        if (checks < h) {
            // The `checks` neurons of smallest distance / sigma_i (detail/nearest_edge.hpp).
            const detail::KeptRegion region = detail::kept_region(act, cut);
            std::uint32_t* key = out;  // out is scratch until the final selection
            detail::margin_keys(region, pre_.data(), inv_sigma_.data(), h, key);
            detail::nearest_edge(key, h, checks, best_, checked_);
        } else {
            for (std::size_t i = 0; i < h; ++i) checked_.push_back(static_cast<std::uint32_t>(i));
        }
        exact_.assign(checks, 0.0f);
        exact_gate(static_cast<const std::uint32_t*>(checked_.data()), checks, exact_.data());
        for (std::size_t j = 0; j < checks; ++j) score_[checked_[j]] = std::fabs(activate(act, exact_[j]));
        return select_top_k(score_.data(), h, k, out);
    }

    void set_sizes(std::size_t hidden, std::size_t rank, std::size_t d_model) {
        hidden_ = hidden;
        rank_ = rank;
        d_model_ = d_model;
        t_.assign(rank, 0.0f);
    }

    /// pre = P (Q x).
    void predict_impl(const float* x, float* pre) {
        const std::size_t m = hidden();
        if (!quantized()) {
            Eigen::Map<const Eigen::VectorXf> xv(x, Q_.cols());
            Eigen::Map<Eigen::VectorXf> tv(t_.data(), Q_.rows());
            tv.noalias() = Q_ * xv;
            Eigen::Map<Eigen::VectorXf>(pre, static_cast<Eigen::Index>(m)).noalias() = P_ * tv;
            return;
        }
        quantize_activations(x, d_model(), xq_);  // a non-finite x makes its blocks' scales NaN
        predict_q8(xq_, pre);
    }

    void check_input(const QuantizedActivations& xq) const {
        if (!quantized())
            throw error("predicting from int8 activations needs the 8-bit factors; call quantize() first");
        detail::check_quantized_activations(xq, d_model(), "the predictor's d_model is " + std::to_string(d_model()));
    }

    /// pre = P (Q x) with the 8-bit factors, x quantized to int8.
    void predict_q8(const QuantizedActivations& xq, float* pre) { f8_.predict(xq, executor_, t_.data(), tq_, pre); }

    void set_error_scale(const detail::RowMatrixFMap& G) {
        const std::size_t m = static_cast<std::size_t>(P_.rows());
        sigma_.resize(m);
        inv_sigma_.resize(m);
        detail::residual_row_norms(G, P_, Q_, sigma_.data());
        for (std::size_t i = 0; i < m; ++i)
            inv_sigma_[i] = sigma_[i] > 0 ? 1.0f / sigma_[i] : std::numeric_limits<float>::infinity();
    }

    std::size_t hidden_ = 0, rank_ = 0, d_model_ = 0;
    RowMatrix P_, Q_;         // empty for a predictor from views
    detail::Int8Factors f8_;  // copies of a predictor share its immutable 8-bit factors
    std::vector<float> sigma_, inv_sigma_;
    std::vector<float> t_, pre_, score_, exact_;  // scratch
    std::vector<std::uint32_t> checked_;
    std::vector<std::uint64_t> best_;
    std::vector<std::int8_t> tq_;
    QuantizedActivations xq_;
    Executor executor_;  // inline unless set_executor was called
};

}  // namespace sparseinfer
