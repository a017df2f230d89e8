// sparq::Error: the one exception type the library throws for bad input or an
// unusable environment. Every message names the offending argument and the rule it
// broke, e.g. "r=200 exceeds head_dim=128: r must be in [1, head_dim]".
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace sparq {

enum class ErrorCode {
  invalid_argument,    // a parameter outside its allowed range (r = 0, k = 0, ratio < 1, ...)
  shape_mismatch,      // spans or arrays whose sizes disagree with the cache or each other
  unknown_sequence,    // a SeqId that was never added or was already removed
  capacity_exhausted,  // the block pool (or the system, for a new block) cannot supply what was
                       // asked; nothing was changed
  non_finite_input,    // NaN or Inf where finite values are required, or a finite f32 value
                       // that the cache's storage type cannot hold (it would become Inf)
  empty_sequence,      // attention over S = 0 positions
  bad_file,            // a file that is not what it claims (.npy header, truncation, dtype)
  io_error,            // the operating system refused a read or write
  unsupported,         // a valid request this build or machine cannot serve
  concurrent_use,      // a documented thread-safety rule was broken (detected, not raced)
};

[[nodiscard]] std::string_view to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace sparq
