// KVCache: sequences as lists of pool blocks, per layer; see include/sparq/kv_cache.hpp.
#include "sparq/kv_cache.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "cache/append_input.hpp"
#include "cache/element.hpp"
#include "cache/kv_cache_impl.hpp"

namespace sparq {

KVCache::KVCache(const CacheConfig& config) {
  config.validate();
  impl_ = std::make_unique<Impl>(config);
}

KVCache::~KVCache() {
  // Blocks are freed by the pool; sequences just drop their pointers.
}

const CacheConfig& KVCache::config() const noexcept {
  return impl_->config;
}

SeqId KVCache::add_sequence() {
  auto seq = std::make_unique<Sequence>();
  seq->layers.resize(impl_->config.layers);
  for (auto& l : seq->layers) {
    l.value_sum.assign(impl_->heads() * impl_->d(), 0.0);
    l.value_mean.assign(impl_->heads() * impl_->d(), 0.0f);
  }
  const std::size_t bytes = table_bytes(*seq);
  std::unique_lock lock(impl_->map_mutex);
  const SeqId id = impl_->next_id;
  impl_->sequences.emplace(id, std::move(seq));  // may throw: nothing changed
  ++impl_->next_id;
  impl_->tables.fetch_add(bytes, std::memory_order_relaxed);
  return id;
}

void KVCache::remove_sequence(SeqId s) {
  std::unique_ptr<Sequence> seq;
  {
    std::unique_lock lock(impl_->map_mutex);
    Sequence& found = impl_->find_locked(s);
    if (found.writing.load() || found.readers.load() != 0)
      throw Error(ErrorCode::concurrent_use, seq_name(s) + " cannot be removed while another thread uses it");
    auto it = impl_->sequences.find(s);
    seq = std::move(it->second);
    impl_->sequences.erase(it);
  }
  impl_->tables.fetch_sub(table_bytes(*seq), std::memory_order_relaxed);
  for (auto& l : seq->layers)
    for (std::size_t i = 0; i < l.blocks.size(); ++i) impl_->pool.release(l.blocks[i], i % impl_->heads());
}

bool KVCache::contains(SeqId s) const {
  std::shared_lock lock(impl_->map_mutex);
  return impl_->sequences.count(s) != 0;
}

std::vector<SeqId> KVCache::sequences() const {
  std::shared_lock lock(impl_->map_mutex);
  std::vector<SeqId> out;
  for (const auto& [id, _] : impl_->sequences) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
Source source_of(const Rows& r) {
  return {static_cast<const std::byte*>(r.data()), r.dtype()};
}
}  // namespace

void KVCache::append(SeqId s, std::size_t layer, Rows keys, Rows values, std::size_t n_tokens) {
  impl_->check_layer(layer);
  const append_input::Shape shape{std::nullopt, n_tokens, impl_->heads(), impl_->d()};
  append_input::check_size(keys, "keys", shape);
  append_input::check_size(values, "values", shape);
  append_input::check_storable(keys, "keys", shape, impl_->config.dtype);
  append_input::check_storable(values, "values", shape, impl_->config.dtype);
  auto guard = impl_->begin_write(s);
  if (n_tokens == 0) return;
  const std::string what =
      "append of " + std::to_string(n_tokens) + " tokens to layer " + std::to_string(layer) + " of " + seq_name(s);
  const AppendPart part{guard.seq, layer, 1, source_of(keys), source_of(values), keys.size()};
  impl_->append_parts(what, {&part, 1}, n_tokens);
}

void KVCache::append_all_layers(SeqId s, Rows keys, Rows values, std::size_t n_tokens) {
  const std::size_t L = impl_->config.layers;
  const append_input::Shape shape{L, n_tokens, impl_->heads(), impl_->d()};
  append_input::check_size(keys, "keys", shape);
  append_input::check_size(values, "values", shape);
  append_input::check_storable(keys, "keys", shape, impl_->config.dtype);
  append_input::check_storable(values, "values", shape, impl_->config.dtype);
  auto guard = impl_->begin_write(s);
  if (n_tokens == 0) return;
  const std::string what =
      "append of " + std::to_string(n_tokens) + " tokens to all " + std::to_string(L) + " layers of " + seq_name(s);
  const AppendPart part{guard.seq, 0, L, source_of(keys), source_of(values), keys.size() / L};
  impl_->append_parts(what, {&part, 1}, n_tokens);
}

void KVCache::append_batch(std::span<const SeqId> seqs, std::size_t layer, Rows keys, Rows values) {
  impl_->check_layer(layer);
  const append_input::Shape shape{std::nullopt, seqs.size(), impl_->heads(), impl_->d(), "n_seqs", "batch row"};
  append_input::check_size(keys, "keys", shape);
  append_input::check_size(values, "values", shape);
  append_input::check_storable(keys, "keys", shape, impl_->config.dtype);
  append_input::check_storable(values, "values", shape, impl_->config.dtype);
  std::unordered_map<SeqId, std::size_t> first_at;
  for (std::size_t b = 0; b < seqs.size(); ++b)
    if (const auto [it, fresh] = first_at.try_emplace(seqs[b], b); !fresh)
      throw Error(ErrorCode::invalid_argument, "seqs[" + std::to_string(b) + "]=" + std::to_string(seqs[b]) +
                                                   " repeats seqs[" + std::to_string(it->second) +
                                                   "]: a batch appends one token per sequence, each at most once");
  if (seqs.empty()) return;
  // Claim every sequence before the first write; any refusal releases those claimed.
  std::vector<AppendPart> parts;
  parts.reserve(seqs.size());
  struct Release {
    std::vector<AppendPart>& parts;
    ~Release() {
      for (const AppendPart& p : parts) p.seq->writing.store(false);
    }
  } release{parts};
  const std::size_t row = impl_->heads() * impl_->d();
  const Source k = source_of(keys), v = source_of(values);
  for (std::size_t b = 0; b < seqs.size(); ++b)
    parts.push_back(
        AppendPart{&impl_->claim_write(seqs[b]), layer, 1, {k.at(b * row), k.type}, {v.at(b * row), v.type}, 0});
  const std::string what =
      "append of one token to each of " + std::to_string(seqs.size()) + " sequences at layer " + std::to_string(layer);
  impl_->append_parts(what, parts, 1);
}

void KVCache::truncate(SeqId s, std::size_t n_tokens) {
  auto guard = impl_->begin_write(s);
  Sequence& seq = *guard.seq;
  std::size_t shortest = ~std::size_t{0};
  for (const auto& st : seq.layers) shortest = std::min(shortest, st.length);
  if (n_tokens > shortest)
    throw Error(ErrorCode::invalid_argument, "truncate by n_tokens=" + std::to_string(n_tokens) +
                                                 " exceeds the length " + std::to_string(shortest) +
                                                 " of the shortest layer of " + seq_name(s));
  if (n_tokens == 0) return;
  const std::size_t H = impl_->heads(), D = impl_->d(), Bt = impl_->B();
  std::vector<double> partial(D);  // allocated before the first change: nothing below throws
  const std::size_t tables_before = table_bytes(seq);
  for (auto& st : seq.layers) {
    const std::size_t new_len = st.length - n_tokens;
    const std::size_t keep = blocks_for(new_len, Bt);
    for (std::size_t i = keep * H; i < st.blocks.size(); ++i) impl_->pool.release(st.blocks[i], i % H);
    st.blocks.resize(keep * H);
    impl_->track_d_major(st, st.blocks.size());
    set_length(st, new_len);
    // Recompute the exact sum: full blocks' own sums, plus the rows kept of the last
    // block (which may be shared with a fork, so its own sum may cover more rows).
    std::fill(st.value_sum.begin(), st.value_sum.end(), 0.0);
    for (std::size_t b = 0; b < keep; ++b) {
      const std::size_t rows = std::min(Bt, new_len - b * Bt);
      for (std::size_t h = 0; h < H; ++h) {
        std::byte* blk = st.blocks[b * H + h];
        const double* sum = impl_->pool.value_sum(blk);
        if (rows != impl_->pool.header(blk).fill) {
          impl_->sum_rows(blk, rows, partial.data());
          sum = partial.data();
        }
        for (std::size_t i = 0; i < D; ++i) st.value_sum[h * D + i] += sum[i];
      }
    }
    impl_->update_mean(st);
  }
  impl_->account(tables_before, seq);
}

SeqId KVCache::fork(SeqId s) {
  // A reader of the source: it runs beside decodes and other forks of it, and the
  // source's writers wait (concurrent_use) until it is done.
  Sequence& src = impl_->begin_read(s);
  const ReadLock reading(&src.readers);
  auto copy = std::make_unique<Sequence>();
  copy->layers = src.layers;  // may throw std::bad_alloc: nothing shared yet
  const std::size_t bytes = table_bytes(*copy);
  for (auto& st : copy->layers)
    for (const std::byte* b : st.blocks) impl_->pool.retain(b);
  try {
    std::unique_lock lock(impl_->map_mutex);
    const SeqId id = impl_->next_id;
    impl_->sequences.try_emplace(id).first->second = std::move(copy);  // only the node may throw
    ++impl_->next_id;
    impl_->tables.fetch_add(bytes, std::memory_order_relaxed);
    return id;
  } catch (...) {
    // The source still holds every block, so these releases only drop the counts.
    for (auto& st : copy->layers)
      for (std::size_t i = 0; i < st.blocks.size(); ++i) impl_->pool.release(st.blocks[i], i % impl_->heads());
    throw;
  }
}

std::size_t KVCache::length(SeqId s, std::size_t layer) const {
  impl_->check_layer(layer);
  std::shared_lock lock(impl_->map_mutex);
  return std::atomic_ref(impl_->find_locked(s).layers[layer].length).load(std::memory_order_relaxed);
}

LayerView KVCache::view(SeqId s, std::size_t layer) const {
  impl_->check_layer(layer);
  std::shared_lock lock(impl_->map_mutex);
  const LayerState& st = impl_->find_locked(s).layers[layer];
  LayerView v;
  v.length = st.length;
  v.head_dim = impl_->d();
  v.block_tokens = impl_->B();
  v.kv_heads = impl_->heads();
  v.blocks_per_head = blocks_for(st.length, impl_->B());
  v.dtype = impl_->config.dtype;
  v.layouts = impl_->config.layouts;
  v.d_major_type = impl_->config.d_major_type;
  v.blocks = st.blocks.data();
  v.k_s_major_offset = impl_->layout.k_s_major_offset;
  v.row_stride = impl_->layout.row_stride_bytes / size_of(impl_->config.dtype);
  v.d_major_blocks = st.d_major.empty() ? nullptr : st.d_major.data();
  v.d_major_stride = impl_->layout.d_major_elem ? impl_->pool.d_major_stride() / impl_->layout.d_major_elem : 0;
  v.d_major_scales = st.d_major_scales.empty() ? nullptr : st.d_major_scales.data();
  v.v_offset = impl_->layout.v_offset;
  v.block_data_bytes = impl_->layout.data_bytes;
  v.value_mean = st.value_mean.data();
  return v;
}

MemoryUsage KVCache::memory_usage() const {
  MemoryUsage m;
  const BlockLayout& l = impl_->layout;
  m.blocks_in_use = impl_->pool.in_use();
  m.blocks_allocated = impl_->pool.allocated();
  m.blocks_capacity = impl_->pool.capacity();
  const std::size_t n = m.blocks_allocated;
  // A region's bytes: B rows, rounded to whole lines (fused rows: exactly B rows each).
  const bool fused = impl_->config.layouts == KeyLayout::fused;
  const std::size_t region = fused ? impl_->B() * l.row_bytes : l.k_region;
  if (l.k_s_major_offset != LayerView::kNoRegion) m.k_s_major = n * region;
  m.k_d_major = n * l.d_major_rows * l.d_major_run;
  m.values = n * region;
  // Each block's metadata (int8 scales included), its padding to a whole page, and the
  // sequences' tables.
  m.metadata = n * (l.meta_bytes + l.bytes - region * (1 + has_s_major(impl_->config.layouts))) +
               impl_->tables.load(std::memory_order_relaxed);
  return m;
}

std::size_t KVCache::free_blocks() const {
  return impl_->pool.capacity() - impl_->pool.in_use();
}

namespace {
void read_row(const LayerView& v, std::size_t head, std::size_t pos, bool key, std::span<float> out, SeqId s) {
  if (head >= v.kv_heads)
    throw Error(ErrorCode::invalid_argument, "head=" + std::to_string(head) + " is out of range: must be in [0, " +
                                                 std::to_string(v.kv_heads - 1) + "]");
  if (pos >= v.length)
    throw Error(ErrorCode::invalid_argument, "pos=" + std::to_string(pos) + " is out of range: " + seq_name(s) +
                                                 " has length " + std::to_string(v.length) + " in this layer");
  if (out.size() != v.head_dim)
    throw Error(ErrorCode::shape_mismatch,
                "out has " + std::to_string(out.size()) + " floats, expected head_dim=" + std::to_string(v.head_dim));
  for (std::size_t i = 0; i < v.head_dim; ++i) {
    if (!key)
      out[i] = element::load(v.value_row(head, pos), i, v.dtype);
    else if (has_s_major(v.layouts))
      out[i] = element::load(v.key_row(head, pos), i, v.dtype);
    else
      out[i] = element::load(v.key_d_major(head, pos, i), 0, v.dtype);
  }
}
}  // namespace

void KVCache::read_key(SeqId s, std::size_t layer, std::size_t head, std::size_t pos, std::span<float> out) const {
  auto lock = lock_for_read(s);
  read_row(view(s, layer), head, pos, true, out, s);
}

void KVCache::read_value(SeqId s, std::size_t layer, std::size_t head, std::size_t pos, std::span<float> out) const {
  auto lock = lock_for_read(s);
  read_row(view(s, layer), head, pos, false, out, s);
}

KVCache::ReadLock KVCache::lock_for_read(SeqId s) const {
  return ReadLock(&impl_->begin_read(s).readers);
}

KVCache::ReadLock::ReadLock(ReadLock&& other) noexcept : state_(other.state_) {
  other.state_ = nullptr;
}

KVCache::ReadLock::~ReadLock() {
  if (state_) static_cast<std::atomic<int>*>(state_)->fetch_sub(1);
}

}  // namespace sparq
