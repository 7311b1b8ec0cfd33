// sparseinfer/sparse_ffn.hpp - a quantized feed-forward layer that computes only
// the neurons it is given.
//
// SparseFfn<Bits, Policy> holds a gated FFN, y = down(act(gate x) * (up x)),
// or a plain MLP, y = down(act(up x)), quantized to Bits bits. Down is stored
// transposed, so a neuron's output weights are a row: gate, up and down^T all
// have d_model columns and share one RowLayout. The layer keeps them as three
// contiguous matrices, so the dense pass streams each at full read bandwidth
// (interleaving a neuron's three rows in the main storage made the dense pass
// about 2x slower here: per-matrix sweeps then skip two rows in three).
// A cache slot holds one neuron's bundle, one contiguous byte range:
//
//   slot = [ gate row i | up row i | down^T row i ]   (no gate row for a plain MLP)
//
// so resident neurons are computed from the store with the same kernels and a
// layout whose row_stride is the bundle size (bundle_bytes()).
//
// forward_sparse computes the listed neurons only: two dot products each (one
// without a gate), then one scaled row-add of its down row into y. The cost is
// the bytes of the rows touched, so 10% of the neurons read 10% of the layer.
// Every listed neuron is recorded in cache(), a NeuronCache<Policy>; when a
// slot store is attached (attach_store), neurons resident in it are read from
// the store's slots, the rest from the layer's own matrices.
//
// A layer object holds preallocated scratch and is used by one thread at a
// time; the forward functions do not allocate (after the first call with int8
// activations) and throw sparseinfer::error on bad arguments before touching y.
//
//   sparseinfer::SparseFfn<4> ffn(gate, up, down, 4096, 11008, sparseinfer::Activation::silu);
//   ffn.forward_dense(x, y);                          // every neuron
//   std::uint32_t active[] = {3, 17, 42};
//   ffn.forward_sparse(x, active, 3, y);              // y = contribution of neurons 3, 17, 42
//   ffn.forward_gate_first(x, sparseinfer::Selection::top_k(1100), y);  // exact gate, top 10%
//
// Every forward function also takes the input already quantized to int8
// (QuantizedActivations): the gate and up dot products then run on it, so a
// token whose x is quantized once (e.g. for a predictor and exact gate checks
// as well) is not quantized again here.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "activation.hpp"
#include "detail/aligned_allocator.hpp"
#include "detail/quantizer.hpp"
#include "detail/row_format.hpp"
#include "error.hpp"
#include "kernels/dispatch.hpp"
#include "neuron_cache.hpp"
#include "policies.hpp"
#include "quantized_activations.hpp"
#include "selection.hpp"

namespace sparseinfer {

/// Work counters of a layer since construction or reset_stats().
struct FfnStats {
    std::uint64_t calls = 0;             ///< forward_* calls (tokens)
    std::uint64_t neurons = 0;           ///< neurons computed
    std::uint64_t bytes_read = 0;        ///< weight bytes of every row touched
    std::uint64_t bytes_from_store = 0;  ///< of which read from the cache's slot store
};

/// Which matrix of a layer (for dequantized copies).
enum class FfnMatrix { gate, up, down };

/// One feed-forward layer with Bits-bit quantized rows that computes only the
/// neurons it is given (or selects), recording them in a NeuronCache.
template <int Bits, class Policy = policy::FrequencyThreshold>
class SparseFfn {
    static_assert(detail::is_supported_bits(Bits), "SparseFfn supports 2, 3, 4 and 8 bits");

public:
    static constexpr int bits = Bits;   ///< bits per quantized weight
    using Cache = NeuronCache<Policy>;  ///< the cache type that records computed neurons

