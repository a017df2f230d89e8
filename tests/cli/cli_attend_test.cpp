// `sparq attend` computes what the library's reference computes: dense against a direct
// softmax in the test, SparQ against sparq::reference::sparq_decode, for MHA and GQA.
#include <chrono>
#include <nlohmann/json.hpp>

#include "../io/npy_test_util.hpp"
#include "cli_fixture.hpp"
#include "reference/reference.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"

namespace sparq::test {
namespace {

struct Shape {
  std::size_t nq, nkv, S, d;
};

std::string describe(const Shape& s) {
  return "nq=" + std::to_string(s.nq) + " nkv=" + std::to_string(s.nkv) + " S=" + std::to_string(s.S) +
         " d=" + std::to_string(s.d);
}

class Attend : public CliTest {
 protected:
  void make_inputs(const Shape& s, unsigned seed = 1) {
    shape_ = s;
    q_ = random_array({s.nq, s.d}, seed, 2.0f);
    k_ = random_array({s.nkv, s.S, s.d}, seed + 1);
    v_ = random_array({s.nkv, s.S, s.d}, seed + 2);
    save("q.npy", q_);
    save("k.npy", k_);
    save("v.npy", v_);
  }

  // Runs attend with --json; returns the parsed JSON and loads y.npy into `y`.
  nlohmann::json run(const std::vector<std::string>& extra, std::vector<float>& y) {
    auto args = extra;
    args.push_back("--json");
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = attend(args);
    wall_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return {};
    const NpyArray out = read_npy(path("y.npy"));
    EXPECT_EQ(out.shape, (std::vector<std::size_t>{shape_.nq, shape_.d}));
    y = out.data;
    return nlohmann::json::parse(r.out);
  }

  // The reference's SparQ result for parameters `p`, on an f32 cache of the inputs.
  reference::Result reference_sparq(const SparQResolved& p) const {
    KVCache cache({.layers = 1,
                   .kv_heads = shape_.nkv,
                   .head_dim = shape_.d,
                   .dtype = DType::f32,
                   .block_tokens = 16,
                   .capacity_tokens = (shape_.S + 15) / 16 * 16});
    const SeqId seq = cache.add_sequence();
    std::vector<float> kt(k_.data.size()), vt(v_.data.size());
    for (std::size_t h = 0; h < shape_.nkv; ++h)
      for (std::size_t j = 0; j < shape_.S; ++j)
        for (std::size_t i = 0; i < shape_.d; ++i) {
          kt[(j * shape_.nkv + h) * shape_.d + i] = k_.data[(h * shape_.S + j) * shape_.d + i];
          vt[(j * shape_.nkv + h) * shape_.d + i] = v_.data[(h * shape_.S + j) * shape_.d + i];
        }
    cache.append(seq, 0, kt, vt, shape_.S);
    return reference::sparq_decode(cache.view(seq, 0), q_.data, 0, shape_.nkv, shape_.nq / shape_.nkv,
                                   1.0 / std::sqrt(double(shape_.d)), p);
  }

