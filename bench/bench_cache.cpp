// bench_cache: replays FFN activation traces through every NeuronCache policy at the same capacity
// (20% of the neurons) and prints miss rate, churn and ns per recorded active neuron, with Belady's
// offline optimum as the floor.
//
// Traces: synthetic (activation_trace.hpp: 11008 neurons, 10% active per token, Zipf popularity
// 0.89 / 0.76 / 0.40, persistence 0 / 0.5 / 0.8, with and without a popularity reshuffle halfway)
// and real ones, one per layer, from the FFN of stories260K (a neuron is active when |silu(gate)| is
// in the token's top 10%) and of its ReLU-fied copy in examples/data (ReGLU: a neuron is active
// when relu(gate) is not 0, its natural pattern, about 10-20% per token). Miss rates count the tokens after the first
// 10% of each trace, which warm every policy and are StaticProfile's profile. SlidingWindow is swept over window
// lengths and reported at its best.
//
// Usage: bench_cache [out.json] [--tokens N] [--quick] [--cost-only [--reps R] [--policy NAME]]
//   --cost-only: only the cost of record_activations, per policy, on every synthetic trace (median
//   of R whole-trace replays each, default 9), one policy at a time; --policy keeps the policies
//   whose name starts with NAME (for a profiler).
#include <sparseinfer/activation_trace.hpp>
#include <sparseinfer/detail/cache_belady.hpp>
#include <sparseinfer/neuron_cache.hpp>
#include "bench_util.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "../examples/llama2c/model.hpp"

namespace si = sparseinfer;

namespace {

struct Run {
    std::string policy;
    double miss_rate = 0;
    double churn_per_token = 0;
    double ns_per_active = 0;
};

struct TraceResult {
    std::string name;
    std::string kind;  // synthetic | real
    std::size_t neurons = 0, capacity = 0, tokens = 0;
    double mean_active = 0;
    std::vector<Run> runs;
    double belady = 0;
    double oracle = 0;  // one-step Markov oracle (see oracle_miss_rate)
    std::size_t best_window = 0;
};

/// Thread CPU time where POSIX has it: on a shared machine, wall time counts the time other
/// processes held the core; CPU time does not (cache interference from them remains).
double now_ns() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
    timespec ts{};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
#endif
    return static_cast<double>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

/// Replays a trace `reps` times (fresh cache each time); miss rate and churn from the first
/// replay after the warm-up prefix, time = median over replays of the whole trace.
template <class Policy>
Run replay(const std::string& name, const si::ActivationTrace& trace, Policy policy, std::size_t warm, int reps) {
    Run run;
    run.policy = name;
    std::vector<double> times;
    for (int rep = 0; rep < reps; ++rep) {
        si::NeuronCache<Policy> cache(trace.num_neurons(), policy);
        si::CacheStats at_warm{};
        double elapsed = 0;
        // Timed in two halves around the snapshot so the snapshot is not timed.
        double t0 = now_ns();
        for (std::size_t t = 0; t < warm; ++t) cache.record_activations(trace.token(t), trace.token_size(t));
        elapsed += now_ns() - t0;
        at_warm = cache.stats();
        t0 = now_ns();
        for (std::size_t t = warm; t < trace.num_tokens(); ++t)
            cache.record_activations(trace.token(t), trace.token_size(t));
        elapsed += now_ns() - t0;
        times.push_back(elapsed / static_cast<double>(trace.num_activations()));
        if (rep == 0) {
            const si::CacheStats s = cache.stats();
            const double acc = static_cast<double>((s.hits - at_warm.hits) + (s.misses - at_warm.misses));
            run.miss_rate = acc > 0 ? static_cast<double>(s.misses - at_warm.misses) / acc : 0;
            run.churn_per_token =
                static_cast<double>(s.churn - at_warm.churn) / static_cast<double>(trace.num_tokens() - warm);
        }
    }
    std::sort(times.begin(), times.end());
    run.ns_per_active = times[times.size() / 2];
    return run;
}

/// A bound on what an online policy that knows each neuron's statistics perfectly can reach:
/// before each token it holds the `capacity` neurons most likely to be active, where "likely" is
/// the neuron's in-hindsight frequency of being active after a token where it was active (if it
/// was active in the previous token) or after one where it was not. Statistics are counted over
/// the whole trace, separately on each side of `split` (a drifting trace's topic change; 0 = none),
/// and the set is re-chosen freely before every token (no churn limit, prefetch allowed). Under
/// the synthetic model (persistence from the previous token only) this is the Bayes-optimal
/// online choice, slightly optimistic because the statistics are in-sample.
double oracle_miss_rate(const si::ActivationTrace& trace, std::size_t capacity, std::size_t warm, std::size_t split) {
    const std::size_t n = trace.num_neurons(), T = trace.num_tokens();
    if (T < 2 || n == 0) return 0;
    std::vector<std::uint8_t> now(n), prev(n);
    auto mark = [&](std::vector<std::uint8_t>& m, std::size_t t) {
        std::fill(m.begin(), m.end(), 0);
        for (std::size_t k = 0; k < trace.token_size(t); ++k) m[trace.token(t)[k]] = 1;
    };
    // Per segment and neuron: value if active in the previous token, value if not.
    auto segment_of = [&](std::size_t t) { return split > 0 && t >= split ? 1 : 0; };
    std::vector<double> after_on[2], after_off[2];
    for (int s = 0; s < 2; ++s) {
        std::vector<double> on(n, 0), on_next(n, 0), off(n, 0), off_next(n, 0);
        for (std::size_t t = 1; t < T; ++t) {
            if (segment_of(t) != s) continue;
            mark(prev, t - 1);
            mark(now, t);
            for (std::size_t i = 0; i < n; ++i) {
                (prev[i] ? on : off)[i] += 1;
                (prev[i] ? on_next : off_next)[i] += now[i];
            }
        }
        after_on[s].resize(n);
        after_off[s].resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            after_on[s][i] = on[i] > 0 ? on_next[i] / on[i] : 0;
            after_off[s][i] = off[i] > 0 ? off_next[i] / off[i] : 0;
        }
    }
    std::vector<std::pair<double, std::uint32_t>> value(n);
    std::vector<std::uint8_t> held(n);
    std::uint64_t misses = 0, all = 0;
    const std::size_t keep = std::min(capacity, n);
    for (std::size_t t = std::max<std::size_t>(warm, 1); t < T; ++t) {
        const int s = segment_of(t);
        mark(prev, t - 1);
        for (std::size_t i = 0; i < n; ++i)
            value[i] = {prev[i] ? after_on[s][i] : after_off[s][i], static_cast<std::uint32_t>(i)};
        std::nth_element(value.begin(), value.begin() + static_cast<std::ptrdiff_t>(keep), value.end(),
                         [](const auto& a, const auto& b) { return a.first > b.first; });
        std::fill(held.begin(), held.end(), 0);
        for (std::size_t k = 0; k < keep; ++k) held[value[k].second] = 1;
        mark(now, t);
        for (std::size_t i = 0; i < n; ++i) {
            all += now[i];
            misses += now[i] && !held[i];
        }
    }
    return all > 0 ? static_cast<double>(misses) / static_cast<double>(all) : 0;
}

