// Profile: what a decode call moved and how long each phase took.
//
// Bytes are counted from what the kernel actually touched, rounded up to whole
// 64-byte cache lines per contiguous run; FLOPs count multiply-adds as two. Filling a
// profile costs two clock reads per phase per call; passing none costs nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sparq/isa.hpp"

namespace sparq {

enum class Phase : std::uint8_t { dense, stage1, topk, stage2, reallocation };
inline constexpr std::size_t kPhaseCount = 5;
[[nodiscard]] std::string_view to_string(Phase p) noexcept;

struct PhaseStats {
  std::uint64_t bytes_read = 0;
  std::uint64_t flops = 0;
  double seconds = 0.0;
  std::uint64_t calls = 0;

  [[nodiscard]] double gb_per_s() const noexcept { return seconds > 0 ? double(bytes_read) / seconds * 1e-9 : 0.0; }
  // FLOPs per byte read.
  [[nodiscard]] double intensity() const noexcept { return bytes_read ? double(flops) / double(bytes_read) : 0.0; }
  PhaseStats& operator+=(const PhaseStats& o) noexcept {
    bytes_read += o.bytes_read;
    flops += o.flops;
    seconds += o.seconds;
    calls += o.calls;
    return *this;
  }
};

struct Profile {
  std::array<PhaseStats, kPhaseCount> phases{};
  Isa isa = Isa::generic;   // the variant that ran
  std::size_t threads = 0;  // concurrency of the arena that ran it

  [[nodiscard]] PhaseStats& operator[](Phase p) noexcept { return phases[static_cast<std::size_t>(p)]; }
  [[nodiscard]] const PhaseStats& operator[](Phase p) const noexcept { return phases[static_cast<std::size_t>(p)]; }
  [[nodiscard]] PhaseStats total() const noexcept {
    PhaseStats t;
    for (const auto& p : phases) t += p;
    t.calls = phases[0].calls + phases[1].calls;  // one call is dense or starts with stage 1
    return t;
  }
  void reset() noexcept { *this = Profile{}; }
};

}  // namespace sparq
