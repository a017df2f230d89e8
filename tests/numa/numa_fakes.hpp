// Recording fakes for the NUMA layer: a MemoryBinder and an ArenaFactory that remember
// every request, and a helper that installs them with a synthetic/XML topology.
#pragma once

#include <cerrno>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "numa/context.hpp"

namespace sparq::test {

inline std::string numa_data(const std::string& name) {
  return std::string(SPARQ_NUMA_TEST_DATA) + "/" + name;
}

class RecordingBinder final : public numa::MemoryBinder {
 public:
  struct Call {
    void* addr;
    std::size_t bytes;
    std::vector<unsigned> nodes;
    numa::BindMode mode;
  };
  explicit RecordingBinder(int result = 0) : result_(result) {}

  int bind(void* addr, std::size_t bytes, std::span<const unsigned> nodes, numa::BindMode mode) noexcept override {
    std::lock_guard lock(mutex_);
    calls_.push_back({addr, bytes, {nodes.begin(), nodes.end()}, mode});
    return result_;
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  // The last request for a block address, or nullptr.
  const Call* last_for(const void* addr) const {
    std::lock_guard lock(mutex_);
    for (auto it = calls_.rbegin(); it != calls_.rend(); ++it)
      if (it->addr == addr) return &*it;
    return nullptr;
  }
  // The last request whose range holds [addr, addr + bytes), or nullptr.
  const Call* last_covering(const void* addr, std::size_t bytes) const {
    std::lock_guard lock(mutex_);
    const auto* a = static_cast<const std::byte*>(addr);
    for (auto it = calls_.rbegin(); it != calls_.rend(); ++it) {
      const auto* begin = static_cast<const std::byte*>(it->addr);
      if (a >= begin && a + bytes <= begin + it->bytes) return &*it;
    }
    return nullptr;
  }

 private:
  int result_;
  mutable std::mutex mutex_;
  std::vector<Call> calls_;
};

// Records specs and hands out plain arenas whose concurrency (node + 1, capped by
// `cap`) tells a test which node's arena it is running in.
class RecordingArenaFactory final : public numa::ArenaFactory {
 public:
  explicit RecordingArenaFactory(int cap = 64) : cap_(cap) {}
  std::unique_ptr<tbb::task_arena> make(const numa::ArenaSpec& spec) override {
    std::lock_guard lock(mutex_);
    specs_.push_back(spec);
    return std::make_unique<tbb::task_arena>(std::min(int(spec.node) + 1, cap_));
  }
  std::vector<numa::ArenaSpec> specs() const {
    std::lock_guard lock(mutex_);
    return specs_;
  }

 private:
  int cap_;
  mutable std::mutex mutex_;
  std::vector<numa::ArenaSpec> specs_;
};

// A context over `topology` with the given fakes, installed while alive.
struct FakeNuma {
  std::shared_ptr<RecordingBinder> binder;
  std::shared_ptr<RecordingArenaFactory> factory;
  std::shared_ptr<const numa::NumaContext> context;
  numa::ScopedContext scope;

  explicit FakeNuma(Topology topology, int bind_result = 0, int arena_cap = 64)
      : binder(std::make_shared<RecordingBinder>(bind_result)),
        factory(std::make_shared<RecordingArenaFactory>(arena_cap)),
        context(std::make_shared<numa::NumaContext>(std::move(topology), binder, factory)),
        scope(context) {}
};

}  // namespace sparq::test
