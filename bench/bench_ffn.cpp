// bench_ffn - time per token of a LLaMA-7B-shaped SwiGLU FFN layer (d_model 4096,
// hidden 11008), one thread: Eigen float dense (compiled with native flags), sparseinfer dense (8 and 4 bits)
// and sparse at 50/25/10/5% active with each selector.
//
// Usage: bench_ffn [--quick] [out.json]          (default out: bench_ffn.json)
//
// The layer is synthetic, with structure planted for the selectors:
//  - gate = diag(s) (U V + noise): a rank-24 product plus isotropic noise (2% of
//    the energy; the full run also reports recall at 1, 5, 10 and 20%), rows scaled by s_i = (1 + pi(i))^-0.35 for a
//    random permutation pi, so some neurons fire far more often than others: a power-law activation pattern over
//    scattered neuron ids;
//  - up, down: uniform random; inputs: N(0, 1) vectors (a pool of tokens).
// Selectors:
//  - oracle: lists drawn per token from a Zipf(0.89) law over neurons without
//    replacement (no selection cost): the sparse part alone;
//  - predictor: LowRankPredictor rank 32 from the randomized SVD of the gate,
//    8-bit or float factors (the faster); neurons kept by a per-layer threshold calibrated on 16
//    separate tokens for the target share (the achieved share is reported), or
//    ("predictor top-k") the exact top-k of the scores; scores, selection and
//    the sparse pass are all timed (the selection's share is reported too);
//    ("predictor top-k + 128 checks") select_top_k_checked: the 128 neurons
//    predicted nearest the edge of the kept region (in units of their own
//    prediction error) get their exact gate value from the layer's 4-bit gate
//    rows on int8 activations, timed (quantization included) as part of the selection;
//  - gate: forward_gate_first (dense gate, exact top-k by |silu(gate)|, then up
//    and down for the kept neurons).
// Weights larger than the LLC: the 4-bit layer is rotated over 8 copies (76 MB
// each; a token's 10% touches 7.6 MB, so 61 MB pass between two visits of a
// copy), the 8-bit layer (144 MB) and the float matrices (541 MB) are single.
// The first 4-bit copy and the 8-bit layer are quantized with the optimized
// method (--quick: min_max); the other copies are byte copies (the kernels'
// speed does not depend on the codes). Each figure is the median per-token time
// over the token pool, after a warm-up pass. bench_kernels' read-bandwidth probe
// (AVX-512 sum of a huge-page buffer, bench_util.hpp), run in the same process,
// gives the effective bandwidth of the dense passes.
#include <sparseinfer/kernels/dispatch.hpp>
#include <sparseinfer/predictor.hpp>
#include <sparseinfer/quantized_activations.hpp>
#include <sparseinfer/selection.hpp>
#include <sparseinfer/sparse_ffn.hpp>
#include "bench_util.hpp"
#include "eigen_native.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using Clock = std::chrono::steady_clock;
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
namespace si = sparseinfer;

namespace {

/// Fast uniform [-a, a) floats (xorshift), for the matrices whose values do not matter.
void fill_uniform(float* p, std::size_t n, float a, std::uint64_t seed) {
    std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (std::size_t i = 0; i < n; ++i) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = a * (static_cast<float>(s >> 40) * (2.0f / 16777216.0f) - 1.0f);
    }
}

struct Result {
    std::string name;
    double ms = 0;         // median per token
    double active = 1.0;   // share of neurons computed
    double select_ms = 0;  // of which selection (predictor / dense gate)
    double recall = -1;    // vs the exact top-k, when measured
};

}  // namespace

