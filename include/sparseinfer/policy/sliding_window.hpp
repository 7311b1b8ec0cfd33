// sparseinfer/policy/sliding_window.hpp - the neurons active in the last k tokens (LLM in a Flash).
//
// A residency policy for NeuronCache (the contract its state follows is at the
// top of policies.hpp).
//
//   sparseinfer::NeuronCache<sparseinfer::policy::SlidingWindow> cache(11008, {4, 2201});
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include "../detail/cache_queues.hpp"
#include "../detail/config_check.hpp"
#include "lru.hpp"

namespace sparseinfer::policy {

/// Resident = the neurons active in the last `tokens` tokens, as LLM in a Flash keeps them,
/// capped at `capacity` by evicting the least recently active first.
struct SlidingWindow {
    std::uint64_t tokens = 4;  ///< window length, >= 1 (longer than 2^32 - 1 acts as 2^32 - 1)
    std::size_t capacity = 0;  ///< >= 1
    class state;
};

class SlidingWindow::state : private Lru::state {
public:
    state(const SlidingWindow& c, std::size_t num_neurons)
        : Lru::state(Lru{c.capacity == 0 ? 1 : c.capacity}, num_neurons),
          window_(static_cast<std::uint32_t>(std::min<std::uint64_t>(c.tokens, 0xFFFFFFFFu))) {
        detail::require_config(c.capacity >= 1, "policy::SlidingWindow: capacity is 0");
        detail::require_config(c.tokens >= 1, "policy::SlidingWindow: tokens (the window length) is 0");
    }
    using Lru::state::capacity;
    using Lru::state::on_pin;
    using Lru::state::on_reclassify;
    using Lru::state::uses_missed;

    template <class Ctx>
    void on_token(Ctx& ctx, const std::uint32_t* active, std::size_t n) {
        Lru::state::on_token(ctx, active, n);
        // Expire what was last active `window_` tokens ago: after this token, the resident set
        // is the neurons active in tokens t - window + 1 .. t.
        // Ages are taken mod 2^32: a listed neuron is never older than the window (it expires every
        // token), and the window is capped at 2^32 - 1 tokens.
        const auto t = static_cast<std::uint32_t>(ctx.tokens());
        for (std::uint32_t v = list_.oldest();
             v != detail::RecencyList::npos && static_cast<std::uint32_t>(t - list_.last_use(v)) >= window_;
             v = list_.oldest()) {
            list_.pop_oldest();
            ctx.evict(v);
        }
    }

private:
    std::uint32_t window_;
};

}  // namespace sparseinfer::policy
