// Cold data for timing decode: a KV cache with enough layers that timed calls can
// rotate over them and each call reads data no cache level holds (the rotation's
// working set far above the last-level cache). One harness for `sparq roofline`,
// `sparq layouts` and the benchmarks in bench/, so that they time the same thing.
//
// The contents are synthetic and deterministic: values in [-1, 1) from a 64-bit LCG
// (std::normal_distribution over gigabytes would dominate a run), one chunk of 2048
// rows appended again and again. Every layer of every sequence holds the same values
// (different memory), which is all a bandwidth measurement needs.
//
// Thread safety: building is single-threaded; a ColdCaches is then used like any KVCache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "sparq/kv_cache.hpp"

namespace sparq {

// Fills `x` with deterministic values in [-1, 1) that depend only on `seed`.
void fill_synthetic(std::span<float> x, std::uint32_t seed);

// Bytes one layer of one sequence of length seq_len occupies in a cache of config `c`:
// all KV heads, whole blocks, every copy (S-major K, d-major K, V) the layouts keep, an
// int8 d-major copy at one byte per element (its scales are block metadata, not counted).
[[nodiscard]] std::uint64_t stored_bytes_per_layer(const CacheConfig& c, std::size_t seq_len);

// Layers for a rotation whose working set is at least `working_set` when each layer
// holds `bytes_per_layer`: at least `min_layers`, and, when `methods` > 1 methods are
// interleaved call by call, not a multiple of `methods`, so that every method visits
// every layer.
[[nodiscard]] std::size_t rotation_layers(std::uint64_t working_set, std::uint64_t bytes_per_layer,
                                          std::size_t min_layers = 1, std::size_t methods = 1);

struct ColdCacheSpec {
  // Heads, head_dim, dtype, block size, layouts, placement and the number of layers
  // (see rotation_layers()); capacity_tokens is set to fit `batch` sequences.
  CacheConfig config;
  std::size_t seq_len = 0;  // tokens appended to every layer of every sequence, >= 1
  std::size_t batch = 1;    // sequences, >= 1
  // > 0: every heavy_every-th key of a chunk is scaled by 3, so that some positions
  // stand out as heavy hitters do in real attention (SparQ's selection is then not a
  // near-uniform lottery).
  std::size_t heavy_every = 0;
};

// The cache, its sequences and the layer the next timed call should read.
struct ColdCaches {
  std::unique_ptr<KVCache> cache;
  std::vector<SeqId> seqs;
  std::size_t layers = 0;  // 0 when building was stopped (see build_cold_caches)
  std::size_t seq_len = 0;
  std::size_t next_layer = 0;

  // The layer the next timed call reads: round robin over all layers.
  std::size_t take_layer() noexcept {
    const std::size_t l = next_layer;
    next_layer = next_layer + 1 == layers ? 0 : next_layer + 1;
    return l;
  }
};

// Called after each appended chunk with the fraction done; returns false to stop.
using ColdCacheProgress = std::function<bool(double fraction_done)>;

// Builds the cache and appends seq_len synthetic tokens to every layer of every
// sequence, sequence by sequence, in prefill chunks of 2048. When `progress` returns
// false the cache is returned partly filled with `layers` = 0. Throws sparq::Error for
// an invalid config (as KVCache does) or seq_len / batch of 0.
[[nodiscard]] ColdCaches build_cold_caches(const ColdCacheSpec& spec, const ColdCacheProgress& progress = {});

}  // namespace sparq
