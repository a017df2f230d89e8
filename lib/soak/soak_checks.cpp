// The soak's shared state and the checks that need more than one worker's view: the
// serial replay of a decode, block accounting while the workers are parked.
#include "soak/soak_checks.hpp"

#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <unordered_set>

#include "sparq/decode.hpp"
#include "sparq/error.hpp"

namespace sparq::soak {

namespace {
constexpr std::size_t kKeptMessages = 20;

template <class T>
void raise_to(std::atomic<T>& peak, T value) {
  T seen = peak.load(std::memory_order_relaxed);
  while (seen < value && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}
}  // namespace

Shared::Shared(const SoakConfig& c, const CacheConfig& cache_config) : config(c), cache(cache_config), gate(c.threads) {
  // Enough random floats for the largest append of every layer, a few times over.
  const std::size_t largest = c.layers * c.max_prefill_tokens * c.kv_heads * c.head_dim;
  data.resize(std::max<std::size_t>(std::size_t{1} << 18, 4 * largest));
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : data) x = normal(rng);
}

void Shared::violation(const std::string& message) {
  violation_count_.fetch_add(1);
  std::lock_guard lock(violations_mutex_);
  if (messages_.size() < kKeptMessages) messages_.push_back(message);
}

std::vector<std::string> Shared::violation_messages() {
  std::lock_guard lock(violations_mutex_);
  return messages_;
}

void Shared::sample_memory() {
  const MemoryUsage m = cache.memory_usage();
  raise_to(peak_blocks_in_use, m.blocks_in_use);
  raise_to(peak_cache_bytes, m.total());
}

bool replay_matches(Shared& shared, const SeqRecord& record, std::size_t layer, const Method& method,
                    std::span<const float> q, std::span<const float> out, const std::string& what) {
  const SoakConfig& c = shared.config;
  thread_local std::vector<float> keys, values, y;
  record.gather(layer, shared.data, keys, values);
  const std::size_t S = record.length(layer);
  KVCache own({.layers = 1,
               .kv_heads = c.kv_heads,
               .head_dim = c.head_dim,
               .dtype = c.dtype,
               .block_tokens = c.block_tokens,
               .capacity_tokens = std::max<std::size_t>(S, 1),
               .layouts = c.layouts});
  const SeqId id = own.add_sequence();
  own.append(id, 0, keys, values, S);
  y.assign(out.size(), 0.0f);
  thread_local tbb::task_arena serial(1);
  const DecodeItem item{.seq = id, .q = q, .out = y};
  decode(own, 0, method, {&item, 1}, {.arena = &serial});
  if (std::memcmp(y.data(), out.data(), out.size() * sizeof(float)) == 0) return true;
  std::size_t i = 0;
  while (i < out.size() && std::memcmp(&y[i], &out[i], sizeof(float)) == 0) ++i;
  shared.violation("the serial replay of " + what + " (S=" + std::to_string(S) + ") differs: out[" + std::to_string(i) +
                   "] = " + std::to_string(out[i]) + " concurrently, " + std::to_string(y[i]) + " serially");
  return false;
}

std::size_t check_blocks(Shared& shared, std::size_t sequences_owned) {
  KVCache& cache = shared.cache;
  const std::vector<SeqId> seqs = cache.sequences();
  if (seqs.size() != sequences_owned)
    shared.violation("the cache holds " + std::to_string(seqs.size()) + " sequences, the workers own " +
                     std::to_string(sequences_owned));
  std::unordered_set<const std::byte*> referenced;
  const std::size_t layers = cache.config().layers, heads = cache.config().kv_heads;
  for (SeqId s : seqs) {
    const KVCache::ReadLock lock = cache.lock_for_read(s);
    const std::size_t len = cache.length(s, 0);
    for (std::size_t l = 0; l < layers; ++l) {
      const LayerView v = cache.view(s, l);
      if (v.length != len)
        shared.violation("between operations, sequence " + std::to_string(s) + " has " + std::to_string(len) +
                         " tokens in layer 0 and " + std::to_string(v.length) + " in layer " + std::to_string(l));
      for (std::size_t i = 0; i < v.blocks_per_head * heads; ++i) referenced.insert(v.blocks[i]);
    }
  }
  const MemoryUsage m = cache.memory_usage();
  if (referenced.size() != m.blocks_in_use)
    shared.violation("the sequences reference " + std::to_string(referenced.size()) + " blocks but " +
                     std::to_string(m.blocks_in_use) + " are in use");
  if (m.blocks_in_use > m.blocks_allocated || m.blocks_allocated > m.blocks_capacity ||
      cache.free_blocks() != m.blocks_capacity - m.blocks_in_use)
    shared.violation("block counts disagree: in use " + std::to_string(m.blocks_in_use) + ", allocated " +
                     std::to_string(m.blocks_allocated) + ", capacity " + std::to_string(m.blocks_capacity) +
                     ", free " + std::to_string(cache.free_blocks()));
  return referenced.size();
}

void check_drained(Shared& shared, DrainBaseline& baseline) {
  const MemoryUsage m = shared.cache.memory_usage();
  if (m.blocks_in_use != 0 || !shared.cache.sequences().empty())
    shared.violation("after every sequence was removed, " + std::to_string(m.blocks_in_use) +
                     " blocks are in use and " + std::to_string(shared.cache.sequences().size()) + " sequences remain");
  // With no sequence, memory is the pool's own: the same bytes per allocated block at
  // every drain (a sequence table left behind would add to it).
  if (baseline.blocks == 0) {
    baseline.blocks = m.blocks_allocated;
    baseline.bytes = m.total();
  } else if (m.total() * baseline.blocks != baseline.bytes * m.blocks_allocated) {
    shared.violation("after every sequence was removed, the cache takes " + std::to_string(m.total()) + " bytes for " +
                     std::to_string(m.blocks_allocated) + " allocated blocks; the first drain took " +
                     std::to_string(baseline.bytes) + " for " + std::to_string(baseline.blocks));
  }
}

}  // namespace sparq::soak
