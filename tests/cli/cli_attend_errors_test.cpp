// Every bad option or input of `sparq attend` exits 2 with one stderr line that names
// the option or file, and leaves no output file behind.
#include <fstream>

#include "../io/npy_test_util.hpp"
#include "cli_fixture.hpp"

namespace sparq::test {
namespace {

class AttendErrors : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    save("q.npy", random_array({4, 16}, 1));
    save("k.npy", random_array({2, 10, 16}, 2));
    save("v.npy", random_array({2, 10, 16}, 3));
  }

  void write_bytes(const std::string& name, const std::vector<std::byte>& b) {
    std::ofstream f(path(name), std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }

  // Runs `args` (attend with the three inputs unless `raw`), expecting exit 2, an error
  // line naming `mention`, and the scratch directory holding only the inputs.
  void expect_usage_error(const std::vector<std::string>& args, const std::string& mention, bool raw = false) {
    const auto r = raw ? sparq(args) : attend(args);
    std::string ctx;
    for (const auto& a : args) ctx += " " + a;
    EXPECT_EQ(r.exit_code, 2) << ctx << "\nstderr: " << r.err;
    EXPECT_TRUE(r.err.starts_with("sparq attend: error: ")) << ctx << "\nstderr: " << r.err;
    const std::string first = r.err.substr(0, r.err.find('\n'));
    EXPECT_NE(first.find(mention), std::string::npos) << ctx << ": '" << first << "' lacks '" << mention << "'";
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << ctx << "\nstderr: " << r.err;
    EXPECT_TRUE(r.out.empty()) << ctx << "\nstdout: " << r.out;
    EXPECT_FALSE(fs::exists(path("y.npy"))) << ctx;
    for (const auto& f : files())
      EXPECT_TRUE(f == "q.npy" || f == "k.npy" || f == "v.npy" || f.starts_with("x")) << ctx << ": left " << f;
  }
};

TEST_F(AttendErrors, BadOptions) {
  expect_usage_error({"--method", "sparse"}, "--method");
  expect_usage_error({"--r", "abc"}, "--r");
  expect_usage_error({"--r", "0"}, "--r: 0 is out of range");
  expect_usage_error({"--r", "17"}, "--r=17 exceeds d=16");
  expect_usage_error({"--r", "-2"}, "--r");
  expect_usage_error({"--k", "0"}, "--k: 0 is out of range");
  expect_usage_error({"--k", "1.5"}, "--k");
  expect_usage_error({"--window", "-1"}, "--window: -1 is out of range");
  expect_usage_error({"--ratio", "0.5"}, "--ratio: 0.5 is out of range");
  expect_usage_error({"--ratio", "nan"}, "--ratio");
  expect_usage_error({"--ratio", "x"}, "--ratio");
  expect_usage_error({"--dtype", "f64"}, "--dtype");
  expect_usage_error({"--gqa", "both"}, "--gqa");
  expect_usage_error({"--layout", "row-major"}, "--layout");
  expect_usage_error({"--reallocation", "maybe"}, "--reallocation");
  expect_usage_error({"--reallocation", "on", "--no-reallocation"}, "reallocation");
  expect_usage_error({"--block-tokens", "0"}, "--block-tokens: 0 is out of range");
  expect_usage_error({"--bogus"}, "--bogus");
  expect_usage_error({"--k"}, "--k");
  expect_usage_error({"attend", "--queries", path("q.npy"), "--keys", path("k.npy"), "--values", path("v.npy")},
                     "--out", /*raw=*/true);
  expect_usage_error({"attend", "--keys", path("k.npy"), "--values", path("v.npy"), "--out", path("y.npy")},
                     "--queries", /*raw=*/true);
}

TEST_F(AttendErrors, WrongShapes) {
  save("q.npy", random_array({4, 16, 1}, 1));
  expect_usage_error({}, "q.npy: queries must be 2-D");
  save("q.npy", random_array({64}, 1));
  expect_usage_error({}, "q.npy: queries must be 2-D");
  save("q.npy", random_array({4, 8}, 1));
  expect_usage_error({}, "q.npy: queries have d=8");
  save("q.npy", random_array({3, 16}, 1));
  expect_usage_error({}, "q.npy: q_heads=3 is not a multiple of kv_heads=2");
  save("q.npy", random_array({4, 16}, 1));
  save("k.npy", random_array({20, 16}, 2));
  expect_usage_error({}, "k.npy: keys must be 3-D");
  save("k.npy", random_array({2, 10, 16}, 2));
  save("v.npy", random_array({2, 11, 16}, 3));
  expect_usage_error({}, "v.npy: values have shape [2, 11, 16]");
  save("v.npy", random_array({2, 10, 16, 1}, 3));
  expect_usage_error({}, "v.npy: values must be 3-D");
}

TEST_F(AttendErrors, EmptySequence) {
  save("k.npy", random_array({2, 0, 16}, 2));
  save("v.npy", random_array({2, 0, 16}, 3));
  expect_usage_error({}, "k.npy: sequence length S=0");
  expect_usage_error({"--method", "dense"}, "S=0");
}

TEST_F(AttendErrors, BadFiles) {
  const std::int32_t ints[] = {1, 2, 3, 4};
  write_bytes("k.npy", make_npy(1, dict_for("<i4", "(1, 1, 4)"), ints, sizeof ints));
  expect_usage_error({}, "k.npy: dtype '<i4' is not supported");
  write_bytes("k.npy", make_npy(1, dict_for(">f4", "(1, 1, 4)"), ints, sizeof ints));
  expect_usage_error({}, "k.npy: dtype '>f4' is big-endian");
  write_bytes("k.npy", make_npy(1, dict_for("<f4", "(2, 2, 1)", true), ints, sizeof ints));
  expect_usage_error({}, "k.npy: array is in Fortran order");
  save("k.npy", random_array({2, 10, 16}, 2));
  std::filesystem::resize_file(path("v.npy"), std::filesystem::file_size(path("v.npy")) - 5);
  expect_usage_error({}, "v.npy: truncated");
  { std::ofstream(path("q.npy")) << "q0,q1\n1,2\n"; }
  expect_usage_error({}, "q.npy: not a .npy file");
  expect_usage_error({"attend", "--queries", path("missing.npy"), "--keys", path("k.npy"), "--values", path("v.npy"),
                      "--out", path("y.npy")},
                     "missing.npy", /*raw=*/true);
}

TEST_F(AttendErrors, NonFiniteInputs) {
  auto q = random_array({4, 16}, 1);
  q.data[1 * 16 + 5] = std::numeric_limits<float>::quiet_NaN();
  save("q.npy", q);
  expect_usage_error({}, "q.npy: element [1, 5] is NaN");
  save("q.npy", random_array({4, 16}, 1));
  auto k = random_array({2, 10, 16}, 2);
  k.data[(1 * 10 + 3) * 16 + 0] = -std::numeric_limits<float>::infinity();
  save("k.npy", k);
  expect_usage_error({}, "k.npy: element [1, 3, 0] is -Inf");
  save("k.npy", random_array({2, 10, 16}, 2));
  auto v = random_array({2, 10, 16}, 3);
  v.data.back() = std::numeric_limits<float>::infinity();
  save("v.npy", v);
  expect_usage_error({"--method", "dense"}, "v.npy: element [1, 9, 15] is +Inf");
  // float64 beyond float's range becomes Inf on reading and is refused the same way.
  const double big[] = {1e300};
  write_bytes("v.npy", make_npy(1, dict_for("<f8", "(1, 1, 1)"), big, sizeof big));
  save("k.npy", random_array({1, 1, 1}, 2));
  save("q.npy", random_array({1, 1}, 1));
  expect_usage_error({}, "v.npy: element [0, 0, 0] is +Inf");
}

TEST_F(AttendErrors, UnwritableOutput) {
  const auto r = sparq({"attend", "--queries", path("q.npy"), "--keys", path("k.npy"), "--values", path("v.npy"),
                        "--out", path("no-such-dir/y.npy")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(r.err.starts_with("sparq attend: error: ")) << r.err;
  EXPECT_NE(r.err.find("no-such-dir/y.npy"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sparq::test
