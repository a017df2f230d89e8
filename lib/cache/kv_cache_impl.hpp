// KVCache's internals (include/sparq/kv_cache.hpp), shared by kv_cache.cpp (the public
// methods) and kv_cache_append.cpp (planning and writing appends): a sequence is, per
// layer, a list of pool blocks with its length and running value sums.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/block_pool.hpp"
#include "sparq/error.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq {

namespace cache_impl {

struct LayerState {
  // Written by the sequence's writer through std::atomic_ref, so that length() may read
  // it from any thread at any time.
  std::size_t length = 0;
  std::vector<std::byte*> blocks;  // [n_blocks][kv_heads]
  // [n_blocks][kv_heads] the blocks' d-major key copies (BlockPool::d_major), kept in
  // step with `blocks` when the layout has them (LayerView::d_major_blocks points here).
  std::vector<std::byte*> d_major;
  // [n_blocks][kv_heads] the blocks' int8 scales (BlockPool::d_major_scales), kept like
  // d_major when the copy is int8 (LayerView::d_major_scales points here).
  std::vector<float*> d_major_scales;
  std::vector<double> value_sum;  // [kv_heads][d], sum of all stored value rows
  std::vector<float> value_mean;  // [kv_heads][d]
};

struct Sequence {
  std::vector<LayerState> layers;
  // Reader/writer detection (not a lock): see "Thread safety" in the header.
  std::atomic<int> readers{0};
  std::atomic<bool> writing{false};
};

inline std::string seq_name(SeqId s) {
  return "sequence " + std::to_string(s);
}

inline std::size_t blocks_for(std::size_t tokens, std::size_t b) {
  return tokens / b + (tokens % b != 0);
}

inline void set_length(LayerState& st, std::size_t n) {
  std::atomic_ref(st.length).store(n, std::memory_order_relaxed);
}

// Bytes of a sequence's own tables (MemoryUsage::metadata).
inline std::size_t table_bytes(const Sequence& seq) {
  std::size_t n = 0;
  for (const LayerState& st : seq.layers)
    n += (st.blocks.capacity() + st.d_major.capacity() + st.d_major_scales.capacity()) * sizeof(std::byte*) +
         st.value_sum.size() * sizeof(double) + st.value_mean.size() * sizeof(float);
  return n;
}

// What one layer of an append takes from the pool: blocks [have, need) per head, and a
// private copy of the partly filled last block when it is shared with a fork.
struct LayerPlan {
  std::size_t have = 0;
  std::size_t need = 0;
  bool cow = false;
};

// Where an append reads its keys or values: elements of `type` from `data` (a Rows).
struct Source {
  const std::byte* data = nullptr;
  DType type = DType::f32;
  [[nodiscard]] const std::byte* at(std::size_t element) const noexcept { return data + element * size_of(type); }
};

// One sequence's share of an append: `layers` consecutive layers from `first`, layer l's
// rows starting at element l * per_layer of keys and values.
struct AppendPart {
  Sequence* seq = nullptr;
  std::size_t first = 0;
  std::size_t layers = 1;
  Source keys, values;
  std::size_t per_layer = 0;
};

}  // namespace cache_impl

using cache_impl::AppendPart;
using cache_impl::blocks_for;
using cache_impl::LayerPlan;
using cache_impl::LayerState;
using cache_impl::seq_name;
using cache_impl::Sequence;
using cache_impl::set_length;
using cache_impl::Source;
using cache_impl::table_bytes;

struct KVCache::Impl {
  CacheConfig config;
  BlockLayout layout;
  BlockPool pool;
  mutable std::shared_mutex map_mutex;
  std::unordered_map<SeqId, std::unique_ptr<Sequence>> sequences;
  SeqId next_id = 1;
  // Sum of table_bytes() over all sequences, kept by their writers: memory_usage() reads
  // it instead of tables that another thread may be growing.
  std::atomic<std::size_t> tables{0};

  explicit Impl(const CacheConfig& c)
      : config(c),
        layout(BlockLayout::for_config(c)),
        pool(layout, pool_blocks(c), c.kv_heads, make_block_placement(c.placement, c.kv_heads)) {}

  std::size_t d() const { return config.head_dim; }
  std::size_t heads() const { return config.kv_heads; }
  std::size_t B() const { return config.block_tokens; }

  // Looks a sequence up under the map lock held by the caller.
  Sequence& find_locked(SeqId s) const {
    auto it = sequences.find(s);
    if (it == sequences.end())
      throw Error(ErrorCode::unknown_sequence, seq_name(s) + " is not in the cache (never added, or removed)");
    return *it->second;
  }

  void check_layer(std::size_t layer) const {
    if (layer >= config.layers)
      throw Error(ErrorCode::invalid_argument, "layer=" + std::to_string(layer) + " is out of range: must be in [0, " +
                                                   std::to_string(config.layers - 1) + "]");
  }

