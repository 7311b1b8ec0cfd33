// bench_util.hpp - small helpers shared by the benchmark programs: medians,
// clocks, seeded N(0,1) data, the one read-bandwidth probe every benchmark
// compares against, the machine's name for every table and JSON file, and a
// minimal JSON writer.
#pragma once

#include <sparseinfer/detail/aligned_allocator.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
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

/// Wall-clock seconds since t0 (steady clock).
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// n floats drawn from N(0,1) by std::mt19937(seed): the same values for the same seed.
inline std::vector<float> normal_floats(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

/// Read bandwidth of one core, GB/s, timed by thread CPU time and by wall clock.
/// k distinct indices of 0..n-1 drawn at random, in ascending order (a random
/// active list); k <= n.
inline std::vector<std::uint32_t> random_rows(std::size_t n, std::size_t k, std::mt19937& rng) {
    std::vector<std::uint32_t> all(n);
    for (std::size_t i = 0; i < n; ++i) all[i] = static_cast<std::uint32_t>(i);
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(k);
    std::sort(all.begin(), all.end());
    return all;
}

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

/// Bytes of the last-level cache from sysfs (Linux), or `fallback` where it
/// cannot be read: data sized from it must really come from DRAM.
inline std::size_t llc_bytes(std::size_t fallback = 32u << 20) {
    std::size_t best = 0;
    for (int index = 0; index < 8; ++index) {
        std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
        std::string text;
        if (!(in >> text) || text.empty()) continue;
        std::size_t v = 0, i = 0;
        for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i)
            v = v * 10 + static_cast<std::size_t>(text[i] - '0');
        const char unit = i < text.size() ? text[i] : 'B';
        v <<= unit == 'K' ? 10 : unit == 'M' ? 20 : unit == 'G' ? 30 : 0;
        best = std::max(best, v);
    }
    return best > 0 ? best : fallback;
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

/// Streams JSON with commas placed automatically. The members of the top-level
/// object and the elements of its arrays and objects start a line each; deeper
/// records stay on one line, so a list of results reads one record a line:
///
///   bench::Json j;
///   j.begin_object();
///   j.field("machine", bench::machine_name());
///   j.object_array("results", rows, [](bench::Json& o, const Row& r) { o.field("ms", r.ms); });
///   j.end_object();
///   j.write("bench_x.json");
class Json {
public:
    void begin_object() { open('{'); }
    /// Opens a benchmark's result object with its name and the machine's.
    void begin_benchmark(const std::string& name) {
        begin_object();
        field("benchmark", name);
        field("machine", machine_name());
    }
    void end_object() { close('}'); }
    void begin_array() { open('['); }
    void end_array() { close(']'); }
    void key(const std::string& k) {
        separate();
        out_ += quote(k) + ": ";
        after_key_ = true;
    }
    void value(const std::string& v) { scalar(quote(v)); }
    void value(const char* v) { scalar(quote(v)); }
    /// Always a JSON number with a fraction or exponent (reads back as a float,
    /// 1.0 too); NaN and infinities, which JSON lacks, are written as null.
    void value(double v) {
        if (!std::isfinite(v)) {
            scalar("null");
            return;
        }
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        std::string s = buf;
        if (s.find_first_of(".e") == std::string::npos) s += ".0";
        scalar(s);
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
    /// "k": [ {...}, ... ]: one object per item, its fields written by fields(*this, item).
    template <class Items, class Fields>
    void object_array(const std::string& k, const Items& items, Fields&& fields) {
        key(k);
        begin_array();
        for (const auto& item : items) {
            begin_object();
            fields(*this, item);
            end_object();
        }
        end_array();
    }
    const std::string& str() const { return out_; }
    bool write(const std::string& path) const {
        std::ofstream f(path);
        f << out_ << "\n";
        if (!f) std::fprintf(stderr, "cannot write %s\n", path.c_str());
        return static_cast<bool>(f);
    }

private:
    static constexpr std::size_t line_depth = 2;  // containers this deep put each member on a line

    static std::string quote(const std::string& s) {
        std::string q = "\"";
        for (char c : s) {
            if (c == '"' || c == '\\') q += '\\';
            q += c;
        }
        return q + "\"";
    }
    // Before a key or an array element: the comma, then a new line or a space.
    void separate() {
        if (after_key_ || first_.empty()) return;
        if (!first_.back()) out_ += ",";
        if (first_.size() <= line_depth)
            out_ += "\n" + std::string(2 * first_.size(), ' ');
        else if (!first_.back())
            out_ += " ";
        first_.back() = false;
    }
    void scalar(const std::string& s) {
        separate();
        after_key_ = false;
        out_ += s;
    }
    void open(char c) {
        separate();
        after_key_ = false;
        out_ += c;
        first_.push_back(true);
    }
    void close(char c) {
        const bool empty = first_.back();
        first_.pop_back();
        if (!empty && first_.size() < line_depth) out_ += "\n" + std::string(2 * first_.size(), ' ');
        out_ += c;
    }
    std::string out_;
    std::vector<bool> first_;  // per open container: nothing written in it yet
    bool after_key_ = false;
};

}  // namespace bench
