// bench_util.hpp - small helpers shared by the benchmark programs: medians,
// clocks, the one read-bandwidth probe every benchmark compares against, the
// machine's name for every table and JSON file, and a minimal JSON writer.
#pragma once

#include <sparseinfer/detail/aligned_allocator.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bench {

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// CPU time of this thread in seconds.
inline double thread_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/// Wall-clock seconds (steady clock).
inline double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Read bandwidth of one core, GB/s, timed by thread CPU time and by wall clock.
struct Probe {
    double cpu_gbps, wall_gbps;
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/// Sum of n 64-byte lines with AVX-512 loads (four independent accumulators).
__attribute__((target("avx512f"))) inline std::uint64_t sum_lines_avx512(const std::uint64_t* p, std::size_t lines) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    std::size_t i = 0;
    for (; i + 4 <= lines; i += 4) {
        s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p + 8 * i));
        s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(p + 8 * i + 8));
        s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(p + 8 * i + 16));
        s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(p + 8 * i + 24));
    }
    for (; i < lines; ++i) s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p + 8 * i));
    alignas(64) std::uint64_t v[8];
    _mm512_store_si512(v, _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}
#endif

/// Sum of the buffer: AVX-512 loads where the CPU has them (the kernels' loads),
/// otherwise 8 scalar accumulators.
inline std::uint64_t sum_buffer(const std::uint64_t* p, std::size_t n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    if (avx512) return sum_lines_avx512(p, n / 8);
#endif
    std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
        s4 += p[i + 4];
        s5 += p[i + 5];
        s6 += p[i + 6];
        s7 += p[i + 7];
    }
    return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

/// Read bandwidth in GB/s (thread CPU time and wall clock): best of `passes`
/// sums over a buffer far larger than the LLC (huge-page backed like the weights).
inline Probe probe_bandwidth(std::size_t bytes, int passes) {
    std::vector<std::uint64_t, sparseinfer::detail::AlignedAllocator<std::uint64_t>> buf(bytes / 8);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = i;
    Probe best{0, 0};
    volatile std::uint64_t sink = 0;
    for (int p = 0; p < passes; ++p) {
        const double w0 = wall_seconds(), t0 = thread_seconds();
        const std::uint64_t s = sum_buffer(buf.data(), buf.size());
        const double t = thread_seconds() - t0, w = wall_seconds() - w0;
        sink = sink + s;
        best.cpu_gbps = std::max(best.cpu_gbps, static_cast<double>(bytes) / t / 1e9);
        best.wall_gbps = std::max(best.wall_gbps, static_cast<double>(bytes) / w / 1e9);
    }
    return best;
}

/// "CPU model, N cores" from /proc/cpuinfo, so every result names its machine.
inline std::string machine_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line, model = "unknown CPU";
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores";
}

/// Streams JSON with commas placed automatically.
class Json {
public:
    void begin_object() { open('{'); }
    void end_object() { close('}'); }
    void begin_array() { open('['); }
    void end_array() { close(']'); }
    void key(const std::string& k) {
        comma();
        out_ += quote(k) + ":";
        after_key_ = true;
    }
    void value(const std::string& v) { scalar(quote(v)); }
    void value(const char* v) { scalar(quote(v)); }
    void value(double v) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        scalar(buf);
    }
    void value(int v) { scalar(std::to_string(v)); }
    void value(long long v) { scalar(std::to_string(v)); }
    void value(unsigned long long v) { scalar(std::to_string(v)); }
    void value(std::size_t v) { scalar(std::to_string(v)); }
    void value(bool v) { scalar(v ? "true" : "false"); }
    template <class T>
    void field(const std::string& k, const T& v) {
        key(k);
        value(v);
    }
    const std::string& str() const { return out_; }
    bool write(const std::string& path) const {
        std::ofstream f(path);
        f << out_ << "\n";
        if (!f) std::fprintf(stderr, "cannot write %s\n", path.c_str());
        return static_cast<bool>(f);
    }

private:
    static std::string quote(const std::string& s) {
        std::string q = "\"";
        for (char c : s) {
            if (c == '"' || c == '\\') q += '\\';
            q += c;
        }
        return q + "\"";
    }
    void comma() {
        if (after_key_) return;
        if (!first_.empty() && !first_.back()) out_ += ",";
        if (!first_.empty()) first_.back() = false;
    }
    void scalar(const std::string& s) {
        comma();
        after_key_ = false;
        out_ += s;
    }
    void open(char c) {
        comma();
        after_key_ = false;
        out_ += c;
        first_.push_back(true);
    }
    void close(char c) {
        out_ += c;
        first_.pop_back();
    }
    std::string out_;
    std::vector<bool> first_;
    bool after_key_ = false;
};

}  // namespace bench
