// llama2c: greedy decoding of a llama2.c checkpoint whose FFN layers are
// sparseinfer's quantized, sparse layers. See `llama2c --help`.
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "engine.hpp"
#include "gguf_model.hpp"
#include "recall.hpp"

namespace {

const char* usage =
    "usage: llama2c <checkpoint.bin | model.gguf> [options]\n"
    "       llama2c --synthetic [options]        (a small random model)\n"
    "options:\n"
    "  --steps N          tokens to generate / positions to compare (default 64)\n"
    "  --bits B           FFN weights: 32 (float), 8, 4, 3 or 2 (default 32)\n"
    "  --active F         share of FFN neurons computed per token, (0, 1] (default 1 = dense)\n"
    "  --selector S       gate (exact gate-first), predictor (low-rank) or nonzero (gate-first,\n"
    "                     exactly the neurons whose activation is not 0; --active unused) (default gate)\n"
    "  --activation A     FFN activation the model was trained with: silu (SwiGLU), relu (ReGLU)\n"
    "                     or drelu (relu on gate and up) (default silu)\n"
    "  --rank R           predictor rank (default dim / 4)\n"
    "  --policy P         neuron cache policy: frequency, static, lru, window, adaptive\n"
    "  --budget F         slot store per layer, share of its neurons, [0, 1] (default 0)\n"
    "  --int8             int8 activations for the gate/up dot products\n"
    "  --save FILE        write the quantized FFN layers (and, with --selector predictor, their\n"
    "                     predictors) to a model file (quantize and calibrate once)\n"
    "  --ffn FILE         read the FFN layers (and saved predictors) from a model file written\n"
    "                     by --save (mapped)\n"
    "  -z FILE            llama2.c tokenizer, to print the text too (a GGUF file's own\n"
    "                     tokenizer.ggml.tokens are used when -z is not given)\n"
    "  --compare          teacher-force the float model's greedy sequence; print kld and top1\n"
    "  --reference FILE   with --compare: the float model of FILE (checkpoint or GGUF) is the reference\n"
    "  --export-gguf FILE write the model as a LLaMA-architecture GGUF file and exit\n"
    "  --gguf-type T      its matrices: f32, f16, q8_0 or q4_0 (default f32; norms stay F32; a matrix\n"
    "                     whose rows are not whole 32-value blocks is stored F16)\n"
    "  --gguf-ffn-only    only the FFN matrices take --gguf-type; attention and embeddings stay F32\n"
    "  --gguf-layout L    llama (ffn_down, llama.cpp) or powerinfer (ffn_down_t, a row per neuron)\n"
    "                     (default llama); -z FILE stores that tokenizer in the file\n"
    "  --recall-json FILE write the predictor's recall against rank for every layer\n";

[[noreturn]] void fail(const std::string& msg) {
    std::fprintf(stderr, "llama2c: %s\n", msg.c_str());
    std::exit(1);
}

double parse_number(const std::string& opt, const char* text) {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !std::isfinite(v))
        fail(opt + " expects a number, got '" + text + "'");
    return v;
}

