// sparseinfer/detail/nearest_edge.hpp - the `checks` neurons whose predictions
// lie nearest an edge of the kept region (the checked top-k's choice).
//
// Given per-neuron keys (detail::margin_keys: larger = nearer an edge in units
// of the neuron's own prediction error), picks the `checks` largest keys, ties
// to the lower index, NaN last, in one pass: a neuron is a candidate only when
// it beats the worst of the best kept so far, which after the first few hundred
// almost none does.
//
//   std::vector<std::uint64_t> best;
//   detail::nearest_edge(key, n, 128, best, checked);   // checked: 128 ascending ids
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace sparseinfer::detail {

/// checked = the ids of the `checks` largest key[0..n) (0 < checks < n),
/// ascending. `best` is scratch (kept between calls, so it allocates once).
inline void nearest_edge(const std::uint32_t* key, std::size_t n, std::size_t checks, std::vector<std::uint64_t>& best,
                         std::vector<std::uint32_t>& checked) {
    // Entries (key, ~index) are unique, so the result is exactly the `checks`
    // best (key, then lower index). Candidates gather in a buffer of up to
    // 2 * checks; when it fills, nth_element keeps the best `checks` and raises
    // the bar to the worst of them.
    auto entry = [key](std::size_t i) {
        return static_cast<std::uint64_t>(key[i]) << 32 | (0xffffffffu - static_cast<std::uint32_t>(i));
    };
    best.clear();
    best.reserve(2 * checks);
    std::uint64_t bar = 0;  // entries at or below it cannot be among the best
    auto shrink = [&] {
        std::nth_element(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(checks - 1), best.end(),
                         std::greater<>());
        best.resize(checks);
        bar = best[checks - 1];
    };
    for (std::size_t i = 0; i < n; ++i) {
        if (key[i] < static_cast<std::uint32_t>(bar >> 32)) continue;  // the common case
        const std::uint64_t e = entry(i);
        if (e <= bar) continue;
        best.push_back(e);
        if (best.size() == 2 * checks) shrink();
    }
    if (best.size() > checks) shrink();
    checked.clear();
    for (std::uint64_t e : best) checked.push_back(0xffffffffu - static_cast<std::uint32_t>(e));
    std::sort(checked.begin(), checked.end());
}

}  // namespace sparseinfer::detail
