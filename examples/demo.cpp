// demo: the sparseinfer FFN inside real models. Runs the llama2c engine on two
// models of the same shape: stories260K (a 260K-parameter llama2.c SwiGLU
// model; a small random model when the file is absent), and its ReLU-fied copy
// (examples/data/stories260K_relu.bin, ReGLU, made by scripts/relufy.py; the
// random model run with relu when absent), with float, 8-bit and 4-bit FFN
// weights, dense and sparse, and prints speed, FFN bytes read per token and
// fidelity (KL, top-1) to that model's own float output.
//
// SwiGLU has no exact zeros, so its sparse rows drop neurons that matter; a
// ReLU model leaves many activations exactly 0, and the pass that skips exactly
// those is lossless; the predictor runs at 1.5x that natural share.
//
//   ./build/examples/demo [stories260K.bin [stories260K_relu.bin]]
//   (defaults ../shared/data/stories260K.bin and examples/data/stories260K_relu.bin)
#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "llama2c/engine.hpp"

namespace {

struct Row {
    std::string name;
    llama2c::EngineOptions o;
};

llama2c::EngineOptions options(int bits, double active, llama2c::Selector sel, std::size_t rank = 0) {
    llama2c::EngineOptions o;
    o.bits = bits;
    o.active = active;
    o.selector = sel;
    o.rank = rank;
    return o;
}

std::string percent(double share) { return std::to_string(static_cast<int>(share * 100.0 + 0.5)) + "%"; }

void run_rows(const llama2c::Model& model, const std::vector<Row>& rows, int steps) {
    std::printf("%-34s %10s %14s %10s %8s %8s\n", "FFN", "tokens/s", "FFN bytes/tok", "KL", "top1", "active");
    for (const Row& r : rows) {
        llama2c::Engine e(model, r.o);
        e.generate(steps);
        const llama2c::Fidelity f = llama2c::compare(model, r.o, steps);
        std::printf("%-34s %10.0f %14.0f %10.5f %8.3f %7.1f%%\n", r.name.c_str(), e.tokens_per_second(),
                    e.bytes_per_token(), f.kld, f.top1, 100.0 * e.active_share());
    }
}

/// Share of FFN neurons whose activation is not exactly 0, over `steps` greedy positions.
double natural_share(const llama2c::Model& model, int steps) {
    llama2c::Engine e(model, options(32, 1.0, llama2c::Selector::nonzero));
    e.generate(steps);
    return e.active_share();
}

}  // namespace

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "../shared/data/stories260K.bin";
    const std::string relu_path = argc > 2 ? argv[2] : SPARSEINFER_EXAMPLES_DATA_DIR "/stories260K_relu.bin";
    const int steps = 128;
    try {
        const bool have_relu = std::ifstream(relu_path, std::ios::binary).good();
        llama2c::Model relu = have_relu ? llama2c::load_checkpoint(relu_path) : llama2c::synthetic_model();
        relu.activation = llama2c::FfnActivation::relu;  // the synthetic stand-in: about half its gates are < 0
        const double natural = natural_share(relu, 256);
        const double share = std::min(1.0, 1.5 * natural);  // the predictor's margin over the natural share
        const std::size_t rank = static_cast<std::size_t>(relu.config.dim) / 2;  // the predictor's rank

        const bool real = std::ifstream(path, std::ios::binary).good();
        const llama2c::Model model = real ? llama2c::load_checkpoint(path) : llama2c::synthetic_model();
        std::printf("model: %s (SwiGLU, dim %d, FFN hidden %d, %d layers)\n",
                    real ? path.c_str() : "synthetic (stories260K.bin not found)", model.config.dim,
                    model.config.hidden_dim, model.config.n_layers);
        std::printf("natural active share: %.1f%% (no activation is exactly 0)\n", 100.0 * natural_share(model, 256));
        using S = llama2c::Selector;
        run_rows(model,
                 {{"float dense", options(32, 1.0, S::gate)},
                  {"8-bit dense", options(8, 1.0, S::gate)},
                  {"4-bit dense", options(4, 1.0, S::gate)},
                  {"8-bit, 50% gate-first", options(8, 0.5, S::gate)},
                  {"4-bit, 50% predictor", options(4, 0.5, S::predictor)},
                  {"8-bit, " + percent(natural) + " gate-first", options(8, natural, S::gate)},
                  {"4-bit, " + percent(share) + " predictor", options(4, share, S::predictor, rank)}},
                 steps);

        std::printf("\nmodel: %s (ReGLU)\n", have_relu ? relu_path.c_str()
                                                       : "synthetic, run with relu (stories260K_relu.bin not found: "
                                                         "scripts/relufy.py makes it)");
        std::printf("natural active share: %.1f%% over 256 greedy positions (the rest exactly 0)\n", 100.0 * natural);
        run_rows(relu,
                 {{"float dense", options(32, 1.0, S::gate)},
                  {"8-bit dense", options(8, 1.0, S::gate)},
                  {"4-bit dense", options(4, 1.0, S::gate)},
                  {"float, exact zeros skipped", options(32, 1.0, S::nonzero)},
                  {"8-bit, exact zeros skipped", options(8, 1.0, S::nonzero)},
                  {"4-bit, exact zeros skipped", options(4, 1.0, S::nonzero)},
                  {"8-bit, " + percent(share) + " predictor", options(8, share, S::predictor, rank)},
                  {"4-bit, " + percent(share) + " predictor", options(4, share, S::predictor, rank)}},
                 steps);
        llama2c::Engine e(relu, llama2c::EngineOptions{});
        std::printf("ReLU-fied float greedy tokens:");
        for (int t : e.generate(16)) std::printf(" %d", t);
        std::printf(" ...\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "demo: %s\n", e.what());
        return 1;
    }
    return 0;
}
