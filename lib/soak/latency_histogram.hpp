// Latency of one kind of operation as a log-scale histogram: buckets 2^(1/16) apart
// from 1 ns to about 18 minutes, so percentiles are within 4.5% and memory stays fixed
// however long a soak runs (a sorted list of every sample of a 30-minute soak would
// take hundreds of MB).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace sparq::soak {

class LatencyHistogram {
 public:
  static constexpr int kPerOctave = 16;
  static constexpr int kBuckets = 40 * kPerOctave;

  void add(double ns) noexcept {
    ++count_;
    max_ns_ = std::max(max_ns_, ns);
    const int b = ns < 1.0 ? 0 : int(std::log2(ns) * kPerOctave);
    ++buckets_[std::size_t(std::clamp(b, 0, kBuckets - 1))];
  }
  void merge(const LatencyHistogram& o) noexcept {
    count_ += o.count_;
    max_ns_ = std::max(max_ns_, o.max_ns_);
    for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
  }
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] double max_ns() const noexcept { return max_ns_; }
  // The q-quantile (0 < q <= 1): the geometric middle of the bucket holding it.
  [[nodiscard]] double quantile_ns(double q) const noexcept {
    if (count_ == 0) return 0.0;
    const auto rank = std::uint64_t(std::ceil(q * double(count_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(max_ns_, std::exp2((double(i) + 0.5) / kPerOctave));
    }
    return max_ns_;
  }

 private:
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  double max_ns_ = 0.0;
};

}  // namespace sparq::soak
