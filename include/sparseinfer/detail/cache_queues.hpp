// sparseinfer/detail/cache_queues.hpp - the ordered containers behind the cache policies.
//
// RecencyQueue: neurons in order of last use, as a FIFO of (neuron, token) entries
// with lazy deletion: touching a neuron appends an entry and makes its older
// entry stale; the front is popped past stale entries. Every push is popped or
// compacted away once, so each operation is O(1) amortised and the memory is
// sequential (no linked-list pointer chasing on the per-token path).
//
// KeyedHeap: an indexed binary min-heap of neuron ids ordered by a key array
// the owner holds, with O(1) membership and O(log n) push, pop, removal and
// key change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sparseinfer::detail {

class RecencyQueue {
public:
    struct Entry {
        std::uint32_t neuron;
        std::uint64_t token;
    };

    explicit RecencyQueue(std::size_t num_neurons = 0) : last_(num_neurons, 0) {}

    /// Records that `neuron` was used at `token` (tokens start at 1 and never decrease).
    void touch(std::uint32_t neuron, std::uint64_t token) {
        last_[neuron] = token;
        entries_.push_back({neuron, token});
    }
    /// Token of the last use, 0 when never used (or forgotten).
    std::uint64_t last_use(std::uint32_t neuron) const noexcept { return last_[neuron]; }
    /// Drops `neuron` from the order (its entries become stale).
    void forget(std::uint32_t neuron) noexcept { last_[neuron] = 0; }

    /// True when the front entry is the live entry of its neuron.
    bool front_live() const noexcept {
        const Entry& e = entries_[head_];
        return last_[e.neuron] == e.token;
    }
    bool empty() const noexcept { return head_ == entries_.size(); }
    const Entry& front() const noexcept { return entries_[head_]; }
    void pop_front() noexcept { ++head_; }

    /// Keeps memory proportional to the live entries: call once per token. `keep(neuron)`
    /// says whether a live entry still matters to the owner.
    template <class Keep>
    void compact_if_large(std::size_t live_bound, Keep keep) {
        if (entries_.size() - head_ <= 2 * live_bound + 1024 && head_ <= entries_.size() / 2 + 1024) return;
        std::size_t out = 0;
        for (std::size_t i = head_; i < entries_.size(); ++i) {
            const Entry e = entries_[i];
            if (last_[e.neuron] == e.token && keep(e.neuron)) entries_[out++] = e;
        }
        entries_.resize(out);
        head_ = 0;
    }

    void clear() {
        entries_.clear();
        head_ = 0;
        for (auto& t : last_) t = 0;
    }

private:
    std::vector<std::uint64_t> last_;
    std::vector<Entry> entries_;
    std::size_t head_ = 0;
};

/// Indexed min-heap of neuron ids; the key of neuron n is key[n] in an array the owner keeps and
/// passes to every call (so the owner may change keys, then call update()).
template <class Key>
class KeyedHeap {
public:
    static constexpr std::uint32_t npos = 0xFFFFFFFFu;

    explicit KeyedHeap(std::size_t num_neurons = 0) : pos_(num_neurons, npos) {}

    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    bool contains(std::uint32_t n) const noexcept { return pos_[n] != npos; }
    std::uint32_t top() const noexcept { return heap_[0]; }

    void push(std::uint32_t n, const Key* key) {
        pos_[n] = static_cast<std::uint32_t>(heap_.size());
        heap_.push_back(n);
        sift_up(heap_.size() - 1, key);
    }
    std::uint32_t pop(const Key* key) {
        const std::uint32_t n = heap_[0];
        remove_at(0, key);
        return n;
    }
    void remove(std::uint32_t n, const Key* key) {
        if (pos_[n] != npos) remove_at(pos_[n], key);
    }
    /// Restores the order after key[n] changed.
    void update(std::uint32_t n, const Key* key) {
        const std::size_t i = pos_[n];
        sift_up(i, key);
        sift_down(pos_[n], key);
    }
    void clear() noexcept {
        for (std::uint32_t n : heap_) pos_[n] = npos;
        heap_.clear();
    }
    const std::vector<std::uint32_t>& items() const noexcept { return heap_; }

private:
    void remove_at(std::size_t i, const Key* key) {
        const std::uint32_t n = heap_[i];
        pos_[n] = npos;
        const std::uint32_t last = heap_.back();
        heap_.pop_back();
        if (i == heap_.size()) return;
        heap_[i] = last;
        pos_[last] = static_cast<std::uint32_t>(i);
        sift_up(i, key);
        sift_down(pos_[last], key);
    }
    void sift_up(std::size_t i, const Key* key) {
        const std::uint32_t n = heap_[i];
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!(key[n] < key[heap_[parent]])) break;
            heap_[i] = heap_[parent];
            pos_[heap_[i]] = static_cast<std::uint32_t>(i);
            i = parent;
        }
        heap_[i] = n;
        pos_[n] = static_cast<std::uint32_t>(i);
    }
    void sift_down(std::size_t i, const Key* key) {
        const std::uint32_t n = heap_[i];
        const std::size_t size = heap_.size();
        for (;;) {
            std::size_t child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && key[heap_[child + 1]] < key[heap_[child]]) ++child;
            if (!(key[heap_[child]] < key[n])) break;
            heap_[i] = heap_[child];
            pos_[heap_[i]] = static_cast<std::uint32_t>(i);
            i = child;
        }
        heap_[i] = n;
        pos_[n] = static_cast<std::uint32_t>(i);
    }

    std::vector<std::uint32_t> heap_;
    std::vector<std::uint32_t> pos_;
};

}  // namespace sparseinfer::detail
