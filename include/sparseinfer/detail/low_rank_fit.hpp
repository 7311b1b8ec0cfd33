// sparseinfer/detail/low_rank_fit.hpp - fitting the factors of a rank-r
// approximation G ~ P Q (LowRankPredictor's calibration).
//
// truncated_svd: P = U_r S_r, Q = V_r^T, the best rank-r approximation in the
// Frobenius norm. Small matrices use Eigen's BDCSVD; large ones a randomized
// range finder with subspace iteration (Halko, Martinsson and Tropp 2011):
// Y = G W for a Gaussian W of r + oversample columns, re-orthonormalized with
// Householder QR around each pass through G^T and G, then the SVD of the small
// Y^T G. Its error is close to the optimum when G's spectrum decays.
//
// ridge_refit: P re-fitted by least squares so that P Q x matches G x on
// recorded inputs (ridge-regularized normal equations, solved in double).
//
// residual_row_norms: ||(G - P Q)_i|| per row, the predictor's error scale.
//
// The bodies (detail/low_rank_fit_impl.hpp) instantiate Eigen's SVD, QR and
// LDLT solvers, the costliest code of the library to compile: in the compiled
// mode only the kernels target compiles them (detail/compiled_mode.hpp).
//
//   detail::RowMatrixF P, Q;
//   detail::truncated_svd(G, 64, {10, 2, 1024, 1}, P, Q);
//   P = detail::ridge_refit(X, Q, G, 1e-4);
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>

#include "compiled_mode.hpp"

namespace sparseinfer::detail {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// A row-major float matrix in the caller's memory.
using RowMatrixFMap = Eigen::Map<const RowMatrixF>;

/// How the randomized range finder runs (see the header comment).
struct RangeFinder {
    std::size_t oversample = 10;
    int power_iterations = 2;
    std::size_t exact_svd_limit = 1024;  ///< a full BDCSVD when min(rows, cols) <= this
    std::uint64_t seed = 1;
};

/// P [m][r], Q [r][n] with P Q the (near) best rank-r approximation of G [m][n]; r <= min(m, n).
SPARSEINFER_SEPARATE_FN void truncated_svd(const RowMatrixFMap& G, Eigen::Index r, const RangeFinder& opts,
                                           RowMatrixF& P, RowMatrixF& Q);

/// The P minimising ||X Q^T P^T - X G^T||^2 + lambda ||P||^2 over the rows of X
/// (inputs [n][d]), lambda = ridge * trace(Z^T Z) / r with Z = X Q^T.
SPARSEINFER_SEPARATE_FN RowMatrixF ridge_refit(const RowMatrixFMap& X, const RowMatrixF& Q, const RowMatrixFMap& G,
                                               double ridge);

/// sigma[i] = ||(G - P Q)_i|| for every row i of G [m][n] (sigma has m floats).
SPARSEINFER_SEPARATE_FN void residual_row_norms(const RowMatrixFMap& G, const RowMatrixF& P, const RowMatrixF& Q,
                                                float* sigma);

}  // namespace sparseinfer::detail

#if !defined(SPARSEINFER_SEPARATE_KERNELS)
#include "low_rank_fit_impl.hpp"
#endif
