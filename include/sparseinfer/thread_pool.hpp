// sparseinfer/thread_pool.hpp - a small fixed pool of threads that runs n tasks
// of a function and waits for them (the Executor contract, executor.hpp).
//
// ThreadPool(t) starts t - 1 threads; run() hands the tasks out through one
// atomic counter, the caller's thread taking tasks too, and returns when all
// are done. A hand-off costs one lock and one wake-up per worker; nothing is
// allocated per run. One run at a time: concurrent callers take turns.
//
//   sparseinfer::ThreadPool pool(2);
//   ffn.set_executor(pool);               // the layer's forward functions now use both threads
//   auto square = [&](std::size_t i) { out[i] = in[i] * in[i]; };
//   pool.run(n, square);
//
// The threads stop when the pool is destroyed; it must outlive its users.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "error.hpp"
#include "executor.hpp"

namespace sparseinfer {

/// A fixed set of threads that runs n tasks of a function at a time and waits
/// for them (the caller's thread takes part); plugs into layers as an Executor.
class ThreadPool {
public:
    /// A pool that runs tasks on `threads` threads, the caller's included.
    /// Throws sparseinfer::error when threads is 0.
    explicit ThreadPool(std::size_t threads) {
        if (threads == 0) throw error("ThreadPool: threads is 0; a pool needs at least the caller's thread");
        workers_.reserve(threads - 1);
        try {
            for (std::size_t t = 1; t < threads; ++t) workers_.emplace_back([this] { work(); });
        } catch (...) {
            stop();
            throw;
        }
    }
    ~ThreadPool() { stop(); }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// Threads that run tasks, the caller's included.
    std::size_t size() const noexcept { return workers_.size() + 1; }

    /// Calls task(i) once for every i in [0, n), on the pool's threads and the
    /// caller's, and returns when all calls have returned. The task must not
    /// throw (a throw ends the program, as from any thread) nor call run().
    void run(std::size_t n, TaskRef task) {
        if (n == 0) return;
        if (workers_.empty() || n == 1) {
            for (std::size_t i = 0; i < n; ++i) task(i);
            return;
        }
        std::lock_guard<std::mutex> turn(run_mutex_);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            task_ = &task;
            count_ = n;
            next_.store(0, std::memory_order_relaxed);
            busy_ = workers_.size();
            ++generation_;
        }
        wake_.notify_all();
        drain(task, n);
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [this] { return busy_ == 0; });
        task_ = nullptr;
    }

    /// This pool as an Executor (for set_executor of a layer or predictor).
    Executor executor() noexcept { return executor_of(*this); }

private:
    void drain(const TaskRef& task, std::size_t n) noexcept {
        for (std::size_t i = next_.fetch_add(1, std::memory_order_relaxed); i < n;
             i = next_.fetch_add(1, std::memory_order_relaxed))
            task(i);
    }

    void work() noexcept {
        std::uint64_t seen = 0;
        for (;;) {
            const TaskRef* task = nullptr;
            std::size_t n = 0;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
                if (stopping_) return;
                seen = generation_;
                task = task_;
                n = count_;
            }
            drain(*task, n);
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (--busy_ == 0) done_.notify_one();
            }
        }
    }

    void stop() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (std::thread& t : workers_)
            if (t.joinable()) t.join();
    }

    std::vector<std::thread> workers_;
    std::mutex run_mutex_;  // one run at a time
    std::mutex mutex_;      // guards everything below but next_
    std::condition_variable wake_, done_;
    const TaskRef* task_ = nullptr;
    std::size_t count_ = 0, busy_ = 0;
    std::uint64_t generation_ = 0;
    bool stopping_ = false;
    std::atomic<std::size_t> next_{0};
};

}  // namespace sparseinfer
