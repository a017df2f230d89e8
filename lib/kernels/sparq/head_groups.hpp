// Splitting a group of query heads into register-sized sub-groups of 8, 4, 2 and 1
// heads (compile-time sizes, so accumulator arrays stay in registers). Header-only
// template: safe to include from any ISA's translation unit.
#pragma once

#include <cstddef>

namespace sparq::kernels {

// Calls f.template operator()<HG>(h0) for sub-groups covering heads [0, heads).
template <class F>
inline void sparq_for_head_groups(std::size_t heads, F&& f) {
  std::size_t h0 = 0;
  for (; h0 + 8 <= heads; h0 += 8) f.template operator()<8>(h0);
  if (h0 + 4 <= heads) f.template operator()<4>(h0), h0 += 4;
  if (h0 + 2 <= heads) f.template operator()<2>(h0), h0 += 2;
  if (h0 < heads) f.template operator()<1>(h0);
}

}  // namespace sparq::kernels
