// The by-head assignment of KV heads to nodes and the per-node byte model.
#include <algorithm>
#include <string>

#include "sparq/error.hpp"
#include "sparq/topology.hpp"

namespace sparq {

std::vector<HeadRange> assign_heads(const Topology& topology, std::size_t kv_heads) {
  if (kv_heads == 0) throw Error(ErrorCode::invalid_argument, "kv_heads=0: the head assignment needs kv_heads >= 1");
  const std::size_t n = topology.nodes.size();
  std::vector<HeadRange> out(n);
  if (n == 0) return out;
  // Weights: cores per node; a topology that names no cores at all weighs nodes equally.
  std::vector<std::size_t> w(n);
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += (w[i] = topology.nodes[i].cores);
  if (total == 0) {
    std::fill(w.begin(), w.end(), std::size_t{1});
    total = n;
  }
  // Largest remainders (Hamilton): floor(H * w_i / total) each, then one more head to
  // the nodes with the largest remainders, ties to the lower node index. Integer only,
  // so the result is exact and the same on every machine.
  std::vector<std::size_t> count(n);
  std::vector<std::size_t> remainder(n);
  std::size_t given = 0;
  for (std::size_t i = 0; i < n; ++i) {
    count[i] = kv_heads * w[i] / total;
    remainder[i] = kv_heads * w[i] % total;
    given += count[i];
  }
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return remainder[a] > remainder[b]; });
  for (std::size_t j = 0; given < kv_heads; ++j, ++given) ++count[order[j % n]];
  std::size_t at = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = {i, at, at + count[i]};
    at += count[i];
  }
  return out;
}

std::vector<double> node_byte_shares(const Topology& topology, Placement placement, std::size_t kv_heads,
                                     std::size_t kv_begin, std::size_t kv_end, std::size_t local_node) {
  const std::size_t n = topology.nodes.size();
  kv_end = std::min(kv_end, kv_heads);
  if (kv_begin >= kv_end)
    throw Error(ErrorCode::invalid_argument,
                "kv_begin=" + std::to_string(kv_begin) + ", kv_end=" + std::to_string(kv_end) +
                    ": the KV-head range must be non-empty within [0, kv_heads=" + std::to_string(kv_heads) + ")");
  if (local_node >= n)
    throw Error(ErrorCode::invalid_argument, "local_node=" + std::to_string(local_node) +
                                                 " is out of range: must be in [0, " + std::to_string(n) + ")");
  std::vector<double> share(n, 0.0);
  switch (placement) {
    case Placement::local:
      share[local_node] = 1.0;
      break;
    case Placement::interleave:
      for (double& s : share) s = 1.0 / double(n);
      break;
    case Placement::by_head:
      for (const HeadRange& r : assign_heads(topology, kv_heads)) {
        const std::size_t b = std::max(r.begin, kv_begin), e = std::min(r.end, kv_end);
        if (b < e) share[r.node] = double(e - b) / double(kv_end - kv_begin);
      }
      break;
  }
  return share;
}

}  // namespace sparq
