// C API: the KV cache (create, sequences, append, read back, memory use).
#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "capi/capi_status.hpp"
#include "capi/handles.hpp"
#include "sparq/kv_cache.hpp"

using namespace sparq;
using capi::guarded;
using capi::require;

namespace {

// The first sparq_cache_config ended at capacity_tokens; d_major_type came after it.
constexpr std::size_t kConfigV1 = offsetof(sparq_cache_config, d_major_type);
constexpr std::size_t kConfigV2 = sizeof(sparq_cache_config);
constexpr std::size_t kUsageV1 = sizeof(sparq_memory_usage);

template <class E>
E enum_field(std::int32_t v, std::int32_t count, const char* name) {
  if (v < 0 || v >= count)
    throw Error(ErrorCode::invalid_argument, std::string("config.") + name + "=" + std::to_string(v) +
                                                 " is not a valid value: must be in [0, " + std::to_string(count - 1) +
                                                 "]");
  return E(v);
}

CacheConfig to_cpp(const sparq_cache_config& c) {
  capi::check_struct_size(c.struct_size, kConfigV1, kConfigV2, "sparq_cache_config");
  CacheConfig out;
  out.layers = c.layers;
  out.kv_heads = c.kv_heads;
  out.head_dim = c.head_dim;
  out.dtype = enum_field<DType>(c.dtype, 3, "dtype");
  out.layouts = enum_field<KeyLayout>(c.layouts, 4, "layouts");
  if (c.struct_size >= kConfigV2) out.d_major_type = enum_field<DMajorType>(c.d_major_type, 2, "d_major_type");
  out.placement = enum_field<Placement>(c.placement, 3, "placement");
  out.block_tokens = c.block_tokens;
  out.capacity_tokens = c.capacity_tokens;
  out.validate();
  return out;
}

// The C enums are numbered as the C++ ones (checked here, once).
static_assert(SPARQ_DTYPE_F16 == int(DType::f16) && SPARQ_DTYPE_BF16 == int(DType::bf16));
static_assert(SPARQ_LAYOUT_S_MAJOR == int(KeyLayout::s_major) && SPARQ_LAYOUT_D_MAJOR == int(KeyLayout::d_major) &&
              SPARQ_LAYOUT_FUSED == int(KeyLayout::fused));
static_assert(SPARQ_D_MAJOR_INT8 == int(DMajorType::int8));
static_assert(SPARQ_PLACEMENT_BY_HEAD == int(Placement::by_head));

KVCache& cache_of(sparq_cache* c) {
  require(c, "cache");
  return c->cache;
}
const KVCache& cache_of(const sparq_cache* c) {
  require(c, "cache");
  return c->cache;
}

// Keys/values of one layer's append (or a batch's): non-NULL, with a size that fits in size_t.
std::size_t append_size(const KVCache& cache, const void* keys, const void* values, std::size_t n_tokens,
                        const char* rule = "n_tokens*kv_heads*head_dim") {
  require(keys, "keys");
  require(values, "values");
  const CacheConfig& c = cache.config();
  return capi::checked_product(n_tokens, c.kv_heads, c.head_dim, rule);
}

// A C buffer of n elements of `dtype` as Rows (f32 floats or 16-bit bit patterns).
Rows rows_of(DType dtype, const void* p, std::size_t n) {
  if (dtype == DType::f32) return std::span(static_cast<const float*>(p), n);
  return {std::span(static_cast<const std::uint16_t*>(p), n), dtype};
}

sparq_status append_typed(sparq_cache* cache, sparq_seq_id seq, size_t layer, const void* keys, const void* values,
                          size_t n_tokens, DType dtype) {
  return guarded([&] {
    KVCache& kv = cache_of(cache);
    const std::size_t n = append_size(kv, keys, values, n_tokens);
    kv.append(seq, layer, rows_of(dtype, keys, n), rows_of(dtype, values, n), n_tokens);
  });
}

}  // namespace

