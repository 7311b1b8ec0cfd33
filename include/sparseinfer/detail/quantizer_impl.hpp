// sparseinfer/detail/quantizer_impl.hpp - the bodies of detail/quantizer.hpp:
// included by that header in the header-only mode, and compiled once by the
// kernels target (src/sparseinfer_separate.cpp) in the compiled mode, with the
// SIMD candidate sweeps of detail/quant_sweep.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../error.hpp"
#include "quant_sweep.hpp"
#include "quantizer.hpp"

namespace sparseinfer::detail {

/// y = (x - lo) * inv_range in float, the values fit_optimized searches on.
inline void normalize_group(const float* x, std::size_t n, double lo, double inv_range, float* y) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>((x[i] - lo) * inv_range);
}

/// Least-squares search in the manner of llama.cpp's K-quant quantizers: for
/// candidate inverse scales around the min/max one, assign nearest codes, then
/// solve for the (d, m) that minimise the squared error for those codes in
/// closed form, reassign and solve once more; keep the best, starting from
/// min/max itself. The candidates are independent, so each of the three steps
/// is one batched sweep over the group. The search runs on
/// y = (x - min) / (max - min), in [0, 1], so float arithmetic (on vectors)
/// cannot overflow whatever the range of x; `mm` is the group's fit_min_max and
/// `y` receives those n values.
inline GroupFit fit_optimized(const float* x, std::size_t n, int qmax, const GroupFit& mm, float* y) noexcept {
    const double range = mm.d * qmax;
    if (!(range > 0)) return mm;
    normalize_group(x, n, mm.m, 1.0 / range, y);
    double part[4] = {};
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (std::size_t k = 0; k < 4; ++k) part[k] += y[i + k];
    for (; i < n; ++i) part[0] += y[i];
    const double sy = (part[0] + part[1]) + (part[2] + part[3]);
    const auto fq = static_cast<float>(qmax);
    const double dn = static_cast<double>(n);
    // Candidate inverse scales from (qmax - 0.9) to (qmax + 0.2) codes over the
    // range, min/max's own among them. They only seed the two refits below, so
    // seven do nearly as well as twelve did (the README's quantization table),
    // and with min/max's lane they fill one 8-lane AVX2 register.
    constexpr std::size_t candidates = 7;
    constexpr double steps[candidates] = {-0.9, -0.7, -0.5, -0.3, -0.1, 0.0, 0.2};
    static_assert(candidates + 1 <= 8, "the candidates and min/max share an 8-lane sweep");
    // Sweep 1: each candidate's codes. y is in [0, 1] (x - min and the range
    // round alike, and float rounding keeps 1 + a few double ulps at 1) and the
    // scales are at most qmax + 0.2, so y * scale < qmax + 0.5: no offset, no clamp.
    PassBatch first;
    first.lanes = candidates + 1;
    for (std::size_t c = 0; c < candidates; ++c) first.set(c, 0.0, qmax + steps[c], 0, 0);
    run_batch<true, false, false>(first, y, n, fq);
    // Sweep 2: codes nearest under each fit (d1, m1): their error, and the refit.
    LaneFits fit1, fit2;
    PassBatch second, third;
    fit_lanes(first, dn, sy, fit1, second);
    run_batch<true, true>(second, y, n, fq);
    // Sweep 3: the error of each refit (d2, m2) with its nearest codes and, in
    // lane 7, min/max's (in y, min/max is d = 1 / qmax, m = 0). A lane that
    // failed the first fit has zero sums in `second`, so fails the refit too.
    fit_lanes(second, dn, sy, fit2, third);
    third.set(candidates, 0.0, fq, 1.0 / qmax, 0.0);
    run_batch<false, true>(third, y, n, fq);
    // The first strict minimum, min/max first, then each candidate's fit and refit in turn.
    double best_d = 1.0 / qmax, best_m = 0, best_sse = third.sse[candidates];
    auto consider = [&](bool ok, double d, double m, double sse) {
        const bool take = ok & (sse < best_sse);
        best_sse = take ? sse : best_sse;
        best_d = take ? d : best_d;
        best_m = take ? m : best_m;
    };
    for (std::size_t c = 0; c < candidates; ++c) {
        consider(fit1.ok[c], fit1.d[c], fit1.m[c], second.sse[c]);
        consider(fit2.ok[c], fit2.d[c], fit2.m[c], third.sse[c]);
    }
    return {best_d * range, mm.m + best_m * range};
}