  Shape shape_{};
  Array q_, k_, v_;
  double wall_seconds_ = 0.0;  // of the last run(): the whole `sparq attend` process
};

void expect_close(const std::vector<float>& y, const std::vector<double>& ref, double tol, const std::string& ctx) {
  ASSERT_EQ(y.size(), ref.size()) << ctx;
  for (std::size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], ref[i], tol * (1.0 + std::fabs(ref[i]))) << ctx << " element " << i;
}

const Shape kMha{4, 4, 37, 64};
const Shape kGqa{8, 2, 50, 32};

TEST_F(Attend, DenseMatchesDirectSoftmax) {
  for (const Shape& s : {kMha, kGqa, Shape{3, 1, 1, 16}}) {
    make_inputs(s);
    std::vector<float> y;
    const auto j = run({"--method", "dense"}, y);
    const DirectResult want = direct_dense(q_, k_, v_);
    expect_close(y, want.out, 1e-5, describe(s));
    ASSERT_EQ(j.at("lse").size(), s.nq);
    ASSERT_EQ(j.at("alpha").size(), s.nq);
    for (std::size_t h = 0; h < s.nq; ++h) {
      EXPECT_NEAR(j.at("lse")[h].get<double>(), want.lse[h], 1e-4 * (1 + std::fabs(want.lse[h]))) << describe(s);
      EXPECT_EQ(j.at("alpha")[h].get<double>(), 1.0) << describe(s);
    }
  }
}

TEST_F(Attend, SparqWithKAtLeastSEqualsDense) {
  for (const Shape& s : {kMha, kGqa}) {
    make_inputs(s, 5);
    const DirectResult want = direct_dense(q_, k_, v_);
    for (std::size_t k : {s.S, s.S + 10}) {
      for (const char* gqa : {"shared", "per-head"}) {
        std::vector<float> y;
        const auto j = run({"--k", std::to_string(k), "--gqa", gqa, "--r", "3"}, y);
        const std::string ctx = describe(s) + " k=" + std::to_string(k) + " gqa=" + gqa;
        expect_close(y, want.out, 1e-5, ctx);
        for (const auto& a : j.at("alpha")) EXPECT_EQ(a.get<double>(), 1.0) << ctx;
      }
    }
  }
}

TEST_F(Attend, SparqMatchesReference) {
  struct Case {
    Shape shape;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases = {
      {{4, 4, 300, 64}, {}},  // defaults: c = 8
      {{4, 4, 300, 64}, {"--ratio", "4"}},
      {{4, 4, 300, 64}, {"--r", "16", "--k", "40", "--window", "8", "--no-reallocation"}},
      {{8, 2, 257, 32}, {}},  // GQA shared, reallocation off
      {{8, 2, 257, 32}, {"--gqa", "per-head", "--reallocation", "on", "--k", "33"}},
      {{6, 1, 100, 48}, {"--window", "0", "--k", "7"}},  // MQA
  };
  for (const Case& c : cases) {
    make_inputs(c.shape, 11);
    std::vector<float> y;
    const auto j = run(c.args, y);
    std::string ctx = describe(c.shape);
    for (const auto& a : c.args) ctx += " " + a;
    ASSERT_FALSE(j.is_null()) << ctx;
    const SparQResolved p{.r = j.at("r"),
                          .k = j.at("k"),
                          .window = j.at("window"),
                          .reallocation = j.at("reallocation"),
                          .gqa = *parse_gqa_selection(j.at("gqa").get<std::string>())};
    const reference::Result want = reference_sparq(p);
    expect_close(y, want.out, 1e-5, ctx);
    for (std::size_t h = 0; h < c.shape.nq; ++h)
      EXPECT_NEAR(j.at("alpha")[h].get<double>(), want.alpha[h], 1e-5) << ctx << " head " << h;
  }
}

TEST_F(Attend, JsonReportsResolvedParameters) {
  make_inputs({8, 2, 300, 64});
  std::vector<float> y;
  auto j = run({}, y);
  // DESIGN §1 defaults at c = 8: r = round(64/8) = 8, k = round(300/16) = 19, l = 4,
  // reallocation off for g > 1, shared selection.
  EXPECT_EQ(j.at("method"), "sparq");
  EXPECT_EQ(j.at("r"), 8);
  EXPECT_EQ(j.at("k"), 19);
  EXPECT_EQ(j.at("window"), 4);
  EXPECT_EQ(j.at("reallocation"), false);
  EXPECT_EQ(j.at("gqa"), "shared");
  EXPECT_EQ(j.at("dtype"), "f32");
  EXPECT_EQ(j.at("S"), 300);
  EXPECT_EQ(j.at("d"), 64);
  EXPECT_EQ(j.at("q_heads"), 8);
  EXPECT_EQ(j.at("kv_heads"), 2);
  EXPECT_TRUE(j.at("isa").is_string());
  EXPECT_EQ(j.at("alpha").size(), 8u);
  EXPECT_EQ(j.at("lse").size(), 8u);
  // The decode call's time, in seconds: part of the process's run, so more than 0 and
  // less than the whole process took (time in ms or µs, or a clock read at the wrong
  // place, breaks this).
  EXPECT_GT(j.at("elapsed_seconds").get<double>(), 0.0);
  EXPECT_LT(j.at("elapsed_seconds").get<double>(), wall_seconds_);
  GTEST_LOG_(INFO) << "decode " << j.at("elapsed_seconds").get<double>() << " s of a " << wall_seconds_ << " s process";
  EXPECT_EQ(j.at("out"), path("y.npy"));

  // Explicit values override the ratio one by one; l follows the final k.
  j = run({"--k", "40", "--reallocation", "on", "--dtype", "bf16"}, y);
  EXPECT_EQ(j.at("r"), 8);
  EXPECT_EQ(j.at("k"), 40);
  EXPECT_EQ(j.at("window"), 10);
  EXPECT_EQ(j.at("reallocation"), true);
  EXPECT_EQ(j.at("dtype"), "bf16");

  j = run({"--method", "dense"}, y);
  EXPECT_EQ(j.at("method"), "dense");
  EXPECT_TRUE(j.at("r").is_null());
  EXPECT_TRUE(j.at("k").is_null());
}

TEST_F(Attend, StorageTypesAndLayouts) {
  make_inputs({4, 2, 200, 64}, 3);
  std::vector<float> base;
  run({"--k", "30"}, base);
  for (const char* layout : {"s-major", "d-major"}) {
    std::vector<float> y;
    run({"--k", "30", "--layout", layout, "--block-tokens", "7"}, y);
    std::vector<double> want(base.begin(), base.end());
    expect_close(y, want, 1e-5, std::string("layout=") + layout);
  }
  const DirectResult dense = direct_dense(q_, k_, v_);
  for (auto [dtype, tol] : {std::pair{"f16", 5e-3}, std::pair{"bf16", 4e-2}}) {
    std::vector<float> y;
    run({"--method", "dense", "--dtype", dtype}, y);
    expect_close(y, dense.out, tol, std::string("dtype=") + dtype);
  }
}

TEST_F(Attend, Float64InputsAreAccepted) {
  make_inputs(kMha, 9);
  std::vector<double> q64(q_.data.begin(), q_.data.end());
  const auto bytes = make_npy(1, dict_for("<f8", "(4, 64)"), q64.data(), q64.size() * 8);
  {
    std::ofstream f(path("q.npy"), std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::vector<float> y;
  run({"--method", "dense"}, y);
  expect_close(y, direct_dense(q_, k_, v_).out, 1e-5, "float64 Q");
}

TEST_F(Attend, ReplacesExistingOutputAndLeavesNoTemporaries) {
  make_inputs(kMha);
  save("y.npy", random_array({1}, 3));
  const auto r = attend({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("wrote ")) << r.out;
  EXPECT_EQ(read_npy(path("y.npy")).shape, (std::vector<std::size_t>{4, 64}));
  EXPECT_EQ(files(), (std::vector<std::string>{"k.npy", "q.npy", "v.npy", "y.npy"}));
}

}  // namespace
}  // namespace sparq::test
