// sparseinfer/detail/ffn_rows.hpp - the arithmetic of a SparseFfn over a list
// of neurons, apart from its cache, store and policy.
//
// For neuron i the layer computes h_i = act(gate_i . x) * (up_i . x) (gated) or
// h_i = act(up_i . x) (plain MLP), and adds h_i * down_i to y. FfnRows holds
// that computation for one code width: the scratch, the input of the call,
// and the split of a list into chunks run as tasks of an executor
// (detail/row_chunks.hpp). Chunk 0 adds to y and every other chunk to its own
// partial output, added to y in chunk order afterwards, so no two tasks write
// the same memory and the result does not depend on the number of threads.
// It depends on Bits only, so a program compiles it once per width whatever
// the policies of its layers.
//
//   detail::FfnRows<4> rows;
//   rows.reset(d_model, hidden, Activation::silu, /*gated=*/true);
//   rows.set_input(x, nullptr);
//   rows.compute(source, list, list, n, false, y, /*overwrite=*/true, executor);
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../activation.hpp"
#include "../executor.hpp"
#include "../kernels/dispatch.hpp"
#include "../quantized_activations.hpp"
#include "aligned_allocator.hpp"
#include "row_chunks.hpp"
#include "row_format.hpp"

namespace sparseinfer::detail {

/// Where a set of neurons' rows lives: the layer's three matrices, or the
/// bundles of a slot store (then gate, up and down point into one bundle and
/// layout->row_stride is the bundle size). `gate` is unused without a gate.
struct FfnSource {
    const RowLayout* layout;
    const std::uint8_t* gate;
    const std::uint8_t* up;
    const std::uint8_t* down;
};

/// The computation of a layer's neurons for code width Bits (see the header comment).
template <int Bits>
class FfnRows {
public:
    /// Sizes the scratch for `hidden` neurons of `d_model` inputs.
    void reset(std::size_t d_model, std::size_t hidden, Activation act, bool gated) {
        d_model_ = d_model;
        hidden_ = hidden;
        act_ = act;
        gated_ = gated;
        for (auto* v : {&g_, &u_, &h_, &gate_all_}) v->assign(hidden_, 0.0f);
        // One partial output per chunk but the first, for the largest list (every neuron);
        // rows 64 bytes apart, so tasks never share a cache line.
        partial_stride_ = (d_model_ + 15) / 16 * 16;
        partials_.assign((RowChunks::max_count(hidden_) - 1) * partial_stride_, 0.0f);
    }

    /// The input of this call: float x, or int8 xq when xq is not null.
    void set_input(const float* x, const QuantizedActivations* xq) noexcept {
        x_ = x;
        xq_ = xq;
    }

    /// gate_values()[i] = the first matrix's value of every neuron i (gate, or
    /// up without a gate), from the layer's own rows `s`.
    void gate_all(const FfnSource& s, const Executor& executor) {
        const RowLayout& l = *s.layout;
        const std::uint8_t* first = gated_ ? s.gate : s.up;
        const RowChunks chunks(hidden_);
        auto task = [&](std::size_t c) {
            const std::size_t b = chunks.begin(c);
            gemv(l, first + b * l.row_stride, nullptr, chunks.end(c) - b, gate_all_.data() + b);
        };
        executor(chunks.count(), task);
    }
    /// What gate_all() computed.
    const std::vector<float>& gate_values() const noexcept { return gate_all_; }

    /// Computes n neurons at rows `rows` of `src` (nullptr: 0..n-1) and adds
    /// them to y (or sets y when `overwrite`). `neurons` are their ids, for
    /// reading the gate values of gate_all() (gate_known).
    void compute(const FfnSource& src, const std::uint32_t* rows, const std::uint32_t* neurons, std::size_t n,
                 bool gate_known, float* y, bool overwrite, const Executor& executor) {
        if (overwrite) std::fill_n(y, d_model_, 0.0f);
        if (n == 0) return;
        const RowChunks chunks(n);
        auto task = [&](std::size_t c) {
            compute_rows(src, rows, neurons, chunks.begin(c), chunks.end(c), gate_known, c == 0 ? y : partial(c));
        };
        executor(chunks.count(), task);
        for (std::size_t c = 1; c < chunks.count(); ++c) {
            const float* p = partial(c);
            for (std::size_t j = 0; j < d_model_; ++j) y[j] += p[j];
        }
    }

private:
    void gemv(const RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
              float* out) const {
        if (xq_ != nullptr)
            kernels::gemv_rows<Bits>(l, base, rows, n, *xq_, out);
        else
            kernels::gemv_rows<Bits>(l, base, rows, n, x_, out);
    }

    /// Chunk c's partial output (c >= 1).
    float* partial(std::size_t c) noexcept { return partials_.data() + (c - 1) * partial_stride_; }

    /// compute() for the rows b..e-1 of the list (of src when rows == nullptr), adding to out
    /// (set to zero first unless it is y's chunk 0, which adds).
    void compute_rows(const FfnSource& src, const std::uint32_t* rows, const std::uint32_t* neurons, std::size_t b,
                      std::size_t e, bool gate_known, float* out) {
        const RowLayout& l = *src.layout;
        const std::size_t n = e - b;
        const std::uint32_t* list = rows != nullptr ? rows + b : nullptr;
        auto at = [&](const std::uint8_t* base) { return rows != nullptr ? base : base + b * l.row_stride; };
        float *g = g_.data() + b, *u = u_.data() + b, *h = h_.data() + b;
        if (gated_) {
            if (gate_known)
                for (std::size_t i = b; i < e; ++i) g_[i] = gate_all_[neurons ? neurons[i] : i];
            else
                gemv(l, at(src.gate), list, n, g);
            gemv(l, at(src.up), list, n, u);
            for (std::size_t i = 0; i < n; ++i) h[i] = activate(act_, g[i]) * u[i];
        } else {
            if (gate_known)
                for (std::size_t i = b; i < e; ++i) u_[i] = gate_all_[neurons ? neurons[i] : i];
            else
                gemv(l, at(src.up), list, n, u);
            for (std::size_t i = 0; i < n; ++i) h[i] = activate(act_, u[i]);
        }
        if (b != 0) std::fill_n(out, d_model_, 0.0f);
        kernels::axpy_rows<Bits>(l, at(src.down), list, n, h, out);
    }

    std::size_t d_model_ = 0, hidden_ = 0;
    Activation act_ = Activation::silu;
    bool gated_ = true;
    const float* x_ = nullptr;
    const QuantizedActivations* xq_ = nullptr;
    std::vector<float> g_, u_, h_, gate_all_;
    std::vector<float, AlignedAllocator<float>> partials_;  // see compute()
    std::size_t partial_stride_ = 0;
};

}  // namespace sparseinfer::detail
