#include "cache/block_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

#include "cache/alloc_fault.hpp"
#include "sparq/error.hpp"

namespace sparq {

namespace {
constexpr std::size_t kPage = 4096;
constexpr std::size_t kLine = 64;
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kSlabTarget = std::size_t{8} << 20;
std::size_t round_up(std::size_t x, std::size_t to) {
  return (x + to - 1) / to * to;
}
}  // namespace

BlockLayout BlockLayout::for_config(const CacheConfig& c) {
  BlockLayout l;
  l.row_bytes = c.head_dim * size_of(c.dtype);
  l.row_stride_bytes = c.layouts == KeyLayout::fused ? 2 * l.row_bytes : l.row_bytes;
  l.k_region = round_up(c.block_tokens * l.row_bytes, kLine);
  const std::size_t value_sums = BlockLayout::kValueSumOffset + c.head_dim * sizeof(double);
  l.scales_offset = c.d_major_type == DMajorType::int8 ? value_sums : 0;
  l.meta_bytes = round_up(value_sums + (l.scales_offset ? c.head_dim * sizeof(float) : 0), kLine);
  std::size_t at = 0;
  // The regions dense decode streams (S-major K, then V) are adjacent, so it reads one
  // contiguous range per block; the d-major copy that SparQ stage 1 reads is elsewhere
  // (block_layout.hpp says why).
  if (c.layouts == KeyLayout::fused) {
    l.k_s_major_offset = 0;
    l.v_offset = l.row_bytes;
    at = round_up(c.block_tokens * l.row_stride_bytes, kLine);
  } else {
    if (has_s_major(c.layouts)) {
      l.k_s_major_offset = at;
      at += l.k_region;
    }
    l.v_offset = at;
    at += l.k_region;
  }
  if (has_d_major(c.layouts)) {
    l.d_major_rows = c.head_dim;
    l.d_major_elem = c.d_major_type == DMajorType::int8 ? 1 : size_of(c.dtype);
    l.d_major_run = c.block_tokens * l.d_major_elem;
  }
  l.data_bytes = at;
  l.bytes = round_up(at, kPage);
  return l;
}

BlockPool::BlockPool(const BlockLayout& layout, std::size_t capacity_blocks, std::size_t kv_heads,
                     std::unique_ptr<BlockPlacement> placement)
    : layout_(layout),
      capacity_(capacity_blocks),
      // A slab never holds more blocks than the pool may carve, so small caches stay small.
      slab_blocks_(std::clamp<std::size_t>(kSlabTarget / (layout.bytes + layout.d_major_rows * layout.d_major_run), 1,
                                           std::max<std::size_t>(capacity_blocks, 1))),
      d_major_offset_(slab_blocks_ * layout.bytes),
      d_major_stride_(slab_blocks_ * layout.d_major_run),
      d_major_area_(round_up(layout.d_major_rows * d_major_stride_, kPage)),
      meta_offset_(d_major_offset_ + d_major_area_),
      slab_align_(std::bit_ceil(meta_offset_ + slab_blocks_ * layout.meta_bytes)),
      placement_(std::move(placement)),
      free_(kv_heads, nullptr),
      cursor_(kv_heads) {}

std::byte* BlockPool::slot(const std::byte* block, std::size_t area_offset, std::size_t slot_bytes) const noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(block);
  const std::uintptr_t slab = at & ~std::uintptr_t(slab_align_ - 1);
  const std::size_t index = (at - slab) / layout_.bytes;
  return reinterpret_cast<std::byte*>(slab + area_offset + index * slot_bytes);
}

BlockPool::~BlockPool() {
  for (std::byte* b : all_) header(b).~BlockHeader();
  for (void* s : slabs_) std::free(s);
}

