// sparseinfer/detail/cache_queues.hpp - the ordered containers behind the cache policies.
//
// RecencyList: neurons in order of last use, kept lazily: a touch stamps the neuron and appends
// (neuron, stamp) to a ring; entries whose stamp is no longer the neuron's are stale and dropped,
// a batch at a time without branches, when they reach the front. touch and remove are O(1) with
// sequential writes and no pointer chasing; oldest is O(1) amortised (each entry is looked at
// once or twice). No allocation after construction.
//
// LogBucketQueue: neuron ids bucketed by the logarithm of a positive weight (8 buckets per
// doubling, read straight from the float's exponent and top mantissa bits), for taking
// near-minimum-weight neurons in O(1) amortised each; weights within 9% of each other tie.
//
// KeyedHeap: an indexed binary min-heap of neuron ids ordered by a key array
// the owner holds, with O(1) membership and O(log n) push, pop, removal and
// key change.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace sparseinfer::detail {

class RecencyList {
public:
    static constexpr std::uint32_t npos = 0xFFFFFFFFu;

    explicit RecencyList(std::size_t num_neurons = 0) : node_(num_neurons), ring_(2 * num_neurons + 2 * batch) {}

    bool contains(std::uint32_t x) const noexcept { return node_[x].stamp != unlisted; }
    /// The least recently used neuron (npos when none is listed). Drops stale entries on the way.
    std::uint32_t oldest() noexcept {
        for (;;) {
            while (next_ < ready_) {
                const Entry e = front_[next_];
                if (node_[e.neuron].stamp == e.stamp) return e.neuron;
                ++next_;  // touched or removed since it was moved to the front batch
            }
            if (head_ == tail_) return npos;
            refill();
        }
    }
    /// Removes and returns the least recently used neuron (npos when none is listed).
    std::uint32_t pop_oldest() noexcept {
        const std::uint32_t x = oldest();
        if (x != npos) {
            node_[x].stamp = unlisted;
            ++next_;
        }
        return x;
    }
    /// Removes up to n least recently used neurons, oldest first, into out; returns how many.
    std::size_t pop_oldest(std::uint32_t* out, std::size_t n) noexcept {
        std::size_t k = 0;
        while (k < n) {
            // Stale entries (touched since they were moved to the front batch) are skipped without
            // a branch: each entry is written out and kept only when live.
            std::size_t next = next_;
            const std::size_t ready = ready_;
            for (; next < ready && k < n; ++next) {
                const Entry e = front_[next];
                std::uint32_t& stamp = node_[e.neuron].stamp;
                const bool live = stamp == e.stamp;
                out[k] = e.neuron;
                k += live;
                stamp = live ? unlisted : stamp;
            }
            next_ = next;
            if (k == n || head_ == tail_) break;
            refill();
        }
        return k;
    }
    /// Token (mod 2^32) of the last touch of a listed neuron.
    std::uint32_t last_use(std::uint32_t x) const noexcept { return node_[x].last; }

