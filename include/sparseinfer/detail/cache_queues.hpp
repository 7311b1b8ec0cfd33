// sparseinfer/detail/cache_queues.hpp - the ordered containers behind the cache policies.
//
// RecencyList: neurons in order of last use, kept lazily: a touch stamps the neuron and appends
// (neuron, stamp) to a ring; entries whose stamp is no longer the neuron's are stale and dropped,
// a batch at a time without branches, when they reach the front. touch and remove are O(1) with
// sequential writes and no pointer chasing; oldest is O(1) amortised (each entry is looked at
// once or twice). No allocation after construction.
//
// LogBucketQueue: neuron ids bucketed by the logarithm of a positive weight (8 buckets per
// doubling, read straight from the float's exponent and top mantissa bits), for finding a
// near-minimum-weight neuron in O(1) amortised; weights within 9% of each other tie.
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

/// `Node` has members `std::int32_t bucket` (LogBucketQueue::none when not queued) and
/// `std::uint32_t pos`; the owner keeps one Node per neuron (alongside its own per-neuron data, so
/// a lookup touches one cache line) and passes the array, which must not move, to the constructor.
template <class Node>
class LogBucketQueue {
public:
    static constexpr std::uint32_t npos = 0xFFFFFFFFu;
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
    /// True when x is filed below the bucket of weight w (its weight grew since it was filed).
    bool filed_low(std::uint32_t x, float w) const noexcept { return clamp(bucket(w)) > node_[x].bucket; }

    void insert(std::uint32_t x, float w) {
        std::int32_t b = bucket(w);
        if (lo_ == unset) lo_ = b - ring + 1 > 0 ? b - ring + 1 : 0;
        if (b >= lo_ + ring) advance(b - ring + 1);
        if (b < lo_) b = lo_;
        auto& v = buckets_[index(b)];
        node_[x].bucket = b;
        node_[x].pos = static_cast<std::uint32_t>(v.size());
        v.push_back(x);
        if (b < min_) min_ = b;
        ++size_;
    }
    void remove(std::uint32_t x) noexcept {
        Node& nx = node_[x];
        if (nx.bucket == none) return;
        auto& v = buckets_[index(nx.bucket)];
        const std::uint32_t moved = v.back();
        v[nx.pos] = moved;
        node_[moved].pos = nx.pos;
        v.pop_back();
        nx.bucket = none;
        --size_;
    }
    /// A neuron of the lowest non-empty bucket; npos when empty.
    std::uint32_t peek_min() noexcept {
        if (size_ == 0) return npos;
        while (buckets_[index(min_)].empty()) ++min_;
        const auto& v = buckets_[index(min_)];
#if defined(__GNUC__)
        if (v.size() > 1) __builtin_prefetch(&node_[v[v.size() - 2]]);  // the likely next victim
#endif
        return v.back();
    }
    /// Scanning upward from the lowest bucket: `passed(x)` says x is passed over for the rest of this
    /// scan (left in place, no writes); otherwise `judge(x)` says whether x is the one (take) or was
    /// filed too low (refile: the queue moves it to the bucket of `weight(x)`). begin_scan() starts a
    /// scan; remove_scanned() removes the neuron scan() returned. Returns npos when every neuron was
    /// passed over. `passed` is evaluated once per neuron and scan, on windows of up to 32 neurons
    /// at once without a branch per neuron; the window's bits serve the following calls (the
    /// neurons below the scan position do not move while it runs), so a scan costs O(1) per
    /// neuron it passes or takes, and long runs of passed-over neurons cost no mispredictions.
    enum class Verdict { take, refile };
    void begin_scan() noexcept { scan_pos_ = npos; }
    template <class Passed, class Judge, class Weight>
    std::uint32_t scan(Passed passed, Judge judge, Weight weight) {
        if (size_ == 0) return npos;
        if (scan_pos_ == npos) {
            while (buckets_[index(min_)].empty()) ++min_;
            scan_bucket_ = min_;
            scan_pos_ = static_cast<std::uint32_t>(buckets_[index(min_)].size());
            window_ = 0;
        }
        for (;;) {
            auto& v = buckets_[index(scan_bucket_)];
            while (scan_pos_ > 0) {
                if (window_ == 0) {  // the next (up to) 32 below the position; bit i: scan_pos_ - 1 - i
                    const std::uint32_t run = scan_pos_ < 32 ? scan_pos_ : 32;
                    const std::uint32_t* top = v.data() + scan_pos_ - 1;
                    std::uint32_t bits = 0;
                    for (std::uint32_t i = 0; i < run; ++i)
                        bits |= static_cast<std::uint32_t>(!passed(*(top - i))) << i;
                    mask_ = bits;
                    window_ = run;
                }
                if (mask_ == 0) {
                    scan_pos_ -= window_;
                    window_ = 0;
                    continue;
                }
                const auto skip = static_cast<std::uint32_t>(lowest_bit(mask_));
                scan_pos_ -= skip;
                window_ -= skip;
                mask_ >>= skip;
                const std::uint32_t x = v[scan_pos_ - 1];
                if (judge(x) == Verdict::take) return x;
                remove_scanned();
                insert(x, weight(x));  // a higher bucket; may restart the scan (advance)
                if (scan_pos_ == npos) return scan(passed, judge, weight);
            }
            do {
                ++scan_bucket_;
            } while (scan_bucket_ < lo_ + ring && buckets_[index(scan_bucket_)].empty());
            if (scan_bucket_ >= lo_ + ring) return npos;
            scan_pos_ = static_cast<std::uint32_t>(buckets_[index(scan_bucket_)].size());
            window_ = 0;
        }
    }
    /// Removes the neuron scan() just returned (everything above it in its bucket was skipped, so the
    /// element that moves into its place is one already passed over).
    void remove_scanned() noexcept {
        auto& v = buckets_[index(scan_bucket_)];
        const std::uint32_t at = scan_pos_ - 1;
        const std::uint32_t moved = v.back();
        node_[v[at]].bucket = none;
        v[at] = moved;
        node_[moved].pos = at;
        v.pop_back();
        --size_;
        --scan_pos_;
        --window_;
        mask_ >>= 1;
    }

