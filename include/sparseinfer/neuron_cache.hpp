// sparseinfer/neuron_cache.hpp - which FFN neurons are hot (resident), and which should be.
//
// A NeuronCache watches the neurons a sparse FFN layer activates, one call per
// token, and keeps a hot (resident) set under a policy from policies.hpp:
// a profiled static set as PowerInfer places it, LRU, the sliding window of
// LLM in a Flash, the classic frequency threshold, or policy::Adaptive.
// Optionally it keeps a SlotStore in step with the hot set, so the engine
// reads resident neurons' bytes from one preallocated buffer and fetches the
// rest on demand. Budgets are per layer: use one cache per layer.
//
//   sparseinfer::NeuronCache<sparseinfer::policy::Adaptive> cache(11008, {2201});
//   cache.attach_store(row_bytes, 2201 * row_bytes, loader);   // optional resident weights
//   cache.record_activations(active.data(), active.size());    // once per token
//   if (const std::uint8_t* p = cache.resident_data(n)) { /* fast path */ }
//   sparseinfer::CacheStats s = cache.stats();                 // hit_rate, churn, ...
//
// Semantics
// - One call of record_activations = one token. A neuron repeated within a call counts
//   once. An index >= num_neurons() throws sparseinfer::error before any state changes.
// - An active neuron is a hit when it was hot before its token was recorded, else a miss.
// - is_hot(n) == resident for the capacity policies (StaticProfile, Lru, SlidingWindow,
//   Adaptive), which keep the resident set, pins included, at or below their capacity at all
//   times. FrequencyThreshold has no capacity.
// - pin() forces neurons hot; under a capacity policy pins count toward the capacity (pinning
//   more than capacity neurons throws). Pins survive clear().
// - Per token the cost is O(active neurons) amortised (FrequencyThreshold adds an
//   O(num_neurons) classification every reclassify_interval tokens).
// - With a store attached (attach_store): under a capacity policy the store must have at least
//   `capacity` slots (else sparseinfer::error), and holds exactly the hot set. Under
//   FrequencyThreshold it holds the hot neurons that fit: pins first, then at each
//   classification the newly hot neurons in descending count while slots remain; a hot neuron
//   that did not fit has resident_data() == nullptr until a later classification frees a slot.
//   A loader that throws propagates out of the call that admitted the neuron; that neuron stays
//   cold, the token's counts and hits are recorded, and the resident set stays within capacity.
// - Profiles: save_profile/load_profile write and read per-neuron counts in the little-endian
//   file described at save_profile (docs/cache.md); every malformed file throws
//   sparseinfer::format_error naming what was wrong and its byte offset.
//
// Thread safety: none inside. One cache object is used by one thread at a time; threads that
// record separately combine their statistics with merge().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "detail/cache_profile.hpp"
#include "detail/write_file.hpp"
#include "error.hpp"
#include "policies.hpp"
#include "slot_store.hpp"

namespace sparseinfer {

/// A snapshot of a cache's counters (see NeuronCache::stats()).
struct CacheStats {
    std::size_t num_hot = 0;              ///< neurons hot now (resident, for capacity policies)
    std::size_t num_cold = 0;             ///< num_neurons - num_hot
    std::uint64_t total_activations = 0;  ///< tokens recorded
    double hot_ratio = 0;                 ///< num_hot / num_neurons, 0 when there are no neurons
    std::uint64_t hits = 0;               ///< active neurons that were hot before their token
    std::uint64_t misses = 0;             ///< active neurons that were not
    double hit_rate = 0;                  ///< hits / (hits + misses), 0 before any activation
    std::uint64_t churn = 0;              ///< neurons admitted plus evicted since the last clear()
};

/// Counts each neuron's activations and keeps a hot (resident) set chosen by a residency
/// policy (policies.hpp); optionally holds the hot neurons' bytes in a SlotStore.
template <class Policy = policy::FrequencyThreshold>
class NeuronCache {
public:
    /// The residency policy.
    using policy_type = Policy;

