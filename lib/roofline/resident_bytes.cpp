// Where a cache's blocks really are: per-page locations from hwloc (residency.hpp).
#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "common/process_topology.hpp"
#include "sparq/tools/residency.hpp"
#include "sparq/topology.hpp"

namespace sparq {

std::vector<std::uint64_t> resident_bytes_by_node(const KVCache& cache, SeqId seq, std::size_t layer,
                                                  std::size_t kv_begin, std::size_t kv_end) {
  const Topology& topo = Topology::this_system();
  std::vector<std::uint64_t> bytes(topo.nodes.size(), 0);
  const KVCache::ReadLock lock = cache.lock_for_read(seq);
  const LayerView v = cache.view(seq, layer);
  kv_end = std::min(kv_end, v.kv_heads);
  const hwloc_topology_t hw = process_topology();  // read-only queries: thread-safe
  if (!hw || kv_begin >= kv_end || v.blocks_per_head == 0) return bytes;
  const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  // The block's extent up to the end of its last region (the pool rounds the block up to
  // whole pages; the tail holds nothing).
  const std::size_t block_bytes = v.block_data_bytes;
  std::unique_ptr<hwloc_bitmap_s, decltype(&hwloc_bitmap_free)> set(hwloc_bitmap_alloc(), &hwloc_bitmap_free);
  if (!set) return bytes;
  // Counts [at, at + len) page by page.
  const auto count = [&](const std::byte* at, std::size_t len) {
    for (std::size_t off = 0; off < len;) {
      const std::size_t in_page = page - reinterpret_cast<std::uintptr_t>(at + off) % page;
      const std::size_t n = std::min(in_page, len - off);
      hwloc_bitmap_zero(set.get());
      if (hwloc_get_area_memlocation(hw, at + off, n, set.get(), HWLOC_MEMBIND_BYNODESET) == 0 &&
          hwloc_bitmap_weight(set.get()) == 1) {  // else not resident (or unknown)
        const std::size_t node = topo.node_by_os_index(unsigned(hwloc_bitmap_first(set.get())));
        if (node < bytes.size()) bytes[node] += n;
      }
      off += n;
    }
  };
  const std::size_t eb = size_of(v.dtype);
  for (std::size_t h = kv_begin; h < kv_end; ++h)
    for (std::size_t b = 0; b < v.blocks_per_head; ++b) {
      count(v.block(h, b), block_bytes);
      if (has_d_major(v.layouts))  // the rows of its d-major copy, in the slab's d-major area
        for (std::size_t i = 0; i < v.head_dim; ++i)
          count(v.key_block_d_major(h, b) + i * v.d_major_stride * eb, v.block_tokens * eb);
    }
  return bytes;
}

}  // namespace sparq
