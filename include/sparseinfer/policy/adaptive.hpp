// sparseinfer/policy/adaptive.hpp - recency-protected, decayed-frequency caching with learned admission.
//
// A residency policy for NeuronCache (the contract its state follows is at the
// top of policies.hpp).
//
//   sparseinfer::NeuronCache<sparseinfer::policy::Adaptive> cache(11008, {2201});
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include "../detail/adaptive_learning.hpp"
#include "../detail/cache_queues.hpp"
#include "../detail/config_check.hpp"

namespace sparseinfer::policy {

/// Recency-protected decayed-frequency caching with learned admission:
/// - each neuron carries an exponentially decayed activation rate q (half-life `half_life`
///   tokens), kept in O(1) per activation by growing the increment instead of decaying counts;
/// - the neurons active in the current token are protected from eviction;
/// - a missed neuron is admitted when its chance of being active in the next token,
///   r + (1 - r) q, beats the decayed rate of the least valuable unprotected resident
///   (then evicted), where r, the share of a token's active neurons still active in the next
///   token beyond what their rates predict, is learned online.
/// - two rate estimators (half-lives half_life and half_life / 4) are scored every 8 tokens by
///   the Brier score of their predictions; the better one drives the decisions. When the short
///   one wins after the long one has settled (the popularity changed), both forget faster.
/// Without persistence (r = 0) it converges to the frequency-optimal static set and follows
/// drift at the speed of the half-life; with persistence it keeps the current working set
/// plus the most frequent rest. See docs/cache.md.
struct Adaptive {
    std::size_t capacity = 0;  ///< >= 1
    double half_life = 256;    ///< tokens for a past activation to weigh half, in [4, 1e6]
    class state;
};

class Adaptive::state {
public:
    state(const Adaptive& c, std::size_t num_neurons)
        : capacity_(c.capacity), node_(num_neurons), queue_(node_.data()) {
        detail::require_config(c.capacity >= 1, "policy::Adaptive: capacity is 0");
        // Bounds keep the float weights finite between renormalisations.
        detail::require_config(
            c.half_life >= 4 && c.half_life <= 1e6,
            "policy::Adaptive: half_life (" + std::to_string(c.half_life) + ") must be in [4, 1e6] tokens");
        est_[0].growth = std::exp2(1.0 / c.half_life);
        est_[1].growth = std::exp2(4.0 / c.half_life);
        half_life_[0] = c.half_life;
        half_life_[1] = c.half_life / 4;
    }
    // The queue points into node_: moving keeps the buffer, copying would not.
    state(state&&) noexcept = default;
    state& operator=(state&&) noexcept = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    std::size_t capacity() const noexcept { return capacity_; }
    /// Residents the policy can evict: between calls, every resident that is not pinned.
    std::size_t tracked() const noexcept { return queue_.size() + fresh_.size(); }
    /// The learned persistence r (share of active neurons still active next token beyond their rate).
    double persistence() const noexcept { return persistence_.value(); }
    /// The half-life the rates currently use (half_life, or half_life / 4 while that predicts better).
    double half_life() const noexcept { return half_life_[0]; }
    /// Decayed activation rate of a neuron, in [0, 1].
    double rate(std::uint32_t n) const noexcept {
        return est_[0].mass > 0 ? static_cast<double>(node_[n].weight) / est_[0].mass : 0.0;
    }
    /// The same under the challenger half-life.
    double challenger_rate(std::uint32_t n) const noexcept {
        return est_[1].mass > 0 ? static_cast<double>(node_[n].other) / est_[1].mass : 0.0;
    }
    /// The sum over all neurons of rate^2 (estimator 0) or challenger_rate^2 (estimator 1), as
    /// kept while the weights grow (the Brier scores use it).
    double squared_rate_sum(int estimator) const noexcept {
        const detail::RateEstimator& e = est_[estimator == 0 ? 0 : 1];
        return e.mass > 0 ? e.sumsq / (e.mass * e.mass) : 0.0;
    }