  // Writer access to one sequence: fails rather than races when another writer or a
  // reader holds it. Released by the guard's destructor.
  struct WriteGuard {
    Sequence* seq;
    ~WriteGuard() { seq->writing.store(false); }
  };
  WriteGuard begin_write(SeqId s) const { return WriteGuard{&claim_write(s)}; }
  // begin_write without the guard: the caller stores false into `writing` when done.
  Sequence& claim_write(SeqId s) const {
    std::shared_lock lock(map_mutex);
    Sequence& seq = find_locked(s);
    bool expected = false;
    if (!seq.writing.compare_exchange_strong(expected, true))
      throw Error(ErrorCode::concurrent_use, seq_name(s) + " is already being modified by another thread");
    if (seq.readers.load() != 0) {
      seq.writing.store(false);
      throw Error(ErrorCode::concurrent_use, seq_name(s) + " is being read (decode or fork) by another thread");
    }
    return seq;
  }

  // Reader access to one sequence (decode, view, fork): fails rather than races when a
  // writer holds it; the caller gives it back by decrementing seq.readers.
  Sequence& begin_read(SeqId s) const {
    std::shared_lock lock(map_mutex);
    Sequence& seq = find_locked(s);
    seq.readers.fetch_add(1);
    if (seq.writing.load()) {
      seq.readers.fetch_sub(1);
      throw Error(ErrorCode::concurrent_use,
                  seq_name(s) + " is being modified by another thread; it cannot be read now");
    }
    return seq;
  }

  // Keeps `tables` in step with a sequence whose tables took `before` bytes.
  void account(std::size_t before, const Sequence& seq) {
    const std::size_t after = table_bytes(seq);
    if (after >= before)
      tables.fetch_add(after - before, std::memory_order_relaxed);
    else
      tables.fetch_sub(before - after, std::memory_order_relaxed);
  }

  std::byte* key_s(std::byte* blk, std::size_t off) const {
    return blk + layout.k_s_major_offset + off * layout.row_stride_bytes;
  }
  std::byte* val(std::byte* blk, std::size_t off) const {
    return blk + layout.v_offset + off * layout.row_stride_bytes;
  }
  [[nodiscard]] bool int8_copy() const { return layout.scales_offset != 0; }

  // Write side (kv_cache_append.cpp).
  // Sum of the first `rows` stored value rows of a block into out[d].
  void sum_rows(std::byte* blk, std::size_t rows, double* out) const;
  // Makes a block's value sum cover exactly its first `rows` rows (before writing row
  // `rows` into a block whose sum covered more or fewer rows, e.g. after a truncate).
  void sync_block_sum(std::byte* blk, std::size_t rows) const;
  // Copies the first `rows` rows of every region of `src` into `dst` (copy-on-write).
  void copy_rows(const std::byte* src, std::byte* dst, std::size_t rows) const;
  // Brings st.d_major in step with st.blocks from block entry `from` on.
  void track_d_major(LayerState& st, std::size_t from) const {
    if (!layout.d_major_rows) return;
    st.d_major.resize(st.blocks.size());
    for (std::size_t i = from; i < st.blocks.size(); ++i) st.d_major[i] = pool.d_major(st.blocks[i]);
    if (!int8_copy()) return;
    st.d_major_scales.resize(st.blocks.size());
    for (std::size_t i = from; i < st.blocks.size(); ++i) st.d_major_scales[i] = pool.d_major_scales(st.blocks[i]);
  }
  // int8 copy: rows [from, to) of a block's d-major copy quantized from its S-major keys,
  // after growing each component's scale to cover them (requantizing rows [0, from) of a
  // component whose scale grew). Rows [0, to) hold keys.
  void quantize_rows(std::byte* blk, std::byte* d_major, std::size_t from, std::size_t to) const noexcept;

  void update_mean(LayerState& st) const {
    st.value_mean.resize(heads() * d());
    for (std::size_t i = 0; i < st.value_mean.size(); ++i)
      st.value_mean[i] = st.length ? static_cast<float>(st.value_sum[i] / double(st.length)) : 0.0f;
  }

  // The blocks one layer of an append of n tokens takes.
  [[nodiscard]] LayerPlan plan_layer(const LayerState& st, std::size_t n) const;
  // Appends n tokens to every part (its sequence's layers), all or none: every block all
  // of them need is taken from the pool in one step (atomically against other appends)
  // and every table grown before the first write, so a failure (pool exhausted, the
  // system refusing memory) leaves every sequence as it was. The caller holds each
  // part's sequence for writing; parts name distinct sequences.
  void append_parts(const std::string& what, std::span<const AppendPart> parts, std::size_t n);
  // Writes n tokens into a layer with the blocks its plan took (new blocks first, then the
  // copies of a shared last block); the layer's tables have room for them.
  void commit_layer(LayerState& st, const LayerPlan& p, std::byte* const* fresh, Source keys, Source values,
                    std::size_t n) noexcept;
  // Stores d source elements as one row of the cache's dtype (a copy when the types match).
  void store_row(std::byte* dst, const std::byte* src, DType src_type) const noexcept;
};

}  // namespace sparq
