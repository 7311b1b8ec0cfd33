// sparseinfer/sparse_ffn.hpp - a quantized feed-forward layer that computes only
// the neurons it is given.
//
// SparseFfn<Bits, Policy> holds a gated FFN, y = down(act(gate x) * (up x)),
// or a plain MLP, y = down(act(up x)), quantized to Bits bits. Down is stored
// transposed, so a neuron's output weights are a row: gate, up and down^T all
// have d_model columns and share one RowLayout. The layer reads three separate
// matrices through views (QuantizedWeightsView), so the dense pass streams each
// at full read bandwidth. from_views builds a layer over bytes the caller owns
// (e.g. a mapped tensor file) without copying them; the float constructor
// quantizes into matrices the layer owns and views those, so both read the
// same bytes the same way and give the same outputs.
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
// Given a pool (set_executor), each forward call splits its rows into chunks
// the pool's threads share (see compute()); outputs do not depend on the
// number of threads, bit for bit.
//
//   sparseinfer::SparseFfn<4> ffn(gate, up, down, 4096, 11008, sparseinfer::Activation::silu);
//   // or over quantized matrices someone else owns (down given transposed, [hidden][d_model]):
//   auto layer = sparseinfer::SparseFfn<4>::from_views(g.view(), u.view(), dt.view(), sparseinfer::Activation::silu);
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
#include <memory>
#include <string>
#include <vector>

#include "activation.hpp"
#include "detail/ffn_matrices.hpp"
#include "detail/ffn_rows.hpp"
#include "detail/quantizer.hpp"
#include "detail/row_format.hpp"
#include "detail/unique_ids.hpp"
#include "error.hpp"
#include "executor.hpp"
#include "kernels/dispatch.hpp"
#include "neuron_cache.hpp"
#include "policies.hpp"
#include "quantized_activations.hpp"
#include "quantized_weights.hpp"
#include "selection.hpp"
#include "thread_pool.hpp"

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

/// A feed-forward layer on Bits-bit quantized weights that computes all
/// neurons or only selected ones, records them in a NeuronCache<Policy> and
/// can run on an engine's threads (see the top of this header).
template <int Bits, class Policy = policy::FrequencyThreshold>
class SparseFfn {
    static_assert(detail::is_supported_bits(Bits), "SparseFfn supports 2, 3, 4 and 8 bits");

public:
    static constexpr int bits = Bits;         ///< bits per quantized weight
    using Cache = NeuronCache<Policy>;        ///< the cache that records computed neurons
    using Weights = QuantizedWeights<Bits>;   ///< an owned quantized matrix
    using View = QuantizedWeightsView<Bits>;  ///< a quantized matrix read in place

    /// Quantizes a layer given as in checkpoints: gate and up [hidden][d_model],
    /// down [d_model][hidden], row-major; gate == nullptr for a plain MLP. The
    /// layer owns the quantized matrices and runs on views of them, exactly as a
    /// layer from_views of the same matrices does.
    /// Throws sparseinfer::error on null up/down, zero sizes or non-finite values.
    SparseFfn(const float* gate, const float* up, const float* down, std::size_t d_model, std::size_t hidden,
              Activation act, QuantOptions opts = {}, Policy policy = Policy{})
        : act_(act), policy_(policy) {
        detail::check_ffn_floats(gate, up, down, d_model, hidden);
        owned_ = std::make_unique<Owned>();
        if (gate != nullptr) owned_->gate.push_back(Weights::from_f32(gate, hidden, d_model, opts));
        owned_->up.push_back(Weights::from_f32(up, hidden, d_model, opts));
        const std::vector<float> down_t = detail::transpose_down(down, d_model, hidden);
        owned_->down.push_back(Weights::from_f32(down_t.data(), hidden, d_model, opts));
        bind_owned();
    }

