// KVCache: a paged store of the keys and values of many sequences.
//
// Storage. A fixed pool of blocks; one block holds `block_tokens` (B) consecutive
// tokens of one (sequence, layer, KV head): S-major keys [B][d] and values [B][d] (or, in
// the fused layout, [B][key | value]), and a d-major key copy [d][B] (whichever layouts
// are configured; the copy optionally in int8 with per-block scales).
// Blocks are allocated on first use and recycled when sequences are removed or
// truncated; `capacity_tokens` bounds how many tokens all sequences may hold together
// (counted in whole blocks per layer and head).
//
// Per (sequence, layer) the cache keeps its length S and, per KV head, the running sum
// of the stored values in double, so that `mean_values()` is the exact mean of what is
// in the cache (SparQ's reallocation uses it). Each layer of a sequence has its own
// length: a server appends layer by layer during the forward pass.
//
// Forks share blocks copy-on-write: a fork costs no K/V copy until one of the two
// sequences writes into a shared, partly filled block.
//
// Errors. Every method validates all of its arguments before it changes anything: on a
// thrown sparq::Error the cache is exactly as it was. An append is all or nothing, also
// across the layers of append_all_layers and also under concurrency: it takes every
// block it needs from the pool in one step before writing any. When the pool has too
// few free blocks, or the system refuses memory for a new one, it throws
// capacity_exhausted (the message says which); a std::bad_alloc from the cache's own
// small tables may also escape, again with the cache unchanged.
//
// Thread safety. Methods on different sequences may run concurrently. Per sequence,
// readers (decode, read_key/read_value, a view held under a ReadLock, and fork, which
// reads its source) may run together in any number; writers (append,
// append_all_layers, truncate, remove_sequence) must not overlap with each other or with
// readers of that sequence: such overlap is detected and reported as
// ErrorCode::concurrent_use rather than raced (the call that finds the overlap fails and
// changes nothing; retry it later). length() may be called at any time (during an append
// to the same layer it returns the length before or after it).
//
// Raw views (the one rule). view() returns pointers into the cache with no guard of their
// own. A caller that reads through a LayerView must hold a ReadLock of that sequence from
// lock_for_read() for as long as it uses the view, taken before view() is called:
//     const auto lock = cache.lock_for_read(seq);   // writers now fail, never race
//     const LayerView v = cache.view(seq, layer);   // valid until `lock` is destroyed
// The lock is what makes a concurrent append/truncate/remove of that sequence fail with
// concurrent_use instead of moving or freeing the blocks under the reader; decode() and
// read_key()/read_value() take it themselves. Without a lock, a view is only safe when
// the caller guarantees by other means that no thread writes to the sequence meanwhile
// (as single-threaded tools do); such use is not checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sparq/rows.hpp"
#include "sparq/types.hpp"

namespace sparq {

using SeqId = std::uint64_t;

struct CacheConfig {
  std::size_t layers = 1;
  std::size_t kv_heads = 1;
  std::size_t head_dim = 128;
  DType dtype = DType::bf16;
  std::size_t block_tokens = 256;         // B; any value >= 1 (multiples of 16 vectorize best)
  std::size_t capacity_tokens = 1 << 16;  // total tokens of all sequences
  KeyLayout layouts = KeyLayout::both;
  DMajorType d_major_type = DMajorType::same;  // int8: half the bytes for stage 1 (types.hpp)
  Placement placement = Placement::local;

