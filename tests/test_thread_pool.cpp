// Tests of <sparseinfer/thread_pool.hpp>: every task runs exactly once, on
// every pool size, for task counts below, at and above the thread count.
#include <sparseinfer/thread_pool.hpp>

#include <atomic>
#include <cstddef>
#include <set>
#include <thread>
#include <vector>

#include "catch.hpp"

TEST_CASE("a pool of zero threads is refused") {
    CHECK_THROWS_AS(sparseinfer::ThreadPool(0), sparseinfer::error);
    CHECK_THROWS_WITH(sparseinfer::ThreadPool(0), Catch::Contains("threads is 0"));
}

TEST_CASE("run calls every task exactly once and returns after the last") {
    for (std::size_t threads : {1, 2, 3, 5}) {
        sparseinfer::ThreadPool pool(threads);
        CHECK(pool.size() == threads);
        for (std::size_t n : {0, 1, 2, 3, 4, 7, 64, 1000}) {
            INFO(threads << " threads, " << n << " tasks");
            std::vector<int> hits(n, 0);  // each slot written by one task only
            auto task = [&](std::size_t i) { hits[i] += 1; };
            pool.run(n, task);
            std::size_t wrong = 0;
            for (int h : hits) wrong += h != 1;
            CHECK(wrong == 0);
        }
    }
}

TEST_CASE("the tasks of one run spread over the pool's threads") {
    sparseinfer::ThreadPool pool(3);
    std::vector<std::thread::id> who(64);
    std::atomic<int> started{0};
    auto task = [&](std::size_t i) {
        who[i] = std::this_thread::get_id();
        started.fetch_add(1);
        // Hold each task until three have started, so one thread cannot take them all.
        for (int spin = 0; spin < 1000000 && started.load() < 3; ++spin) std::this_thread::yield();
    };
    pool.run(who.size(), task);
    CHECK(std::set<std::thread::id>(who.begin(), who.end()).size() >= 2);
}

TEST_CASE("many runs in a row, and runs from two threads at once, each complete") {
    sparseinfer::ThreadPool pool(2);
    std::atomic<long> sum{0};
    auto add = [&](std::size_t i) { sum.fetch_add(static_cast<long>(i)); };
    auto caller = [&] {
        for (int r = 0; r < 300; ++r) pool.run(10, add);
    };
    std::thread other(caller);
    caller();
    other.join();
    CHECK(sum.load() == 2L * 300 * 45);
}

TEST_CASE("the pool is an Executor, and an Executor with no pool runs inline") {
    sparseinfer::ThreadPool pool(2);
    const sparseinfer::Executor ex = pool.executor();
    std::vector<int> hits(33, 0);
    auto task = [&](std::size_t i) { hits[i] += 1; };
    ex(hits.size(), task);
    for (int h : hits) CHECK(h == 1);

    const sparseinfer::Executor inline_ex;
    const std::thread::id me = std::this_thread::get_id();
    bool elsewhere = false;
    auto where = [&](std::size_t) { elsewhere = elsewhere || std::this_thread::get_id() != me; };
    inline_ex(5, where);
    CHECK_FALSE(elsewhere);
}
