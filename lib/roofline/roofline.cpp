// The transfer model of DESIGN §1 and placing measurements on the roofline.
#include "sparq/tools/roofline.hpp"

#include <algorithm>
#include <variant>

namespace sparq {

std::uint64_t dense_model_bytes(std::size_t seq_len, std::size_t head_dim, DType dtype) noexcept {
  return 2ull * seq_len * head_dim * size_of(dtype);
}

SparqModelBytes sparq_model_phase_bytes(std::size_t seq_len, std::size_t head_dim, DType dtype, const SparQResolved& p,
                                        std::size_t group, const StorageModel& storage) noexcept {
  const std::uint64_t b = size_of(dtype);
  SparqModelBytes m;
  // k >= S: every row is fetched, α = 1 exactly; no approximate scores and no v̄ needed.
  if (p.k >= seq_len) {
    m.stage2 = dense_model_bytes(seq_len, head_dim, dtype);
    return m;
  }
  const std::size_t g = p.gqa == GqaSelection::per_head ? std::max<std::size_t>(group, 1) : 1;
  const std::uint64_t rows = std::min<std::uint64_t>(std::uint64_t(g) * p.r, head_dim);
  const std::uint64_t k_eff = std::min<std::uint64_t>(p.k, seq_len);
  const std::uint64_t fetched = std::min<std::uint64_t>(g * k_eff, seq_len);
  if (storage.d_major_type == DMajorType::int8) {
    const std::uint64_t B = std::max<std::size_t>(storage.block_tokens, 1);
    const std::uint64_t blocks = (seq_len + B - 1) / B;  // one f32 scale per selected row per block
    m.stage1 = seq_len * rows + blocks * rows * sizeof(float);
  } else {
    m.stage1 = seq_len * rows * b;
  }
  m.stage2 = 2 * fetched * head_dim * b;
  if (p.reallocation) m.reallocation = 4ull * head_dim;
  return m;
}

std::uint64_t sparq_model_bytes(std::size_t seq_len, std::size_t head_dim, DType dtype, const SparQResolved& p,
                                std::size_t group, const StorageModel& storage) noexcept {
  return sparq_model_phase_bytes(seq_len, head_dim, dtype, p, group, storage).total();
}

std::uint64_t dense_model_flops(std::size_t seq_len, std::size_t head_dim, std::size_t group) noexcept {
  return 4ull * group * seq_len * head_dim;
}

std::uint64_t sparq_model_flops(std::size_t seq_len, std::size_t head_dim, const SparQResolved& p,
                                std::size_t group) noexcept {
  if (p.k >= seq_len) return dense_model_flops(seq_len, head_dim, group);
  const std::uint64_t k_eff = p.k;
  return 2ull * group * seq_len * p.r + 4ull * group * k_eff * head_dim;
}

ModelCost model_cost(const Method& method, const ModelShape& shape, std::size_t seq_len, DType dtype,
                     std::size_t sequences, const StorageModel& storage) {
  shape.validate();
  const std::size_t g = shape.group();
  ModelCost per_head;
  if (std::holds_alternative<Dense>(method)) {
    per_head = {dense_model_bytes(seq_len, shape.head_dim, dtype), dense_model_flops(seq_len, shape.head_dim, g)};
  } else {
    const SparQResolved p = std::get<SparQ>(method).resolve(shape.head_dim, seq_len, g);
    per_head = {sparq_model_bytes(seq_len, shape.head_dim, dtype, p, g, storage),
                sparq_model_flops(seq_len, shape.head_dim, p, g)};
  }
  const std::uint64_t n = std::uint64_t(shape.kv_heads) * sequences;
  return {per_head.bytes * n, per_head.flops * n};
}

RooflinePoint roofline_point(std::uint64_t bytes, std::uint64_t flops, double seconds,
                             const Ceilings& ceilings) noexcept {
  RooflinePoint p;
  p.seconds = seconds;
  p.bytes = bytes;
  p.flops = flops;
  if (seconds > 0) {
    p.gb_per_s = double(bytes) / seconds * 1e-9;
    p.gflops = double(flops) / seconds * 1e-9;
  }
  p.intensity = bytes ? double(flops) / double(bytes) : 0.0;
  p.bandwidth_fraction = ceilings.read_gb_per_s > 0 ? p.gb_per_s / ceilings.read_gb_per_s : 0.0;
  p.attainable_gflops = ceilings.attainable_gflops(p.intensity);
  p.roof_fraction = p.attainable_gflops > 0 ? p.gflops / p.attainable_gflops : 0.0;
  const double ridge = ceilings.ridge_intensity();
  p.memory_bound = ridge <= 0 || p.intensity < ridge;
  return p;
}

RooflinePoint roofline_point(const Profile& profile, std::uint64_t calls, const Ceilings& ceilings,
                             double seconds_per_call) noexcept {
  const PhaseStats t = profile.total();
  const double n = double(std::max<std::uint64_t>(calls, 1));
  const double seconds = seconds_per_call > 0 ? seconds_per_call : t.seconds / n;
  return roofline_point(std::uint64_t(double(t.bytes_read) / n + 0.5), std::uint64_t(double(t.flops) / n + 0.5),
                        seconds, ceilings);
}

}  // namespace sparq
