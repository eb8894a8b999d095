// The `clca` command end to end: run, flops, preprocess, inspect, init.
#include <cstdio>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/cpu/threads.h"
#include "tests/models/test_util.h"

namespace clca {
namespace {

using testing::ParityDir;

struct Output {
  int code = -1;
  std::string out;
};

// Runs `clca ARGS` and captures stdout (stderr goes to the test log), with
// `env` (e.g. "-u GOMP_SPINCOUNT X=1", as env(1) takes it) changing the
// environment.
Output Clca(const std::string& args, const std::string& env = "") {
  const std::string cmd =
      "env " + env + " " + std::string(CLCA_BINARY_DIR) + "/tools/clca " + args;
  Output o;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return o;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) o.out.append(buf, n);
  int status = pclose(pipe);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

std::string Case(const std::string& name, const std::string& what) {
  return ParityDir() + "/" + name + what;
}

// `clca run` reproduces the parity cases from the .pth and .config.json alone,
// in every checkpoint format they come in, at every keep rate they give.
TEST(CliTest, RunReproducesParityCases) {
  int checked = 0;
  for (const std::string& name : testing::ParityCases()) {
    const nlohmann::json config = testing::ReadJson(Case(name, ".config.json"));
    const std::string model = config["model"];
    bool implemented = false;
    for (const char* prefix : {"evit_", "topk_", "tome_", "vit_", "ats_", "dyvit_",
                               "patchmerger_", "sit_", "dpcknn_"}) {
      implemented = implemented || model.rfind(prefix, 0) == 0;
    }
    if (!implemented) continue;
    for (const auto& [kr, path] : testing::ExpectedFiles(name, config["keep_rate"][0])) {
      SCOPED_TRACE(path);
      Output o = Clca("run --checkpoint " + Case(name, ".pth") + " --config " +
                      Case(name, ".config.json") + " --input " + path +
                      " --keep-rate " + std::to_string(kr));
      ASSERT_EQ(o.code, 0) << o.out;
      nlohmann::json got = nlohmann::json::parse(o.out);
      auto expected = testing::ReadTensorDict(path);
      torch::Tensor logits = testing::Get(expected, "logits");
      torch::Tensor tokens = testing::Get(expected, "tokens");
      ASSERT_EQ(got["logits"].size(), static_cast<size_t>(logits.size(0)));
      double worst = 0;
      for (int64_t b = 0; b < logits.size(0); ++b) {
        for (int64_t k = 0; k < logits.size(1); ++k) {
          worst = std::max(worst, std::abs(got["logits"][b][k].get<double>() -
                                           logits[b][k].item<double>()));
        }
      }
      EXPECT_LE(worst, 1e-4);
      std::vector<int64_t> want(tokens.data_ptr<int64_t>(), tokens.data_ptr<int64_t>() + tokens.numel());
      EXPECT_EQ(got["tokens"].get<std::vector<int64_t>>(), want);
      EXPECT_NEAR(got["keep_rate"].get<double>(), kr, 1e-12);
      EXPECT_GT(got["gmacs"].get<double>(), 0);
      ++checked;
    }
  }
  EXPECT_GE(checked, 14);
}

TEST(CliTest, RunOnAnImageAndBadInputs) {
  const std::string ck = Case("evit_kr0.5_clca", ".pth");
  const std::string cfg = Case("evit_kr0.5_clca", ".config.json");
  const std::string image = std::string(CLCA_TEST_DATA) + "/preprocess/leaf_600x400.jpg";
  Output ok = Clca("run --checkpoint " + ck + " --config " + cfg + " --input " + image);
  ASSERT_EQ(ok.code, 0);
  nlohmann::json j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["logits"].size(), 1u);
  EXPECT_EQ(j["logits"][0].size(), 7u);
  for (const char* kr : {"0", "1.5", "nan", "-1"}) {
    EXPECT_NE(Clca("run --checkpoint " + ck + " --config " + cfg + " --input " + image +
                   " --keep-rate " + kr).code, 0) << kr;
  }
  const std::string bad = ::testing::TempDir() + "/bad.pth";
  std::ofstream(bad) << "PK\x03\x04 truncated";
  EXPECT_NE(Clca("run --checkpoint " + bad + " --config " + cfg + " --input " + image).code, 0);
  // A wrong input shape for the model.
  const std::string preprocessed = ::testing::TempDir() + "/leaf448.pt";
  ASSERT_EQ(Clca("preprocess " + image + " --input-size 448 --output " + preprocessed).code, 0);
  EXPECT_NE(Clca("run --checkpoint " + ck + " --config " + cfg + " --input " + preprocessed).code, 0);
}

TEST(CliTest, FlopsReportsPublishedFigures) {
  Output o = Clca("flops --model evit_vit_base_patch16_224 --input-size 448 --clc true --num-clr 1 "
                  "--ifa-head true --keep-rate 0.1,0.7 --json");
  ASSERT_EQ(o.code, 0);
  nlohmann::json j = nlohmann::json::parse(o.out);
  EXPECT_NEAR(j["results"][0]["gmacs"].get<double>(), 25.2, 0.1);
  EXPECT_NEAR(j["results"][1]["gmacs"].get<double>(), 50.9, 0.1);
  Output text = Clca("flops --config " + Case("tome_kr0.5_clca", ".config.json"));
  ASSERT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("GMACs"), std::string::npos);
  EXPECT_NE(Clca("flops --model evit_vit_base_patch16_224 --keep-rate 2").code, 0);
}