  // Throws sparq::Error naming the first field outside its range.
  void validate() const;
};

// Bytes taken from the system, by part: every allocated block (in use or kept for
// reuse) counts; `metadata` covers block headers, per-block value sums and sequence
// tables. Memory grows as blocks are first used and is never reserved up front.
struct MemoryUsage {
  std::size_t k_s_major = 0;
  std::size_t k_d_major = 0;
  std::size_t values = 0;
  std::size_t metadata = 0;
  std::size_t blocks_in_use = 0;     // held by at least one sequence
  std::size_t blocks_allocated = 0;  // taken from the system (in use + kept for reuse)
  std::size_t blocks_capacity = 0;
  [[nodiscard]] std::size_t total() const noexcept { return k_s_major + k_d_major + values + metadata; }
};

// Read-only view of one (sequence, layer): what kernels read. Valid while the caller
// holds a ReadLock of the sequence (see "Raw views" above), and in any case only until the
// next write to that sequence or its removal. Element pointers are to `dtype` storage.
struct LayerView {
  std::size_t length = 0;        // S
  std::size_t head_dim = 0;      // d
  std::size_t block_tokens = 0;  // B
  std::size_t kv_heads = 0;
  std::size_t blocks_per_head = 0;  // ceil(S / B)
  DType dtype = DType::f32;
  KeyLayout layouts = KeyLayout::both;
  DMajorType d_major_type = DMajorType::same;
  // [blocks_per_head][kv_heads] block base addresses (block-major, so appending a
  // block row never moves earlier entries), and offsets of each region in a block
  // (kNoRegion when the layout is not kept).
  const std::byte* const* blocks = nullptr;
  std::size_t k_s_major_offset = 0;
  std::size_t v_offset = 0;
  // Elements from one position's S-major key row to the next, and likewise for values:
  // head_dim, or 2 * head_dim when the layout is fused (key and value side by side).
  std::size_t row_stride = 0;
  // [blocks_per_head][kv_heads] addresses of the blocks' d-major key copies (null when
  // the layout is not kept): d rows of B elements, row i = component i of the block's
  // positions, d_major_stride elements from one row to the next. The copies are kept
  // apart from the blocks (so dense decode streams S-major keys and values without
  // gaps) and interleaved row by row with the copies of neighbouring blocks (so a
  // head's blocks appended together have each component in one long run).
  const std::byte* const* d_major_blocks = nullptr;
  std::size_t d_major_stride = 0;  // in elements of the copy (d_major_bytes() each)
  // int8 copy only: [blocks_per_head][kv_heads] addresses of each block's d scales;
  // component i of position j is worth scale[i] times its int8 value.
  const float* const* d_major_scales = nullptr;
  std::size_t block_data_bytes = 0;   // from a block's base to the end of its last region
  const float* value_mean = nullptr;  // [kv_heads][d], mean of the S stored value rows

  static constexpr std::size_t kNoRegion = ~std::size_t{0};

  [[nodiscard]] const std::byte* block(std::size_t head, std::size_t b) const noexcept {
    return blocks[b * kv_heads + head];
  }
  // Rows in block b (B except possibly the last).
  [[nodiscard]] std::size_t rows_in_block(std::size_t b) const noexcept {
    return b + 1 < blocks_per_head ? block_tokens : length - b * block_tokens;
  }
  // S-major key row of position j: d elements. Requires has_s_major(layouts).
  [[nodiscard]] const std::byte* key_row(std::size_t head, std::size_t j) const noexcept {
    return block(head, j / block_tokens) + k_s_major_offset + (j % block_tokens) * row_stride * size_of(dtype);
  }
  // Bytes of one element of the d-major copy.
  [[nodiscard]] std::size_t d_major_bytes() const noexcept {
    return d_major_type == DMajorType::int8 ? 1 : size_of(dtype);
  }
  // d-major keys of block b: row 0 (component 0 of its B positions); row i starts
  // i * d_major_stride elements further. Requires has_d_major(layouts).
  [[nodiscard]] const std::byte* key_block_d_major(std::size_t head, std::size_t b) const noexcept {
    return d_major_blocks[b * kv_heads + head];
  }
  // Component i of the key at position j, in the d-major copy (an int8 when
  // d_major_type is int8, with scale d_major_scale(head, j / block_tokens)[i]).
  [[nodiscard]] const std::byte* key_d_major(std::size_t head, std::size_t j, std::size_t i) const noexcept {
    return key_block_d_major(head, j / block_tokens) + (i * d_major_stride + j % block_tokens) * d_major_bytes();
  }
  [[nodiscard]] const float* d_major_scale(std::size_t head, std::size_t b) const noexcept {
    return d_major_scales[b * kv_heads + head];
  }
  // Value row of position j: d elements.
  [[nodiscard]] const std::byte* value_row(std::size_t head, std::size_t j) const noexcept {
    return block(head, j / block_tokens) + v_offset + (j % block_tokens) * row_stride * size_of(dtype);
  }
};

class KVCache {
 public:
  explicit KVCache(const CacheConfig& config);
  ~KVCache();
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;

