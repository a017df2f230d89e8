// KVCache appends: plan every layer's blocks, take them from the pool in one step, then
// write (kv_cache_impl.hpp).
#include <algorithm>
#include <cstring>

#include "cache/element.hpp"
#include "cache/kv_cache_impl.hpp"

namespace sparq {

void KVCache::Impl::sum_rows(std::byte* blk, std::size_t rows, double* out) const {
  std::fill(out, out + d(), 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < d(); ++i) out[i] += element::load(val(blk, r), i, config.dtype);
}

void KVCache::Impl::sync_block_sum(std::byte* blk, std::size_t rows) const {
  BlockHeader& h = pool.header(blk);
  if (h.fill == rows && rows != 0) return;  // a fresh block's sum region is uninitialized
  sum_rows(blk, rows, pool.value_sum(blk));
  h.fill = static_cast<std::uint32_t>(rows);
}

void KVCache::Impl::copy_rows(const std::byte* src, std::byte* dst, std::size_t rows) const {
  const std::size_t n = rows * layout.row_stride_bytes;
  if (config.layouts == KeyLayout::fused) {
    std::memcpy(dst, src, n);  // keys and values side by side
  } else {
    if (layout.k_s_major_offset != LayerView::kNoRegion)
      std::memcpy(dst + layout.k_s_major_offset, src + layout.k_s_major_offset, n);
    std::memcpy(dst + layout.v_offset, src + layout.v_offset, n);
  }
  if (layout.d_major_rows) {
    const std::size_t stride = pool.d_major_stride();
    for (std::size_t i = 0; i < d(); ++i)
      std::memcpy(pool.d_major(dst) + i * stride, pool.d_major(src) + i * stride, rows * layout.d_major_elem);
    if (int8_copy()) std::memcpy(pool.d_major_scales(dst), pool.d_major_scales(src), d() * sizeof(float));
  }
  sum_rows(dst, rows, pool.value_sum(dst));
  pool.header(dst).fill = static_cast<std::uint32_t>(rows);
}

LayerPlan KVCache::Impl::plan_layer(const LayerState& st, std::size_t n) const {
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

void KVCache::Impl::append_parts(const std::string& what, std::span<const AppendPart> parts, std::size_t n) {
  const std::size_t H = heads();
  std::vector<std::vector<LayerPlan>> plans(parts.size());
  std::vector<std::size_t> block_heads;  // per block to take: its KV head, part after part, layer after layer
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const AppendPart& part = parts[i];
    plans[i].resize(part.layers);
    for (std::size_t l = 0; l < part.layers; ++l) {
      const LayerPlan p = plans[i][l] = plan_layer(part.seq->layers[part.first + l], n);
      for (std::size_t b = p.have; b < p.need + p.cow; ++b)
        for (std::size_t h = 0; h < H; ++h) block_heads.push_back(h);
    }
  }
  std::vector<std::size_t> tables_before(parts.size());  // allocated before the blocks are taken
  for (std::size_t i = 0; i < parts.size(); ++i) tables_before[i] = table_bytes(*parts[i].seq);
  std::vector<std::byte*> fresh = pool.acquire(block_heads, what.c_str());  // may throw: nothing changed yet
  try {
    for (std::size_t i = 0; i < parts.size(); ++i)
      for (std::size_t l = 0; l < parts[i].layers; ++l) {
        LayerState& st = parts[i].seq->layers[parts[i].first + l];
        const std::size_t need = plans[i][l].need * H;
        st.blocks.reserve(need);
        if (layout.d_major_rows) st.d_major.reserve(need);
        if (int8_copy()) st.d_major_scales.reserve(need);
      }
  } catch (...) {
    for (std::size_t i = 0; i < fresh.size(); ++i) pool.release(fresh[i], block_heads[i]);
    for (std::size_t i = 0; i < parts.size(); ++i) account(tables_before[i], *parts[i].seq);
    throw;
  }
  // From here on nothing throws.
  std::size_t at = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const AppendPart& part = parts[i];
    for (std::size_t l = 0; l < part.layers; ++l) {
      const LayerPlan& p = plans[i][l];
      const Source k{part.keys.at(l * part.per_layer), part.keys.type};
      const Source v{part.values.at(l * part.per_layer), part.values.type};
      commit_layer(part.seq->layers[part.first + l], p, fresh.data() + at, k, v, n);
      at += (p.need - p.have + p.cow) * H;
    }
    account(tables_before[i], *part.seq);
  }
}

