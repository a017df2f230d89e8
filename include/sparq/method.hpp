// Attention methods: exact dense attention and SparQ (DESIGN §1).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <variant>

namespace sparq {

struct Dense {};

// How a GQA group (g query heads sharing a KV head) chooses what to fetch.
// shared: one selection per KV head, so the group reads each fetched row once (default).
// per_head: the paper's algorithm run for every query head independently.
enum class GqaSelection { shared, per_head };
[[nodiscard]] std::string_view to_string(GqaSelection s) noexcept;
[[nodiscard]] std::optional<GqaSelection> parse_gqa_selection(std::string_view name) noexcept;

// SparQ parameters after the defaults of DESIGN §1 were applied for one (d, S, g).
struct SparQResolved {
  std::size_t r = 0;       // query components kept, 1 <= r <= d
  std::size_t k = 0;       // positions fetched, k_eff = min(k, S), window included
  std::size_t window = 0;  // l: the last min(l, k_eff) positions are always fetched
  bool reallocation = false;
  GqaSelection gqa = GqaSelection::shared;
};

// SparQ with a compression ratio c (default 8): r = clamp(round(d/c), 1, d),
// k = max(1, round(S/(2c))) recomputed from the current S, l = floor(k/4),
// reallocation on for g = 1 and off for g > 1. Each explicitly set field overrides
// its derived value; l is derived from the final k unless set.
struct SparQ {
  double ratio = 8.0;
  std::optional<std::size_t> r;
  std::optional<std::size_t> k;
  std::optional<std::size_t> window;
  std::optional<bool> reallocation;
  GqaSelection gqa = GqaSelection::shared;

  [[nodiscard]] static SparQ for_ratio(double c) {
    SparQ m;
    m.ratio = c;
    return m;
  }
  // Throws sparq::Error when ratio < 1 or not finite, r = 0, r > d, k = 0, S = 0, or gqa
  // is not a GqaSelection value.
  [[nodiscard]] SparQResolved resolve(std::size_t head_dim, std::size_t seq_len, std::size_t group) const;
};

using Method = std::variant<Dense, SparQ>;

}  // namespace sparq