    template <class Ctx>
    void on_token(Ctx& ctx, const std::uint32_t* active, std::size_t n) {
        const auto t = static_cast<std::uint32_t>(ctx.tokens());  // wraps harmlessly: stamps only mark
        const bool evaluate =
            (t & (evaluation_period - 1)) == 0 && ctx.tokens() > 64;  // the current and previous token
        const detail::RateEstimator before[2] = {est_[0], est_[1]};   // what the evaluation scores
        for (detail::RateEstimator& e : est_) e.next_token();
        // Pass 1 (see touch_all); the token before an evaluation also sums its squared weights.
        misses_.resize(n);
        // Persistence is learned on every fourth token (t & 3 == 1), never an evaluation's or the one before.
        const PassOne p = evaluate                                   ? touch_all<false, true, false>(ctx, active, n, t)
                          : ((t + 1) & (evaluation_period - 1)) == 0 ? touch_all<true, false, false>(ctx, active, n, t)
                          : detail::PersistenceLearner::counts_returns(t)
                              ? touch_all<false, false, true>(ctx, active, n, t)
                              : touch_all<false, false, false>(ctx, active, n, t);
        if (evaluate) {
            const double act[2] = {p.act0, p.act1};
            race_.score(before, previous_sq_, act, n);
        }
        if (((t + 1) & (evaluation_period - 1)) == 0) {
            previous_sq_[0] = p.sq0;
            previous_sq_[1] = p.sq1;
        }
        const std::size_t m = p.misses;
        const double count = static_cast<double>(n), i0 = static_cast<double>(static_cast<float>(est_[0].increment)),
                     i1 = static_cast<double>(static_cast<float>(est_[1].increment));
        est_[0].sumsq += i0 * (2 * p.sum0 + count * i0);
        est_[1].sumsq += i1 * (2 * p.sum1 + count * i1);
        // The float weights round, the running sums do not: exact again every 1024 tokens.
        if ((t & 1023) == 0) resum_squares();
        // This token's weights sum to the sum before it plus n increments.
        persistence_.on_token(t, p.returned, p.sum0 + count * i0, est_[0].mass, n);
        // Neurons admitted since they were last out of the working set that left it now are
        // filed, at their weight of today; the others stay out of the queue (protected anyway).
        file_dropped(t);
        // Pass 2: admissions against the least valuable unprotected resident. Admitted neurons
        // are protected for the rest of the token.
        if (ctx.pinned_count() < capacity_)
            admit_misses(ctx, t, m);
        else
            file_lowest(0);
        if (est_[0].increment > 1e30 || est_[1].increment > 1e30 || race_.challenger_won()) refile(ctx);
    }

    template <class Ctx>
    void on_reclassify(Ctx&) {}

    template <class Ctx>
    void on_pin(Ctx& ctx, std::uint32_t neuron) {
        file_fresh();  // every resident a candidate: nothing is active between tokens; none pinned
        queue_.remove(neuron);
        if (ctx.resident(neuron) || ctx.resident_count() < capacity_) return;
        std::uint32_t v = npos;
        if (queue_.take_lowest(
                &v, 1, [](std::uint32_t) { return false; }, weight_of()))
            ctx.evict(v);
    }

private:
    static constexpr std::uint32_t npos = 0xFFFFFFFFu;

    struct Node {                  // 16 bytes: four to a cache line
        float weight = 0;          // decayed count under est_[0] (drives every decision)
        float other = 0;           // the same under est_[1], the challenger half-life
        std::uint32_t last = 0;    // token (mod 2^32) of the last activation
        std::int32_t bucket = -1;  // LogBucketQueue bookkeeping
    };

