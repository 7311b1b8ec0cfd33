// bench_row_reads - how fast one thread can read a random subset of quantized
// rows at all, with no kernel work: the ceiling that gemv_rows and axpy_rows
// on scattered rows are measured against.
//
// Usage: bench_row_reads [--quick] [out.json]   (default out: bench_row_reads.json)
//
// On the LLaMA-7B FFN shape (11008 rows of 4096 values) at 4 and 8 bits, row
// sizes from the library's row layout (groups of 32), and 5/10/25/50% random
// distinct rows in ascending order, it sums every byte of the selected rows
// for each way of reading them below and reports GB/s of row bytes and the
// ratio to the read-bandwidth probe (a sequential sum of a buffer 16x the LLC):
//  - `interleave` G: G rows read together line by line (G streams in flight);
//  - `ahead` D: while reading a group, prefetch the group D groups later, one
//    line per line read (so the prefetches keep pace with the reads);
//  - `hint`: the prefetch's locality (t0 = all levels, nta = non-temporal).
// The weights are copied enough times to rotate past the LLC, on huge pages as
// QuantizedWeights stores them, and a 64 MiB buffer is read before each timed
// call. Each figure is the median of the calls' thread CPU times. The table
// ends with the best way per fraction: what no scattered-row kernel on this
// machine can beat.
#include <sparseinfer/detail/aligned_allocator.hpp>
#include <sparseinfer/detail/row_format.hpp>
#include "bench_util.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using Lanes = std::uint64_t __attribute__((vector_size(64)));
using Bytes = std::vector<std::uint8_t, sparseinfer::detail::AlignedAllocator<std::uint8_t>>;

__attribute__((always_inline)) inline void add_line(Lanes& sum, const std::uint8_t* p) {
    Lanes v;
    std::memcpy(&v, p, sizeof v);  // an unaligned 64-byte load
    sum += v;
}

/// Sum of every byte of rows[0..n) (each `bytes` long, at least 64), G rows at
/// a time line by line, prefetching the rows `ahead` groups later with
/// locality Locality (3 = T0 ... 0 = NTA) as it goes. ahead == 0: no prefetch.
template <int G, int Locality>
__attribute__((always_inline)) inline std::uint64_t read_rows_body(const std::uint8_t* base, const std::uint32_t* rows,
                                                                   std::size_t n, std::size_t stride, std::size_t bytes,
                                                                   std::size_t ahead) {
    Lanes sum[G] = {};
    const std::size_t body = bytes / 64 * 64;
    std::size_t i = 0;
    for (; i + G <= n; i += G) {
        const std::uint8_t* r[G];
        const std::uint8_t* next[G];
        for (int g = 0; g < G; ++g) {
            r[g] = base + rows[i + g] * stride;
            const std::size_t j = i + g + ahead * G;
            next[g] = ahead != 0 && j < n ? base + rows[j] * stride : nullptr;
        }
        for (std::size_t o = 0; o < body; o += 64)
            for (int g = 0; g < G; ++g) {
                if (next[g]) __builtin_prefetch(next[g] + o, 0, Locality);
                add_line(sum[g], r[g] + o);
            }
        for (int g = 0; g < G; ++g)
            if (body < bytes) {
                if (next[g]) __builtin_prefetch(next[g] + bytes - 1, 0, Locality);
                add_line(sum[g], r[g] + bytes - 64);  // the tail: one overlapping load
            }
    }
    for (; i < n; ++i) {
        const std::uint8_t* r = base + rows[i] * stride;
        for (std::size_t o = 0; o < body; o += 64) add_line(sum[0], r + o);
        if (body < bytes) add_line(sum[0], r + bytes - 64);
    }
    for (int g = 1; g < G; ++g) sum[0] += sum[g];
    std::uint64_t total = 0;
    for (int k = 0; k < 8; ++k) total += sum[0][k];
    return total;
}

/// read_rows_body compiled for AVX-512 (64-byte loads, as the kernels read) and
/// for the baseline: with 16-byte loads the narrow ways become instruction bound.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
template <int G, int Locality>
__attribute__((target("avx512f"))) std::uint64_t read_rows_avx512(const std::uint8_t* base, const std::uint32_t* rows,
                                                                  std::size_t n, std::size_t stride, std::size_t bytes,
                                                                  std::size_t ahead) {
    return read_rows_body<G, Locality>(base, rows, n, stride, bytes, ahead);
}
#endif
template <int G, int Locality>
std::uint64_t read_rows(const std::uint8_t* base, const std::uint32_t* rows, std::size_t n, std::size_t stride,
                        std::size_t bytes, std::size_t ahead) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    if (avx512) return read_rows_avx512<G, Locality>(base, rows, n, stride, bytes, ahead);
#endif
    return read_rows_body<G, Locality>(base, rows, n, stride, bytes, ahead);
}

using ReadFn = std::uint64_t (*)(const std::uint8_t*, const std::uint32_t*, std::size_t, std::size_t, std::size_t,
                                 std::size_t);

