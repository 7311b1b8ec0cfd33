// sparseinfer/detail/cache_queues.hpp - the ordered containers behind the cache policies.
//
// RecencyQueue: neurons in order of last use, as a FIFO of (neuron, token) entries
// with lazy deletion: touching a neuron appends an entry and makes its older
// entry stale; the front is popped past stale entries. Every push is popped or
// compacted away once, so each operation is O(1) amortised and the memory is
// sequential (no linked-list pointer chasing on the per-token path).
//
// LogBucketQueue: neuron ids bucketed by the logarithm of a positive weight (8 buckets per
// doubling, read straight from the double's exponent and top mantissa bits), for finding a
// near-minimum-weight neuron in O(1) amortised; weights within 9% of each other tie.
//
// KeyedHeap: an indexed binary min-heap of neuron ids ordered by a key array
// the owner holds, with O(1) membership and O(log n) push, pop, removal and
// key change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
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
        if (token - base_ >= limit) rebase(token);
        const auto rel = static_cast<std::uint32_t>(token - base_);
        last_[neuron] = rel;
        entries_.push_back((std::uint64_t{rel} << 32) | neuron);  // one 8-byte store
    }
    /// Token of the last use, 0 when never used (or forgotten).
    std::uint64_t last_use(std::uint32_t neuron) const noexcept {
        return last_[neuron] == 0 ? 0 : base_ + last_[neuron];
    }
    /// Drops `neuron` from the order (its entries become stale).
    void forget(std::uint32_t neuron) noexcept { last_[neuron] = 0; }

    bool empty() const noexcept { return head_ == entries_.size(); }
    /// The oldest entry; `live` when it is the neuron's latest use.
    Entry front() const noexcept {
        const std::uint64_t e = entries_[head_];
        return {static_cast<std::uint32_t>(e), base_ + (e >> 32)};
    }
    bool front_live() const noexcept {
        const std::uint64_t e = entries_[head_];
        return last_[static_cast<std::uint32_t>(e)] == (e >> 32);
    }
    void pop_front() noexcept { ++head_; }

    /// Keeps memory proportional to the live entries: call once per token. `keep(neuron)`
    /// says whether a live entry still matters to the owner.
    template <class Keep>
    void compact_if_large(std::size_t live_bound, Keep keep) {
        if (entries_.size() <= 4 * live_bound + 4096) return;  // rare enough to stay O(1) per push
        std::size_t out = 0;
        for (std::size_t i = head_; i < entries_.size(); ++i) {
            const std::uint64_t e = entries_[i];
            const auto n = static_cast<std::uint32_t>(e);
            if (last_[n] == (e >> 32) && keep(n)) entries_[out++] = e;
        }
        entries_.resize(out);
        head_ = 0;
    }

    void clear() {
        entries_.clear();
        head_ = 0;
        base_ = 0;
        for (auto& t : last_) t = 0;
    }

private:
    static constexpr std::uint64_t limit = 0xFFFFFFF0u;

    /// Every 2^32 tokens: shift the relative stamps down, clamping the oldest to 1 (order kept).
    void rebase(std::uint64_t token) {
        const std::uint64_t new_base = token - (limit / 2);
        const std::uint64_t shift = new_base - base_;
        auto move = [shift](std::uint64_t rel) -> std::uint64_t { return rel == 0 ? 0 : rel > shift ? rel - shift : 1; };
        for (auto& t : last_) t = static_cast<std::uint32_t>(move(t));
        for (std::size_t i = head_; i < entries_.size(); ++i)
            entries_[i] = (move(entries_[i] >> 32) << 32) | (entries_[i] & 0xFFFFFFFFu);
        base_ = new_base;
    }

    std::vector<std::uint32_t> last_;    // token - base_ of the last use, 0 = none
    std::vector<std::uint64_t> entries_;  // (token - base_) << 32 | neuron
    std::size_t head_ = 0;
    std::uint64_t base_ = 0;
};

class LogBucketQueue {
public:
    static constexpr std::uint32_t npos = 0xFFFFFFFFu;

    explicit LogBucketQueue(std::size_t num_neurons = 0) : bucket_of_(num_neurons, none), pos_(num_neurons, 0) {}

