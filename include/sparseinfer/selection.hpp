// sparseinfer/selection.hpp - choosing a token's active neurons from scores.
//
// A selector scores every neuron (a predictor's estimate, or the exact gate)
// and keeps either the k highest scores or every score at or above a
// threshold. A target active fraction is met with a threshold calibrated per
// layer from recorded scores (ThresholdCalibrator), so the per-token work is
// one comparison per neuron. Neuron lists are returned in ascending order,
// which keeps row reads in address order.
//
//   std::vector<std::uint32_t> active(hidden);            // room for every neuron
//   std::size_t n = sparseinfer::select_top_k(scores, hidden, hidden / 10, active.data());
//   n = sparseinfer::select_at_least(scores, hidden, 0.3f, active.data());
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "error.hpp"

namespace sparseinfer {

/// Keep the k largest scores, or every score >= threshold.
struct Selection {
    /// Which rule applies.
    enum class Kind { top_k, threshold };
    Kind kind = Kind::top_k;  ///< the rule
    std::size_t k = 0;        ///< scores kept by top_k
    float threshold = 0.0f;   ///< lowest score kept by threshold

    /// Keep the k largest scores.
    static Selection top_k(std::size_t k) { return {Kind::top_k, k, 0.0f}; }
    /// Keep every score >= threshold.
    static Selection at_least(float threshold) { return {Kind::threshold, 0, threshold}; }
};

namespace detail {

/// Maps a score to an unsigned key of the same order: larger score, larger
/// key; -0 and +0 are equal; every NaN maps to 0, below every number.
/// Branch-free, so loops over it vectorize.
inline std::uint32_t rank_key(float f) noexcept {
    std::uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    b = b == 0x80000000u ? 0u : b;  // -0 ties with +0 (integer test: safe under -ffast-math)
    const std::uint32_t negative = static_cast<std::uint32_t>(static_cast<std::int32_t>(b) >> 31);
    const std::uint32_t key = b ^ (negative | 0x80000000u);  // negatives: all bits flipped; others: sign set
    return (b & 0x7fffffffu) > 0x7f800000u ? 0u : key;
}

/// The score a key stands for (the inverse of rank_key for keys of numbers),
/// or NaN for key 0, the key of every NaN.
inline float score_of_key(std::uint32_t key) noexcept {
    if (key == 0) return std::numeric_limits<float>::quiet_NaN();
    const std::uint32_t b = (key & 0x80000000u) != 0 ? key & 0x7fffffffu : ~key;
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}

/// The k-th largest key of scores[0..n) (0 < k < n) by radix select, and in
/// `need` how many of the keys equal to it are among the k largest. One pass
/// computes the keys and the histogram of their top 11 bits; one pass keeps
/// only the keys in the chosen bucket (front of `work`, n entries); the next
/// digits (11, 10 bits) are resolved on that short list.
inline std::uint32_t kth_largest_key(const float* scores, std::size_t n, std::size_t k, std::uint32_t* work,
                                     std::size_t& need) noexcept {
    for (std::size_t i = 0; i < n; ++i) work[i] = rank_key(scores[i]);  // vectorized
    // Two interleaved histograms: neighbouring scores often share a bucket, and
    // one histogram would chain each increment on the one before.
    std::uint32_t hist[2048] = {}, odd[2048] = {};
    std::size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        ++hist[work[i] >> 21];
        ++odd[work[i + 1] >> 21];
    }
    if (i < n) ++hist[work[i] >> 21];
    for (std::size_t b = 0; b < 2048; ++b) hist[b] += odd[b];
    need = k;
    std::uint32_t digit = 2047;
    while (hist[digit] < need) need -= hist[digit--];  // the digits above are kept whole
    std::uint32_t prefix = digit;
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {  // compact the bucket: m <= i, so nothing unread is overwritten
        const std::uint32_t key = work[i];
        work[m] = key;
        m += (key >> 21) == prefix ? 1 : 0;
    }
    int shift = 21;
    for (int width : {11, 10}) {
        if (hist[digit] == need) break;  // every key of the bucket is kept (hist holds the last digit's counts)
        const int low = shift - width;
        const std::uint32_t mask = (1u << width) - 1;
        std::fill(hist, hist + mask + 1, 0u);
        for (std::size_t i = 0; i < m; ++i) {
            const std::uint32_t key = work[i];
            if (key >> shift == prefix) ++hist[(key >> low) & mask];
        }
        digit = mask;
        while (hist[digit] < need) need -= hist[digit--];
        prefix = (prefix << width) | digit;
        shift = low;
    }
    // The bucket's keys all start with prefix (top 32 - shift bits); if it was
    // resolved early every one of them is kept, so the k-th key is the lowest.
    if (shift == 0) return prefix;
    std::uint32_t lowest = 0xffffffffu;
    for (std::size_t i = 0; i < m; ++i)
        if (work[i] >> shift == prefix) lowest = std::min(lowest, work[i]);
    std::size_t ties = 0;  // keys equal to the lowest are all kept
    for (std::size_t i = 0; i < m; ++i) ties += work[i] == lowest ? 1 : 0;
    need = ties;
    return lowest;
}

}  // namespace detail

