// sparseinfer/policy/frequency_threshold.hpp - the classic hot/cold split by activation count.
//
// A residency policy for NeuronCache (the contract its state follows is at the
// top of policies.hpp).
//
//   sparseinfer::NeuronCache<sparseinfer::policy::FrequencyThreshold> cache(11008, {0.2, 1000});
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include "../detail/config_check.hpp"

namespace sparseinfer::policy {

/// The classic hot/cold split: a neuron is hot when its activation count is at least
/// tokens * hot_fraction (and not 0). Classification runs every reclassify_interval tokens
/// and on NeuronCache::reclassify(); between runs the hot set does not move. No capacity:
/// with a slot store attached, the store holds the hot neurons that fit (see NeuronCache).
struct FrequencyThreshold {
    double hot_fraction = 0.2;                 ///< in (0, 1]
    std::uint64_t reclassify_interval = 1000;  ///< tokens between classifications, >= 1
    class state;
};

class FrequencyThreshold::state {
public:
    state(const FrequencyThreshold& c, std::size_t) : config_(c) {
        detail::require_config(
            std::isfinite(c.hot_fraction) && c.hot_fraction > 0 && c.hot_fraction <= 1,
            "policy::FrequencyThreshold: hot_fraction (" + std::to_string(c.hot_fraction) + ") must be in (0, 1]");
        detail::require_config(c.reclassify_interval >= 1, "policy::FrequencyThreshold: reclassify_interval is 0");
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

}  // namespace sparseinfer::policy
