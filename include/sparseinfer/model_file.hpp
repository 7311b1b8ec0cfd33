// sparseinfer/model_file.hpp - a whole model's FFN layers in one tensor file,
// under documented names, opened by mapping and read in place.
//
// Layer i's matrices are stored as tensors named (docs/format.md, "Model files")
//
//   layers.<i>.ffn.gate     [hidden][d_model]   absent for a plain MLP
//   layers.<i>.ffn.up       [hidden][d_model]
//   layers.<i>.ffn.down_t   [hidden][d_model]   down transposed: one row per neuron
//
// with i = 0, 1, ... in decimal without leading zeros; other tensors (an
// engine's own, under other names) may sit beside them. A layer built from the
// file views the mapped bytes (SparseFfn::from_views), so opening a model is
// mapping it and checking it, with no copy and no quantization.
//
//   sparseinfer::TensorFileWriter out;                       // quantize once:
//   for (std::size_t i = 0; i < layers.size(); ++i) sparseinfer::add_ffn_layer(out, i, layers[i]);
//   out.write("model.sitf");
//   sparseinfer::MappedFile file("model.sitf");               // then, at every start:
//   auto tf = sparseinfer::TensorFile::from_bytes(file.data(), file.size());
//   auto ffn0 = sparseinfer::ffn_layer_from<4>(tf, 0, sparseinfer::Activation::silu);
#pragma once

#include <cstddef>
#include <string>

#include "activation.hpp"
#include "error.hpp"
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

}  // namespace sparseinfer
