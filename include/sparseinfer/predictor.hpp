// sparseinfer/predictor.hpp - a low-rank predictor of which FFN neurons fire.
//
// A gated FFN's neuron i is active when act(gate_i . x) is large. The
// predictor approximates the gate matrix G [hidden][d_model] by a rank-r
// product P Q (P [hidden][r], Q [r][d_model]) and scores every neuron with
// |act((P (Q x))_i)| for r (hidden + d_model) multiply-adds instead of
// hidden * d_model. It is calibrated without training:
//   - the truncated SVD of G (P = U_r S_r, Q = V_r^T), the best rank-r
//     approximation in the Frobenius norm. Small matrices use Eigen's BDCSVD;
//     large ones a randomized range finder with subspace iteration (Halko,
//     Martinsson and Tropp 2011): Y = G W for a Gaussian W of r + oversample
//     columns, re-orthonormalized with Householder QR around each pass
//     through G^T and G, then the SVD of the small Y^T G. Its error is close
//     to the optimum when G's spectrum decays; for 11008 x 4096 it takes a
//     few seconds instead of the minutes of a full SVD.
//   - optionally refine(): P re-fitted by least squares so that P Q x matches
//     the exact gate values on recorded inputs (ridge-regularized normal equations).
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
// the rest keep the prediction. On bench_ffn's planted rank-24 gate with 2%
// noise the plain top 10% already reaches the recall of the noise-free signal
// itself (0.90); 64 checks (0.6% of the gate's rows) lift it to 0.908 and 128
// to 0.916, for 4.4% and 5.1% of the dense 4-bit layer's time instead of 2.4%
// (docs/ffn.md).
//
// The predictor holds scratch and is used by one thread at a time.
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
#include <Eigen/Householder>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "activation.hpp"
#include "detail/aligned_allocator.hpp"
#include "detail/int8_panels.hpp"
#include "error.hpp"
#include "kernels/isa.hpp"
#include "quantized_activations.hpp"
#include "quantized_weights.hpp"
#include "selection.hpp"

namespace sparseinfer {

namespace detail {

/// The pre-activations z with |act(z)| >= cut (cut > 0): z >= pos, and for
/// SiLU / GELU also neg_lo <= z <= neg_hi when cut is below the peak of |act|
/// on the negative side.
struct KeptRegion {
    float pos = 0, neg_lo = 0, neg_hi = 0;
    bool has_neg = false;

