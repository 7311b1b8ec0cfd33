// sparseinfer/detail/low_rank_fit_impl.hpp - the bodies of detail/low_rank_fit.hpp:
// included by that header in the header-only mode, and compiled once by the
// kernels target (src/sparseinfer_low_rank_fit.cpp) in the compiled mode.
#pragma once

#include <Eigen/Core>
#include <Eigen/Householder>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>
#include <random>

#include "low_rank_fit.hpp"

namespace sparseinfer::detail {

/// Y's columns replaced by an orthonormal basis of their span.
inline void orthonormalize(Eigen::MatrixXf& Y) {
    Eigen::HouseholderQR<Eigen::MatrixXf> qr(Y);
    Y = qr.householderQ() * Eigen::MatrixXf::Identity(Y.rows(), Y.cols());
}

SPARSEINFER_SEPARATE_FN void truncated_svd(const RowMatrixFMap& G, Eigen::Index r, const RangeFinder& opts,
                                           RowMatrixF& P, RowMatrixF& Q) {
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

SPARSEINFER_SEPARATE_FN RowMatrixF ridge_refit(const RowMatrixFMap& X, const RowMatrixF& Q, const RowMatrixFMap& G,
                                               double ridge) {
    const Eigen::Index r = Q.rows();
    const Eigen::MatrixXd Z = (X * Q.transpose()).cast<double>();  // n x r
    const Eigen::MatrixXd T = (X * G.transpose()).cast<double>();  // n x m, the exact pre-activations
    Eigen::MatrixXd A = Z.transpose() * Z;
    const double lambda = ridge * std::max(1e-30, A.trace() / static_cast<double>(r));
    A.diagonal().array() += lambda;
    const Eigen::MatrixXd Pt = A.ldlt().solve(Z.transpose() * T);  // r x m
    return Pt.transpose().cast<float>();
}

SPARSEINFER_SEPARATE_FN void residual_row_norms(const RowMatrixFMap& G, const RowMatrixF& P, const RowMatrixF& Q,
                                                float* sigma) {
    // In blocks of rows, so the residual never needs all of G's size at once.
    const Eigen::Index m = P.rows(), block = 256;
    for (Eigen::Index i0 = 0; i0 < m; i0 += block) {
        const Eigen::Index b = std::min(block, m - i0);
        const Eigen::MatrixXf R = G.middleRows(i0, b) - P.middleRows(i0, b) * Q;
        for (Eigen::Index i = 0; i < b; ++i) sigma[i0 + i] = R.row(i).norm();
    }
}

}  // namespace sparseinfer::detail