    /// A layer over quantized matrices it does not own: gate and up [hidden][d_model],
    /// down_t = down transposed, [hidden][d_model]. The layer reads the viewed bytes in
    /// place; they must outlive the layer (and its copies) and stay unchanged.
    /// The three must share one layout (width, columns, group size) and row count.
    /// Throws sparseinfer::error naming the mismatch.
    static SparseFfn from_views(const View& gate, const View& up, const View& down_t, Activation act,
                                Policy policy = Policy{}) {
        return SparseFfn(&gate, up, down_t, act, policy);
    }
    /// The same for a plain MLP, y = down(act(up x)).
    static SparseFfn from_views(const View& up, const View& down_t, Activation act, Policy policy = Policy{}) {
        return SparseFfn(nullptr, up, down_t, act, policy);
    }

    /// A copy with a fresh cache (same policy; a slot store is attached again
    /// with the same budget). Owned weights are copied (e.g. to rotate layer
    /// copies through memory); a layer from views copies the views only.
    SparseFfn(const SparseFfn& o) : act_(o.act_), int8_(o.int8_), executor_(o.executor_), policy_(o.policy_) {
        if (o.owned_ != nullptr) {
            owned_ = std::make_unique<Owned>(*o.owned_);
            bind_owned();
        } else {
            bind(o.gated_ ? &o.gate_ : nullptr, o.up_, o.down_);
        }
        if (o.cache_ != nullptr && o.cache_->store() != nullptr) attach_store(o.store_budget_);
    }
    // The views and the store's loader point at the owned matrices' heap buffers, which move along.
    /// Moves the layer; views of its owned matrices stay valid.
    SparseFfn(SparseFfn&&) noexcept = default;
    SparseFfn& operator=(const SparseFfn&) = delete;
    /// Moves the layer; views of its owned matrices stay valid.
    SparseFfn& operator=(SparseFfn&&) noexcept = default;

