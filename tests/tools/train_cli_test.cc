// `clca train` end to end on a small synthetic dataset: the version
// directory it writes, serving its checkpoint with `clca run`, resuming, and
// bad inputs.
#include <unistd.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/io/checkpoint.h"
#include "tests/tools/clca_cli.h"

namespace clca {
namespace {

namespace fs = std::filesystem;

using testing::ClcaCli;
using testing::kClca;
using testing::Output;
using testing::ReadFile;

class TrainCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kClca)) return;
    cli_ = new ClcaCli("clca_train_cli");
    ASSERT_EQ(Clca("synth --out " + Path("ds") + " --classes 3 --train-per-class 4 "
                   "--test-per-class 1 --size 80 --seed 3 --threads 1").code, 0);
    std::ofstream(Path("config.json"))
        << R"({"model": "evit_vit_tiny_patch16_224", "embed_dim": 32, "depth": 5, "num_heads": 2,
              "input_size": 64, "reduction_loc": [1, 2], "keep_rate": [0.5], "ifa_head": true,
              "clc": true, "num_clr": 1})";
  }

  static void TearDownTestSuite() {
    delete cli_;
    cli_ = nullptr;
  }

  void SetUp() override {
    if (!fs::exists(kClca)) GTEST_SKIP() << "build the clca target first";
  }

  static std::string Path(const std::string& name) { return cli_->Path(name); }

  static Output Clca(const std::string& args) { return cli_->Run(args); }

  // Trains into `out` for `steps` more steps (deterministic: one thread).
  static Output Train(const std::string& out, int steps, const std::string& extra = "") {
    return Clca("train --data " + Path("ds") + " --config " + Path("config.json") + " --out " +
                Path(out) + " --batch 4 --epochs 3 --warmup-epochs 1 --cooldown-epochs 0 --lr 1e-3 "
                "--keep-rates 0.25,1.0 --threads 1 --loader-threads 2 --quiet --json --max-steps " +
                std::to_string(steps) + " " + extra);
  }

  static ClcaCli* cli_;
};

ClcaCli* TrainCliTest::cli_ = nullptr;

TEST_F(TrainCliTest, WritesAVersionDirectoryThatClcaRunServes) {
  Output o = Train("run1", 3);
  ASSERT_EQ(o.code, 0) << o.err;
  const nlohmann::json summary = nlohmann::json::parse(o.out);
  EXPECT_EQ(summary["steps"], 3);
  EXPECT_TRUE(std::isfinite(summary["first_loss"].get<double>()));
  for (const char* f : {"model.pth", "model.json", "labels.txt", "train_log.jsonl",
                        "resume/model.pth", "resume/optimizer.pt", "resume/state.json"}) {
    EXPECT_TRUE(fs::exists(Path("run1/") + f)) << f;
  }
  EXPECT_EQ(ReadFile(Path("run1/labels.txt")), ReadFile(Path("ds/classes.txt")));
  const nlohmann::json config = nlohmann::json::parse(ReadFile(Path("run1/model.json")));
  EXPECT_EQ(config["num_classes"], 3);
  // The checkpoint carries the configuration (reference `args`).
  auto checkpoint = LoadCheckpoint(Path("run1/model.pth"));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->args["num_classes"], 3);
  EXPECT_EQ(checkpoint->args["train_keep_rates"], nlohmann::json({0.25, 1.0}));

  // The final checkpoint and the resumable state hold the same weights:
  // `clca run` gives the same logits from either, from the checkpoint alone.
  const std::string csv = ReadFile(Path("ds/test.csv"));
  const std::string row = csv.substr(csv.find('\n') + 1);
  const std::string file =
      Path("ds/images/") + row.substr(row.find(',') + 1, row.find('\n') - row.find(',') - 1);
  Output a = Clca("run --checkpoint " + Path("run1/model.pth") + " --input " + file + " --keep-rate 0.5");
  Output b = Clca("run --checkpoint " + Path("run1/resume/model.pth") + " --input " + file +
                  " --keep-rate 0.5");
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(nlohmann::json::parse(a.out)["logits"], nlohmann::json::parse(b.out)["logits"]);
}