void KVCache::Impl::store_row(std::byte* dst, const std::byte* src, DType src_type) const noexcept {
  const DType t = config.dtype;
  if (src_type == t) {
    std::memcpy(dst, src, d() * size_of(t));  // bit for bit (f32: what element::store does too)
    return;
  }
  for (std::size_t i = 0; i < d(); ++i) element::store(dst, i, t, element::load(src, i, src_type));
}

void KVCache::Impl::commit_layer(LayerState& st, const LayerPlan& p, std::byte* const* fresh, Source keys,
                                 Source values, std::size_t n) noexcept {
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
      const std::byte* k = keys.at((tok * H + h) * D);
      const std::byte* v = values.at((tok * H + h) * D);
      sync_block_sum(blk, off);
      if (layout.k_s_major_offset != LayerView::kNoRegion) store_row(key_s(blk, off), k, keys.type);
      if (layout.d_major_rows && !int8_copy()) {
        std::byte* col = st.d_major[b * H + h] + off * eb;
        const std::size_t stride = pool.d_major_stride();
        if (keys.type == t)  // bit for bit, one element per row of the copy
          for (std::size_t i = 0; i < D; ++i) std::memcpy(col + i * stride, k + i * eb, eb);
        else
          for (std::size_t i = 0; i < D; ++i) element::store(col + i * stride, 0, t, element::load(k, i, keys.type));
      }
      store_row(val(blk, off), v, values.type);
      double* bsum = pool.value_sum(blk);
      double* lsum = st.value_sum.data() + h * D;
      for (std::size_t i = 0; i < D; ++i) {
        const double stored = element::load(val(blk, off), i, t);
        bsum[i] += stored;
        lsum[i] += stored;
      }
      pool.header(blk).fill = static_cast<std::uint32_t>(off + 1);
    }
  }
  if (int8_copy())  // per block, once the new keys are in: one scale update per component
    for (std::size_t pos = st.length; pos < st.length + n;) {
      const std::size_t b = pos / Bt, from = pos % Bt, to = std::min(Bt, from + (st.length + n - pos));
      for (std::size_t h = 0; h < H; ++h) quantize_rows(st.blocks[b * H + h], st.d_major[b * H + h], from, to);
      pos += to - from;
    }
  set_length(st, st.length + n);
  update_mean(st);
}

void KVCache::Impl::quantize_rows(std::byte* blk, std::byte* d_major, std::size_t from, std::size_t to) const noexcept {
  float* scale = pool.d_major_scales(blk);
  if (from == 0) std::fill(scale, scale + d(), 0.0f);  // a block's first rows: no earlier scale holds
  const std::size_t stride = pool.d_major_stride();
  for (std::size_t i = 0; i < d(); ++i) {
    auto* row = reinterpret_cast<std::int8_t*>(d_major + i * stride);
    float top = 0.0f;
    for (std::size_t r = from; r < to; ++r)
      top = std::max(top, std::abs(element::load(key_s(blk, r), i, config.dtype)));
    std::size_t first = from;
    if (top > 127.0f * scale[i]) {  // grow the scale; the rows already there are requantized with it
      scale[i] = top / 127.0f;
      first = 0;
    }
    for (std::size_t r = first; r < to; ++r)
      row[r] = element::to_int8(element::load(key_s(blk, r), i, config.dtype), scale[i]);
  }
}

}  // namespace sparq
