// bench_quantize: quantization error and throughput of QuantizedWeights<Bits>.
//
//   bench_quantize [out.json] [--quick]
//
// Prints, for every width and both methods: bits per weight and relative RMSE
// (||W_hat - W|| / ||W||) on a 512 x 4096 N(0,1) matrix with groups of 32 and on
// the real FFN weights of ../shared/data/stories260K.bin (when present), plus
// quantize and dequantize throughput in MB/s of float data on one core.
#include <sparseinfer/quantized_weights.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using sparseinfer::QuantMethod;

struct Row {
    std::string data;
    int bits;
    std::string method;
    double bpw, rmse, quant_mbs, dequant_mbs;
};

double relative_rmse(const std::vector<float>& a, const std::vector<float>& b) {
    double e = 0, n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        e += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
        n += static_cast<double>(a[i]) * a[i];
    }
    return std::sqrt(e / n);
}

template <int Bits>
Row measure(const std::string& name, const std::vector<float>& w, std::size_t rows, std::size_t cols,
            QuantMethod method, int reps) {
    using Clock = std::chrono::steady_clock;
    std::vector<double> qt, dt;
    std::vector<float> back(w.size());
    double bpw = 0, rmse = 0;
    for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        auto q = sparseinfer::QuantizedWeights<Bits>::from_f32(w.data(), rows, cols, {32, method});
        auto t1 = Clock::now();
        for (std::size_t i = 0; i < rows; ++i) q.dequantize_row(i, back.data() + i * cols);
        auto t2 = Clock::now();
        qt.push_back(std::chrono::duration<double>(t1 - t0).count());
        dt.push_back(std::chrono::duration<double>(t2 - t1).count());
        bpw = q.bits_per_weight();
        rmse = relative_rmse(w, back);
    }
    const double mb = static_cast<double>(w.size()) * 4 / 1e6;
    return {name,
            Bits,
            method == QuantMethod::min_max ? "min_max" : "optimized",
            bpw,
            rmse,
            mb / bench::median(qt),
            mb / bench::median(dt)};
}

void measure_all(std::vector<Row>& out, const std::string& name, const std::vector<float>& w, std::size_t rows,
                 std::size_t cols, int reps) {
    for (auto m : {QuantMethod::min_max, QuantMethod::optimized}) {
        out.push_back(measure<8>(name, w, rows, cols, m, reps));
        out.push_back(measure<4>(name, w, rows, cols, m, reps));
        out.push_back(measure<3>(name, w, rows, cols, m, reps));
        out.push_back(measure<2>(name, w, rows, cols, m, reps));
    }
}

/// The gate, up and down matrices of every layer, each as rows of its own
/// input dimension (down transposed, as the sparse layer stores it).
bool load_ffn_weights(const std::string& path, std::vector<float>& gate_up, std::size_t& dim,
                      std::vector<float>& down_t, std::size_t& hidden) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::int32_t h[7];
    if (!in.read(reinterpret_cast<char*>(h), sizeof h)) return false;
    dim = static_cast<std::size_t>(h[0]);
    hidden = static_cast<std::size_t>(h[1]);
    const std::size_t layers = static_cast<std::size_t>(h[2]), vocab = static_cast<std::size_t>(std::abs(h[5]));
    const std::size_t kv = dim * static_cast<std::size_t>(h[4]) / static_cast<std::size_t>(h[3]);
    const std::size_t skip = vocab * dim + layers * dim + 2 * layers * dim * dim + 2 * layers * kv * dim + layers * dim;
    in.seekg(static_cast<std::streamoff>(28 + skip * 4));
    std::vector<float> w1(layers * hidden * dim), w2(layers * dim * hidden), w3(layers * hidden * dim);
    in.read(reinterpret_cast<char*>(w1.data()), static_cast<std::streamsize>(w1.size() * 4));
    in.read(reinterpret_cast<char*>(w2.data()), static_cast<std::streamsize>(w2.size() * 4));
    in.read(reinterpret_cast<char*>(w3.data()), static_cast<std::streamsize>(w3.size() * 4));
    if (!in) return false;
    gate_up = w1;
    gate_up.insert(gate_up.end(), w3.begin(), w3.end());
    down_t.resize(w2.size());
    for (std::size_t l = 0; l < layers; ++l)
        for (std::size_t r = 0; r < dim; ++r)
            for (std::size_t c = 0; c < hidden; ++c)
                down_t[l * hidden * dim + c * dim + r] = w2[l * dim * hidden + r * hidden + c];
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path = "bench_quantize.json";
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0)
            quick = true;
        else
            json_path = argv[i];
    }
    const int reps = quick ? 1 : 3;
    std::vector<Row> rows;

    const std::size_t R = quick ? 128 : 512, C = 4096;
    const std::vector<float> w = bench::normal_floats(R * C, 2026);
    measure_all(rows, "N(0,1) " + std::to_string(R) + "x4096", w, R, C, reps);

    std::vector<float> gate_up, down_t;
    std::size_t dim = 0, hidden = 0;
    const std::string model = std::string(SPARSEINFER_DATA_DIR) + "/stories260K.bin";
    if (load_ffn_weights(model, gate_up, dim, down_t, hidden)) {
        measure_all(rows, "stories260K gate+up", gate_up, gate_up.size() / dim, dim, reps);
        // Down transposed: rows of `dim` values, as the sparse layer stores it.
        measure_all(rows, "stories260K down^T", down_t, down_t.size() / dim, dim, reps);
    } else {
        std::printf("(%s absent: real-weight rows skipped)\n", model.c_str());
    }

    const std::string machine = bench::machine_name();
    std::printf("machine: %s, one thread, groups of 32\n\n", machine.c_str());
    std::printf("| data | bits | method | bits/weight | rel. RMSE | quantize MB/s | dequantize MB/s |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (const Row& r : rows)
        std::printf("| %s | %d | %s | %.3f | %.4f | %.1f | %.0f |\n", r.data.c_str(), r.bits, r.method.c_str(), r.bpw,
                    r.rmse, r.quant_mbs, r.dequant_mbs);

    bench::Json json;
    json.begin_benchmark("bench_quantize");
    json.object_array("results", rows, [](bench::Json& o, const Row& r) {
        o.field("data", r.data);
        o.field("bits", r.bits);
        o.field("method", r.method);
        o.field("bits_per_weight", r.bpw);
        o.field("relative_rmse", r.rmse);
        o.field("quantize_mb_per_s", r.quant_mbs);
        o.field("dequantize_mb_per_s", r.dequant_mbs);
    });
    json.end_object();
    if (!json.write(json_path)) return 1;
    std::printf("\nwrote %s\n", json_path.c_str());
    return 0;
}