    /// Throws sparseinfer::error when the policy's values are nonsensical or num_neurons does not
    /// fit a 32-bit index.
    explicit NeuronCache(std::size_t num_neurons, Policy policy = {})
        : config_(policy), state_(policy, check_size(num_neurons)) {
        counts_.assign(num_neurons, 0);
        recent_.assign(num_neurons, 0);
        flags_.assign(num_neurons, 0);
    }

    /// Neurons the cache tracks.
    std::size_t num_neurons() const noexcept { return counts_.size(); }
    /// The policy's configuration.
    const Policy& policy() const noexcept { return config_; }
    /// The policy's state (for inspection, e.g. Adaptive's learned persistence).
    const typename Policy::state& policy_state() const noexcept { return state_; }
    /// The policy's capacity, pins included; 0 when unbounded.
    std::size_t capacity() const noexcept { return state_.capacity(); }

    /// Records one token's active neurons (see the header comment for the semantics).
    void record_activations(const std::uint32_t* active, std::size_t n) {
        if (n > 0 && active == nullptr) throw error("NeuronCache::record_activations: active is null with n > 0");
        // Stamp the token's neurons to drop repeats: no pass afterwards to clear marks. The stamp
        // lives in the flag byte's upper bits; when it runs out, every stamp is cleared (O(N) every
        // 63 tokens).
        if (++stamp_ > max_stamp) {
            for (std::uint8_t& f : flags_) f &= state_bits;
            stamp_ = 1;
        }
        if (++unfolded_ > max_unfolded) fold_counts();  // O(N) every 2^20 - 1 calls
        const auto mark = static_cast<std::uint8_t>(stamp_ << stamp_shift);
        constexpr bool list_misses = policy::uses_missed<typename Policy::state>;
        if (scratch_.size() < n) {
            scratch_.resize(n);
            if (list_misses) missed_.resize(n);
        }
        // Locals: a byte store may alias anything, so members would be reloaded after each one.
        std::uint32_t* const out = scratch_.data();
        std::uint32_t* const missed = missed_.data();
        std::uint8_t* const flags = flags_.data();
        std::uint32_t* const recent = recent_.data();
        const auto size = static_cast<std::uint32_t>(counts_.size());  // < 2^32 - 1 (check_size)
        std::uint64_t hits = 0, unique = 0;
        std::size_t m = 0, cold = 0;
#if defined(__GNUC__)
        // The list may come from memory (a stored trace): ask for all of it now, so its lines
        // arrive while the first neurons are counted.
        for (std::size_t k = 0; k < n; k += 16) __builtin_prefetch(active + k);
#endif
        // The range check rides in this pass (a branch never taken) rather than a pass of its own:
        // alone, that pass waits on the list's first reads from memory; here they overlap the
        // random accesses. A bad index undoes the pass, so nothing has changed when it throws.
        for (std::size_t k = 0; k < n; ++k) {
            const std::uint32_t x = active[k];
            if (x >= size) reject(active, k, mark);
            const std::uint8_t f = flags[x];
            if ((f & ~state_bits) == mark) continue;  // repeated within this call
            flags[x] = static_cast<std::uint8_t>((f & state_bits) | mark);
            ++recent[x];
            ++unique;
            hits += f & resident_bit;
            out[m] = x;  // kept unless pinned, without a branch
            m += !(f & pinned_bit);
            if constexpr (list_misses) {
                missed[cold] = x;  // kept when a miss (never pinned: pinned neurons are resident)
                cold += !(f & resident_bit);
            }
        }
        missed_count_ = cold;
        ++tokens_;
        hits_ += hits;
        misses_ += unique - hits;
        Residency ctx(*this);
        state_.on_token(ctx, out, m);
    }
    /// Records one token (as above).
    void record_activations(const std::vector<std::uint32_t>& active) {
        record_activations(active.data(), active.size());
    }

    /// Hot now (resident, for capacity policies). Throws sparseinfer::error when out of range.
    bool is_hot(std::uint32_t neuron) const {
        check(neuron, "is_hot");
        return flags_[neuron] & resident_bit;
    }
    /// Pinned by pin(). Throws sparseinfer::error when out of range.
    bool is_pinned(std::uint32_t neuron) const {
        check(neuron, "is_pinned");
        return flags_[neuron] & pinned_bit;
    }
    /// Sorted indices of the hot neurons.
    std::vector<std::uint32_t> hot_neurons() const { return select(true); }
    /// Sorted indices of the cold neurons.
    std::vector<std::uint32_t> cold_neurons() const { return select(false); }