int parse_int(const std::string& opt, const char* text) {
    const double v = parse_number(opt, text);
    if (v != std::floor(v) || std::fabs(v) > 1e9) fail(opt + " expects an integer, got '" + text + "'");
    return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
    std::string checkpoint, tokenizer_path, recall_json, save_path, export_path, reference_path;
    sparseinfer::GgmlType gguf_type = sparseinfer::GgmlType::f32;
    llama2c::GgufLayout gguf_layout = llama2c::GgufLayout::llama;
    bool synthetic = false, compare_mode = false, gguf_ffn_only = false;
    int steps = 64;
    llama2c::FfnActivation activation = llama2c::FfnActivation::silu;
    llama2c::EngineOptions o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) fail(a + " needs a value");
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            return 0;
        } else if (a == "--steps") {
            steps = parse_int(a, value());
        } else if (a == "--bits") {
            o.bits = parse_int(a, value());
        } else if (a == "--active") {
            o.active = parse_number(a, value());
        } else if (a == "--selector") {
            const std::string s = value();
            if (s == "gate")
                o.selector = llama2c::Selector::gate;
            else if (s == "predictor")
                o.selector = llama2c::Selector::predictor;
            else if (s == "nonzero")
                o.selector = llama2c::Selector::nonzero;
            else
                fail("--selector must be gate, predictor or nonzero (got '" + s + "')");
        } else if (a == "--activation") {
            try {
                activation = llama2c::parse_activation(value());
            } catch (const std::invalid_argument& e) {
                fail(e.what());
            }
        } else if (a == "--rank") {
            const int r = parse_int(a, value());
            if (r < 1) fail("--rank must be at least 1");
            o.rank = static_cast<std::size_t>(r);
        } else if (a == "--policy") {
            o.policy = value();
        } else if (a == "--budget") {
            o.budget = parse_number(a, value());
        } else if (a == "--int8") {
            o.int8 = true;
        } else if (a == "--save") {
            save_path = value();
        } else if (a == "--ffn") {
            o.ffn_file = value();
        } else if (a == "-z") {
            tokenizer_path = value();
        } else if (a == "--compare") {
            compare_mode = true;
        } else if (a == "--reference") {
            reference_path = value();
        } else if (a == "--export-gguf") {
            export_path = value();
        } else if (a == "--gguf-type") {
            try {
                gguf_type = llama2c::parse_gguf_type(value());
            } catch (const std::invalid_argument& e) {
                fail(e.what());
            }
        } else if (a == "--gguf-ffn-only") {
            gguf_ffn_only = true;
        } else if (a == "--gguf-layout") {
            const std::string l = value();
            if (l == "llama")
                gguf_layout = llama2c::GgufLayout::llama;
            else if (l == "powerinfer")
                gguf_layout = llama2c::GgufLayout::powerinfer;
            else
                fail("--gguf-layout must be llama or powerinfer (got '" + l + "')");
        } else if (a == "--recall-json") {
            recall_json = value();
        } else if (a == "--synthetic") {
            synthetic = true;
        } else if (!a.empty() && a[0] == '-') {
            fail("unknown option '" + a + "' (see --help)");
        } else if (checkpoint.empty()) {
            checkpoint = a;
        } else {
            fail("unexpected argument '" + a + "' (one checkpoint only)");
        }
    }
    if (checkpoint.empty() && !synthetic) {
        std::fputs(usage, stderr);
        fail("no checkpoint given (or use --synthetic)");
    }
    try {
        llama2c::validate(o);
        llama2c::Model model;
        std::vector<std::string> gguf_pieces;  // the GGUF file's own tokenizer, when it has one
        if (synthetic) {
            model = llama2c::synthetic_model();
        } else if (llama2c::is_gguf_file(checkpoint)) {
            llama2c::GgufModel g = llama2c::load_gguf(checkpoint);
            model = std::move(g.model);
            gguf_pieces = std::move(g.vocabulary.pieces);
        } else {
            model = llama2c::load_checkpoint(checkpoint);
        }
        model.activation = activation;
        if (!export_path.empty()) {
            llama2c::Vocabulary vocabulary;
            llama2c::GgufExportOptions eo;
            eo.type = gguf_type;
            eo.layout = gguf_layout;
            eo.ffn_only = gguf_ffn_only;
            if (!tokenizer_path.empty()) {
                vocabulary = llama2c::read_vocabulary(tokenizer_path, model.config.vocab_size);
                eo.vocabulary = &vocabulary;
            }
            const auto written = llama2c::export_gguf(model, export_path, eo);
            std::size_t fallback = 0;
            for (const auto& [name, type] : written)
                if (type != gguf_type && type == sparseinfer::GgmlType::f16) {
                    if (fallback++ == 0) std::printf("stored F16 (rows not whole blocks):");
                    std::printf(" %s", name.c_str());
                }
            if (fallback) std::printf("\n");
            std::printf("%zu tensors written to %s (%s%s)\n", written.size(), export_path.c_str(),
                        sparseinfer::ggml_type_info(gguf_type).name, eo.vocabulary ? ", with the tokenizer" : "");
            return 0;
        }
        if (steps < 1 || steps > model.config.seq_len)
            fail("--steps must be in [1, " + std::to_string(model.config.seq_len) + "] for this model");
        if (!recall_json.empty()) {
            llama2c::write_recall_vs_rank(model, steps, recall_json);
            std::printf("recall against rank written to %s\n", recall_json.c_str());
            return 0;
        }
        if (compare_mode) {
            llama2c::Model reference = reference_path.empty() ? model : llama2c::load_model(reference_path);
            reference.activation = activation;
            const llama2c::Fidelity f = llama2c::compare(reference, {}, model, o, steps);
            std::printf("kld: %.6f top1: %.4f\n", f.kld, f.top1);
            return 0;
        }
        std::unique_ptr<llama2c::Tokenizer> tok;
        if (!tokenizer_path.empty())
            tok = std::make_unique<llama2c::Tokenizer>(tokenizer_path, model.config.vocab_size);
        else if (!gguf_pieces.empty())
            tok = std::make_unique<llama2c::Tokenizer>(std::move(gguf_pieces));
        const auto setup_start = std::chrono::steady_clock::now();
        llama2c::Engine engine(model, o);
        const double setup_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - setup_start).count();
        std::printf("ffn setup: %.1f ms (%s)\n", setup_ms, o.ffn_file.empty() ? "quantized at start" : "mapped file");
        if (!save_path.empty()) {
            engine.save_ffn(save_path);
            std::printf("ffn layers written to %s\n", save_path.c_str());
        }
        const std::vector<int> tokens = engine.generate(steps);
        std::printf("tokens:");
        for (int t : tokens) std::printf(" %d", t);
        std::printf("\n");
        std::printf(
            "stats: %.1f tokens/s, FFN %.1f%% of time, hit rate %.3f, %.0f FFN bytes/token, %.1f%% neurons active\n",
            engine.tokens_per_second(), 100.0 * engine.ffn_share(), engine.hit_rate(), engine.bytes_per_token(),
            100.0 * engine.active_share());
        if (tok) {
            std::string text;
            int prev = 1;
            for (int t : tokens) {
                text += tok->decode(prev, t);
                prev = t;
            }
            std::printf("text: %s\n", text.c_str());
        }
    } catch (const std::exception& e) {
        fail(e.what());
    }
    return 0;
}
