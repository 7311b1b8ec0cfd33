// sparseinfer/activation.hpp - the FFN activation functions.
//
// A gated FFN computes down(act(gate x) * (up x)): SiLU gives SwiGLU, GELU
// GeGLU and ReLU ReGLU; with no gate it is down(act(up x)), e.g. a ReLU MLP.
// Every function is finite for every finite input (no overflow to Inf or NaN
// at +-1e30) and is as accurate as float allows across the whole range.
//
//   float a = sparseinfer::activate(sparseinfer::Activation::gelu, 0.5f);  // ~0.3457
#pragma once

#include <cmath>

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

/// GELU, tanh form. Beyond |x| = 10 the tanh term is exactly +-1 in float
/// (its argument exceeds 43), so the limits x and 0 are returned directly:
/// this also keeps x^3 from overflowing.
inline float gelu(float x) noexcept {
    if (x > 10.0f) return x;
    if (x < -10.0f) return 0.0f;
    const float k = 0.7978845608028654f;  // sqrt(2 / pi)
    return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

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

}  // namespace sparseinfer
