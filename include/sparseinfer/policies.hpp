// sparseinfer/policies.hpp - the residency policies NeuronCache is templated on.
//
//   policy::FrequencyThreshold{0.2, 1000}  hot when count >= tokens * 0.2, reclassified every 1000 tokens
//   policy::StaticProfile{2201}            the 2201 most frequent neurons of a profile, fixed (PowerInfer)
//   policy::Lru{2201}                      the 2201 most recently active neurons
//   policy::SlidingWindow{4, 2201}         neurons active in the last 4 tokens, at most 2201 (LLM in a Flash)
//   policy::Adaptive{2201}                 recency-protected, decayed-frequency admission (see below)
//
//   sparseinfer::NeuronCache<sparseinfer::policy::Lru> cache(11008, {2201});
//
// A policy is a small configuration struct with a nested `state` class that
// NeuronCache owns. The state is driven through hooks; to write a new policy,
// provide the same members:
//
//   explicit state(const Policy& config, std::size_t num_neurons);  // validates (throws sparseinfer::error)
//   std::size_t capacity() const;                     // resident-set bound incl. pins, 0 = unbounded
//   template <class Ctx> void on_token(Ctx&, const std::uint32_t* active, std::size_t n);
//   template <class Ctx> void on_reclassify(Ctx&);    // NeuronCache::reclassify(), load_profile()
//   template <class Ctx> void on_pin(Ctx&, std::uint32_t neuron);
//
// on_token receives one token's active neurons after the cache counted them
// (deduplicated, pinned ones removed, hits already scored against the resident
// set before the token). The Ctx is NeuronCache's residency view:
//   num_neurons(), tokens() (tokens recorded, this one included), count(n) (lifetime
//   activations), resident(n), pinned(n), resident_count() (pins included),
//   pinned_count(), admit(n), evict(n) (never on a pinned neuron).
// on_pin(ctx, n) is called before n becomes pinned: the policy stops tracking n
// and, when n is not resident and the resident set is at capacity, evicts one of
// its own neurons to make room. A capacity policy keeps resident_count() <=
// capacity() after every hook. Per token, the hooks must cost O(n) amortised.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "detail/cache_queues.hpp"
#include "error.hpp"

namespace sparseinfer::policy {

/// The classic hot/cold split: a neuron is hot when its activation count is at least
/// tokens * hot_fraction (and not 0). Classification runs every reclassify_interval tokens
/// and on NeuronCache::reclassify(); between runs the hot set does not move. No capacity:
/// with a slot store attached, the store holds the hot neurons that fit (see NeuronCache).
struct FrequencyThreshold {
    double hot_fraction = 0.2;                ///< in (0, 1]
    std::uint64_t reclassify_interval = 1000;  ///< tokens between classifications, >= 1
    class state;
};

/// A fixed hot set, as PowerInfer places it offline: the `capacity` most frequent neurons
/// (count > 0; ties to the lower index) of a profile, pins included. The profile is the counts
/// loaded by NeuronCache::load_profile() or recorded by record_activations() before the set is
/// placed; it is placed by reclassify(), by load_profile(), or automatically once
/// `profile_tokens` tokens were recorded (0: only explicitly). Until then nothing is resident.
/// Recording tokens never changes a placed set; only reclassify(), load_profile() or pin() do.
struct StaticProfile {
    std::size_t capacity = 0;           ///< >= 1
    std::uint64_t profile_tokens = 0;   ///< place the set after this many tokens; 0 = never automatically
    class state;
};

/// Resident = the `capacity` most recently active neurons (pins included). Within one token
/// (one call), a later position in the call counts as more recent.
struct Lru {
    std::size_t capacity = 0;  ///< >= 1
    class state;
};

/// Resident = the neurons active in the last `tokens` tokens, as LLM in a Flash keeps them,
/// capped at `capacity` by evicting the least recently active first.
struct SlidingWindow {
    std::uint64_t tokens = 4;  ///< window length, >= 1
    std::size_t capacity = 0;  ///< >= 1
    class state;
};

/// Recency-protected decayed-frequency caching with learned admission:
/// - each neuron carries an exponentially decayed activation rate q (half-life `half_life`
///   tokens), kept in O(1) per activation by growing the increment instead of decaying counts;
/// - the neurons active in the current token are protected from eviction;
/// - a missed neuron is admitted when its chance of being active in the next token,
///   r + (1 - r) q, beats the decayed rate of the least valuable unprotected resident
///   (then evicted), where r, the share of a token's active neurons still active in the next
///   token beyond what their rates predict, is learned online.
/// Without persistence (r = 0) it converges to the frequency-optimal static set and follows
/// drift at the speed of the half-life; with persistence it keeps the current working set
/// plus the most frequent rest. See docs/cache.md.
struct Adaptive {
    std::size_t capacity = 0;  ///< >= 1
    double half_life = 256;    ///< tokens for a past activation to weigh half, > 0
    class state;
};

// ---------------------------------------------------------------------------------------------

namespace detail {
inline void require(bool ok, const std::string& what) {
    if (!ok) throw sparseinfer::error(what);
}
inline std::string str(double v) { return std::to_string(v); }
}  // namespace detail

class FrequencyThreshold::state {
public:
    state(const FrequencyThreshold& c, std::size_t) : config_(c) {
        detail::require(std::isfinite(c.hot_fraction) && c.hot_fraction > 0 && c.hot_fraction <= 1,
                        "policy::FrequencyThreshold: hot_fraction (" + detail::str(c.hot_fraction) +
                            ") must be in (0, 1]");
        detail::require(c.reclassify_interval >= 1, "policy::FrequencyThreshold: reclassify_interval is 0");
    }
    std::size_t capacity() const noexcept { return 0; }

