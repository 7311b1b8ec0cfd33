// sparseinfer/sparseinfer.hpp - the whole library in one include, but for the two
// headers that need Eigen.
//
//   #include <sparseinfer/sparseinfer.hpp>
//   auto w = sparseinfer::QuantizedWeights<4>::from_f32(data, rows, cols);
//   sparseinfer::SparseFfn<4> ffn(gate, up, down, d_model, hidden, sparseinfer::Activation::silu);
//
// Standard C++17 only: a consumer links sparseinfer::sparseinfer and nothing
// else. <sparseinfer/eigen.hpp> (from_eigen / to_eigen) and
// <sparseinfer/predictor.hpp> (LowRankPredictor) need Eigen 3.4 and are
// included explicitly.
#pragma once

#include "activation.hpp"
#include "activation_trace.hpp"
#include "error.hpp"
#include "executor.hpp"
#include "ggml_types.hpp"
#include "gguf.hpp"
#include "gguf_writer.hpp"
#include "kernels/dispatch.hpp"
#include "mapped_file.hpp"
#include "model_file.hpp"
#include "neuron_cache.hpp"
#include "policies.hpp"
#include "predictor_factors.hpp"
#include "quantized_activations.hpp"
#include "quantized_weights.hpp"
#include "quantized_weights_view.hpp"
#include "selection.hpp"
#include "serialize.hpp"
#include "slot_store.hpp"
#include "sparse_ffn.hpp"
#include "tensor_file.hpp"
#include "thread_pool.hpp"
#include "version.hpp"
