// bench_threads: the two-thread speedup of a dense 4-bit FFN layer against the
// machine's own two-thread read scaling, measured in the same run.
//
// Layer: d_model 4096, hidden 11008, gated SiLU, 4-bit, groups of 32 (min_max
// quantization: the kernels do not depend on the method), built from views.
// Enough copies rotate that the weights read per repetition exceed the LLC.
// Read scaling: one thread summing a buffer far larger than the LLC, against
// two threads each summing their own such buffer at once (wall clock, a
// barrier first); the same vector loads as bench_util's read probe.
// Bar: layer speedup >= 0.9 x read scaling. Run it once per kernel path:
//
//   bench_threads [out.json]                         (the best path)
//   SPARSEINFER_ISA=avx2 bench_threads bench_threads_avx2.json
#include <sparseinfer/kernels/dispatch.hpp>
#include <sparseinfer/quantized_weights.hpp>
#include <sparseinfer/sparse_ffn.hpp>
#include <sparseinfer/thread_pool.hpp>
#include "bench_util.hpp"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace si = sparseinfer;

namespace {

using Buffer = std::vector<std::uint64_t, si::detail::AlignedAllocator<std::uint64_t>>;

Buffer filled(std::size_t bytes) {
    Buffer b(bytes / 8);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = i;
    return b;
}

/// Seconds for `threads` threads (1 or 2) to each sum their own buffer, started together.
double read_seconds(const std::vector<Buffer>& bufs, std::size_t threads) {
    std::atomic<std::size_t> ready{0};
    std::atomic<bool> go{false};
    volatile std::uint64_t sink = 0;
    std::uint64_t sums[2] = {0, 0};
    auto reader = [&](std::size_t t) {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) {}
        sums[t] = bench::sum_buffer(bufs[t].data(), bufs[t].size());
    };
    std::unique_ptr<std::thread> other;
    if (threads == 2) other = std::make_unique<std::thread>(reader, 1);
    while (ready.load() + 1 < threads) std::this_thread::yield();
    const double t0 = bench::wall_seconds();
    go.store(true, std::memory_order_release);
    reader(0);
    if (other) other->join();
    const double t = bench::wall_seconds() - t0;
    sink = sink + sums[0] + sums[1];
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string json_path = argc > 1 ? argv[1] : "bench_threads.json";
    const std::size_t d = 4096, h = 11008, read_bytes = std::size_t(768) << 20;
    const int reps = 9;
    si::kernels::init_kernels();
    std::printf("bench_threads: dense 4-bit layer %zu x %zu (gated SiLU), path %s\n", d, h, si::active_isa());

    // Three matrices quantized once, then copied so the rotation exceeds the LLC.
    using W = si::QuantizedWeights<4>;
    const si::QuantOptions opts{32, si::QuantMethod::min_max};
    std::vector<float> f = bench::normal_floats(h * d, 1);
    const W gate = W::from_f32(f.data(), h, d, opts);
    f = bench::normal_floats(h * d, 2);
    const W up = W::from_f32(f.data(), h, d, opts);
    f = bench::normal_floats(h * d, 3);
    const W down_t = W::from_f32(f.data(), h, d, opts);
    f = std::vector<float>();
    const std::size_t layer_bytes = 3 * gate.memory_bytes(),
                      copies = std::max<std::size_t>(2, (600u << 20) / layer_bytes + 1);
    std::vector<W> mats;
    mats.reserve(3 * copies);
    std::vector<si::SparseFfn<4>> layers;
    for (std::size_t c = 0; c < copies; ++c) {
        mats.push_back(gate);
        mats.push_back(up);
        mats.push_back(down_t);
    }
    for (std::size_t c = 0; c < copies; ++c)
        layers.push_back(si::SparseFfn<4>::from_views(mats[3 * c].view(), mats[3 * c + 1].view(),
                                                      mats[3 * c + 2].view(), si::Activation::silu));
    std::printf("%zu layer copies of %.1f MB rotate (%.0f MB)\n", copies, layer_bytes / 1e6,
                copies * layer_bytes / 1e6);

    const std::vector<float> x = bench::normal_floats(d, 4);
    std::vector<float> y(d);
    si::ThreadPool pool(2);
    std::vector<Buffer> bufs;
    bufs.push_back(filled(read_bytes));
    bufs.push_back(filled(read_bytes));

    // Warm-up: every copy once, each way; one read each way.
    for (auto& l : layers) l.forward_dense(x.data(), y.data());
    read_seconds(bufs, 1);
    read_seconds(bufs, 2);

    // Interleaved repetitions: one-thread and two-thread times of each measurement side by side.
    std::vector<double> read1, read2, ffn1, ffn2, read_ratio, ffn_ratio;
    std::size_t next = 0;
    auto layer_ms = [&](bool threaded) {
        si::SparseFfn<4>& l = layers[next++ % layers.size()];
        if (threaded)
            l.set_executor(pool);
        else
            l.set_executor(si::Executor{});
        const double t0 = bench::wall_seconds();
        l.forward_dense(x.data(), y.data());
        return (bench::wall_seconds() - t0) * 1e3;
    };
    for (int r = 0; r < reps; ++r) {
        const double a = read_seconds(bufs, 1), b = read_seconds(bufs, 2);
        read1.push_back(read_bytes / a / 1e9);
        read2.push_back(2 * read_bytes / b / 1e9);
        read_ratio.push_back(read2.back() / read1.back());
        // Several layer calls per repetition, alternating, medians of each.
        std::vector<double> one, two;
        for (int k = 0; k < 4; ++k) {
            one.push_back(layer_ms(false));
            two.push_back(layer_ms(true));
        }
        ffn1.push_back(bench::median(one));
        ffn2.push_back(bench::median(two));
        ffn_ratio.push_back(ffn1.back() / ffn2.back());
    }
    const double rs = bench::median(read_ratio), fs = bench::median(ffn_ratio), share = fs / rs;
    std::printf("\n%-34s %10s %10s %9s\n", "", "1 thread", "2 threads", "speedup");
    std::printf("%-34s %7.1f GB/s %6.1f GB/s %8.2fx\n", "read (each thread its own buffer)", bench::median(read1),
                bench::median(read2), rs);
    std::printf("%-34s %8.2f ms %8.2f ms %8.2fx  (%.1f GB/s one thread)\n", "dense 4-bit layer", bench::median(ffn1),
                bench::median(ffn2), fs, layer_bytes / (bench::median(ffn1) * 1e-3) / 1e9);
    std::printf("layer speedup / read scaling: %.2f (bar 0.90)  [medians of %d interleaved repetitions]\n", share,
                reps);

    bench::Json json;
    json.begin_benchmark("bench_threads");
    json.field("kernel_path", si::active_isa());
    json.field("d_model", d);
    json.field("hidden", h);
    json.field("bits", 4);
    json.field("layer_mb", layer_bytes / 1e6);
    json.field("layer_copies", copies);
    json.field("repetitions", reps);
    json.field("read_1t_gbs", bench::median(read1));
    json.field("read_2t_gbs", bench::median(read2));
    json.field("read_scaling", rs);
    json.field("layer_1t_ms", bench::median(ffn1));
    json.field("layer_2t_ms", bench::median(ffn2));
    json.field("layer_speedup", fs);
    json.field("speedup_over_read_scaling", share);
    json.end_object();
    const bool written = json.write(json_path);
    if (written) std::printf("wrote %s\n", json_path.c_str());
    return written ? 0 : 1;
}