    /// Quantizes a layer given as in checkpoints: gate and up [hidden][d_model],
    /// down [d_model][hidden], row-major; gate == nullptr for a plain MLP.
    /// Throws sparseinfer::error on null up/down, zero sizes or non-finite values.
    SparseFfn(const float* gate, const float* up, const float* down, std::size_t d_model, std::size_t hidden,
              Activation act, QuantOptions opts = {}, Policy policy = Policy{})
        : d_model_(d_model), hidden_(hidden), act_(act), gated_(gate != nullptr), policy_(policy) {
        if (up == nullptr) throw error("argument 'up' is a null pointer");
        if (down == nullptr) throw error("argument 'down' is a null pointer");
        if (d_model == 0) throw error("d_model is 0");
        if (hidden == 0) throw error("hidden is 0");
        if (hidden > std::numeric_limits<std::uint32_t>::max())
            throw error("hidden is " + std::to_string(hidden) + "; neuron ids are 32-bit");
        kernels::init_kernels();  // a bad SPARSEINFER_ISA is reported here, not met by silent scalar kernels
        const detail::RowLayout plain = detail::make_row_layout(Bits, d_model, opts.group_size);
        const std::size_t parts = gated_ ? 3 : 2;
        std::size_t stride = 0, total = 0, values = 0;
        if (!detail::checked_mul(plain.row_bytes, parts, stride) || !detail::checked_mul(stride, hidden, total) ||
            !detail::checked_mul(hidden, d_model, values))
            throw error("d_model * hidden overflows");
        if (gated_) check_finite(gate, values, d_model, "gate");
        check_finite(up, values, d_model, "up");
        check_finite(down, values, hidden, "down");
        layout_ = plain;
        slot_layout_ = plain;
        slot_layout_.row_stride = stride;
        slot_up_offset_ = gated_ ? plain.row_bytes : 0;
        slot_down_offset_ = slot_up_offset_ + plain.row_bytes;
        // Three matrices in one buffer, each starting on a 64-byte boundary.
        const std::size_t matrix = (hidden * plain.row_bytes + 63) / 64 * 64;
        gate_off_ = 0;
        up_off_ = gated_ ? matrix : 0;
        down_off_ = up_off_ + matrix;
        weights_.assign(down_off_ + matrix, 0);
        (void)total;

        std::vector<detail::GroupFit> fits(plain.groups);
        for (std::size_t i = 0; i < hidden; ++i) {
            if (gated_)
                detail::quantize_row(plain, opts.method, i, gate + i * d_model, row_ptr(gate_off_, i), fits.data());
            detail::quantize_row(plain, opts.method, i, up + i * d_model, row_ptr(up_off_, i), fits.data());
        }
        // down^T, transposed in tiles so both sides are read in cache lines.
        const std::size_t tile = 64;
        std::vector<float> rows(tile * d_model);
        for (std::size_t i0 = 0; i0 < hidden; i0 += tile) {
            const std::size_t ni = std::min(tile, hidden - i0);
            for (std::size_t j = 0; j < d_model; ++j)
                for (std::size_t i = 0; i < ni; ++i) rows[i * d_model + j] = down[j * hidden + i0 + i];
            for (std::size_t i = 0; i < ni; ++i)
                detail::quantize_row(plain, opts.method, i0 + i, rows.data() + i * d_model, row_ptr(down_off_, i0 + i),
                                     fits.data());
        }
        allocate_scratch();
        cache_ = std::make_unique<Cache>(hidden_, policy_);
    }

    /// A deep copy of the weights with a fresh cache (same policy; a slot store
    /// is attached again with the same budget). Used e.g. to rotate layer copies.
    SparseFfn(const SparseFfn& o)
        : layout_(o.layout_),
          slot_layout_(o.slot_layout_),
          d_model_(o.d_model_),
          hidden_(o.hidden_),
          act_(o.act_),
          gated_(o.gated_),
          slot_up_offset_(o.slot_up_offset_),
          slot_down_offset_(o.slot_down_offset_),
          gate_off_(o.gate_off_),
          up_off_(o.up_off_),
          down_off_(o.down_off_),
          int8_(o.int8_),
          weights_(o.weights_),
          policy_(o.policy_) {
        allocate_scratch();
        cache_ = std::make_unique<Cache>(hidden_, policy_);
        if (o.cache_ != nullptr && o.cache_->store() != nullptr) attach_store(o.store_budget_);
    }
    /// Moves the layer (its cache and store included).
    SparseFfn(SparseFfn&&) noexcept =
        default;  // the store's loader points at weights_'s heap buffer, which moves along
    SparseFfn& operator=(const SparseFfn&) = delete;
    /// Moves the layer (its cache and store included).
    SparseFfn& operator=(SparseFfn&&) noexcept = default;

