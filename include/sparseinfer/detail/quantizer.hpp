// sparseinfer/detail/quantizer.hpp - fits group parameters and writes quantized rows.
//
// Both methods work in double so that ranges near the float limits cannot
// overflow while fitting. Per row, the scale unit and min unit are derived from
// the classic min/max parameters of its groups (unit = largest / code range),
// so both methods share one code grid and `optimized` can always fall back to
// exactly what `min_max` would store: it is never worse on any group.
// The search and the row writer (detail/quantizer_impl.hpp, with the SIMD
// sweeps of detail/quant_sweep.hpp) are compiled once in the compiled mode.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../error.hpp"
#include "compiled_mode.hpp"
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

/// The classic min/max parameters of a group.
inline GroupFit fit_min_max(const float* x, std::size_t n, int qmax) noexcept {
    double lo = x[0], hi = x[0];
    for (std::size_t i = 1; i < n; ++i) {
        lo = std::min(lo, static_cast<double>(x[i]));
        hi = std::max(hi, static_cast<double>(x[i]));
    }
    return {(hi - lo) / qmax, lo};
}

/// Quantizes row `row_index` (`cols` finite floats) into `out` (layout.row_bytes
/// bytes). `fits` is scratch for layout.groups entries.
SPARSEINFER_SEPARATE_FN void quantize_row(const RowLayout& layout, QuantMethod method, std::size_t row_index,
                                          const float* x, std::uint8_t* out, GroupFit* fits);

}  // namespace detail
}  // namespace sparseinfer

#if !defined(SPARSEINFER_SEPARATE_KERNELS)
#include "quantizer_impl.hpp"
#endif
