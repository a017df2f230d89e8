// A worker's own record of what it appended to one sequence: per layer, the runs of
// tokens as offsets into the soak's shared block of random floats (so the record costs
// a few words per append, forks copy it cheaply, and a replay can rebuild the exact
// f32 inputs).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace sparq::soak {

class SeqRecord {
 public:
  SeqRecord(std::size_t layers, std::size_t row_floats) : layers_(layers), row_(row_floats) {}

  // n tokens appended to `layer`: keys at data[k_off, k_off + n * row), values at v_off.
  void append(std::size_t layer, std::size_t k_off, std::size_t v_off, std::size_t n) {
    layers_[layer].push_back({k_off, v_off, n});
  }
  // The last n tokens dropped from every layer.
  void truncate(std::size_t n) {
    for (auto& runs : layers_) {
      for (std::size_t left = n; left > 0;) {
        Run& last = runs.back();
        const std::size_t cut = left < last.tokens ? left : last.tokens;
        last.tokens -= cut;
        left -= cut;
        if (last.tokens == 0) runs.pop_back();
      }
    }
  }
  [[nodiscard]] std::size_t length(std::size_t layer) const {
    std::size_t n = 0;
    for (const Run& r : layers_[layer]) n += r.tokens;
    return n;
  }
  [[nodiscard]] std::size_t layers() const noexcept { return layers_.size(); }
  // The layer's keys and values, [S][row] each, gathered from `data`.
  void gather(std::size_t layer, std::span<const float> data, std::vector<float>& keys,
              std::vector<float>& values) const {
    keys.clear();
    values.clear();
    for (const Run& r : layers_[layer]) {
      keys.insert(keys.end(), data.begin() + std::ptrdiff_t(r.k_off),
                  data.begin() + std::ptrdiff_t(r.k_off + r.tokens * row_));
      values.insert(values.end(), data.begin() + std::ptrdiff_t(r.v_off),
                    data.begin() + std::ptrdiff_t(r.v_off + r.tokens * row_));
    }
  }

 private:
  struct Run {
    std::size_t k_off, v_off, tokens;
  };
  std::vector<std::vector<Run>> layers_;
  std::size_t row_;
};

}  // namespace sparq::soak
