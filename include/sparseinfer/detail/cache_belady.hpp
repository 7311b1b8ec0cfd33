// sparseinfer/detail/cache_belady.hpp - Belady's offline optimum for a neuron cache, the floor of
// every policy's miss count.
//
// Knowing the future, evict the resident neuron whose next use is farthest; a missed neuron is not
// admitted when its own next use is farther than every resident's (bypass), since online policies
// may decline admission too. Misses are counted as NeuronCache counts them: an active neuron that
// was not resident before its token (a neuron repeated within a token counts once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <queue>
#include <utility>
#include <vector>

#include "../activation_trace.hpp"

namespace sparseinfer::detail {

struct BeladyResult {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
};

/// Replays `trace` under Belady's rule with `capacity` slots; hits and misses are counted from
/// token `first_counted` on (earlier tokens warm the cache).
inline BeladyResult belady(const ActivationTrace& trace, std::size_t capacity, std::size_t first_counted = 0) {
    const std::size_t tokens = trace.num_tokens();
    const std::uint64_t never = std::numeric_limits<std::uint64_t>::max();
    // next[i] = the token of the next use of the neuron at activation entry i (never if none).
    std::vector<std::uint64_t> next(trace.num_activations());
    std::vector<std::uint64_t> upcoming(trace.num_neurons(), never);
    std::vector<std::uint64_t> seen(trace.num_neurons(), never);
    std::size_t entry = trace.num_activations();
    for (std::size_t t = tokens; t-- > 0;) {
        const std::uint32_t* a = trace.token(t);
        const std::size_t n = trace.token_size(t);
        entry -= n;
        for (std::size_t k = 0; k < n; ++k) next[entry + k] = upcoming[a[k]];
        for (std::size_t k = 0; k < n; ++k) upcoming[a[k]] = t;
    }
    std::vector<std::uint8_t> resident(trace.num_neurons(), 0);
    std::vector<std::uint64_t> key(trace.num_neurons(), never);             // next use of each resident neuron
    std::priority_queue<std::pair<std::uint64_t, std::uint32_t>> farthest;  // lazy: stale entries skipped
    std::size_t size = 0;
    BeladyResult r;
    entry = 0;
    for (std::size_t t = 0; t < tokens; ++t) {
        const std::uint32_t* a = trace.token(t);
        const std::size_t n = trace.token_size(t);
        for (std::size_t k = 0; k < n; ++k, ++entry) {
            const std::uint32_t x = a[k];
            if (seen[x] == t) continue;
            seen[x] = t;
            const std::uint64_t nu = next[entry];
            if (resident[x]) {
                if (t >= first_counted) ++r.hits;
                key[x] = nu;
                farthest.push({nu, x});
                continue;
            }
            if (t >= first_counted) ++r.misses;
            if (capacity == 0 || nu == never) continue;
            if (size == capacity) {
                while (!(resident[farthest.top().second] && key[farthest.top().second] == farthest.top().first))
                    farthest.pop();
                const auto [far, v] = farthest.top();
                if (far <= nu) continue;  // every resident is needed before x: bypass
                farthest.pop();
                resident[v] = 0;
                --size;
            }
            resident[x] = 1;
            key[x] = nu;
            farthest.push({nu, x});
            ++size;
        }
    }
    return r;
}

}  // namespace sparseinfer::detail