TraceResult evaluate(const std::string& name, const std::string& kind, const si::ActivationTrace& trace, int reps,
                     std::size_t split = 0) {
    TraceResult r;
    r.name = name;
    r.kind = kind;
    r.neurons = trace.num_neurons();
    r.tokens = trace.num_tokens();
    r.capacity = static_cast<std::size_t>(std::lround(0.2 * static_cast<double>(trace.num_neurons())));
    r.mean_active = static_cast<double>(trace.num_activations()) / static_cast<double>(trace.num_tokens());
    const std::size_t warm = trace.num_tokens() / 10;
    const std::size_t cap = r.capacity;

    r.runs.push_back(replay("FrequencyThreshold*", trace, si::policy::FrequencyThreshold{0.2, 1000}, warm, reps));
    r.runs.push_back(replay("StaticProfile", trace, si::policy::StaticProfile{cap, warm}, warm, reps));
    r.runs.push_back(replay("Lru", trace, si::policy::Lru{cap}, warm, reps));
    Run best_window;
    best_window.miss_rate = 2;
    for (std::uint64_t k : {1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32}) {
        Run w = replay("SlidingWindow", trace, si::policy::SlidingWindow{k, cap}, warm, 1);
        if (w.miss_rate < best_window.miss_rate) {
            best_window = w;
            r.best_window = k;
        }
    }
    best_window = replay("SlidingWindow", trace, si::policy::SlidingWindow{r.best_window, cap}, warm, reps);
    best_window.policy = "SlidingWindow(k=" + std::to_string(r.best_window) + ")";
    r.runs.push_back(best_window);
    r.runs.push_back(replay("Adaptive", trace, si::policy::Adaptive{cap}, warm, reps));
    const si::detail::BeladyResult b = si::detail::belady(trace, cap, warm);
    r.belady = static_cast<double>(b.misses) / static_cast<double>(b.hits + b.misses);
    r.oracle = oracle_miss_rate(trace, cap, warm, split);
    return r;
}

