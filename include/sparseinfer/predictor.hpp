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
#include "detail/int8_panels.hpp"
#include "detail/kept_region.hpp"
#include "detail/low_rank_fit.hpp"
#include "detail/nearest_edge.hpp"
#include "detail/row_chunks.hpp"
#include "error.hpp"
#include "executor.hpp"
#include "kernels/isa.hpp"
#include "quantized_activations.hpp"
#include "quantized_weights.hpp"
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
        p.t_.assign(static_cast<std::size_t>(r), 0.0f);
        p.set_error_scale(G);
        return p;
    }

    /// Re-fits P by least squares on n recorded inputs (row-major [n][d_model])
    /// so that P Q x matches gate x on them; `ridge` regularizes the normal
    /// equations relative to their scale. Drops a quantized copy (call quantize() again).
    void refine(const float* inputs, std::size_t n, const float* gate, double ridge = 1e-4) {
        if (inputs == nullptr) throw error("argument 'inputs' is a null pointer");
        if (gate == nullptr) throw error("argument 'gate' is a null pointer");
        if (n == 0) throw error("refine needs at least one recorded input (n is 0)");
        const Eigen::Index d = Q_.cols(), m = P_.rows();
        Eigen::Map<const RowMatrix> X(inputs, static_cast<Eigen::Index>(n), d);
        Eigen::Map<const RowMatrix> G(gate, m, d);
        P_ = detail::ridge_refit(X, Q_, G, ridge);
        qP_.reset();
        qQ_.reset();
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
        const std::size_t m = hidden(), r = rank(), depth = detail::s8_panel_depth(r);
        if (depth > detail::s8_panel_max_depth)
            throw error("rank " + std::to_string(r) + " is too large for 8-bit factors (at most " +
                        std::to_string(detail::s8_panel_max_depth) + ")");
        kernels::init_kernels();
        const RowMatrix Qr = Q_;
        auto qQ = std::make_shared<QuantizedWeights<8>>(QuantizedWeights<8>::from_f32(
            Qr.data(), static_cast<std::size_t>(Qr.rows()), static_cast<std::size_t>(Qr.cols()), opts));
        auto q = std::make_shared<Int8Rows>();
        q->scales.assign(m, 0.0f);
        std::vector<std::int8_t> rows(m * r);
        for (std::size_t i = 0; i < m; ++i)  // P_ is row-major: row i is r contiguous floats
            q->scales[i] = detail::round_to_int8(P_.data() + i * r, r, rows.data() + i * r);
        q->panels.resize(detail::s8_panel_bytes(m, r));
        detail::pack_s8_panels(rows.data(), m, r, r, q->panels.data());
        q->depth = depth;
        qQ_ = std::move(qQ);
        qP_ = std::move(q);
    }
    bool quantized() const noexcept { return qP_ != nullptr; }  ///< true after quantize()

    /// Runs the 8-bit factors' product over P (predict, scores, select_top_k_checked
    /// from either input) on a pool's threads; the split does not depend on the
    /// thread count, so the outputs are bit-identical for any pool. The float
    /// factors (before quantize()) run on the caller's thread. The pool must
    /// outlive its use here (see executor.hpp for plugging in another pool).
    void set_executor(ThreadPool& pool) noexcept { executor_ = pool.executor(); }
    /// set_executor for any pool plugged in as an Executor (executor.hpp).
    void set_executor(Executor executor) noexcept { executor_ = executor; }

    std::size_t rank() const noexcept { return static_cast<std::size_t>(Q_.rows()); }     ///< r
    std::size_t hidden() const noexcept { return static_cast<std::size_t>(P_.rows()); }   ///< neurons predicted
    std::size_t d_model() const noexcept { return static_cast<std::size_t>(Q_.cols()); }  ///< length of x
    /// Bytes predict() reads: both factors, float or quantized.
    std::size_t memory_bytes() const noexcept {
        if (quantized()) return qP_->panels.size() + qP_->scales.size() * sizeof(float) + qQ_->memory_bytes();
        return static_cast<std::size_t>(P_.size() + Q_.size()) * sizeof(float);
    }
    /// The float factors (P [hidden][rank], Q [rank][d_model]).
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

    /// P's rows as int8 with one scale per row, in panels of padded depth
    /// `depth` (detail/int8_panels.hpp).
    struct Int8Rows {
        std::vector<std::int8_t, detail::AlignedAllocator<std::int8_t>> panels;
        std::vector<float> scales;
        std::size_t depth = 0;
    };

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
    void predict_q8(const QuantizedActivations& xq, float* pre) {
        const std::size_t m = hidden(), r = rank();
        qQ_->gemv(xq, t_.data());
        // Q x to int8 with one scale (P's rows were rounded the same way), zero padded to the panels' depth.
        tq_.assign(qP_->depth, 0);
        bool finite = true;
        for (std::size_t j = 0; j < r; ++j) finite = finite && std::isfinite(t_[j]);
        if (!finite) {  // NaN or infinity in Q x: no finite prediction
            std::fill(pre, pre + m, std::numeric_limits<float>::quiet_NaN());
            return;
        }
        const float tscale = detail::round_to_int8(t_.data(), r, tq_.data());
        // P's panels split into chunks of whole panels (chunk starts are multiples of 64 rows), one task each.
        const detail::RowChunks chunks(m);
        const std::size_t D = qP_->depth;
        auto task = [&](std::size_t c) {
            const std::size_t b = chunks.begin(c);
            detail::active_table(8).gemv_s8_panels(qP_->panels.data() + b * D, qP_->scales.data() + b,
                                                   chunks.end(c) - b, D, tq_.data(), tscale, pre + b);
        };
        executor_(chunks.count(), task);
    }

    void set_error_scale(const detail::RowMatrixFMap& G) {
        const std::size_t m = static_cast<std::size_t>(P_.rows());
        sigma_.resize(m);
        inv_sigma_.resize(m);
        detail::residual_row_norms(G, P_, Q_, sigma_.data());
        for (std::size_t i = 0; i < m; ++i)
            inv_sigma_[i] = sigma_[i] > 0 ? 1.0f / sigma_[i] : std::numeric_limits<float>::infinity();
    }

    RowMatrix P_, Q_;
    std::shared_ptr<const Int8Rows> qP_;  // shared: copies of a predictor share immutable factors
    std::shared_ptr<const QuantizedWeights<8>> qQ_;
    std::vector<float> sigma_, inv_sigma_;
    std::vector<float> t_, pre_, score_, exact_;  // scratch
    std::vector<std::uint32_t> checked_;
    std::vector<std::uint64_t> best_;
    std::vector<std::int8_t> tq_;
    QuantizedActivations xq_;
    Executor executor_;  // inline unless set_executor was called
};

}  // namespace sparseinfer