struct Way {
    int interleave;
    const char* hint;
    std::size_t ahead;
    ReadFn fn;
};

std::vector<Way> ways() {
    std::vector<Way> w = {{1, "-", 0, read_rows<1, 3>}, {2, "-", 0, read_rows<2, 3>}, {4, "-", 0, read_rows<4, 3>}};
    for (std::size_t d : {1, 2, 4, 8}) {
        w.push_back({1, "t0", d, read_rows<1, 3>});
        w.push_back({2, "t0", d, read_rows<2, 3>});
        w.push_back({4, "t0", d, read_rows<4, 3>});
        w.push_back({2, "nta", d, read_rows<2, 0>});
    }
    return w;
}

struct Result {
    int bits;
    double fraction;
    Way way;
    double ms, gbps, ratio;
};

}  // namespace

int main(int argc, char** argv) {
    bool quick = false;
    std::string json_path = "bench_row_reads.json";
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0)
            quick = true;
        else
            json_path = argv[i];
    }
    const std::size_t rows = 11008, cols = 4096, llc = 32u << 20;
    const int reps = quick ? 9 : 21;
    const bench::Probe probe = bench::probe_bandwidth(quick ? (256u << 20) : (512u << 20), 5);
    std::printf("%s\nread bandwidth probe: %.1f GB/s (thread CPU time)\n\n", bench::machine_name().c_str(),
                probe.cpu_gbps);
    std::printf("%4s %6s %10s %5s %5s %9s %8s %8s\n", "bits", "rows", "interleave", "hint", "ahead", "ms", "GB/s",
                "/probe");
    Bytes flush(64u << 20, 1);
    std::vector<Result> results, best;
    std::mt19937 rng(42);
    for (int bits : {4, 8}) {
        const auto layout = sparseinfer::detail::make_row_layout(bits, cols, 32);
        const std::size_t matrix = rows * layout.row_stride;
        const std::size_t copies = std::max<std::size_t>(2, (4 * llc + matrix - 1) / matrix);
        Bytes w(copies * matrix);
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<std::uint8_t>(i * 131 >> 7);
        for (double frac : {0.05, 0.10, 0.25, 0.50}) {
            const std::size_t k = static_cast<std::size_t>(frac * static_cast<double>(rows));
            const std::vector<std::uint32_t> sel = bench::random_rows(rows, k, rng);
            Result top{};
            for (const Way& way : ways()) {
                std::vector<double> t;
                volatile std::uint64_t sink = 0;
                for (int r = 0; r < reps; ++r) {
                    sink = sink +
                           bench::sum_buffer(reinterpret_cast<const std::uint64_t*>(flush.data()), flush.size() / 8);
                    const std::uint8_t* base = w.data() + static_cast<std::size_t>(r) % copies * matrix;
                    const double t0 = bench::thread_seconds();
                    sink = sink + way.fn(base, sel.data(), k, layout.row_stride, layout.row_bytes, way.ahead);
                    t.push_back(bench::thread_seconds() - t0);
                }
                const double s = bench::median(t), gbps = static_cast<double>(k * layout.row_bytes) / s / 1e9;
                const Result res{bits, frac, way, s * 1e3, gbps, gbps / probe.cpu_gbps};
                results.push_back(res);
                if (res.gbps > top.gbps) top = res;
                std::printf("%4d %5.0f%% %10d %5s %5zu %9.4f %8.1f %8.3f\n", bits, frac * 100, way.interleave, way.hint,
                            way.ahead, res.ms, res.gbps, res.ratio);
            }
            best.push_back(top);
        }
    }
    std::printf("\nbest way per fraction (the scattered-row ceiling of this machine):\n");
    std::printf("%4s %6s %10s %5s %5s %8s %8s\n", "bits", "rows", "interleave", "hint", "ahead", "GB/s", "/probe");
    for (const Result& r : best)
        std::printf("%4d %5.0f%% %10d %5s %5zu %8.1f %8.3f\n", r.bits, r.fraction * 100, r.way.interleave, r.way.hint,
                    r.way.ahead, r.gbps, r.ratio);

    bench::Json json;
    json.begin_benchmark("bench_row_reads");
    json.field("timing", "median of thread CPU times; 64 MiB read before each call");
    json.field("probe_gbps", probe.cpu_gbps);
    auto fields = [](bench::Json& o, const Result& r) {
        o.field("bits", r.bits);
        o.field("fraction", r.fraction);
        o.field("interleave", r.way.interleave);
        o.field("hint", r.way.hint);
        o.field("ahead", r.way.ahead);
        o.field("ms", r.ms);
        o.field("gbps", r.gbps);
        o.field("ratio_to_probe", r.ratio);
    };
    json.object_array("results", results, fields);
    json.object_array("best", best, fields);
    json.end_object();
    if (!json.write(json_path)) return 1;
    std::printf("wrote %s\n", json_path.c_str());
    return 0;
}