std::byte* BlockPool::allocate_new(std::size_t head) {
  // Everything that can fail comes before the first change, so that a refusal (thrown as
  // std::bad_alloc, turned into capacity_exhausted by acquire) leaves the pool as it was.
  all_.reserve(all_.size() + 1);
  const bool refused = alloc_fault::block_allocation_fails();
  SlabCursor& c = cursor_[head];
  if (c.left == 0) {
    slabs_.reserve(slabs_.size() + 1);
    // Aligned to its own (power-of-two) size, so that a block's slab, and with it the
    // block's metadata, follows from the block's address (meta()); only touched pages
    // are backed by memory, so the unused tail of a slab costs address space only.
    void* slab = refused ? nullptr : std::aligned_alloc(slab_align_, slab_align_);
    if (!slab) throw std::bad_alloc();
    if (slab_align_ >= kHugePage) {
      // Huge pages for the blocks and d-major copies only (advisory: failure is harmless). A metadata area
      // that starts a huge page of its own stays on small pages: a 2 MiB page for tens
      // of KiB of headers would add 25% to an 8 MiB slab.
      const std::size_t huge_end = round_up(meta_offset_, kHugePage);
      madvise(slab, huge_end, MADV_HUGEPAGE);
      if (huge_end < slab_align_)
        madvise(static_cast<std::byte*>(slab) + huge_end, slab_align_ - huge_end, MADV_NOHUGEPAGE);
    }
    // The d-major area holds rows of every block of the slab: it is placed once, for the
    // head the slab is carved for.
    if (placement_ && d_major_area_)
      placement_->place(static_cast<std::byte*>(slab) + d_major_offset_, d_major_area_, head);
    slabs_.push_back(slab);
    c.next = static_cast<std::byte*>(slab);
    c.left = std::min(slab_blocks_, capacity_ - all_.size());
  } else if (refused) {
    throw std::bad_alloc();
  }
  std::byte* b = c.next;
  c.next += layout_.bytes;
  --c.left;
  // Placement first: binding must precede the first write for first-touch policies.
  if (placement_) placement_->place(b, layout_.bytes, head);
  new (meta(b)) BlockHeader{};
  all_.push_back(b);
  return b;
}

std::vector<std::byte*> BlockPool::acquire(std::span<const std::size_t> heads, const char* what) {
  std::vector<std::byte*> out;
  out.reserve(heads.size());  // may throw std::bad_alloc: nothing taken yet
  std::lock_guard lock(mutex_);
  if (heads.size() > capacity_ - in_use_)
    throw Error(ErrorCode::capacity_exhausted, std::string(what) + " needs " + std::to_string(heads.size()) +
                                                   " more blocks but only " + std::to_string(capacity_ - in_use_) +
                                                   " of " + std::to_string(capacity_) +
                                                   " are free: raise capacity_tokens or remove sequences");
  try {
    for (std::size_t head : heads) {
      std::byte* b = pop_free(head);
      if (!b && all_.size() < capacity_) {
        b = allocate_new(head);
      } else if (!b) {
        // Every block exists already; borrow one kept for another head and re-place it.
        for (std::size_t h = 0; h < free_.size() && !b; ++h) b = pop_free(h);
        // Its d-major rows share pages with other blocks' and stay where they are.
        if (placement_) placement_->place(b, layout_.bytes, head);
      }
      header(b).refcount.store(1, std::memory_order_relaxed);
      header(b).fill = 0;
      out.push_back(b);
    }
  } catch (const std::bad_alloc&) {
    // The free lists are intrusive, so giving the blocks back cannot fail.
    for (std::size_t i = 0; i < out.size(); ++i) push_free(heads[i], out[i]);
    throw Error(ErrorCode::capacity_exhausted, std::string(what) + ": the system refused memory for a new block of " +
                                                   std::to_string(layout_.bytes) +
                                                   " bytes; nothing was changed (free memory or remove sequences)");
  }
  in_use_ += out.size();
  return out;
}

void BlockPool::push_free(std::size_t head, std::byte* block) noexcept {
  std::byte** next = free_link(block);
  *next = free_[head];
  free_[head] = block;
}

std::byte* BlockPool::pop_free(std::size_t head) noexcept {
  std::byte* b = free_[head];
  if (b) free_[head] = *free_link(b);
  return b;
}

void BlockPool::retain(const std::byte* block) const noexcept {
  header(block).refcount.fetch_add(1, std::memory_order_relaxed);
}

void BlockPool::release(std::byte* block, std::size_t head) noexcept {
  if (header(block).refcount.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::lock_guard lock(mutex_);
  push_free(head, block);
  --in_use_;
}

std::size_t BlockPool::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}

std::size_t BlockPool::allocated() const {
  std::lock_guard lock(mutex_);
  return all_.size();
}

}  // namespace sparq
