// Training: the recipe's schedule and weight-decay groups, every method
// learning, checkpoints that round-trip, and resuming.
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "models/io/checkpoint.h"
#include "models/io/load_model.h"
#include "models/save/checkpoint_writer.h"
#include "models/train/train.h"
#include "models/vit/model.h"
#include "tests/models/test_util.h"

namespace clca {
namespace {

using testing::SmallConfig;

std::unique_ptr<ClcaModel> Trainable(const ModelConfig& config, uint64_t seed = 3) {
  ModelOptions options;
  options.trainable = true;
  auto model = ClcaModel::CreateRandom(config, seed, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

TrainOptions FastRecipe() {
  TrainOptions o;
  o.epochs = 100;
  o.warmup_epochs = 0;
  o.cooldown_epochs = 0;
  o.lr = 1e-3;
  o.keep_rates = {0.5};
  return o;
}

TEST(TrainTest, ScheduleWarmsUpThenFollowsTheCosineThenCoolsDown) {
  TrainOptions o;  // 45 epochs, 2 warm-up, 5 cool-down
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 0), 1e-6);
  EXPECT_NEAR(LearningRateAt(o, 1), (1e-6 + 1e-4) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 2), 1e-4);
  EXPECT_NEAR(LearningRateAt(o, 2 + 19), (1e-4 + 1e-5) / 2, 1e-12);  // half-way
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 40), 1e-5);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 44.5), 1e-5);
  for (double e = 2; e < 40; e += 0.5) EXPECT_GE(LearningRateAt(o, e), LearningRateAt(o, e + 0.5));
}

TEST(TrainTest, WeightDecaySkipsOneDimensionalParametersAndEmbeddings) {
  auto model = Trainable(SmallConfig("evit", true));
  int decayed = 0, exempt = 0;
  for (const auto& [name, p] : model->trainable_parameters()) {
    const bool expect_exempt = p.dim() <= 1 || name == "pos_embed" || name == "cls_token" ||
                               name == "clr";
    EXPECT_EQ(ExemptFromWeightDecay(name, p), expect_exempt) << name;
    (expect_exempt ? exempt : decayed)++;
  }
  EXPECT_GT(decayed, 0);
  EXPECT_GT(exempt, 0);
  EXPECT_TRUE(ExemptFromWeightDecay("clr", torch::zeros({1, 1, 32})));
  EXPECT_FALSE(ExemptFromWeightDecay("blocks.0.attn.qkv.weight", torch::zeros({96, 32})));
}

TEST(TrainTest, DctPatchEmbeddingSpansTheFrequencies) {
  const torch::Tensor w = DctPatchEmbedding(192, 16);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{192, 3, 16, 16}));
  const torch::Tensor rows = w.reshape({192, -1}).to(torch::kDouble);
  const torch::Tensor norms = rows.norm(2, 1);
  // Orthogonal rows: distinct basis functions.
  const torch::Tensor gram = torch::matmul(rows / norms.unsqueeze(1), (rows / norms.unsqueeze(1)).t());
  EXPECT_TRUE(torch::allclose(gram, torch::eye(192, torch::kDouble), 1e-5, 1e-5));  // float32
  // The mean square row norm is that of a random row; the last row is among
  // the highest frequencies and (1 + u + v) times stronger than the first,
  // the constant (DC) one.
  const double base = 0.02 * std::sqrt(768.0);
  EXPECT_NEAR(norms.square().mean().sqrt().item<double>(), base, 1e-5);
  EXPECT_GT(norms[191].item<double>(), 20 * norms[0].item<double>());
  EXPECT_TRUE(torch::allclose(w[0][0], torch::full({16, 16}, w[0][0][0][0].item<double>())));
}

