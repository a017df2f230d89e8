#include "sparq/method.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "sparq/error.hpp"

namespace sparq {

std::string_view to_string(GqaSelection s) noexcept {
  return s == GqaSelection::shared ? "shared" : "per-head";
}

std::optional<GqaSelection> parse_gqa_selection(std::string_view name) noexcept {
  if (name == "shared") return GqaSelection::shared;
  if (name == "per-head") return GqaSelection::per_head;
  return std::nullopt;
}

namespace {
// Round half up, as DESIGN §1 specifies for the derived r and k.
std::size_t round_half_up(double x) {
  return static_cast<std::size_t>(std::floor(x + 0.5));
}
}  // namespace

SparQResolved SparQ::resolve(std::size_t head_dim, std::size_t seq_len, std::size_t group) const {
  if (!std::isfinite(ratio) || ratio < 1.0)
    throw Error(ErrorCode::invalid_argument,
                "ratio=" + std::to_string(ratio) + " is invalid: the compression ratio must be a finite number >= 1");
  if (gqa != GqaSelection::shared && gqa != GqaSelection::per_head)
    throw Error(ErrorCode::invalid_argument,
                "gqa=" + std::to_string(static_cast<int>(gqa)) + " is invalid: must be shared (0) or per_head (1)");
  if (head_dim == 0) throw Error(ErrorCode::invalid_argument, "head_dim=0: must be at least 1");
  if (seq_len == 0)
    throw Error(ErrorCode::empty_sequence, "sequence length S=0: attention needs at least one position");
  SparQResolved out;
  if (r) {
    if (*r < 1 || *r > head_dim)
      throw Error(ErrorCode::invalid_argument, "r=" + std::to_string(*r) + (*r ? " exceeds" : " is below 1 for") +
                                                   " head_dim=" + std::to_string(head_dim) +
                                                   ": r must be in [1, head_dim]");
    out.r = *r;
  } else {
    out.r = std::clamp<std::size_t>(round_half_up(double(head_dim) / ratio), 1, head_dim);
  }
  if (k) {
    if (*k < 1) throw Error(ErrorCode::invalid_argument, "k=0: the number of fetched positions must be at least 1");
    out.k = *k;
  } else {
    out.k = std::max<std::size_t>(1, round_half_up(double(seq_len) / (2.0 * ratio)));
  }
  out.window = window ? *window : out.k / 4;
  out.reallocation = reallocation ? *reallocation : group <= 1;
  out.gqa = gqa;
  return out;
}

}  // namespace sparq
