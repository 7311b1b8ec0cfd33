// A program that uses sparseinfer the way a consumer project does: through the
// umbrella header and the sparseinfer::sparseinfer target only. It quantizes a
// small matrix, runs a sparse FFN step and checks both against float
// computations; it exits nonzero on any mismatch. Built by the consumer projects
// in fetchcontent/ and find_package/ (see .ci/steps/50-consumers.sh).
#include <sparseinfer/sparseinfer.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what, double got, double want, double tol) {
    if (!ok) {
        std::printf("MISMATCH %s: got %.7g, want %.7g (tolerance %.3g)\n", what, got, want, tol);
        ++failures;
    }
}

std::vector<float> normal_values(std::size_t n, unsigned seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, sigma);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

// y[r] = sum_c w[r][c] x[c] in double; mag[r] = sum_c |w[r][c] x[c]| bounds the rounding error.
void matvec(const std::vector<float>& w, std::size_t rows, std::size_t cols, const float* x, std::vector<double>& y,
            std::vector<double>& mag) {
    y.assign(rows, 0.0);
    mag.assign(rows, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
            const double p = static_cast<double>(w[r * cols + c]) * x[c];
            y[r] += p;
            mag[r] += std::fabs(p);
        }
}

// 4-bit quantization of a 48 x 96 matrix (odd group count per row: 96 = 3 groups of 32).
void check_quantized_gemv() {
    const int before = failures;
    const std::size_t rows = 48, cols = 96;
    const auto w = normal_values(rows * cols, 1);
    const auto x = normal_values(cols, 2);
    const auto q = sparseinfer::QuantizedWeights<4>::from_f32(w.data(), rows, cols);

    std::vector<float> y(rows);
    q.gemv(x.data(), y.data());

    // Against the dequantized weights the kernel is exact up to float rounding.
    std::vector<double> want, mag;
    matvec(q.to_f32(), rows, cols, x.data(), want, mag);
    for (std::size_t r = 0; r < rows; ++r) {
        const double tol = 1e-5 * mag[r] + 1e-6;
        check(std::fabs(y[r] - want[r]) <= tol, "gemv vs dequantized weights", y[r], want[r], tol);
    }

    // Against the original weights, the error is the 4-bit quantization error:
    // about 7% relative RMSE on N(0,1) weights, so 12% is a generous bound.
    std::vector<double> exact;
    matvec(w, rows, cols, x.data(), exact, mag);
    double err2 = 0.0, ref2 = 0.0;
    for (std::size_t r = 0; r < rows; ++r) {
        err2 += (y[r] - exact[r]) * (y[r] - exact[r]);
        ref2 += exact[r] * exact[r];
    }
    const double rel = std::sqrt(err2 / ref2);
    check(rel < 0.12, "gemv relative RMSE vs float weights", rel, 0.0, 0.12);

    // A sparse read of three rows equals the same rows of the dense result.
    const std::uint32_t picked[] = {0, 17, 47};
    float ys[3];
    q.gemv_rows(picked, 3, x.data(), ys);
    for (int i = 0; i < 3; ++i) check(ys[i] == y[picked[i]], "gemv_rows vs gemv", ys[i], y[picked[i]], 0.0);

    std::printf("quantized gemv (%zu x %zu, %.2f bits/weight): relative RMSE %.4f vs float: %s\n", rows, cols,
                q.bits_per_weight(), rel, failures == before ? "ok" : "FAILED");
}

// One SwiGLU FFN step, y = down^T (silu(gate x) * (up x)), in double from float weights.
// gate and up are hidden x d_model (a row per neuron); down is hidden x d_model too
// (row n is neuron n's output direction), as the sparse FFN reads it.
std::vector<double> ffn_reference(const std::vector<float>& gate, const std::vector<float>& up,
                                  const std::vector<float>& down, std::size_t d_model, std::size_t hidden,
                                  const float* x, std::vector<double>& mag) {
    std::vector<double> g, u, unused;
    matvec(gate, hidden, d_model, x, g, unused);
    matvec(up, hidden, d_model, x, u, unused);
    std::vector<double> y(d_model, 0.0);
    mag.assign(d_model, 0.0);
    for (std::size_t n = 0; n < hidden; ++n) {
        const double a = g[n] / (1.0 + std::exp(-g[n])) * u[n];
        for (std::size_t c = 0; c < d_model; ++c) {
            y[c] += a * down[n * d_model + c];
            mag[c] += std::fabs(a * down[n * d_model + c]);
        }
    }
    return y;
}

