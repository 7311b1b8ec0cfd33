// bench_kernels - single-thread speed of the quantized-row kernels against the
// machine's read bandwidth and Eigen's float GEMV.
//
// Usage: bench_kernels [--quick] [--no-flush] [--bits=48] [out.json]
//        (default out: bench_kernels.json)
//        SPARSEINFER_ISA=avx2 bench_kernels      (force a lower kernel path)
//
// What it measures, one thread, in one process:
//  - the reference: the better of a read bandwidth probe (sum of a buffer of
//    max(512 MiB, 4x the LLC read from sysfs), best of 5, with AVX-512 loads
//    where the CPU has them: a scalar sum under-reads) and Eigen's float GEMV
//    on the same shape compiled with native flags (bench/eigen_native.cpp);
//    every kernel is reported as a share of it;
//  - on 11008 x 4096 matrices (LLaMA-7B FFN) per Bits {2,3,4,8}, with enough
//    copies rotated that the bytes touched between two visits of a copy exceed
//    the LLC: dense gemv, gemv_rows at 5/10/25/50% random distinct rows (sorted
//    ascending), both activation paths (float, int8), and axpy_rows at the same
//    fractions; effective bandwidth = rows touched * row_bytes / time, and its
//    ratio to the reference;
//  - read_rows: a sum over the same selected rows' bytes with no kernel work,
//    AVX-512 (or AVX2) loads, 4 rows interleaved line by line as the kernels
//    read them: the ceiling this machine gives the scattered-row pattern;
//  - cache resident: 1024 x 1024, 4-bit, int8 activations, dense gemv, in cycles
//    per 32 weights, for every kernel path the CPU has (TSC cycles, and core
//    cycles from perf_event_open when the kernel allows it).
// Each figure is the median of several repetitions, timed both with the
// thread's CPU clock (CLOCK_THREAD_CPUTIME_ID: time slices lost to other
// processes on a shared machine do not count) and the wall clock (steady_clock);
// ratios compare like with like (the probe is timed both ways). Before every
// timed call a 64 MiB buffer is read to evict the LLC (--no-flush skips it and
// relies on the rotation of copies alone). The weight copies and the probe
// buffer are allocated with detail::AlignedAllocator, i.e. 2 MiB aligned with
// huge pages advised, as QuantizedWeights stores weights. Weights are quantized
// with min_max (the kernels' speed does not depend on how codes were fitted).
// --bits=48 runs only those widths (default 4,8,2,3).
#include <sparseinfer/kernels/dispatch.hpp>
#include <sparseinfer/quantized_weights.hpp>
#include "bench_util.hpp"
#include "eigen_native.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <time.h>

#if defined(__linux__)
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace sk = sparseinfer::kernels;
using Clock = std::chrono::steady_clock;