    std::size_t d_model() const noexcept { return d_model_; }  ///< input and output length
    std::size_t hidden() const noexcept { return hidden_; }    ///< number of neurons
    bool gated() const noexcept { return gated_; }             ///< has a gate matrix (GLU)
    Activation activation() const noexcept { return act_; }    ///< the activation function
    /// Layout of every row of the three matrices (row_stride == row_bytes).
    const detail::RowLayout& layout() const noexcept { return layout_; }
    /// The rows of one matrix (down as down^T), row i at + i * layout().row_stride;
    /// 64-byte aligned. Throws for the gate of a layer without one.
    const std::uint8_t* matrix_data(FfnMatrix which) const {
        if (which == FfnMatrix::gate && !gated_) throw error("this layer has no gate matrix");
        return weights_.data() + (which == FfnMatrix::gate ? gate_off_ : which == FfnMatrix::up ? up_off_ : down_off_);
    }
    /// Bytes of one neuron's bundle (its gate, up and down rows): one cache slot.
    std::size_t bundle_bytes() const noexcept { return slot_layout_.row_stride; }
    /// Byte offset of a matrix's row within a bundle (gate 0, then up, then down).
    std::size_t bundle_offset(FfnMatrix which) const noexcept {
        return which == FfnMatrix::gate ? 0 : which == FfnMatrix::up ? slot_up_offset_ : slot_down_offset_;
    }
    /// Bytes of the quantized rows (hidden * bundle_bytes()).
    std::size_t memory_bytes() const noexcept { return hidden_ * bundle_bytes(); }

    /// Use int8-quantized activations (quantized once per call) for the gate and
    /// up dot products. Off by default: floats are exact to kernel rounding.
    void set_int8_activations(bool on) noexcept { int8_ = on; }
    /// Whether int8 activations are on (set_int8_activations).
    bool int8_activations() const noexcept { return int8_; }

    /// The neuron cache that records every computed neuron.
    Cache& cache() noexcept { return *cache_; }
    /// The neuron cache (read-only).
    const Cache& cache() const noexcept { return *cache_; }

    /// Gives the cache a slot store of budget_bytes (whole bundles); resident
    /// neurons are then read from it.
    void attach_store(std::size_t budget_bytes) {
        // The loader gathers a neuron's rows into its slot; it holds pointers into
        // weights_'s heap buffer, which a move of the layer keeps.
        const std::size_t rb = layout_.row_bytes;
        const std::uint8_t* gate = gated_ ? weights_.data() + gate_off_ : nullptr;
        const std::uint8_t* up = weights_.data() + up_off_;
        const std::uint8_t* down = weights_.data() + down_off_;
        const std::size_t up_at = slot_up_offset_, down_at = slot_down_offset_;
        cache_->attach_store(bundle_bytes(), budget_bytes, [=](std::uint32_t neuron, std::uint8_t* dst, std::size_t n) {
            if (n < down_at + rb) return;  // a smaller slot cannot hold a bundle
            const std::size_t at = static_cast<std::size_t>(neuron) * rb;
            if (gate) std::memcpy(dst, gate + at, rb);
            std::memcpy(dst + up_at, up + at, rb);
            std::memcpy(dst + down_at, down + at, rb);
        });
        store_budget_ = budget_bytes;
    }

    /// Counters of the forward calls since construction or reset_stats().
    const FfnStats& stats() const noexcept { return stats_; }
    /// Zeroes stats().
    void reset_stats() noexcept { stats_ = {}; }

    /// y[0..d_model) = the layer's output over every neuron.
    void forward_dense(const float* x, float* y) { dense(x, y); }
    /// As above, from activations quantized once by the caller.
    void forward_dense(const QuantizedActivations& xq, float* y) { dense(xq, y); }

