// sparseinfer/detail/adaptive_learning.hpp - what policy::Adaptive learns once
// per token, apart from its per-neuron bookkeeping: the state of its decayed
// rate estimators, which of two of them predicts better, and how much of a
// token's working set comes back in the next.
//
// These run once per token on a handful of numbers, never per neuron, so they
// live apart from the policy's hot loops (policy/adaptive.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace sparseinfer::detail {

/// A decayed activation rate for every neuron, in O(1) per activation: an
/// activation adds `increment` to the neuron's weight, and the increment
/// grows by `growth` per token, so rate = weight / mass weighs the past down
/// by one half per half-life without touching idle neurons.
struct RateEstimator {
    double growth = 1;     ///< per-token growth of the increment: 2^(1 / half-life)
    double increment = 1;  ///< weight of an activation now
    double mass = 0;       ///< sum of the increments so far: rate = weight / mass
    double sumsq = 0;      ///< sum over all neurons of weight^2, kept as the weights grow

    /// A new token: its activations weigh `growth` times the last token's.
    void next_token() noexcept {
        increment *= growth;
        mass += increment;
    }
};

/// A race between the estimator that drives the decisions and a challenger:
/// each evaluation scores both by the Brier score of their rates as a
/// prediction of the token, and the challenger takes over once its lead is
/// larger than noise explains.
class EstimatorRace {
public:
    /// Scores one token of n active neurons. before: both estimators before
    /// the token; previous_sq: their squared weights over the previous token's
    /// neurons (left out: persistence, not the rate, predicts those); active:
    /// the weights before the token of the active neurons not active in the
    /// previous token.
    void score(const RateEstimator* before, const double* previous_sq, const double* active, std::size_t n) noexcept {
        if (n == 0 || before[0].mass <= 0) return;
        const double m0 = before[0].mass, m1 = before[1].mass;
        // Brier score over the neurons the rate alone must predict: sum of
        // rate^2, minus twice the rates of the active ones (lower is better).
        const double s0 = before[0].sumsq - previous_sq[0], s1 = before[1].sumsq - previous_sq[1];
        const double brier0 = s0 / (m0 * m0) - 2 * active[0] / m0, brier1 = s1 / (m1 * m1) - 2 * active[1] / m1;
        // Exponential mean (about 10 evaluations) and variance (about 20, so the step of a topic
        // change inflates it less) of the gap; the challenger wins when the mean exceeds two
        // standard errors of such a mean, so noise alone does not flip the roles.
        const double gap = (brier0 - brier1) / static_cast<double>(n), a = 0.1, a_var = 0.05;
        const double delta = gap - gap_mean_;
        gap_mean_ += a * delta;
        gap_var_ = (1 - a_var) * (gap_var_ + a_var * delta * delta);
        if (++evaluations_ >= 5 && gap_mean_ > 2 * std::sqrt(gap_var_ * a / (2 - a))) challenger_won_ = true;
    }
    /// True once the challenger has won; the policy then swaps the roles and calls restart().
    bool challenger_won() const noexcept { return challenger_won_; }
    /// A new race, after a swap.
    void restart() noexcept { *this = EstimatorRace(); }

private:
    double gap_mean_ = 0, gap_var_ = 0;  // Brier(primary) - Brier(challenger) per active neuron
    int evaluations_ = 0;
    bool challenger_won_ = false;
};

/// The persistence r: the share of a token's active neurons still active in
/// the next token beyond what their rates predict, learned online (an
/// exponential mean, about 10 samples). A sample is taken every fourth token:
/// token t with t % 4 == 0 records its neurons' mean rate, token t + 1 counts
/// how many of them came back.
class PersistenceLearner {
public:
    /// The learned persistence, in [0, 1].
    double value() const noexcept { return persistence_; }
    /// Token t of n active neurons, `returned` of them active in the previous
    /// token; weight_sum / mass is the sum of their rates.
    void on_token(std::uint32_t t, std::size_t returned, double weight_sum, double mass, std::size_t n) noexcept {
        if (counts_returns(t) && prev_n_ > 0) {
            const double came_back = static_cast<double>(returned) / static_cast<double>(prev_n_);
            const double expected = std::min(prev_rate_mean_, 0.999);
            const double r = std::min(1.0, std::max(0.0, (came_back - expected) / (1 - expected)));
            persistence_ += 0.1 * (r - persistence_);
        }
        if ((t & 3) == 0) {
            prev_n_ = n;
            prev_rate_mean_ = n > 0 ? weight_sum / mass / static_cast<double>(n) : 0.0;
        }
    }
    /// True on the tokens whose returns are counted (on_token's `returned` is read).
    static bool counts_returns(std::uint32_t t) noexcept { return (t & 3) == 1; }

private:
    double persistence_ = 0;
    std::size_t prev_n_ = 0;
    double prev_rate_mean_ = 0;
};

}  // namespace sparseinfer::detail