    /// Makes x the most recent (listing it when it was not).
    void touch(std::uint32_t x, std::uint64_t token) noexcept { touch(&x, 1, token); }
    /// Touches n distinct neurons in order (n <= num_neurons).
    void touch(const std::uint32_t* xs, std::size_t n, std::uint64_t token) noexcept {
        if (ring_.size() - tail_ < n) compact();  // leaves at most N live entries: room for N + 128
        // Counters in locals: the stores below may alias members of the same type.
        Node* const node = node_.data();
        Entry* const ring = ring_.data() + tail_;
        const auto last = static_cast<std::uint32_t>(token);
        std::uint32_t seq = seq_;
        for (std::size_t k = 0; k < n; ++k) {
            if (++seq == unlisted) seq = 1;
            node[xs[k]] = Node{seq, last};
            ring[k] = Entry{xs[k], seq};
        }
        seq_ = seq;
        tail_ += n;
    }
    void remove(std::uint32_t x) noexcept { node_[x].stamp = unlisted; }
    void clear() noexcept {
        for (Node& n : node_) n.stamp = unlisted;
        head_ = tail_ = next_ = ready_ = 0;
    }

private:
    static constexpr std::uint32_t unlisted = 0;
    static constexpr std::size_t batch = 64;
    struct Entry {
        std::uint32_t neuron, stamp;
    };
    struct Node {                        // one 8-byte write per touch
        std::uint32_t stamp = unlisted;  // stamp of the neuron's live entry, or unlisted
        std::uint32_t last = 0;          // token (mod 2^32) of the last touch
    };
    /// Moves the next live entries of the ring, up to `batch` of them checked, to the front batch.
    /// Branch-free: the stale entries (most of them, when neurons are touched again and again) cost
    /// no mispredicted branch, and the stamp loads overlap.
    void refill() noexcept {
        const std::size_t n = tail_ - head_ < batch ? tail_ - head_ : batch;
        std::size_t k = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const Entry e = ring_[head_ + i];
            front_[k] = e;
            k += node_[e.neuron].stamp == e.stamp;
        }
        head_ += n;
        next_ = 0;
        ready_ = k;
    }
    /// Keeps the live entries (at most one per neuron), in order, at the front. The ring holds
    /// 2N + 128 entries, so at least N + 64 touches separate two compactions: O(1) amortised. A stale
    /// entry never survives a compaction, so a 32-bit stamp cannot wrap onto a live one.
    void compact() noexcept {
        std::size_t out = 0;
        for (std::size_t i = head_; i < tail_; ++i) {
            ring_[out] = ring_[i];
            out += node_[ring_[i].neuron].stamp == ring_[i].stamp;
        }
        head_ = 0;
        tail_ = out;
    }

    std::vector<Node> node_;
    std::vector<Entry> ring_;  // entries in touch order; [head_, tail_) not yet looked at
    Entry front_[batch];       // the oldest entries, live when moved here: [next_, ready_)
    std::size_t head_ = 0, tail_ = 0, next_ = 0, ready_ = 0;
    std::uint32_t seq_ = 0;
};

/// `Node` has a member `std::int32_t bucket` (LogBucketQueue::none when not queued); the owner
/// keeps one Node per neuron (alongside its own per-neuron data, so a lookup touches one cache
/// line) and passes the array, which must not move, to the constructor.
template <class Node>
class LogBucketQueue {
public:
    static constexpr std::int32_t none = -1;

    explicit LogBucketQueue(Node* nodes = nullptr) : node_(nodes) {}

    /// Monotone in w for w >= 0 (8 buckets per doubling).
    static std::int32_t bucket(float w) noexcept {
        std::uint32_t bits;
        std::memcpy(&bits, &w, sizeof bits);
        return static_cast<std::int32_t>(bits >> 20);
    }

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    bool contains(std::uint32_t x) const noexcept { return node_[x].bucket != none; }
    /// The bucket insert(x, w) would file x in, when that is at or below lowest_bucket() (higher
    /// ones may first move the window).
    std::int32_t filing_bucket(float w) const noexcept { return clamp(bucket(w)); }
    /// The lowest non-empty bucket; above every bucket when the queue is empty.
    std::int32_t lowest_bucket() noexcept { return size_ == 0 ? max_bucket : (min_ = lowest_nonempty(min_)); }

    /// Files x (not queued) with weight w.
    void insert(std::uint32_t x, float w) {
        std::int32_t b = bucket(w);
        if (b >= lo_ + ring) advance(b - ring + 1);
        if (b < lo_) b = lo_;
        auto& v = buckets_[index(b)];
        node_[x].bucket = b;
        v.push_back(x);
        mark(b);
        if (b < min_) min_ = b;
        ++size_;
    }
    /// Removes x if queued. O(size of x's bucket): neurons keep no position, so that filing one is
    /// a single append (removing a given neuron is for pins, rare; take_lowest() takes from the back).
    void remove(std::uint32_t x) noexcept {
        Node& nx = node_[x];
        if (nx.bucket == none) return;
        auto& v = buckets_[index(nx.bucket)];
        *std::find(v.begin(), v.end(), x) = v.back();
        v.pop_back();
        if (v.empty()) unmark(nx.bucket);
        nx.bucket = none;
        --size_;
    }
    /// Removes up to n neurons from the lowest buckets into out, lowest bucket first (within a
    /// bucket, the last filed first), and returns how many. On the way, a neuron for which
    /// `passed(x)` holds is set aside (queued again by file_passed()), and one filed below the
    /// bucket of `weight(x)` (its weight grew since it was filed) is refiled there: weights only
    /// grow, so the lazy correction finds the same lowest bucket an eager one would. O(1)
    /// amortised per neuron taken, passed or refiled.
    template <class Passed, class Weight>
    std::size_t take_lowest(std::uint32_t* out, std::size_t n, Passed passed, Weight weight) {
        std::size_t k = 0;
        Node* const node = node_;
        while (k < n && size_ > 0) {
            const std::int32_t b = min_ = lowest_nonempty(min_);
            auto& v = buckets_[index(b)];
            // Counters in locals: the node stores below may alias the queue's members.
            std::int32_t lo = lo_;
            std::size_t taken = 0;
            while (k < n && !v.empty()) {
                const std::uint32_t x = v.back();
                v.pop_back();
                ++taken;
                if (passed(x)) {
                    node[x].bucket = none;
                    passed_.push_back(x);
                    continue;
                }
                const float w = weight(x);
                const std::int32_t wb = bucket(w);
                if ((wb < lo ? lo : wb) > b) {
                    size_ -= taken;
                    taken = 0;
                    insert(x, w);  // a higher bucket; may merge buckets (advance): v is then empty
                    lo = lo_;
                    continue;
                }
                node[x].bucket = none;
                out[k++] = x;
            }
            size_ -= taken;
            if (v.empty()) unmark(b);
        }
        return k;
    }
    /// Files the neurons take_lowest() set aside, at `weight(x)`.
    template <class Weight>
    void file_passed(Weight weight) {
        for (const std::uint32_t x : passed_) insert(x, weight(x));
        passed_.clear();
    }