    template <class Ctx>
    void on_token(Ctx& ctx, const std::uint32_t*, std::size_t) {
        if (ctx.tokens() % config_.reclassify_interval == 0) on_reclassify(ctx);
    }

    template <class Ctx>
    void on_reclassify(Ctx& ctx) {
        const double threshold = static_cast<double>(ctx.tokens()) * config_.hot_fraction;
        promoted_.clear();
        const auto n = static_cast<std::uint32_t>(ctx.num_neurons());
        for (std::uint32_t i = 0; i < n; ++i) {
            if (ctx.pinned(i)) continue;
            const std::uint64_t c = ctx.count(i);
            const bool hot = c > 0 && static_cast<double>(c) >= threshold;
            if (hot && !ctx.resident(i)) promoted_.push_back(i);
            if (!hot && ctx.resident(i)) ctx.evict(i);  // demote first: frees store slots
        }
        // Most frequent first, so a slot store that cannot hold them all keeps the hottest.
        std::sort(promoted_.begin(), promoted_.end(), [&](std::uint32_t a, std::uint32_t b) {
            return ctx.count(a) != ctx.count(b) ? ctx.count(a) > ctx.count(b) : a < b;
        });
        for (std::uint32_t i : promoted_) ctx.admit(i);
    }

    template <class Ctx>
    void on_pin(Ctx&, std::uint32_t) {}

private:
    FrequencyThreshold config_;
    std::vector<std::uint32_t> promoted_;
};

class StaticProfile::state {
public:
    state(const StaticProfile& c, std::size_t) : config_(c) {
        detail::require(c.capacity >= 1, "policy::StaticProfile: capacity is 0");
    }
    std::size_t capacity() const noexcept { return config_.capacity; }
    bool placed() const noexcept { return placed_; }

    template <class Ctx>
    void on_token(Ctx& ctx, const std::uint32_t*, std::size_t) {
        if (!placed_ && config_.profile_tokens != 0 && ctx.tokens() >= config_.profile_tokens) on_reclassify(ctx);
    }

    /// Places the set: the most frequent unpinned neurons fill what the pins leave.
    template <class Ctx>
    void on_reclassify(Ctx& ctx) {
        placed_ = true;
        const std::size_t room = config_.capacity > ctx.pinned_count() ? config_.capacity - ctx.pinned_count() : 0;
        order_.clear();
        const auto n = static_cast<std::uint32_t>(ctx.num_neurons());
        for (std::uint32_t i = 0; i < n; ++i)
            if (!ctx.pinned(i) && ctx.count(i) > 0) order_.push_back(i);
        auto more_frequent = [&](std::uint32_t a, std::uint32_t b) {
            return ctx.count(a) != ctx.count(b) ? ctx.count(a) > ctx.count(b) : a < b;
        };
        const std::size_t keep = std::min(room, order_.size());
        std::nth_element(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(keep), order_.end(),
                         more_frequent);
        order_.resize(keep);
        chosen_.assign(n, 0);
        for (std::uint32_t i : order_) chosen_[i] = 1;
        for (std::uint32_t i = 0; i < n; ++i)
            if (ctx.resident(i) && !ctx.pinned(i) && !chosen_[i]) ctx.evict(i);
        for (std::uint32_t i : order_)
            if (!ctx.resident(i)) ctx.admit(i);
    }

