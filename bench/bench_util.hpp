// bench_util.hpp - small helpers shared by the benchmark programs: medians, the
// machine's name for every table and JSON file, and a minimal JSON writer.
#pragma once

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace bench {

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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
