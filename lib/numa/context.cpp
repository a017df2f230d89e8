#include "numa/context.hpp"

#include <algorithm>

namespace sparq::numa {

namespace {

std::mutex g_mutex;
std::shared_ptr<const NumaContext> g_override;

std::shared_ptr<const NumaContext> system_context() {
  static const std::shared_ptr<const NumaContext> ctx =
      std::make_shared<NumaContext>(Topology::this_system(), make_hwloc_binder(), make_tbb_arena_factory());
  return ctx;
}

}  // namespace

NumaContext::NumaContext(Topology topology, std::shared_ptr<MemoryBinder> binder, std::shared_ptr<ArenaFactory> arenas)
    : topology_(std::move(topology)), binder_(std::move(binder)), factory_(std::move(arenas)) {}

const NodeArenas& NumaContext::arenas() const {
  std::call_once(arenas_once_, [&] { arenas_ = std::make_unique<NodeArenas>(topology_, *factory_); });
  return *arenas_;
}

std::shared_ptr<const NumaContext> current_context() {
  {
    std::lock_guard lock(g_mutex);
    if (g_override) return g_override;
  }
  return system_context();
}

ScopedContext::ScopedContext(std::shared_ptr<const NumaContext> context) {
  std::lock_guard lock(g_mutex);
  previous_ = std::exchange(g_override, std::move(context));
}

ScopedContext::~ScopedContext() {
  std::lock_guard lock(g_mutex);
  g_override = std::move(previous_);
}

std::vector<HeadRange> node_head_ranges(const NumaContext& context, std::size_t kv_heads, std::size_t kv_begin,
                                        std::size_t kv_end) {
  std::vector<HeadRange> out;
  for (HeadRange r : assign_heads(context.topology(), kv_heads)) {
    r.begin = std::max(r.begin, kv_begin);
    r.end = std::min(r.end, kv_end);
    if (r.begin < r.end) out.push_back(r);
  }
  return out;
}

void for_each_node_heads(const KVCache& cache, std::size_t kv_begin, std::size_t kv_end,
                         const std::function<void(const HeadRange&)>& f) {
  kv_end = std::min(kv_end, cache.config().kv_heads);
  if (kv_begin >= kv_end) return;
  if (cache.config().placement != Placement::by_head) {
    f(HeadRange{kNoNode, kv_begin, kv_end});
    return;
  }
  const std::shared_ptr<const NumaContext> ctx = current_context();
  const std::vector<HeadRange> ranges = node_head_ranges(*ctx, cache.config().kv_heads, kv_begin, kv_end);
  ctx->arenas().run(ranges, f);
}

}  // namespace sparq::numa
