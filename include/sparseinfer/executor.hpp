// sparseinfer/executor.hpp - how a layer hands its work to threads: any pool
// that can run n tasks of a function plugs in.
//
// An Executor is a pool pointer and one function, run(pool, n, task), which
// must call task(i) exactly once for every i in [0, n), on any threads (the
// calling one included), in any order, and return only when every call has
// returned. The library's tasks never throw, never block on one another and
// write disjoint memory, so a pool may run them in any grouping; how many run
// at once is the pool's business. A default Executor runs the tasks inline on
// the caller's thread.
//
// sparseinfer::ThreadPool (thread_pool.hpp) is one such pool; another is
// plugged in with a small function, for example OpenMP:
//
//   sparseinfer::Executor omp{nullptr, [](void*, std::size_t n, sparseinfer::TaskRef task) {
//       #pragma omp parallel for schedule(dynamic, 1)
//       for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) task(static_cast<std::size_t>(i));
//   }};
//   ffn.set_executor(omp);
//
// or an engine's own pool with a method `void run(std::size_t n, TaskRef)`:
// sparseinfer::executor_of(pool).
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

namespace sparseinfer {

/// A non-owning reference to a callable `void(std::size_t task)`; the callable
/// must outlive every call through the reference. Copying it copies two pointers.
class TaskRef {
public:
    /// Refers to f, which must outlive the reference.
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, TaskRef>>>
    TaskRef(F& f) noexcept  // NOLINT(google-explicit-constructor): a reference, as with std::function_ref
        : object_(static_cast<void*>(std::addressof(f))),
          call_([](void* o, std::size_t i) { (*static_cast<F*>(o))(i); }) {}

    void operator()(std::size_t i) const { call_(object_, i); }  ///< calls the referenced task with i

private:
    void* object_;
    void (*call_)(void*, std::size_t);
};

/// A pool and the function that runs n tasks on it (see the header comment).
struct Executor {
    void* pool = nullptr;                                            ///< the pool, passed back to run
    void (*run)(void* pool, std::size_t n, TaskRef task) = nullptr;  ///< nullptr: inline on the caller

    /// Calls task(i) for every i in [0, n) and returns when all have returned.
    void operator()(std::size_t n, TaskRef task) const {
        if (run == nullptr || n <= 1) {
            for (std::size_t i = 0; i < n; ++i) task(i);
            return;
        }
        run(pool, n, task);
    }
};

/// An Executor over any pool with a method `void run(std::size_t n, TaskRef task)`
/// keeping the contract above; the pool must outlive the executor's users.
template <class Pool>
Executor executor_of(Pool& pool) noexcept {
    return Executor{static_cast<void*>(std::addressof(pool)),
                    [](void* p, std::size_t n, TaskRef task) { static_cast<Pool*>(p)->run(n, task); }};
}

}  // namespace sparseinfer
