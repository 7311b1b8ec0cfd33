// sparseinfer/detail/kept_region.hpp - where a pre-activation must lie for its
// neuron to be kept by a top-k cut, and how far a prediction is from the edge.
//
// The checked top-k (LowRankPredictor::select_top_k_checked) keeps the neurons
// whose |act(z)| >= cut. For ReLU that is z >= pos; SiLU and GELU also keep a
// band of negative z around the peak of |act| below zero when cut is small.
// A prediction near an edge of that region, in units of its own error, is the
// one worth checking exactly.
//
//   auto region = detail::kept_region(Activation::silu, cut);
//   detail::margin_keys(region, pre, inv_sigma, n, key);   // larger key: nearer an edge
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../activation.hpp"
#include "../selection.hpp"

namespace sparseinfer::detail {

/// The pre-activations z with |act(z)| >= cut (cut > 0): z >= pos, and for
/// SiLU / GELU also neg_lo <= z <= neg_hi when cut is below the peak of |act|
/// on the negative side.
struct KeptRegion {
    float pos = 0, neg_lo = 0, neg_hi = 0;
    bool has_neg = false;

    /// Distance from z to the nearest edge of the region (NaN for a NaN z).
    /// The minimum compares the distances' bits as integers (they are >= 0),
    /// so loops over it vectorize.
    float distance(float z) const noexcept {
        const float d = std::fabs(z - pos);
        if (!has_neg) return d;
        const float lo = std::fabs(z - neg_lo), hi = std::fabs(z - neg_hi);
        const std::uint32_t bd = float_bits(d), blo = float_bits(lo), bhi = float_bits(hi);
        const std::uint32_t bneg = blo < bhi ? blo : bhi;
        return bits_float(bneg < bd ? bneg : bd);  // a NaN (bits above every number) never wins over a number
    }
};

/// key[i] = rank_key(-distance(pre[i]) / sigma_i): larger for neurons nearer an
/// edge in units of their prediction error. The arrays must not overlap (the
/// restrict qualifiers let the loop vectorize without run-time overlap checks).
inline void margin_keys(const KeptRegion& region, const float* __restrict pre, const float* __restrict inv_sigma,
                        std::size_t n, std::uint32_t* __restrict key) noexcept {
    const KeptRegion r = region;  // a local copy: its fields stay in registers
    for (std::size_t i = 0; i < n; ++i) key[i] = rank_key(-r.distance(pre[i]) * inv_sigma[i]);
}

/// Solves |act(z)| = cut by bisection on intervals where |act| is monotone.
inline KeptRegion kept_region(Activation act, float cut) {
    KeptRegion r;
    if (!(cut > 0.0f) || std::isinf(cut)) return r;  // keeps everything or nothing: no edge to be near
    auto a = [act](double z) { return static_cast<double>(std::fabs(activate(act, static_cast<float>(z)))); };
    // Root of a(z) = cut on [lo, hi], where a rises (rising) or falls over the interval.
    auto root = [&](double lo, double hi, bool rising) {
        for (int it = 0; it < 60; ++it) {
            const double mid = 0.5 * (lo + hi);
            ((a(mid) < cut) == rising ? lo : hi) = mid;
        }
        return static_cast<float>(0.5 * (lo + hi));
    };
    // Every supported activation is increasing for z >= 0 with act(z) >= z / 2.
    r.pos = root(0.0, 2.0 * static_cast<double>(cut) + 1.0, true);
    if (act == Activation::relu) return r;
    // |act| on z < 0 rises from 0 (z = -inf) to a single peak, then falls to 0: find the peak.
    double lo = -8.0, hi = 0.0;        // the peak: SiLU -1.28, GELU -0.75
    for (int it = 0; it < 80; ++it) {  // golden-section search; on a tie move toward 0 (|act| is flat far out)
        const double m1 = hi - 0.618 * (hi - lo), m2 = lo + 0.618 * (hi - lo);
        if (a(m1) <= a(m2))
            lo = m1;
        else
            hi = m2;
    }
    const double peak = 0.5 * (lo + hi);
    if (a(peak) <= cut) return r;
    double far = peak - 1.0;
    while (a(far) > cut && far > -1e6) far *= 2.0;
    r.has_neg = true;
    r.neg_lo = root(far, peak, true);
    r.neg_hi = root(peak, 0.0, false);
    return r;
}

}  // namespace sparseinfer::detail
