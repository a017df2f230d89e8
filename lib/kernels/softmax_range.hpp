// Keeping decode's softmax finite for every finite input (keys and values up to f32's
// ±3.4e38), shared by the dense and SparQ kernels and their merges.
//   Scores: a logit beyond f32's range (q.k overflowing) counts as ±kScoreLimit, so the
//   running max stays finite and 2^(s - m) never meets inf - inf; a NaN logit (opposite
//   infinities inside one dot product) counts as -kScoreLimit, a position not attended.
//   Weights: a chunk keeps 2^(s - m - kWeightShift) rather than 2^(s - m), so its sum of
//   weights times values stays within max|v| (a chunk has at most 2^kWeightShift
//   positions) and never overflows f32; the merges add kWeightShift back into the
//   log-sum-exp, and outputs (weighted sums over summed weights) are unchanged.
#pragma once

#include <cstddef>

namespace sparq::kernels {

inline constexpr float kScoreLimit = 3.40282346638528859812e+38f;  // FLT_MAX
inline constexpr int kWeightShift = 10;
inline constexpr float kWeightScale = 1.0f / float(1 << kWeightShift);
inline constexpr std::size_t kMaxChunkPositions = std::size_t{1} << kWeightShift;

}  // namespace sparq::kernels
