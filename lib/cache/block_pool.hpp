// BlockPool: fixed-capacity pool of page-aligned cache blocks, taken from the system on
// first use and recycled through per-KV-head free lists (so a reused block keeps the
// NUMA placement of its head). Thread-safe. Blocks are reference counted so that forked
// sequences can share them.
//
// Blocks are carved back to back from per-head slabs of up to 8 MiB of blocks, advised
// for transparent huge pages: stage 2 of SparQ gathers rows from all over the cache and
// each 4 KiB page would cost a TLB miss (perf showed both stages stalled on prefetches
// with one ~200 KiB allocation per block). After a slab's blocks comes its d-major area
// (the blocks' d-major key copies, if kept), then its metadata area (each block's header
// and value sum); block_layout.hpp says why neither is inside the block. Slabs are
// aligned to their power-of-two size, so a block's d-major copy and metadata are found
// from its address alone.
//
// The d-major area is d rows of slab_blocks x B elements: row i holds component i of
// every block of the slab, block after block (d_major_stride() bytes from one row to the
// next). So the blocks of one head appended in one go (a prefill) have their component i
// side by side, and SparQ stage 1, which reads r of the d components, reads r long runs
// rather than r runs of B elements per block (2.5x the read rate of stage 1's pattern:
// docs/performance.md, "Cache layout").
// The area is placed once per slab for the slab's head; a block borrowed by another
// head (only once every block exists) keeps its d-major rows there. Slab pages are only touched, and so only backed by
// memory, as blocks are used. Metadata pages are not bound by the placement (first touch).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "cache/block_layout.hpp"
#include "numa/block_placement.hpp"

namespace sparq {

class BlockPool {
 public:
  BlockPool(const BlockLayout& layout, std::size_t capacity_blocks, std::size_t kv_heads,
            std::unique_ptr<BlockPlacement> placement);
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // Takes one block for each entry of `heads` (the KV head it will hold), all or none,
  // atomically against other callers: throws Error(capacity_exhausted) naming `what`
  // when fewer are free, or when the system refuses memory for a block not yet carved
  // (alloc_fault.hpp can make it), changing nothing. New blocks have refcount 1 and
  // fill 0; their value sums are unset until first written.
  [[nodiscard]] std::vector<std::byte*> acquire(std::span<const std::size_t> heads, const char* what);
  // Adds a sharer to a block.
  void retain(const std::byte* block) const noexcept;
  // Drops a sharer; the last one returns the block to the free list of `head`.
  void release(std::byte* block, std::size_t head) noexcept;
  // A block's header, and its value sum (head_dim doubles covering its first `fill`
  // value rows), both in its slab's metadata area.
  [[nodiscard]] BlockHeader& header(const std::byte* block) const noexcept {
    return *reinterpret_cast<BlockHeader*>(meta(block));
  }
  [[nodiscard]] double* value_sum(const std::byte* block) const noexcept {
    return reinterpret_cast<double*>(meta(block) + BlockLayout::kValueSumOffset);
  }
  // A block's d-major key copy: row 0 (component 0 of its B positions); row i starts
  // i * d_major_stride() bytes further. Only meaningful when the layout keeps the copy.
  [[nodiscard]] std::byte* d_major(const std::byte* block) const noexcept {
    return slot(block, d_major_offset_, layout_.d_major_run);
  }
  [[nodiscard]] std::size_t d_major_stride() const noexcept { return d_major_stride_; }
  // An int8 d-major copy's scales: head_dim floats in the block's metadata.
  [[nodiscard]] float* d_major_scales(const std::byte* block) const noexcept {
    return reinterpret_cast<float*>(meta(block) + layout_.scales_offset);
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t in_use() const;
  [[nodiscard]] std::size_t allocated() const;

 private:
  std::byte* allocate_new(std::size_t head);
  void push_free(std::size_t head, std::byte* block) noexcept;
  [[nodiscard]] std::byte* pop_free(std::size_t head) noexcept;
  // Where a free block keeps the next block of its free list: its value-sum slot, which
  // holds nothing while the block is free (a taken block's sum is rewritten before use).
  [[nodiscard]] std::byte** free_link(const std::byte* block) const noexcept {
    return reinterpret_cast<std::byte**>(meta(block) + BlockLayout::kValueSumOffset);
  }
  // The block's slot in the slab area at `area_offset` whose slots are `slot_bytes` each.
  [[nodiscard]] std::byte* slot(const std::byte* block, std::size_t area_offset, std::size_t slot_bytes) const noexcept;
  [[nodiscard]] std::byte* meta(const std::byte* block) const noexcept {
    return slot(block, meta_offset_, layout_.meta_bytes);
  }

  BlockLayout layout_;
  std::size_t capacity_;
  std::size_t slab_blocks_;     // blocks a slab has room for
  std::size_t d_major_offset_;  // of a slab's d-major area: slab_blocks_ x layout_.bytes
  std::size_t d_major_stride_;  // bytes per row of the d-major area: slab_blocks_ x B elements
  std::size_t d_major_area_;    // d rows, rounded up to the page size (0: no d-major copies)
  std::size_t meta_offset_;     // of its metadata area, after the d-major area
  std::size_t slab_align_;      // a slab's size and alignment (a power of two)
  std::unique_ptr<BlockPlacement> placement_;
  mutable std::mutex mutex_;
  // Per KV head, the first block of its free list; each free block's metadata holds the
  // next (free_link), so returning blocks never allocates (release is noexcept, and an
  // acquire that fails half-way gives back what it took).
  std::vector<std::byte*> free_;
  std::vector<std::byte*> all_;  // every block carved so far
  std::vector<void*> slabs_;     // the system allocations blocks are carved from
  struct SlabCursor {
    std::byte* next = nullptr;
    std::size_t left = 0;  // blocks still to carve
  };
  std::vector<SlabCursor> cursor_;  // per KV head
  std::size_t in_use_ = 0;
};

}  // namespace sparq