    /// y[0..d_model) = the contribution of the n listed neurons (other neurons
    /// count as zero). Throws on a null pointer, a neuron >= hidden() or a
    /// neuron listed twice (it would be added twice). n == 0 gives y = 0.
    void forward_sparse(const float* x, const std::uint32_t* active, std::size_t n, float* y) {
        sparse(x, active, n, y);
    }
    /// As above, from activations quantized once by the caller.
    void forward_sparse(const QuantizedActivations& xq, const std::uint32_t* active, std::size_t n, float* y) {
        sparse(xq, active, n, y);
    }

    /// The exact gate-first mode: computes the gate of every neuron, keeps the
    /// neurons whose |act(gate)| the selection keeps, then computes up and down
    /// for them only. Returns the number of neurons kept. Needs a gated layer.
    std::size_t forward_gate_first(const float* x, const Selection& sel, float* y) { return gate_first(x, sel, y); }
    /// As above, from activations quantized once by the caller.
    std::size_t forward_gate_first(const QuantizedActivations& xq, const Selection& sel, float* y) {
        return gate_first(xq, sel, y);
    }

    /// scores[i] = |act(gate_i . x)| for every neuron, the exact gate-first
    /// score (for a plain MLP, |act(up_i . x)|). Used to calibrate selectors.
    void exact_scores(const float* x, float* scores) { all_scores(x, scores); }
    /// As above, from activations quantized once by the caller.
    void exact_scores(const QuantizedActivations& xq, float* scores) { all_scores(xq, scores); }

    /// The dequantized matrix in checkpoint layout (down as [d_model][hidden]):
    /// the exact weights the kernels use, for references and error measurements.
    std::vector<float> dequantized(FfnMatrix which) const {
        if (which == FfnMatrix::gate && !gated_) throw error("this layer has no gate matrix");
        std::vector<float> out(hidden_ * d_model_), row(d_model_);
        const std::uint8_t* base = matrix_data(which);
        for (std::size_t i = 0; i < hidden_; ++i) {
            kernels::dequantize_row(layout_, base + i * layout_.row_stride, row.data());
            for (std::size_t j = 0; j < d_model_; ++j) {
                if (which == FfnMatrix::down)
                    out[j * hidden_ + i] = row[j];
                else
                    out[i * d_model_ + j] = row[j];
            }
        }
        return out;
    }

private:
    static void check_finite(const float* m, std::size_t values, std::size_t cols, const char* name) {
        for (std::size_t i = 0; i < values; ++i)
            if (!std::isfinite(m[i]))
                throw error(std::string("matrix '") + name + "': value at row " + std::to_string(i / cols) +
                            ", column " + std::to_string(i % cols) + " is not finite");
    }

    void allocate_scratch() {
        for (auto* v : {&g_, &u_, &h_, &gate_all_, &score_}) v->assign(hidden_, 0.0f);
        selected_.assign(hidden_, 0);
        cold_.assign(hidden_, 0);
        hot_.assign(hidden_, 0);
        hot_neuron_.assign(hidden_, 0);
        mark_.assign(hidden_, 0);
        epoch_ = 0;
    }

    std::size_t rows_per_neuron() const noexcept { return gated_ ? 3 : 2; }

    void check_io(const float* x, float* y) const {
        if (x == nullptr) throw error("argument 'x' is a null pointer");
        if (y == nullptr) throw error("argument 'y' is a null pointer");
    }
    void check_io(const QuantizedActivations& xq, float* y) const {
        detail::check_quantized_activations(xq, d_model_, "the layer's d_model is " + std::to_string(d_model_));
        if (y == nullptr) throw error("argument 'y' is a null pointer");
    }
    void check_list(const std::uint32_t* active, std::size_t n) {
        if (n == 0) return;
        if (active == nullptr) throw error("argument 'active' is a null pointer");
        if (n > hidden_)
            throw error("the list holds " + std::to_string(n) + " neurons; the layer has " + std::to_string(hidden_) +
                        ", so one is repeated or out of range");
        if (++epoch_ == 0) {  // the stamp wrapped: clear the marks once
            std::fill(mark_.begin(), mark_.end(), 0u);
            epoch_ = 1;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t a = active[i];
            if (a >= hidden_)
                throw error("active[" + std::to_string(i) + "] = " + std::to_string(a) +
                            " is out of range (hidden = " + std::to_string(hidden_) + ")");
            if (mark_[a] == epoch_)
                throw error("active[" + std::to_string(i) + "] = " + std::to_string(a) +
                            " is listed twice; each neuron may appear once");
            mark_[a] = epoch_;
        }
    }

