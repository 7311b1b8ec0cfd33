// sparseinfer/model_file.hpp - a whole model's FFN layers in one tensor file,
// under documented names, opened by mapping and read in place.
//
// Layer i's matrices are stored as tensors named (docs/format.md, "Model files")
//
//   layers.<i>.ffn.gate     [hidden][d_model]   absent for a plain MLP
//   layers.<i>.ffn.up       [hidden][d_model]
//   layers.<i>.ffn.down_t   [hidden][d_model]   down transposed: one row per neuron
//
// and, optionally, the layer's quantized low-rank predictor (predictor.hpp,
// predictor_factors.hpp) as
//
//   layers.<i>.predictor.q         8-bit [rank][d_model]   the factor Q
//   layers.<i>.predictor.p_panels  int8 array              P's rows in panels of 16 (detail/int8_panels.hpp)
//   layers.<i>.predictor.p_scales  float32 array [hidden]  P's row scales
//   layers.<i>.predictor.sigma     float32 array [hidden]  the error scales of checked top-k
//
// and, optionally, a neuron-cache profile of the layer (per-neuron activation
// counts, e.g. what a StaticProfile cache is seeded from) as
//
//   layers.<i>.cache.profile       int8 array              NeuronCache::save_profile's bytes
//
// with i = 0, 1, ... in decimal without leading zeros; other tensors (an
// engine's own, under other names) may sit beside them. A layer built from the
// file views the mapped bytes (SparseFfn::from_views), and so does a predictor
// (LowRankPredictor::from_views(predictor_from(tf, i))): opening a model is
// mapping it and checking it, with no copy of a matrix and no quantization.
//
//   sparseinfer::TensorFileWriter out;                       // quantize once:
//   for (std::size_t i = 0; i < layers.size(); ++i) sparseinfer::add_ffn_layer(out, i, layers[i]);
//   out.write("model.sitf");
//   sparseinfer::MappedFile file("model.sitf");               // then, at every start:
//   auto tf = sparseinfer::TensorFile::from_bytes(file.data(), file.size());
//   auto ffn0 = sparseinfer::ffn_layer_from<4>(tf, 0, sparseinfer::Activation::silu);
//   if (sparseinfer::has_predictor(tf, 0))                   // saved with add_predictor(out, 0, pred.factors())
//       auto pred0 = sparseinfer::LowRankPredictor::from_views(sparseinfer::predictor_from(tf, 0));
//   if (sparseinfer::has_cache_profile(tf, 0))               // saved with add_cache_profile(out, 0, cache)
//       sparseinfer::load_cache_profile(tf, 0, ffn0.cache());
#pragma once

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "activation.hpp"
#include "detail/int8_panels.hpp"
#include "error.hpp"
#include "predictor_factors.hpp"
#include "sparse_ffn.hpp"
#include "tensor_file.hpp"

