// Tests of <sparseinfer/executor.hpp>: the inline default, executor_of over a
// pool of the caller's own, and TaskRef's forwarding.
#include <sparseinfer/executor.hpp>

#include <cstddef>
#include <vector>

#include "catch.hpp"

namespace {

/// A pool of the engine's own: runs tasks in reverse order, and counts its runs.
struct ReversePool {
    int runs = 0;
    void run(std::size_t n, sparseinfer::TaskRef task) {
        ++runs;
        for (std::size_t i = n; i-- > 0;) task(i);
    }
};

}  // namespace

TEST_CASE("TaskRef calls the referenced callable with each index") {
    std::vector<std::size_t> seen;
    auto f = [&](std::size_t i) { seen.push_back(i); };
    const sparseinfer::TaskRef ref(f);
    ref(3);
    ref(0);
    CHECK(seen == std::vector<std::size_t>{3, 0});
}

TEST_CASE("a default Executor runs the tasks inline, in order; n == 0 runs none") {
    const sparseinfer::Executor ex;
    std::vector<std::size_t> seen;
    auto f = [&](std::size_t i) { seen.push_back(i); };
    ex(0, f);
    CHECK(seen.empty());
    ex(4, f);
    CHECK(seen == std::vector<std::size_t>{0, 1, 2, 3});
}

TEST_CASE("executor_of plugs in any pool with run(n, task)") {
    ReversePool pool;
    const sparseinfer::Executor ex = sparseinfer::executor_of(pool);
    std::vector<std::size_t> seen;
    auto f = [&](std::size_t i) { seen.push_back(i); };
    ex(3, f);
    CHECK(pool.runs == 1);
    CHECK(seen == std::vector<std::size_t>{2, 1, 0});
    ex(1, f);  // a single task runs inline, without a hand-off
    CHECK(pool.runs == 1);
}
