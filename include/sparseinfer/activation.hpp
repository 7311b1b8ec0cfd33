// sparseinfer/activation.hpp - the FFN activation functions.
//
// A gated FFN computes down(act(gate x) * (up x)): SiLU gives SwiGLU, GELU
// GeGLU and ReLU ReGLU; with no gate it is down(act(up x)), e.g. a ReLU MLP.
// Every function is finite for every finite input (no overflow to Inf or NaN
// at +-1e30) and is as accurate as float allows across the whole range.
//
// activation_scores() computes |act(z)| for a whole vector, the ranking
// scores of the neuron selectors, with a polynomial exponential written so
// that compilers vectorize the loop (no calls, no floating-point branches).
//
//   float a = sparseinfer::activate(sparseinfer::Activation::gelu, 0.5f);  // ~0.3457
//   sparseinfer::activation_scores(sparseinfer::Activation::silu, pre, 11008, scores);
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sparseinfer {

/// The nonlinearity applied to a neuron's gate (or, with no gate, up) value.
enum class Activation {
    silu,  ///< x * sigmoid(x)
    gelu,  ///< tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    relu,  ///< max(x, 0)
};

/// Name of an activation ("silu", "gelu", "relu").
inline const char* to_string(Activation a) noexcept {
    switch (a) {
    case Activation::silu: return "silu";
    case Activation::gelu: return "gelu";
    case Activation::relu: return "relu";
    }
    return "?";
}

/// SiLU; exp(-x) overflowing to Inf for x < -88 gives the correct -0 limit.
inline float silu(float x) noexcept { return x / (1.0f + std::exp(-x)); }

/// GELU, tanh form, evaluated as 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)):
/// the same function without the cancellation of 1 + tanh(u) for negative x
/// (which lost every digit below x = -5). Beyond |x| = 10 the result is x or
/// 0 to float precision (|u| > 43), so the limits are returned directly: this
/// also keeps x^3 from overflowing.
inline float gelu(float x) noexcept {
    if (x > 10.0f) return x;
    if (x < -10.0f) return 0.0f;
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);  // sqrt(2 / pi) (x + 0.044715 x^3)
    return x / (1.0f + std::exp(-2.0f * u));
}

/// max(x, 0); NaN gives 0.
inline float relu(float x) noexcept { return x > 0.0f ? x : 0.0f; }

/// Applies `a` to one value.
inline float activate(Activation a, float x) noexcept {
    switch (a) {
    case Activation::silu: return silu(x);
    case Activation::gelu: return gelu(x);
    case Activation::relu: return relu(x);
    }
    return x;
}

namespace detail {

inline std::uint32_t float_bits(float f) noexcept {
    std::uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
}
inline float bits_float(std::uint32_t b) noexcept {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}
/// All ones when `c`, else 0: selects written as masks, which vectorize where
/// a floating-point compare or branch would not (GCC keeps those scalar to
/// preserve floating-point exception semantics).
inline std::uint32_t mask_if(bool c) noexcept { return 0u - static_cast<std::uint32_t>(c); }

/// exp(x) with relative error below 1e-7 for |x| <= 87 (Cephes' polynomial on
/// x = n ln2 + r, |r| <= ln2 / 2); larger |x|, Inf and NaN are evaluated at +-87.
inline float exp_vectorizable(float x) noexcept {
    const std::uint32_t b = float_bits(x);
    const std::uint32_t big = mask_if((b & 0x7fffffffu) > 0x42ae0000u);  // |x| > 87 (integer compare)
    x = bits_float((((b & 0x80000000u) | 0x42ae0000u) & big) | (b & ~big));
    const float t = x * 1.44269504088896341f;
    const auto n = static_cast<std::int32_t>(t + std::copysign(0.5f, t));  // round half away from 0
    const float nf = static_cast<float>(n);
    const float r = (x - nf * 0.693359375f) + nf * 2.12194440e-4f;  // ln2 in two parts: r is exact
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * bits_float(static_cast<std::uint32_t>(n + 127) << 23);
}

/// The score s of v, except NaN for a NaN v and 0 for v below -bits_float(limit),
/// where |act(v)| is 0 to float precision (the clamped exponential would not be).
inline float score_or_limit(float v, float s, std::uint32_t limit) noexcept {
    const std::uint32_t b = float_bits(v), magnitude = b & 0x7fffffffu;
    const std::uint32_t nan = mask_if(magnitude > 0x7f800000u);
    const std::uint32_t zero = mask_if(b >= 0x80000000u && magnitude > limit);
    return bits_float((b & nan) | (float_bits(s) & ~zero & ~nan));
}

}  // namespace detail

/// out[i] = |act(z[i])| for i < n (z == out is allowed): the selectors' scores.
/// Against the exact value (in double) the relative error is below 3e-7 for
/// SiLU and 2e-5 for GELU (its cubic, rounded in float, dominates) wherever the
/// result exceeds 1e-30; smaller results may be 0. NaN stays NaN. The loops
/// have no calls and no floating-point branches, so compilers vectorize them,
/// which activate()'s calls to std::exp and std::tanh prevent.
inline void activation_scores(Activation a, const float* z, std::size_t n, float* out) noexcept {
    switch (a) {
    case Activation::silu:
        for (std::size_t i = 0; i < n; ++i) {
            const float v = z[i];
            const float s = std::fabs(v / (1.0f + detail::exp_vectorizable(-v)));
            out[i] = detail::score_or_limit(v, s, 0x42ae0000u);  // below -87: |silu| < 1e-35
        }
        return;
    case Activation::gelu:
        for (std::size_t i = 0; i < n; ++i) {
            // 0.5 v (1 + tanh(u)) = v / (1 + exp(-2u)); above 10 the exponential is
            // below e^-87 and the result is v, as gelu() gives.
            const float v = z[i];
            const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
            const float s = std::fabs(v / (1.0f + detail::exp_vectorizable(-2.0f * u)));
            out[i] = detail::score_or_limit(v, s, 0x41200000u);  // below -10: 0, as gelu()
        }
        return;
    case Activation::relu:
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t b = detail::float_bits(z[i]);
            const std::uint32_t keep = detail::mask_if(b < 0x80000000u || (b & 0x7fffffffu) > 0x7f800000u);
            out[i] = detail::bits_float(b & keep);  // positives and NaN kept, the rest 0
        }
        return;
    }
}

}  // namespace sparseinfer
