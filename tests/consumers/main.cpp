// A program that uses sparseinfer the way a consumer project does: through the
// umbrella header, the predictor's header (with Eigen) and one sparseinfer
// target. It quantizes a small matrix, runs a sparse FFN step and fits a
// low-rank predictor, and checks each against float computations; it exits
// nonzero on any mismatch. Built by the consumer projects
// in fetchcontent/ and find_package/ (see .ci/steps/50-consumers.sh).
#include <sparseinfer/predictor.hpp>
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
    float ys[3];  // left uninitialized, as output buffers usually are: it must not warn
    q.gemv_rows(picked, 3, x.data(), ys);
    for (int i = 0; i < 3; ++i) check(ys[i] == y[picked[i]], "gemv_rows vs gemv", ys[i], y[picked[i]], 0.0);

    std::printf("quantized gemv (%zu x %zu, %.2f bits/weight): relative RMSE %.4f vs float: %s\n", rows, cols,
                q.bits_per_weight(), rel, failures == before ? "ok" : "FAILED");
}

// A SwiGLU FFN over the listed neurons, in double from float weights laid out as
// in checkpoints: gate and up [hidden][d_model], down [d_model][hidden].
// y = sum over listed n of down[:, n] * silu(gate[n] . x) * (up[n] . x).
std::vector<double> ffn_reference(const std::vector<float>& gate, const std::vector<float>& up,
                                  const std::vector<float>& down, std::size_t d_model, std::size_t hidden,
                                  const float* x, const std::vector<std::uint32_t>& active, std::vector<double>& mag) {
    std::vector<double> g, u, unused;
    matvec(gate, hidden, d_model, x, g, unused);
    matvec(up, hidden, d_model, x, u, unused);
    std::vector<double> y(d_model, 0.0);
    mag.assign(d_model, 0.0);
    for (const std::uint32_t n : active) {
        const double a = g[n] / (1.0 + std::exp(-g[n])) * u[n];
        for (std::size_t c = 0; c < d_model; ++c) {
            y[c] += a * down[c * hidden + n];
            mag[c] += std::fabs(a * down[c * hidden + n]);
        }
    }
    return y;
}

double relative_rmse(const std::vector<float>& got, const std::vector<double>& want) {
    double err2 = 0.0, ref2 = 0.0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        err2 += (got[i] - want[i]) * (got[i] - want[i]);
        ref2 += want[i] * want[i];
    }
    return std::sqrt(err2 / ref2);
}

// A 4-bit SwiGLU layer: the sparse pass over every neuron equals the dense pass,
// and the sparse pass over a quarter of the neurons matches the float layer
// restricted to them, within the 4-bit quantization error.
void check_sparse_ffn_step() {
    const int before = failures;
    const std::size_t d_model = 64, hidden = 160;
    const float sigma = 1.0f / 8.0f;  // 1/sqrt(d_model): activations stay O(1)
    const auto gate = normal_values(hidden * d_model, 3, sigma);
    const auto up = normal_values(hidden * d_model, 4, sigma);
    const auto down = normal_values(d_model * hidden, 5, sigma);
    const auto x = normal_values(d_model, 6);

    sparseinfer::SparseFfn<4> ffn(gate.data(), up.data(), down.data(), d_model, hidden, sparseinfer::Activation::silu,
                                  sparseinfer::QuantOptions{});
    std::vector<std::uint32_t> all(hidden), quarter;
    for (std::size_t n = 0; n < hidden; ++n) {
        all[n] = static_cast<std::uint32_t>(n);
        if (n % 4 == 1) quarter.push_back(static_cast<std::uint32_t>(n));
    }
    std::vector<float> y_dense(d_model), y_all(d_model), y_quarter(d_model);
    ffn.forward_dense(x.data(), y_dense.data());
    ffn.forward_sparse(x.data(), all.data(), all.size(), y_all.data());
    ffn.forward_sparse(x.data(), quarter.data(), quarter.size(), y_quarter.data());

    // Every neuron, sparse vs dense: the same arithmetic up to summation order.
    std::vector<double> mag;
    const auto want_all = ffn_reference(gate, up, down, d_model, hidden, x.data(), all, mag);
    for (std::size_t c = 0; c < d_model; ++c) {
        const double tol = 1e-4 * mag[c] + 1e-6;
        check(std::fabs(y_all[c] - y_dense[c]) <= tol, "forward_sparse(all) vs forward_dense", y_all[c], y_dense[c],
              tol);
    }
    // Against the float layer: 4-bit weights in three matrices, about 7% error
    // each on N(0, sigma) weights; 20% relative RMSE is a generous bound.
    const double rel_all = relative_rmse(y_dense, want_all);
    check(rel_all < 0.2, "dense FFN relative RMSE vs float FFN", rel_all, 0.0, 0.2);
    const auto want_quarter = ffn_reference(gate, up, down, d_model, hidden, x.data(), quarter, mag);
    const double rel_quarter = relative_rmse(y_quarter, want_quarter);
    check(rel_quarter < 0.2, "sparse FFN (1/4 of neurons) relative RMSE vs float FFN", rel_quarter, 0.0, 0.2);

    std::printf(
        "sparse FFN step (SparseFfn<4>, d_model %zu, hidden %zu): relative RMSE vs float %.4f (every neuron), "
        "%.4f (%zu neurons): %s\n",
        d_model, hidden, rel_all, rel_quarter, quarter.size(), failures == before ? "ok" : "FAILED");
}

// A gate of exact rank 2: a rank-2 predictor (its fit is compiled in the
// kernels unit in the compiled mode) must reproduce its pre-activations.
void check_predictor() {
    const int before = failures;
    const std::size_t hidden = 40, d_model = 64;
    const std::vector<float> a = normal_values(hidden * 2, 21), b = normal_values(2 * d_model, 22),
                             x = normal_values(d_model, 23);
    std::vector<float> gate(hidden * d_model);
    for (std::size_t i = 0; i < hidden; ++i)
        for (std::size_t j = 0; j < d_model; ++j)
            gate[i * d_model + j] = a[i * 2] * b[j] + a[i * 2 + 1] * b[d_model + j];
    auto pred = sparseinfer::LowRankPredictor::from_gate(gate.data(), hidden, d_model, {/*rank=*/2});
    std::vector<float> scores(hidden);
    pred.scores(x.data(), sparseinfer::Activation::relu, scores.data());
    std::vector<double> want, mag;
    matvec(gate, hidden, d_model, x.data(), want, mag);
    for (std::size_t i = 0; i < hidden; ++i) {
        const double w = want[i] > 0 ? want[i] : 0.0, tol = 1e-4 * (mag[i] + 1.0);
        check(std::fabs(scores[i] - w) <= tol, "rank-2 predictor score", scores[i], w, tol);
    }
    std::printf("low-rank predictor %zu x %zu, rank 2: %s\n", hidden, d_model, failures == before ? "ok" : "FAILED");
}

}  // namespace

int main() {
    std::printf("sparseinfer %s (%d.%d.%d), kernels: %s\n", SPARSEINFER_VERSION_STRING, SPARSEINFER_VERSION_MAJOR,
                SPARSEINFER_VERSION_MINOR, SPARSEINFER_VERSION_PATCH, sparseinfer::active_isa());
    try {
        check_quantized_gemv();
        check_sparse_ffn_step();
        check_predictor();
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
