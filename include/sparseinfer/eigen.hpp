// sparseinfer/eigen.hpp - Eigen interop for QuantizedWeights (needs Eigen 3.4).
//
//   Eigen::MatrixXf w = Eigen::MatrixXf::Random(256, 1024);
//   auto q = sparseinfer::from_eigen<4>(w);          // any dense expression, any storage order
//   Eigen::MatrixXf back = sparseinfer::to_eigen(q);  // decoded, 256 x 1024
#pragma once

#include <Eigen/Core>

#include "quantized_weights.hpp"

namespace sparseinfer {

/// Quantizes any Eigen dense matrix expression (row- or column-major); rows are neurons.
template <int Bits, class Derived>
QuantizedWeights<Bits> from_eigen(const Eigen::DenseBase<Derived>& matrix, QuantOptions opts = {}) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const RowMajor m = matrix.template cast<float>();
    return QuantizedWeights<Bits>::from_f32(m.data(), static_cast<std::size_t>(m.rows()),
                                            static_cast<std::size_t>(m.cols()), opts);
}

/// Decodes quantized weights (or a view of them) into a column-major Eigen matrix.
template <class Weights>
Eigen::MatrixXf to_eigen(const Weights& w) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const std::vector<float> values = w.to_f32();
    return Eigen::Map<const RowMajor>(values.data(), static_cast<Eigen::Index>(w.rows()),
                                      static_cast<Eigen::Index>(w.cols()));
}

}  // namespace sparseinfer
