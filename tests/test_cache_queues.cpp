// Tests of <sparseinfer/detail/cache_queues.hpp>, the containers behind the cache policies, each
// against a straightforward model on random operation sequences, and of the running sums
// policy::Adaptive keeps beside them.
#include <sparseinfer/detail/cache_queues.hpp>
#include <sparseinfer/neuron_cache.hpp>
#include <sparseinfer/policies.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "catch.hpp"

namespace si = sparseinfer;
using si::detail::RecencyList;
using Ids = std::vector<std::uint32_t>;

TEST_CASE("RecencyList matches a last-use model under random touches, removals and pops") {
    const std::uint32_t n = 300;
    RecencyList list(n);
    std::vector<std::uint64_t> order(n, 0);  // model: 0 = not listed, else the touch sequence number
    std::uint64_t seq = 0;
    std::mt19937 rng(11);
    auto model_oldest = [&] {
        std::uint32_t best = RecencyList::npos;
        for (std::uint32_t i = 0; i < n; ++i)
            if (order[i] != 0 && (best == RecencyList::npos || order[i] < order[best])) best = i;
        return best;
    };
    Ids batch, popped;
    for (int step = 0; step < 20000; ++step) {
        const unsigned op = rng() % 10;
        if (op < 4) {  // one touch
            const std::uint32_t x = rng() % n;
            list.touch(x, static_cast<std::uint64_t>(step));
            order[x] = ++seq;
        } else if (op < 6) {  // a batch of distinct neurons, in order
            batch.clear();
            for (std::uint32_t x = rng() % 7; x < n; x += 1 + rng() % 40) batch.push_back(x);
            std::shuffle(batch.begin(), batch.end(), rng);
            list.touch(batch.data(), batch.size(), static_cast<std::uint64_t>(step));
            for (std::uint32_t x : batch) order[x] = ++seq;
            for (std::uint32_t x : batch) REQUIRE(list.last_use(x) == static_cast<std::uint32_t>(step));
        } else if (op == 6) {
            const std::uint32_t x = rng() % n;
            list.remove(x);
            order[x] = 0;
        } else if (op == 7) {
            const std::uint32_t expect = model_oldest();
            REQUIRE(list.pop_oldest() == expect);
            if (expect != RecencyList::npos) order[expect] = 0;
        } else if (op == 8) {  // pop several at once
            const std::size_t want = rng() % 20;
            popped.assign(want, 0);
            const std::size_t got = list.pop_oldest(popped.data(), want);
            for (std::size_t k = 0; k < got; ++k) {
                REQUIRE(popped[k] == model_oldest());
                order[popped[k]] = 0;
            }
            if (got < want) REQUIRE(model_oldest() == RecencyList::npos);
        } else {
            REQUIRE(list.oldest() == model_oldest());
        }
        if (step % 997 == 0)
            for (std::uint32_t i = 0; i < n; ++i) REQUIRE(list.contains(i) == (order[i] != 0));
    }
}

namespace {
struct QueueNode {
    float weight = 0;
    std::uint32_t last = 0;
    std::int32_t bucket = -1;
};
using Queue = si::detail::LogBucketQueue<QueueNode>;
}  // namespace

TEST_CASE("LogBucketQueue on an empty queue takes nothing") {
    std::vector<QueueNode> node(4);
    Queue q(node.data());
    std::uint32_t out[4];
    auto never = [](std::uint32_t) { return false; };
    auto weight = [&](std::uint32_t v) { return node[v].weight; };
    CHECK(q.take_lowest(out, 4, never, weight) == 0);
    node[2].weight = 3;
    q.insert(2, node[2].weight);
    CHECK(q.take_lowest(out, 0, never, weight) == 0);
    CHECK(q.contains(2));
    REQUIRE(q.take_lowest(out, 4, never, weight) == 1);
    CHECK(out[0] == 2);
    CHECK(q.empty());
    CHECK_FALSE(q.contains(2));
}