void check_sparse_ffn_step() {
    const int before = failures;
    const std::size_t d_model = 64, hidden = 160;
    const float sigma = 1.0f / 8.0f;  // 1/sqrt(d_model): activations stay O(1)
    const auto gate = normal_values(hidden * d_model, 3, sigma);
    const auto up = normal_values(hidden * d_model, 4, sigma);
    const auto down = normal_values(hidden * d_model, 5, sigma);
    const auto x = normal_values(d_model, 6);
    std::vector<std::uint32_t> all(hidden);
    for (std::size_t n = 0; n < hidden; ++n) all[n] = static_cast<std::uint32_t>(n);

    std::vector<float> y_sparse(d_model), y_dense(d_model);
#if __has_include(<sparseinfer/sparse_ffn.hpp>)
    // The FFN layer: forward_sparse over every neuron must equal forward_dense.
    // gate/up/down are given as the layer takes them (see sparse_ffn.hpp).
    sparseinfer::SparseFfn<4> ffn(gate.data(), up.data(), down.data(), d_model, hidden, sparseinfer::Activation::silu,
                                  sparseinfer::QuantOptions{});
    ffn.forward_dense(x.data(), y_dense.data());
    ffn.forward_sparse(x.data(), all.data(), all.size(), y_sparse.data());
    const char* how = "SparseFfn<4>";
#else
    // Without the FFN layer header, the same step from the kernels it is built on.
    const auto qg = sparseinfer::QuantizedWeights<4>::from_f32(gate.data(), hidden, d_model);
    const auto qu = sparseinfer::QuantizedWeights<4>::from_f32(up.data(), hidden, d_model);
    const auto qd = sparseinfer::QuantizedWeights<4>::from_f32(down.data(), hidden, d_model);
    std::vector<float> g(hidden), u(hidden), a(hidden);
    qg.gemv_rows(all.data(), hidden, x.data(), g.data());
    qu.gemv_rows(all.data(), hidden, x.data(), u.data());
    for (std::size_t n = 0; n < hidden; ++n) a[n] = g[n] / (1.0f + std::exp(-g[n])) * u[n];
    qd.axpy_rows(all.data(), hidden, a.data(), y_sparse.data());
    qg.gemv(x.data(), g.data());
    qu.gemv(x.data(), u.data());
    for (std::size_t n = 0; n < hidden; ++n) a[n] = g[n] / (1.0f + std::exp(-g[n])) * u[n];
    qd.axpy_rows(all.data(), hidden, a.data(), y_dense.data());
    const char* how = "kernels";
#endif

    // Sparse over every neuron vs dense: the same arithmetic up to summation order.
    std::vector<double> mag;
    const auto want = ffn_reference(gate, up, down, d_model, hidden, x.data(), mag);
    for (std::size_t c = 0; c < d_model; ++c) {
        const double tol = 1e-4 * mag[c] + 1e-6;
        check(std::fabs(y_sparse[c] - y_dense[c]) <= tol, "sparse FFN vs dense FFN", y_sparse[c], y_dense[c], tol);
    }
    // Against the float FFN: 4-bit weights in three matrices; 20% relative RMSE is generous.
    double err2 = 0.0, ref2 = 0.0;
    for (std::size_t c = 0; c < d_model; ++c) {
        err2 += (y_sparse[c] - want[c]) * (y_sparse[c] - want[c]);
        ref2 += want[c] * want[c];
    }
    const double rel = std::sqrt(err2 / ref2);
    check(rel < 0.2, "sparse FFN relative RMSE vs float FFN", rel, 0.0, 0.2);
    std::printf("sparse FFN step (%s, d_model %zu, hidden %zu): relative RMSE %.4f vs float: %s\n", how, d_model,
                hidden, rel, failures == before ? "ok" : "FAILED");
}

}  // namespace

int main() {
    std::printf("sparseinfer %s (%d.%d.%d), kernels: %s\n", SPARSEINFER_VERSION_STRING, SPARSEINFER_VERSION_MAJOR,
                SPARSEINFER_VERSION_MINOR, SPARSEINFER_VERSION_PATCH, sparseinfer::active_isa());
    try {
        check_quantized_gemv();
        check_sparse_ffn_step();
        // Bad input is reported as sparseinfer::error, not a crash.
        bool threw = false;
        try {
            (void)sparseinfer::QuantizedWeights<4>::from_f32(nullptr, 1, 32);
        } catch (const sparseinfer::error&) {
            threw = true;
        }
        check(threw, "null input throws sparseinfer::error", threw, 1, 0);
    } catch (const std::exception& e) {
        std::printf("unexpected exception: %s\n", e.what());
        return 1;
    }
    if (failures > 0) {
        std::printf("%d checks failed\n", failures);
        return 1;
    }
    std::printf("all checks passed\n");
    return 0;
}
