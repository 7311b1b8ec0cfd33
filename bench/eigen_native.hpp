// bench/eigen_native.hpp - Eigen's float GEMV and float FFN layer compiled with
// the build machine's native flags (-march=native, in eigen_native.cpp), the
// reference a user on this machine would compare with. The benchmarks
// themselves are compiled for a generic CPU, as the library is.
#pragma once

#include <cstddef>

namespace bench {

/// True when eigen_native.cpp was compiled with -march=native (GCC, Clang).
bool eigen_is_native();

/// y[0..rows) = W x, W row-major rows x cols.
void eigen_gemv(const float* w, std::size_t rows, std::size_t cols, const float* x, float* y);

/// One SwiGLU layer in float: y = down (silu(gate x) * (up x)); gate and up are
/// hidden x d, down is d x hidden, all row-major; g and u hold hidden floats.
void eigen_swiglu(const float* gate, const float* up, const float* down, std::size_t d, std::size_t hidden,
                  const float* x, float* y, float* g, float* u);

}  // namespace bench
