// Compiled with -march=native where the compiler has it (bench/CMakeLists.txt).
#include "eigen_native.hpp"

#include <Eigen/Dense>

#include <cmath>

namespace bench {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

bool eigen_is_native() {
#if defined(SPARSEINFER_BENCH_NATIVE)
    return true;
#else
    return false;
#endif
}

void eigen_gemv(const float* w, std::size_t rows, std::size_t cols, const float* x, float* y) {
    const auto r = static_cast<Eigen::Index>(rows), c = static_cast<Eigen::Index>(cols);
    Eigen::Map<const RowMatrix> W(w, r, c);
    Eigen::Map<const Eigen::VectorXf> xv(x, c);
    Eigen::Map<Eigen::VectorXf> yv(y, r);
    yv.noalias() = W * xv;
}

void eigen_swiglu(const float* gate, const float* up, const float* down, std::size_t d, std::size_t hidden,
                  const float* x, float* y, float* g, float* u) {
    const auto dd = static_cast<Eigen::Index>(d), h = static_cast<Eigen::Index>(hidden);
    Eigen::Map<const RowMatrix> W1(gate, h, dd), W3(up, h, dd), W2(down, dd, h);
    Eigen::Map<const Eigen::VectorXf> xv(x, dd);
    Eigen::Map<Eigen::VectorXf> gv(g, h), uv(u, h), yv(y, dd);
    gv.noalias() = W1 * xv;
    uv.noalias() = W3 * xv;
    for (Eigen::Index i = 0; i < h; ++i) gv[i] = gv[i] / (1.0f + std::exp(-gv[i])) * uv[i];
    yv.noalias() = W2 * gv;
}

}  // namespace bench