extern "C" {

void sparq_cache_config_init(sparq_cache_config* config) {
  if (!config) return;
  const CacheConfig d;
  *config = sparq_cache_config{};
  config->struct_size = sizeof(sparq_cache_config);
  config->layers = d.layers;
  config->kv_heads = d.kv_heads;
  config->head_dim = d.head_dim;
  config->dtype = std::int32_t(d.dtype);
  config->layouts = std::int32_t(d.layouts);
  config->placement = std::int32_t(d.placement);
  config->block_tokens = d.block_tokens;
  config->capacity_tokens = d.capacity_tokens;
  config->d_major_type = std::int32_t(d.d_major_type);
}

sparq_status sparq_cache_create(const sparq_cache_config* config, sparq_cache** out) {
  return guarded([&] {
    require(config, "config");
    require(out, "out");
    auto c = std::make_unique<sparq_cache>(to_cpp(*config));
    *out = c.release();
  });
}

void sparq_cache_destroy(sparq_cache* cache) {
  delete cache;
}

sparq_status sparq_cache_get_config(const sparq_cache* cache, sparq_cache_config* config) {
  return guarded([&] {
    const KVCache& kv = cache_of(cache);
    require(config, "config");
    capi::check_struct_size(config->struct_size, kConfigV1, kConfigV2, "sparq_cache_config");
    const CacheConfig& c = kv.config();
    config->layers = c.layers;
    config->kv_heads = c.kv_heads;
    config->head_dim = c.head_dim;
    config->dtype = std::int32_t(c.dtype);
    config->layouts = std::int32_t(c.layouts);
    config->placement = std::int32_t(c.placement);
    config->block_tokens = c.block_tokens;
    config->capacity_tokens = c.capacity_tokens;
    if (config->struct_size >= kConfigV2) config->d_major_type = std::int32_t(c.d_major_type);
  });
}

sparq_status sparq_cache_add_sequence(sparq_cache* cache, sparq_seq_id* out) {
  return guarded([&] {
    KVCache& kv = cache_of(cache);
    require(out, "out");
    *out = kv.add_sequence();
  });
}

sparq_status sparq_cache_remove_sequence(sparq_cache* cache, sparq_seq_id seq) {
  return guarded([&] { cache_of(cache).remove_sequence(seq); });
}

sparq_status sparq_cache_fork(sparq_cache* cache, sparq_seq_id seq, sparq_seq_id* out) {
  return guarded([&] {
    KVCache& kv = cache_of(cache);
    require(out, "out");
    *out = kv.fork(seq);
  });
}

sparq_status sparq_cache_truncate(sparq_cache* cache, sparq_seq_id seq, size_t n_tokens) {
  return guarded([&] { cache_of(cache).truncate(seq, n_tokens); });
}

sparq_status sparq_cache_contains(const sparq_cache* cache, sparq_seq_id seq, int* out) {
  return guarded([&] {
    const KVCache& kv = cache_of(cache);
    require(out, "out");
    *out = kv.contains(seq) ? 1 : 0;
  });
}

sparq_status sparq_cache_length(const sparq_cache* cache, sparq_seq_id seq, size_t layer, size_t* out) {
  return guarded([&] {
    const KVCache& kv = cache_of(cache);
    require(out, "out");
    *out = kv.length(seq, layer);
  });
}

sparq_status sparq_cache_append(sparq_cache* cache, sparq_seq_id seq, size_t layer, const float* keys,
                                const float* values, size_t n_tokens) {
  return append_typed(cache, seq, layer, keys, values, n_tokens, DType::f32);
}

sparq_status sparq_cache_append_f16(sparq_cache* cache, sparq_seq_id seq, size_t layer, const uint16_t* keys,
                                    const uint16_t* values, size_t n_tokens) {
  return append_typed(cache, seq, layer, keys, values, n_tokens, DType::f16);
}

sparq_status sparq_cache_append_bf16(sparq_cache* cache, sparq_seq_id seq, size_t layer, const uint16_t* keys,
                                     const uint16_t* values, size_t n_tokens) {
  return append_typed(cache, seq, layer, keys, values, n_tokens, DType::bf16);
}

sparq_status sparq_cache_append_batch(sparq_cache* cache, size_t layer, const sparq_seq_id* seqs, size_t n_seqs,
                                      int32_t dtype, const void* keys, const void* values) {
  return guarded([&] {
    KVCache& kv = cache_of(cache);
    require(seqs, "seqs");
    if (dtype < 0 || dtype > 2)
      throw Error(ErrorCode::invalid_argument,
                  "dtype=" + std::to_string(dtype) + " is not a valid sparq_dtype: must be in [0, 2]");
    const std::size_t n = append_size(kv, keys, values, n_seqs, "n_seqs*kv_heads*head_dim");
    const auto t = DType(dtype);
    static_assert(sizeof(sparq_seq_id) == sizeof(SeqId));
    kv.append_batch(std::span(seqs, n_seqs), layer, rows_of(t, keys, n), rows_of(t, values, n));
  });
}

sparq_status sparq_cache_read_key(const sparq_cache* cache, sparq_seq_id seq, size_t layer, size_t head, size_t pos,
                                  float* out) {
  return guarded([&] {
    const KVCache& kv = cache_of(cache);
    require(out, "out");
    kv.read_key(seq, layer, head, pos, std::span(out, kv.config().head_dim));
  });
}

sparq_status sparq_cache_read_value(const sparq_cache* cache, sparq_seq_id seq, size_t layer, size_t head, size_t pos,
                                    float* out) {
  return guarded([&] {
    const KVCache& kv = cache_of(cache);
    require(out, "out");
    kv.read_value(seq, layer, head, pos, std::span(out, kv.config().head_dim));
  });
}

sparq_status sparq_cache_memory_usage(const sparq_cache* cache, sparq_memory_usage* out) {
  return guarded([&] {
    const KVCache& kv = cache_of(cache);
    require(out, "out");
    capi::check_struct_size(out->struct_size, kUsageV1, kUsageV1, "sparq_memory_usage");
    const MemoryUsage m = kv.memory_usage();
    out->k_s_major = m.k_s_major;
    out->k_d_major = m.k_d_major;
    out->values = m.values;
    out->metadata = m.metadata;
    out->total = m.total();
    out->blocks_in_use = m.blocks_in_use;
    out->blocks_allocated = m.blocks_allocated;
    out->blocks_capacity = m.blocks_capacity;
  });
}

}  // extern "C"