    /// Sets the input of this call: x, or x quantized into xq_ in int8 mode.
    void prepare_input(const float* x) {
        x_ = x;
        xq_in_ = nullptr;
        if (int8_) {
            quantize_activations(x, d_model_, xq_);
            xq_in_ = &xq_;
        }
    }
    /// Sets a caller-quantized input for this call (int8 kernels whatever the mode).
    void prepare_input(const QuantizedActivations& xq) {
        x_ = nullptr;
        xq_in_ = &xq;
    }

    // The forward functions for either input (const float* or QuantizedActivations).
    template <class Input>
    void dense(const Input& x, float* y) {
        check_io(x, y);
        prepare_input(x);
        compute(main_source(), nullptr, nullptr, hidden_, false, y, true);
        stats_.calls += 1;
        stats_.neurons += hidden_;
        stats_.bytes_read += hidden_ * rows_per_neuron() * layout_.row_bytes;
    }
    template <class Input>
    void sparse(const Input& x, const std::uint32_t* active, std::size_t n, float* y) {
        check_io(x, y);
        check_list(active, n);
        prepare_input(x);
        run_listed(active, n, false, y);
    }
    template <class Input>
    std::size_t gate_first(const Input& x, const Selection& sel, float* y) {
        check_io(x, y);
        if (!gated_) throw error("forward_gate_first needs a gated layer (this one has no gate)");
        prepare_input(x);
        gate_all();
        for (std::size_t i = 0; i < hidden_; ++i) score_[i] = std::fabs(activate(act_, gate_all_[i]));
        const std::size_t n = select(sel, score_.data(), hidden_, selected_.data());
        stats_.bytes_read += hidden_ * layout_.row_bytes;  // the dense gate pass
        run_listed(selected_.data(), n, true, y);
        return n;
    }
    template <class Input>
    void all_scores(const Input& x, float* scores) {
        check_io(x, scores);
        prepare_input(x);
        gate_all();
        for (std::size_t i = 0; i < hidden_; ++i) scores[i] = std::fabs(activate(act_, gate_all_[i]));
    }

    /// Where a set of rows lives: the layer's matrices or the store's bundles.
    struct Source {
        const detail::RowLayout* layout;
        const std::uint8_t* gate;  // unused without a gate
        const std::uint8_t* up;
        const std::uint8_t* down;
    };
    Source main_source() const noexcept {
        return {&layout_, weights_.data() + gate_off_, weights_.data() + up_off_, weights_.data() + down_off_};
    }
    Source slot_source(const SlotStore& s) const noexcept {
        return {&slot_layout_, s.data(), s.data() + slot_up_offset_, s.data() + slot_down_offset_};
    }
    std::uint8_t* row_ptr(std::size_t matrix_off, std::size_t row) noexcept {
        return weights_.data() + matrix_off + row * layout_.row_bytes;
    }

    void gemv(const detail::RowLayout& l, const std::uint8_t* base, const std::uint32_t* rows, std::size_t n,
              float* out) const {
        if (xq_in_ != nullptr)
            kernels::gemv_rows(l, base, rows, n, *xq_in_, out);
        else
            kernels::gemv_rows(l, base, rows, n, x_, out);
    }

    /// gate_all_ = the first matrix's value for every neuron (gate, or up without a gate).
    void gate_all() {
        const Source s = main_source();
        gemv(layout_, gated_ ? s.gate : s.up, nullptr, hidden_, gate_all_.data());
    }