    /// A resident kept out of the queue since its admission, because it has been active in every
    /// token since (so never a victim), is listed in fresh_ instead. Pins file them all first
    /// (on_pin), so none of them is ever pinned.
    void make_fresh(std::uint32_t x) { fresh_.push_back(x); }
    /// Files the fresh neurons not active at token t; the others stay fresh. O(fresh neurons), all
    /// of them active in the previous token. Those that would be filed at or below the queue's
    /// lowest bucket are, in the queue's order, the next victims (nearly all of the victims, under
    /// persistence): they are listed in that order (lowest_, taken first by admit_misses) rather than
    /// filed and taken back.
    void file_dropped(std::uint32_t t) {
        // Split without a branch per neuron (about half of them leave, at random).
        const std::size_t n = fresh_.size();
        if (dropped_.size() < n) {
            dropped_.resize(n);
            dropped_weight_.resize(n);
            dropped_bucket_.resize(n);
            lowest_.resize(n);
        }
        std::uint32_t* const keep = fresh_.data();
        std::uint32_t* const drop = dropped_.data();
        float* const drop_weight = dropped_weight_.data();
        const Node* const node = node_.data();
        std::size_t kept = 0, dropped = 0;
        for (std::size_t k = 0; k < n; ++k) {
            const std::uint32_t x = keep[k];
            const Node& nx = node[x];
            const std::size_t active = nx.last == t;
            keep[kept] = x;
            drop[dropped] = x;
            drop_weight[dropped] = nx.weight;
            kept += active;
            dropped += 1 - active;
        }
        fresh_.resize(kept);
        // The neurons at or below the queue's lowest bucket, with their buckets; the others filed.
        const std::int32_t lowest = queue_.lowest_bucket();
        std::int32_t* const key = dropped_bucket_.data();
        std::size_t low = 0;
        std::int32_t min_key = lowest, max_key = 0;
        for (std::size_t k = 0; k < dropped; ++k) {
            const std::int32_t b = queue_.filing_bucket(drop_weight[k]);
            if (b > lowest) {
                queue_.insert(drop[k], drop_weight[k]);
                continue;
            }
            drop[low] = drop[k];
            key[low++] = b;
            min_key = std::min(min_key, b);
            max_key = std::max(max_key, b);
        }
        // Counting sort by bucket; within a bucket the last dropped first, as the queue takes them.
        lowest_count_ = low;
        if (low == 0) return;
        const auto range = static_cast<std::size_t>(max_key - min_key) + 2;
        if (bucket_start_.size() < range) bucket_start_.resize(range);
        std::fill(bucket_start_.begin(), bucket_start_.begin() + static_cast<std::ptrdiff_t>(range), 0);
        std::uint32_t* const start = bucket_start_.data();
        for (std::size_t k = 0; k < low; ++k) ++start[key[k] - min_key + 1];
        for (std::size_t i = 1; i < range; ++i) start[i] += start[i - 1];
        std::uint32_t* const out = lowest_.data();
        for (std::size_t k = low; k-- > 0;) out[start[key[k] - min_key]++] = drop[k];
    }
    /// Files the listed lowest neurons from `from` on (not taken as victims), so that the queue then
    /// takes them in the order it would have, had they been filed.
    void file_lowest(std::size_t from) {
        for (std::size_t k = lowest_count_; k-- > from;) queue_.insert(lowest_[k], node_[lowest_[k]].weight);
        lowest_count_ = 0;
    }
    /// Files every fresh neuron.
    void file_fresh() {
        for (const std::uint32_t x : fresh_) queue_.insert(x, node_[x].weight);
        fresh_.clear();
    }

