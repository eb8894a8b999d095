// `clca eval` end to end on a synthetic dataset and randomly initialised
// model versions: results against an independent count, `clca flops` and
// the dataset, the table formats, the plot, and bad inputs.
#include <unistd.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/io/load_model.h"
#include "models/preprocess/preprocess.h"
#include "models/vit/model.h"
#include "tests/tools/clca_cli.h"
#include "tools/datasets/dataset.h"

namespace clca {
namespace {

namespace fs = std::filesystem;

using testing::ClcaCli;
using testing::kClca;
using testing::Output;
using testing::ReadFile;

const std::vector<double> kKeepRates = {0.1, 0.25, 0.5, 0.7, 1.0};

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

class EvalCliTest : public ::testing::Test {
 protected:
  // One dataset and three model versions for all tests: 3 cultivars x 2 test
  // images of 64 px; tiny/1 (EViT + CLCA, 64 px input), small/2 (EViT, 48 px)
  // and four/1 (4 classes, for the mismatch).
  static void SetUpTestSuite() {
    if (!fs::exists(kClca)) return;
    cli_ = new ClcaCli("clca_eval_cli");
    ASSERT_EQ(Clca("synth --out " + Data() + " --classes 3 --train-per-class 0 "
                   "--test-per-class 2 --size 64 --seed 5 --threads 1").code, 0);
    const std::string classes = ReadFile(Data() + "/classes.txt");
    MakeModel("tiny/1", R"("input_size": 64, "num_classes": 3, "clc": true, "num_clr": 1,
                           "ifa_head": true)", classes, 1);
    MakeModel("small/2", R"("input_size": 48, "num_classes": 3)", classes, 2);
    MakeModel("four/1", R"("input_size": 32, "num_classes": 4)", classes + "cultivar_003\n", 3);
  }

  static void TearDownTestSuite() {
    delete cli_;
    cli_ = nullptr;
  }

  void SetUp() override {
    if (!fs::exists(kClca)) GTEST_SKIP() << "build the clca target first";
  }

  static std::string Path(const std::string& name) { return cli_->Path(name); }
  static std::string Data() { return Path("ds"); }
  static std::string Model(const std::string& name) { return Path("repo/" + name); }

  static Output Clca(const std::string& args) { return cli_->Run(args); }

  // A version directory with model.json, labels.txt and a random checkpoint
  // of a small EViT ViT (embed 48, depth 4, reduction after blocks 1 and 2).
  static void MakeModel(const std::string& name, const std::string& fields,
                        const std::string& labels, int seed) {
    const fs::path dir = Model(name);
    WriteFile(dir / "model.json",
              R"({"model": "evit_vit_tiny_patch16_224", "embed_dim": 48, "depth": 4,
                  "num_heads": 3, "reduction_loc": [1, 2], "keep_rate": [0.5], )" +
                  fields + "}");
    WriteFile(dir / "labels.txt", labels);
    ASSERT_EQ(Clca("init --config " + (dir / "model.json").string() + " --seed " +
                   std::to_string(seed) + " --output " + (dir / "model.pth").string()).code, 0);
  }

  static ClcaCli* cli_;
};

ClcaCli* EvalCliTest::cli_ = nullptr;

// Top-1 and top-5 hits of a version directory at a keep rate, one image at a
// time, preprocessing each file on its own.
std::pair<int, int> CountHits(const std::string& dir, const data::Dataset& dataset, double kr) {
  std::ifstream in(dir + "/model.json");
  auto loaded = LoadModel(dir + "/model.pth", nlohmann::json::parse(in));
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return {-1, -1};
  const ClcaModel& model = *loaded->model;
  PreprocessOptions options;
  options.input_size = model.config().input_size;
  int top1 = 0, top5 = 0;
  for (const data::Example& e : dataset.examples) {
    auto image = PreprocessFile(e.path, options);
    EXPECT_TRUE(image.ok()) << image.status();
    if (!image.ok()) return {-1, -1};
    auto result = model.Forward(image->unsqueeze(0), kr);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {-1, -1};
    const torch::Tensor logits = result->logits[0];
    const int64_t k = std::min<int64_t>(5, logits.size(0));
    const torch::Tensor top = std::get<1>(logits.topk(k));
    top1 += top[0].item<int64_t>() == e.class_id;
    top5 += top.eq(e.class_id).any().item<bool>();
  }
  return {top1, top5};
}

TEST_F(EvalCliTest, JsonAgreesWithFlopsAndAnIndependentCount) {
  const std::string plot = Path("plot.png");
  Output o = Clca("eval --data " + Data() + " --model " + Model("tiny/1") + " --model " +
                  Model("small/2") + "/ --threads 1 --loader-threads 2 --batch 4 --json --plot " +
                  plot);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.err.find("6/6 images"), std::string::npos) << o.err;  // progress on stderr
  const nlohmann::json j = nlohmann::json::parse(o.out);  // stdout is JSON alone
  ASSERT_EQ(j.size(), 1u);
  const nlohmann::json& results = j["results"];
  ASSERT_EQ(results.size(), 10u);

