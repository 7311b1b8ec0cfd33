// sparseinfer/detail/int8_factors.hpp - a low-rank predictor's 8-bit
// factors (LowRankPredictor::quantize, LowRankPredictor::from_views): how they
// are made from the float factors, how they are taken over someone else's
// bytes, and the product P (Q x) on them.
//
// Q [rank][d_model] is an 8-bit matrix read through a QuantizedWeightsView; P
// [hidden][rank] is int8 rows with one float scale per row, in panels of 16
// rows (detail/int8_panels.hpp). Either both are owned (made by quantize(),
// held by shared pointers so copies of a predictor share them) or both are
// viewed (a mapped model file): the product reads them through the same
// pointers either way, so a predictor over views of saved factors gives the
// same numbers, bit for bit, as the one they were saved from. P's row scales
// are always copied (4 bytes per neuron): the kernel reads them as floats,
// which the viewed bytes need not be aligned for.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../executor.hpp"
#include "../kernels/dispatch.hpp"
#include "../quantized_activations.hpp"
#include "../quantized_weights.hpp"
#include "../quantized_weights_view.hpp"
#include "aligned_allocator.hpp"
#include "int8_panels.hpp"
#include "row_chunks.hpp"
#include "row_format.hpp"
#include "weights_file.hpp"

namespace sparseinfer::detail {

/// P and Q in 8 bits, owned or viewed (see the header comment). Empty until
/// made by quantize() or view().
class Int8Factors {
public:
    /// Rounds the float factors P [m][r] and Q [r][d_model], both row-major.
    /// Throws if r is above the panel kernel's depth limit.
    static Int8Factors quantize(const float* P, const float* Q, std::size_t m, std::size_t r, std::size_t d_model,
                                QuantOptions opts) {
        const std::size_t depth = s8_panel_depth(r);
        if (depth > s8_panel_max_depth)
            throw error("rank " + std::to_string(r) + " is too large for 8-bit factors (at most " +
                        std::to_string(s8_panel_max_depth) + ")");
        kernels::init_kernels();
        Int8Factors f;
        f.q_owned_ = std::make_shared<QuantizedWeights<8>>(QuantizedWeights<8>::from_f32(Q, r, d_model, opts));
        f.q_ = f.q_owned_->view();
        f.scales_.assign(m, 0.0f);
        std::vector<std::int8_t> rows(m * r);
        for (std::size_t i = 0; i < m; ++i)  // P is row-major: row i is r contiguous floats
            f.scales_[i] = round_to_int8(P + i * r, r, rows.data() + i * r);
        auto panels = std::make_shared<Panels>(s8_panel_bytes(m, r));
        pack_s8_panels(rows.data(), m, r, r, panels->data());
        f.panels_ = panels->data();
        f.panels_owned_ = std::move(panels);
        f.hidden_ = m;
        f.depth_ = depth;
        return f;
    }

    /// Factors over bytes the caller owns: q (Q), `panel_bytes` bytes of P's
    /// panels and `hidden` row scales (copied). Checks every size against the
    /// others, the scales (finite, >= 0) and, with Verify::full, every panel
    /// byte (codes in [-127, 127], zero padding). Throws sparseinfer::format_error
    /// naming the factor and what was wrong.
    static Int8Factors view(const QuantizedWeightsView<8>& q, const std::int8_t* panels, std::size_t panel_bytes,
                            const float* scales, std::size_t hidden, Verify verify) {
        if (q.data() == nullptr || q.rows() == 0) fail("Q (the 8-bit matrix) is empty");
        if (panels == nullptr) throw error("argument 'p_panels' is a null pointer");
        if (scales == nullptr) throw error("argument 'p_scales' is a null pointer");
        if (hidden == 0) fail("hidden is 0");
        if (hidden > std::numeric_limits<std::uint32_t>::max())
            fail("hidden is " + std::to_string(hidden) + "; neuron ids are 32-bit");
        const std::size_t r = q.rows(), depth = s8_panel_depth(r);
        if (q.layout().row_stride != q.layout().row_bytes) fail("Q's rows are bundled with other rows");
        if (depth > s8_panel_max_depth)
            fail("rank (Q's rows) is " + std::to_string(r) + "; 8-bit factors allow at most " +
                 std::to_string(s8_panel_max_depth));
        std::size_t expected = 0;
        if (!checked_mul(s8_panel_count(hidden) * s8_panel_rows, depth, expected) || expected != panel_bytes)
            fail("P's panels are " + std::to_string(panel_bytes) + " bytes; " + std::to_string(hidden) +
                 " rows of rank " + std::to_string(r) + " take " +
                 (expected == panel_bytes ? std::string("more than the address space") : std::to_string(expected)));
        Int8Factors f;
        f.scales_.assign(scales, scales + hidden);
        for (std::size_t i = 0; i < hidden; ++i)
            if (!(std::isfinite(f.scales_[i]) && f.scales_[i] >= 0.0f))
                fail("P's scale of row " + std::to_string(i) + " is " + std::to_string(f.scales_[i]) +
                     "; scales are finite and >= 0");
        if (verify == Verify::full) check_panels(panels, hidden, r, depth);
        f.q_ = q;
        f.panels_ = panels;
        f.hidden_ = hidden;
        f.depth_ = depth;
        return f;
    }

