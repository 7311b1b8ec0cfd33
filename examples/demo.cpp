// demo: the sparseinfer FFN inside a real model. Runs the llama2c engine on
// stories260K (a 260K-parameter llama2.c model; a small random model when the
// file is absent) with float, 8-bit and 4-bit FFN weights, dense and sparse,
// and prints speed, FFN bytes read per token and fidelity to the float model.
//
//   ./build/examples/demo [path/to/stories260K.bin]    (default ../shared/data/stories260K.bin)
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "llama2c/engine.hpp"

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "../shared/data/stories260K.bin";
    try {
        const bool real = std::ifstream(path, std::ios::binary).good();
        const llama2c::Model model = real ? llama2c::load_checkpoint(path) : llama2c::synthetic_model();
        std::printf("model: %s (dim %d, FFN hidden %d, %d layers)\n",
                    real ? path.c_str() : "synthetic (stories260K.bin not found)", model.config.dim,
                    model.config.hidden_dim, model.config.n_layers);
        struct Row {
            const char* name;
            llama2c::EngineOptions o;
        };
        std::vector<Row> rows;
        auto add = [&](const char* name, int bits, double active, llama2c::Selector sel) {
            llama2c::EngineOptions o;
            o.bits = bits;
            o.active = active;
            o.selector = sel;
            rows.push_back({name, o});
        };
        add("float dense", 32, 1.0, llama2c::Selector::gate);
        add("8-bit dense", 8, 1.0, llama2c::Selector::gate);
        add("4-bit dense", 4, 1.0, llama2c::Selector::gate);
        add("8-bit, 50% gate-first", 8, 0.5, llama2c::Selector::gate);
        add("4-bit, 50% predictor", 4, 0.5, llama2c::Selector::predictor);
        const int steps = 128;
        std::printf("%-24s %10s %14s %10s %8s\n", "FFN", "tokens/s", "FFN bytes/tok", "KL", "top1");
        for (const Row& r : rows) {
            llama2c::Engine e(model, r.o);
            const std::vector<int> tokens = e.generate(steps);
            const llama2c::Fidelity f = llama2c::compare(model, r.o, steps);
            std::printf("%-24s %10.0f %14.0f %10.5f %8.3f\n", r.name, e.tokens_per_second(), e.bytes_per_token(), f.kld,
                        f.top1);
        }
        llama2c::Engine e(model, llama2c::EngineOptions{});
        std::printf("float greedy tokens:");
        for (int t : e.generate(16)) std::printf(" %d", t);
        std::printf(" ...\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "demo: %s\n", e.what());
        return 1;
    }
    return 0;
}
