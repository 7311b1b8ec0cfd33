// bench_view: opening a 4-bit 4096 x 11008 matrix through QuantizedWeightsView
// from a mapped file, and the kernels on the view against an owned matrix.
//
// Shape: rows = 4096, cols = 11008 (LLaMA-7B's down projection as stored, one
// row per output: gemv reads all 11008 inputs per row). Weights are N(0,1),
// quantized with QuantMethod::min_max (the file format and the kernels do not
// depend on the method; min_max keeps the setup short).
//
//   bench_view [out.json] [file path]      (defaults: bench_view.json, a temp file)
//
// Prints a table and writes JSON. Times are medians; the view/owned ratios
// come from interleaved runs in one process (order rotated every repetition).
#include <sparseinfer/detail/checksum.hpp>
#include <sparseinfer/mapped_file.hpp>
#include <sparseinfer/quantized_activations.hpp>
#include <sparseinfer/quantized_weights.hpp>
#include <sparseinfer/quantized_weights_view.hpp>
#include "bench_util.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace si = sparseinfer;
using clock_type = std::chrono::steady_clock;

namespace {

using bench::median;
using bench::seconds_since;

struct Row {
    std::string name;
    double owned_ms = 0, view_ms = 0, unaligned_ms = 0;  // medians
    double owned_min_ms = 0, view_min_ms = 0, unaligned_min_ms = 0;
    double view_ratio = 0, unaligned_ratio = 0;  // medians of per-repetition ratios to owned
};

double min_of(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

double median_ratio(const std::vector<double>& num, const std::vector<double>& den) {
    std::vector<double> r(num.size());
    for (std::size_t i = 0; i < num.size(); ++i) r[i] = num[i] / den[i];
    return median(r);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string json_path = argc > 1 ? argv[1] : "bench_view.json";
    const std::string file_path =
        argc > 2 ? argv[2] : (std::filesystem::temp_directory_path() / "sparseinfer_bench_view.siqw").string();
    const std::size_t rows = 4096, cols = 11008;

    std::printf("bench_view: %zu x %zu, 4-bit, groups of 32, min_max quantization\n", rows, cols);
    std::vector<float> w = bench::normal_floats(rows * cols, 42);
    const auto owned = si::QuantizedWeights<4>::from_f32(w.data(), rows, cols, {32, si::QuantMethod::min_max});
    w.clear();
    w.shrink_to_fit();
    owned.save(file_path);
    const double file_mb = static_cast<double>(owned.memory_bytes() + 64) / 1e6;
    const double bw = bench::probe_bandwidth(std::size_t{512} << 20, 5).wall_gbps;  // as bench_kernels, by wall clock

    // Opening: map + from_bytes without the checksum pass, on a fresh mapping each time.
    const int open_reps = 51;
    std::vector<double> t_map, t_structure, t_full_cold, t_checksum_warm;
    for (int rep = 0; rep < open_reps; ++rep) {
        auto t0 = clock_type::now();
        si::MappedFile file(file_path);
        t_map.push_back(seconds_since(t0));
        t0 = clock_type::now();
        const auto v = si::QuantizedWeightsView<4>::from_bytes(file.data(), file.size(), si::Verify::structure);
        t_structure.push_back(seconds_since(t0));
        if (v.rows() != rows) return 1;
    }
    for (int rep = 0; rep < 7; ++rep) {
        si::MappedFile file(file_path);
        auto t0 = clock_type::now();  // full check on a fresh mapping: includes the page faults
        (void)si::QuantizedWeightsView<4>::from_bytes(file.data(), file.size(), si::Verify::full);
        t_full_cold.push_back(seconds_since(t0));
        t0 = clock_type::now();  // the checksum pass alone, pages now mapped
        volatile std::uint64_t c = si::detail::Checksum64::of(file.data(), file.size());
        (void)c;
        t_checksum_warm.push_back(seconds_since(t0));
    }

    // Kernels: owned vs mapped view vs a view at an odd address (copy at offset 1).
    si::MappedFile file(file_path);
    const auto view = si::QuantizedWeightsView<4>::from_bytes(file.data(), file.size());
    std::vector<std::uint8_t> odd(file.size() + 1);
    std::memcpy(odd.data() + 1, file.data(), file.size());
    const auto unaligned = si::QuantizedWeightsView<4>::from_bytes(odd.data() + 1, file.size());

    const std::vector<float> x = bench::normal_floats(cols, 7);
    std::vector<float> y(rows);
    const auto xq = si::quantize_activations(x.data(), cols);
    std::vector<std::uint32_t> active(rows);
    for (std::size_t i = 0; i < rows; ++i) active[i] = static_cast<std::uint32_t>(i);
    std::shuffle(active.begin(), active.end(), std::mt19937(3));
    active.resize(rows / 10);
    std::sort(active.begin(), active.end());

    std::vector<Row> results;
    auto measure = [&](const char* name, auto&& run_owned, auto&& run_view, auto&& run_unaligned) {
        const int reps = 21;
        std::vector<double> t[3];
        auto run = [&](int which) {
            const auto t0 = clock_type::now();
            if (which == 0) run_owned();
            if (which == 1) run_view();
            if (which == 2) run_unaligned();
            return seconds_since(t0);
        };
        for (int which = 0; which < 3; ++which) run(which);  // warm up: pages mapped, caches filled
        // Rotate the order each repetition so no variant always follows the same one.
        for (int rep = 0; rep < reps; ++rep)
            for (int k = 0; k < 3; ++k) {
                const int which = (rep + k) % 3;
                t[which].push_back(run(which));
            }
        const auto& a = t[0];
        const auto& b = t[1];
        const auto& c = t[2];
        results.push_back({name, median(a) * 1e3, median(b) * 1e3, median(c) * 1e3, min_of(a) * 1e3, min_of(b) * 1e3,
                           min_of(c) * 1e3, median_ratio(b, a), median_ratio(c, a)});
    };
    measure(
        "gemv (float x)", [&] { owned.gemv(x.data(), y.data()); }, [&] { view.gemv(x.data(), y.data()); },
        [&] { unaligned.gemv(x.data(), y.data()); });
    measure(
        "gemv_rows 10% (float x)", [&] { owned.gemv_rows(active.data(), active.size(), x.data(), y.data()); },
        [&] { view.gemv_rows(active.data(), active.size(), x.data(), y.data()); },
        [&] { unaligned.gemv_rows(active.data(), active.size(), x.data(), y.data()); });
    measure(
        "gemv (int8 x)", [&] { owned.gemv(xq, y.data()); }, [&] { view.gemv(xq, y.data()); },
        [&] { unaligned.gemv(xq, y.data()); });
    measure(
        "gemv_rows 10% (int8 x)", [&] { owned.gemv_rows(active.data(), active.size(), xq, y.data()); },
        [&] { view.gemv_rows(active.data(), active.size(), xq, y.data()); },
        [&] { unaligned.gemv_rows(active.data(), active.size(), xq, y.data()); });

    const double map_us = median(t_map) * 1e6, structure_us = median(t_structure) * 1e6;
    const double full_ms = median(t_full_cold) * 1e3, checksum_ms = median(t_checksum_warm) * 1e3;
    std::printf("kernel path: %s; read bandwidth probe: %.1f GB/s; file %.1f MB\n\n", si::active_isa(), bw, file_mb);
    std::printf("%-44s %12s\n", "open (median)", "time");
    std::printf("%-44s %9.1f us\n", "mmap (MappedFile)", map_us);
    std::printf("%-44s %9.1f us\n", "from_bytes, Verify::structure", structure_us);
    std::printf("%-44s %9.2f ms  (%.1f GB/s)\n", "checksum pass alone, pages mapped", checksum_ms,
                file_mb / 1e3 / (checksum_ms / 1e3));
    std::printf("%-44s %9.2f ms\n\n", "from_bytes, Verify::full, fresh mapping", full_ms);
    std::printf("kernel: median ms (min ms); ratio = median over repetitions of time / owned time\n");
    std::printf("%-24s %18s %18s %9s %18s %9s\n", "kernel", "owned", "view", "view/own", "unaligned view", "unal/own");
    for (const auto& r : results)
        std::printf("%-24s %8.3f (%7.3f) %8.3f (%7.3f) %9.3f %8.3f (%7.3f) %9.3f\n", r.name.c_str(), r.owned_ms,
                    r.owned_min_ms, r.view_ms, r.view_min_ms, r.view_ratio, r.unaligned_ms, r.unaligned_min_ms,
                    r.unaligned_ratio);

    bench::Json json;
    json.begin_object();
    json.field("machine", bench::machine_name());
    json.field("rows", rows);
    json.field("cols", cols);
    json.field("bits", 4);
    json.field("group_size", 32);
    json.field("kernel_path", si::active_isa());
    json.field("read_bandwidth_gbs", bw);
    json.field("file_mb", file_mb);
    json.key("open");
    json.begin_object();
    json.field("mmap_us", map_us);
    json.field("from_bytes_structure_us", structure_us);
    json.field("checksum_pass_ms", checksum_ms);
    json.field("from_bytes_full_fresh_mapping_ms", full_ms);
    json.end_object();
    json.object_array("kernels", results, [](bench::Json& o, const Row& r) {
        o.field("name", r.name);
        o.field("owned_ms", r.owned_ms);
        o.field("view_ms", r.view_ms);
        o.field("unaligned_ms", r.unaligned_ms);
        o.field("owned_min_ms", r.owned_min_ms);
        o.field("view_min_ms", r.view_min_ms);
        o.field("unaligned_min_ms", r.unaligned_min_ms);
        o.field("view_over_owned", r.view_ratio);
        o.field("unaligned_over_owned", r.unaligned_ratio);
    });
    json.end_object();
    const bool written = json.write(json_path);
    if (written) std::printf("\nwrote %s\n", json_path.c_str());
    if (argc <= 2) std::remove(file_path.c_str());
    return written ? 0 : 1;
}
