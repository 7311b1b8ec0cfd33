// sparseinfer/predictor_factors.hpp - the stored form of a quantized low-rank
// predictor's factors, what LowRankPredictor::factors() gives, a model file
// holds (model_file.hpp: add_predictor, predictor_from) and
// LowRankPredictor::from_views builds a predictor from.
//
// The two factors are not owned: Q is an 8-bit matrix view and P a pointer to
// int8 panels, both typically in a mapped file; the per-neuron floats (P's row
// scales and the error scales of checked top-k) are small and held by value.
// This header needs no Eigen, so writing and reading factors does not either.
//
//   sparseinfer::TensorFileWriter out;
//   sparseinfer::add_predictor(out, 0, pred.factors());      // pred quantized
//   out.write("model.sitf");
//   ...
//   auto again = sparseinfer::LowRankPredictor::from_views(sparseinfer::predictor_from(tf, 0));
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quantized_weights_view.hpp"

namespace sparseinfer {

/// The 8-bit factors of a quantized LowRankPredictor as stored (see the header
/// comment). hidden = p_scales.size(), rank = q.rows(), d_model = q.cols().
struct PredictorFactors {
    QuantizedWeightsView<8> q;  ///< Q [rank][d_model], 8 bits, not owned
    /// P [hidden][rank] as int8 codes in [-127, 127], in panels of 16 rows
    /// (layout in detail/int8_panels.hpp; padding rows and columns zero); not owned.
    const std::int8_t* p_panels = nullptr;
    /// Bytes at p_panels: ceil(hidden / 16) * 16 * (rank rounded up to a multiple of 4).
    std::size_t p_panel_bytes = 0;
    std::vector<float> p_scales;     ///< [hidden] the scale of each row of P (value = scale * code)
    std::vector<float> error_scale;  ///< [hidden] sigma_i, LowRankPredictor::error_scale()

    /// Neurons predicted.
    std::size_t hidden() const noexcept { return p_scales.size(); }
};

}  // namespace sparseinfer
