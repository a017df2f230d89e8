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
#include "cache/block_pool.hpp"
#include "cache/element.hpp"
#include "common/checked_math.hpp"
#include "sparq/error.hpp"

namespace sparq {

namespace {

struct LayerState {
  // Written by the sequence's writer through std::atomic_ref, so that length() may read
  // it from any thread at any time.
  std::size_t length = 0;
  std::vector<std::byte*> blocks;  // [n_blocks][kv_heads]
  // [n_blocks][kv_heads] the blocks' d-major key copies (BlockPool::d_major), kept in
  // step with `blocks` when the layout has them (LayerView::d_major_blocks points here).
  std::vector<std::byte*> d_major;
  std::vector<double> value_sum;  // [kv_heads][d], sum of all stored value rows
  std::vector<float> value_mean;  // [kv_heads][d]
};

struct Sequence {
  std::vector<LayerState> layers;
  // Reader/writer detection (not a lock): see "Thread safety" in the header.
  std::atomic<int> readers{0};
  std::atomic<bool> writing{false};
};

std::string seq_name(SeqId s) {
  return "sequence " + std::to_string(s);
}

std::size_t blocks_for(std::size_t tokens, std::size_t b) {
  return tokens / b + (tokens % b != 0);
}

void set_length(LayerState& st, std::size_t n) {
  std::atomic_ref(st.length).store(n, std::memory_order_relaxed);
}

// Bytes of a sequence's own tables (MemoryUsage::metadata).
std::size_t table_bytes(const Sequence& seq) {
  std::size_t n = 0;
  for (const LayerState& st : seq.layers)
    n += (st.blocks.capacity() + st.d_major.capacity()) * sizeof(std::byte*) + st.value_sum.size() * sizeof(double) +
         st.value_mean.size() * sizeof(float);
  return n;
}

// What one layer of an append takes from the pool: blocks [have, need) per head, and a
// private copy of the partly filled last block when it is shared with a fork.
struct LayerPlan {
  std::size_t have = 0;
  std::size_t need = 0;
  bool cow = false;
};

}  // namespace

struct KVCache::Impl {
  CacheConfig config;
  BlockLayout layout;
  BlockPool pool;
  mutable std::shared_mutex map_mutex;
  std::unordered_map<SeqId, std::unique_ptr<Sequence>> sequences;
  SeqId next_id = 1;
  // Sum of table_bytes() over all sequences, kept by their writers: memory_usage() reads
  // it instead of tables that another thread may be growing.
  std::atomic<std::size_t> tables{0};

  explicit Impl(const CacheConfig& c)
      : config(c),
        layout(BlockLayout::for_config(c)),
        pool(layout, pool_blocks(c), c.kv_heads, make_block_placement(c.placement, c.kv_heads)) {}

  std::size_t d() const { return config.head_dim; }
  std::size_t heads() const { return config.kv_heads; }
  std::size_t B() const { return config.block_tokens; }

  // Looks a sequence up under the map lock held by the caller.
  Sequence& find_locked(SeqId s) const {
    auto it = sequences.find(s);
    if (it == sequences.end())
      throw Error(ErrorCode::unknown_sequence, seq_name(s) + " is not in the cache (never added, or removed)");
    return *it->second;
  }

  void check_layer(std::size_t layer) const {
    if (layer >= config.layers)
      throw Error(ErrorCode::invalid_argument, "layer=" + std::to_string(layer) + " is out of range: must be in [0, " +
                                                   std::to_string(config.layers - 1) + "]");
  }

  // Writer access to one sequence: fails rather than races when another writer or a
  // reader holds it. Released by the guard's destructor.
  struct WriteGuard {
    Sequence* seq;
    ~WriteGuard() { seq->writing.store(false); }
  };
  WriteGuard begin_write(SeqId s) const {
    std::shared_lock lock(map_mutex);
    Sequence& seq = find_locked(s);
    bool expected = false;
    if (!seq.writing.compare_exchange_strong(expected, true))
      throw Error(ErrorCode::concurrent_use, seq_name(s) + " is already being modified by another thread");
    if (seq.readers.load() != 0) {
      seq.writing.store(false);
      throw Error(ErrorCode::concurrent_use, seq_name(s) + " is being read (decode) by another thread");
    }
    return WriteGuard{&seq};
  }

  // Reader access to one sequence (decode, view, fork): fails rather than races when a
  // writer holds it; the caller gives it back by decrementing seq.readers.
  Sequence& begin_read(SeqId s) const {
    std::shared_lock lock(map_mutex);
    Sequence& seq = find_locked(s);
    seq.readers.fetch_add(1);
    if (seq.writing.load()) {
      seq.readers.fetch_sub(1);
      throw Error(ErrorCode::concurrent_use,
                  seq_name(s) + " is being modified by another thread; it cannot be read now");
    }
    return seq;
  }