int main(int argc, char** argv) {
    bool quick = false;
    std::string out_path = "bench_ffn.json";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick")
            quick = true;
        else if (a == "-h" || a == "--help") {
            std::puts("usage: bench_ffn [--quick] [out.json]");
            return 0;
        } else
            out_path = a;
    }
    const std::size_t d = 4096, h = 11008, planted_rank = 24, copies = 8;
    const int tokens = quick ? 24 : 64;
    const si::QuantOptions qopts{32, quick ? si::QuantMethod::min_max : si::QuantMethod::optimized};
    std::printf("bench_ffn: d_model %zu, hidden %zu, one thread, kernels: %s%s\n", d, h, si::active_isa(),
                quick ? " (quick)" : "");
    // The same probe as bench_kernels (AVX-512 sum on huge pages), by wall clock
    // like this program's timings.
    const double bw = bench::probe_bandwidth(std::size_t{512} << 20, 5).wall_gbps;
    std::printf("read bandwidth probe: %.1f GB/s\n", bw);

    // ---- the synthetic layer -------------------------------------------------
    auto t_setup = Clock::now();
    std::vector<float> gate(h * d), up(h * d), down(d * h);
    // The noise-free planted signal diag(s) U V, kept as its factors: the recall of
    // an ideal predictor that knew it exactly (and nothing of the noise).
    RowMatrix signal_U(h, planted_rank), signal_V(planted_rank, d);
    // gate = diag(s) (U V + noise); noise_energy is the noise's share of the product's energy.
    auto build_gate = [&](double noise_energy, unsigned seed) {
        std::mt19937 rng(seed);
        std::normal_distribution<float> nd;
        RowMatrix U(h, planted_rank), V(planted_rank, d);
        for (Eigen::Index i = 0; i < U.size(); ++i) U.data()[i] = nd(rng);
        for (Eigen::Index i = 0; i < V.size(); ++i) V.data()[i] = nd(rng);
        Eigen::Map<RowMatrix> G(gate.data(), h, d);
        G.noalias() = U * V;
        std::vector<float> noise(h * d);
        fill_uniform(noise.data(), noise.size(), 1.0f, seed + 7);
        // signal variance planted_rank per entry, uniform noise variance 1/3
        const float ns = static_cast<float>(std::sqrt(noise_energy / (1 - noise_energy) * planted_rank * 3.0));
        std::vector<std::uint32_t> perm(h);
        std::iota(perm.begin(), perm.end(), 0u);
        std::shuffle(perm.begin(), perm.end(), rng);
        const float norm = 1.0f / std::sqrt(static_cast<float>(planted_rank * d));
        for (std::size_t i = 0; i < h; ++i) {
            const float s = std::pow(1.0f + static_cast<float>(perm[i]), -0.35f) * 4.0f * norm;
            for (std::size_t k = 0; k < d; ++k) gate[i * d + k] = s * (gate[i * d + k] + ns * noise[i * d + k]);
            signal_U.row(static_cast<Eigen::Index>(i)) = s * U.row(static_cast<Eigen::Index>(i));
        }
        signal_V = V;
    };
    const double noise_energy = 0.02;
    build_gate(noise_energy, 42);
    fill_uniform(up.data(), up.size(), 1.0f / std::sqrt(static_cast<float>(d)), 11);
    fill_uniform(down.data(), down.size(), 1.0f / std::sqrt(static_cast<float>(h)), 12);
    std::vector<std::vector<float>> xs(static_cast<std::size_t>(tokens), std::vector<float>(d));
    {
        std::mt19937 rng(5);
        std::normal_distribution<float> nd;
        for (auto& x : xs)
            for (auto& v : x) v = nd(rng);
    }
    std::printf("synthetic layer generated in %.1f s\n", bench::seconds_since(t_setup));
    // Mean recall of the top k of |silu(signal . x)| against the exact top k, per token.
    auto signal_recall = [&](const std::vector<std::vector<float>>& exact_scores, std::size_t k) {
        std::vector<float> sc(h);
        std::vector<std::uint32_t> chosen(h), truth(h);
        double rec = 0;
        for (int t = 0; t < tokens; ++t) {
            Eigen::Map<const Eigen::VectorXf> x(xs[static_cast<std::size_t>(t)].data(), d);
            const Eigen::VectorXf p = signal_U * (signal_V * x);
            for (std::size_t i = 0; i < h; ++i) sc[i] = std::fabs(si::silu(p[static_cast<Eigen::Index>(i)]));
            si::select_top_k(sc.data(), h, k, chosen.data());
            si::select_top_k(exact_scores[static_cast<std::size_t>(t)].data(), h, k, truth.data());
            rec += si::recall(chosen.data(), k, truth.data(), k);
        }
        return rec / tokens;
    };

    auto t0 = Clock::now();
    std::vector<si::SparseFfn<4>> q4;
    q4.emplace_back(gate.data(), up.data(), down.data(), d, h, si::Activation::silu, qopts);
    const double quant4_s = bench::seconds_since(t0);
    for (std::size_t c = 1; c < copies; ++c) q4.push_back(q4.front());
    t0 = Clock::now();
    si::SparseFfn<8> q8(gate.data(), up.data(), down.data(), d, h, si::Activation::silu, qopts);
    const double quant8_s = bench::seconds_since(t0);
    std::printf("quantized (%s): 4-bit layer %.1f s, 8-bit layer %.1f s; 4-bit %.1f MB x %zu copies, 8-bit %.1f MB\n",
                quick ? "min_max" : "optimized", quant4_s, quant8_s, q4[0].memory_bytes() / 1e6, copies,
                q8.memory_bytes() / 1e6);

    t0 = Clock::now();
    si::PredictorOptions popts;
    popts.rank = 32;
    popts.power_iterations = quick ? 1 : 2;
    auto pred0 = si::LowRankPredictor::from_gate(gate.data(), h, d, popts);
    const double calib_s = bench::seconds_since(t0);
    std::vector<si::LowRankPredictor> preds(copies, pred0), preds_f(copies, pred0);
    for (auto& p : preds) p.quantize();  // one set of 8-bit factors per layer copy; preds_f keep float factors
    // Calibration inputs for the thresholds, distinct from the timed tokens.
    std::vector<std::vector<float>> calib(16, std::vector<float>(d));
    {
        std::mt19937 rng(77);
        std::normal_distribution<float> nd;
        for (auto& x : calib)
            for (auto& v : x) v = nd(rng);
    }
    std::printf("predictor: rank %zu, randomized SVD in %.1f s, %.0f KB quantized\n", pred0.rank(), calib_s,
                preds[0].memory_bytes() / 1e3);

    std::vector<Result> results;
    std::vector<float> y(d), scores(h);
    std::vector<std::uint32_t> idx(h);

    // ---- Eigen float dense (native flags: bench/eigen_native.cpp) ----------
    {
        std::vector<float> g(h), u(h);
        std::vector<double> ts;
        const int reps = quick ? 6 : 16;
        for (int t = -1; t < reps; ++t) {
            const float* x = xs[static_cast<std::size_t>((t + tokens) % tokens)].data();
            const auto s = Clock::now();
            bench::eigen_swiglu(gate.data(), up.data(), down.data(), d, h, x, y.data(), g.data(), u.data());
            if (t >= 0) ts.push_back(bench::seconds_since(s));
        }
        results.push_back({"eigen float dense", bench::median(ts) * 1e3});
    }

    auto time_tokens = [&](auto&& fn) {  // fn(token index, copy) -> per-token seconds measured inside
        std::vector<double> ts;
        for (int t = -static_cast<int>(copies); t < tokens; ++t) {  // one warm-up pass over the copies
            const std::size_t tok = static_cast<std::size_t>((t + tokens * 4) % tokens);
            const std::size_t c =
                static_cast<std::size_t>((t + static_cast<int>(copies) * 64) % static_cast<int>(copies));
            const auto s = Clock::now();
            fn(tok, c);
            if (t >= 0) ts.push_back(bench::seconds_since(s));
        }
        return bench::median(ts);
    };

    // ---- sparseinfer dense ---------------------------------------------------
    double dense4_ms = 0, dense4_int8_ms = 0;
    for (bool int8 : {false, true}) {
        q8.set_int8_activations(int8);
        for (auto& f : q4) f.set_int8_activations(int8);
        const double t8 =
            time_tokens([&](std::size_t tok, std::size_t) { q8.forward_dense(xs[tok].data(), y.data()); });
        const double t4 =
            time_tokens([&](std::size_t tok, std::size_t c) { q4[c].forward_dense(xs[tok].data(), y.data()); });
        const char* a = int8 ? " (int8 act)" : " (float act)";
        results.push_back({std::string("sparseinfer dense 8-bit") + a, t8 * 1e3});
        results.push_back({std::string("sparseinfer dense 4-bit") + a, t4 * 1e3});
        (int8 ? dense4_int8_ms : dense4_ms) = t4 * 1e3;
    }
    const bool use_int8 = dense4_int8_ms < dense4_ms;
    for (auto& f : q4) f.set_int8_activations(use_int8);
    const double dense4_best = std::min(dense4_ms, dense4_int8_ms);

    // ---- exact top-k and power-law lists per token, for recall and the oracle --
    std::vector<std::vector<float>> exact(static_cast<std::size_t>(tokens), std::vector<float>(h));
    {
        Eigen::Map<const RowMatrix> G(gate.data(), h, d);
        for (int t = 0; t < tokens; ++t) {
            Eigen::Map<const Eigen::VectorXf> x(xs[static_cast<std::size_t>(t)].data(), d);
            Eigen::VectorXf g = G * x;
            for (std::size_t i = 0; i < h; ++i)
                exact[static_cast<std::size_t>(t)][i] = std::fabs(si::silu(g[static_cast<Eigen::Index>(i)]));
        }
    }
    // Activation frequency of the exact top 10%: share carried by the top 26% of neurons.
    double top26_share = 0;
    {
        std::vector<double> count(h, 0);
        const std::size_t k = h / 10;
        for (auto& e : exact) {
            si::select_top_k(e.data(), h, k, idx.data());
            for (std::size_t i = 0; i < k; ++i) count[idx[i]] += 1;
        }
        std::sort(count.begin(), count.end(), std::greater<double>());
        const double total = std::accumulate(count.begin(), count.end(), 0.0);
        top26_share =
            std::accumulate(count.begin(), count.begin() + static_cast<std::ptrdiff_t>(h * 26 / 100), 0.0) / total;
    }

    // The predictor's factors: 8-bit (int8 P rows, a quarter of the bytes) or float;
    // the faster one is used below.
    const double pred_alone_ms = time_tokens([&](std::size_t tok, std::size_t c) {
                                     preds[c].scores(xs[tok].data(), si::Activation::silu, scores.data());
                                 }) *
                                 1e3;
    const double pred_float_ms = time_tokens([&](std::size_t tok, std::size_t c) {
                                     preds_f[c].scores(xs[tok].data(), si::Activation::silu, scores.data());
                                 }) *
                                 1e3;
    const bool float_pred = pred_float_ms < pred_alone_ms;
    std::vector<si::LowRankPredictor>& pr = float_pred ? preds_f : preds;
    const double shares[] = {0.50, 0.25, 0.10, 0.05};
    const std::size_t checks = 128;  // exact gate rows per token for the checked top-k (1.2% of the neurons)
    double oracle_ms[4] = {0, 0, 0, 0};
    struct ChecksPoint {  // checked top-k at 10% active
        std::size_t checks;
        double recall, select_ms, layer_ms;
    };
    std::vector<ChecksPoint> checks_sweep;
    for (int si_ = 0; si_ < 4; ++si_) {
        const double share = shares[si_];
        const std::size_t k = static_cast<std::size_t>(std::ceil(share * static_cast<double>(h)));
        const std::string pct = std::to_string(static_cast<int>(share * 100 + 0.5)) + "%";
        // oracle: Zipf(0.89) lists without replacement (Efraimidis-Spirakis keys)
        std::vector<std::vector<std::uint32_t>> lists(static_cast<std::size_t>(tokens));
        {
            std::mt19937 rng(99 + static_cast<unsigned>(si_));
            std::uniform_real_distribution<double> ud(1e-12, 1.0);
            std::vector<std::uint32_t> perm(h);
            std::iota(perm.begin(), perm.end(), 0u);
            std::shuffle(perm.begin(), perm.end(), rng);
            std::vector<float> key(h);
            for (auto& l : lists) {
                for (std::size_t i = 0; i < h; ++i)
                    key[i] = static_cast<float>(std::log(ud(rng)) * std::pow(1.0 + perm[i], 0.89));  // log(u^(1/w))
                l.resize(h);
                l.resize(si::select_top_k(key.data(), h, k, l.data()));
            }
        }
        const double t_or = time_tokens([&](std::size_t tok, std::size_t c) {
            q4[c].forward_sparse(xs[tok].data(), lists[tok].data(), lists[tok].size(), y.data());
        });
        oracle_ms[si_] = t_or * 1e3;
        results.push_back({"sparse 4-bit " + pct + " oracle (sparse part)", t_or * 1e3, share});

        // predictor, top-k: scores, exact top-k of the scores, sparse pass (all timed)
        std::vector<double> sel_t;
        std::vector<std::uint32_t> truth(h);
        const double t_pk = time_tokens([&](std::size_t tok, std::size_t c) {
            const auto s = Clock::now();
            pr[c].scores(xs[tok].data(), si::Activation::silu, scores.data());
            const std::size_t n = si::select_top_k(scores.data(), h, k, idx.data());
            sel_t.push_back(bench::seconds_since(s));
            q4[c].forward_sparse(xs[tok].data(), idx.data(), n, y.data());
        });
        double rec_k = 0;
        for (int t = 0; t < tokens; ++t) {
            pr[0].scores(xs[static_cast<std::size_t>(t)].data(), si::Activation::silu, scores.data());
            si::select_top_k(scores.data(), h, k, idx.data());
            si::select_top_k(exact[static_cast<std::size_t>(t)].data(), h, k, truth.data());
            rec_k += si::recall(idx.data(), k, truth.data(), k);
        }
        sel_t.erase(sel_t.begin(), sel_t.begin() + static_cast<std::ptrdiff_t>(copies));
        results.push_back({"sparse 4-bit " + pct + " predictor top-k", t_pk * 1e3, share, bench::median(sel_t) * 1e3,
                           rec_k / tokens});

        // predictor, checked top-k: as top-k, with exact gate values (the layer's 4-bit gate
        // rows) for the `checks` neurons predicted nearest the edge of the kept region.
        // x is quantized to int8 once per token, for the predictor, the checks' gate
        // dots and the layer (the fast kernel path throughout).
        si::QuantizedActivations xq;
        auto checked_top_k = [&](std::size_t tok, std::size_t c, std::size_t m) {
            si::quantize_activations(xs[tok].data(), d, xq);
            return pr[c].select_top_k_checked(
                xq, si::Activation::silu, k, m,
                [&](const std::uint32_t* ids, std::size_t m, float* pre) {
                    si::kernels::gemv_rows(q4[c].layout(), q4[c].matrix_data(si::FfnMatrix::gate), ids, m, xq, pre);
                },
                idx.data());
        };
        // One configuration: layer ms/token, median selection ms, recall of the top k.
        auto run_checked = [&](std::size_t m) {
            sel_t.clear();
            const double t = time_tokens([&](std::size_t tok, std::size_t c) {
                const auto s = Clock::now();
                const std::size_t n = checked_top_k(tok, c, m);
                sel_t.push_back(bench::seconds_since(s));
                if (use_int8)  // x was quantized for the selection: the layer reuses it
                    q4[c].forward_sparse(xq, idx.data(), n, y.data());
                else
                    q4[c].forward_sparse(xs[tok].data(), idx.data(), n, y.data());
            });
            double rec = 0;
            for (int tk = 0; tk < tokens; ++tk) {
                checked_top_k(static_cast<std::size_t>(tk), 0, m);
                si::select_top_k(exact[static_cast<std::size_t>(tk)].data(), h, k, truth.data());
                rec += si::recall(idx.data(), k, truth.data(), k);
            }
            sel_t.erase(sel_t.begin(), sel_t.begin() + static_cast<std::ptrdiff_t>(copies));
            return ChecksPoint{m, rec / tokens, bench::median(sel_t) * 1e3, t * 1e3};
        };
        const ChecksPoint main_checked = run_checked(checks);
        results.push_back({"sparse 4-bit " + pct + " predictor top-k + " + std::to_string(checks) + " checks",
                           main_checked.layer_ms, share, main_checked.select_ms, main_checked.recall});
        if (share == 0.10)  // recall and selection time against the number of checks
            for (std::size_t m : {std::size_t{0}, std::size_t{16}, std::size_t{32}, std::size_t{64}, checks,
                                  std::size_t{256}, std::size_t{512}})
                checks_sweep.push_back(m == checks ? main_checked : run_checked(m));

        // predictor, calibrated threshold: the per-layer threshold that keeps `share` of the
        // calibration tokens' scores; per token one comparison per neuron.
        si::ThresholdCalibrator cal;
        for (auto& x : calib) {
            pr[0].scores(x.data(), si::Activation::silu, scores.data());
            cal.record(scores.data(), h);
        }
        const si::Selection sel = si::Selection::at_least(cal.threshold_for_fraction(share));
        sel_t.clear();
        double kept = 0;
        const double t_pr = time_tokens([&](std::size_t tok, std::size_t c) {
            const auto s = Clock::now();
            pr[c].scores(xs[tok].data(), si::Activation::silu, scores.data());
            const std::size_t n = si::select(sel, scores.data(), h, idx.data());
            sel_t.push_back(bench::seconds_since(s));
            kept += static_cast<double>(n);
            q4[c].forward_sparse(xs[tok].data(), idx.data(), n, y.data());
        });
        double rec = 0;
        for (int t = 0; t < tokens; ++t) {
            pr[0].scores(xs[static_cast<std::size_t>(t)].data(), si::Activation::silu, scores.data());
            const std::size_t n = si::select(sel, scores.data(), h, idx.data());
            si::select_top_k(exact[static_cast<std::size_t>(t)].data(), h, k, truth.data());
            rec += si::recall(idx.data(), n, truth.data(), k);
        }
        sel_t.erase(sel_t.begin(), sel_t.begin() + static_cast<std::ptrdiff_t>(copies));
        const double mean_active =
            kept / (static_cast<double>(tokens + static_cast<int>(copies)) * static_cast<double>(h));
        results.push_back(
            {"sparse 4-bit " + pct + " predictor", t_pr * 1e3, mean_active, bench::median(sel_t) * 1e3, rec / tokens});

        // gate-first
        const double t_gf = time_tokens([&](std::size_t tok, std::size_t c) {
            q4[c].forward_gate_first(xs[tok].data(), si::Selection::top_k(k), y.data());
        });
        results.push_back({"sparse 4-bit " + pct + " gate-first", t_gf * 1e3, share, -1, 1.0});
    }

    // ---- report ----------------------------------------------------------------
    auto find = [&](const std::string& name) {
        for (auto& r : results)
            if (r.name == name) return r;
        return Result{};
    };
    const double eigen_ms = find("eigen float dense").ms;
    std::printf("\n%-44s %10s %7s %9s %9s %11s %7s\n", "configuration", "ms/token", "vs dense4", "vs Eigen",
                "select ms", "recall", "active");
    for (const auto& r : results)
        std::printf("%-44s %10.3f %9.2f %9.1f %11s %7s %6.1f%%\n", r.name.c_str(), r.ms, dense4_best / r.ms,
                    eigen_ms / r.ms, r.select_ms > 0 ? std::to_string(r.select_ms).substr(0, 6).c_str() : "-",
                    r.recall >= 0 ? std::to_string(r.recall).substr(0, 5).c_str() : "-", 100 * r.active);
    const double dense4_bytes = static_cast<double>(q4[0].memory_bytes());
    const Result p10 = find("sparse 4-bit 10% predictor"), g10 = find("sparse 4-bit 10% gate-first");
    std::printf("\ndense 4-bit uses %s activations (faster); effective bandwidth %.1f GB/s = %.0f%% of the probe\n",
                use_int8 ? "int8" : "float", dense4_bytes / (dense4_best * 1e-3) / 1e9,
                100.0 * dense4_bytes / (dense4_best * 1e-3) / 1e9 / bw);
    std::printf("power law: the top 26%% of neurons carry %.0f%% of the exact top-10%% activations\n",
                100 * top26_share);
    std::printf("bars (4-bit, 10%% active):\n");
    std::printf("  predictor vs dense 4-bit: %.2fx (>= 5)   vs Eigen float: %.1fx (>= 30)\n", dense4_best / p10.ms,
                eigen_ms / p10.ms);
    std::printf("  gate-first vs dense 4-bit: %.2fx (>= 2.2)\n", dense4_best / g10.ms);
    std::printf("  sparse part 5%% / 10%%: %.2f (<= 0.6)\n", oracle_ms[3] / oracle_ms[2]);
    const Result k10 = find("sparse 4-bit 10% predictor top-k");
    const Result c10 = find("sparse 4-bit 10% predictor top-k + " + std::to_string(checks) + " checks");
    std::printf(
        "  predictor scores: 8-bit factors %.3f ms, float factors %.3f ms (using %s) = %.1f%% of dense 4-bit;\n"
        "  with the threshold selection %.3f ms = %.1f%% (<= 5%%); with exact top-k %.3f ms = %.1f%%\n",
        pred_alone_ms, pred_float_ms, float_pred ? "float" : "8-bit",
        100 * std::min(pred_alone_ms, pred_float_ms) / dense4_best, p10.select_ms, 100 * p10.select_ms / dense4_best,
        k10.select_ms, 100 * k10.select_ms / dense4_best);
    std::printf("  predictor share of the 10%% predictor layer's time: %.0f%%\n", 100 * p10.select_ms / p10.ms);
    std::printf("  recall of the top 10%% (predictor top-k): %.3f (>= 0.9); with the calibrated threshold %.3f\n",
                k10.recall, p10.recall);
    const double bound10 = signal_recall(exact, h / 10 + (h % 10 ? 1 : 0));
    std::printf(
        "  an ideal predictor that knew the noise-free planted signal exactly: recall %.3f (the noise's limit)\n",
        bound10);
    std::printf(
        "  checked top-k (%zu exact gate rows): recall %.3f, selection %.3f ms = %.1f%% of dense 4-bit (<= 5%%)\n",
        checks, c10.recall, c10.select_ms, 100 * c10.select_ms / dense4_best);

    std::printf("  checked top-k at 10%%, by number of checks (recall / selection ms / share of dense 4-bit):");
    for (const auto& cp : checks_sweep)
        std::printf(" %zu: %.3f / %.3f / %.1f%%", cp.checks, cp.recall, cp.select_ms, 100 * cp.select_ms / dense4_best);
    std::printf("\n");

    // Recall of the top 10% against the planted noise level (full run only: each
    // level regenerates the gate and recalibrates the predictor, float factors).
    struct NoisePoint {
        double noise, recall, bound;
    };
    std::vector<NoisePoint> sweep{{noise_energy, k10.recall, bound10}};
    if (!quick) {
        for (double ne : {0.01, 0.05, 0.10, 0.20}) {
            build_gate(ne, 42);
            auto p = si::LowRankPredictor::from_gate(gate.data(), h, d, popts);
            Eigen::Map<const RowMatrix> G(gate.data(), h, d);
            const std::size_t k = h / 10;
            std::vector<std::uint32_t> truth(h);
            std::vector<float> ex(h);
            std::vector<std::vector<float>> exs(static_cast<std::size_t>(tokens));
            double rec = 0;
            for (int t = 0; t < tokens; ++t) {
                Eigen::Map<const Eigen::VectorXf> x(xs[static_cast<std::size_t>(t)].data(), d);
                const Eigen::VectorXf g = G * x;
                for (std::size_t i = 0; i < h; ++i) ex[i] = std::fabs(si::silu(g[static_cast<Eigen::Index>(i)]));
                exs[static_cast<std::size_t>(t)] = ex;
                p.scores(xs[static_cast<std::size_t>(t)].data(), si::Activation::silu, scores.data());
                si::select_top_k(scores.data(), h, k, idx.data());
                si::select_top_k(ex.data(), h, k, truth.data());
                rec += si::recall(idx.data(), k, truth.data(), k);
            }
            sweep.push_back({ne, rec / tokens, signal_recall(exs, k)});
        }
    }
    std::printf(
        "  recall of the top 10%% against the planted noise's share of the gate's energy"
        " (predictor / ideal noise-free signal):");
    for (auto& sr : sweep) std::printf(" %.0f%%: %.3f / %.3f", 100 * sr.noise, sr.recall, sr.bound);
    std::printf("\n");

    bench::Json j;
    j.begin_benchmark("bench_ffn");
    j.field("d_model", d);
    j.field("hidden", h);
    j.field("isa", si::active_isa());
    j.field("quick", quick);
    j.field("read_bandwidth_gbs", bw);
    j.field("dense4_activations", use_int8 ? "int8" : "float");
    j.field("tokens", tokens);
    j.field("copies", copies);
    j.field("predictor_rank", pred0.rank());
    j.field("predictor_bytes", preds[0].memory_bytes());
    j.field("predictor_scores_ms", pred_alone_ms);
    j.field("predictor_scores_float_ms", pred_float_ms);
    j.field("predictor_float_factors", float_pred);
    j.field("top26_share", top26_share);
    j.field("predictor_checks", checks);
    j.object_array("recall_vs_noise", sweep, [](bench::Json& o, const NoisePoint& sr) {
        o.field("noise_energy", sr.noise);
        o.field("recall_top10", sr.recall);
        o.field("recall_top10_signal_bound", sr.bound);
    });
    j.object_array("checked_top10_by_checks", checks_sweep, [&](bench::Json& o, const ChecksPoint& cp) {
        o.field("checks", cp.checks);
        o.field("recall", cp.recall);
        o.field("select_ms", cp.select_ms);
        o.field("select_share_of_dense4", cp.select_ms / dense4_best);
        o.field("ms_per_token", cp.layer_ms);
    });
    j.object_array("results", results, [&](bench::Json& o, const Result& r) {
        o.field("name", r.name);
        o.field("ms_per_token", r.ms);
        o.field("active", r.active);
        o.field("select_ms", r.select_ms);
        o.field("recall", r.recall);
        o.field("speedup_vs_dense4", dense4_best / r.ms);
        o.field("speedup_vs_eigen", eigen_ms / r.ms);
    });
    j.end_object();
    if (!j.write(out_path)) return 1;
    std::printf("wrote %s\n", out_path.c_str());
    return 0;
}