/// Writes the indices of the k largest scores to out[0..k) in ascending index
/// order and returns min(k, n). `out` must hold n entries (it is the work
/// array). Ties at the boundary are broken by the lower index. NaN scores rank last.
///
/// A radix select on the scores' order-preserving keys (detail::kth_largest_key):
/// two linear passes over the scores find the k-th largest key's bucket, the
/// rest of the digits are resolved inside that bucket, and a last pass keeps
/// the larger keys and the lowest-index ties. No allocation.
inline std::size_t select_top_k(const float* scores, std::size_t n, std::size_t k, std::uint32_t* out) noexcept {
    if (k > n) k = n;
    if (k == 0) return 0;
    if (k == n) {
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(i);
        return n;
    }
    std::size_t need = 0;
    const std::uint32_t kth = detail::kth_largest_key(scores, n, k, out, need);
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t key = detail::rank_key(scores[i]);
        const bool tie = key == kth && need > 0;
        need -= tie ? 1 : 0;
        out[m] = static_cast<std::uint32_t>(i);
        m += (key > kth || tie) ? 1 : 0;
    }
    return m;
}

/// Writes the (ascending) indices of every score >= threshold to out and
/// returns their count; `out` must hold n entries.
inline std::size_t select_at_least(const float* scores, std::size_t n, float threshold, std::uint32_t* out) noexcept {
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        out[m] = static_cast<std::uint32_t>(i);
        m += scores[i] >= threshold ? 1 : 0;  // branch-free: the store is always done
    }
    return m;
}

/// Applies a Selection; see select_top_k and select_at_least.
inline std::size_t select(const Selection& s, const float* scores, std::size_t n, std::uint32_t* out) noexcept {
    return s.kind == Selection::Kind::top_k ? select_top_k(scores, n, s.k, out)
                                            : select_at_least(scores, n, s.threshold, out);
}

/// Share of `truth` (n_truth neuron ids) that also appear in `chosen`: the
/// recall of a selector against the exact top-k. 1 when truth is empty.
inline double recall(const std::uint32_t* chosen, std::size_t n_chosen, const std::uint32_t* truth,
                     std::size_t n_truth) {
    if (n_truth == 0) return 1.0;
    std::vector<std::uint32_t> a(chosen, chosen + n_chosen), b(truth, truth + n_truth);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    std::size_t hits = 0;
    for (std::size_t i = 0, j = 0; i < a.size() && j < b.size();) {
        if (a[i] < b[j])
            ++i;
        else if (b[j] < a[i])
            ++j;
        else {
            ++hits;
            ++i;
            ++j;
        }
    }
    return static_cast<double>(hits) / static_cast<double>(n_truth);
}

/// Calibrates a per-layer threshold that keeps a target fraction of neurons:
/// record the scores of some tokens, then ask for the threshold.
///
///   ThresholdCalibrator cal;
///   for (auto& x : calibration_tokens) { score(x, s); cal.record(s.data(), s.size()); }
///   float t = cal.threshold_for_fraction(0.1);   // keeps ~10% on similar inputs
class ThresholdCalibrator {
public:
    /// Adds one token's scores (NaN scores are ignored).
    void record(const float* scores, std::size_t n) {
        if (scores == nullptr && n != 0) throw error("argument 'scores' is a null pointer");
        for (std::size_t i = 0; i < n; ++i)
            if (!std::isnan(scores[i])) values_.push_back(scores[i]);
    }
    /// Scores recorded (NaNs are not).
    std::size_t recorded() const noexcept { return values_.size(); }

    /// The score t such that a share `fraction` (0..1] of the recorded scores is >= t.
    float threshold_for_fraction(double fraction) const {
        if (!(fraction > 0.0 && fraction <= 1.0))
            throw error("fraction is " + std::to_string(fraction) + "; it must be in (0, 1]");
        if (values_.empty()) throw error("no scores were recorded; call record() before calibrating");
        std::vector<float> v = values_;
        std::size_t keep = static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(v.size())));
        keep = std::max<std::size_t>(1, std::min(keep, v.size()));
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(keep - 1), v.end(), std::greater<float>());
        return v[keep - 1];
    }

private:
    std::vector<float> values_;
};

}  // namespace sparseinfer