TEST_CASE("LogBucketQueue::lowest_bucket and filing_bucket agree with where insert files and take_lowest takes") {
    std::vector<QueueNode> node(64);
    Queue q(node.data());
    auto never = [](std::uint32_t) { return false; };
    auto weight = [&](std::uint32_t v) { return node[v].weight; };
    // Empty: above any bucket a weight can have.
    CHECK(q.lowest_bucket() > Queue::bucket(3.0e38f));
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> w(0.5f, 5000.0f);
    for (std::uint32_t x = 0; x < 64; ++x) {
        node[x].weight = w(rng);
        const std::int32_t expect = q.filing_bucket(node[x].weight);
        q.insert(x, node[x].weight);
        CHECK(node[x].bucket == expect);
    }
    for (int round = 0; round < 64; ++round) {
        const std::int32_t lowest = q.lowest_bucket();
        std::int32_t min_filed = lowest + 1;
        for (const QueueNode& nd : node)
            if (nd.bucket != Queue::none) min_filed = std::min(min_filed, nd.bucket);
        CHECK(lowest == min_filed);
        std::uint32_t out = 0;
        REQUIRE(q.take_lowest(&out, 1, never, weight) == 1);
        CHECK(Queue::bucket(node[out].weight) == lowest);
    }
    CHECK(q.empty());
}

TEST_CASE("LogBucketQueue::take_lowest takes lowest-bucket neurons not passed over, refiling grown ones") {
    // Model: the queued set and current weights. Weights grow behind the queue's back (as in
    // policy::Adaptive); each neuron taken must be queued, not passed over, and in the lowest
    // current bucket among the queued neurons not passed over and not taken before it; fewer
    // than asked exactly when none is left. Passed-over neurons are queued again by file_passed().
    const std::uint32_t n = 400;
    std::vector<QueueNode> node(n);
    std::vector<bool> queued(n, false);
    Queue q(node.data());
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> unit(0, 1);
    std::uint32_t out[8];
    for (std::uint32_t token = 1; token <= 3000; ++token) {
        // Some grow (weights only grow; within 2^30 so no bucket leaves the queue's window).
        for (int k = 0; k < 20; ++k) {
            QueueNode& nd = node[rng() % n];
            if (nd.weight > 0 && nd.weight < 1e9f) nd.weight *= 1.0f + 2 * unit(rng);
        }
        // Some are active now (passed over), a whole run of them at times.
        const std::uint32_t run_start = rng() % n, run = token % 7 == 0 ? 60 : 0;
        for (std::uint32_t i = 0; i < n; ++i)
            if (unit(rng) < 0.15f || (i >= run_start && i < run_start + run)) node[i].last = token;
        // Insertions and removals.
        for (int k = 0; k < 12; ++k) {
            const std::uint32_t x = rng() % n;
            if (!queued[x]) {
                if (node[x].weight == 0) node[x].weight = 1 + 1000 * unit(rng);
                q.insert(x, node[x].weight);
                queued[x] = true;
            } else if (rng() % 3 == 0) {
                q.remove(x);
                queued[x] = false;
                REQUIRE_FALSE(q.contains(x));
            }
        }
        std::size_t count = 0;
        for (std::uint32_t i = 0; i < n; ++i) count += queued[i];
        REQUIRE(q.size() == count);
        // A token: a few batches of takes; about half of those taken go back, as unused candidates do.
        auto passed = [&](std::uint32_t v) { return node[v].last == token; };
        auto weight = [&](std::uint32_t v) { return node[v].weight; };
        std::vector<std::uint32_t> taken;
        const int batches = 1 + static_cast<int>(rng() % 3);
        for (int b = 0; b < batches; ++b) {
            const std::size_t want = rng() % 7;
            const std::size_t got = q.take_lowest(out, want, passed, weight);
            REQUIRE(got <= want);
            for (std::size_t i = 0; i < got; ++i) {
                const std::uint32_t x = out[i];
                std::int32_t lowest = 0x7FFFFFFF;
                for (std::uint32_t j = 0; j < n; ++j)
                    if (queued[j] && node[j].last != token) lowest = std::min(lowest, Queue::bucket(node[j].weight));
                REQUIRE(queued[x]);
                REQUIRE(node[x].last != token);
                REQUIRE(Queue::bucket(node[x].weight) == lowest);
                REQUIRE_FALSE(q.contains(x));
                queued[x] = false;
                taken.push_back(x);
            }
            if (got < want)
                for (std::uint32_t j = 0; j < n; ++j) REQUIRE_FALSE((queued[j] && node[j].last != token));
        }
        for (std::uint32_t x : taken)
            if (rng() % 2 == 0) {
                q.insert(x, node[x].weight);
                queued[x] = true;
            }
        q.file_passed(weight);
        for (std::uint32_t i = 0; i < n; ++i) REQUIRE(q.contains(i) == queued[i]);
    }
    q.clear();
    CHECK(q.empty());
    for (std::uint32_t i = 0; i < n; ++i) CHECK_FALSE(q.contains(i));
}