/// One trace per layer from a llama2.c model: sampled decoding (seeded, temperature 0.8), restarting
/// at BOS at the end of the context; a neuron is active when |act(gate)| is in the token's top share,
/// or, for active_share 0, when act(gate) is not exactly 0 (a ReLU model's natural pattern).
std::vector<si::ActivationTrace> real_traces(const std::string& path, llama2c::FfnActivation act, std::size_t tokens,
                                             double active_share) {
    llama2c::Model m = llama2c::load_checkpoint(path);
    m.activation = act;
    const auto& c = m.config;
    const int hd = c.hidden_dim;
    const std::size_t top = static_cast<std::size_t>(std::lround(active_share * hd));
    std::vector<si::ActivationTrace> traces;
    for (int l = 0; l < c.n_layers; ++l) traces.emplace_back(static_cast<std::size_t>(hd));
    std::vector<float> gate(static_cast<std::size_t>(hd));
    std::vector<std::pair<float, std::uint32_t>> mag(static_cast<std::size_t>(hd));
    std::vector<std::uint32_t> active;
    auto ffn = [&](int layer, const float* x, float* out) {
        llama2c::matvec(m.gate(layer), x, gate.data(), hd, c.dim);
        for (int i = 0; i < hd; ++i) {
            const float g = gate[static_cast<std::size_t>(i)];
            mag[static_cast<std::size_t>(i)] = {std::fabs(llama2c::gate_activation(act, g)),
                                                static_cast<std::uint32_t>(i)};
        }
        active.clear();
        if (active_share > 0) {
            std::partial_sort(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(top), mag.end(),
                              [](const auto& a, const auto& b) { return a.first > b.first; });
            for (std::size_t i = 0; i < top; ++i) active.push_back(mag[i].second);
        } else {
            for (const auto& [score, i] : mag)
                if (score != 0.0f) active.push_back(i);
        }
        traces[static_cast<std::size_t>(layer)].add_token(active);
        llama2c::float_ffn(m, layer, x, out);
    };
    llama2c::Transformer tf(m, ffn);
    si::detail::TraceRng rng(7);
    int token = 1, pos = 0;
    for (std::size_t t = 0; t < tokens; ++t) {
        const std::vector<float>& logits = tf.forward(token, pos);
        // Sample at temperature 0.8.
        float mx = *std::max_element(logits.begin(), logits.end());
        std::vector<double> p(logits.size());
        double sum = 0;
        for (std::size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp((logits[i] - mx) / 0.8);
        double u = rng.uniform() * sum;
        std::size_t next = 0;
        for (; next + 1 < p.size(); ++next)
            if ((u -= p[next]) < 0) break;
        token = static_cast<int>(next);
        ++pos;
        if (pos >= c.seq_len || token == 1) {
            pos = 0;
            token = 1;
        }
    }
    return traces;
}

void print(const TraceResult& r) {
    std::printf("\n%s  (%zu neurons, capacity %zu, %zu tokens, %.1f active/token)\n", r.name.c_str(), r.neurons,
                r.capacity, r.tokens, r.mean_active);
    std::printf("  %-22s %10s %14s %14s\n", "policy", "miss rate", "churn/token", "ns/active");
    for (const Run& run : r.runs)
        std::printf("  %-22s %10.4f %14.1f %14.2f\n", run.policy.c_str(), run.miss_rate, run.churn_per_token,
                    run.ns_per_active);
    std::printf("  %-22s %10.4f\n", "Markov oracle", r.oracle);
    std::printf("  %-22s %10.4f\n", "Belady (offline)", r.belady);
}

const Run& find(const TraceResult& r, const std::string& prefix) {
    for (const Run& run : r.runs)
        if (run.policy.rfind(prefix, 0) == 0) return run;
    return r.runs.front();
}

/// The synthetic traces of both modes: 11008 neurons, 10% active, every Zipf exponent, persistence
/// and drift setting, in one order.
struct SyntheticCase {
    double s, p;
    bool drift;
    std::string name() const {
        char buf[96];
        std::snprintf(buf, sizeof buf, "zipf%.2f p%.1f%s", s, p, drift ? " drift" : "");
        return buf;
    }
    si::ActivationTrace make(std::size_t tokens) const {
        si::SyntheticTraceOptions o;
        o.tokens = tokens;
        o.zipf_exponent = s;
        o.persistence = p;
        o.drift = drift;
        o.seed = 42;
        return si::make_synthetic_trace(o);
    }
};
std::vector<SyntheticCase> synthetic_cases() {
    std::vector<SyntheticCase> cases;
    for (double s : {0.89, 0.76, 0.40})
        for (bool drift : {false, true})
            for (double p : {0.0, 0.5, 0.8}) cases.push_back({s, p, drift});
    return cases;
}

/// --cost-only: ns per recorded active neuron, median of `reps` replays, per policy and synthetic
/// trace; `only` (a policy name prefix, empty = all) narrows it to one policy, e.g. for a profiler.
int cost_only(const std::string& out_path, std::size_t tokens, int reps, const std::string& only) {
    struct Row {
        std::string name;
        std::size_t neurons, tokens;
        std::vector<Run> runs;
    };
    std::vector<Row> rows;
    const char* const names[] = {"FrequencyThreshold", "StaticProfile", "Lru", "SlidingWindow(k=4)", "Adaptive"};
    std::printf("record_activations, ns per recorded active neuron (median of %d replays of the whole trace)\n", reps);
    std::printf("%-24s %10s %10s %10s %10s %10s\n", "trace", "FreqThr", "Static", "Lru", "Window(4)", "Adaptive");
    for (const SyntheticCase& c : synthetic_cases()) {
        const si::ActivationTrace trace = c.make(tokens);
        const std::size_t cap = static_cast<std::size_t>(std::lround(0.2 * static_cast<double>(trace.num_neurons())));
        const std::size_t warm = trace.num_tokens() / 10;
        Row row{c.name(), trace.num_neurons(), trace.num_tokens(), {}};
        std::printf("%-24s", row.name.c_str());
        for (int j = 0; j < 5; ++j) {
            if (!only.empty() && std::string(names[j]).rfind(only, 0) != 0) {
                std::printf(" %10s", "-");
                continue;
            }
            switch (j) {
            case 0:
                row.runs.push_back(replay(names[j], trace, si::policy::FrequencyThreshold{0.2, 1000}, warm, reps));
                break;
            case 1:
                row.runs.push_back(replay(names[j], trace, si::policy::StaticProfile{cap, warm}, warm, reps));
                break;
            case 2: row.runs.push_back(replay(names[j], trace, si::policy::Lru{cap}, warm, reps)); break;
            case 3: row.runs.push_back(replay(names[j], trace, si::policy::SlidingWindow{4, cap}, warm, reps)); break;
            default: row.runs.push_back(replay(names[j], trace, si::policy::Adaptive{cap}, warm, reps)); break;
            }
            std::printf(" %10.2f", row.runs.back().ns_per_active);
            std::fflush(stdout);
        }
        std::printf("\n");
        rows.push_back(std::move(row));
    }
    bench::Json json;
    json.begin_benchmark("bench_cache");
    json.field("mode", "cost-only");
    json.field("reps", reps);
    json.object_array("traces", rows, [](bench::Json& t, const Row& row) {
        t.field("name", row.name);
        t.field("neurons", row.neurons);
        t.field("tokens", row.tokens);
        t.object_array("policies", row.runs, [](bench::Json& o, const Run& run) {
            o.field("policy", run.policy);
            o.field("ns_per_active", run.ns_per_active);
            o.field("miss_rate", run.miss_rate);
        });
    });
    json.end_object();
    if (!json.write(out_path)) return 1;
    std::printf("wrote %s\n", out_path.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string out_path = "bench_cache.json";
    std::size_t synth_tokens = 2000, real_tokens = 2000;
    bool quick = false, cost = false;
    int cost_reps = 9;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc)
            synth_tokens = std::strtoull(argv[++i], nullptr, 10);
        else if (!std::strcmp(argv[i], "--quick"))
            quick = true;
        else if (!std::strcmp(argv[i], "--cost-only"))
            cost = true;
        else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc)
            cost_reps = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--policy") && i + 1 < argc)
            only = argv[++i];
        else
            out_path = argv[i];
    }
    if (cost) return cost_only(out_path, synth_tokens, cost_reps < 1 ? 1 : cost_reps, only);
    const int reps = quick ? 1 : 3;

    std::vector<TraceResult> results;
    for (const SyntheticCase& c : synthetic_cases()) {
        results.push_back(evaluate(c.name(), "synthetic", c.make(synth_tokens), reps, c.drift ? synth_tokens / 2 : 0));
        print(results.back());
        std::fflush(stdout);
    }
    const std::string model = std::string(SPARSEINFER_DATA_DIR) + "/stories260K.bin";
    if (std::ifstream(model).good()) {
        const auto traces = real_traces(model, llama2c::FfnActivation::silu, real_tokens, 0.10);
        for (std::size_t l = 0; l < traces.size(); ++l) {
            results.push_back(evaluate("stories260K layer " + std::to_string(l), "real", traces[l], reps));
            print(results.back());
        }
    } else {
        std::printf("\n(stories260K.bin not found at %s: real traces skipped)\n", model.c_str());
    }
    // The ReLU-fied model (in the repository): its natural pattern, the neurons that are not exactly 0.
    const std::string relu_model = std::string(SPARSEINFER_EXAMPLES_DATA_DIR) + "/stories260K_relu.bin";
    if (std::ifstream(relu_model).good()) {
        const auto relu_traces = real_traces(relu_model, llama2c::FfnActivation::relu, real_tokens, 0.0);
        for (std::size_t l = 0; l < relu_traces.size(); ++l) {
            results.push_back(evaluate("ReLU-fied layer " + std::to_string(l), "real-relu", relu_traces[l], reps));
            print(results.back());
        }
    } else {
        std::printf("\n(%s not found: ReLU-fied traces skipped)\n", relu_model.c_str());
    }

    // Bars: Adaptive against the best of StaticProfile, Lru and SlidingWindow(best k).
    std::printf("\n%-28s %9s %9s %9s %9s %8s %9s %8s %8s\n", "trace", "adaptive", "best", "oracle", "belady", "ratio",
                "abs diff", "gap closed", "oracle/best");
    for (const TraceResult& r : results) {
        const double best = std::min(
            {find(r, "StaticProfile").miss_rate, find(r, "Lru").miss_rate, find(r, "SlidingWindow").miss_rate});
        const double a = find(r, "Adaptive").miss_rate;
        const double gap = best - r.belady;
        std::printf("%-28s %9.4f %9.4f %9.4f %9.4f %8.3f %+9.4f %8.2f %8.3f\n", r.name.c_str(), a, best, r.oracle,
                    r.belady, best > 0 ? a / best : 0, a - best, gap > 0 ? (best - a) / gap : 0,
                    best > 0 ? r.oracle / best : 0);
    }

    // record_activations cost per policy: median over the synthetic traces (11008 neurons, 10% active).
    std::printf("\nns per recorded active neuron, median over the synthetic traces (min .. max):\n");
    std::vector<std::pair<std::string, double>> cost_summary;
    for (std::size_t j = 0; j < results.front().runs.size(); ++j) {
        std::vector<double> ns;
        for (const TraceResult& r : results)
            if (r.kind == "synthetic") ns.push_back(r.runs[j].ns_per_active);
        std::sort(ns.begin(), ns.end());
        std::string name = results.front().runs[j].policy;
        if (name.rfind("SlidingWindow", 0) == 0) name = "SlidingWindow(best k)";
        std::printf("  %-22s %6.2f  (%.2f .. %.2f)\n", name.c_str(), ns[ns.size() / 2], ns.front(), ns.back());
        cost_summary.emplace_back(name, ns[ns.size() / 2]);
    }

    bench::Json json;
    json.begin_benchmark("bench_cache");
    json.field("capacity_share", 0.2);
    json.object_array("traces", results, [](bench::Json& t, const TraceResult& r) {
        t.field("name", r.name);
        t.field("kind", r.kind);
        t.field("neurons", r.neurons);
        t.field("capacity", r.capacity);
        t.field("tokens", r.tokens);
        t.field("mean_active", r.mean_active);
        t.field("best_window", r.best_window);
        t.field("belady_miss_rate", r.belady);
        t.field("markov_oracle_miss_rate", r.oracle);
        const double best = std::min(
            {find(r, "StaticProfile").miss_rate, find(r, "Lru").miss_rate, find(r, "SlidingWindow").miss_rate});
        const double a = find(r, "Adaptive").miss_rate;
        t.field("best_baseline_miss_rate", best);
        t.field("adaptive_over_best", best > 0 ? a / best : 0.0);
        t.field("adaptive_minus_best", a - best);
        t.field("gap_to_belady_closed", best - r.belady > 0 ? (best - a) / (best - r.belady) : 0.0);
        t.object_array("policies", r.runs, [](bench::Json& o, const Run& run) {
            o.field("policy", run.policy);
            o.field("miss_rate", run.miss_rate);
            o.field("churn_per_token", run.churn_per_token);
            o.field("ns_per_active", run.ns_per_active);
        });
    });
    json.key("median_ns_per_active_synthetic");
    json.begin_object();
    for (const auto& [name, ns] : cost_summary) json.field(name, ns);
    json.end_object();
    json.end_object();
    if (!json.write(out_path)) return 1;
    std::printf("\nwrote %s\n", out_path.c_str());
    return 0;
}