    /// A pin displaces the least frequent resident when the set is full.
    template <class Ctx>
    void on_pin(Ctx& ctx, std::uint32_t neuron) {
        if (ctx.resident(neuron) || ctx.resident_count() < config_.capacity) return;
        std::uint32_t victim = 0xFFFFFFFFu;
        const auto n = static_cast<std::uint32_t>(ctx.num_neurons());
        for (std::uint32_t i = 0; i < n; ++i) {
            if (!ctx.resident(i) || ctx.pinned(i)) continue;
            if (victim == 0xFFFFFFFFu || ctx.count(i) < ctx.count(victim)) victim = i;
        }
        if (victim != 0xFFFFFFFFu) ctx.evict(victim);
    }

private:
    StaticProfile config_;
    bool placed_ = false;
    std::vector<std::uint32_t> order_;
    std::vector<std::uint8_t> chosen_;
};

class Lru::state {
public:
    state(const Lru& c, std::size_t num_neurons) : capacity_(c.capacity), queue_(num_neurons) {
        detail::require(c.capacity >= 1, "policy::Lru: capacity is 0");
    }
    std::size_t capacity() const noexcept { return capacity_; }

    template <class Ctx>
    void on_token(Ctx& ctx, const std::uint32_t* active, std::size_t n) {
        const std::uint64_t t = ctx.tokens();
        const bool can_admit = ctx.pinned_count() < capacity_;
        for (std::size_t k = 0; k < n; ++k) {
            const std::uint32_t x = active[k];
            if (!ctx.resident(x)) {
                if (!can_admit) continue;
                if (ctx.resident_count() >= capacity_) evict_oldest(ctx);
                ctx.admit(x);
            }
            queue_.touch(x, t);
        }
        queue_.compact_if_large(capacity_, [&](std::uint32_t x) { return ctx.resident(x); });
    }

    template <class Ctx>
    void on_reclassify(Ctx&) {}

    template <class Ctx>
    void on_pin(Ctx& ctx, std::uint32_t neuron) {
        queue_.forget(neuron);
        if (!ctx.resident(neuron) && ctx.resident_count() >= capacity_) evict_oldest(ctx);
    }

protected:
    /// Evicts the least recently active resident, unpinned neuron (pinned ones are forgotten).
    template <class Ctx>
    void evict_oldest(Ctx& ctx) {
        while (!queue_.empty()) {
            const auto e = queue_.front();
            queue_.pop_front();
            if (queue_.last_use(e.neuron) == e.token && ctx.resident(e.neuron) && !ctx.pinned(e.neuron)) {
                queue_.forget(e.neuron);
                ctx.evict(e.neuron);
                return;
            }
        }
    }

    std::size_t capacity_;
    sparseinfer::detail::RecencyQueue queue_;
};

class SlidingWindow::state : private Lru::state {
public:
    state(const SlidingWindow& c, std::size_t num_neurons)
        : Lru::state(Lru{c.capacity == 0 ? 1 : c.capacity}, num_neurons), window_(c.tokens) {
        detail::require(c.capacity >= 1, "policy::SlidingWindow: capacity is 0");
        detail::require(c.tokens >= 1, "policy::SlidingWindow: tokens (the window length) is 0");
    }
    using Lru::state::capacity;
    using Lru::state::on_pin;
    using Lru::state::on_reclassify;

    template <class Ctx>
    void on_token(Ctx& ctx, const std::uint32_t* active, std::size_t n) {
        Lru::state::on_token(ctx, active, n);
        // Expire what was last active `window_` tokens ago: after this token, the resident set
        // is the neurons active in tokens t - window + 1 .. t.
        const std::uint64_t t = ctx.tokens();
        if (t < window_) return;
        const std::uint64_t oldest_kept = t - window_ + 1;
        while (!queue_.empty() && queue_.front().token < oldest_kept) {
            const auto e = queue_.front();
            queue_.pop_front();
            if (queue_.last_use(e.neuron) == e.token && ctx.resident(e.neuron) && !ctx.pinned(e.neuron)) {
                queue_.forget(e.neuron);
                ctx.evict(e.neuron);
            }
        }
    }

private:
    std::uint64_t window_;
};

class Adaptive::state {
public:
    state(const Adaptive& c, std::size_t num_neurons)
        : capacity_(c.capacity),
          weight_(num_neurons, 0.0),
          last_(num_neurons, 0),
          heap_key_(num_neurons, 0.0),
          heap_(num_neurons) {
        detail::require(c.capacity >= 1, "policy::Adaptive: capacity is 0");
        detail::require(std::isfinite(c.half_life) && c.half_life > 0,
                        "policy::Adaptive: half_life (" + detail::str(c.half_life) + ") must be a positive number");
        growth_ = std::exp2(1.0 / c.half_life);
    }
    std::size_t capacity() const noexcept { return capacity_; }
    /// The learned persistence r (share of active neurons still active next token beyond their rate).
    double persistence() const noexcept { return persistence_; }
    /// Decayed activation rate of a neuron.
    double rate(std::uint32_t n) const noexcept { return mass_ > 0 ? weight_[n] / mass_ : 0.0; }

