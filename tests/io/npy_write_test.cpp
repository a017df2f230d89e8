// Writing .npy files: round trips, numpy's header layout, atomic replacement.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "sparq/error.hpp"
#include "sparq/tools/npy.hpp"

namespace sparq {
namespace {

namespace fs = std::filesystem;

class NpyWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparq-npy-write-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  [[nodiscard]] std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }
  fs::path dir_;
};

std::vector<float> random_data(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST_F(NpyWrite, RoundTripsShapes) {
  const std::vector<std::vector<std::size_t>> shapes = {{},     {0},       {1},        {7},
                                                        {3, 5}, {2, 0, 4}, {2, 3, 64}, {1, 1, 1, 1, 9}};
  unsigned seed = 1;
  for (const auto& shape : shapes) {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    const auto data = random_data(n, seed++);
    const auto path = dir_ / "a.npy";
    write_npy(path, data, shape);
    const NpyArray a = read_npy(path);
    EXPECT_EQ(a.shape, shape) << shape_to_string(shape);
    EXPECT_EQ(a.data, data) << shape_to_string(shape);  // bit-exact
    EXPECT_EQ(a.version, 1);
    // numpy's layout: the data starts at a multiple of 64, the header ends with '\n'.
    const auto bytes = encode_npy(data, shape);
    const std::size_t header = bytes.size() - data.size() * 4;
    EXPECT_EQ(header % 64, 0u) << shape_to_string(shape);
    EXPECT_EQ(static_cast<char>(bytes[header - 1]), '\n');
    EXPECT_EQ(fs::file_size(path), bytes.size());
  }
  EXPECT_EQ(entries(), 1u) << "temporary files left behind";
}

TEST_F(NpyWrite, SpecialValuesSurviveBitExact) {
  const std::vector<float> data = {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                                   std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::quiet_NaN()};
  const std::size_t shape[] = {data.size()};
  write_npy(dir_ / "s.npy", data, shape);
  const NpyArray a = read_npy(dir_ / "s.npy");
  ASSERT_EQ(a.data.size(), data.size());
  EXPECT_EQ(std::memcmp(a.data.data(), data.data(), data.size() * 4), 0);
}

TEST_F(NpyWrite, ReplacesExistingFileAtomically) {
  const auto path = dir_ / "y.npy";
  { std::ofstream(path) << "old contents"; }
  const float data[] = {1, 2, 3};
  const std::size_t shape[] = {3};
  write_npy(path, data, shape);
  EXPECT_EQ(read_npy(path).data, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(entries(), 1u);
}

TEST_F(NpyWrite, FileModeFollowsUmask) {
  const auto path = dir_ / "m.npy";
  const float data[] = {1};
  const std::size_t shape[] = {1};
  write_npy(path, data, shape);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST_F(NpyWrite, ShapeMismatchWritesNothing) {
  const float data[] = {1, 2, 3};
  const std::size_t shape[] = {2, 2};
  try {
    write_npy(dir_ / "x.npy", data, shape);
    ADD_FAILURE() << "wrote 3 values as shape [2, 2]";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
    EXPECT_NE(std::string(e.what()).find("[2, 2]"), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries(), 0u);
}

TEST_F(NpyWrite, UnwritableDestinationThrowsIoErrorAndLeavesNothing) {
  const float data[] = {1};
  const std::size_t shape[] = {1};
  const auto path = dir_ / "no-such-dir" / "y.npy";
  try {
    write_npy(path, data, shape);
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io_error);
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  // A directory in the way of the rename: the temporary file is cleaned up.
  fs::create_directories(dir_ / "taken");
  fs::create_directories(dir_ / "taken" / "inner");
  EXPECT_THROW(write_npy(dir_ / "taken", data, shape), Error);
  EXPECT_EQ(entries(), 1u);
}

}  // namespace
}  // namespace sparq