  auto dataset = data::OpenDataset(Data(), "test");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->examples.size(), 6u);
  size_t row = 0;
  for (const std::string name : {"tiny/1", "small/2"}) {
    SCOPED_TRACE(name);
    Output flops = Clca("flops --config " + Model(name) + "/model.json --keep-rate " +
                        "0.1,0.25,0.5,0.7,1.0 --json");
    ASSERT_EQ(flops.code, 0) << flops.err;
    const nlohmann::json expected = nlohmann::json::parse(flops.out)["results"];
    double previous_gmacs = 0;
    for (size_t r = 0; r < kKeepRates.size(); ++r, ++row) {
      const nlohmann::json& got = results[row];
      SCOPED_TRACE(got.dump());
      EXPECT_EQ(got["model"], name);
      EXPECT_EQ(got["keep_rate"].get<double>(), kKeepRates[r]);
      EXPECT_EQ(got["images"].get<int>(), 6);
      EXPECT_LE(got["top1"].get<double>(), got["top5"].get<double>());
      EXPECT_EQ(got["top5"].get<double>(), 100.0);  // 3 classes: top-5 holds them all
      EXPECT_DOUBLE_EQ(got["gmacs"].get<double>(), expected[r]["gmacs"].get<double>());
      EXPECT_GT(got["gmacs"].get<double>(), previous_gmacs);
      previous_gmacs = got["gmacs"].get<double>();
      const auto [top1, top5] = CountHits(Model(name), *dataset, kKeepRates[r]);
      EXPECT_NEAR(got["top1"].get<double>(), 100.0 * top1 / 6, 1e-9);
      EXPECT_NEAR(got["top5"].get<double>(), 100.0 * top5 / 6, 1e-9);
    }
  }

  // The plot is a PNG that decodes to the default size.
  const std::string png = ReadFile(plot);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto image = DecodeImage(reinterpret_cast<const uint8_t*>(png.data()), png.size(), {});
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, 960);
  EXPECT_EQ(image->height, 640);
}

