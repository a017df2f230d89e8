// A serving soak: a continuous-batching server simulated against one KVCache for a
// chosen time, with the cache's invariants checked as it runs (`sparq soak` prints it).
//
// Each of `threads` workers plays a scheduler shard that owns its sequences. It adds
// sequences and prefills them (append_all_layers), runs forward steps (for each layer:
// append one token to every sequence of its batch, then sparq::decode the batch at that
// layer, Dense and SparQ in turn), forks (beams, and branches off a shared prompt that
// all workers fork and decode at once), appends speculative drafts and truncates the
// rejected part, and removes finished sequences. The pool is kept too small for all of
// it, so appends fail with capacity_exhausted and the worker evicts a sequence, as a
// server would.
//
// Invariants, checked continuously (a violation is recorded with its message):
//  - a failed append changed nothing: the layers of an all-layer append keep one length
//    (the one before the call), a one-layer append leaves its layer's length alone;
//  - every worker's sequences hold exactly what the worker appended (lengths after
//    every call; the data itself through the replays below);
//  - every `check_every_s`, with the workers paused between operations: the blocks the
//    sequences reference (forks share theirs) are exactly memory_usage().blocks_in_use,
//    and every sequence's layers have one length;
//  - every `drain_every_s` and at the end, once every sequence is removed: no block is
//    in use and memory_usage() is back to its baseline (the pool's own cost for the
//    blocks it has allocated: no sequence tables left);
//  - a sample of decodes (`replay_fraction`) is replayed serially: the same queries over
//    a private cache rebuilt from the worker's own record of what it appended, decoded
//    in a one-thread arena, must give bit-identical outputs.
// Only capacity_exhausted is an expected failure; any other error is a violation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparq/types.hpp"

namespace sparq {

struct SoakConfig {
  double duration_s = 60.0;
  std::size_t threads = 3;
  // The cache: a small GQA model with a pool far smaller than the workers' demand.
  std::size_t layers = 4;
  std::size_t q_heads = 8;
  std::size_t kv_heads = 2;
  std::size_t head_dim = 64;
  DType dtype = DType::bf16;
  std::size_t block_tokens = 16;
  std::size_t capacity_tokens = 1024;
  KeyLayout layouts = KeyLayout::both;
  // The workload.
  std::size_t max_sequences_per_thread = 6;
  std::size_t max_prefill_tokens = 96;
  std::size_t shared_prompt_tokens = 40;  // the prompt every worker forks (0: none)
  double replay_fraction = 0.02;          // of decodes, replayed serially
  double check_every_s = 1.0;
  double drain_every_s = 15.0;
  std::uint64_t seed = 1;

  // Throws sparq::Error(invalid_argument) naming the first field out of range.
  void validate() const;
};

// Latency of one kind of operation, from a log-scale histogram (buckets 2^(1/16) apart,
// so a percentile is within 4.5% of the exact one).
struct SoakOpStats {
  std::string name;
  std::uint64_t count = 0;
  std::uint64_t refused = 0;  // failed with capacity_exhausted (expected under pressure)
  double p50_us = 0.0;
  double p99_us = 0.0;
  double max_us = 0.0;
};

struct SoakReport {
  double seconds = 0.0;
  std::uint64_t operations = 0;
  double ops_per_s = 0.0;
  std::uint64_t tokens_appended = 0;
  std::vector<SoakOpStats> ops;
  // Memory: blocks of the pool, bytes of memory_usage().total(), resident set (Linux).
  std::size_t pool_blocks = 0;
  std::size_t peak_blocks_in_use = 0;
  std::size_t blocks_allocated = 0;
  std::size_t peak_cache_bytes = 0;
  std::size_t baseline_cache_bytes = 0;  // at the last drain: the pool's own cost
  std::size_t rss_start_bytes = 0;
  std::size_t rss_first_drain_bytes = 0;
  std::size_t rss_end_bytes = 0;
  // Checks.
  std::uint64_t pauses = 0;  // block accounting checks
  std::uint64_t drains = 0;
  std::uint64_t replays = 0;
  std::uint64_t violations = 0;
  std::vector<std::string> violation_messages;  // the first few
  [[nodiscard]] bool ok() const noexcept { return violations == 0; }
};

// Runs the soak for config.duration_s (plus the final drain) and reports. `progress`,
// when given, is called from the coordinating thread after each check with a one-line
// summary. Throws sparq::Error for a bad config; invariant violations are reported, not
// thrown.
[[nodiscard]] SoakReport run_soak(const SoakConfig& config,
                                  const std::function<void(const std::string&)>& progress = {});

}  // namespace sparq