  [[nodiscard]] const CacheConfig& config() const noexcept;

  // A new, empty sequence (length 0 in every layer).
  [[nodiscard]] SeqId add_sequence();
  // Frees the sequence's blocks (those not shared with a fork) for reuse.
  void remove_sequence(SeqId seq);
  [[nodiscard]] bool contains(SeqId seq) const;
  [[nodiscard]] std::vector<SeqId> sequences() const;

  // Appends n_tokens to one layer: keys and values are [n_tokens][kv_heads][head_dim],
  // each f32 values (a span, vector or array converts to Rows) or f16/bf16 bit patterns
  // (Rows::f16, Rows::bf16; sparq/rows.hpp), read in place with no f32 round trip. An
  // element of the cache's dtype is copied bit for bit; any other is converted, rounding
  // to nearest even, so the stored bits never depend on the source type, only on the
  // value. Throws, changing nothing: shape_mismatch on a size mismatch (also when
  // n_tokens*kv_heads*head_dim overflows); non_finite_input on NaN, inf, or a finite value
  // the storage type cannot hold (|x| >= 65520 in f16, >= 3.3961775e38 in bf16: refused,
  // never stored as inf), naming its [token, head, component]; capacity_exhausted when
  // the pool cannot supply the new blocks.
  void append(SeqId seq, std::size_t layer, Rows keys, Rows values, std::size_t n_tokens);
  // Appends to every layer at once: keys/values are [layers][n_tokens][kv_heads][head_dim].
  // All layers or none, with the errors of append (positions name the layer too).
  void append_all_layers(SeqId seq, Rows keys, Rows values, std::size_t n_tokens);
  // Appends one token to each of `seqs` at one layer (a server's decode step over its
  // slots): keys/values are [seqs.size()][kv_heads][head_dim], row b for seqs[b], typed
  // as in append. All or nothing across the batch: every id, size and value is checked,
  // every sequence claimed for writing and every block the batch needs taken from the
  // pool in one step before anything is written, so on any error no sequence changes.
  // Throws the errors of append (positions name the batch row as "token"), and
  // invalid_argument when an id appears twice (one token per sequence and call),
  // unknown_sequence, or concurrent_use when any of them is in use. An empty batch
  // does nothing.
  void append_batch(std::span<const SeqId> seqs, std::size_t layer, Rows keys, Rows values);

  // Drops the last n tokens of every layer (n may not exceed the shortest layer).
  void truncate(SeqId seq, std::size_t n_tokens);
  // A new sequence sharing all of `seq`'s tokens (copy-on-write). A reader of `seq`: it
  // may run beside decodes and other forks of `seq`, not beside its writers.
  [[nodiscard]] SeqId fork(SeqId seq);

  [[nodiscard]] std::size_t length(SeqId seq, std::size_t layer) const;
  // Raw pointers into seq's blocks: hold lock_for_read(seq) while using them.
  [[nodiscard]] LayerView view(SeqId seq, std::size_t layer) const;
  [[nodiscard]] MemoryUsage memory_usage() const;
  // Blocks not in use (each holds block_tokens tokens of one layer and KV head).
  [[nodiscard]] std::size_t free_blocks() const;

  // Reads one stored key or value row back as f32 (the stored, rounded value).
  void read_key(SeqId seq, std::size_t layer, std::size_t head, std::size_t pos, std::span<float> out) const;
  void read_value(SeqId seq, std::size_t layer, std::size_t head, std::size_t pos, std::span<float> out) const;

  // The reader guard of one sequence (see "Raw views"): while any ReadLock of seq lives,
  // writers of seq fail with concurrent_use. Throws unknown_sequence, or concurrent_use when
  // a writer holds seq now. Movable, not copyable; release it before writing to seq from
  // the same thread (a thread holding it cannot append to that sequence itself).
  class ReadLock;
  [[nodiscard]] ReadLock lock_for_read(SeqId seq) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class KVCache::ReadLock {
 public:
  ReadLock(ReadLock&& other) noexcept;
  ReadLock& operator=(ReadLock&&) = delete;
  ~ReadLock();

 private:
  friend class KVCache;
  explicit ReadLock(void* state) noexcept : state_(state) {}
  void* state_;
};

}  // namespace sparq