    struct PassOne {
        std::size_t misses = 0, returned = 0;
        double sum0 = 0, sum1 = 0;  // weights before the token (estimator 0, 1)
        double sq0 = 0, sq1 = 0;    // squared weights after it (Squares)
        double act0 = 0, act1 = 0;  // weights before it of the neurons not active in the previous token (Score)
    };
    /// Pass 1 over the token's neurons: weights, recency stamps, the misses (with their weights),
    /// how many of the previous token's neurons came back (learn_persistence), the sum of the
    /// weights before this token (each estimator's sum of squared weights grows by
    /// sum((w + inc)^2 - w^2) = 2 inc sum(w) + n inc^2), and what the Brier scores need, so that
    /// an evaluation reads no neuron again. Two partial sums each, so the additions do not wait
    /// on one another.
    template <bool Squares, bool Score, bool Returns, class Ctx>
    PassOne touch_all(Ctx& ctx, const std::uint32_t* active, std::size_t n, std::uint32_t t) {
        const auto inc = static_cast<float>(est_[0].increment), inc_other = static_cast<float>(est_[1].increment);
        std::uint32_t* const misses = misses_.data();
        Node* const node = node_.data();
        std::size_t m = 0, returned = 0;
        float sum[2][2] = {};  // float: a token's sum is corrected every 1024 tokens (resum_squares)
        double sq[2][2] = {}, act[2][2] = {};
        auto touch = [&](std::size_t k, int h) {
            const std::uint32_t x = active[k];
            Node& nx = node[x];
            const bool back = (Score || Returns) && nx.last + 1 == t;
            if (Returns) returned += back;
            nx.last = t;
            const float w0 = nx.weight, w1 = nx.other;
            nx.weight = w0 + inc;
            nx.other = w1 + inc_other;
            sum[h][0] += w0;
            sum[h][1] += w1;
            if (Squares) {
                sq[h][0] += static_cast<double>(nx.weight) * nx.weight;
                sq[h][1] += static_cast<double>(nx.other) * nx.other;
            }
            if (Score) {
                act[h][0] += back ? 0.0 : static_cast<double>(w0);
                act[h][1] += back ? 0.0 : static_cast<double>(w1);
            }
            misses[m] = x;
            m += !ctx.resident(x);
        };
        std::size_t k = 0;
        for (; k + 2 <= n; k += 2) {
            touch(k, 0);
            touch(k + 1, 1);
        }
        if (k < n) touch(k, 0);
        PassOne p;
        p.misses = m;
        p.returned = returned;
        p.sum0 = static_cast<double>(sum[0][0]) + sum[1][0];
        p.sum1 = static_cast<double>(sum[0][1]) + sum[1][1];
        p.sq0 = sq[0][0] + sq[1][0];
        p.sq1 = sq[0][1] + sq[1][1];
        p.act0 = act[0][0] + act[1][0];
        p.act1 = act[0][1] + act[1][1];
        return p;
    }

    struct WeightOf {
        const Node* node;
        float operator()(std::uint32_t v) const noexcept { return node[v].weight; }
    };
    WeightOf weight_of() const noexcept { return WeightOf{node_.data()}; }

    /// Each miss x, in order, against the least valuable resident not active at token t, v
    /// (unchanged until it is evicted): x is active next token with chance r + (1 - r) q_x, and is
    /// admitted, evicting v, when that beats q_v. The candidates for v are the neurons file_dropped
    /// listed, then those taken from the queue a batch at a time (4, 8, ... 64, never more than the
    /// misses left); those not used go (back) into the queue.
    template <class Ctx>
    void admit_misses(Ctx& ctx, std::uint32_t t, std::size_t m) {
        const auto boost_mass = static_cast<float>(persistence_.value() * est_[0].mass);
        const auto keep = static_cast<float>(1 - persistence_.value());
        auto passed = [this, t](std::uint32_t v) { return node_[v].last == t; };
        std::size_t next = 0, have = 0, batch = 4, k = 0;
        try {
            for (; k < m && ctx.resident_count() < capacity_; ++k) {  // room left: no victim
                ctx.admit(misses_[k]);
                make_fresh(misses_[k]);
            }
        } catch (...) {
            file_lowest(0);
            throw;
        }
        // The decisions read no residency flag, so they are applied after the loop, in two batches:
        // a flag byte stored in the loop would make the compiler reload every member after it.
        if (victims_.size() < m) victims_.resize(m);
        if (admitted_.size() < m) admitted_.resize(m);
        const std::uint32_t* const misses = misses_.data();
        std::uint32_t* const victims = victims_.data();
        std::uint32_t* const admitted = admitted_.data();
        const Node* const node = node_.data();
        std::size_t a = 0;
        // The listed lowest neurons first (file_dropped), then the queue's.
        const std::uint32_t* candidates = lowest_.data();
        have = lowest_count_;
        bool listed = true;
        for (; k < m; ++k) {
            const std::uint32_t x = misses[k];
            if (next == have) {
                if (listed) {
                    listed = false;
                    lowest_count_ = 0;  // all taken
                    candidates = candidates_;
                }
                next = 0;
                have = queue_.take_lowest(candidates_, std::min(batch, m - k), passed, weight_of());
                if (have == 0) break;  // every resident is active now
                batch = std::min<std::size_t>(2 * batch, max_batch);
            }
            const std::uint32_t v = candidates[next];
            if (boost_mass + keep * node[x].weight > node[v].weight) {
                victims[a] = v;
                admitted[a++] = x;
                ++next;
            }
        }
        if (listed) {
            file_lowest(next);
            next = have = 0;
        }
        release_candidates(next, have);
        ctx.evict(victims, a);
        std::size_t done = 0;
        try {
            ctx.admit(admitted, a, done);
        } catch (...) {
            fresh_.insert(fresh_.end(), admitted, admitted + done);
            throw;
        }
        fresh_.insert(fresh_.end(), admitted, admitted + a);
    }
    void release_candidates(std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) queue_.insert(candidates_[i], node_[candidates_[i]].weight);
        queue_.file_passed(weight_of());
    }

