// sparseinfer/detail/quantizer.hpp - fits group parameters and writes quantized rows.
//
// Both methods work in double so that ranges near the float limits cannot
// overflow while fitting. Per row, the scale unit and min unit are derived from
// the classic min/max parameters of its groups (unit = largest / code range),
// so both methods share one code grid and `optimized` can always fall back to
// exactly what `min_max` would store: it is never worse on any group.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "../error.hpp"
#include "row_format.hpp"

namespace sparseinfer {

/// How group parameters are chosen.
enum class QuantMethod {
    min_max,    ///< classic asymmetric: scale = (max - min) / (2^Bits - 1), min = zero point
    optimized,  ///< least-squares search of scale and min; never worse than min_max per group
};

/// Options of QuantizedWeights<Bits>::from_f32.
struct QuantOptions {
    std::size_t group_size = 32;                  ///< values sharing one scale and min; multiple of 32
    QuantMethod method = QuantMethod::optimized;  ///< how scale and min are fitted
};

namespace detail {

/// Float (unquantized) parameters of one group: w = d * q + m.
struct GroupFit {
    double d = 0;
    double m = 0;
};

/// Code of v = (x - m) / d: round half up, clamped to [0, qmax]. Written with a
/// truncating conversion because std::nearbyint is a library call on baseline x86-64.
inline int round_code(double v, int qmax) noexcept {
    if (!(v > 0)) return 0;  // also catches NaN from a zero scale
    if (v >= qmax) return qmax;
    return static_cast<int>(v + 0.5);
}

/// Code of x under (d, m); 0 when d is not positive.
inline int nearest_code(double x, double d, double m, int qmax) noexcept {
    return d > 0 ? round_code((x - m) / d, qmax) : 0;
}

/// Squared error of the group under (d, m) with nearest codes.
inline double group_sse(const float* x, std::size_t n, double d, double m, int qmax) noexcept {
    const double id = d > 0 ? 1.0 / d : 0.0;
    double sse = 0;
    for (std::size_t i = 0; i < n; ++i) {
        double e = d * round_code((x[i] - m) * id, qmax) + m - x[i];
        sse += e * e;
    }
    return sse;
}

/// The classic min/max parameters of a group.
inline GroupFit fit_min_max(const float* x, std::size_t n, int qmax) noexcept {
    double lo = x[0], hi = x[0];
    for (std::size_t i = 1; i < n; ++i) {
        lo = std::min(lo, static_cast<double>(x[i]));
        hi = std::max(hi, static_cast<double>(x[i]));
    }
    return {(hi - lo) / qmax, lo};
}

/// Least-squares search in the manner of llama.cpp's K-quant quantizers: for
/// candidate inverse scales around the min/max one, assign nearest codes, then
/// solve for the (d, m) that minimise the squared error for those codes in
/// closed form; keep the best, starting from min/max itself.
inline GroupFit fit_optimized(const float* x, std::size_t n, int qmax) noexcept {
    GroupFit mm = fit_min_max(x, n, qmax);
    GroupFit best = mm;
    double best_sse = group_sse(x, n, mm.d, mm.m, qmax);
    double range = mm.d * qmax;
    if (!(range > 0)) return best;
    // Candidate inverse scales from (qmax - 0.9) to (qmax + 0.2) codes over the range.
    const double sx = [&] {
        double t = 0;
        for (std::size_t i = 0; i < n; ++i) t += x[i];
        return t;
    }();
    const double dn = static_cast<double>(n);
    for (int s = -9; s <= 2; ++s) {
        const double iscale = (qmax + 0.1 * s) / range;
        if (!(iscale > 0)) continue;
        double d = 0, m = 0;
        // Assign codes, fit (d, m) for them, then once more from the refit.
        for (int round = 0; round < 2; ++round) {
            double sl = 0, sl2 = 0, slx = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const double q =
                    round == 0 ? round_code((x[i] - mm.m) * iscale, qmax) : round_code((x[i] - m) / d, qmax);
                sl += q;
                sl2 += q * q;
                slx += q * x[i];
            }
            const double det = dn * sl2 - sl * sl;
            if (!(det > 0)) break;
            const double d2 = (dn * slx - sl * sx) / det;
            if (!(d2 > 0)) break;
            d = d2;
            m = (sl2 * sx - sl * slx) / det;
            const double e = group_sse(x, n, d, m, qmax);
            if (e < best_sse) {
                best_sse = e;
                best = {d, m};
            }
        }
    }
    return best;
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

/// Quantizes row `row_index` (`cols` finite floats) into `out` (layout.row_bytes
/// bytes). `fits` is scratch for layout.groups entries.
inline void quantize_row(const RowLayout& layout, QuantMethod method, std::size_t row_index, const float* x,
                         std::uint8_t* out, GroupFit* fits) {
    const int qmax = max_code(layout.bits);
    const std::size_t gs = layout.group_size;
    // Pass 1: classic parameters fix the row's code grid; fit each group.
    double max_d = 0, max_abs_m = 0;
    for (std::size_t g = 0; g < layout.groups; ++g) {
        std::size_t n = std::min(gs, layout.cols - g * gs);
        GroupFit mm = fit_min_max(x + g * gs, n, qmax);
        max_d = std::max(max_d, mm.d);
        max_abs_m = std::max(max_abs_m, std::fabs(mm.m));
        fits[g] = method == QuantMethod::optimized ? fit_optimized(x + g * gs, n, qmax) : mm;
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
    auto decoded_sse = [&](const float* gx, std::size_t n, int sc, int mn) {
        float d = d_unit * static_cast<float>(sc);
        float m = m_unit * static_cast<float>(mn);
        return group_sse(gx, n, d, m, qmax);
    };

    for (std::size_t g = 0; g < layout.groups; ++g) {
        const float* gx = x + g * gs;
        std::size_t n = std::min(gs, layout.cols - g * gs);
        int sc, mn;
        GroupFit mm = fit_min_max(gx, n, qmax);
        encode(mm.d, mm.m, sc, mn);
        if (method == QuantMethod::optimized) {
            // Candidates: the min/max encoding, and the codes around the fitted (d, m).
            double best = decoded_sse(gx, n, sc, mn);
            int fsc, fmn;
            encode(fits[g].d, fits[g].m, fsc, fmn);
            for (int a = fsc - 1; a <= fsc + 1; ++a)
                for (int b = fmn - 1; b <= fmn + 1; ++b) {
                    if (a < 0 || a > 255 || b < -127 || b > 127) continue;
                    double e = decoded_sse(gx, n, a, b);
                    if (e < best) {
                        best = e;
                        sc = a;
                        mn = b;
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

}  // namespace detail
}  // namespace sparseinfer