TEST_CASE("Adaptive's running sums of squared rates match a recomputation") {
    // Half-life 4 renormalises every ~100 tokens (the challenger's every ~25), 256 rarely; both
    // runs cross the resummation every 1024 tokens. Repeats and pins exercise the filtering.
    for (double half_life : {4.0, 256.0}) {
        si::NeuronCache<si::policy::Adaptive> c(200, {40, half_life});
        std::mt19937 rng(static_cast<unsigned>(half_life));
        Ids active;
        for (int t = 0; t < 2500; ++t) {
            active.clear();
            const std::size_t k = rng() % 30;
            for (std::size_t i = 0; i < k; ++i) active.push_back(static_cast<std::uint32_t>(rng() % 200) / (1 + i % 3));
            c.record_activations(active);
            if (t == 700) c.pin(Ids{3, 150});
            if (t % 97 == 0 || t == 2499) {
                double sq0 = 0, sq1 = 0;
                for (std::uint32_t n = 0; n < 200; ++n) {
                    sq0 += c.policy_state().rate(n) * c.policy_state().rate(n);
                    sq1 += c.policy_state().challenger_rate(n) * c.policy_state().challenger_rate(n);
                }
                INFO("half-life " << half_life << ", token " << t);
                REQUIRE(c.policy_state().squared_rate_sum(0) == Approx(sq0).epsilon(1e-5));
                REQUIRE(c.policy_state().squared_rate_sum(1) == Approx(sq1).epsilon(1e-5));
            }
        }
    }
}

TEST_CASE("every capacity policy keeps the same hot set with and without a slot store") {
    // The store path admits and evicts one neuron at a time, the storeless one in batches.
    auto run = [](auto policy) {
        using P = decltype(policy);
        si::NeuronCache<P> plain(120, policy), stored(120, policy);
        stored.attach_store(8, 8 * 30, [](std::uint32_t, std::uint8_t* dst, std::size_t bytes) {
            std::fill(dst, dst + bytes, std::uint8_t{1});
        });
        std::mt19937 rng(17);
        Ids active;
        for (int t = 0; t < 1500; ++t) {
            active.clear();
            const std::size_t k = t % 50 == 0 ? 40 : rng() % 12;  // now and then more than capacity
            for (std::size_t i = 0; i < k; ++i) active.push_back(static_cast<std::uint32_t>(rng() % 120));
            plain.record_activations(active);
            stored.record_activations(active);
            REQUIRE(plain.hot_neurons() == stored.hot_neurons());
            REQUIRE(stored.store()->size() == stored.stats().num_hot);
            REQUIRE(plain.stats().churn == stored.stats().churn);
        }
    };
    run(si::policy::Lru{30});
    run(si::policy::SlidingWindow{3, 30});
    run(si::policy::Adaptive{30});
    run(si::policy::StaticProfile{30, 100});
}