/// Finds a float unit u with u * code == target exactly when one is near
/// target / code, so a row's extreme value (e.g. a constant row) decodes exactly.
inline float exact_unit(double target, int code) noexcept {
    float u = static_cast<float>(target / code);
    float want = static_cast<float>(target);
    for (int i = 0; i < 4 && u * static_cast<float>(code) != want; ++i)
        u = std::nextafter(u, u * static_cast<float>(code) < want ? std::numeric_limits<float>::max()
                                                                  : -std::numeric_limits<float>::max());
    if (u * static_cast<float>(code) == want) return u;
    // No exact unit: the rounded one, stepped down while its largest product
    // would overflow (target near FLT_MAX), so every decoded value stays finite.
    u = static_cast<float>(target / code);
    while (!std::isfinite(u * static_cast<float>(code))) u = std::nextafter(u, 0.0f);
    return u;
}

SPARSEINFER_SEPARATE_FN void quantize_row(const RowLayout& layout, QuantMethod method, std::size_t row_index,
                                          const float* x, std::uint8_t* out, GroupFit* fits) {
    const int qmax = max_code(layout.bits);
    const std::size_t gs = layout.group_size;
    // Normalized groups, written by fit_optimized and read again by the search below.
    std::vector<float> y(method == QuantMethod::optimized ? layout.groups * gs : 0);
    // Pass 1: classic parameters fix the row's code grid; fit each group.
    double max_d = 0, max_abs_m = 0;
    for (std::size_t g = 0; g < layout.groups; ++g) {
        std::size_t n = std::min(gs, layout.cols - g * gs);
        GroupFit mm = fit_min_max(x + g * gs, n, qmax);
        max_d = std::max(max_d, mm.d);
        max_abs_m = std::max(max_abs_m, std::fabs(mm.m));
        fits[g] = method == QuantMethod::optimized ? fit_optimized(x + g * gs, n, qmax, mm, y.data() + g * gs) : mm;
    }
    // A margin of 1e-6 keeps d * q, with d rounded to float and an 8-bit code, finite.
    if (max_d * qmax > std::numeric_limits<float>::max() / (1 + 1e-6))
        throw error("row " + std::to_string(row_index) +
                    ": a group's values span more than the float range (3.4e38); cannot quantize");
    const float d_unit = static_cast<float>(max_d / 255.0);
    const float m_unit = max_abs_m > 0 ? exact_unit(max_abs_m, 127) : 0.0f;
    store_f32(out, d_unit);
    store_f32(out + 4, m_unit);
    std::uint8_t* scales = out + layout.scales_offset();
    std::uint8_t* mins = out + layout.mins_offset();
    std::uint8_t* codes = out + layout.codes_offset();
    const std::size_t bpg = layout.blocks_per_group();
    const std::size_t bb = block_bytes(layout.bits);

    // Clamp in double before converting: a fitted (d, m) can lie far outside the
    // row's code range (e.g. a tiny min unit), and an out-of-range cast is UB.
    auto to_code = [](double v, int lo, int hi) {
        if (!(v > lo)) return lo;  // also NaN
        if (v >= hi) return hi;
        return static_cast<int>(std::nearbyint(v));
    };
    auto encode = [&](double d, double m, int& sc, int& mn) {
        sc = d_unit > 0 ? to_code(d / d_unit, 0, 255) : 0;
        mn = m_unit > 0 ? to_code(m / m_unit, -127, 127) : 0;
    };
    // The errors of two encodings against the group's values, as the kernels decode them.
    auto decoded_sse = [&](const float* gx, std::size_t n, int sc0, int mn0, int sc1, int mn1, SsePair& p) {
        p.d[0] = d_unit * static_cast<float>(sc0);
        p.m[0] = m_unit * static_cast<float>(mn0);
        p.d[1] = d_unit * static_cast<float>(sc1);
        p.m[1] = m_unit * static_cast<float>(mn1);
        sse_pair(p, gx, n, qmax);
    };

    for (std::size_t g = 0; g < layout.groups; ++g) {
        const float* gx = x + g * gs;
        std::size_t n = std::min(gs, layout.cols - g * gs);
        int sc, mn;
        GroupFit mm = fit_min_max(gx, n, qmax);
        encode(mm.d, mm.m, sc, mn);
        if (method == QuantMethod::optimized && mm.d > 0) {
            // Candidates: the codes around the fitted (d, m), compared on the normalized
            // values (fit_optimized's y of this group), then the best against the
            // min/max encoding exactly, as the kernels decode.
            const double inv_range = 1.0 / (mm.d * qmax);
            const float* gy = y.data() + g * gs;
            int fsc, fmn;
            encode(fits[g].d, fits[g].m, fsc, fmn);
            // The 3 x 3 codes around the fit, in one sweep; lane k is scale code
            // fsc - 1 + k / 3 and min code fmn - 1 + k % 3.
            constexpr int cells = 9;
            PassBatch grid;
            grid.lanes = cells;
            double dy[cells];
            for (int k = 0; k < cells; ++k) {
                const int a = fsc - 1 + k / 3, b = fmn - 1 + k % 3;
                dy[k] = static_cast<double>(d_unit * static_cast<float>(a)) * inv_range;
                const double my = (static_cast<double>(m_unit * static_cast<float>(b)) - mm.m) * inv_range;
                const bool used = dy[k] > 0;
                grid.off[k] = used ? static_cast<float>(my) : 0.0f;
                grid.sc[k] = used ? static_cast<float>(1.0 / dy[k]) : 0.0f;
                grid.d[k] = used ? static_cast<float>(dy[k]) : 0.0f;
                grid.m[k] = used ? static_cast<float>(my) : 0.0f;
            }
            run_batch<false, true>(grid, gy, n, static_cast<float>(qmax));
            int best_a = -1, best_b = 0;
            double best = 0;
            for (int k = 0; k < cells; ++k) {
                const int a = fsc - 1 + k / 3, b = fmn - 1 + k % 3;
                if (a < 0 || a > 255 || b < -127 || b > 127) continue;
                double e = grid.sse[k];
                if (!(dy[k] > 0)) {
                    // A zero scale decodes every value to m: its error exactly, in y's units.
                    SsePair zero_scale;
                    decoded_sse(gx, n, a, b, a, b, zero_scale);
                    e = zero_scale.sse[0] * inv_range * inv_range;
                }
                if (best_a < 0 || e < best) {
                    best = e;
                    best_a = a;
                    best_b = b;
                }
            }
            if (best_a >= 0) {
                SsePair both;
                decoded_sse(gx, n, best_a, best_b, sc, mn, both);
                if (both.sse[0] < both.sse[1]) {
                    sc = best_a;
                    mn = best_b;
                }
            }
        }
        scales[g] = static_cast<std::uint8_t>(sc);
        mins[g] = static_cast<std::uint8_t>(static_cast<std::int8_t>(mn));
        // Codes against the decoded parameters, exactly as the kernels will see them.
        const float d = d_unit * static_cast<float>(sc);
        const float m = m_unit * static_cast<float>(mn);
        for (std::size_t b = 0; b < bpg; ++b) {
            std::uint8_t q[block_values] = {};
            for (std::size_t j = 0; j < block_values; ++j) {
                std::size_t i = b * block_values + j;
                if (i < n) {
                    int c = nearest_code(gx[i], d, m, qmax);
                    // Near FLT_MAX, d * q + m can round past it: take the next code down.
                    while (c > 0 && !std::isfinite(d * static_cast<float>(c) + m)) --c;
                    q[j] = static_cast<std::uint8_t>(c);
                }
            }
            pack_block(layout.bits, q, codes + (g * bpg + b) * bb);
        }
    }
}

}  // namespace sparseinfer::detail