    /// Computes n neurons at rows `rows` of `src` (nullptr: 0..n-1) and adds
    /// them to y (or sets y when `overwrite`). `neurons` are their ids, for
    /// reading precomputed gate values (gate_known).
    void compute(const Source& src, const std::uint32_t* rows, const std::uint32_t* neurons, std::size_t n,
                 bool gate_known, float* y, bool overwrite) {
        if (overwrite) std::fill_n(y, d_model_, 0.0f);
        if (n == 0) return;
        const detail::RowLayout& l = *src.layout;
        if (gated_) {
            if (gate_known)
                for (std::size_t i = 0; i < n; ++i) g_[i] = gate_all_[neurons ? neurons[i] : i];
            else
                gemv(l, src.gate, rows, n, g_.data());
            gemv(l, src.up, rows, n, u_.data());
            for (std::size_t i = 0; i < n; ++i) h_[i] = activate(act_, g_[i]) * u_[i];
        } else {
            if (gate_known)
                for (std::size_t i = 0; i < n; ++i) u_[i] = gate_all_[neurons ? neurons[i] : i];
            else
                gemv(l, src.up, rows, n, u_.data());
            for (std::size_t i = 0; i < n; ++i) h_[i] = activate(act_, u_[i]);
        }
        kernels::axpy_rows(l, src.down, rows, n, h_.data(), y);
    }

    /// Records the (validated) list in the cache and computes it, resident
    /// neurons from the slot store and the rest from the layer's bytes.
    void run_listed(const std::uint32_t* active, std::size_t n, bool gate_known, float* y) {
        std::fill_n(y, d_model_, 0.0f);
        if (n != 0) cache_->record_activations(active, n);
        const SlotStore* store = cache_->store();
        const std::size_t per_neuron = (gate_known && gated_ ? 2 : rows_per_neuron()) * layout_.row_bytes;
        std::size_t n_hot = 0, n_cold = 0;
        if (store != nullptr) {
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint32_t slot = store->slot_of(active[i]);
                if (slot != SlotStore::npos) {
                    hot_[n_hot] = slot;
                    hot_neuron_[n_hot++] = active[i];
                } else {
                    cold_[n_cold++] = active[i];
                }
            }
            compute(main_source(), cold_.data(), cold_.data(), n_cold, gate_known, y, false);
            compute(slot_source(*store), hot_.data(), hot_neuron_.data(), n_hot, gate_known, y, false);
        } else {
            n_cold = n;
            compute(main_source(), active, active, n, gate_known, y, false);
        }
        stats_.calls += 1;
        stats_.neurons += n;
        stats_.bytes_read += n * per_neuron;
        stats_.bytes_from_store += n_hot * per_neuron;
    }

    detail::RowLayout layout_{};       // the three matrices: row_stride == row_bytes
    detail::RowLayout slot_layout_{};  // the store's bundles: row_stride == bundle_bytes()
    std::size_t d_model_ = 0, hidden_ = 0;
    Activation act_ = Activation::silu;
    bool gated_ = true;
    std::size_t slot_up_offset_ = 0, slot_down_offset_ = 0;  // within a bundle
    std::size_t gate_off_ = 0, up_off_ = 0, down_off_ = 0;   // matrices within weights_
    bool int8_ = false;
    std::vector<std::uint8_t, detail::AlignedAllocator<std::uint8_t>> weights_;
    Policy policy_;
    std::unique_ptr<Cache> cache_;
    std::size_t store_budget_ = 0;
    FfnStats stats_;

    // Per-call scratch, sized at construction.
    const float* x_ = nullptr;
    const QuantizedActivations* xq_in_ = nullptr;  // this call's int8 input: xq_ or the caller's
    QuantizedActivations xq_;
    std::vector<float> g_, u_, h_, gate_all_, score_;
    std::vector<std::uint32_t> selected_, cold_, hot_, hot_neuron_, mark_;
    std::uint32_t epoch_ = 0;
};

}  // namespace sparseinfer