TEST_F(TrainCliTest, ResumingMatchesAnUninterruptedRun) {
  ASSERT_EQ(Train("straight", 5).code, 0);
  ASSERT_EQ(Train("split", 2).code, 0);
  Output resumed = Train("split", 3, "--resume");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(nlohmann::json::parse(resumed.out)["steps"], 5);
  auto a = LoadCheckpoint(Path("straight/model.pth"));
  auto b = LoadCheckpoint(Path("split/model.pth"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->state_dict.size(), b->state_dict.size());
  for (size_t i = 0; i < a->state_dict.size(); ++i) {
    const auto& [name, x] = a->state_dict[i];
    EXPECT_EQ(name, b->state_dict[i].first);
    EXPECT_TRUE(torch::allclose(x.to(torch::kDouble), b->state_dict[i].second.to(torch::kDouble), 1e-5, 1e-6))
        << name;
  }
}

// Fine-tuning another method from a CLCA checkpoint: the blocks and the
// patch embedding carry over, and pos_embed loses the carrier token's row.
TEST_F(TrainCliTest, InitFromACheckpointWithAnotherCarrierCount) {
  ASSERT_EQ(Train("clca_init", 1).code, 0);
  std::ofstream(Path("plain.json"))
      << R"({"model": "evit_vit_tiny_patch16_224", "embed_dim": 32, "depth": 5, "num_heads": 2,
            "input_size": 64, "reduction_loc": [1, 2], "keep_rate": [0.5], "ifa_head": false,
            "clc": false, "num_clr": 0})";
  Output o = Clca("train --data " + Path("ds") + " --config " + Path("plain.json") + " --out " +
                  Path("plain_from_clca") + " --init " + Path("clca_init/model.pth") +
                  " --batch 4 --epochs 1 --warmup-epochs 0 --cooldown-epochs 0 --threads 1 "
                  "--loader-threads 1 --quiet --json --max-steps 1");
  ASSERT_EQ(o.code, 0) << o.err;
  auto from = LoadCheckpoint(Path("clca_init/model.pth"));
  auto plain = LoadCheckpoint(Path("plain_from_clca/model.pth"));
  ASSERT_TRUE(from.ok() && plain.ok());
  auto find = [](const Checkpoint& c, const std::string& name) {
    for (const auto& [n, t] : c.state_dict) {
      if (n == name) return t;
    }
    return torch::Tensor();
  };
  const torch::Tensor a = find(*from, "pos_embed"), b = find(*plain, "pos_embed");
  ASSERT_TRUE(a.defined() && b.defined());
  EXPECT_EQ(a.size(1), 1 + 16 + 1);  // CLS, 4 x 4 grid, carrier
  EXPECT_EQ(b.size(1), 1 + 16);
  EXPECT_FALSE(find(*plain, "clr").defined());
}

TEST_F(TrainCliTest, BadInputsFailWithAMessage) {
  Output o = Clca("train --data " + Path("nowhere") + " --config " + Path("config.json") +
                  " --out " + Path("bad1") + " --quiet");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("clca: "), std::string::npos) << o.err;
  o = Train("bad2", 1, "--num-classes 7");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("the dataset has 3 classes"), std::string::npos) << o.err;
  o = Clca("train --data " + Path("ds") + " --config " + Path("config.json") + " --out " +
           Path("bad3") + " --keep-rates 0 --quiet");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("keep rate"), std::string::npos) << o.err;
  o = Clca("train --data " + Path("ds") + " --config " + Path("config.json") + " --out " +
           Path("bad4") + " --resume --quiet");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("nothing to resume"), std::string::npos) << o.err;
  o = Clca("train --data " + Path("ds") + " --config " + Path("config.json") + " --out " +
           Path("bad5") + " --batch 100 --quiet");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("fewer than one batch"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace clca