namespace {

using bench::median;
using bench::Probe;
using bench::probe_bandwidth;
using bench::thread_seconds;
using bench::wall_seconds;

/// Reads a buffer twice the LLC so the next timed call starts with a cold cache.
struct LlcFlush {
    std::vector<std::uint64_t> buf;
    explicit LlcFlush(std::size_t bytes) : buf(bytes / 8, 1) {}
    void operator()() {
        std::uint64_t s = 0;
        for (std::size_t i = 0; i < buf.size(); i += 8) s += buf[i];
        volatile std::uint64_t sink = s;
        (void)sink;
    }
};

std::uint64_t tsc() {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
#endif
}

/// Core-cycle counter via perf_event_open; unavailable (fd < 0) in many VMs.
struct CycleCounter {
    int fd = -1;
    CycleCounter() {
#if defined(__linux__)
        perf_event_attr attr{};
        attr.type = PERF_TYPE_HARDWARE;
        attr.size = sizeof attr;
        attr.config = PERF_COUNT_HW_CPU_CYCLES;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
#endif
    }
    ~CycleCounter() {
#if defined(__linux__)
        if (fd >= 0) close(fd);
#endif
    }
    std::uint64_t read_now() const {
        std::uint64_t v = 0;
#if defined(__linux__)
        if (fd >= 0 && ::read(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) v = 0;
#endif
        return v;
    }
};

/// Reads every byte of the selected rows (a sum, no kernel work) the way the
/// kernels do: 64-byte (AVX-512) or 32-byte (AVX2) loads, 4 rows interleaved
/// line by line so four rows' misses are in flight together. This is the
/// ceiling the memory system gives the scattered-row pattern for gemv_rows and
/// axpy_rows. Rows must be at least one vector long (the tail is one
/// overlapping load ending at the row's end).
///
/// One body for both widths, in GCC/Clang vector types rather than intrinsics:
/// intrinsics would need the target on the template itself, while this body
/// has none and takes the target of the function it is inlined into (there,
/// vpaddq on zmm or ymm with the load folded in, as the intrinsics gave). The
/// entry points fix the width and keep the per-ISA target attributes.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
using U64x8 = std::uint64_t __attribute__((vector_size(64)));
using U64x4 = std::uint64_t __attribute__((vector_size(32)));

template <class Lanes>
__attribute__((always_inline)) inline void add_lanes(Lanes& sum, const std::uint8_t* p) {
    Lanes v;
    std::memcpy(&v, p, sizeof v);  // an unaligned vector load
    sum += v;
}

template <class Lanes>
__attribute__((always_inline)) inline std::uint64_t read_rows_lanes(const std::uint8_t* base, const std::uint32_t* rows,
                                                                    std::size_t n, std::size_t stride,
                                                                    std::size_t bytes) {
    constexpr std::size_t width = sizeof(Lanes);
    Lanes s0{}, s1{}, s2{}, s3{};
    const std::size_t body = bytes / width * width;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const std::uint8_t *r0 = base + rows[i] * stride, *r1 = base + rows[i + 1] * stride,
                           *r2 = base + rows[i + 2] * stride, *r3 = base + rows[i + 3] * stride;
        for (std::size_t o = 0; o < body; o += width) {
            add_lanes(s0, r0 + o);
            add_lanes(s1, r1 + o);
            add_lanes(s2, r2 + o);
            add_lanes(s3, r3 + o);
        }
        if (body < bytes) {
            add_lanes(s0, r0 + bytes - width);
            add_lanes(s1, r1 + bytes - width);
            add_lanes(s2, r2 + bytes - width);
            add_lanes(s3, r3 + bytes - width);
        }
    }
    for (; i < n; ++i) {
        const std::uint8_t* r = base + rows[i] * stride;
        for (std::size_t o = 0; o < body; o += width) add_lanes(s0, r + o);
        if (body < bytes) add_lanes(s0, r + bytes - width);
    }
    s0 += s1;
    s2 += s3;
    s0 += s2;
    std::uint64_t total = 0;
    for (std::size_t k = 0; k < width / 8; ++k) total += s0[k];
    return total;
}

__attribute__((target("avx512f"))) std::uint64_t read_rows_avx512(const std::uint8_t* base, const std::uint32_t* rows,
                                                                  std::size_t n, std::size_t stride,
                                                                  std::size_t bytes) {
    return read_rows_lanes<U64x8>(base, rows, n, stride, bytes);
}

__attribute__((target("avx2"))) std::uint64_t read_rows_avx2(const std::uint8_t* base, const std::uint32_t* rows,
                                                             std::size_t n, std::size_t stride, std::size_t bytes) {
    return read_rows_lanes<U64x4>(base, rows, n, stride, bytes);
}
#endif

std::uint64_t read_rows(const std::uint8_t* base, const std::uint32_t* rows, std::size_t n, std::size_t stride,
                        std::size_t bytes) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
    if (avx512 && bytes >= 64) return read_rows_avx512(base, rows, n, stride, bytes);
    if (avx2 && bytes >= 32) return read_rows_avx2(base, rows, n, stride, bytes);
#endif
    std::uint64_t s0 = 0, s1 = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t* r = base + rows[i] * stride;
        for (std::size_t o = 0; o + 16 <= bytes; o += 16) {
            std::uint64_t a, b;
            std::memcpy(&a, r + o, 8);
            std::memcpy(&b, r + o + 8, 8);
            s0 += a;
            s1 += b;
        }
    }
    return s0 + s1;
}

struct Result {
    int bits;
    std::string op;   // gemv / gemv_rows / axpy_rows
    std::string act;  // f32 / int8
    double fraction;  // of rows touched
    double ms;        // median thread CPU time per call
    double gbps;      // effective bandwidth by CPU time
    double ratio;     // gbps / probe (both by CPU time)
    double wall_ms;   // the same by wall clock
    double wall_gbps;
    double wall_ratio;
};

struct Timing {
    double ms, gbps, wall_ms, wall_gbps;
};