    void clear() noexcept {
        passed_.clear();
        for (auto& v : buckets_) {
            for (std::uint32_t x : v) node_[x].bucket = none;
            v.clear();
        }
        for (std::uint64_t& w : nonempty_) w = 0;
        size_ = 0;
        lo_ = 0;
        min_ = max_bucket;
    }

private:
    static constexpr std::int32_t ring = 512;  // 64 doublings of weight
    static constexpr std::int32_t max_bucket = 0x7FFFFFFF - ring;
    static std::size_t index(std::int32_t b) noexcept { return static_cast<std::size_t>(b) & (ring - 1); }
    std::int32_t clamp(std::int32_t b) const noexcept { return b < lo_ ? lo_ : b; }
    void mark(std::int32_t b) noexcept { nonempty_[index(b) >> 6] |= std::uint64_t{1} << (index(b) & 63); }
    void unmark(std::int32_t b) noexcept { nonempty_[index(b) >> 6] &= ~(std::uint64_t{1} << (index(b) & 63)); }
    /// The lowest non-empty bucket at or above b (lo_ <= b; the queue is not empty): a few words
    /// of the bitmap, not a walk over empty buckets.
    std::int32_t lowest_nonempty(std::int32_t b) const noexcept {
        std::size_t word = index(b) >> 6;
        std::uint64_t bits = nonempty_[word] & (~std::uint64_t{0} << (index(b) & 63));
        std::int32_t base = b - static_cast<std::int32_t>(index(b) & 63);  // the bucket of bit 0
        while (bits == 0) {
            word = (word + 1) % words;
            base += 64;
            bits = nonempty_[word];
        }
        return base + lowest_bit(bits);
    }
    static std::int32_t lowest_bit(std::uint64_t m) noexcept {
#if defined(__GNUC__)
        return __builtin_ctzll(m);
#else
        std::int32_t i = 0;
        while (!(m & 1u)) m >>= 1, ++i;
        return i;
#endif
    }

    /// Moves the window up so its bottom is new_lo; lower buckets merge into new_lo.
    [[gnu::noinline]] void advance(std::int32_t new_lo) {
        const std::int32_t stop = new_lo < lo_ + ring ? new_lo : lo_ + ring;
        lumped_.clear();
        for (std::int32_t b = lo_; b < stop; ++b) {
            auto& v = buckets_[index(b)];
            lumped_.insert(lumped_.end(), v.begin(), v.end());
            v.clear();
            unmark(b);
        }
        lo_ = new_lo;
        auto& dst = buckets_[index(lo_)];
        for (std::uint32_t x : lumped_) {
            node_[x].bucket = lo_;
            dst.push_back(x);
        }
        if (!dst.empty()) mark(lo_);
        if (min_ < lo_) min_ = lo_;
    }

    Node* node_;
    std::vector<std::vector<std::uint32_t>> buckets_ = std::vector<std::vector<std::uint32_t>>(ring);
    std::vector<std::uint32_t> lumped_, passed_;
    static constexpr std::size_t words = ring / 64;
    std::uint64_t nonempty_[words] = {};  // bit i of word j: bucket (ring index) 64 j + i is not empty
    std::size_t size_ = 0;
    std::int32_t lo_ = 0;  // the window starts at bucket 0; the first insert moves it up
    std::int32_t min_ = max_bucket;
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