    void clear() noexcept {
        scan_pos_ = npos;
        for (auto& v : buckets_) {
            for (std::uint32_t x : v) node_[x].bucket = none;
            v.clear();
        }
        size_ = 0;
        lo_ = unset;
        min_ = max_bucket;
    }

private:
    static int lowest_bit(std::uint32_t m) noexcept {
#if defined(__GNUC__)
        return __builtin_ctz(m);
#else
        int i = 0;
        while (!(m & 1u)) m >>= 1, ++i;
        return i;
#endif
    }
    static constexpr std::int32_t ring = 512;  // 64 doublings of weight
    static constexpr std::int32_t unset = -2;
    static constexpr std::int32_t max_bucket = 0x7FFFFFFF - ring;
    static std::size_t index(std::int32_t b) noexcept { return static_cast<std::size_t>(b) & (ring - 1); }
    std::int32_t clamp(std::int32_t b) const noexcept { return b < lo_ ? lo_ : b; }

    /// Moves the window up so its bottom is new_lo; lower buckets merge into new_lo.
    [[gnu::noinline]] void advance(std::int32_t new_lo) {
        const std::int32_t stop = new_lo < lo_ + ring ? new_lo : lo_ + ring;
        lumped_.clear();
        for (std::int32_t b = lo_; b < stop; ++b) {
            auto& v = buckets_[index(b)];
            lumped_.insert(lumped_.end(), v.begin(), v.end());
            v.clear();
        }
        lo_ = new_lo;
        scan_pos_ = npos;  // buckets merged: a running scan restarts
        auto& dst = buckets_[index(lo_)];
        for (std::uint32_t x : lumped_) {
            node_[x].bucket = lo_;
            node_[x].pos = static_cast<std::uint32_t>(dst.size());
            dst.push_back(x);
        }
        if (min_ < lo_) min_ = lo_;
    }

    Node* node_;
    std::vector<std::vector<std::uint32_t>> buckets_ = std::vector<std::vector<std::uint32_t>>(ring);
    std::vector<std::uint32_t> lumped_;
    std::size_t size_ = 0;
    std::int32_t lo_ = unset;
    std::int32_t min_ = max_bucket;
    std::int32_t scan_bucket_ = 0;
    std::uint32_t scan_pos_ = npos;
    std::uint32_t mask_ = 0, window_ = 0;  // bit i: neuron scan_pos_ - 1 - i is not passed over
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
