// Shared helpers of the kernel tests: every instruction set in turn, random
// rows in the row format and the error bounds the SIMD kernels are held to.
#pragma once

#include <sparseinfer/kernels/dispatch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "catch.hpp"

namespace kt {

using sparseinfer::detail::RowLayout;

/// Runs fn(isa) for every instruction set this CPU supports, each in a section
/// named after it (so a failure names its path, and one path's REQUIRE does not
/// stop the others).
template <class Fn>
void for_each_supported_isa(Fn&& fn) {
    for (sparseinfer::Isa isa : sparseinfer::kernels::supported_isas()) {
        DYNAMIC_SECTION("isa " << sparseinfer::isa_name(isa)) { fn(isa); }
    }
}

/// rows x cols matrix of random bytes in the row format: random float units,
/// random scale/min codes and random codes (padding codes too: no kernel may use them).
struct RandomMatrix {
    RowLayout layout;
    std::size_t rows = 0;
    std::vector<std::uint8_t> bytes;  // one spare byte in front, so rows start unaligned

    const std::uint8_t* data() const { return bytes.data() + 1; }
    const std::uint8_t* row(std::size_t r) const { return data() + r * layout.row_stride; }
};

inline RandomMatrix random_matrix(int bits, std::size_t rows, std::size_t cols, std::size_t group, unsigned seed) {
    RandomMatrix m;
    m.layout = sparseinfer::detail::make_row_layout(bits, cols, group);
    m.rows = rows;
    m.bytes.resize(1 + rows * m.layout.row_bytes);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> unit(0.001f, 0.02f);
    for (auto& b : m.bytes) b = static_cast<std::uint8_t>(byte(rng));
    for (std::size_t r = 0; r < rows; ++r) {
        std::uint8_t* p = m.bytes.data() + 1 + r * m.layout.row_bytes;
        sparseinfer::detail::store_f32(p, unit(rng));
        sparseinfer::detail::store_f32(p + 4, unit(rng) * 0.5f);
    }
    return m;
}

/// Random N(0,1) vector stored one float past an aligned start (unaligned loads).
struct Vec {
    std::vector<float> storage;
    float* p;
    explicit Vec(std::size_t n, unsigned seed, float sentinel = 0) : storage(n + 2, sentinel) {
        p = storage.data() + 1;
        std::mt19937 rng(seed);
        std::normal_distribution<float> nd;
        for (std::size_t i = 0; i < n; ++i) p[i] = nd(rng);
    }
};

/// Decoded scale and min of group g, as the reference computes them.
inline void params(const RowLayout& l, const std::uint8_t* row, std::size_t j, double& d, double& m) {
    float fd, fm;
    sparseinfer::kernels::scalar::group_params(l, row, j / l.group_size, fd, fm);
    d = fd;
    m = fm;
}

/// sum_j |d q_j x_j| + |m x_j|: the float-path error scale (the dot is
/// computed as d * sum(q x) + m * sum(x) per group).
inline double float_scale(const RowLayout& l, const std::uint8_t* row, const float* x) {
    const std::uint8_t* codes = row + l.codes_offset();
    double s = 0;
    for (std::size_t j0 = 0; j0 < l.cols; j0 += 32) {
        std::uint8_t q[32];
        sparseinfer::detail::unpack_block(l.bits, codes + j0 / 32 * sparseinfer::detail::block_bytes(l.bits), q);
        double d, m;
        params(l, row, j0, d, m);
        for (std::size_t j = j0; j < l.cols && j < j0 + 32; ++j)
            s += std::fabs(d * q[j - j0] * x[j]) + std::fabs(m * x[j]);
    }
    return s;
}

/// sum over blocks of max_j |x_j| * sum_j (|d q_j| + |m|): the error scale of
/// an x rounded per block relative to the block's largest |x| (the int8-limb
/// split of avx512_vnni's float gemv_rows).
inline double block_max_scale(const RowLayout& l, const std::uint8_t* row, const float* x) {
    const std::uint8_t* codes = row + l.codes_offset();
    double s = 0;
    for (std::size_t j0 = 0; j0 < l.cols; j0 += 32) {
        std::uint8_t q[32];
        sparseinfer::detail::unpack_block(l.bits, codes + j0 / 32 * sparseinfer::detail::block_bytes(l.bits), q);
        double d, m, xmax = 0, w = 0;
        params(l, row, j0, d, m);
        for (std::size_t j = j0; j < l.cols && j < j0 + 32; ++j) {
            xmax = std::max(xmax, std::fabs(static_cast<double>(x[j])));
            w += std::fabs(d * q[j - j0]) + std::fabs(m);
        }
        s += xmax * w;
    }
    return s;
}

/// The int8-path error scale: sum over blocks of |d| * scale_b * sum_j q_j |xq_j| + |m| * |xsum_b|.
inline double q8_scale(const RowLayout& l, const std::uint8_t* row, const sparseinfer::QuantizedActivations& x) {
    const std::uint8_t* codes = row + l.codes_offset();
    double s = 0;
    for (std::size_t b = 0; b < x.blocks(); ++b) {
        std::uint8_t q[32];
        sparseinfer::detail::unpack_block(l.bits, codes + b * sparseinfer::detail::block_bytes(l.bits), q);
        double d, m;
        params(l, row, b * 32, d, m);
        double qx = 0;
        for (int j = 0; j < 32; ++j) qx += q[j] * std::fabs(static_cast<double>(x.values[b * 32 + j]));
        s += std::fabs(d) * std::fabs(x.scales[b]) * qx + std::fabs(m) * std::fabs(x.sums[b]);
    }
    return s;
}

/// Relative tolerance against an error scale: float rounding of sums of up to
/// 11008 terms in a different order (observed errors are ~1e-7 of the scale).
inline constexpr double rel_tol = 1e-5;

}  // namespace kt
