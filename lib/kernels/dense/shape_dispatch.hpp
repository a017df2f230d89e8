// Shape dispatch for the avx512 dense loops that are templates on the head tile and the
// row length: with_shape(g, d, f) calls f.template operator()<G, L>() for the runtime g in
// {1, 2, 4, 8} and L = d / 32 (64-byte lines of 16-bit values per row) in 1 .. 8. Each
// fold stops at its match; other shapes call nothing (callers check handles() first).
// Internal linkage (an unnamed namespace, as in row_sums16_avx512.hpp): the files that
// use it are built with different ISA flags, and the linker must never pick one file's
// copy for another.
#pragma once

#include <cstddef>
#include <utility>

namespace sparq::kernels::shape_dispatch {
namespace {

template <std::size_t G, class F, std::size_t... LI>
void with_lines(std::size_t lines, F& f, std::index_sequence<LI...>) {
  ((lines == LI + 1 ? (f.template operator()<G, LI + 1>(), true) : false) || ...);
}

template <class F, std::size_t... GI>
void with_heads(std::size_t g, std::size_t lines, F& f, std::index_sequence<GI...>) {
  ((g == (std::size_t{1} << GI) ? (with_lines<(std::size_t{1} << GI)>(lines, f, std::make_index_sequence<8>{}), true)
                                : false) ||
   ...);
}

template <class F>
void with_shape(std::size_t g, std::size_t d, F&& f) {
  with_heads(g, d / 32, f, std::make_index_sequence<4>{});
}

}  // namespace
}  // namespace sparq::kernels::shape_dispatch
