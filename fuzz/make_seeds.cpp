// Writes a seed corpus of small valid files for the fuzz targets:
//   make_seeds <dir>   ->  <dir>/weights/*.siqw  <dir>/tensors/*.sitf  <dir>/gguf/*.gguf
#include <sparseinfer/gguf_writer.hpp>
#include <sparseinfer/model_file.hpp>
#include <sparseinfer/tensor_file.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {
std::vector<float> values(std::size_t n, unsigned seed) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = std::sin(0.37f * static_cast<float>(i + seed)) * (1.0f + seed);
    return v;
}
template <int Bits>
sparseinfer::QuantizedWeights<Bits> make(std::size_t rows, std::size_t cols, std::size_t gs, unsigned seed) {
    const auto v = values(rows * cols, seed);
    return sparseinfer::QuantizedWeights<Bits>::from_f32(v.data(), rows, cols, {gs, sparseinfer::QuantMethod::min_max});
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds <dir>\n");
        return 2;
    }
    namespace fs = std::filesystem;
    const fs::path dir = argv[1];
    fs::create_directories(dir / "weights");
    fs::create_directories(dir / "tensors");
    unsigned seed = 0;
    auto name = [&](const char* ext) { return std::to_string(seed++) + ext; };
    for (std::size_t gs : {32, 64}) {
        make<2>(2, 40, gs, seed).save((dir / "weights" / name(".siqw")).string());
        make<3>(1, 33, gs, seed).save((dir / "weights" / name(".siqw")).string());
        make<4>(3, 64, gs, seed).save((dir / "weights" / name(".siqw")).string());
        make<8>(1, 1, gs, seed).save((dir / "weights" / name(".siqw")).string());
    }
    const auto a = make<4>(2, 40, 32, 1);
    const auto b = make<2>(1, 33, 64, 2);
    const auto c = make<8>(2, 32, 32, 3);
    const auto d = make<3>(1, 70, 32, 4);
    sparseinfer::TensorFileWriter w1, w2, w3;
    w1.add("up", a);
    w1.add("down", b);
    w2.add("layers.0.gate", c);
    w2.add("layers.0.up", d);
    w2.add("x", a);
    w1.write((dir / "tensors" / "two.sitf").string());
    w2.write((dir / "tensors" / "three.sitf").string());
    w3.write((dir / "tensors" / "empty.sitf").string());
    // A model file: one layer and its predictor (rank 3, 20 neurons: padded panels), arrays included.
    const auto up = make<8>(20, 32, 32, 5), down_t = make<8>(20, 32, 32, 6), q = make<8>(3, 32, 32, 7);
    sparseinfer::PredictorFactors f;
    f.q = q.view();
    std::vector<std::int8_t> panels(2 * 16 * 4, 0);
    for (std::size_t i = 0; i < 20; ++i)
        for (std::size_t j = 0; j < 3; ++j)
            panels[(i / 16) * 64 + (i % 16) * 4 + j] =
                static_cast<std::int8_t>(static_cast<int>(i * 3 + j) % 255 - 127);
    f.p_panels = panels.data();
    f.p_panel_bytes = panels.size();
    f.p_scales = values(20, 8);
    for (auto& v : f.p_scales) v = std::fabs(v) / 127.0f;
    f.error_scale = f.p_scales;
    sparseinfer::TensorFileWriter w4;
    w4.add(sparseinfer::ffn_tensor_name(0, sparseinfer::FfnMatrix::up), up);
    w4.add(sparseinfer::ffn_tensor_name(0, sparseinfer::FfnMatrix::down), down_t);
    sparseinfer::add_predictor(w4, 0, f);
    w4.write((dir / "tensors" / "model_predictor.sitf").string());

    // GGUF: metadata of several types (arrays too) and a tensor of each type the writer makes.
    fs::create_directories(dir / "gguf");
    const auto v = values(2 * 64, 5);
    sparseinfer::GgufWriter g1, g2, g3;
    g1.set("general.architecture", "llama");
    g1.set("llama.context_length", std::uint32_t{2048});
    g1.set("llama.rope.freq_base", 10000.0f);
    g1.set("tokenizer.ggml.tokens", std::vector<std::string>{"<unk>", "<s>", "a"});
    g1.set("tokenizer.ggml.scores", std::vector<float>{0.0f, -1.0f, -2.5f});
    g1.set("x.flag", true);
    g1.set("x.i64", std::int64_t{-3});
    g1.add("blk.0.ffn_up.weight", v.data(), 2, 64, sparseinfer::GgmlType::q4_0);
    g1.add("blk.0.ffn_down.weight", v.data(), 1, 64, sparseinfer::GgmlType::q8_0);
    g1.add("output_norm.weight", v.data(), 1, 8, sparseinfer::GgmlType::f32);
    g1.add("f16", v.data(), 2, 5, sparseinfer::GgmlType::f16);
    g2.set("general.alignment", std::uint32_t{64});
    g2.set("u8", std::uint8_t{3});
    g2.add("t", v.data(), 1, 32, sparseinfer::GgmlType::q8_0);
    g1.write((dir / "gguf" / "llama.gguf").string());
    g2.write((dir / "gguf" / "aligned.gguf").string());
    g3.write((dir / "gguf" / "empty.gguf").string());
    return 0;
}