namespace sparseinfer {

/// The tensor name of one matrix of layer `layer` (see the header comment).
inline std::string ffn_tensor_name(std::size_t layer, FfnMatrix which) {
    const char* part = which == FfnMatrix::gate ? "gate" : which == FfnMatrix::up ? "up" : "down_t";
    return "layers." + std::to_string(layer) + ".ffn." + part;
}

/// Adds layer `layer`'s matrices to `out` under their names. The layer's bytes
/// are kept by reference: the layer must outlive out.write().
template <int Bits, class Policy>
void add_ffn_layer(TensorFileWriter& out, std::size_t layer, const SparseFfn<Bits, Policy>& ffn) {
    if (ffn.gated()) out.add(ffn_tensor_name(layer, FfnMatrix::gate), ffn.matrix(FfnMatrix::gate));
    out.add(ffn_tensor_name(layer, FfnMatrix::up), ffn.matrix(FfnMatrix::up));
    out.add(ffn_tensor_name(layer, FfnMatrix::down), ffn.matrix(FfnMatrix::down));
}

/// Layers 0..n-1 present in the file: n is the first layer without an up matrix.
inline std::size_t ffn_layer_count(const TensorFile& file) {
    std::size_t n = 0;
    while (file.find(ffn_tensor_name(n, FfnMatrix::up)) != nullptr) ++n;
    return n;
}

/// Layer `layer` of the file as a SparseFfn over views of its bytes (gated when
/// the file holds its gate). The file's bytes must outlive the layer. Throws
/// sparseinfer::error when a matrix is missing, is not Bits wide, or the three
/// do not form one layer.
template <int Bits, class Policy = policy::FrequencyThreshold>
SparseFfn<Bits, Policy> ffn_layer_from(const TensorFile& file, std::size_t layer, Activation act,
                                       Policy policy = Policy{}) {
    const std::string up = ffn_tensor_name(layer, FfnMatrix::up), down = ffn_tensor_name(layer, FfnMatrix::down);
    if (file.find(up) == nullptr)
        throw error("model file has no layer " + std::to_string(layer) + " (no tensor '" + up + "')");
    if (file.find(down) == nullptr)
        throw error("model file's layer " + std::to_string(layer) + " has no tensor '" + down + "'");
    const std::string gate = ffn_tensor_name(layer, FfnMatrix::gate);
    if (file.find(gate) != nullptr)
        return SparseFfn<Bits, Policy>::from_views(file.view<Bits>(gate), file.view<Bits>(up), file.view<Bits>(down),
                                                   act, policy);
    return SparseFfn<Bits, Policy>::from_views(file.view<Bits>(up), file.view<Bits>(down), act, policy);
}

/// A part of a layer's stored predictor (see the header comment).
enum class PredictorPart { q, p_panels, p_scales, sigma };

/// The tensor name of one part of layer `layer`'s predictor (see the header comment).
inline std::string predictor_tensor_name(std::size_t layer, PredictorPart part) {
    const char* name = part == PredictorPart::q          ? "q"
                       : part == PredictorPart::p_panels ? "p_panels"
                       : part == PredictorPart::p_scales ? "p_scales"
                                                         : "sigma";
    return "layers." + std::to_string(layer) + ".predictor." + name;
}

/// Adds layer `layer`'s predictor factors (LowRankPredictor::factors() of a
/// quantized predictor) to `out`. Q and P's panels are kept by reference (the
/// predictor must outlive out.write()); the scales are copied. Throws
/// sparseinfer::error on empty factors or scales of different lengths.
inline void add_predictor(TensorFileWriter& out, std::size_t layer, const PredictorFactors& f) {
    if (f.q.rows() == 0 || f.p_panels == nullptr || f.p_panel_bytes == 0 || f.hidden() == 0)
        throw error("layer " + std::to_string(layer) + "'s predictor factors are empty");
    if (f.error_scale.size() != f.hidden())
        throw error("layer " + std::to_string(layer) + "'s predictor has " + std::to_string(f.error_scale.size()) +
                    " error scales for " + std::to_string(f.hidden()) + " neurons");
    out.add(predictor_tensor_name(layer, PredictorPart::q), f.q);
    out.add_array(predictor_tensor_name(layer, PredictorPart::p_panels), f.p_panels, f.p_panel_bytes);
    out.add_array(predictor_tensor_name(layer, PredictorPart::p_scales), f.p_scales.data(), f.p_scales.size());
    out.add_array(predictor_tensor_name(layer, PredictorPart::sigma), f.error_scale.data(), f.error_scale.size());
}

/// True when the file holds a predictor for layer `layer` (its tensor Q).
inline bool has_predictor(const TensorFile& file, std::size_t layer) {
    return file.find(predictor_tensor_name(layer, PredictorPart::q)) != nullptr;
}

/// Layer `layer`'s predictor factors in the file, for LowRankPredictor::from_views:
/// Q and P's panels view the file's bytes (which must outlive the predictor),
/// the scales are copied. Checks that the four tensors are present with their
/// kinds, that their sizes agree (and agree with the layer's up matrix when the
/// file holds it); throws sparseinfer::format_error naming the tensor and what
/// was wrong. from_views then checks the values.
inline PredictorFactors predictor_from(const TensorFile& file, std::size_t layer) {
    const std::string where = "model file, layer " + std::to_string(layer) + "'s predictor: ";
    auto matrix_of = [](int bits) { return (bits == 8 ? "an " : "a ") + std::to_string(bits) + "-bit matrix"; };
    auto entry = [&](PredictorPart part, int bits, ArrayType array) -> const TensorFile::Entry& {
        const std::string name = predictor_tensor_name(layer, part);
        const TensorFile::Entry* e = file.find(name);
        if (e == nullptr) throw format_error(where + "no tensor '" + name + "'");
        if (e->bits != bits || e->array != array)
            throw format_error(where + "tensor '" + name + "' is " +
                               (e->array != ArrayType::none
                                    ? std::string("an array of ") + detail::array_type_name(e->array)
                                    : matrix_of(e->bits)) +
                               "; expected " +
                               (array != ArrayType::none ? std::string("an array of ") + detail::array_type_name(array)
                                                         : matrix_of(bits)));
        return *e;
    };
    const TensorFile::Entry& q = entry(PredictorPart::q, 8, ArrayType::none);
    const TensorFile::Entry& panels = entry(PredictorPart::p_panels, 0, ArrayType::int8);
    const TensorFile::Entry& scales = entry(PredictorPart::p_scales, 0, ArrayType::float32);
    const TensorFile::Entry& sigma = entry(PredictorPart::sigma, 0, ArrayType::float32);
    const std::size_t hidden = scales.rows, rank = q.rows;
    if (sigma.rows != hidden)
        throw format_error(where + "tensor '" + std::string(sigma.name) + "' holds " + std::to_string(sigma.rows) +
                           " values; '" + std::string(scales.name) + "' holds " + std::to_string(hidden) +
                           " (both one per neuron)");
    std::size_t expected = 0;
    const std::size_t depth = detail::s8_panel_depth(rank);
    if (depth > detail::s8_panel_max_depth)
        throw format_error(where + "rank (rows of '" + std::string(q.name) + "') is " + std::to_string(rank) +
                           "; 8-bit factors allow at most " + std::to_string(detail::s8_panel_max_depth));
    if (!detail::checked_mul(detail::s8_panel_count(hidden) * detail::s8_panel_rows, depth, expected) ||
        expected != panels.rows)
        throw format_error(where + "tensor '" + std::string(panels.name) + "' holds " + std::to_string(panels.rows) +
                           " bytes; " + std::to_string(hidden) + " neurons of rank " + std::to_string(rank) + " take " +
                           std::to_string(expected) + " in panels of 16");
    if (const TensorFile::Entry* up = file.find(ffn_tensor_name(layer, FfnMatrix::up))) {
        if (up->rows != hidden || up->cols != q.cols)
            throw format_error(where + "it predicts " + std::to_string(hidden) + " neurons from " +
                               std::to_string(q.cols) + " inputs; the layer's '" + std::string(up->name) + "' is " +
                               std::to_string(up->rows) + " x " + std::to_string(up->cols));
    }
    PredictorFactors f;
    f.q = file.view<8>(q);
    f.p_panels = reinterpret_cast<const std::int8_t*>(file.array<std::int8_t>(panels).bytes());
    f.p_panel_bytes = panels.rows;
    f.p_scales = file.array<float>(scales).to_vector();
    f.error_scale = file.array<float>(sigma).to_vector();
    return f;
}

/// The tensor name of layer `layer`'s neuron-cache profile (see the header comment).
inline std::string cache_profile_tensor_name(std::size_t layer) {
    return "layers." + std::to_string(layer) + ".cache.profile";
}

/// Adds `cache`'s profile (NeuronCache::save_profile) as layer `layer`'s, copied now.
template <class Policy>
void add_cache_profile(TensorFileWriter& out, std::size_t layer, const NeuronCache<Policy>& cache) {
    std::ostringstream profile;
    cache.save_profile(profile);
    const std::string bytes = profile.str();
    out.add_array(cache_profile_tensor_name(layer), std::vector<std::int8_t>(bytes.begin(), bytes.end()));
}

/// True when the file holds a neuron-cache profile for layer `layer`.
inline bool has_cache_profile(const TensorFile& file, std::size_t layer) {
    return file.find(cache_profile_tensor_name(layer)) != nullptr;
}

/// Loads layer `layer`'s stored profile into `cache` (NeuronCache::load_profile:
/// counts and tokens replaced, the residents chosen again). Throws
/// sparseinfer::format_error naming the tensor when it is missing or not an
/// int8 array, or when its bytes are not a profile of as many neurons as the
/// cache has (then with the profile's error and byte offset); the cache is
/// then unchanged.
template <class Policy>
void load_cache_profile(const TensorFile& file, std::size_t layer, NeuronCache<Policy>& cache) {
    const std::string name = cache_profile_tensor_name(layer);
    const TensorFile::Entry* e = file.find(name);
    if (e == nullptr) throw format_error("model file has no tensor '" + name + "'");
    if (e->array != ArrayType::int8)
        throw format_error("model file's tensor '" + name + "' is not an int8 array (a saved profile's bytes)");
    const auto bytes = file.array<std::int8_t>(*e);
    std::istringstream in(std::string(reinterpret_cast<const char*>(bytes.bytes()), e->rows));
    try {
        cache.load_profile(in);
    } catch (const format_error& err) {
        throw format_error("model file's tensor '" + name + "': " + err.what());
    }
}

}  // namespace sparseinfer
