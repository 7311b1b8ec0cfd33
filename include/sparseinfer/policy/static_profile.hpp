// sparseinfer/policy/static_profile.hpp - a fixed hot set placed from a profile (PowerInfer).
//
// A residency policy for NeuronCache (the contract its state follows is at the
// top of policies.hpp).
//
//   sparseinfer::NeuronCache<sparseinfer::policy::StaticProfile> cache(11008, {2201});
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include "../detail/config_check.hpp"

namespace sparseinfer::policy {

/// A fixed hot set, as PowerInfer places it offline: the `capacity` most frequent neurons
/// (count > 0; ties to the lower index) of a profile, pins included. The profile is the counts
/// loaded by NeuronCache::load_profile() or recorded by record_activations() before the set is
/// placed; it is placed by reclassify(), by load_profile(), or automatically once
/// `profile_tokens` tokens were recorded (0: only explicitly). Until then nothing is resident.
/// Recording tokens never changes a placed set; only reclassify(), load_profile() or pin() do.
struct StaticProfile {
    std::size_t capacity = 0;          ///< >= 1
    std::uint64_t profile_tokens = 0;  ///< place the set after this many tokens; 0 = never automatically
    class state;
};

class StaticProfile::state {
public:
    state(const StaticProfile& c, std::size_t) : config_(c) {
        detail::require_config(c.capacity >= 1, "policy::StaticProfile: capacity is 0");
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

}  // namespace sparseinfer::policy
