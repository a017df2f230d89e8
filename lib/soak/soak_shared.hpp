// What the soak's workers and its coordinator share: the cache, the random inputs, the
// shared prompt, the pause gate and the record of violations.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "soak/seq_record.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/tools/soak.hpp"

namespace sparq::soak {

// Workers pause between operations when the coordinator asks (to check the cache while
// nothing changes it, or to drain it first), and wait until it resumes them.
class PauseGate {
 public:
  explicit PauseGate(std::size_t workers) : workers_(workers) {}

  // Workers.
  [[nodiscard]] bool requested() const noexcept { return requested_.load(std::memory_order_acquire); }
  [[nodiscard]] bool drain_requested() {
    std::lock_guard lock(mutex_);
    return drain_;
  }
  // Parks the calling worker until resume(); returns whether the workers must stop.
  bool park() {
    std::unique_lock lock(mutex_);
    ++parked_;
    cv_.notify_all();
    const std::uint64_t gen = generation_;
    cv_.wait(lock, [&] { return generation_ != gen; });
    return stop_;
  }

  // Coordinator: returns once every worker is parked.
  void pause(bool drain) {
    std::unique_lock lock(mutex_);
    drain_ = drain;
    requested_.store(true, std::memory_order_release);
    cv_.wait(lock, [&] { return parked_ == workers_; });
  }
  void resume(bool stop) {
    std::lock_guard lock(mutex_);
    requested_.store(false, std::memory_order_release);
    parked_ = 0;
    stop_ = stop;
    ++generation_;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> requested_{false};
  bool drain_ = false, stop_ = false;
  std::size_t parked_ = 0;
  std::size_t workers_;
  std::uint64_t generation_ = 0;
};

struct Shared {
  SoakConfig config;
  KVCache cache;
  std::vector<float> data;  // random inputs every append and query takes a span of
  // The prompt every worker forks and decodes; set only while the workers are parked.
  std::optional<SeqId> prompt;
  std::optional<SeqRecord> prompt_record;
  PauseGate gate;
  std::atomic<std::size_t> peak_blocks_in_use{0};
  std::atomic<std::size_t> peak_cache_bytes{0};

  Shared(const SoakConfig& c, const CacheConfig& cache_config);

  // Records an invariant violation (thread-safe); keeps the first few messages.
  void violation(const std::string& message);
  [[nodiscard]] std::uint64_t violations() const noexcept { return violation_count_.load(); }
  [[nodiscard]] std::vector<std::string> violation_messages();
  // Raises the peaks to the cache's current memory use.
  void sample_memory();
  // A span of the random data long enough for `floats` floats (its offset).
  [[nodiscard]] std::size_t data_offset(std::uint64_t random, std::size_t floats) const noexcept {
    return std::size_t(random % (data.size() - floats + 1));
  }

 private:
  std::mutex violations_mutex_;
  std::vector<std::string> messages_;
  std::atomic<std::uint64_t> violation_count_{0};
};

}  // namespace sparq::soak