    /// Monotone in w for w >= 0.
    static std::int64_t bucket(double w) noexcept {
        std::uint64_t bits;
        std::memcpy(&bits, &w, sizeof bits);
        return static_cast<std::int64_t>(bits >> 49);
    }

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    bool contains(std::uint32_t x) const noexcept { return bucket_of_[x] != none; }
    /// The bucket x is filed under (below its true bucket when its weight grew since).
    std::int64_t filed_bucket(std::uint32_t x) const noexcept { return bucket_of_[x]; }
    /// Bucket of w as this queue files it (weights far below the largest are lumped together).
    std::int64_t clamp(std::int64_t b) const noexcept { return b < lo_ ? lo_ : b; }

    void insert(std::uint32_t x, double w) {
        std::int64_t b = bucket(w);
        if (size_ == 0 && lo_ == unset) lo_ = b - ring + 1 > 0 ? b - ring + 1 : 0;
        if (b >= lo_ + static_cast<std::int64_t>(ring)) advance(b - static_cast<std::int64_t>(ring) + 1);
        if (b < lo_) b = lo_;
        auto& v = buckets_[index(b)];
        bucket_of_[x] = b;
        pos_[x] = static_cast<std::uint32_t>(v.size());
        v.push_back(x);
        if (b < min_) min_ = b;
        ++size_;
    }
    void remove(std::uint32_t x) noexcept {
        const std::int64_t b = bucket_of_[x];
        if (b == none) return;
        auto& v = buckets_[index(b)];
        const std::uint32_t moved = v.back();
        v[pos_[x]] = moved;
        pos_[moved] = pos_[x];
        v.pop_back();
        bucket_of_[x] = none;
        --size_;
    }
    /// A neuron of the lowest non-empty bucket; npos when empty.
    std::uint32_t peek_min() noexcept {
        if (size_ == 0) return npos;
        while (buckets_[index(min_)].empty()) ++min_;
        return buckets_[index(min_)].back();
    }
    void clear() noexcept {
        for (auto& v : buckets_) {
            for (std::uint32_t x : v) bucket_of_[x] = none;
            v.clear();
        }
        size_ = 0;
        lo_ = unset;
        min_ = max_bucket;
    }

private:
    static constexpr std::size_t ring = 512;  // 64 doublings of weight
    static constexpr std::int64_t none = -1;
    static constexpr std::int64_t unset = -2;
    static constexpr std::int64_t max_bucket = std::int64_t(1) << 40;
    static std::size_t index(std::int64_t b) noexcept { return static_cast<std::size_t>(b) & (ring - 1); }

    /// Moves the window up so its top is new_lo + ring - 1; lower buckets merge into new_lo.
    void advance(std::int64_t new_lo) {
        const std::int64_t stop = new_lo < lo_ + static_cast<std::int64_t>(ring) ? new_lo : lo_ + static_cast<std::int64_t>(ring);
        std::vector<std::uint32_t> lumped;
        for (std::int64_t b = lo_; b < stop; ++b) {
            auto& v = buckets_[index(b)];
            lumped.insert(lumped.end(), v.begin(), v.end());
            v.clear();
        }
        if (stop < new_lo) {  // jumped past everything
            for (std::int64_t b = stop; b < lo_ + static_cast<std::int64_t>(ring); ++b) {
                auto& v = buckets_[index(b)];
                lumped.insert(lumped.end(), v.begin(), v.end());
                v.clear();
            }
        }
        lo_ = new_lo;
        auto& dst = buckets_[index(lo_)];
        for (std::uint32_t x : lumped) {
            bucket_of_[x] = lo_;
            pos_[x] = static_cast<std::uint32_t>(dst.size());
            dst.push_back(x);
        }
        if (min_ < lo_) min_ = lo_;
    }

    std::vector<std::vector<std::uint32_t>> buckets_ = std::vector<std::vector<std::uint32_t>>(ring);
    std::vector<std::int64_t> bucket_of_;
    std::vector<std::uint32_t> pos_;
    std::size_t size_ = 0;
    std::int64_t lo_ = unset;
    std::int64_t min_ = max_bucket;
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