    template <class Ctx>
    void on_token(Ctx& ctx, const std::uint32_t* active, std::size_t n) {
        const std::uint64_t t = ctx.tokens();
        increment_ *= growth_;
        mass_ += increment_;
        // Pass 1: rates, and how many of the previous token's neurons came back.
        std::size_t returned = 0;
        double rate_sum = 0;
        for (std::size_t k = 0; k < n; ++k) {
            const std::uint32_t x = active[k];
            returned += last_[x] + 1 == t;
            last_[x] = t;
            weight_[x] += increment_;
            rate_sum += weight_[x];
        }
        learn_persistence(returned, n, rate_sum / mass_);
        // Pass 2: admissions against the least valuable unprotected resident.
        const bool can_admit = ctx.pinned_count() < capacity_;
        for (std::size_t k = 0; k < n && can_admit; ++k) {
            const std::uint32_t x = active[k];
            if (ctx.resident(x)) continue;
            if (ctx.resident_count() < capacity_) {
                admit(ctx, x);
                continue;
            }
            const std::uint32_t v = victim(t);
            if (v == npos) continue;  // every resident is active now
            const double qx = rate(x);
            if (persistence_ + (1 - persistence_) * qx > rate(v)) {
                heap_.pop(heap_key_.data());
                ctx.evict(v);
                admit(ctx, x);
            }
        }
        for (std::uint32_t v : deferred_) push(v);
        deferred_.clear();
        if (increment_ > 1e200) renormalise();
    }

    template <class Ctx>
    void on_reclassify(Ctx&) {}

    template <class Ctx>
    void on_pin(Ctx& ctx, std::uint32_t neuron) {
        heap_.remove(neuron, heap_key_.data());
        if (ctx.resident(neuron) || ctx.resident_count() < capacity_) return;
        const std::uint32_t v = victim(std::numeric_limits<std::uint64_t>::max());
        if (v == npos) return;
        heap_.pop(heap_key_.data());
        ctx.evict(v);
    }

private:
    static constexpr std::uint32_t npos = 0xFFFFFFFFu;

    template <class Ctx>
    void admit(Ctx& ctx, std::uint32_t x) {
        ctx.admit(x);
        push(x);
    }
    void push(std::uint32_t x) {
        heap_key_[x] = weight_[x];
        heap_.push(x, heap_key_.data());
    }

    /// The resident with the lowest decayed rate that was not active at token t; it stays at the
    /// heap top. Stale keys (weights only grow) are refreshed on the way.
    std::uint32_t victim(std::uint64_t t) {
        while (!heap_.empty()) {
            const std::uint32_t v = heap_.top();
            if (heap_key_[v] != weight_[v]) {
                heap_key_[v] = weight_[v];
                heap_.update(v, heap_key_.data());
                continue;
            }
            if (last_[v] == t) {  // protected this token: set aside, back after the token
                heap_.pop(heap_key_.data());
                deferred_.push_back(v);
                continue;
            }
            return v;
        }
        return npos;
    }

    void learn_persistence(std::size_t returned, std::size_t n, double rate_sum_now) {
        if (prev_n_ > 0) {
            const double came_back = static_cast<double>(returned) / static_cast<double>(prev_n_);
            const double expected = std::min(prev_rate_mean_, 0.999);
            double r = (came_back - expected) / (1 - expected);
            r = std::min(1.0, std::max(0.0, r));
            persistence_ += 0.05 * (r - persistence_);
        }
        prev_n_ = n;
        prev_rate_mean_ = n > 0 ? rate_sum_now / static_cast<double>(n) : 0.0;
    }

    void renormalise() {
        const double s = 1e-200;
        for (double& w : weight_) w *= s;
        for (double& k : heap_key_) k *= s;
        increment_ *= s;
        mass_ *= s;
    }

    std::size_t capacity_;
    double growth_ = 1;
    double increment_ = 1;  // weight of an activation now; grows by growth_ per token
    double mass_ = 0;       // sum of the increments so far: rate = weight / mass
    double persistence_ = 0;
    std::size_t prev_n_ = 0;
    double prev_rate_mean_ = 0;
    std::vector<double> weight_;
    std::vector<std::uint64_t> last_;
    std::vector<double> heap_key_;
    sparseinfer::detail::KeyedHeap<double> heap_;
    std::vector<std::uint32_t> deferred_;
};

}  // namespace sparseinfer::policy
