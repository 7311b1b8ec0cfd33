// Writes a seed corpus of small valid files for the fuzz targets:
//   make_seeds <dir>   ->  <dir>/weights/*.siqw  <dir>/tensors/*.sitf
#include <sparseinfer/tensor_file.hpp>

#include <cmath>
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
    return 0;
}
