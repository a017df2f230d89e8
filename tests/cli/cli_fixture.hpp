// Fixture for the CLI tests: a scratch directory, .npy inputs written with sparq's own
// writer, and a way to run the built `sparq` binary.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "run_process.hpp"
#include "sparq/tools/npy.hpp"

namespace sparq::test {

namespace fs = std::filesystem;

struct Array {
  std::vector<std::size_t> shape;
  std::vector<float> data;
};

inline Array random_array(std::vector<std::size_t> shape, unsigned seed, float scale = 1.0f) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  Array a{std::move(shape), std::vector<float>(n)};
  for (float& x : a.data) x = dist(rng);
  return a;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparq-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string save(const std::string& name, const Array& a) {
    write_npy(dir_ / name, a.data, a.shape);
    return path(name);
  }
  ProcessResult sparq(const std::vector<std::string>& args) const { return run_process(SPARQ_CLI_PATH, args, dir_); }

  // `sparq attend` on q.npy/k.npy/v.npy in the scratch dir, writing y.npy, plus `extra`.
  ProcessResult attend(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {"attend",   "--queries",   path("q.npy"), "--keys",     path("k.npy"),
                                     "--values", path("v.npy"), "--out",       path("y.npy")};
    args.insert(args.end(), extra.begin(), extra.end());
    return sparq(args);
  }

  // Names of the files in the scratch directory (to catch leftovers).
  [[nodiscard]] std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

// Dense attention computed directly from the arrays, in double (independent of the
// library): Q [n_q, d], K/V [n_kv, S, d]; query head h reads KV head h / (n_q / n_kv).
struct DirectResult {
  std::vector<double> out;  // [n_q][d]
  std::vector<double> lse;  // [n_q]
};

inline DirectResult direct_dense(const Array& q, const Array& k, const Array& v) {
  const std::size_t nq = q.shape[0], d = q.shape[1], nkv = k.shape[0], S = k.shape[1], g = nq / nkv;
  DirectResult r{std::vector<double>(nq * d, 0.0), std::vector<double>(nq, 0.0)};
  for (std::size_t h = 0; h < nq; ++h) {
    const std::size_t kh = h / g;
    std::vector<double> logit(S);
    double mx = -INFINITY;
    for (std::size_t j = 0; j < S; ++j) {
      double s = 0;
      for (std::size_t i = 0; i < d; ++i) s += double(q.data[h * d + i]) * double(k.data[(kh * S + j) * d + i]);
      logit[j] = s / std::sqrt(double(d));
      mx = std::max(mx, logit[j]);
    }
    double z = 0;
    for (double& l : logit) z += (l = std::exp(l - mx));
    for (std::size_t j = 0; j < S; ++j)
      for (std::size_t i = 0; i < d; ++i) r.out[h * d + i] += logit[j] / z * double(v.data[(kh * S + j) * d + i]);
    r.lse[h] = mx + std::log(z);
  }
  return r;
}

}  // namespace sparq::test