    /// count / tokens recorded, in [0, 1]; 0 before any token. Throws when out of range.
    double activation_frequency(std::uint32_t neuron) const {
        check(neuron, "activation_frequency");
        return tokens_ == 0 ? 0.0 : static_cast<double>(count_of(neuron)) / static_cast<double>(tokens_);
    }
    /// Activations of one neuron since the last clear (or as loaded).
    std::uint64_t activation_count(std::uint32_t neuron) const {
        check(neuron, "activation_count");
        return count_of(neuron);
    }
    /// Tokens recorded since the last clear (or as loaded).
    std::uint64_t total_activations() const noexcept { return tokens_; }

    /// Runs the policy's classification now (FrequencyThreshold: apply the threshold;
    /// StaticProfile: place the set from the counts; the others classify continuously).
    void reclassify() {
        Residency ctx(*this);
        state_.on_reclassify(ctx);
    }

    /// Forgets counts, tokens, hits, misses, churn and the resident set; pins stay resident.
    /// An attached store keeps only the pinned neurons.
    void clear() {
        std::fill(counts_.begin(), counts_.end(), 0);
        std::fill(recent_.begin(), recent_.end(), 0);
        unfolded_ = 0;
        tokens_ = hits_ = misses_ = churn_ = 0;
        state_ = typename Policy::state(config_, counts_.size());
        for (std::size_t i = 0; i < flags_.size(); ++i) {
            if ((flags_[i] & resident_bit) && !(flags_[i] & pinned_bit)) {
                flags_[i] = 0;
                --resident_;
                if (store_ && store_->contains(static_cast<std::uint32_t>(i)))
                    store_->evict(static_cast<std::uint32_t>(i));
            }
        }
    }

    /// A snapshot of the counters.
    CacheStats stats() const {
        CacheStats s;
        s.num_hot = resident_;
        s.num_cold = counts_.size() - resident_;
        s.total_activations = tokens_;
        s.hot_ratio = counts_.empty() ? 0.0 : static_cast<double>(resident_) / static_cast<double>(counts_.size());
        s.hits = hits_;
        s.misses = misses_;
        const std::uint64_t all = hits_ + misses_;
        s.hit_rate = all == 0 ? 0.0 : static_cast<double>(hits_) / static_cast<double>(all);
        s.churn = churn_;
        return s;
    }

    /// Forces neurons hot (and resident in an attached store). Under a capacity policy the pins
    /// count toward the capacity: the policy evicts its own neurons to make room, and pinning more
    /// than `capacity` neurons throws sparseinfer::error. Validates every index first.
    void pin(const std::uint32_t* neurons, std::size_t n) {
        if (n > 0 && neurons == nullptr) throw error("NeuronCache::pin: neurons is null with n > 0");
        std::size_t new_pins = 0;
        std::vector<std::uint8_t> counted;
        for (std::size_t k = 0; k < n; ++k) {
            if (neurons[k] >= counts_.size())
                throw error("NeuronCache::pin: neurons[" + std::to_string(k) + "] = " + std::to_string(neurons[k]) +
                            " is out of range (num_neurons " + std::to_string(counts_.size()) + ")");
        }
        counted.assign(counts_.size(), 0);
        for (std::size_t k = 0; k < n; ++k)
            if (!(flags_[neurons[k]] & pinned_bit) && !counted[neurons[k]]) {
                counted[neurons[k]] = 1;
                ++new_pins;
            }
        const std::size_t cap = state_.capacity();
        if (cap != 0 && pinned_ + new_pins > cap)
            throw error("NeuronCache::pin: " + std::to_string(pinned_ + new_pins) + " pinned neurons exceed capacity " +
                        std::to_string(cap));
        if (store_ && pinned_ + new_pins > store_->capacity())
            throw error("NeuronCache::pin: " + std::to_string(pinned_ + new_pins) +
                        " pinned neurons exceed the store's " + std::to_string(store_->capacity()) + " slots");
        Residency ctx(*this);
        for (std::size_t k = 0; k < n; ++k) {
            const std::uint32_t x = neurons[k];
            if (flags_[x] & pinned_bit) continue;
            state_.on_pin(ctx, x);
            if (store_ && !store_->contains(x) && store_->full()) make_store_room();
            if (!(flags_[x] & resident_bit)) ctx.admit(x);
            flags_[x] |= pinned_bit;
            ++pinned_;
        }
    }
    /// Pins the listed neurons (as above).
    void pin(const std::vector<std::uint32_t>& neurons) { pin(neurons.data(), neurons.size()); }