TEST(TrainTest, LossFallsOnAFixedBatch) {
  const ModelConfig config = SmallConfig("evit", true);
  auto model = Trainable(config);
  auto trainer = Trainer::Create(model.get(), FastRecipe(), /*steps_per_epoch=*/1);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  torch::manual_seed(0);
  torch::Tensor images = torch::randn({8, 3, 64, 64});
  torch::Tensor labels = torch::tensor({0, 1, 2, 3, 0, 1, 2, 3}, torch::kLong);
  double first = 0, last = 0;
  for (int i = 0; i < 30; ++i) {
    auto r = (*trainer)->Step(images, labels);
    ASSERT_TRUE(r.ok()) << r.status();
    if (i == 0) first = r->loss;
    last = r->loss;
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << ", last " << last;
}

// One step of every method, with and without CLCA: the loss is finite, every
// parameter that takes part gets a finite gradient, the learned parts of the
// method included, and BatchNorm's statistics move.
class EveryMethod : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(EveryMethod, TrainsAStep) {
  const auto& [method, clca] = GetParam();
  const ModelConfig config = SmallConfig(method, clca);
  auto model = Trainable(config);
  ASSERT_NE(model, nullptr);
  torch::manual_seed(1);
  torch::Tensor images = torch::randn({4, 3, 64, 64});
  auto out = model->ForwardTrain(images, 0.5);
  ASSERT_TRUE(out.ok()) << out.status();
  torch::Tensor loss = torch::nn::functional::cross_entropy(
                           out->logits, torch::tensor({0, 1, 2, 3}, torch::kLong)) +
                       out->auxiliary_loss;
  ASSERT_TRUE(std::isfinite(loss.item<double>()));
  if (method == "dyvit") {
    EXPECT_GT(out->auxiliary_loss.item<double>(), 0);
  }
  loss.backward();
  int with_gradient = 0, method_parameters = 0;
  double method_gradient = 0;
  for (const auto& [name, p] : model->trainable_parameters()) {
    // Parameters the reference keeps but never uses.
    if (clca && (name.rfind("head.", 0) == 0 || name.rfind("norm.", 0) == 0)) continue;
    const bool learned_by_method = name.rfind("score_predictor.", 0) == 0 ||
                                   name.rfind("cluster_layers.", 0) == 0;
    if (learned_by_method) ++method_parameters;
    if (!p.grad().defined()) {
      ADD_FAILURE() << name << " got no gradient";
      continue;
    }
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>()) << name;
    // (Per tensor a gradient may vanish: DPC-KNN's score bias cancels out.)
    if (learned_by_method) method_gradient += p.grad().abs().sum().item<double>();
    ++with_gradient;
  }
  EXPECT_GT(with_gradient, 10);
  if (method == "dyvit" || method == "patchmerger" || method == "sit" || method == "dpcknn") {
    EXPECT_GT(method_parameters, 0);
    EXPECT_GT(method_gradient, 0);
  }
  if (clca) {
    for (const auto& [name, t] : model->state_dict()) {
      if (name == "ifa_head.0.0.running_var") {
        EXPECT_FALSE(torch::allclose(t, torch::ones_like(t)));
      }
      if (name == "ifa_head.0.0.num_batches_tracked") {
        EXPECT_EQ(t.item<int64_t>(), 1);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Methods, EveryMethod,
    ::testing::Combine(::testing::Values("vit", "evit", "topk", "tome", "dyvit", "ats",
                                         "patchmerger", "sit", "dpcknn"),
                       ::testing::Bool()),
    [](const auto& info) {
      return std::get<0>(info.param) + (std::get<1>(info.param) ? "_clca" : "_plain");
    });

// Train, save in the reference format, load back: the same logits.
TEST(TrainTest, TrainedCheckpointRoundTrips) {
  const ModelConfig config = SmallConfig("evit", true);
  auto model = Trainable(config);
  auto trainer = Trainer::Create(model.get(), FastRecipe(), 1);
  ASSERT_TRUE(trainer.ok());
  torch::manual_seed(2);
  torch::Tensor images = torch::randn({4, 3, 64, 64});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*trainer)->Step(images, torch::tensor({0, 1, 2, 3}, torch::kLong)).ok());
  }
  const std::string path =
      (std::filesystem::temp_directory_path() / ("clca_train_roundtrip_" + std::to_string(getpid()) + ".pth"))
          .string();
  ASSERT_TRUE(SaveCheckpoint(path, model->state_dict(), config.ToJson()).ok());
  // The trainable model computes with LibTorch's BLAS; so does this one.
  ModelOptions options;
  options.onednn_linear = false;
  auto loaded = LoadModel(path, nlohmann::json::object(), options);
  std::filesystem::remove(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (double kr : {1.0, 0.5, 0.1}) {
    auto a = model->Forward(images, kr);
    auto b = loaded->model->Forward(images, kr);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(torch::equal(a->logits, b->logits)) << "keep rate " << kr;
  }
  // The weights hold what the reference model's strict load expects.
  bool has_head = false, has_counter = false;
  for (const auto& [name, t] : model->state_dict()) {
    has_head = has_head || name == "head.weight";
    has_counter = has_counter || name == "ifa_head.0.2.num_batches_tracked";
  }
  EXPECT_TRUE(has_head);
  EXPECT_TRUE(has_counter);
}

// Two steps, save, restore into a fresh model and trainer, two more steps:
// the same weights as four steps in one go.
TEST(TrainTest, ResumingGivesTheSameWeights) {
  const ModelConfig config = SmallConfig("evit", true);
  torch::manual_seed(4);
  torch::Tensor images = torch::randn({4, 3, 64, 64});
  torch::Tensor labels = torch::tensor({0, 1, 2, 3}, torch::kLong);
  TrainOptions recipe = FastRecipe();
  recipe.keep_rates = {0.25, 1.0};

  auto straight = Trainable(config);
  auto t1 = Trainer::Create(straight.get(), recipe, 1);
  ASSERT_TRUE(t1.ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE((*t1)->Step(images, labels).ok());

  auto first = Trainable(config);
  auto t2 = Trainer::Create(first.get(), recipe, 1);
  ASSERT_TRUE(t2.ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*t2)->Step(images, labels).ok());
  const std::string optimizer_path =
      (std::filesystem::temp_directory_path() / ("clca_train_resume_" + std::to_string(getpid()) + ".pt"))
          .string();
  ASSERT_TRUE((*t2)->SaveOptimizer(optimizer_path).ok());
  ModelOptions options;
  options.trainable = true;
  auto second = ClcaModel::Create(config, first->state_dict(), options);
  ASSERT_TRUE(second.ok()) << second.status();
  auto t3 = Trainer::Create(second->get(), recipe, 1);
  ASSERT_TRUE(t3.ok());
  ASSERT_TRUE((*t3)->LoadOptimizer(optimizer_path).ok());
  std::filesystem::remove(optimizer_path);
  (*t3)->set_step(2);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*t3)->Step(images, labels).ok());

  const StateDict a = straight->state_dict(), b = (*second)->state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i].second.to(torch::kDouble), b[i].second.to(torch::kDouble), 1e-5, 1e-6))
        << a[i].first;
  }
}

TEST(TrainTest, RefusesWhatCannotTrain) {
  const ModelConfig config = SmallConfig("evit", false);
  auto frozen = ClcaModel::CreateRandom(config, 1);
  ASSERT_TRUE(frozen.ok());
  EXPECT_FALSE(Trainer::Create(frozen->get(), TrainOptions{}, 1).ok());
  EXPECT_EQ((*frozen)->ForwardTrain(torch::randn({2, 3, 64, 64}), 0.5).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto model = Trainable(config);
  TrainOptions bad;
  bad.keep_rates = {1.5};
  EXPECT_EQ(Trainer::Create(model.get(), bad, 1).status().code(), absl::StatusCode::kInvalidArgument);
  auto trainer = Trainer::Create(model.get(), TrainOptions{}, 1);
  ASSERT_TRUE(trainer.ok());
  auto r = (*trainer)->Step(torch::randn({2, 3, 64, 64}), torch::tensor({0, 9}, torch::kLong));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  ModelOptions half;
  half.trainable = true;
  half.precision = Precision::kBFloat16;
  EXPECT_FALSE(ClcaModel::CreateRandom(config, 1, half).ok());
}

}  // namespace
}  // namespace clca
