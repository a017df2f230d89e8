// One soak worker: a scheduler shard of a continuous-batching server that owns its
// sequences and runs random server operations on them until told to stop
// (include/sparq/tools/soak.hpp lists them and the invariants it checks).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "soak/latency_histogram.hpp"
#include "soak/seq_record.hpp"
#include "soak/soak_checks.hpp"
#include "soak/soak_shared.hpp"

namespace sparq::soak {

enum class Op : std::uint8_t { add, prefill, append, decode_dense, decode_sparq, fork, speculate, truncate, remove };
inline constexpr std::size_t kOps = 9;
[[nodiscard]] const char* op_name(Op op) noexcept;

struct OpTally {
  LatencyHistogram latency;
  std::uint64_t refused = 0;
};

class Worker {
 public:
  Worker(Shared& shared, std::size_t index);
  // Runs operations, parking at the shared gate when asked (removing every sequence
  // first when it drains), until the gate says stop.
  void run();

  [[nodiscard]] const std::array<OpTally, kOps>& tallies() const noexcept { return tally_; }
  [[nodiscard]] std::uint64_t tokens_appended() const noexcept { return tokens_; }
  [[nodiscard]] std::uint64_t replays() const noexcept { return replays_; }
  // Sequences the worker owns (read only while it is parked).
  [[nodiscard]] std::size_t owned() const noexcept { return seqs_.size(); }

 private:
  struct Owned {
    SeqId id;
    SeqRecord record;
  };

  void one_operation();
  void prefill();
  void step();
  void decode_only();
  void fork();
  void speculate();
  void truncate();
  void remove(std::size_t i);
  void remove_all();
  void evict_longest();

  // Runs f as operation `op`, timed. Returns false when it threw: capacity_exhausted is
  // counted as refused, any other error is a violation.
  template <class F>
  bool timed(Op op, F&& f);
  // Every layer of `s` has the length its record says, else a violation naming `after`.
  void check_lengths(const Owned& s, const char* after);
  void decode_batch(std::size_t layer, const std::vector<const Owned*>& batch, bool with_prompt);
  [[nodiscard]] std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  [[nodiscard]] std::size_t offset(std::size_t floats) { return shared_.data_offset(rng_(), floats); }

  Shared& shared_;
  const SoakConfig& cfg_;
  std::size_t row_;  // floats per token of one layer: kv_heads * head_dim
  std::mt19937_64 rng_;
  std::vector<Owned> seqs_;
  std::array<OpTally, kOps> tally_{};
  std::uint64_t tokens_ = 0, replays_ = 0, steps_ = 0, ops_ = 0;
  std::vector<std::vector<float>> outs_;  // decode outputs, one per batch item
};

}  // namespace sparq::soak
