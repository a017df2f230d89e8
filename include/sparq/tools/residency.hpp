// Where a cache's K/V pages really are: the measured counterpart of
// sparq::node_byte_shares (topology.hpp), for reports such as `sparq roofline`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sparq/kv_cache.hpp"

namespace sparq {

// Measured counterpart of node_byte_shares on this machine: bytes of the blocks of
// (seq, layer), KV heads [kv_begin, kv_end), and of their d-major key copies, resident
// on each node of
// Topology::this_system() (index into its nodes), from the OS's page locations
// (hwloc_get_area_memlocation, one query per page). Pages never touched are not counted.
// Meant for reports (sparq roofline), not hot paths: O(pages) system calls. Throws
// Error like KVCache::view for an unknown sequence or layer.
[[nodiscard]] std::vector<std::uint64_t> resident_bytes_by_node(const KVCache& cache, SeqId seq, std::size_t layer,
                                                                std::size_t kv_begin = 0,
                                                                std::size_t kv_end = ~std::size_t{0});

}  // namespace sparq