    std::size_t d_model() const noexcept { return d_model_; }  ///< length of x and y
    std::size_t hidden() const noexcept { return hidden_; }    ///< number of neurons
    bool gated() const noexcept { return gated_; }             ///< true when the layer has a gate matrix
    Activation activation() const noexcept { return act_; }    ///< the neurons' nonlinearity
    /// Layout of every row of the three matrices (row_stride == row_bytes).
    const detail::RowLayout& layout() const noexcept { return layout_; }
    /// The rows of one matrix (down as down^T), row i at + i * layout().row_stride;
    /// 64-byte aligned for a float-built layer, as aligned as the caller's bytes
    /// for one from views. Throws for the gate of a layer without one.
    const std::uint8_t* matrix_data(FfnMatrix which) const {
        if (which == FfnMatrix::gate && !gated_) throw error("this layer has no gate matrix");
        return (which == FfnMatrix::gate ? gate_ : which == FfnMatrix::up ? up_ : down_).data();
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
    bool int8_activations() const noexcept { return int8_; }  ///< see set_int8_activations()

    /// A view of one matrix (down as down^T), e.g. to write the layer to a tensor file.
    /// Throws for the gate of a layer without one.
    const View& matrix(FfnMatrix which) const {
        if (which == FfnMatrix::gate && !gated_) throw error("this layer has no gate matrix");
        return which == FfnMatrix::gate ? gate_ : which == FfnMatrix::up ? up_ : down_;
    }

    /// Runs every forward function on the pool's threads (dense, sparse,
    /// gate-first and exact scores): the rows are split into chunks that do not
    /// depend on the thread count, so outputs are bit-identical for any pool.
    /// The pool must outlive the layer's use of it; one forward call at a time.
    void set_executor(ThreadPool& pool) noexcept { executor_ = pool.executor(); }
    /// The same for any pool that keeps the Executor contract (executor.hpp);
    /// Executor{} runs everything on the caller's thread again.
    void set_executor(Executor executor) noexcept { executor_ = executor; }
    const Executor& executor() const noexcept { return executor_; }  ///< the executor in use

    /// The neuron cache that records every computed neuron.
    Cache& cache() noexcept { return *cache_; }
    const Cache& cache() const noexcept { return *cache_; }  ///< the neuron cache (read only)

    /// Gives the cache a slot store of budget_bytes (whole bundles); resident
    /// neurons are then read from it.
    void attach_store(std::size_t budget_bytes) {
        // The loader gathers a neuron's rows into its slot; it holds the viewed
        // pointers, which a move of the layer keeps.
        const std::size_t rb = layout_.row_bytes;
        const std::uint8_t* gate = gated_ ? gate_.data() : nullptr;
        const std::uint8_t* up = up_.data();
        const std::uint8_t* down = down_.data();
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

    const FfnStats& stats() const noexcept { return stats_; }  ///< work counters since construction or reset
    void reset_stats() noexcept { stats_ = {}; }               ///< sets every counter of stats() to zero

    /// y[0..d_model) = the layer's output over every neuron.
    void forward_dense(const float* x, float* y) { dense(x, y); }
    /// forward_dense on x already quantized to int8 (quantize_activations).
    void forward_dense(const QuantizedActivations& xq, float* y) { dense(xq, y); }

    /// y[0..d_model) = the contribution of the n listed neurons (other neurons
    /// count as zero). Throws on a null pointer, a neuron >= hidden() or a
    /// neuron listed twice (it would be added twice). n == 0 gives y = 0.
    void forward_sparse(const float* x, const std::uint32_t* active, std::size_t n, float* y) {
        sparse(x, active, n, y);
    }
    /// forward_sparse on x already quantized to int8.
    void forward_sparse(const QuantizedActivations& xq, const std::uint32_t* active, std::size_t n, float* y) {
        sparse(xq, active, n, y);
    }

    /// The exact gate-first mode: computes the gate of every neuron, keeps the
    /// neurons whose |act(gate)| the selection keeps, then computes up and down
    /// for them only. Returns the number of neurons kept. Needs a gated layer.
    std::size_t forward_gate_first(const float* x, const Selection& sel, float* y) { return gate_first(x, sel, y); }
    /// forward_gate_first on x already quantized to int8.
    std::size_t forward_gate_first(const QuantizedActivations& xq, const Selection& sel, float* y) {
        return gate_first(xq, sel, y);
    }

    /// scores[i] = |act(gate_i . x)| for every neuron, the exact gate-first
    /// score (for a plain MLP, |act(up_i . x)|). Used to calibrate selectors.
    void exact_scores(const float* x, float* scores) { all_scores(x, scores); }
    /// exact_scores on x already quantized to int8.
    void exact_scores(const QuantizedActivations& xq, float* scores) { all_scores(xq, scores); }

    /// The dequantized matrix in checkpoint layout (down as [d_model][hidden]):
    /// the exact weights the kernels use, for references and error measurements.
    std::vector<float> dequantized(FfnMatrix which) const {
        return detail::dequantize_matrix<Bits>(matrix(which), which == FfnMatrix::down);
    }

private:
    /// The quantized matrices of a float-built layer (vectors: the class has no default constructor).
    struct Owned {
        std::vector<Weights> gate, up, down;
    };

    SparseFfn(const View* gate, const View& up, const View& down_t, Activation act, Policy policy)
        : act_(act), policy_(policy) {
        bind(gate, up, down_t);
    }

    /// Views the owned matrices.
    void bind_owned() {
        const View gate = owned_->gate.empty() ? View() : owned_->gate[0].view();
        bind(owned_->gate.empty() ? nullptr : &gate, owned_->up[0].view(), owned_->down[0].view());
    }

    /// Validates the three matrices against each other and sets the layer up to read them.
    void bind(const View* gate, const View& up, const View& down_t) {
        detail::check_ffn_views(gate, up, down_t);
        kernels::init_kernels();  // a bad SPARSEINFER_ISA is reported here, not met by silent scalar kernels
        gated_ = gate != nullptr;
        if (gated_) gate_ = *gate;
        up_ = up;
        down_ = down_t;
        d_model_ = up.cols();
        hidden_ = up.rows();
        layout_ = up.layout();
        slot_layout_ = layout_;
        slot_layout_.row_stride = layout_.row_bytes * rows_per_neuron();
        slot_up_offset_ = gated_ ? layout_.row_bytes : 0;
        slot_down_offset_ = slot_up_offset_ + layout_.row_bytes;
        allocate_scratch();
        cache_ = std::make_unique<Cache>(hidden_, policy_);
    }

    void allocate_scratch() {
        rows_.reset(d_model_, hidden_, act_, gated_);
        score_.assign(hidden_, 0.0f);
        selected_.assign(hidden_, 0);
        cold_.assign(hidden_, 0);
        hot_.assign(hidden_, 0);
        hot_neuron_.assign(hidden_, 0);
        ids_ = detail::UniqueIds(hidden_);
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
    void check_list(const std::uint32_t* active, std::size_t n) { ids_.check(active, n, "active"); }

    /// Sets the input of this call: x, or x quantized into xq_ in int8 mode.
    void prepare_input(const float* x) {
        if (int8_) quantize_activations(x, d_model_, xq_);
        rows_.set_input(x, int8_ ? &xq_ : nullptr);
    }
    /// Sets a caller-quantized input for this call (int8 kernels whatever the mode).
    void prepare_input(const QuantizedActivations& xq) { rows_.set_input(nullptr, &xq); }

    // The forward functions for either input (const float* or QuantizedActivations).
    template <class Input>
    void dense(const Input& x, float* y) {
        check_io(x, y);
        prepare_input(x);
        rows_.compute(main_source(), nullptr, nullptr, hidden_, false, y, true, executor_);
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
        rows_.gate_all(main_source(), executor_);
        const std::vector<float>& gate = rows_.gate_values();
        for (std::size_t i = 0; i < hidden_; ++i) score_[i] = std::fabs(activate(act_, gate[i]));
        const std::size_t n = select(sel, score_.data(), hidden_, selected_.data());
        stats_.bytes_read += hidden_ * layout_.row_bytes;  // the dense gate pass
        run_listed(selected_.data(), n, true, y);
        return n;
    }
    template <class Input>
    void all_scores(const Input& x, float* scores) {
        check_io(x, scores);
        prepare_input(x);
        rows_.gate_all(main_source(), executor_);
        const std::vector<float>& gate = rows_.gate_values();
        for (std::size_t i = 0; i < hidden_; ++i) scores[i] = std::fabs(activate(act_, gate[i]));
    }

    using Source = detail::FfnSource;
    Source main_source() const noexcept {
        return {&layout_, gated_ ? gate_.data() : nullptr, up_.data(), down_.data()};
    }
    Source slot_source(const SlotStore& s) const noexcept {
        return {&slot_layout_, s.data(), s.data() + slot_up_offset_, s.data() + slot_down_offset_};
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
            rows_.compute(main_source(), cold_.data(), cold_.data(), n_cold, gate_known, y, false, executor_);
            rows_.compute(slot_source(*store), hot_.data(), hot_neuron_.data(), n_hot, gate_known, y, false, executor_);
        } else {
            n_cold = n;
            rows_.compute(main_source(), active, active, n, gate_known, y, false, executor_);
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
    View gate_, up_, down_;                                  // gate_ unused without a gate
    std::unique_ptr<Owned> owned_;  // a float-built layer's matrices (the views point into them)
    bool int8_ = false;
    Executor executor_;  // inline unless set_executor was called
    Policy policy_;
    std::unique_ptr<Cache> cache_;
    std::size_t store_budget_ = 0;
    FfnStats stats_;

    // Per-call scratch, sized at construction.
    detail::FfnRows<Bits> rows_;  // the arithmetic, with its own scratch
    QuantizedActivations xq_;     // x quantized in int8 mode
    std::vector<float> score_;
    std::vector<std::uint32_t> selected_, cold_, hot_, hot_neuron_;
    detail::UniqueIds ids_;
};

}  // namespace sparseinfer