template <int Bits>
void bench_bits(std::size_t rows, std::size_t cols, Probe probe, std::size_t llc_bytes, int reps, LlcFlush* flush,
                std::vector<Result>& out, double& dense4_f32_ms, double& dense4_q8_ms) {
    std::mt19937 rng(Bits);
    std::vector<float> w(rows * cols);
    {
        std::normal_distribution<float> nd;
        for (auto& v : w) v = nd(rng);
    }
    sparseinfer::QuantOptions opts;
    opts.method = sparseinfer::QuantMethod::min_max;
    const auto q = sparseinfer::QuantizedWeights<Bits>::from_f32(w.data(), rows, cols, opts);
    std::vector<float>().swap(w);
    const auto& l = q.layout();
    const std::size_t matrix_bytes = q.memory_bytes();
    // Enough copies that 4x the LLC passes between two visits of the same copy.
    const std::size_t copies = std::max<std::size_t>(2, (4 * llc_bytes + matrix_bytes - 1) / matrix_bytes);
    std::vector<std::uint8_t, sparseinfer::detail::AlignedAllocator<std::uint8_t>> bytes(copies * matrix_bytes);
    for (std::size_t c = 0; c < copies; ++c) std::memcpy(bytes.data() + c * matrix_bytes, q.data(), matrix_bytes);

    std::vector<float> x(cols), y(rows), a(rows);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    for (auto& v : a) v = nd(rng);
    const auto xq = sparseinfer::quantize_activations(x.data(), cols);
    std::vector<float> acc(cols, 0.0f);

    std::size_t next = 0;
    auto run = [&](auto&& call, std::size_t touched_rows) {
        // Warm the code paths once, then time `reps` calls (whole sweeps through copies).
        call(bytes.data() + (next++ % copies) * matrix_bytes);
        const std::size_t calls = std::max<std::size_t>(static_cast<std::size_t>(reps), copies);
        std::vector<double> t, tw;
        for (std::size_t i = 0; i < calls; ++i) {
            const std::uint8_t* base = bytes.data() + (next++ % copies) * matrix_bytes;
            if (flush) (*flush)();
            const double w0 = wall_seconds(), t0 = thread_seconds();
            call(base);
            const double t1 = thread_seconds(), w1 = wall_seconds();
            t.push_back(t1 - t0);
            tw.push_back(w1 - w0);
        }
        const double s = median(t), sw = median(tw);
        const double touched = static_cast<double>(touched_rows * l.row_bytes);
        return Timing{s * 1e3, touched / s / 1e9, sw * 1e3, touched / sw / 1e9};
    };
    auto add = [&](const char* op, const char* act, double frac, Timing r) {
        out.push_back({Bits, op, act, frac, r.ms, r.gbps, r.gbps / probe.cpu_gbps, r.wall_ms, r.wall_gbps,
                       r.wall_gbps / probe.wall_gbps});
        std::printf("  %d-bit %-9s %-4s %5.0f%%  cpu %8.3f ms %6.1f GB/s %5.2f | wall %8.3f ms %6.1f GB/s %5.2f\n",
                    Bits, op, act, frac * 100, r.ms, r.gbps, r.gbps / probe.cpu_gbps, r.wall_ms, r.wall_gbps,
                    r.wall_gbps / probe.wall_gbps);
        std::fflush(stdout);
    };

    auto r = run([&](const std::uint8_t* b) { sk::gemv_rows(l, b, nullptr, rows, x.data(), y.data()); }, rows);
    add("gemv", "f32", 1.0, r);
    if (Bits == 4) dense4_f32_ms = r.ms;
    r = run([&](const std::uint8_t* b) { sk::gemv_rows(l, b, nullptr, rows, xq, y.data()); }, rows);
    add("gemv", "int8", 1.0, r);
    if (Bits == 4) dense4_q8_ms = r.ms;

    for (double frac : {0.05, 0.10, 0.25, 0.50}) {
        const std::size_t k = static_cast<std::size_t>(frac * static_cast<double>(rows));
        const std::vector<std::uint32_t> sel = bench::random_rows(rows, k, rng);
        volatile std::uint64_t sink = 0;
        add("read_rows", "-", frac,
            run([&](const std::uint8_t* b) { sink = sink + read_rows(b, sel.data(), k, l.row_stride, l.row_bytes); },
                k));
        add("gemv_rows", "f32", frac,
            run([&](const std::uint8_t* b) { sk::gemv_rows(l, b, sel.data(), k, x.data(), y.data()); }, k));
        add("gemv_rows", "int8", frac,
            run([&](const std::uint8_t* b) { sk::gemv_rows(l, b, sel.data(), k, xq, y.data()); }, k));
        add("axpy_rows", "f32", frac,
            run([&](const std::uint8_t* b) { sk::axpy_rows(l, b, sel.data(), k, a.data(), acc.data()); }, k));
    }
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false, use_flush = true;
    std::string json_path = "bench_kernels.json", bits = "4,8,2,3";
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (std::strcmp(argv[i], "--no-flush") == 0)
            use_flush = false;
        else if (std::strncmp(argv[i], "--bits=", 7) == 0)
            bits = argv[i] + 7;
        else
            json_path = argv[i];
    }
    try {
        sk::init_kernels();
    } catch (const sparseinfer::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    const std::size_t rows = 11008, cols = 4096;
    const std::size_t llc = bench::llc_bytes();  // rotation and flush are sized from it
    const int reps = quick ? 5 : 15;

    std::printf("kernel path: %s; last-level cache %zu MiB\n", sparseinfer::active_isa(), llc >> 20);
    const Probe read_probe = probe_bandwidth(std::max<std::size_t>(quick ? (256u << 20) : (512u << 20), 4 * llc), 5);
    LlcFlush flush_buf(use_flush ? 2 * llc : 0);
    LlcFlush* flush = use_flush ? &flush_buf : nullptr;

    // Eigen float GEMV on the same shape (180 MB), native flags, timed both ways.
    double eigen_ms = 0, eigen_wall_ms = 0;
    {
        const std::vector<float> w = bench::normal_floats(rows * cols, 3), xv = bench::normal_floats(cols, 4);
        std::vector<float> yv(rows);
        bench::eigen_gemv(w.data(), rows, cols, xv.data(), yv.data());
        std::vector<double> t, tw;
        for (int i = 0; i < (quick ? 5 : 9); ++i) {
            if (flush) (*flush)();
            const double t0 = thread_seconds(), w0 = wall_seconds();
            bench::eigen_gemv(w.data(), rows, cols, xv.data(), yv.data());
            t.push_back(thread_seconds() - t0);
            tw.push_back(wall_seconds() - w0);
        }
        eigen_ms = median(t) * 1e3;
        eigen_wall_ms = median(tw) * 1e3;
    }
    const double eigen_gbps = static_cast<double>(rows * cols * 4) / eigen_ms / 1e6;
    const double eigen_wall_gbps = static_cast<double>(rows * cols * 4) / eigen_wall_ms / 1e6;
    const Probe probe{std::max(read_probe.cpu_gbps, eigen_gbps), std::max(read_probe.wall_gbps, eigen_wall_gbps)};
    std::printf(
        "read probe: cpu %.1f GB/s, wall %.1f GB/s; Eigen float GEMV (%s flags) %.3f ms: cpu %.1f GB/s, "
        "wall %.1f GB/s\n",
        read_probe.cpu_gbps, read_probe.wall_gbps, bench::eigen_is_native() ? "native" : "generic", eigen_ms,
        eigen_gbps, eigen_wall_gbps);
    std::printf("reference (the better of the two): cpu %.1f GB/s, wall %.1f GB/s; LLC flush before each call: %s\n",
                probe.cpu_gbps, probe.wall_gbps, use_flush ? "yes" : "no");

    std::vector<Result> results;
    double d4f = 0, d4q = 0;
    for (char b : bits) {
        if (b == '4') bench_bits<4>(rows, cols, probe, llc, reps, flush, results, d4f, d4q);
        if (b == '8') bench_bits<8>(rows, cols, probe, llc, reps, flush, results, d4f, d4q);
        if (b == '2') bench_bits<2>(rows, cols, probe, llc, reps, flush, results, d4f, d4q);
        if (b == '3') bench_bits<3>(rows, cols, probe, llc, reps, flush, results, d4f, d4q);
    }
    if (d4q > 0)
        std::printf("4-bit gemv against Eigen's float GEMV: int8 %.2fx, f32 %.2fx faster\n", eigen_ms / d4q,
                    eigen_ms / d4f);

    // Cache resident: 1024 x 1024, 4-bit, int8 activations, every path.
    struct Resident {
        std::string isa;
        double tsc_per32, core_per32;
    };
    std::vector<Resident> resident;
    {
        const std::size_t n = 1024;
        std::mt19937 rng(1);
        std::normal_distribution<float> nd;
        std::vector<float> w(n * n), x(n), y(n);
        for (auto& v : w) v = nd(rng);
        for (auto& v : x) v = nd(rng);
        sparseinfer::QuantOptions opts;
        opts.method = sparseinfer::QuantMethod::min_max;
        const auto q = sparseinfer::QuantizedWeights<4>::from_f32(w.data(), n, n, opts);
        const auto xq = sparseinfer::quantize_activations(x.data(), n);
        CycleCounter cc;
        for (auto isa : sk::supported_isas()) {
            const auto& t = sk::table_for(isa, 4);
            for (int i = 0; i < 20; ++i)
                t.gemv_rows_q8(q.layout(), q.data(), nullptr, n, xq.values.data(), xq.scales.data(), xq.sums.data(),
                               y.data());
            std::vector<double> ts, cs;
            const double per = static_cast<double>(n * n / 32);
            for (int r = 0; r < (quick ? 21 : 101); ++r) {
                const std::uint64_t c0 = cc.read_now(), t0 = tsc();
                t.gemv_rows_q8(q.layout(), q.data(), nullptr, n, xq.values.data(), xq.scales.data(), xq.sums.data(),
                               y.data());
                const std::uint64_t t1 = tsc(), c1 = cc.read_now();
                ts.push_back(static_cast<double>(t1 - t0) / per);
                cs.push_back(static_cast<double>(c1 - c0) / per);
            }
            resident.push_back({sparseinfer::isa_name(isa), median(ts), cc.fd >= 0 ? median(cs) : -1});
            if (cc.fd >= 0)
                std::printf(
                    "cache resident 1024x1024 4-bit x int8, %-12s %.2f TSC cycles, %.2f core cycles per 32 weights\n",
                    sparseinfer::isa_name(isa), median(ts), median(cs));
            else
                std::printf(
                    "cache resident 1024x1024 4-bit x int8, %-12s %.2f TSC cycles per 32 weights (core cycles "
                    "unavailable)\n",
                    sparseinfer::isa_name(isa), median(ts));
        }
    }

    bench::Json json;
    json.begin_object();
    json.field("machine", bench::machine_name());
    json.field("isa", sparseinfer::active_isa());
    json.field("quick", quick);
    json.field("rows", rows);
    json.field("cols", cols);
    json.field("llc_flush", use_flush);
    json.field("timing",
               "median; ms/gbps/ratio_to_probe by thread CPU time, wall_* by steady_clock; probe_gbps is the "
               "reference: the better of read_probe_gbps and eigen_gemv_gbps");
    json.field("probe_gbps", probe.cpu_gbps);
    json.field("probe_wall_gbps", probe.wall_gbps);
    json.field("read_probe_gbps", read_probe.cpu_gbps);
    json.field("read_probe_wall_gbps", read_probe.wall_gbps);
    json.field("eigen_native", bench::eigen_is_native());
    json.field("eigen_gemv_gbps", eigen_gbps);
    json.field("llc_bytes", llc);
    json.field("eigen_gemv_ms", eigen_ms);
    json.field("speedup_4bit_int8_vs_eigen", eigen_ms / d4q);
    json.field("speedup_4bit_f32_vs_eigen", eigen_ms / d4f);
    json.object_array("results", results, [](bench::Json& o, const Result& r) {
        o.field("bits", r.bits);
        o.field("op", r.op);
        o.field("activations", r.act);
        o.field("fraction", r.fraction);
        o.field("ms", r.ms);
        o.field("gbps", r.gbps);
        o.field("ratio_to_probe", r.ratio);
        o.field("wall_ms", r.wall_ms);
        o.field("wall_gbps", r.wall_gbps);
        o.field("wall_ratio_to_probe", r.wall_ratio);
    });
    json.object_array("cache_resident_4bit_int8_1024", resident, [](bench::Json& o, const Resident& r) {
        o.field("isa", r.isa);
        o.field("tsc_cycles_per_32", r.tsc_per32);
        o.field("core_cycles_per_32", r.core_per32);
    });
    json.end_object();
    if (!json.write(json_path)) return 1;
    std::printf("wrote %s\n", json_path.c_str());
    return 0;
}
