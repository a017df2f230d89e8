// run_soak(): starts the workers, pauses them for the periodic checks and drains, and
// adds up what they measured (include/sparq/tools/soak.hpp).
#include "sparq/tools/soak.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <thread>

#include "soak/soak_checks.hpp"
#include "soak/soak_worker.hpp"
#include "sparq/error.hpp"

namespace sparq {

namespace {

using Clock = std::chrono::steady_clock;

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * std::size_t(sysconf(_SC_PAGESIZE));
}

CacheConfig cache_config(const SoakConfig& c) {
  return {.layers = c.layers,
          .kv_heads = c.kv_heads,
          .head_dim = c.head_dim,
          .dtype = c.dtype,
          .block_tokens = c.block_tokens,
          .capacity_tokens = c.capacity_tokens,
          .layouts = c.layouts};
}

// The prompt every worker forks: added while the workers are parked (or not started).
void add_prompt(soak::Shared& shared) {
  const SoakConfig& c = shared.config;
  if (c.shared_prompt_tokens == 0) return;
  const std::size_t n = c.shared_prompt_tokens, per_layer = n * c.kv_heads * c.head_dim;
  const SeqId id = shared.cache.add_sequence();
  soak::SeqRecord record(c.layers, c.kv_heads * c.head_dim);
  const std::span<const float> data(shared.data);
  shared.cache.append_all_layers(id, data.first(c.layers * per_layer), data.subspan(per_layer, c.layers * per_layer),
                                 n);
  for (std::size_t l = 0; l < c.layers; ++l) record.append(l, l * per_layer, per_layer + l * per_layer, n);
  shared.prompt = id;
  shared.prompt_record = std::move(record);
}

void remove_prompt(soak::Shared& shared) {
  if (!shared.prompt) return;
  shared.cache.remove_sequence(*shared.prompt);
  shared.prompt.reset();
  shared.prompt_record.reset();
}

}  // namespace

void SoakConfig::validate() const {
  auto fail = [](const std::string& what) { throw Error(ErrorCode::invalid_argument, what); };
  if (!std::isfinite(duration_s) || duration_s < 0 || duration_s > 7 * 86400.0)
    fail("duration_s=" + std::to_string(duration_s) + " is invalid: must be in [0, 604800] seconds");
  if (threads < 1 || threads > 256) fail("threads=" + std::to_string(threads) + " is invalid: must be in [1, 256]");
  if (q_heads == 0 || kv_heads == 0 || q_heads % kv_heads != 0)
    fail("q_heads=" + std::to_string(q_heads) + ", kv_heads=" + std::to_string(kv_heads) +
         ": q_heads must be a positive multiple of kv_heads");
  if (max_sequences_per_thread < 1) fail("max_sequences_per_thread=0: must be at least 1");
  if (max_prefill_tokens < 1 || max_prefill_tokens > capacity_tokens)
    fail("max_prefill_tokens=" + std::to_string(max_prefill_tokens) +
         " is invalid: must be in [1, capacity_tokens=" + std::to_string(capacity_tokens) + "]");
  if (shared_prompt_tokens > capacity_tokens)
    fail("shared_prompt_tokens=" + std::to_string(shared_prompt_tokens) +
         " exceeds capacity_tokens=" + std::to_string(capacity_tokens));
  if (!(replay_fraction >= 0.0 && replay_fraction <= 1.0))
    fail("replay_fraction=" + std::to_string(replay_fraction) + " is invalid: must be in [0, 1]");
  if (!(check_every_s > 0.0) || !(drain_every_s > 0.0))
    fail("check_every_s and drain_every_s must be positive (got " + std::to_string(check_every_s) + ", " +
         std::to_string(drain_every_s) + ")");
  cache_config(*this).validate();
}

SoakReport run_soak(const SoakConfig& config, const std::function<void(const std::string&)>& progress) {
  config.validate();
  SoakReport report;
  report.rss_start_bytes = resident_bytes();
  soak::Shared shared(config, cache_config(config));
  add_prompt(shared);
  std::vector<std::unique_ptr<soak::Worker>> workers;
  for (std::size_t i = 0; i < config.threads; ++i) workers.push_back(std::make_unique<soak::Worker>(shared, i));

  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  const auto at = [&](double s) {
    return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const Clock::time_point end = at(config.duration_s);
  double next_check = config.check_every_s, next_drain = config.drain_every_s;
  soak::DrainBaseline baseline;
  auto drain = [&] {
    remove_prompt(shared);
    soak::check_drained(shared, baseline);
    ++report.drains;
    if (report.drains == 1) report.rss_first_drain_bytes = resident_bytes();
  };
  while (true) {
    const Clock::time_point wake = std::min({at(next_check), at(next_drain), end});
    std::this_thread::sleep_until(wake);
    if (Clock::now() >= end) break;
    const bool draining = Clock::now() >= at(next_drain);
    shared.gate.pause(draining);
    shared.sample_memory();
    if (draining) {
      drain();
      add_prompt(shared);
      next_drain += config.drain_every_s;
    } else {
      std::size_t owned = shared.prompt ? 1 : 0;
      for (const auto& w : workers) owned += w->owned();
      (void)soak::check_blocks(shared, owned);
      ++report.pauses;
      next_check += config.check_every_s;
    }
    shared.gate.resume(false);
    if (progress) {
      std::uint64_t ops = 0;
      for (const auto& w : workers)
        for (const auto& t : w->tallies()) ops += t.latency.count();
      const double s = std::chrono::duration<double>(Clock::now() - start).count();
      const MemoryUsage m = shared.cache.memory_usage();
      progress("t=" + std::to_string(int(s)) + "s ops~" + std::to_string(ops) + " blocks in use " +
               std::to_string(m.blocks_in_use) + "/" + std::to_string(m.blocks_capacity) + " violations " +
               std::to_string(shared.violations()));
    }
  }
  // The end: every worker removes its sequences and stops; the cache must be back at its
  // baseline.
  shared.gate.pause(true);
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  shared.sample_memory();
  drain();
  report.rss_end_bytes = resident_bytes();
  shared.gate.resume(true);
  for (std::thread& t : threads) t.join();

  std::array<soak::OpTally, soak::kOps> total{};
  for (const auto& w : workers) {
    for (std::size_t i = 0; i < soak::kOps; ++i) {
      total[i].latency.merge(w->tallies()[i].latency);
      total[i].refused += w->tallies()[i].refused;
    }
    report.tokens_appended += w->tokens_appended();
    report.replays += w->replays();
  }
  for (std::size_t i = 0; i < soak::kOps; ++i) {
    const soak::LatencyHistogram& h = total[i].latency;
    report.ops.push_back({.name = soak::op_name(soak::Op(i)),
                          .count = h.count(),
                          .refused = total[i].refused,
                          .p50_us = h.quantile_ns(0.5) * 1e-3,
                          .p99_us = h.quantile_ns(0.99) * 1e-3,
                          .max_us = h.max_ns() * 1e-3});
    report.operations += h.count();
  }
  report.ops_per_s = report.seconds > 0 ? double(report.operations) / report.seconds : 0.0;
  const MemoryUsage m = shared.cache.memory_usage();
  report.pool_blocks = m.blocks_capacity;
  report.blocks_allocated = m.blocks_allocated;
  report.baseline_cache_bytes = m.total();
  report.peak_blocks_in_use = shared.peak_blocks_in_use.load();
  report.peak_cache_bytes = shared.peak_cache_bytes.load();
  report.violations = shared.violations();
  report.violation_messages = shared.violation_messages();
  return report;
}

}  // namespace sparq
