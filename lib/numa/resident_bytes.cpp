// Where a cache's blocks really are: per-page locations from hwloc.
#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "common/process_topology.hpp"
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
  for (std::size_t h = kv_begin; h < kv_end; ++h)
    for (std::size_t b = 0; b < v.blocks_per_head; ++b) {
      const std::byte* block = v.block(h, b);
      for (std::size_t off = 0; off < block_bytes; off += page) {
        const std::size_t len = std::min(page, block_bytes - off);
        hwloc_bitmap_zero(set.get());
        if (hwloc_get_area_memlocation(hw, block + off, len, set.get(), HWLOC_MEMBIND_BYNODESET) != 0) continue;
        if (hwloc_bitmap_weight(set.get()) != 1) continue;  // not resident (or unknown)
        const std::size_t node = topo.node_by_os_index(unsigned(hwloc_bitmap_first(set.get())));
        if (node < bytes.size()) bytes[node] += len;
      }
    }
  return bytes;
}

}  // namespace sparq
