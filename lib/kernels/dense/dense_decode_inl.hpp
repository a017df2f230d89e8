// Definition of DenseChunk<Arch, Loops> (see dense_decode.hpp). Included only by the
// per-ISA instantiation files dense_decode_<isa>.cpp, each built with its ISA's flags.
#pragma once

#include "kernels/dense/dense_chunk_inl.hpp"
#include "kernels/dense/dense_xsimd_loops_inl.hpp"

namespace sparq::kernels {

template <class Arch, DenseLoops Loops>
void DenseChunk<Arch, Loops>::operator()(Arch, const DenseChunkArgs& args) const {
  if constexpr (Loops == DenseLoops::rows16) {
    if (args.view->dtype == DType::bf16)
      dense_detail::Chunk<Arch, bf16_t, Loops>(args).run(args.begin, args.end);
    else
      dense_detail::Chunk<Arch, f16_t, Loops>(args).run(args.begin, args.end);
  } else {
    visit_dtype(args.view->dtype,
                [&](auto t) { dense_detail::Chunk<Arch, decltype(t), Loops>(args).run(args.begin, args.end); });
  }
}

}  // namespace sparq::kernels