TEST_F(EvalCliTest, TextAndMarkdownTables) {
  const std::string table = Path("table.md");
  Output md = Clca("eval --data " + Data() + " --model " + Model("tiny/1") +
                   " --name TinyCLCA --keep-rates 0.5,1 --limit 4 --threads 1 --format markdown "
                   "--out " + table);
  ASSERT_EQ(md.code, 0) << md.err;
  EXPECT_EQ(md.out, "");  // the table went to --out
  const std::string text = ReadFile(table);
  EXPECT_EQ(text.rfind("| model | keep rate | top-1 (%) | top-5 (%) | GMACs | images |\n"
                       "| --- |", 0), 0u) << text;
  EXPECT_NE(text.find("| TinyCLCA | 0.5 | "), std::string::npos) << text;
  EXPECT_NE(text.find("| TinyCLCA | 1.0 | "), std::string::npos) << text;
  EXPECT_NE(text.find(" | 4 |\n"), std::string::npos) << text;  // --limit 4
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);

  Output plain = Clca("eval --data " + Data() + " --model " + Model("small/2") +
                      " --keep-rates 1.0 --threads 1 --quiet");
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(plain.err, "");  // --quiet
  EXPECT_NE(plain.out.find("model"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("GMACs"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("small/2"), std::string::npos) << plain.out;
}

// bf16 evaluation reports agreement with float32 and the logit difference.
TEST_F(EvalCliTest, LowerPrecisionIsComparedWithFloat32) {
  Output o = Clca("eval --data " + Data() + " --model " + Model("tiny/1") +
                  " --keep-rates 0.5,1.0 --threads 1 --quiet --json --precision bf16");
  ASSERT_EQ(o.code, 0) << o.err;
  const nlohmann::json results = nlohmann::json::parse(o.out)["results"];
  ASSERT_EQ(results.size(), 2u);
  for (const nlohmann::json& r : results) {
    EXPECT_EQ(r["precision"], "bf16");
    EXPECT_GE(r["agreement_with_fp32"].get<double>(), 0);
    EXPECT_LE(r["agreement_with_fp32"].get<double>(), 100);
    EXPECT_GT(r["max_abs_logit_diff"].get<double>(), 0);  // bf16 rounds
    EXPECT_LE(r["mean_abs_logit_diff"].get<double>(), r["max_abs_logit_diff"].get<double>());
  }
  Output fp32 = Clca("eval --data " + Data() + " --model " + Model("tiny/1") +
                     " --keep-rates 1.0 --threads 1 --quiet --json");
  ASSERT_EQ(fp32.code, 0);
  EXPECT_FALSE(nlohmann::json::parse(fp32.out)["results"][0].contains("agreement_with_fp32"));
  Output bad = Clca("eval --data " + Data() + " --model " + Model("tiny/1") + " --precision int8");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("unknown precision"), std::string::npos) << bad.err;
}

TEST_F(EvalCliTest, BadInputsFailWithAMessage) {
  const std::string data = " --data " + Data();
  const std::string tiny = " --model " + Model("tiny/1");
  fs::create_directories(Path("repo/empty/1"));
  WriteFile(Path("repo/short_labels/1/labels.txt"), "cultivar_000\ncultivar_001\n");
  fs::copy_file(Model("tiny/1") + "/model.json", Path("repo/short_labels/1/model.json"));
  fs::copy_file(Model("tiny/1") + "/model.pth", Path("repo/short_labels/1/model.pth"));
  const std::pair<std::string, std::string> cases[] = {
      {data + " --model " + Path("repo/missing/1"), "does not exist"},
      {data + " --model " + Path("repo/empty/1"), "checkpoint"},
      {data + " --model " + Model("four/1"), "has 4 classes but the dataset"},
      {data + " --model " + Path("repo/short_labels/1"), "has 2 labels but the model has 3"},
      {data + tiny + " --keep-rates 0", "keep rate"},
      {data + tiny + " --keep-rates 0.5,1.5", "keep rate"},
      {data + tiny + " --keep-rates half", "not a number"},
      {" --data " + Path("nowhere") + tiny, "does not exist"},
      {data, "--model is required"},
      {tiny, "--data is required"},
      {data + tiny + " --format yaml", "unknown format"},
      {data + tiny + " --name a --name b", "--name"},
      {data + tiny + " --plot " + Path("no/such/dir/plot.png"), "does not exist"},
  };
  // The cases run concurrently: each is mostly process start-up.
  std::vector<std::future<Output>> runs;
  for (const auto& c : cases) {
    runs.push_back(
        std::async(std::launch::async, [&c] { return Clca("eval --threads 1" + c.first); }));
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& [args, message] = cases[i];
    SCOPED_TRACE(args);
    const Output o = runs[i].get();
    EXPECT_EQ(o.code, 1);
    EXPECT_EQ(o.out, "");
    // Progress lines may come first; the error is one "clca: ..." line.
    const size_t at = o.err.find("clca: ");
    if (at == std::string::npos) {
      ADD_FAILURE() << "no error message: " << o.err;
      continue;
    }
    EXPECT_TRUE(at == 0 || o.err[at - 1] == '\n') << o.err;
    EXPECT_NE(o.err.find(message, at), std::string::npos) << o.err;
  }
}

}  // namespace
}  // namespace clca
