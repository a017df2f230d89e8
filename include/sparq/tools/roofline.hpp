// Roofline model: where a decode call sits against the machine's measured ceilings,
// and the transfer model of DESIGN §1 to compare with what the profiler counted.
//
// Units: bytes, FLOPs (a multiply-add is two), seconds; GB/s and GFLOP/s use 1e9.
// Everything here is a pure function of its arguments (thread-safe, no allocation).
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparq/method.hpp"
#include "sparq/profile.hpp"
#include "sparq/types.hpp"

namespace sparq {

// The two roofs, for one thread count (see machine.hpp for how they are measured).
struct Ceilings {
  double read_gb_per_s = 0.0;  // measured read bandwidth
  double peak_gflops = 0.0;    // measured f32 FMA peak
  std::size_t threads = 0;

  // Arithmetic intensity (FLOP/byte) where the two roofs meet; 0 if either is unknown.
  [[nodiscard]] double ridge_intensity() const noexcept {
    return read_gb_per_s > 0 ? peak_gflops / read_gb_per_s : 0.0;
  }
  // min(peak, intensity x bandwidth): the best a kernel of that intensity can do.
  [[nodiscard]] double attainable_gflops(double intensity) const noexcept {
    const double memory_roof = intensity * read_gb_per_s;
    return peak_gflops > 0 && peak_gflops < memory_roof ? peak_gflops : memory_roof;
  }
};

// --- Transfer model (DESIGN §1), bytes for ONE KV head of one sequence, one decode step.

// Dense: every K and V row once: 2·S·d·b.
[[nodiscard]] std::uint64_t dense_model_bytes(std::size_t seq_len, std::size_t head_dim, DType dtype) noexcept;

// How the cache stores what SparQ reads (CacheConfig's fields of the same names). Only
// d_major_type changes the bytes: an int8 copy makes stage 1 read S·r bytes plus one f32
// scale per selected component per block; the fused layout ([B][key | value]) moves the
// same 2·k·d·b in stage 2, as k runs of 2·d·b instead of 2·k runs of d·b (what changes is
// the access pattern, and so the memory floor of `sparq roofline`).
struct StorageModel {
  KeyLayout layouts = KeyLayout::both;
  DMajorType d_major_type = DMajorType::same;
  std::size_t block_tokens = 256;  // >= 1
};

// SparQ's model bytes split by phase, for one KV head.
struct SparqModelBytes {
  std::uint64_t stage1 = 0;        // S·rows·e (+ ceil(S/B)·rows·4 scales for int8)
  std::uint64_t stage2 = 0;        // 2·fetched·d·b
  std::uint64_t reallocation = 0;  // 4·d with reallocation (v̄ read as f32)
  [[nodiscard]] std::uint64_t total() const noexcept { return stage1 + stage2 + reallocation; }
};
[[nodiscard]] SparqModelBytes sparq_model_phase_bytes(std::size_t seq_len, std::size_t head_dim, DType dtype,
                                                      const SparQResolved& params, std::size_t group = 1,
                                                      const StorageModel& storage = {}) noexcept;

// SparQ with shared selection: S·r·b (r rows of the d-major keys) + 2·k_eff·d·b (the
// fetched K and V rows, k_eff = min(k, S)) + 4·d with reallocation (v̄ read as f32).
// With per-head selection (group g) the heads may choose different rows: this returns
// the upper bound min(g·r, d) rows and min(g·k_eff, S) positions. When k >= S every
// row is fetched and α = 1 exactly: no stage 1 and no v̄ are needed, and the model is
// dense_model_bytes().
// `storage` as in sparq_model_phase_bytes(): the int8 copy halves (bf16/f16) stage 1.
[[nodiscard]] std::uint64_t sparq_model_bytes(std::size_t seq_len, std::size_t head_dim, DType dtype,
                                              const SparQResolved& params, std::size_t group = 1,
                                              const StorageModel& storage = {}) noexcept;

// FLOPs of the same step for the g query heads of one KV head (dot products and the
// weighted sum; softmax, top-k and exp are not counted). Dense: 4·g·S·d.
// SparQ: 2·g·S·r (stage 1) + 4·g·k·d (stage 2) for k < S; dense's for k >= S.
[[nodiscard]] std::uint64_t dense_model_flops(std::size_t seq_len, std::size_t head_dim, std::size_t group) noexcept;
[[nodiscard]] std::uint64_t sparq_model_flops(std::size_t seq_len, std::size_t head_dim, const SparQResolved& params,
                                              std::size_t group) noexcept;

// The model for a whole call: `sequences` sequences of length seq_len, all kv_heads of
// `shape`, with the method's defaults resolved for that S (throws sparq::Error on bad
// method parameters, like decode()).
struct ModelCost {
  std::uint64_t bytes = 0;
  std::uint64_t flops = 0;
};
[[nodiscard]] ModelCost model_cost(const Method& method, const ModelShape& shape, std::size_t seq_len, DType dtype,
                                   std::size_t sequences = 1, const StorageModel& storage = {});

// --- Placing a measurement on the roofline.
struct RooflinePoint {
  double seconds = 0.0;
  std::uint64_t bytes = 0;
  std::uint64_t flops = 0;
  double gb_per_s = 0.0;
  double gflops = 0.0;
  double intensity = 0.0;           // FLOP/byte
  double bandwidth_fraction = 0.0;  // gb_per_s / ceilings.read_gb_per_s
  double attainable_gflops = 0.0;   // ceilings.attainable_gflops(intensity)
  double roof_fraction = 0.0;       // gflops / attainable_gflops
  bool memory_bound = true;         // intensity below the ridge
};

// `seconds` is the time of one call (e.g. the median); bytes and flops are per call.
[[nodiscard]] RooflinePoint roofline_point(std::uint64_t bytes, std::uint64_t flops, double seconds,
                                           const Ceilings& ceilings) noexcept;
// Per call from an accumulated profile of `calls` calls; the time is the sum of the
// phase times divided by `calls` unless `seconds_per_call` > 0 is given (wall clock).
[[nodiscard]] RooflinePoint roofline_point(const Profile& profile, std::uint64_t calls, const Ceilings& ceilings,
                                           double seconds_per_call = 0.0) noexcept;

}  // namespace sparq
