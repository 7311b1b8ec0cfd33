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
//   detail::RowMatrixF P, Q;
//   detail::truncated_svd(G, 64, {10, 2, 1024, 1}, P, Q);
//   P = detail::ridge_refit(X, Q, G, 1e-4);
#pragma once

#include <Eigen/Core>
#include <Eigen/Householder>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>

namespace sparseinfer::detail {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// How the randomized range finder runs (see the header comment).
struct RangeFinder {
    std::size_t oversample = 10;
    int power_iterations = 2;
    std::size_t exact_svd_limit = 1024;  ///< a full BDCSVD when min(rows, cols) <= this
    std::uint64_t seed = 1;
};

/// Y's columns replaced by an orthonormal basis of their span.
inline void orthonormalize(Eigen::MatrixXf& Y) {
    Eigen::HouseholderQR<Eigen::MatrixXf> qr(Y);
    Y = qr.householderQ() * Eigen::MatrixXf::Identity(Y.rows(), Y.cols());
}

/// P [m][r], Q [r][n] with P Q the (near) best rank-r approximation of G [m][n]; r <= min(m, n).
template <class Matrix>
void truncated_svd(const Matrix& G, Eigen::Index r, const RangeFinder& opts, RowMatrixF& P, RowMatrixF& Q) {
    const Eigen::Index m = G.rows(), n = G.cols();
    if (static_cast<std::size_t>(std::min(m, n)) <= opts.exact_svd_limit) {
        Eigen::BDCSVD<Eigen::MatrixXf> svd(G, Eigen::ComputeThinU | Eigen::ComputeThinV);
        P = svd.matrixU().leftCols(r) * svd.singularValues().head(r).asDiagonal();
        Q = svd.matrixV().leftCols(r).transpose();
        return;
    }
    const Eigen::Index l = std::min<Eigen::Index>(r + static_cast<Eigen::Index>(opts.oversample), std::min(m, n));
    std::mt19937_64 rng(opts.seed);
    std::normal_distribution<float> nd;
    Eigen::MatrixXf omega(n, l);
    for (Eigen::Index j = 0; j < l; ++j)
        for (Eigen::Index i = 0; i < n; ++i) omega(i, j) = nd(rng);
    Eigen::MatrixXf Y = G * omega;  // m x l
    for (int it = 0; it < opts.power_iterations; ++it) {
        orthonormalize(Y);
        Eigen::MatrixXf Z = G.transpose() * Y;  // n x l
        orthonormalize(Z);
        Y.noalias() = G * Z;
    }
    orthonormalize(Y);
    const Eigen::MatrixXf B = Y.transpose() * G;  // l x n
    Eigen::BDCSVD<Eigen::MatrixXf> svd(B, Eigen::ComputeThinU | Eigen::ComputeThinV);
    P = (Y * svd.matrixU().leftCols(r)) * svd.singularValues().head(r).asDiagonal();
    Q = svd.matrixV().leftCols(r).transpose();
}

/// The P minimising ||X Q^T P^T - X G^T||^2 + lambda ||P||^2 over the rows of X
/// (inputs [n][d]), lambda = ridge * trace(Z^T Z) / r with Z = X Q^T.
template <class Inputs, class Matrix>
RowMatrixF ridge_refit(const Inputs& X, const RowMatrixF& Q, const Matrix& G, double ridge) {
    const Eigen::Index r = Q.rows();
    const Eigen::MatrixXd Z = (X * Q.transpose()).template cast<double>();  // n x r
    const Eigen::MatrixXd T = (X * G.transpose()).template cast<double>();  // n x m, the exact pre-activations
    Eigen::MatrixXd A = Z.transpose() * Z;
    const double lambda = ridge * std::max(1e-30, A.trace() / static_cast<double>(r));
    A.diagonal().array() += lambda;
    const Eigen::MatrixXd Pt = A.ldlt().solve(Z.transpose() * T);  // r x m
    return Pt.transpose().cast<float>();
}

}  // namespace sparseinfer::detail
