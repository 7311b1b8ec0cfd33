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
#include <vector>

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

/// One pass over a group's normalized values y: codes q = clamp(round((y - off) * sc), 0, qmax)
/// and the sums a least-squares fit and its error need. Eight independent partial sums (a
/// fixed order, so results do not depend on the compiler) let the loop run on vectors.
struct CodePass {
    double s1 = 0, s2 = 0, sqy = 0;  ///< sum q, sum q^2, sum q y
    double sse = 0;                  ///< sum (d q + m - y)^2 for the (d, m) given
};

inline CodePass code_pass(const float* y, std::size_t n, float off, float sc, float d, float m, float qmax) noexcept {
    constexpr std::size_t lanes = 8;
    float a1[lanes] = {}, a2[lanes] = {}, a3[lanes] = {}, a4[lanes] = {};
    auto one = [&](std::size_t k, float v) {
        float t = (v - off) * sc;
        t = t > 0.0f ? t : 0.0f;  // also maps NaN to 0
        t = t < qmax ? t : qmax;
        const auto q = static_cast<float>(static_cast<int>(t + 0.5f));
        const float e = d * q + m - v;
        a1[k] += q;
        a2[k] += q * q;
        a3[k] += q * v;
        a4[k] += e * e;
    };
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (std::size_t k = 0; k < lanes; ++k) one(k, y[i + k]);
    for (std::size_t k = 0; i < n; ++i, ++k) one(k, y[i]);
    CodePass p;
    for (std::size_t k = 0; k < lanes; ++k) {
        p.s1 += a1[k];
        p.s2 += a2[k];
        p.sqy += a3[k];
        p.sse += a4[k];
    }
    return p;
}

/// The (d, m) minimising sum (d q + m - y)^2 for the codes of a pass; false when
/// the codes do not determine a positive scale.
inline bool least_squares(const CodePass& p, double n, double sy, double& d, double& m) noexcept {
    const double det = n * p.s2 - p.s1 * p.s1;
    if (!(det > 0)) return false;
    const double d2 = (n * p.sqy - p.s1 * sy) / det;
    if (!(d2 > 0)) return false;
    d = d2;
    m = (p.s2 * sy - p.s1 * p.sqy) / det;
    return true;
}

/// Least-squares search in the manner of llama.cpp's K-quant quantizers: for
/// candidate inverse scales around the min/max one, assign nearest codes, then
/// solve for the (d, m) that minimise the squared error for those codes in
/// closed form, reassign and solve once more; keep the best, starting from
/// min/max itself. The search runs on y = (x - min) / (max - min), in [0, 1],
/// so float arithmetic (on vectors) cannot overflow whatever the range of x;
/// `y` is scratch for n floats.
inline GroupFit fit_optimized(const float* x, std::size_t n, int qmax, float* y) noexcept {
    const GroupFit mm = fit_min_max(x, n, qmax);
    const double range = mm.d * qmax;
    if (!(range > 0)) return mm;
    const double inv_range = 1.0 / range;
    double sy = 0;
    for (std::size_t i = 0; i < n; ++i) {
        y[i] = static_cast<float>((x[i] - mm.m) * inv_range);
        sy += y[i];
    }
    const auto fq = static_cast<float>(qmax);
    const double dn = static_cast<double>(n);
    // In y, min/max is d = 1 / qmax, m = 0.
    double best_d = 1.0 / qmax, best_m = 0;
    double best_sse = code_pass(y, n, 0.0f, fq, static_cast<float>(best_d), 0.0f, fq).sse;
    auto consider = [&](double d, double m, double sse) {
        if (sse < best_sse) {
            best_sse = sse;
            best_d = d;
            best_m = m;
        }
    };
    // Candidate inverse scales from (qmax - 0.9) to (qmax + 0.2) codes over the range.
    for (int s = -9; s <= 2; ++s) {
        const auto iscale = static_cast<float>(qmax + 0.1 * s);
        double d1 = 0, m1 = 0, d2 = 0, m2 = 0;
        if (!least_squares(code_pass(y, n, 0.0f, iscale, 0.0f, 0.0f, fq), dn, sy, d1, m1)) continue;
        // Codes nearest under (d1, m1): their error is d1, m1's, and they give the refit.
        const CodePass p1 = code_pass(y, n, static_cast<float>(m1), static_cast<float>(1.0 / d1),
                                      static_cast<float>(d1), static_cast<float>(m1), fq);
        consider(d1, m1, p1.sse);
        if (!least_squares(p1, dn, sy, d2, m2)) continue;
        consider(d2, m2,
                 code_pass(y, n, static_cast<float>(m2), static_cast<float>(1.0 / d2), static_cast<float>(d2),
                           static_cast<float>(m2), fq)
                     .sse);
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

/// Quantizes row `row_index` (`cols` finite floats) into `out` (layout.row_bytes
/// bytes). `fits` is scratch for layout.groups entries.
inline void quantize_row(const RowLayout& layout, QuantMethod method, std::size_t row_index, const float* x,
                         std::uint8_t* out, GroupFit* fits) {
    const int qmax = max_code(layout.bits);
    const std::size_t gs = layout.group_size;
    std::vector<float> y(method == QuantMethod::optimized ? gs : 0);  // normalized group (fit_optimized)
    // Pass 1: classic parameters fix the row's code grid; fit each group.
    double max_d = 0, max_abs_m = 0;
    for (std::size_t g = 0; g < layout.groups; ++g) {
        std::size_t n = std::min(gs, layout.cols - g * gs);
        GroupFit mm = fit_min_max(x + g * gs, n, qmax);
        max_d = std::max(max_d, mm.d);
        max_abs_m = std::max(max_abs_m, std::fabs(mm.m));
        fits[g] = method == QuantMethod::optimized ? fit_optimized(x + g * gs, n, qmax, y.data()) : mm;
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
        if (method == QuantMethod::optimized && mm.d > 0) {
            // Candidates: the codes around the fitted (d, m), compared on the normalized
            // values (y, still in scratch from pass 1 only for the last group: refill),
            // then the best against the min/max encoding exactly, as the kernels decode.
            const double inv_range = 1.0 / (mm.d * qmax);
            for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>((gx[i] - mm.m) * inv_range);
            int fsc, fmn;
            encode(fits[g].d, fits[g].m, fsc, fmn);
            int best_a = -1, best_b = 0;
            double best = 0;
            for (int a = fsc - 1; a <= fsc + 1; ++a)
                for (int b = fmn - 1; b <= fmn + 1; ++b) {
                    if (a < 0 || a > 255 || b < -127 || b > 127) continue;
                    const double dy = static_cast<double>(d_unit * static_cast<float>(a)) * inv_range;
                    const double my = (static_cast<double>(m_unit * static_cast<float>(b)) - mm.m) * inv_range;
                    // A zero scale decodes every value to m: its error exactly, in y's units.
                    const double e =
                        dy > 0 ? code_pass(y.data(), n, static_cast<float>(my), static_cast<float>(1.0 / dy),
                                           static_cast<float>(dy), static_cast<float>(my), static_cast<float>(qmax))
                                     .sse
                               : decoded_sse(gx, n, a, b) * inv_range * inv_range;
                    if (best_a < 0 || e < best) {
                        best = e;
                        best_a = a;
                        best_b = b;
                    }
                }
            if (best_a >= 0 && decoded_sse(gx, n, best_a, best_b) < decoded_sse(gx, n, sc, mn)) {
                sc = best_a;
                mn = best_b;
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
