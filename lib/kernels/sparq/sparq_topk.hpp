// SparQ top-k (DESIGN §1 step 3) without a full sort: the per-chunk passes of a radix
// (threshold) selection on 32-bit keys. sparq_select.hpp drives them.
//
// Key of a position: an int32 ordered like its ranking score (the float bits with the
// negative range flipped; -0 is first turned into +0 so that it ties with +0 as it does
// in real arithmetic). The ranking score is
//   - logits mode (one head ranks alone: MHA, or per-head selection): the head's
//     approximate logit z (log2 domain); ŝ = 2^(z - max)/Z is monotone in z, and z
//     separates positions that ŝ in f32 would round to equal values (or to 0);
//   - exp mode (GQA-shared selection): Σ_h w_h · e_h[j], with e_h = 2^(z_h - chunk max)
//     from stage 1 and w_h = 2^(chunk max - max_h)/Z_h, i.e. Σ_h ŝ_h[j]. (Ranking by the
//     logits would not give the same answer: the heads have different τ and normalizers.)
//
// Passes, each over one chunk of positions, so that they run in parallel and the result
// does not depend on the thread count:
//   keys:    key of every ranked position, and its first-level bin: the distance below a
//            known upper bound `top` of the score in 1/8 octaves of ŝ, 256 bins (bin 0 =
//            highest; bin 255 also takes everything lower). exp mode: (bits(top) -
//            bits(c)) >> 20, c >= 0, top = g >= Σ_h ŝ_h; logits mode: floor((top - z)·8),
//            top = max z. Both are monotone in the key, so a bin is a contiguous key range.
//            Plus a histogram of the bins of a fixed sample (every 4th vector of the
//            chunk; four interleaved sub-histograms so that runs of equal bins do not
//            serialize on one counter), from which the driver brackets the boundary;
//   collect: exact count of positions in better bins (< lo) and the positions (and
//            keys) in bins [lo, hi], in position order;
//   emit:    compacts the chunk's selected positions in place (key >= thr_lo for
//            positions before `split`, key >= thr_hi after it, every position past the
//            ranked range = the local window) and sums ŝ_h over them (for α_h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd/arch_list.hpp"

namespace sparq::kernels {

inline constexpr std::size_t kSparqTopkBins = 256;       // first level: 1/8-octave bins below `top`
inline constexpr std::size_t kSparqTopkSampleEvery = 4;  // histogram every 4th vector

// Unsigned order of a key (its sign bit flipped), for radix refinement.
[[nodiscard]] constexpr std::uint32_t sparq_key_bits(std::int32_t key) noexcept {
  return std::uint32_t(key) ^ 0x80000000u;
}

struct SparqTopkKeysArgs {
  const float* scores = nullptr;  // [heads][score_stride], chunk-relative
  std::size_t score_stride = 0;
  std::size_t heads = 1;
  const float* weights = nullptr;  // [heads]: exp mode; nullptr: logits mode (heads == 1)
  std::size_t n = 0;               // ranked positions in the chunk
  float top = 0.0f;                // upper bound of the score (see above)
  std::int32_t* keys = nullptr;    // out [n]
  std::uint8_t* bins = nullptr;    // out [n]
  std::uint32_t* hist = nullptr;   // out [kSparqTopkBins], of the sampled positions
  float* tmp = nullptr;            // scratch [heads][kMaxLanes]
};

struct SparqTopkCollectArgs {
  const std::int32_t* keys = nullptr;  // [n]
  const std::uint8_t* bins = nullptr;  // [n]
  std::size_t n = 0;
  std::uint32_t j_begin = 0;           // position of keys[0]
  std::uint8_t lo = 0, hi = 0;         // collect bins [lo, hi]; count bins < lo
  std::size_t* above = nullptr;        // out: positions in bins < lo
  std::uint32_t* positions = nullptr;  // out, ascending
  std::int32_t* out_keys = nullptr;    // out
};

struct SparqTopkEmitArgs {
  std::int32_t* keys = nullptr;  // [n]: keys in (first n_ranked), positions out (compacted)
  std::size_t n = 0;             // positions in the chunk
  std::size_t n_ranked = 0;      // the rest are window positions, always selected
  std::uint32_t j_begin = 0;
  std::size_t split = 0;                // chunk-relative: before it key >= thr_lo selects, from it key >= thr_hi
  std::int32_t thr_lo = 0, thr_hi = 0;  // INT32_MAX selects nothing (keys are not even read)
  // α partial sums: alpha[h] = scale[h] · Σ_{selected j} f(scores[h][j - j_begin]), with
  // f(x) = x (exp mode) or f(x) = 2^(x - shift) (logits mode).
  const float* scores = nullptr;
  std::size_t score_stride = 0;
  std::size_t heads = 1;
  bool exp_mode = false;
  float shift = 0.0f;
  const float* scale = nullptr;  // [heads]
  float* alpha = nullptr;        // out [heads]
  float* tmp = nullptr;          // scratch [n + kMaxLanes] floats (logits mode)
};

template <class Arch>
struct SparqTopkKeys {
  void operator()(Arch, const SparqTopkKeysArgs& args) const noexcept;
};
template <class Arch>
struct SparqTopkCollect {
  // Returns the number of positions written.
  std::size_t operator()(Arch, const SparqTopkCollectArgs& args) const noexcept;
};
template <class Arch>
struct SparqTopkEmit {
  // Returns the number of positions selected (written to keys[0, count)).
  std::size_t operator()(Arch, const SparqTopkEmitArgs& args) const noexcept;
};

#define SPARQ_TOPK_EXTERN(isa, arch)             \
  extern template struct SparqTopkKeys<arch>;    \
  extern template struct SparqTopkCollect<arch>; \
  extern template struct SparqTopkEmit<arch>;
SPARQ_FOR_EACH_ARCH(SPARQ_TOPK_EXTERN)
#undef SPARQ_TOPK_EXTERN

}  // namespace sparq::kernels
