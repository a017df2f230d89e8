// End to end: `sparq generate` and `sparq perplexity` on a tiny random checkpoint the
// test writes itself (seconds): dense and SparQ with k >= S give the same tokens, the
// decode trace is written in its documented format, and a corrupt model is refused
// with a clear one-line error and exit code 2.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "sparq/tools/model/llama_checkpoint.hpp"
#include "sparq/tools/npy.hpp"

namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = std::string(SPARQ_CLI_PATH) + " " + args + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

class ModelCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparq_model_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    const sparq::model::LlamaConfig c{
        .dim = 128, .hidden_dim = 96, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1, .vocab_size = 256, .seq_len = 256};
    const auto bytes = sparq::model::encode_llama_checkpoint(sparq::model::random_llama_weights(c, 3, 0.08f));
    model_ = dir_ / "tiny.bin";
    std::ofstream(model_, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    std::ofstream text(dir_ / "text.txt");
    for (int i = 0; i < 20; ++i) text << "The quick brown fox jumps over the lazy dog. ";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_, model_;
};

TEST_F(ModelCli, GenerateDenseEqualsSparqWithKAtLeastS) {
  const Result r = run("generate --model " + model_.string() +
                           " --prompt 'The pass key is' --tokens 20 --method dense,sparq:4,sparq:16 --k 100000 --json",
                       dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 3u);
  const auto dense = j["results"][0]["tokens"];
  EXPECT_EQ(dense.size(), 20u);
  EXPECT_EQ(j["results"][1]["tokens"], dense) << r.out;
  EXPECT_EQ(j["results"][2]["tokens"], dense) << r.out;
}

TEST_F(ModelCli, PerplexityAndTrace) {
  const fs::path trace = dir_ / "trace";
  const Result r =
      run("perplexity --model " + model_.string() + " --text " + (dir_ / "text.txt").string() +
              " --context 64 --prefix 16 --max-windows 2 --method sparq:2,dense --json --dump-trace " + trace.string(),
          dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 2u);
  for (const auto& m : j["results"]) {
    EXPECT_GT(m["perplexity"].get<double>(), 1.0);
    EXPECT_EQ(m["scored_tokens"].get<int>(), 2 * 48);
  }
  const auto manifest = nlohmann::json::parse(std::ifstream(trace / "manifest.json"));
  EXPECT_EQ(manifest["positions"], 63);
  EXPECT_EQ(manifest["layers"], 2);
  const auto q = sparq::read_npy(trace / manifest["files"][1]["q"].get<std::string>());
  EXPECT_EQ(q.shape, (std::vector<std::size_t>{63, 2, 64}));
  const auto k = sparq::read_npy(trace / manifest["files"][1]["k"].get<std::string>());
  EXPECT_EQ(k.shape, (std::vector<std::size_t>{63, 1, 64}));
}