    /// The permutation that lists neurons by descending activation count (ties: lower index first),
    /// for engines that reorder weights offline so the hot block is contiguous.
    std::vector<std::uint32_t> hot_first_order() const {
        std::vector<std::uint32_t> order(counts_.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
        std::stable_sort(order.begin(), order.end(),
                         [&](std::uint32_t a, std::uint32_t b) { return count_of(a) > count_of(b); });
        return order;
    }

    /// Adds another cache's statistics (counts, tokens, hits, misses) to this one, e.g. profiles
    /// recorded by several threads. The hot set is left as is: call reclassify() to apply the
    /// combined counts. Throws sparseinfer::error when the neuron counts differ.
    void merge(const NeuronCache& other) {
        if (other.num_neurons() != num_neurons())
            throw error("NeuronCache::merge: num_neurons differ (" + std::to_string(num_neurons()) + " and " +
                        std::to_string(other.num_neurons()) + ")");
        fold_counts();
        if (&other == this) {
            for (auto& c : counts_) c *= 2;
            tokens_ *= 2;
            hits_ *= 2;
            misses_ *= 2;
            return;
        }
        for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.count_of(static_cast<std::uint32_t>(i));
        tokens_ += other.tokens_;
        hits_ += other.hits_;
        misses_ += other.misses_;
    }

    /// Writes the per-neuron counts and the token count (format in detail/cache_profile.hpp).
    void save_profile(std::ostream& out) const {
        std::vector<std::uint64_t> counts(counts_.size());
        for (std::size_t i = 0; i < counts.size(); ++i) counts[i] = count_of(static_cast<std::uint32_t>(i));
        detail::write_profile(out, counts, tokens_);
    }
    /// Writes the profile to the file at `path`; throws sparseinfer::error when that fails.
    void save_profile(const std::string& path) const {
        detail::write_file(path, "NeuronCache::save_profile", [this](std::ostream& os) { save_profile(os); });
    }
    /// Replaces counts and tokens with a saved profile (hits, misses and churn restart at 0), then
    /// reclassifies (StaticProfile places its set from it). Throws sparseinfer::format_error on a
    /// malformed file or one for another number of neurons; the cache is then unchanged.
    void load_profile(std::istream& in) {
        std::uint64_t tokens = 0;
        std::vector<std::uint64_t> counts = detail::read_profile(in, counts_.size(), tokens);
        counts_ = std::move(counts);
        std::fill(recent_.begin(), recent_.end(), 0);
        unfolded_ = 0;
        tokens_ = tokens;
        hits_ = misses_ = churn_ = 0;
        reclassify();
    }
    /// Loads a profile from the file at `path` (as above).
    void load_profile(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw error("NeuronCache::load_profile: cannot open '" + path + "'");
        load_profile(in);
    }

    /// Keeps a SlotStore in step with the hot set: the current hot neurons are loaded now, admitted
    /// ones are loaded on admission, evicted ones leave. Replaces any store attached before. See the
    /// header comment for how the store's slot count meets the policy's capacity.
    void attach_store(std::size_t bytes_per_neuron, std::size_t budget_bytes, SlotStore::Loader loader) {
        auto store = std::make_unique<SlotStore>(counts_.size(), bytes_per_neuron, budget_bytes, std::move(loader));
        const std::size_t cap = state_.capacity();
        if (cap != 0 && store->capacity() < std::min(cap, counts_.size()))
            throw error("NeuronCache::attach_store: the budget holds " + std::to_string(store->capacity()) +
                        " slots, fewer than the policy's capacity " + std::to_string(cap));
        if (pinned_ > store->capacity())
            throw error("NeuronCache::attach_store: the budget holds " + std::to_string(store->capacity()) +
                        " slots, fewer than the " + std::to_string(pinned_) + " pinned neurons");
        // Pins first, then the hot neurons in descending count while slots remain.
        for (std::size_t i = 0; i < flags_.size(); ++i)
            if (flags_[i] & pinned_bit) store->insert(static_cast<std::uint32_t>(i));
        std::vector<std::uint32_t> hot;
        for (std::size_t i = 0; i < flags_.size(); ++i)
            if ((flags_[i] & resident_bit) && !(flags_[i] & pinned_bit)) hot.push_back(static_cast<std::uint32_t>(i));
        std::stable_sort(hot.begin(), hot.end(),
                         [&](std::uint32_t a, std::uint32_t b) { return count_of(a) > count_of(b); });
        for (std::uint32_t x : hot) {
            if (store->full()) break;
            store->insert(x);
        }
        store_ = std::move(store);
    }
    /// Detaches the store (its memory is freed).
    void detach_store() noexcept { store_.reset(); }
    /// The attached store, or nullptr.
    const SlotStore* store() const noexcept { return store_.get(); }
    /// The bytes of a resident neuron; nullptr when it is not resident, out of range, or no store.
    const std::uint8_t* resident_data(std::uint32_t neuron) const noexcept {
        return store_ ? store_->find(neuron) : nullptr;
    }

private:
    static constexpr std::uint8_t resident_bit = 1;
    static constexpr std::uint8_t pinned_bit = 2;
    static constexpr std::uint8_t state_bits = resident_bit | pinned_bit;
    // Bits 2-7: the stamp of the last record_activations call that saw the neuron (0 = none).
    static constexpr int stamp_shift = 2;
    static constexpr unsigned max_stamp = 63;

    /// The view policies act through (see policies.hpp).
    class Residency {
    public:
        explicit Residency(NeuronCache& c) noexcept : c_(c) {}
        std::size_t num_neurons() const noexcept { return c_.counts_.size(); }
        std::uint64_t tokens() const noexcept { return c_.tokens_; }
        std::uint64_t count(std::uint32_t n) const noexcept { return c_.count_of(n); }
        bool resident(std::uint32_t n) const noexcept { return c_.flags_[n] & resident_bit; }
        bool pinned(std::uint32_t n) const noexcept { return c_.flags_[n] & pinned_bit; }
        std::size_t resident_count() const noexcept { return c_.resident_; }
        /// In on_token of a policy that declares uses_missed (policies.hpp): the token's misses, its
        /// distinct neurons that were not resident before it, in call order.
        const std::uint32_t* missed() const noexcept { return c_.missed_.data(); }
        std::size_t missed_count() const noexcept { return c_.missed_count_; }
        std::size_t pinned_count() const noexcept { return c_.pinned_; }
        void admit(std::uint32_t n) {
            if (c_.store_ && !c_.store_->full()) c_.store_->insert(n);
            c_.flags_[n] |= resident_bit;
            ++c_.resident_;
            ++c_.churn_;
        }
        void evict(std::uint32_t n) {
            if (c_.store_ && c_.store_->contains(n)) c_.store_->evict(n);
            c_.flags_[n] &= static_cast<std::uint8_t>(~resident_bit);
            --c_.resident_;
            ++c_.churn_;
        }
        /// admit() of n neurons in order; `done` counts those admitted (when one throws).
        void admit(const std::uint32_t* ns, std::size_t n, std::size_t& done) {
            if (c_.store_) {
                for (done = 0; done < n; ++done) admit(ns[done]);
                return;
            }
            std::uint8_t* const flags = c_.flags_.data();
            for (std::size_t k = 0; k < n; ++k) flags[ns[k]] |= resident_bit;
            c_.resident_ += n;
            c_.churn_ += n;
            done = n;
        }
        /// evict() of n neurons.
        void evict(const std::uint32_t* ns, std::size_t n) {
            if (c_.store_) {
                for (std::size_t k = 0; k < n; ++k) evict(ns[k]);
                return;
            }
            std::uint8_t* const flags = c_.flags_.data();
            for (std::size_t k = 0; k < n; ++k) flags[ns[k]] &= static_cast<std::uint8_t>(~resident_bit);
            c_.resident_ -= n;
            c_.churn_ += n;
        }
        /// evict(out), then admit(in), in one step when no store is attached.
        void replace(std::uint32_t out, std::uint32_t in) {
            if (c_.store_) {
                evict(out);
                admit(in);
                return;
            }
            c_.flags_[out] &= static_cast<std::uint8_t>(~resident_bit);
            c_.flags_[in] |= resident_bit;
            c_.churn_ += 2;
        }

    private:
        NeuronCache& c_;
    };

    static std::size_t check_size(std::size_t n) {
        if (n >= 0xFFFFFFFFu)
            throw error("NeuronCache: num_neurons (" + std::to_string(n) + ") must be below 2^32 - 1");
        return n;
    }
    /// active[bad] is out of range: undoes what record_activations did for active[0, bad) (their
    /// counts and this call's stamps), then throws naming the index.
    [[noreturn, gnu::noinline]] void reject(const std::uint32_t* active, std::size_t bad, std::uint8_t mark) {
        for (std::size_t k = 0; k < bad; ++k) {
            const std::uint32_t x = active[k];
            if ((flags_[x] & ~state_bits) != mark) continue;  // a repeat, already undone
            flags_[x] &= state_bits;                          // stamp 0: seen by no call
            --recent_[x];
        }
        throw error("NeuronCache::record_activations: active[" + std::to_string(bad) +
                    "] = " + std::to_string(active[bad]) + " is out of range (num_neurons " +
                    std::to_string(counts_.size()) + ")");
    }
    std::uint64_t count_of(std::uint32_t n) const noexcept { return counts_[n] + recent_[n]; }
    /// Adds recent_ to counts_.
    void fold_counts() noexcept {
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            counts_[i] += recent_[i];
            recent_[i] = 0;
        }
        unfolded_ = 0;
    }
    void check(std::uint32_t neuron, const char* what) const {
        if (neuron >= counts_.size())
            throw error(std::string("NeuronCache::") + what + ": neuron " + std::to_string(neuron) +
                        " is out of range (num_neurons " + std::to_string(counts_.size()) + ")");
    }
    std::vector<std::uint32_t> select(bool hot) const {
        std::vector<std::uint32_t> out;
        out.reserve(hot ? resident_ : counts_.size() - resident_);
        for (std::size_t i = 0; i < flags_.size(); ++i)
            if (static_cast<bool>(flags_[i] & resident_bit) == hot) out.push_back(static_cast<std::uint32_t>(i));
        return out;
    }
    /// FrequencyThreshold only (capacity policies never fill the store past their capacity): frees
    /// the slot of an unpinned hot neuron, which stays hot without resident data.
    void make_store_room() {
        for (std::size_t s = store_->size(); s-- > 0;) {
            const std::uint32_t x = store_->neuron_at(static_cast<std::uint32_t>(s));
            if (!(flags_[x] & pinned_bit)) {
                store_->evict(x);
                return;
            }
        }
    }

    Policy config_;
    typename Policy::state state_;
    // A neuron's count is counts_ + recent_: recording increments the 32-bit recent_ (half the
    // cache footprint of 64-bit counts), added to counts_ every 2^20 - 1 calls, long before it
    // could overflow, and whenever counts are combined.
    static constexpr std::uint32_t max_unfolded = (std::uint32_t{1} << 20) - 1;
    std::vector<std::uint64_t> counts_;
    std::vector<std::uint32_t> recent_;
    std::uint32_t unfolded_ = 0;  // calls since the last fold_counts()
    std::vector<std::uint8_t> flags_;
    std::vector<std::uint32_t> scratch_, missed_;
    std::size_t missed_count_ = 0;
    unsigned stamp_ = 0;
    std::uint64_t tokens_ = 0, hits_ = 0, misses_ = 0;
    std::size_t resident_ = 0, pinned_ = 0;
    // Not next to resident_: admit/evict update both, and a compiler that fuses the two updates into
    // one 16-byte load/store makes every following 8-byte update miss store-to-load forwarding.
    std::uint64_t churn_ = 0;
    std::unique_ptr<SlotStore> store_;
};

}  // namespace sparseinfer
