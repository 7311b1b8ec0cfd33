// bench_model_file: opening a model file (model_file.hpp) of one layer's three
// 4-bit 11008 x 4096 matrices with full verification, against one vector read
// of the same bytes, in the same run.
//
// Both are timed on a fresh mapping of the file (page-cache resident after the
// first write), so both pay the same page faults: "open" is MappedFile +
// TensorFile::from_bytes(Verify::full: every checksum and row) + the layer from
// views (ffn_layer_from); "read" is MappedFile + one pass of vector loads over
// every byte (bench_util's sum_buffer). The same two on a mapping already
// faulted in are printed too. Bar: open <= 2 x read.
//
//   bench_model_file [out.json] [file path]      (defaults: bench_model_file.json, a temp file)
#include <sparseinfer/mapped_file.hpp>
#include <sparseinfer/model_file.hpp>
#include "bench_util.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace si = sparseinfer;

namespace {

std::uint64_t read_all(const si::MappedFile& f) {
    // The mapping starts page aligned; the tail below 8 bytes is not read (at most 7 of ~76 MB).
    return bench::sum_buffer(reinterpret_cast<const std::uint64_t*>(f.data()), f.size() / 8);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string json_path = argc > 1 ? argv[1] : "bench_model_file.json";
    const std::string path =
        argc > 2 ? argv[2] : (std::filesystem::temp_directory_path() / "sparseinfer_bench_model.sitf").string();
    const std::size_t d = 4096, h = 11008;
    const int reps = 9;
    std::printf("bench_model_file: one layer, 3 x %zu x %zu 4-bit (groups of 32)\n", h, d);
    {
        using W = si::QuantizedWeights<4>;
        const si::QuantOptions opts{32, si::QuantMethod::min_max};
        std::vector<W> m;
        for (std::uint32_t s = 1; s <= 3; ++s) {
            const std::vector<float> f = bench::normal_floats(h * d, s);
            m.push_back(W::from_f32(f.data(), h, d, opts));
        }
        auto layer = si::SparseFfn<4>::from_views(m[0].view(), m[1].view(), m[2].view(), si::Activation::silu);
        si::TensorFileWriter out;
        si::add_ffn_layer(out, 0, layer);
        out.write(path);
    }
    const double mb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;

    volatile std::uint64_t sink = 0;
    std::vector<double> open_cold, read_cold, open_warm, read_warm, ratio_cold, ratio_warm;
    for (int r = -1; r < reps; ++r) {  // r = -1: warm-up
        double t0 = bench::wall_seconds();
        {
            si::MappedFile f(path);
            sink = sink + read_all(f);
        }
        const double rc = bench::wall_seconds() - t0;
        t0 = bench::wall_seconds();
        si::MappedFile f(path);
        const auto tf = si::TensorFile::from_bytes(f.data(), f.size(), si::Verify::full);
        auto layer = si::ffn_layer_from<4>(tf, 0, si::Activation::silu);
        const double oc = bench::wall_seconds() - t0;
        sink = sink + layer.hidden();
        // The same mapping, now faulted in.
        t0 = bench::wall_seconds();
        sink = sink + read_all(f);
        const double rw = bench::wall_seconds() - t0;
        t0 = bench::wall_seconds();
        const auto tf2 = si::TensorFile::from_bytes(f.data(), f.size(), si::Verify::full);
        auto layer2 = si::ffn_layer_from<4>(tf2, 0, si::Activation::silu);
        const double ow = bench::wall_seconds() - t0;
        sink = sink + layer2.hidden();
        if (r < 0) continue;
        open_cold.push_back(oc * 1e3);
        read_cold.push_back(rc * 1e3);
        open_warm.push_back(ow * 1e3);
        read_warm.push_back(rw * 1e3);
        ratio_cold.push_back(oc / rc);
        ratio_warm.push_back(ow / rw);
    }
    std::filesystem::remove(path);
    const double rc = bench::median(ratio_cold), rw = bench::median(ratio_warm);
    std::printf("file %.1f MB; medians of %d repetitions\n\n", mb, reps);
    std::printf("%-36s %10s %10s %8s\n", "", "open+check", "read", "ratio");
    std::printf("%-36s %7.2f ms %7.2f ms %8.2f  (bar <= 2)\n", "fresh mapping (page faults included)",
                bench::median(open_cold), bench::median(read_cold), rc);
    std::printf("%-36s %7.2f ms %7.2f ms %8.2f\n", "mapping already faulted in", bench::median(open_warm),
                bench::median(read_warm), rw);

    bench::Json json;
    json.begin_benchmark("bench_model_file");
    json.field("file_mb", mb);
    json.field("repetitions", reps);
    json.field("open_fresh_ms", bench::median(open_cold));
    json.field("read_fresh_ms", bench::median(read_cold));
    json.field("open_over_read_fresh", rc);
    json.field("open_warm_ms", bench::median(open_warm));
    json.field("read_warm_ms", bench::median(read_warm));
    json.field("open_over_read_warm", rw);
    json.end_object();
    const bool written = json.write(json_path);
    if (written) std::printf("wrote %s\n", json_path.c_str());
    return written ? 0 : 1;
}
