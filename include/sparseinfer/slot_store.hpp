// sparseinfer/slot_store.hpp - resident neuron data in one preallocated buffer of fixed-size slots.
//
// A SlotStore holds the bytes of the neurons that are resident (for example a
// neuron's gate row, up row and down row bundled together) in a single buffer
// of `budget_bytes / bytes_per_neuron` slots, allocated once. Slots are kept
// dense: evicting a neuron moves the last slot into the hole (as LLM in a Flash
// does with its preallocated matrix), so slots 0..size()-1 are always occupied,
// nothing is reallocated, and slot order carries no meaning. Lookups, insertion
// and eviction are O(1). Bytes arrive through a loader the engine supplies
// (a copy from quantized rows in RAM, or a read from a file for models larger
// than memory); bytes_loaded() counts them.
//
//   sparseinfer::SlotStore store(11008, row_bytes, 64 << 20,
//       [&](std::uint32_t n, std::uint8_t* dst, std::size_t bytes) { std::memcpy(dst, rows + n * bytes, bytes); });
//   const std::uint8_t* p = store.insert(42);   // loads neuron 42 into a free slot
//   store.evict(42);                            // frees it (the last slot moves into the hole)
//
// Not thread-safe: one object is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "detail/aligned_allocator.hpp"
#include "error.hpp"

namespace sparseinfer {

/// Fixed-size slots for resident neurons, sized from a byte budget (see the header comment).
class SlotStore {
public:
    /// Fills `bytes` bytes at `dst` with the data of `neuron`. May throw; the store is then unchanged.
    using Loader = std::function<void(std::uint32_t neuron, std::uint8_t* dst, std::size_t bytes)>;
    static constexpr std::uint32_t npos = 0xFFFFFFFFu;  ///< no slot, no neuron

    /// Throws sparseinfer::error when bytes_per_neuron is 0, the budget holds no slot, the loader is
    /// empty or num_neurons does not fit the 32-bit neuron index.
    SlotStore(std::size_t num_neurons, std::size_t bytes_per_neuron, std::size_t budget_bytes, Loader loader)
        : stride_(bytes_per_neuron), loader_(std::move(loader)) {
        if (bytes_per_neuron == 0) throw error("SlotStore: bytes_per_neuron is 0");
        if (num_neurons >= npos)
            throw error("SlotStore: num_neurons (" + std::to_string(num_neurons) + ") must be below 2^32 - 1");
        if (!loader_) throw error("SlotStore: the loader is empty");
        capacity_ = budget_bytes / bytes_per_neuron;
        if (capacity_ == 0)
            throw error("SlotStore: budget_bytes (" + std::to_string(budget_bytes) +
                        ") holds no slot of bytes_per_neuron (" + std::to_string(bytes_per_neuron) + ")");
        if (capacity_ > num_neurons) capacity_ = num_neurons;  // never more slots than neurons
        data_.resize(capacity_ * stride_);
        slot_of_.assign(num_neurons, npos);
        neuron_at_.assign(capacity_, npos);
    }

    /// Neurons the store can hold (indices 0..num_neurons-1).
    std::size_t num_neurons() const noexcept { return slot_of_.size(); }
    /// Number of slots: min(budget_bytes / bytes_per_neuron, num_neurons).
    std::size_t capacity() const noexcept { return capacity_; }
    /// Occupied slots; they are slots 0..size()-1.
    std::size_t size() const noexcept { return size_; }
    /// Bytes from one slot to the next (== bytes_per_neuron): slot s is at data() + s * slot_stride().
    std::size_t slot_stride() const noexcept { return stride_; }
    /// The whole buffer (64-byte aligned).
    const std::uint8_t* data() const noexcept { return data_.data(); }

    /// The slot holding `neuron`, npos when it is not resident or out of range. O(1).
    std::uint32_t slot_of(std::uint32_t neuron) const noexcept {
        return neuron < slot_of_.size() ? slot_of_[neuron] : npos;
    }
    /// The neuron in `slot`, npos when the slot is free or out of range.
    std::uint32_t neuron_at(std::uint32_t slot) const noexcept { return slot < size_ ? neuron_at_[slot] : npos; }
    /// The bytes of `neuron`, nullptr when it is not resident.
    const std::uint8_t* find(std::uint32_t neuron) const noexcept {
        const std::uint32_t s = slot_of(neuron);
        return s == npos ? nullptr : data_.data() + static_cast<std::size_t>(s) * stride_;
    }
    /// True when `neuron` is resident.
    bool contains(std::uint32_t neuron) const noexcept { return slot_of(neuron) != npos; }
    /// True when every slot is occupied.
    bool full() const noexcept { return size_ == capacity_; }

    /// Loads `neuron` into the next free slot and returns its bytes; a resident neuron is returned
    /// as is (not reloaded). Throws sparseinfer::error when the neuron is out of range or the store is
    /// full; when the loader throws, the exception propagates and the store is unchanged.
    const std::uint8_t* insert(std::uint32_t neuron) {
        check(neuron, "insert");
        if (const std::uint8_t* p = find(neuron)) return p;
        if (size_ == capacity_)
            throw error("SlotStore::insert: neuron " + std::to_string(neuron) + ": all " + std::to_string(capacity_) +
                        " slots are occupied");
        std::uint8_t* dst = data_.data() + size_ * stride_;
        loader_(neuron, dst, stride_);  // before any bookkeeping: a throwing loader leaves no trace
        neuron_at_[size_] = neuron;
        slot_of_[neuron] = static_cast<std::uint32_t>(size_);
        ++size_;
        bytes_loaded_ += stride_;
        return dst;
    }

    /// Frees the slot of `neuron`: the last occupied slot moves into the hole. Throws
    /// sparseinfer::error when the neuron is out of range or not resident.
    void evict(std::uint32_t neuron) {
        check(neuron, "evict");
        const std::uint32_t s = slot_of_[neuron];
        if (s == npos) throw error("SlotStore::evict: neuron " + std::to_string(neuron) + " is not resident");
        const std::size_t last = size_ - 1;
        if (s != last) {
            const std::uint32_t moved = neuron_at_[last];
            std::uint8_t* hole = data_.data() + static_cast<std::size_t>(s) * stride_;
            const std::uint8_t* from = data_.data() + last * stride_;
            std::memcpy(hole, from, stride_);  // distinct slots: no overlap
            neuron_at_[s] = moved;
            slot_of_[moved] = s;
        }
        neuron_at_[last] = npos;
        slot_of_[neuron] = npos;
        size_ = last;
    }

    /// Frees every slot (bytes_loaded() is kept).
    void clear() noexcept {
        for (std::size_t s = 0; s < size_; ++s) {
            slot_of_[neuron_at_[s]] = npos;
            neuron_at_[s] = npos;
        }
        size_ = 0;
    }

    /// Bytes passed to the loader since construction.
    std::uint64_t bytes_loaded() const noexcept { return bytes_loaded_; }

private:
    void check(std::uint32_t neuron, const char* what) const {
        if (neuron >= slot_of_.size())
            throw error(std::string("SlotStore::") + what + ": neuron " + std::to_string(neuron) +
                        " is out of range (num_neurons " + std::to_string(slot_of_.size()) + ")");
    }

    std::size_t stride_ = 0;
    std::size_t capacity_ = 0;
    std::size_t size_ = 0;
    std::uint64_t bytes_loaded_ = 0;
    Loader loader_;
    std::vector<std::uint8_t, detail::AlignedAllocator<std::uint8_t>> data_;
    std::vector<std::uint32_t> slot_of_;
    std::vector<std::uint32_t> neuron_at_;
};

}  // namespace sparseinfer
