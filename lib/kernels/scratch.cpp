#include "kernels/scratch.hpp"

namespace sparq {
namespace {

std::atomic<std::uint64_t> next_generation{1};

template <class T>
std::size_t capacity_bytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}

}  // namespace

Workspace::Workspace() : impl_(std::make_unique<Impl>()) {
  impl_->generation = next_generation.fetch_add(1);
}

Workspace::~Workspace() = default;

std::size_t Workspace::bytes() const {
  const std::lock_guard lock(impl_->mutex);
  std::size_t n = 0;
  for (const auto& [id, slot] : impl_->slots) n += slot->bytes();
  return n;
}

std::size_t Workspace::slots() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->slots.size();
}

void Workspace::release() {
  const std::lock_guard lock(impl_->mutex);
  impl_->slots.clear();
  impl_->generation = next_generation.fetch_add(1);
}

namespace kernels {

std::size_t ThreadScratch::bytes() const noexcept {
  const UnitScratch& u = unit;
  const SparqSelectScratch& s = u.select;
  std::size_t n = capacity_bytes(dense_work) + capacity_bytes(tile);
  n += capacity_bytes(u.magnitude) + capacity_bytes(u.order) + capacity_bytes(u.rows) +
       capacity_bytes(u.head_uses_row) + capacity_bytes(u.qsel) + capacity_bytes(u.z) + capacity_bytes(u.chunk_max) +
       capacity_bytes(u.chunk_sum) + capacity_bytes(u.weights) + capacity_bytes(u.norm_max) +
       capacity_bytes(u.norm_sum) + capacity_bytes(u.selected) + capacity_bytes(u.positions) +
       capacity_bytes(u.member) + capacity_bytes(u.cursor) + capacity_bytes(u.alpha) + capacity_bytes(u.q2) +
       capacity_bytes(u.parts) + capacity_bytes(u.y);
  for (const auto& list : u.selected) n += capacity_bytes(list);
  n += capacity_bytes(s.keys) + capacity_bytes(s.bins) + capacity_bytes(s.hist) + capacity_bytes(s.total) +
       capacity_bytes(s.tmp) + capacity_bytes(s.cand_pos) + capacity_bytes(s.cand_key) + capacity_bytes(s.counts) +
       capacity_bytes(s.cand_counts) + capacity_bytes(s.alpha_parts) + capacity_bytes(s.alpha_scale);
  return n;
}

ThreadScratch& thread_scratch(Workspace::Impl* ws) {
  if (!ws) {
    thread_local ThreadScratch own;  // the default: lives as long as the thread
    return own;
  }
  // The last slot this thread used, so a lookup per chunk takes no lock.
  thread_local std::uint64_t cached_generation = 0;
  thread_local ThreadScratch* cached = nullptr;
  if (cached_generation == ws->generation) return *cached;
  const std::lock_guard lock(ws->mutex);
  auto& slot = ws->slots[std::this_thread::get_id()];
  if (!slot) slot = std::make_unique<ThreadScratch>();
  cached_generation = ws->generation;
  cached = slot.get();
  return *slot;
}

std::byte* aligned_bytes(std::vector<std::byte>& buf, std::size_t bytes) {
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  const auto addr = reinterpret_cast<std::uintptr_t>(buf.data());
  return buf.data() + (64 - addr % 64) % 64;
}

}  // namespace kernels
}  // namespace sparq