// One point of `clca bench --json`: a time, its rate and its spread agree.
void ExpectTimedPoint(const nlohmann::json& r) {
  EXPECT_GT(r["ms_per_image"].get<double>(), 0);
  EXPECT_NEAR(r["images_per_s"].get<double>() * r["ms_per_image"].get<double>(), 1000, 1e-6);
  EXPECT_LE(r["ms_per_image_min"].get<double>(), r["ms_per_image"].get<double>());
  EXPECT_GT(r["gmacs"].get<double>(), 0);
}

// `clca bench --json` of a tiny ViT (48 wide, 64 px) with `flags`; null if
// the command failed.
nlohmann::json TinyBench(const std::string& flags, const std::string& env = "") {
  Output o = Clca("bench --model evit_vit_tiny_patch16_224 --embed-dim 48 --input-size 64 "
                  "--warmup 1 --min-seconds 0 --json " + flags, env);
  EXPECT_EQ(o.code, 0);
  return o.code == 0 ? nlohmann::json::parse(o.out) : nlohmann::json();
}

// Started plainly, clca sets up the process itself: libgomp's brief spin and
// malloc keeping freed memory; the environment overrides either.
TEST(CliTest, BenchRunsWithTheProcessSettingsItSetsItself) {
  const std::string plain = "-u GOMP_SPINCOUNT -u OMP_WAIT_POLICY -u CLCA_PROCESS_SETUP";
  nlohmann::json j = TinyBench("--repeats 1", plain);
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["gomp_spincount"], "2000");
  EXPECT_EQ(j["malloc_keeps_freed_memory"], true);
  j = TinyBench("--repeats 1", plain + " GOMP_SPINCOUNT=100");
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["gomp_spincount"], "100");
  j = TinyBench("--repeats 1", plain + " CLCA_PROCESS_SETUP=0");
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["gomp_spincount"], "");
  EXPECT_EQ(j["malloc_keeps_freed_memory"], false);
}

TEST(CliTest, BenchTimesEveryPoint) {
  nlohmann::json j = TinyBench("--keep-rates 0.5,1.0 --batch 1,2 --dtype fp32,bf16 --repeats 2");
  ASSERT_FALSE(j.is_null());
  EXPECT_GT(j["gemm_gflops_by_dtype"]["fp32"].get<double>(), 0);
  // The bound is the faster of LibTorch's BLAS and oneDNN.
  EXPECT_GT(j["gemm_gflops_blas"]["fp32"].get<double>(), 0);
  EXPECT_GE(j["gemm_gflops_by_dtype"]["fp32"].get<double>(),
            j["gemm_gflops_blas"]["fp32"].get<double>());
  EXPECT_EQ(j["linear"], "onednn");
  ASSERT_EQ(j["results"].size(), 8u);
  for (const auto& r : j["results"]) ExpectTimedPoint(r);
  EXPECT_NE(Clca("bench --model evit_vit_tiny_patch16_224 --dtype fp8").code, 0);
  EXPECT_NE(Clca("bench --model evit_vit_tiny_patch16_224 --linear mkl").code, 0);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_NE(Clca("bench --model evit_vit_tiny_patch16_224 --device tpu").code, 0);
  EXPECT_NE(Clca("bench --model evit_vit_tiny_patch16_224 --attention flash").code, 0);
  if (!torch::cuda::is_available()) {
    EXPECT_NE(Clca("bench --model evit_vit_tiny_patch16_224 --device cuda").code, 0);
  }
}