    bool empty() const noexcept { return panels_ == nullptr; }
    std::size_t hidden() const noexcept { return hidden_; }
    std::size_t rank() const noexcept { return q_.rows(); }
    std::size_t d_model() const noexcept { return q_.cols(); }
    const QuantizedWeightsView<8>& q() const noexcept { return q_; }
    const std::int8_t* panels() const noexcept { return panels_; }
    std::size_t panel_bytes() const noexcept { return s8_panel_count(hidden_) * s8_panel_rows * depth_; }
    const std::vector<float>& scales() const noexcept { return scales_; }
    /// Bytes a prediction reads.
    std::size_t memory_bytes() const noexcept {
        return panel_bytes() + scales_.size() * sizeof(float) + q_.memory_bytes();
    }

    /// pre[0..hidden) = P (Q x) for x quantized to int8; t (rank floats) and tq are scratch.
    void predict(const QuantizedActivations& xq, const Executor& executor, float* t, std::vector<std::int8_t>& tq,
                 float* pre) const {
        const std::size_t m = hidden_, r = rank();
        q_.gemv(xq, t);
        // Q x to int8 with one scale (P's rows were rounded the same way), zero padded to the panels' depth.
        tq.assign(depth_, 0);
        bool finite = true;
        for (std::size_t j = 0; j < r; ++j) finite = finite && std::isfinite(t[j]);
        if (!finite) {  // NaN or infinity in Q x: no finite prediction
            std::fill(pre, pre + m, std::numeric_limits<float>::quiet_NaN());
            return;
        }
        const float tscale = round_to_int8(t, r, tq.data());
        // P's panels split into chunks of whole panels (chunk starts are multiples of 64 rows), one task each.
        const RowChunks chunks(m);
        const std::size_t D = depth_;
        const std::int8_t* tqp = tq.data();
        auto task = [&](std::size_t c) {
            const std::size_t b = chunks.begin(c);
            active_kernel<8, kernels::KernelOp::gemv_s8_panels>()(panels_ + b * D, scales_.data() + b,
                                                                  chunks.end(c) - b, D, tqp, tscale, pre + b);
        };
        executor(chunks.count(), task);
    }

private:
    using Panels = std::vector<std::int8_t, AlignedAllocator<std::int8_t>>;

    [[noreturn]] static void fail(const std::string& what) { throw format_error("predictor factors: " + what); }

    /// Every byte of the panels: codes in [-127, 127] (the kernels negate them),
    /// zeros in the padding rows and columns (the writer's; anything else is damage).
    static void check_panels(const std::int8_t* p, std::size_t hidden, std::size_t rank, std::size_t D) {
        const std::size_t panel = s8_panel_rows * D, n = s8_panel_count(hidden) * panel;
        for (std::size_t b = 0; b < n; ++b) {
            const std::size_t within = b % panel;
            const std::size_t i = b / panel * s8_panel_rows + (within % (4 * s8_panel_rows)) / 4;
            const std::size_t j = within / (4 * s8_panel_rows) * 4 + within % 4;
            if (i >= hidden || j >= rank) {
                if (p[b] != 0)
                    fail("P's panel byte " + std::to_string(b) + " is padding (row " + std::to_string(i) + ", column " +
                         std::to_string(j) + ") but not zero");
            } else if (p[b] == -128) {
                fail("P's code at row " + std::to_string(i) + ", column " + std::to_string(j) +
                     " is -128; codes are in [-127, 127]");
            }
        }
    }

    std::shared_ptr<const QuantizedWeights<8>> q_owned_;  // quantize(): Q's bytes
    std::shared_ptr<const Panels> panels_owned_;          // quantize(): P's panels
    QuantizedWeightsView<8> q_;                           // Q, owned or the caller's
    const std::int8_t* panels_ = nullptr;                 // P's panels, owned or the caller's
    std::vector<float> scales_;                           // P's row scales
    std::size_t hidden_ = 0, depth_ = 0;
};

}  // namespace sparseinfer::detail