TEST_F(ModelCli, BaselinesRunEndToEndAndEqualDenseAtRatioOne) {
  // An SPQLM v2 bf16 model with its SHA-256 sidecar, 4 query heads on 2 KV heads.
  const sparq::model::LlamaConfig c{
      .dim = 128, .hidden_dim = 96, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 256, .seq_len = 256};
  const fs::path v2 = dir_ / "v2.bin";
  sparq::model::write_checkpoint_file(
      v2, sparq::model::encode_spqlm_checkpoint(sparq::model::random_llama_weights(c, 8, 0.1f), sparq::DType::bf16));
  const std::string common = "generate --model " + v2.string() + " --require-hash --prompt 'The pass key is 123' ";
  Result r =
      run(common + "--tokens 12 --method dense,sparq:8,sparq-per-head-real:8,oracle:8,h2o:8,window:8 --json", dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 6u);
  EXPECT_EQ(j["results"][2]["method"], "sparq-per-head-real:8");
  EXPECT_TRUE(j["model"]["hash_verified"].get<bool>());
  EXPECT_EQ(j["model"]["format"], "SPQLM v2");
  for (const auto& m : j["results"]) EXPECT_EQ(m["tokens"].size(), 12u) << m["method"];
  // At ratio 1 the equal-bytes budget covers the cache: every baseline is dense attention.
  r = run(common + "--tokens 12 --method dense,oracle,h2o,window --ratio 1 --json", dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  for (const auto& m : j["results"]) EXPECT_EQ(m["tokens"], j["results"][0]["tokens"]) << m["method"];
  // Bytes read: at ratio 1 a baseline reads every key and value row, as dense does; SparQ
  // at 8 reads several times less.
  for (std::size_t i = 1; i < j["results"].size(); ++i)  // [0] is dense
    EXPECT_NEAR(j["results"][i]["transfer_vs_dense"].get<double>(), 1.0, 0.01) << j["results"][i]["method"];
  r = run(common + "--tokens 4 --method dense,sparq:8,window:8 --json", dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["results"][0]["bytes_per_step"].get<double>(), 0.0);
  EXPECT_GT(j["results"][1]["transfer_vs_dense"].get<double>(), 2.0) << r.out;
  EXPECT_GT(j["results"][2]["transfer_vs_dense"].get<double>(), 2.0) << r.out;
  // A trace whose prompt part ends early: sparq eval then replays the rest of the prompt too.
  r = run(common + "--tokens 4 --method dense --trace " + (dir_ / "tr").string() + " --trace-prefill 5", dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto manifest = nlohmann::json::parse(std::ifstream(dir_ / "tr" / "manifest.json"));
  EXPECT_EQ(manifest["prefill"], 5);
  EXPECT_EQ(manifest["positions"], 19 + 4 - 1);  // "The pass key is 123" and the tokens fed back
  EXPECT_EQ(manifest["rope"]["base"], 10000.0);
  // A replaced model is refused, naming both hashes; --require-hash needs a sidecar.
  std::ofstream(v2.string() + ".sha256", std::ios::trunc) << std::string(64, '0') << "  v2.bin\n";
  r = run(common + "--tokens 1", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("SHA-256 mismatch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::string(64, '0')), std::string::npos) << r.err;
  fs::remove(v2.string() + ".sha256");
  r = run(common + "--tokens 1", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no hash file"), std::string::npos) << r.err;
}

TEST_F(ModelCli, PasskeyRunsResumesAndRefusesAnotherRunsResults) {
  {
    std::ofstream held(dir_ / "heldout.txt");
    for (int i = 0; i < 400; ++i) held << "Line " << i << " of the held-out text, words and more words.\n";
  }
  const fs::path results = dir_ / "results.jsonl";
  const std::string common = "passkey --model " + model_.string() + " --heldout " + (dir_ / "heldout.txt").string() +
                             " --lengths 400,512 --depths 20,80 --keys 2 --method dense,window:1,sparq:4 --results " +
                             results.string();
  Result r = run(common + " --key-range 0:1 --json", dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompts_run"], 4);
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["results"][0]["all"]["total"], 4);
  // window:1 keeps every position: the same answers as dense.
  std::map<std::string, std::map<std::string, bool>> correct;
  {
    std::ifstream in(results);
    std::string line;
    int lines = 0;
    while (std::getline(in, line)) {
      const auto rec = nlohmann::json::parse(line);
      correct[rec["method"]][rec["length"].dump() + rec["depth"].dump()] = rec["correct"];
      ++lines;
    }
    EXPECT_EQ(lines, 12);
  }
  EXPECT_EQ(correct["window:1"], correct["dense"]);
  // The rest of the keys: only the missing prompts run; the table covers all 8.
  r = run(common + " --json", dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompts_run"], 4);
  EXPECT_EQ(j["results"][1]["all"]["total"], 8);
  r = run(common + " --json", dir_);
  EXPECT_EQ(nlohmann::json::parse(r.out)["prompts_run"], 0);
  r = run(common + " --by-depth", dir_);
  EXPECT_NE(r.out.find("| method | 400 | 512 | all | prompts |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 80% |"), std::string::npos) << r.out;
  // Another seed's prompts are another run.
  r = run(common + " --seed 5", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("another run"), std::string::npos) << r.err;
}

TEST_F(ModelCli, TruncatedModelIsAUsageError) {
  fs::resize_file(model_, fs::file_size(model_) - 10);
  const Result r = run("generate --model " + model_.string() + " --prompt hi --tokens 2", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  const Result bad = run("generate --model " + model_.string() + " --prompt hi --method sparq:0.5", dir_);
  EXPECT_EQ(bad.code, 2);
}

}  // namespace