    /// Distance from z to the nearest edge of the region (NaN for a NaN z).
    /// The minimum compares the distances' bits as integers (they are >= 0),
    /// so loops over it vectorize.
    float distance(float z) const noexcept {
        const float d = std::fabs(z - pos);
        if (!has_neg) return d;
        const float lo = std::fabs(z - neg_lo), hi = std::fabs(z - neg_hi);
        const std::uint32_t bd = float_bits(d), blo = float_bits(lo), bhi = float_bits(hi);
        const std::uint32_t bneg = blo < bhi ? blo : bhi;
        return bits_float(bneg < bd ? bneg : bd);  // a NaN (bits above every number) never wins over a number
    }
};

/// key[i] = rank_key(-distance(pre[i]) / sigma_i): larger for neurons nearer an
/// edge in units of their prediction error. The arrays must not overlap (the
/// restrict qualifiers let the loop vectorize without run-time overlap checks).
inline void margin_keys(const KeptRegion& region, const float* __restrict pre, const float* __restrict inv_sigma,
                        std::size_t n, std::uint32_t* __restrict key) noexcept {
    const KeptRegion r = region;  // a local copy: its fields stay in registers
    for (std::size_t i = 0; i < n; ++i) key[i] = rank_key(-r.distance(pre[i]) * inv_sigma[i]);
}

/// Solves |act(z)| = cut by bisection on intervals where |act| is monotone.
inline KeptRegion kept_region(Activation act, float cut) {
    KeptRegion r;
    if (!(cut > 0.0f) || std::isinf(cut)) return r;  // keeps everything or nothing: no edge to be near
    auto a = [act](double z) { return static_cast<double>(std::fabs(activate(act, static_cast<float>(z)))); };
    // Root of a(z) = cut on [lo, hi], where a rises (rising) or falls over the interval.
    auto root = [&](double lo, double hi, bool rising) {
        for (int it = 0; it < 60; ++it) {
            const double mid = 0.5 * (lo + hi);
            ((a(mid) < cut) == rising ? lo : hi) = mid;
        }
        return static_cast<float>(0.5 * (lo + hi));
    };
    // Every supported activation is increasing for z >= 0 with act(z) >= z / 2.
    r.pos = root(0.0, 2.0 * static_cast<double>(cut) + 1.0, true);
    if (act == Activation::relu) return r;
    // |act| on z < 0 rises from 0 (z = -inf) to a single peak, then falls to 0: find the peak.
    double lo = -8.0, hi = 0.0;        // the peak: SiLU -1.28, GELU -0.75
    for (int it = 0; it < 80; ++it) {  // golden-section search; on a tie move toward 0 (|act| is flat far out)
        const double m1 = hi - 0.618 * (hi - lo), m2 = lo + 0.618 * (hi - lo);
        if (a(m1) <= a(m2))
            lo = m1;
        else
            hi = m2;
    }
    const double peak = 0.5 * (lo + hi);
    if (a(peak) <= cut) return r;
    double far = peak - 1.0;
    while (a(far) > cut && far > -1e6) far *= 2.0;
    r.has_neg = true;
    r.neg_lo = root(far, peak, true);
    r.neg_hi = root(peak, 0.0, false);
    return r;
}

/// Rounds v[0..n) to int8 with one scale, max |v| / 127, into q[0..n) and
/// returns the scale (0 for an all-zero v, whose codes are all 0). v is finite.
inline float round_to_int8(const float* v, std::size_t n, std::int8_t* q) noexcept {
    float amax = 0;
    for (std::size_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    for (std::size_t j = 0; j < n; ++j) q[j] = static_cast<std::int8_t>(std::lround(v[j] * inv));
    return amax / 127.0f;
}

}  // namespace detail

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
    /// A row-major float matrix (the factors' storage).
    using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

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
        if (std::min(hidden, d_model) <= opts.exact_svd_limit) {
            Eigen::BDCSVD<Eigen::MatrixXf> svd(G, Eigen::ComputeThinU | Eigen::ComputeThinV);
            p.P_ = svd.matrixU().leftCols(r) * svd.singularValues().head(r).asDiagonal();
            p.Q_ = svd.matrixV().leftCols(r).transpose();
        } else {
            const Eigen::Index l =
                std::min<Eigen::Index>(r + static_cast<Eigen::Index>(opts.oversample), std::min(m, n));
            std::mt19937_64 rng(opts.seed);
            std::normal_distribution<float> nd;
            Eigen::MatrixXf omega(n, l);
            for (Eigen::Index j = 0; j < l; ++j)
                for (Eigen::Index i = 0; i < n; ++i) omega(i, j) = nd(rng);
            Eigen::MatrixXf Y = G * omega;  // m x l
            for (int it = 0; it < opts.power_iterations; ++it) {
                orthonormalize(Y);
                Eigen::MatrixXf Z = G.transpose() * Y;  // n x l
                orthonormalize(Z);
                Y.noalias() = G * Z;
            }
            orthonormalize(Y);
            const Eigen::MatrixXf B = Y.transpose() * G;  // l x n
            Eigen::BDCSVD<Eigen::MatrixXf> svd(B, Eigen::ComputeThinU | Eigen::ComputeThinV);
            p.P_ = (Y * svd.matrixU().leftCols(r)) * svd.singularValues().head(r).asDiagonal();
            p.Q_ = svd.matrixV().leftCols(r).transpose();
        }
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
        const Eigen::Index d = Q_.cols(), m = P_.rows(), r = Q_.rows();
        Eigen::Map<const RowMatrix> X(inputs, static_cast<Eigen::Index>(n), d);
        Eigen::Map<const RowMatrix> G(gate, m, d);
        const Eigen::MatrixXd Z = (X * Q_.transpose()).cast<double>();  // n x r
        const Eigen::MatrixXd T = (X * G.transpose()).cast<double>();   // n x m, the exact pre-activations
        Eigen::MatrixXd A = Z.transpose() * Z;
        const double lambda = ridge * std::max(1e-30, A.trace() / static_cast<double>(r));
        A.diagonal().array() += lambda;
        const Eigen::MatrixXd Pt = A.ldlt().solve(Z.transpose() * T);  // r x m
        P_ = Pt.transpose().cast<float>();
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
    /// True once the factors have 8-bit copies that predict() uses.
    bool quantized() const noexcept { return qP_ != nullptr; }