  // Keeps `tables` in step with a sequence whose tables took `before` bytes.
  void account(std::size_t before, const Sequence& seq) {
    const std::size_t after = table_bytes(seq);
    if (after >= before)
      tables.fetch_add(after - before, std::memory_order_relaxed);
    else
      tables.fetch_sub(before - after, std::memory_order_relaxed);
  }

  std::byte* key_s(std::byte* blk, std::size_t off) const {
    return blk + layout.k_s_major_offset + off * layout.row_bytes;
  }
  std::byte* val(std::byte* blk, std::size_t off) const { return blk + layout.v_offset + off * layout.row_bytes; }

  // Sum of the first `rows` stored value rows of a block into out[d].
  void sum_rows(std::byte* blk, std::size_t rows, double* out) const {
    std::fill(out, out + d(), 0.0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < d(); ++i) out[i] += element::load(val(blk, r), i, config.dtype);
  }

  // Makes a block's value sum cover exactly its first `rows` rows (before writing row
  // `rows` into a block whose sum covered more or fewer rows, e.g. after a truncate).
  void sync_block_sum(std::byte* blk, std::size_t rows) const {
    BlockHeader& h = pool.header(blk);
    if (h.fill == rows && rows != 0) return;  // a fresh block's sum region is uninitialized
    sum_rows(blk, rows, pool.value_sum(blk));
    h.fill = static_cast<std::uint32_t>(rows);
  }

  // Copies the first `rows` rows of every region of `src` into `dst` (copy-on-write).
  void copy_rows(const std::byte* src, std::byte* dst, std::size_t rows) const {
    const std::size_t n = rows * layout.row_bytes;
    if (layout.k_s_major_offset != LayerView::kNoRegion)
      std::memcpy(dst + layout.k_s_major_offset, src + layout.k_s_major_offset, n);
    if (layout.d_major_rows) {
      const std::size_t stride = pool.d_major_stride();
      for (std::size_t i = 0; i < d(); ++i)
        std::memcpy(pool.d_major(dst) + i * stride, pool.d_major(src) + i * stride, rows * size_of(config.dtype));
    }
    std::memcpy(dst + layout.v_offset, src + layout.v_offset, n);
    sum_rows(dst, rows, pool.value_sum(dst));
    pool.header(dst).fill = static_cast<std::uint32_t>(rows);
  }

  // Brings st.d_major in step with st.blocks from block entry `from` on.
  void track_d_major(LayerState& st, std::size_t from) const {
    if (!layout.d_major_rows) return;
    st.d_major.resize(st.blocks.size());
    for (std::size_t i = from; i < st.blocks.size(); ++i) st.d_major[i] = pool.d_major(st.blocks[i]);
  }

  void update_mean(LayerState& st) const {
    st.value_mean.resize(heads() * d());
    for (std::size_t i = 0; i < st.value_mean.size(); ++i)
      st.value_mean[i] = st.length ? static_cast<float>(st.value_sum[i] / double(st.length)) : 0.0f;
  }

  LayerPlan plan_layer(const LayerState& st, std::size_t n) const {
    LayerPlan p;
    p.have = blocks_for(st.length, B());
    p.need = blocks_for(st.length + n, B());
    // Copy-on-write: the partly filled last block is shared with a fork. Nobody can start
    // sharing it meanwhile (forking this sequence waits for its writer), so a block seen
    // unshared stays unshared until the append is done.
    p.cow = st.length % B() != 0 && std::any_of(st.blocks.end() - heads(), st.blocks.end(), [this](const std::byte* b) {
              return pool.header(b).refcount.load() > 1;
            });
    return p;
  }

