// Behaviour of the model beyond parity: validation, threads, batching, resizing.
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "models/io/checkpoint.h"
#include "models/io/load_model.h"
#include "models/save/checkpoint_writer.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "tests/models/test_util.h"

namespace clca {
namespace {

using testing::ParityDir;

std::unique_ptr<ClcaModel> LoadCase(const std::string& name, nlohmann::json overrides = {},
                                    const ModelOptions& options = {}) {
  nlohmann::json config = testing::ReadJson(ParityDir() + "/" + name + ".config.json");
  if (overrides.is_object()) config.update(overrides);
  auto loaded = LoadModel(ParityDir() + "/" + name + ".pth", config, options);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? std::move(loaded->model) : nullptr;
}

torch::Tensor CaseInput(const std::string& name) {
  return testing::Get(testing::ReadTensorDict(ParityDir() + "/" + name + ".expected.pt"), "input")
      .to(torch::kFloat32);
}

TEST(ModelTest, RejectsBadKeepRatesAndShapes) {
  auto model = LoadCase("evit_kr0.5_clca");
  ASSERT_TRUE(model);
  torch::Tensor x = CaseInput("evit_kr0.5_clca");
  for (double kr : std::vector<double>{0.0, 1.5, -0.1, std::nan(""), INFINITY}) {
    auto r = model->Forward(x, kr);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << kr;
  }
  for (auto shape : std::vector<std::vector<int64_t>>{
           {3, 224, 224}, {1, 1, 224, 224}, {1, 3, 224, 200}, {1, 3, 448, 448}, {0, 3, 224, 224}}) {
    auto r = model->Forward(torch::zeros(shape), 0.5);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  }
  EXPECT_EQ(model->Forward(torch::zeros({1, 3, 224, 224}, torch::kInt64), 0.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->Forward(torch::Tensor(), 0.5).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelTest, CorruptAndMismatchedCheckpointsAreErrors) {
  const std::string dir = ::testing::TempDir();
  const std::string garbage = dir + "/garbage.pth";
  std::ofstream(garbage) << "this is not a checkpoint";
  EXPECT_FALSE(LoadModel(garbage, {{"model", "vit_tiny_patch16_224"}, {"num_classes", 7}}).ok());
  EXPECT_EQ(LoadModel(dir + "/absent.pth", nlohmann::json::object()).status().code(),
            absl::StatusCode::kNotFound);
  // Right file, wrong sizes: every problem is listed.
  auto wrong = LoadModel(ParityDir() + "/vit_base.pth",
                         {{"model", "vit_tiny_patch16_224"}, {"num_classes", 7}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("embed_dim is 48 in the checkpoint but 192"),
            std::string::npos)
      << wrong.status();
  EXPECT_LT(wrong.status().message().size(), 400u);
  // Right sizes, wrong head: the mis-shaped tensors are named.
  auto head = LoadModel(ParityDir() + "/vit_base.pth",
                        {{"model", "vit_tiny_patch16_224"}, {"num_classes", 9}, {"embed_dim", 48},
                         {"num_heads", 3}});
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.status().message().find("head.weight has shape [7,48], expected [9,48]"),
            std::string::npos)
      << head.status();
  // A CLCA configuration over a plain checkpoint: the missing keys are named.
  auto missing = LoadModel(ParityDir() + "/vit_base.pth",
                           {{"model", "vit_tiny_patch16_224"}, {"num_classes", 7}, {"embed_dim", 48},
                            {"num_heads", 3}, {"clc", true}, {"num_clr", 1}, {"ifa_head", true}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("clr"), std::string::npos) << missing.status();
  EXPECT_NE(missing.status().message().find("ifa_head.0.1.weight"), std::string::npos);
}

// One model, many threads, different keep rates at once.
TEST(ModelTest, ConcurrentForwardsAgreeWithSerialOnes) {
  auto model = LoadCase("tome_kr0.5_clca");
  ASSERT_TRUE(model);
  torch::Tensor x = CaseInput("tome_kr0.5_clca");
  const std::vector<double> rates = {0.25, 0.5, 0.7, 1.0};
  std::vector<torch::Tensor> serial;
  for (double kr : rates) serial.push_back(model->Forward(x, kr)->logits);
  std::vector<std::thread> threads;
  std::vector<double> worst(rates.size() * 3, 0.0);
  for (size_t t = 0; t < worst.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) {
        auto r = model->Forward(x, rates[t % rates.size()]);
        double d = r.ok() ? (r->logits - serial[t % rates.size()]).abs().max().item<double>() : 1e9;
        worst[t] = std::max(worst[t], d);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (double d : worst) EXPECT_LE(d, 1e-5);
}

// A batch gives each image the result it gets alone.
TEST(ModelTest, BatchingNeverChangesAResult) {
  for (const char* name : {"evit_kr0.1_clca", "topk_kr0.25_clca", "tome_kr0.5_clca", "vit_clca",
                           "ats_kr0.25_clca",
                           "evit_deit3_kr0.25_clca", "evit_clip_kr0.1_clca", "dyvit_kr0.5_clca",
                           "patchmerger_kr0.5_clca", "sit_kr0.5_clca", "dpcknn_kr0.5_clca"}) {
    SCOPED_TRACE(name);
    auto model = LoadCase(name);
    ASSERT_TRUE(model);
    torch::Tensor two = CaseInput(name);
    torch::Tensor batch = torch::cat({two, two.flip(3)}, 0);  // 4 distinct images
    auto together = model->Forward(batch, model->config().keep_rate);
    ASSERT_TRUE(together.ok());
    for (int64_t i = 0; i < batch.size(0); ++i) {
      auto alone = model->Forward(batch.narrow(0, i, 1), model->config().keep_rate);
      ASSERT_TRUE(alone.ok());
      EXPECT_LE((alone->logits[0] - together->logits[i]).abs().max().item<double>(), 1e-5);
    }
  }
}

// One pass over images at different keep rates gives each image what it gets
// alone at its own keep rate, for every method.
TEST(ModelTest, MixedKeepRatesNeverChangeAResult) {
  for (const char* name : {"evit_kr0.1_clca", "topk_kr0.25_clca", "tome_kr0.5_clca", "vit_clca",
                           "ats_kr0.25_clca", "evit_deit3_kr0.25_clca", "evit_clip_kr0.1_clca",
                           "dyvit_kr0.5_clca", "patchmerger_kr0.5_clca", "sit_kr0.5_clca",
                           "dpcknn_kr0.5_clca"}) {
    SCOPED_TRACE(name);
    auto model = LoadCase(name);
    ASSERT_TRUE(model);
    torch::Tensor two = CaseInput(name);
    torch::Tensor batch = torch::cat({two, two.flip(3), two.flip(2)}, 0);  // 6 distinct images
    const double own = model->config().keep_rate;
    const std::vector<double> rates = {0.3, own, 1.0, 0.3, 0.65, own};
    auto mixed = model->ForwardMixed(batch, rates);
    ASSERT_TRUE(mixed.ok()) << mixed.status();
    ASSERT_EQ(mixed->logits.size(0), batch.size(0));
    ASSERT_EQ(mixed->tokens.size(), rates.size());
    for (int64_t i = 0; i < batch.size(0); ++i) {
      SCOPED_TRACE(rates[i]);
      auto alone = model->Forward(batch.narrow(0, i, 1), rates[i]);
      ASSERT_TRUE(alone.ok());
      EXPECT_LE((alone->logits[0] - mixed->logits[i]).abs().max().item<double>(), 1e-5);
      if (model->config().reduction != Reduction::kAts) {
        EXPECT_EQ(alone->tokens, mixed->tokens[i]);
      }
    }
  }
}

TEST(ModelTest, MixedKeepRatesAreValidated) {
  auto model = LoadCase("evit_kr0.5_clca");
  ASSERT_TRUE(model);
  torch::Tensor x = CaseInput("evit_kr0.5_clca");
  EXPECT_EQ(model->ForwardMixed(x, {0.5}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->ForwardMixed(x, {0.5, 1.5}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->ForwardMixed(x, {0.5, std::nan("")}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto same = model->ForwardMixed(x, {0.5, 0.5});
  ASSERT_TRUE(same.ok());
  auto plain = model->Forward(x, 0.5);
  ASSERT_TRUE(plain.ok());
  EXPECT_LE((same->logits - plain->logits).abs().max().item<double>(), 1e-6);
}

// Attention computed one (image, head) pair at a time gives what all pairs at
// once give: merged-token sizes, padding and the CLS probabilities reach the
// right pairs.
TEST(ModelTest, AttentionGroupsNeverChangeAResult) {
  ModelOptions one_pair, all_pairs;
  one_pair.attention_group_bytes = 1;
  all_pairs.attention_group_bytes = 0;
  for (const char* name : {"evit_kr0.1_clca", "tome_kr0.5_clca", "ats_kr0.25_clca", "vit_clca",
                           "dpcknn_kr0.5_clca", "evit_clip_kr0.1_clca"}) {
    SCOPED_TRACE(name);
    auto grouped = LoadCase(name, {}, one_pair);
    auto whole = LoadCase(name, {}, all_pairs);
    ASSERT_TRUE(grouped && whole);
    torch::Tensor two = CaseInput(name);
    torch::Tensor batch = torch::cat({two, two.flip(3)}, 0);
    for (double kr : {grouped->config().keep_rate, 0.3}) {
      auto a = grouped->Forward(batch, kr);
      auto b = whole->Forward(batch, kr);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(a->tokens, b->tokens);
      EXPECT_LE((a->logits - b->logits).abs().max().item<double>(), 1e-5);
    }
  }
}

// ATS keeps a different number of tokens per image; padding must not leak.
// (Reference images at moderate keep rates: their sampling decisions are far
// from ties. Near a tie, the rounding differences between batch sizes may
// move one sample, as they may in any implementation.)
TEST(ModelTest, AtsRaggedBatchesMatchSingleImages) {
  auto model = LoadCase("ats_kr0.25_clca");
  ASSERT_TRUE(model);
  torch::Tensor two = CaseInput("ats_kr0.25_clca");
  torch::Tensor batch = torch::cat({two, two.flip(3)}, 0);
  for (double kr : {0.25, 0.5}) {
    auto together = model->Forward(batch, kr);
    ASSERT_TRUE(together.ok());
    std::set<int64_t> lengths;
    for (int64_t i = 0; i < batch.size(0); ++i) {
      auto alone = model->Forward(batch.narrow(0, i, 1), kr);
      ASSERT_TRUE(alone.ok());
      lengths.insert(alone->tokens[model->config().reduction_loc[0]]);
      EXPECT_LE((alone->logits[0] - together->logits[i]).abs().max().item<double>(), 1e-5)
          << "image " << i << " at kr " << kr;
      for (size_t blk = 0; blk < alone->tokens.size(); ++blk) {
        EXPECT_LE(alone->tokens[blk], together->tokens[blk]);
      }
    }
    // The two reference images keep 95 and 98 tokens at kr 0.5.
    if (kr == 0.5) {
      EXPECT_GT(lengths.size(), 1u);
    }
  }
}

TEST(ModelTest, PositionGridIsResampledForAnotherInputSize) {
  auto model = LoadCase("evit_kr0.5_clca", {{"input_size", 160}});
  ASSERT_TRUE(model);
  EXPECT_EQ(model->config().num_patches(), 100);
  auto r = model->Forward(torch::randn({2, 3, 160, 160}), 0.5);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->logits.sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_TRUE(torch::isfinite(r->logits).all().item<bool>());
  auto cost = EstimateCost(model->config(), 0.5);
  EXPECT_EQ(r->tokens, cost->tokens);
  // Same grid: resampling is the identity.
  auto same = LoadCase("evit_kr0.5_clca");
  torch::Tensor pe_a, pe_b;
  for (const auto& [k, v] : same->state_dict()) {
    if (k == "pos_embed") pe_a = v;
  }
  auto raw = LoadCheckpoint(ParityDir() + "/evit_kr0.5_clca.pth");
  for (const auto& [k, v] : raw->state_dict) {
    if (k == "pos_embed") pe_b = v;
  }
  EXPECT_TRUE(torch::equal(pe_a, pe_b));
}

TEST(ModelTest, RandomModelsRoundTripThroughCheckpoints) {
  for (nlohmann::json fields : {nlohmann::json{{"model", "tome_deit3_tiny_patch16_224"}},
                                nlohmann::json{{"model", "evit_vit_tiny_patch16_clip_224"},
                                               {"clc", true}, {"num_clr", 2}, {"ifa_head", true}},
                                nlohmann::json{{"model", "topk_vit_tiny_patch16_224"},
                                               {"ifa_head", true}, {"ifa_dws_conv_groups", 0}}}) {
    SCOPED_TRACE(fields.dump());
    fields.update({{"num_classes", 4}, {"embed_dim", 48}, {"input_size", 96}});
    auto config = ResolveConfig(fields);
    ASSERT_TRUE(config.ok()) << config.status();
    auto model = ClcaModel::CreateRandom(*config, 7);
    ASSERT_TRUE(model.ok()) << model.status();
    const std::string path = ::testing::TempDir() + "/random.pth";
    ASSERT_TRUE(SaveCheckpoint(path, (*model)->state_dict(), config->ToJson()).ok());
    // The saved args alone rebuild the model.
    auto loaded = LoadModel(path, nlohmann::json::object());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    torch::Tensor x = torch::randn({2, 3, 96, 96});
    auto a = (*model)->Forward(x, 0.5);
    auto b = loaded->model->Forward(x, 0.5);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(torch::equal(a->logits, b->logits));
    EXPECT_EQ(a->tokens, b->tokens);
  }
}

TEST(ModelTest, LowerKeepRatesKeepFewerTokens) {
  auto model = LoadCase("evit_kr0.5_clca");
  ASSERT_TRUE(model);
  torch::Tensor x = CaseInput("evit_kr0.5_clca");
  int64_t previous = 0;
  for (double kr : {0.1, 0.25, 0.5, 0.7, 1.0}) {
    auto r = model->Forward(x, kr);
    ASSERT_TRUE(r.ok());
    EXPECT_GT(r->tokens.back(), previous) << kr;
    previous = r->tokens.back();
  }
}

}  // namespace
}  // namespace clca
