// Placeholder demo: quantizes a random matrix and reports its error.
#include <sparseinfer/quantized_weights.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

int main() {
    const std::size_t rows = 512, cols = 4096;
    std::vector<float> w(rows * cols);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (auto& v : w) v = nd(rng);
    auto q = sparseinfer::QuantizedWeights<4>::from_f32(w.data(), rows, cols);
    auto back = q.to_f32();
    double err = 0, norm = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
        err += (back[i] - w[i]) * double(back[i] - w[i]);
        norm += w[i] * double(w[i]);
    }
    std::printf("4-bit: %.4f bits/weight, relative RMSE %.4f\n", q.bits_per_weight(), std::sqrt(err / norm));
}