TEST(CliTest, BenchRunsStreamsSideBySide) {
  nlohmann::json j =
      TinyBench("--keep-rates 0.5 --batch 2 --streams 2 --threads 1 --repeats 3");
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["streams"], 2);
  EXPECT_EQ(j["threads"], 1);
  // Each stream's matrix products stay on its own thread.
  if (BlasThreads() > 0) {
    EXPECT_EQ(j["blas_threads"], 1);
  }
  ASSERT_EQ(j["results"].size(), 1u);
  ExpectTimedPoint(j["results"][0]);
  EXPECT_NE(Clca("bench --model evit_vit_tiny_patch16_224 --streams 0").code, 0);
}

TEST(CliTest, BenchTimesMixedKeepRateBatches) {
  nlohmann::json j = TinyBench("--keep-rates 0.25,0.5,1.0 --batch 2,4 --mixed --repeats 1");
  ASSERT_FALSE(j.is_null());
  // Per batch size: the mix in one pass, by keep rate, then one keep rate
  // (the mean, the highest).
  ASSERT_EQ(j["results"].size(), 8u);
  for (const auto& r : j["results"]) {
    ExpectTimedPoint(r);
    EXPECT_THAT(r["keep_rates"].get<std::vector<double>>(),
                ::testing::ElementsAre(0.25, 0.5, 1.0));
    EXPECT_GT(r["of_mean_keep_rate"].get<double>(), 0);
    EXPECT_GT(r["of_max_keep_rate"].get<double>(), 0);
  }
  EXPECT_EQ(j["results"][0]["keep_rate"], "mixed");
  EXPECT_EQ(j["results"][1]["keep_rate"], "grouped");
  EXPECT_NEAR(j["results"][2]["keep_rate"].get<double>(), (0.25 + 0.5 + 1.0) / 3, 1e-12);
  EXPECT_DOUBLE_EQ(j["results"][3]["keep_rate"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["results"][2]["of_mean_keep_rate"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["results"][3]["of_max_keep_rate"].get<double>(), 1.0);
  // The GMACs per image are the mean over the keep rates, whatever the layout,
  // and fewer at one keep rate below the highest.
  EXPECT_DOUBLE_EQ(j["results"][0]["gmacs"].get<double>(), j["results"][1]["gmacs"].get<double>());
  EXPECT_LT(j["results"][2]["gmacs"].get<double>(), j["results"][3]["gmacs"].get<double>());
  EXPECT_EQ(j["results"][4]["batch"], 4);
  EXPECT_NE(Clca("bench --model evit_vit_tiny_patch16_224 --mixed --keep-rates 0.5,2").code, 0);
}

TEST(CliTest, PreprocessWritesALoadableTensor) {
  const std::string out = ::testing::TempDir() + "/leaf.pt";
  ASSERT_EQ(Clca("preprocess " + std::string(CLCA_TEST_DATA) +
                 "/preprocess/leaf_300x300.png --input-size 224 --output " + out).code, 0);
  std::ifstream in(out, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::Tensor t = torch::pickle_load(bytes).toTensor();
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{3, 224, 224}));
  auto expected = testing::ReadTensorDict(std::string(CLCA_TEST_DATA) + "/preprocess/expected_preprocess.pt");
  torch::Tensor want = testing::Get(expected, "leaf_300x300.png@224").to(torch::kFloat32);
  EXPECT_LE((t - want).abs().max().item<double>(), 0.05);
}

TEST(CliTest, InspectAndInit) {
  Output o = Clca("inspect --checkpoint " + Case("evit_kr0.1_clca", ".pth") +
                  " --config " + Case("evit_kr0.1_clca", ".config.json") + " --json");
  ASSERT_EQ(o.code, 0) << o.out;
  nlohmann::json j = nlohmann::json::parse(o.out);
  EXPECT_TRUE(j["model_builds"].get<bool>());
  EXPECT_EQ(j["weights_key"], "model");
  EXPECT_EQ(j["args"]["model"], "evit_vit_tiny_patch16_224");

  const std::string cfg = ::testing::TempDir() + "/tiny.json";
  std::ofstream(cfg) << R"({"model": "evit_vit_tiny_patch16_224", "embed_dim": 48, "num_classes": 3,
                           "clc": true, "num_clr": 1, "ifa_head": true, "keep_rate": [0.5]})";
  const std::string ck = ::testing::TempDir() + "/tiny.pth";
  ASSERT_EQ(Clca("init --config " + cfg + " --seed 3 --output " + ck).code, 0);
  Output run = Clca("run --checkpoint " + ck + " --input " + std::string(CLCA_TEST_DATA) +
                    "/preprocess/leaf_small_120x90.jpg");
  ASSERT_EQ(run.code, 0);
  EXPECT_EQ(nlohmann::json::parse(run.out)["keep_rate"].get<double>(), 0.5);
}

}  // namespace
}  // namespace clca