  // Appends n tokens to `layers` consecutive layers from `first`, all or none: every
  // block all of them need is taken from the pool in one step (atomically against other
  // appends) and every table grown before the first write, so a failure (pool exhausted,
  // the system refusing memory) leaves the sequence as it was. Layer l's keys and values
  // start at l * per_layer floats.
  void append_layers(const std::string& what, Sequence& seq, std::size_t first, std::size_t layers, const float* keys,
                     const float* values, std::size_t per_layer, std::size_t n) {
    const std::size_t H = heads();
    std::vector<LayerPlan> plans(layers);
    std::vector<std::size_t> block_heads;  // per block to take: its KV head, layer after layer
    for (std::size_t l = 0; l < layers; ++l) {
      const LayerPlan p = plans[l] = plan_layer(seq.layers[first + l], n);
      for (std::size_t b = p.have; b < p.need + p.cow; ++b)
        for (std::size_t h = 0; h < H; ++h) block_heads.push_back(h);
    }
    std::vector<std::byte*> fresh = pool.acquire(block_heads, what.c_str());  // may throw: nothing changed yet
    const std::size_t tables_before = table_bytes(seq);
    try {
      for (std::size_t l = 0; l < layers; ++l) {
        LayerState& st = seq.layers[first + l];
        st.blocks.reserve(plans[l].need * H);
        if (layout.d_major_rows) st.d_major.reserve(plans[l].need * H);
      }
    } catch (...) {
      for (std::size_t i = 0; i < fresh.size(); ++i) pool.release(fresh[i], block_heads[i]);
      account(tables_before, seq);
      throw;
    }
    // From here on nothing throws.
    std::size_t at = 0;
    for (std::size_t l = 0; l < layers; ++l) {
      commit_layer(seq.layers[first + l], plans[l], fresh.data() + at, keys + l * per_layer, values + l * per_layer, n);
      at += (plans[l].need - plans[l].have + plans[l].cow) * H;
    }
    account(tables_before, seq);
  }

  // Writes n tokens into a layer with the blocks its plan took (new blocks first, then the
  // copies of a shared last block); the layer's tables have room for them.
  void commit_layer(LayerState& st, const LayerPlan& p, std::byte* const* fresh, const float* keys, const float* values,
                    std::size_t n) noexcept {
    const std::size_t H = heads(), D = d(), Bt = B();
    const std::size_t off0 = st.length % Bt;
    if (p.cow) {
      for (std::size_t h = 0; h < H; ++h) {
        std::byte*& slot = st.blocks[(p.have - 1) * H + h];
        std::byte* copy = fresh[(p.need - p.have) * H + h];
        copy_rows(slot, copy, off0);
        pool.release(slot, h);
        slot = copy;
      }
    }
    st.blocks.insert(st.blocks.end(), fresh, fresh + (p.need - p.have) * H);
    track_d_major(st, (p.cow ? p.have - 1 : p.have) * H);

    const DType t = config.dtype;
    const std::size_t eb = size_of(t);
    for (std::size_t tok = 0; tok < n; ++tok) {
      const std::size_t pos = st.length + tok;
      const std::size_t b = pos / Bt, off = pos % Bt;
      for (std::size_t h = 0; h < H; ++h) {
        std::byte* blk = st.blocks[b * H + h];
        const float* k = keys + (tok * H + h) * D;
        const float* v = values + (tok * H + h) * D;
        sync_block_sum(blk, off);
        if (layout.k_s_major_offset != LayerView::kNoRegion)
          for (std::size_t i = 0; i < D; ++i) element::store(key_s(blk, off), i, t, k[i]);
        if (layout.d_major_rows) {
          std::byte* col = st.d_major[b * H + h] + off * eb;
          for (std::size_t i = 0; i < D; ++i) element::store(col + i * pool.d_major_stride(), 0, t, k[i]);
        }
        double* bsum = pool.value_sum(blk);
        double* lsum = st.value_sum.data() + h * D;
        for (std::size_t i = 0; i < D; ++i) {
          element::store(val(blk, off), i, t, v[i]);
          const double stored = element::load(val(blk, off), i, t);
          bsum[i] += stored;
          lsum[i] += stored;
        }
        pool.header(blk).fill = static_cast<std::uint32_t>(off + 1);
      }
    }
    set_length(st, st.length + n);
    update_mean(st);
  }
};

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

void KVCache::append(SeqId s, std::size_t layer, std::span<const float> keys, std::span<const float> values,
                     std::size_t n_tokens) {
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
  impl_->append_layers(what, *guard.seq, layer, 1, keys.data(), values.data(), keys.size(), n_tokens);
}

void KVCache::append_all_layers(SeqId s, std::span<const float> keys, std::span<const float> values,
                                std::size_t n_tokens) {
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
  impl_->append_layers(what, *guard.seq, 0, L, keys.data(), values.data(), keys.size() / L, n_tokens);
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
  v.blocks = st.blocks.data();
  v.k_s_major_offset = impl_->layout.k_s_major_offset;
  v.d_major_blocks = st.d_major.empty() ? nullptr : st.d_major.data();
  v.d_major_stride = impl_->pool.d_major_stride() / size_of(impl_->config.dtype);
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
  if (l.k_s_major_offset != LayerView::kNoRegion) m.k_s_major = n * l.k_region;
  m.k_d_major = n * l.d_major_rows * l.d_major_run;
  m.values = n * l.k_region;
  // Each block's metadata, and its padding to a whole page, and the sequences' tables.
  m.metadata = n * (l.meta_bytes + l.bytes - l.k_region * (1 + has_s_major(impl_->config.layouts))) +
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