    std::size_t rank() const noexcept { return static_cast<std::size_t>(Q_.rows()); }     ///< r
    std::size_t hidden() const noexcept { return static_cast<std::size_t>(P_.rows()); }   ///< neurons predicted
    std::size_t d_model() const noexcept { return static_cast<std::size_t>(Q_.cols()); }  ///< input length
    /// Bytes predict() reads: both factors, float or quantized.
    std::size_t memory_bytes() const noexcept {
        if (quantized()) return qP_->panels.size() + qP_->scales.size() * sizeof(float) + qQ_->memory_bytes();
        return static_cast<std::size_t>(P_.size() + Q_.size()) * sizeof(float);
    }
    /// The float factors (P [hidden][rank], Q [rank][d_model]).
    const RowMatrix& P() const noexcept { return P_; }
    /// The second float factor, Q [rank][d_model].
    const RowMatrix& Q() const noexcept { return Q_; }
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
            // The `checks` neurons of smallest distance / sigma_i (NaN last, ties to
            // the lower index), as 64-bit entries (rank_key(-margin), ~index): a neuron
            // is a candidate only when it beats the worst of the best kept so far,
            // which after the first few hundred almost none does.
            const detail::KeptRegion region = detail::kept_region(act, cut);
            std::uint32_t* key = out;  // out is scratch until the final selection
            detail::margin_keys(region, pre_.data(), inv_sigma_.data(), h, key);
            auto entry = [key](std::size_t i) {
                return static_cast<std::uint64_t>(key[i]) << 32 | (0xffffffffu - static_cast<std::uint32_t>(i));
            };
            // Candidates gather in a buffer of up to 2 * checks; when it fills, nth_element
            // keeps the best `checks` and raises the bar to the worst of them. Entries are
            // unique, so the result is exactly the `checks` best (key, then lower index).
            best_.clear();
            best_.reserve(2 * checks);
            std::uint64_t bar = 0;  // entries at or below it cannot be among the best
            auto shrink = [&] {
                std::nth_element(best_.begin(), best_.begin() + static_cast<std::ptrdiff_t>(checks - 1), best_.end(),
                                 std::greater<>());
                best_.resize(checks);
                bar = best_[checks - 1];
            };
            for (std::size_t i = 0; i < h; ++i) {
                if (key[i] < static_cast<std::uint32_t>(bar >> 32)) continue;  // the common case
                const std::uint64_t e = entry(i);
                if (e <= bar) continue;
                best_.push_back(e);
                if (best_.size() == 2 * checks) shrink();
            }
            if (best_.size() > checks) shrink();
            for (std::uint64_t e : best_) checked_.push_back(0xffffffffu - static_cast<std::uint32_t>(e));
            std::sort(checked_.begin(), checked_.end());
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
        detail::active_table(8).gemv_s8_panels(qP_->panels.data(), qP_->scales.data(), m, qP_->depth, tq_.data(),
                                               tscale, pre);
    }

    template <class Gate>
    void set_error_scale(const Gate& G) {
        const Eigen::Index m = P_.rows(), block = 256;
        sigma_.resize(static_cast<std::size_t>(m));
        inv_sigma_.resize(static_cast<std::size_t>(m));
        for (Eigen::Index i0 = 0; i0 < m; i0 += block) {
            const Eigen::Index b = std::min(block, m - i0);
            const Eigen::MatrixXf R = G.middleRows(i0, b) - P_.middleRows(i0, b) * Q_;
            for (Eigen::Index i = 0; i < b; ++i) {
                const float s = R.row(i).norm();
                sigma_[static_cast<std::size_t>(i0 + i)] = s;
                inv_sigma_[static_cast<std::size_t>(i0 + i)] =
                    s > 0 ? 1.0f / s : std::numeric_limits<float>::infinity();
            }
        }
    }

    static void orthonormalize(Eigen::MatrixXf& Y) {
        Eigen::HouseholderQR<Eigen::MatrixXf> qr(Y);
        Y = qr.householderQ() * Eigen::MatrixXf::Identity(Y.rows(), Y.cols());
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
};

}  // namespace sparseinfer