    /// Recomputes each estimator's sum of squared weights. O(num_neurons), every 1024 tokens.
    void resum_squares() noexcept {
        double sq0 = 0, sq1 = 0;
        for (const Node& nd : node_) {
            sq0 += static_cast<double>(nd.weight) * nd.weight;
            sq1 += static_cast<double>(nd.other) * nd.other;
        }
        est_[0].sumsq = sq0;
        est_[1].sumsq = sq1;
    }

    /// Rescales weights that grew large, swaps the estimators when a switch is pending, and refiles
    /// every resident (buckets depend on the scale). O(num_neurons), rare.
    template <class Ctx>
    void refile(Ctx& ctx) {
        for (int e = 0; e < 2; ++e) {
            if (est_[e].increment <= 1e30) continue;
            const double s = 1e-30;
            double sumsq = 0;
            for (Node& nd : node_) {
                float& w = e == 0 ? nd.weight : nd.other;
                w *= static_cast<float>(s);
                sumsq += static_cast<double>(w) * w;
            }
            est_[e].increment *= s;
            est_[e].mass *= s;
            est_[e].sumsq = sumsq;
            previous_sq_[e] *= s * s;
        }
        if (race_.challenger_won()) {
            for (Node& nd : node_) std::swap(nd.weight, nd.other);
            std::swap(est_[0], est_[1]);
            std::swap(half_life_[0], half_life_[1]);
            std::swap(previous_sq_[0], previous_sq_[1]);
            if (half_life_[0] < half_life_[1] && ctx.tokens() >= 2 * half_life_[1]) {
                // The short half-life won after the long one had settled: the popularity changed.
                // Forget faster: the long estimator restarts from the short one's rates, and both
                // age the past by one of their half-lives (a larger increment from now on).
                const double s = est_[1].mass / est_[0].mass;
                for (Node& nd : node_) nd.other = static_cast<float>(static_cast<double>(nd.weight) * s);
                est_[1].sumsq = est_[0].sumsq * s * s;
                previous_sq_[1] = previous_sq_[0] * s * s;
                est_[0].increment *= 2;
                est_[1].increment *= 2;
            }
            race_.restart();
        }
        queue_.clear();
        fresh_.clear();
        const auto n = static_cast<std::uint32_t>(node_.size());
        for (std::uint32_t i = 0; i < n; ++i)
            if (ctx.resident(i) && !ctx.pinned(i)) queue_.insert(i, node_[i].weight);
    }

    std::size_t capacity_;
    detail::RateEstimator est_[2];  // est_[0] drives the decisions, est_[1] challenges it
    double half_life_[2] = {0, 0};
    detail::EstimatorRace race_;
    detail::PersistenceLearner persistence_;
    std::vector<Node> node_;
    detail::LogBucketQueue<Node> queue_;
    std::vector<std::uint32_t> fresh_, dropped_, misses_, victims_, admitted_;
    std::vector<float> dropped_weight_;  // fresh_: see make_fresh
    std::vector<std::int32_t> dropped_bucket_;
    std::vector<std::uint32_t> lowest_, bucket_start_;  // file_dropped
    std::size_t lowest_count_ = 0;                      // listed in lowest_ and not yet taken or filed
    static constexpr std::size_t max_batch = 64;
    static constexpr std::uint32_t evaluation_period = 8;  // tokens between Brier evaluations, a power of 2
    std::uint32_t candidates_[max_batch];
    double previous_sq_[2] = {0, 0};  // squared weights of the last token before an evaluation
};

}  // namespace sparseinfer::policy
