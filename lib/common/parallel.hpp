// How the kernels run independent chunks of work in parallel: one seam, so a build can
// swap oneTBB for something ThreadSanitizer understands.
//
// parallel_for_chunks(n, f) calls f(i) once for every i in [0, n), concurrently, and
// returns when all calls have. Results must not depend on which thread runs which i
// (the kernels merge per-chunk results in chunk order).
//
// Default: tbb::parallel_for, in the caller's task_arena. With SPARQ_STD_THREAD_KERNELS
// (the ThreadSanitizer build, docs/reliability.md): the caller and up to
// kStdThreadHelpers short-lived std::threads take chunks from an atomic counter.
// Debian's oneTBB is not built with TSan, so TSan would not see the synchronization
// inside tbb::parallel_for and would report false races (or, worse, hide real ones
// behind its suppressions); std::thread's create/join it sees exactly.
#pragma once

#include <cstddef>

#if SPARQ_STD_THREAD_KERNELS
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>
#else
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#endif

namespace sparq {

#if SPARQ_STD_THREAD_KERNELS
inline constexpr std::size_t kStdThreadHelpers = 2;
#endif

template <class F>
void parallel_for_chunks(std::size_t n, const F& f) {
#if SPARQ_STD_THREAD_KERNELS
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      try {
        f(i);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> helpers;
  for (std::size_t t = 0; t < kStdThreadHelpers && t + 1 < n; ++t) helpers.emplace_back(work);
  work();
  for (std::thread& t : helpers) t.join();
  if (error) std::rethrow_exception(error);
#else
  tbb::parallel_for(std::size_t{0}, n, f);
#endif
}

// Runs f so that a thread waiting inside it for a nested parallel_for_chunks picks up
// none of the outer loop's chunks (tbb::this_task_arena::isolate). With std::threads,
// which share no work, a plain call: TBB's isolate would set up TBB's per-thread state
// on every short-lived thread, in uninstrumented code that TSan misreads as racing.
template <class F>
void run_isolated(const F& f) {
#if SPARQ_STD_THREAD_KERNELS
  f();
#else
  tbb::this_task_arena::isolate(f);
#endif
}

}  // namespace sparq
