// tour: the five-minute tour of the README, as a program that runs.
#include <sparseinfer/sparseinfer.hpp>  // everything but the Eigen interop and the predictor

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

int main() {
    const std::size_t d_model = 512, hidden = 1376;
    std::vector<float> gate(hidden * d_model), up(hidden * d_model), down(d_model * hidden), x(d_model);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    for (auto* v : {&gate, &up, &down, &x})
        for (float& f : *v) f = normal(rng);  // a checkpoint would be read here

    // 1. Quantized rows, one neuron per row, 4.5 bits per weight.
    auto w = sparseinfer::QuantizedWeights<4>::from_f32(gate.data(), hidden, d_model);
    std::vector<float> y(hidden);
    w.gemv(x.data(), y.data());  // every row, float activations
    auto xq = sparseinfer::quantize_activations(x.data(), x.size());
    std::uint32_t active[] = {3, 17, 42};
    w.gemv_rows(active, 3, xq, y.data());  // 3 rows, int8 activations

    // 2. A sparse SwiGLU layer with a per-layer neuron cache.
    sparseinfer::SparseFfn<4, sparseinfer::policy::Adaptive> ffn(
        gate.data(), up.data(), down.data(), d_model, hidden, sparseinfer::Activation::silu, {},
        sparseinfer::policy::Adaptive{/*capacity=*/hidden / 5});
    std::vector<float> out(d_model);
    ffn.forward_dense(x.data(), out.data());              // every neuron
    ffn.forward_sparse(x.data(), active, 3, out.data());  // only the listed neurons
    const sparseinfer::CacheStats stats = ffn.cache().stats();

    // 3. Files: save, then map and use with no copy.
    w.save("tour_gate.siqw");
    sparseinfer::MappedFile file("tour_gate.siqw");
    auto view = sparseinfer::QuantizedWeightsView<4>::from_bytes(file.data(), file.size());
    view.gemv_rows(active, 3, xq, y.data());  // same kernels, mapped bytes

    std::printf("kernel path %s, %.3f bits/weight, cache hit rate %.2f, y[0] = %.4f\n", sparseinfer::active_isa(),
                w.bits_per_weight(), stats.hit_rate, y[0]);
}
