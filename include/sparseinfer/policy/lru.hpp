// sparseinfer/policy/lru.hpp - the most recently active neurons.
//
// A residency policy for NeuronCache (the contract its state follows is at the
// top of policies.hpp).
//
//   sparseinfer::NeuronCache<sparseinfer::policy::Lru> cache(11008, {2201});
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include "../detail/cache_queues.hpp"
#include "../detail/config_check.hpp"

namespace sparseinfer::policy {

/// Resident = the `capacity` most recently active neurons (pins included). Within one token
/// (one call), a later position in the call counts as more recent.
struct Lru {
    std::size_t capacity = 0;  ///< >= 1
    class state;
};

class Lru::state {
public:
    state(const Lru& c, std::size_t num_neurons) : capacity_(c.capacity), list_(num_neurons) {
        detail::require_config(c.capacity >= 1, "policy::Lru: capacity is 0");
    }
    std::size_t capacity() const noexcept { return capacity_; }
    static constexpr bool uses_missed = true;  // the misses come listed (see uses_missed)

    template <class Ctx>
    void on_token(Ctx& ctx, const std::uint32_t* active, std::size_t n) {
        const std::uint64_t t = ctx.tokens();
        if (ctx.pinned_count() >= capacity_) return;  // no room left beside the pins
        if (n > capacity_ - ctx.pinned_count()) {
            // More active neurons than room: the token evicts its own earlier neurons, in order.
            for (std::size_t k = 0; k < n; ++k) {
                const std::uint32_t x = active[k];
                if (!ctx.resident(x)) {
                    if (ctx.resident_count() >= capacity_) evict_oldest(ctx);
                    ctx.admit(x);
                }
                list_.touch(x, t);
            }
            return;
        }
        // The token fits: every eviction takes a neuron older than the token, so touching all
        // first, then admitting the misses, leaves the same set, without a branch on hit or miss
        // in the first pass.
        list_.touch(active, n, t);  // n distinct neurons
        const std::uint32_t* const misses = ctx.missed();
        const std::size_t m = ctx.missed_count();
        // Make room first (the oldest residents, none of them active now), then admit: two tight loops.
        const std::size_t resident = ctx.resident_count();
        const std::size_t over = resident + m > capacity_ ? resident + m - capacity_ : 0;
        if (victims_.size() < over) victims_.resize(over);
        ctx.evict(victims_.data(), list_.pop_oldest(victims_.data(), over));
        std::size_t k = 0;
        try {
            ctx.admit(misses, m, k);
        } catch (...) {
            for (; k < m; ++k) list_.remove(misses[k]);  // not admitted: not in the order either
            throw;
        }
    }

    template <class Ctx>
    void on_reclassify(Ctx&) {}

    template <class Ctx>
    void on_pin(Ctx& ctx, std::uint32_t neuron) {
        list_.remove(neuron);  // pinned neurons leave the recency order
        if (!ctx.resident(neuron) && ctx.resident_count() >= capacity_) evict_oldest(ctx);
    }

protected:
    /// Evicts the least recently active unpinned resident (pinned ones are not listed).
    template <class Ctx>
    void evict_oldest(Ctx& ctx) {
        const std::uint32_t v = list_.pop_oldest();
        if (v != detail::RecencyList::npos) ctx.evict(v);
    }

    std::size_t capacity_;
    detail::RecencyList list_;
    std::vector<std::uint32_t> victims_;
};

}  // namespace sparseinfer::policy
