// RAII timing of one phase of a decode call into a Profile. Costs nothing (no clock
// read) when the profile is null. Marks phases, never inner loops.
#pragma once

#include <chrono>
#include <cstdint>

#include "sparq/profile.hpp"

namespace sparq::profile {

class ProfileZone {
 public:
  ProfileZone(Profile* profile, Phase phase) noexcept : stats_(profile ? &(*profile)[phase] : nullptr) {
    if (stats_) start_ = std::chrono::steady_clock::now();
  }
  ProfileZone(const ProfileZone&) = delete;
  ProfileZone& operator=(const ProfileZone&) = delete;
  ~ProfileZone() {
    if (!stats_) return;
    stats_->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    stats_->calls += 1;
  }
  // Bytes and FLOPs of the phase (only added when profiling).
  void add(std::uint64_t bytes, std::uint64_t flops) noexcept {
    if (!stats_) return;
    stats_->bytes_read += bytes;
    stats_->flops += flops;
  }

 private:
  PhaseStats* stats_;
  std::chrono::steady_clock::time_point start_{};
};

}  // namespace sparq::profile
