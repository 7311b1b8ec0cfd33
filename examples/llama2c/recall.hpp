// llama2c/recall.hpp - how well a low-rank predictor finds a real model's
// active neurons, as a function of its rank.
//
// Runs the float model greedily for `steps` tokens, records every layer's FFN
// input, and for each rank measures the recall of the exact top 10/25/50% of
// neurons by |silu(gate x)|: for the truncated-SVD predictor, and for the same
// predictor refined by least squares on the even positions (evaluated on the
// odd ones only, so the refinement is not scored on its own training data).
#pragma once

#include <sparseinfer/predictor.hpp>
#include <sparseinfer/selection.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model.hpp"

namespace llama2c {

inline void write_recall_vs_rank(const Model& m, int steps, const std::string& path) {
    const Config& c = m.config;
    const std::size_t d = static_cast<std::size_t>(c.dim), h = static_cast<std::size_t>(c.hidden_dim);
    std::vector<std::vector<float>> inputs(static_cast<std::size_t>(c.n_layers));  // [layer][pos * d]
    Transformer t(m, [&](int layer, const float* x, float* out) {
        inputs[static_cast<std::size_t>(layer)].insert(inputs[static_cast<std::size_t>(layer)].end(), x, x + d);
        float_ffn(m, layer, x, out);
    });
    int token = 1;
    for (int pos = 0; pos < steps; ++pos) token = argmax(t.forward(token, pos));

    std::vector<std::size_t> ranks;
    for (std::size_t r : {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128})
        if (r <= std::min(d, h)) ranks.push_back(r);
    const double shares[] = {0.10, 0.25, 0.50};
    std::ofstream out(path);
    if (!out) throw std::runtime_error("cannot write '" + path + "'");
    out << "{\n  \"what\": \"recall of the exact top share of FFN neurons by |silu(gate x)| for a rank-r predictor\",\n"
        << "  \"tokens\": " << steps << ", \"dim\": " << d << ", \"hidden\": " << h << ",\n  \"layers\": [\n";
    std::printf("%-6s %-5s %-10s %-10s %-10s %-18s\n", "layer", "rank", "recall@10%", "recall@25%", "recall@50%",
                "refined recall@10%");
    std::vector<float> exact(h), pred(h);
    std::vector<std::uint32_t> truth(h), chosen(h);
    for (int l = 0; l < c.n_layers; ++l) {
        const std::vector<float>& X = inputs[static_cast<std::size_t>(l)];
        const float* gate = m.gate(l);
        // Even positions train the refinement; odd ones evaluate both predictors.
        std::vector<float> train;
        for (int pos = 0; pos < steps; pos += 2)
            train.insert(train.end(), X.begin() + pos * static_cast<long>(d),
                         X.begin() + (pos + 1) * static_cast<long>(d));
        out << "    {\"layer\": " << l << ", \"ranks\": [\n";
        for (std::size_t ri = 0; ri < ranks.size(); ++ri) {
            auto svd = sparseinfer::LowRankPredictor::from_gate(gate, h, d, {ranks[ri]});
            auto refined = svd;
            refined.refine(train.data(), train.size() / d, gate);
            double rec[3] = {0, 0, 0}, rec_ref = 0;
            int n_eval = 0;
            for (int pos = 1; pos < steps; pos += 2, ++n_eval) {
                const float* x = X.data() + static_cast<std::size_t>(pos) * d;
                for (std::size_t i = 0; i < h; ++i) {
                    double g = 0;
                    for (std::size_t k = 0; k < d; ++k) g += static_cast<double>(gate[i * d + k]) * x[k];
                    exact[i] = static_cast<float>(std::fabs(g / (1.0 + std::exp(-g))));
                }
                svd.scores(x, sparseinfer::Activation::silu, pred.data());
                for (int s = 0; s < 3; ++s) {
                    const std::size_t k = static_cast<std::size_t>(std::ceil(shares[s] * static_cast<double>(h)));
                    sparseinfer::select_top_k(exact.data(), h, k, truth.data());
                    sparseinfer::select_top_k(pred.data(), h, k, chosen.data());
                    rec[s] += sparseinfer::recall(chosen.data(), k, truth.data(), k);
                }
                refined.scores(x, sparseinfer::Activation::silu, pred.data());
                const std::size_t k = static_cast<std::size_t>(std::ceil(0.10 * static_cast<double>(h)));
                sparseinfer::select_top_k(exact.data(), h, k, truth.data());
                sparseinfer::select_top_k(pred.data(), h, k, chosen.data());
                rec_ref += sparseinfer::recall(chosen.data(), k, truth.data(), k);
            }
            for (double& r : rec) r /= n_eval > 0 ? n_eval : 1;
            rec_ref /= n_eval > 0 ? n_eval : 1;
            std::printf("%-6d %-5zu %-10.3f %-10.3f %-10.3f %-18.3f\n", l, ranks[ri], rec[0], rec[1], rec[2], rec_ref);
            char line[256];
            std::snprintf(line, sizeof line,
                          "      {\"rank\": %zu, \"recall_10\": %.4f, \"recall_25\": %.4f, \"recall_50\": %.4f, "
                          "\"refined_recall_10\": %.4f}%s\n",
                          ranks[ri], rec[0], rec[1], rec[2], rec_ref, ri + 1 < ranks.size() ? "," : "");
            out << line;
        }
        out << "    ]}" << (l + 1 < c.n_layers ? "," : "") << "\n";
    }
    out << "  ]\n}\n";
}

}  // namespace llama2c
