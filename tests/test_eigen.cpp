// Tests of <sparseinfer/eigen.hpp>.
#include <sparseinfer/eigen.hpp>

#include <Eigen/Core>
#include <limits>

#include "catch.hpp"

TEST_CASE("from_eigen quantizes row- and column-major matrices and expressions alike") {
    Eigen::MatrixXf col_major = Eigen::MatrixXf::Random(13, 70);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = col_major;
    const auto a = sparseinfer::from_eigen<4>(col_major);
    const auto b = sparseinfer::from_eigen<4>(row_major);
    const auto c = sparseinfer::QuantizedWeights<4>::from_f32(row_major.data(), 13, 70);
    REQUIRE(a.rows() == 13);
    REQUIRE(a.cols() == 70);
    REQUIRE(a.memory_bytes() == c.memory_bytes());
    CHECK(std::equal(a.data(), a.data() + a.memory_bytes(), c.data()));
    CHECK(std::equal(b.data(), b.data() + b.memory_bytes(), c.data()));
    // An expression (a block of a double matrix) is evaluated and converted first.
    Eigen::MatrixXd big = col_major.cast<double>();
    const auto d = sparseinfer::from_eigen<4>(big.topRows(13));
    CHECK(std::equal(d.data(), d.data() + d.memory_bytes(), c.data()));
}

TEST_CASE("to_eigen returns the decoded matrix with the right shape") {
    Eigen::MatrixXf m = Eigen::MatrixXf::Random(5, 40);
    const auto q = sparseinfer::from_eigen<8>(m, {32, sparseinfer::QuantMethod::min_max});
    const Eigen::MatrixXf back = sparseinfer::to_eigen(q);
    REQUIRE(back.rows() == 5);
    REQUIRE(back.cols() == 40);
    const auto flat = q.to_f32();
    for (Eigen::Index r = 0; r < 5; ++r)
        for (Eigen::Index c = 0; c < 40; ++c) CHECK(back(r, c) == flat[static_cast<std::size_t>(r * 40 + c)]);
    // 8-bit with groups of 32: error below a quantization step of the group range (2/255).
    CHECK((back - m).cwiseAbs().maxCoeff() < 2.0f / 255.0f);
}

TEST_CASE("from_eigen reports bad input through sparseinfer::error") {
    Eigen::MatrixXf empty(0, 4);
    CHECK_THROWS_WITH(sparseinfer::from_eigen<4>(empty), Catch::Matchers::Contains("rows is 0"));
    Eigen::MatrixXf m = Eigen::MatrixXf::Zero(2, 3);
    m(1, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(sparseinfer::from_eigen<4>(m), Catch::Matchers::Contains("row 1, column 2"));
}
