// DynamicViT, PatchMerger, SiT and DPC-KNN beyond the parity cases: keep
// rates the reference vectors do not cover, the clamp to one token, the
// algorithm cores on hand-made tensors, and random models.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "models/io/checkpoint.h"
#include "models/io/load_model.h"
#include "models/reduction/methods.h"
#include "models/reduction/util.h"
#include "models/save/checkpoint_writer.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "tests/models/test_util.h"

namespace clca {
namespace {

// The reducer of `config` with random learned parameters.
absl::StatusOr<std::unique_ptr<TokenReducer>> RandomReducer(const ModelConfig& config,
                                                            uint64_t seed) {
  torch::manual_seed(seed);
  StateDict weights;
  for (const auto& [name, shape] : ReducerParameterShapes(config)) {
    weights.push_back({name, torch::randn(shape)});
  }
  WeightStore store(weights);
  auto reducer = MakeReducer(config, store);
  if (!reducer.ok()) return reducer.status();
  if (auto s = store.Finish(); !s.ok()) return s;
  return reducer;
}

using testing::ParityDir;

const char* const kMethods[] = {"dyvit", "patchmerger", "sit", "dpcknn"};

std::string CaseName(const std::string& method) { return method + "_kr0.5_clca"; }

nlohmann::json CaseConfig(const std::string& method) {
  return testing::ReadJson(ParityDir() + "/" + CaseName(method) + ".config.json");
}

torch::Tensor CaseInput(const std::string& method) {
  return testing::Get(
             testing::ReadTensorDict(ParityDir() + "/" + CaseName(method) + ".expected.pt"),
             "input")
      .to(torch::kFloat32);
}

// Tokens after each block as the reference computes them, written out
// independently of the reducers: `after(p, length)` is the length after the
// p-th reduction, the rest is the cross-layer cache bookkeeping.
template <typename After>
std::vector<int64_t> SimulateTokens(const ModelConfig& c, After after) {
  std::vector<int64_t> out;
  int64_t length = 1 + c.num_patches() + c.num_clr, cached = 0;
  const std::vector<int> recovery = c.recovery_layers();
  size_t p = 0;
  for (int i = 0; i < c.depth; ++i) {
    if (p < c.reduction_loc.size() && c.reduction_loc[p] == i) length = after(p++, length);
    out.push_back(length);
    if (!c.clc) continue;
    if (std::find(recovery.begin(), recovery.end(), i) != recovery.end()) {
      length += cached;
      cached = 0;
    }
    if (i < recovery.back()) cached += 1 + c.num_clr;
  }
  return out;
}

// The reference's counts for each method (with the clamp to one token).
std::vector<int64_t> ReferenceTokens(const ModelConfig& c, double kr) {
  const int64_t n = c.num_patches();
  auto target = [&](size_t p, double rate) {
    return static_cast<int64_t>(static_cast<double>(n) *
                                std::pow(rate, static_cast<double>(p + 1)));
  };
  switch (c.reduction) {
    case Reduction::kDynamicVit:
      // With CLC: int((N - 2) * kr) of the current N tokens stay beside CLS;
      // without: int(n * kr^(p+1)).
      return SimulateTokens(c, [&](size_t p, int64_t length) {
        const int64_t kept =
            c.clc ? static_cast<int64_t>(static_cast<double>(length - 2) * kr) : target(p, kr);
        return 1 + std::max<int64_t>(1, kept);
      });
    case Reduction::kPatchMerger:
    case Reduction::kSit:
      // As many outputs as asked for, at most the trained ones, at least one.
      return SimulateTokens(c, [&](size_t p, int64_t) {
        return 1 + std::min(std::max<int64_t>(target(p, kr), 1),
                            std::max<int64_t>(target(p, c.keep_rate), 1));
      });
    case Reduction::kDpcKnn: {
      // Clusters: at least 5 before the last location, at least 1 at it.
      auto clusters = [&](size_t p) {
        int64_t k = target(p, kr);
        return p + 1 < c.reduction_loc.size() ? std::max<int64_t>(k, 5) : std::max<int64_t>(k, 1);
      };
      return SimulateTokens(c, [&](size_t p, int64_t length) {
        const int64_t clustered = p == 0 ? n : clusters(p - 1);
        return length - clustered + std::min(clustered, clusters(p));
      });
    }
    default:
      return {};
  }
}

class ParityCheckpoint : public ::testing::TestWithParam<const char*> {};

// The parity checkpoints at keep rates the vectors do not cover, down to the
// rates where the reference's own count reaches zero.
TEST_P(ParityCheckpoint, UnseenKeepRatesFollowTheReferenceCounts) {
  const std::string method = GetParam();
  auto loaded = LoadModel(ParityDir() + "/" + CaseName(method) + ".pth", CaseConfig(method));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ClcaModel& model = *loaded->model;
  torch::Tensor input = CaseInput(method);
  for (double kr : {0.25, 0.7, 1.0, 0.1, 0.05}) {
    SCOPED_TRACE("keep rate " + std::to_string(kr));
    auto result = model.Forward(input, kr);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(torch::isfinite(result->logits).all().item<bool>());
    auto cost = EstimateCost(model.config(), kr);
    ASSERT_TRUE(cost.ok()) << cost.status();
    EXPECT_EQ(result->tokens, cost->tokens);
    EXPECT_EQ(result->tokens, ReferenceTokens(model.config(), kr));
  }
}

// Where the reference would output no token, one remains.
TEST_P(ParityCheckpoint, CountsThatReachZeroKeepOneToken) {
  const std::string method = GetParam();
  auto loaded = LoadModel(ParityDir() + "/" + CaseName(method) + ".pth", CaseConfig(method));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  // PatchMerger/SiT at kr 0.1: int(196 * 0.1^3) = 0 at block 9. DynamicViT
  // with CLC at kr 0.05: int(14 * 0.05) = 0 at block 6. DPC-KNN at kr 0.05
  // (its own floors): 5 patch tokens before block 9, one cluster at it.
  const double kr = method == "dyvit" || method == "dpcknn" ? 0.05 : 0.1;
  const int block = method == "dyvit" ? 6 : 9;
  auto result = loaded->model->Forward(CaseInput(method), kr);
  ASSERT_TRUE(result.ok()) << result.status();
  if (method == "dpcknn") {
    EXPECT_EQ(result->tokens[block], result->tokens[block - 1] - 5 + 1);
  } else {
    EXPECT_EQ(result->tokens[block], 2);  // CLS and one token
  }
  EXPECT_TRUE(torch::isfinite(result->logits).all().item<bool>());
}

// A random model of each method runs, and survives saving and loading.
TEST_P(ParityCheckpoint, RandomModelsRunAndRoundTrip) {
  const std::string method = GetParam();
  for (double configured : {0.5, 0.1}) {
    SCOPED_TRACE("configured keep rate " + std::to_string(configured));
    nlohmann::json given = {{"model", method + "_vit_tiny_patch16_224"},
                            {"embed_dim", 48}, {"num_heads", 3}, {"num_classes", 5},
                            {"input_size", 224}, {"keep_rate", configured}, {"clc", true},
                            {"num_clr", 1}, {"ifa_head", true}};
    auto config = ResolveConfig(given);
    ASSERT_TRUE(config.ok()) << config.status();
    auto model = ClcaModel::CreateRandom(*config, /*seed=*/7);
    ASSERT_TRUE(model.ok()) << model.status();
    torch::Tensor x = torch::randn({2, 3, 224, 224}, torch::TensorOptions().dtype(torch::kFloat32));
    auto first = (*model)->Forward(x, configured);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_TRUE(torch::isfinite(first->logits).all().item<bool>());
    EXPECT_EQ(first->tokens, EstimateCost(*config, configured)->tokens);

    const std::string path = ::testing::TempDir() + "/" + method + "_random.pth";
    ASSERT_TRUE(SaveCheckpoint(path, (*model)->state_dict(), config->ToJson()).ok());
    auto reloaded = LoadModel(path, given);
    ASSERT_TRUE(reloaded.ok()) << reloaded.status();
    auto second = reloaded->model->Forward(x, configured);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(second->tokens, first->tokens);
    EXPECT_LE((second->logits - first->logits).abs().max().item<double>(), 1e-6);
  }
}

// Learned reducer parameters follow the model into another compute type.
TEST_P(ParityCheckpoint, RunsInBFloat16) {
  const std::string method = GetParam();
  ModelOptions options;
  options.precision = Precision::kBFloat16;
  auto loaded =
      LoadModel(ParityDir() + "/" + CaseName(method) + ".pth", CaseConfig(method), options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto result = loaded->model->Forward(CaseInput(method), 0.5);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->logits.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(result->logits).all().item<bool>());
  EXPECT_EQ(result->tokens, EstimateCost(loaded->model->config(), 0.5)->tokens);
  // It agrees with float32 on the reference's weights: the same classes and
  // logits within bfloat16's rounding of activations (2^-8 relative).
  auto fp32 = LoadModel(ParityDir() + "/" + CaseName(method) + ".pth", CaseConfig(method));
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  auto want = fp32->model->Forward(CaseInput(method), 0.5);
  ASSERT_TRUE(want.ok()) << want.status();
  const float spread = (want->logits.max() - want->logits.min()).item<float>();
  const float error = (result->logits - want->logits).abs().max().item<float>();
  EXPECT_LT(error, 0.05f * spread);
  EXPECT_TRUE(torch::equal(result->logits.argmax(1), want->logits.argmax(1)));
}

// Without the cross-layer cache every method targets the initial patches.
TEST_P(ParityCheckpoint, WithoutTheCacheCountsFollowTheInitialPatches) {
  const std::string method = GetParam();
  auto config = ResolveConfig({{"model", method + "_vit_tiny_patch16_224"}, {"embed_dim", 48},
                               {"num_heads", 3}, {"num_classes", 5}, {"keep_rate", 0.5}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto model = ClcaModel::CreateRandom(*config, /*seed=*/9);
  ASSERT_TRUE(model.ok()) << model.status();
  torch::Tensor x = torch::randn({1, 3, 224, 224});
  for (double kr : {0.5, 0.25, 0.1}) {
    SCOPED_TRACE("keep rate " + std::to_string(kr));
    auto result = (*model)->Forward(x, kr);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(torch::isfinite(result->logits).all().item<bool>());
    EXPECT_EQ(result->tokens, EstimateCost(*config, kr)->tokens);
    EXPECT_EQ(result->tokens, ReferenceTokens(*config, kr));
  }
}

// The extra work each method adds is what `clca flops` reports beyond the
// backbone over the same token counts.
TEST_P(ParityCheckpoint, CostCountsTheMethodsOwnWork) {
  const std::string method = GetParam();
  auto config = ResolveConfig({{"model", method + "_vit_base_patch16_224"}, {"num_classes", 1000},
                               {"input_size", 448}, {"keep_rate", 0.5}, {"clc", true},
                               {"num_clr", 1}, {"ifa_head", true}});
  ASSERT_TRUE(config.ok()) << config.status();
  const double kr = 0.5;
  auto cost = EstimateCost(*config, kr);
  ASSERT_TRUE(cost.ok()) << cost.status();
  const double c = config->embed_dim;
  double backbone = static_cast<double>(config->num_patches()) * 3 * 16 * 16 * c;
  for (int64_t t : cost->tokens) {
    const double l = static_cast<double>(t);
    backbone += 4 * l * c * c + 2 * l * l * c + 8 * l * c * c;
  }
  double extra = 0;
  for (size_t p = 0; p < config->reduction_loc.size(); ++p) {
    // Before-block methods see the tokens the previous block left.
    const double length = static_cast<double>(cost->tokens[config->reduction_loc[p] - 1]);
    const double after = static_cast<double>(cost->tokens[config->reduction_loc[p]]);
    const double m = length - 1;
    if (method == "dyvit") {
      extra += m * (c * c + c / 2 + c * c / 2 + (c / 2) * (c / 4) + (c / 4) * 2);
    } else if (method == "patchmerger") {
      extra += 2 * (after - 1) * m * c;
    } else if (method == "sit") {
      extra += m * c * (c / 2) + m * (c / 2) * (after - 1) + (after - 1) * m * c;
    } else {
      // At kr 0.5 no count needs DPC-KNN's floors.
      const double clustered =
          p == 0 ? config->num_patches()
                 : static_cast<double>(TargetTokens(config->num_patches(), kr, p - 1));
      extra += clustered * clustered * c + 2 * clustered * c;
    }
  }
  EXPECT_NEAR(cost->macs, backbone + extra, 1.0);
  EXPECT_GT(extra, 0);
}

INSTANTIATE_TEST_SUITE_P(Methods, ParityCheckpoint, ::testing::ValuesIn(kMethods),
                         [](const auto& info) { return std::string(info.param); });

TEST(ReducerLoading, QueryCountMismatchNamesTheTrainingKeepRate) {
  nlohmann::json config = CaseConfig("patchmerger");
  config["keep_rate"] = {0.7};
  auto loaded = LoadModel(ParityDir() + "/" + CaseName("patchmerger") + ".pth", config);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find("cluster_layers.0.queries has shape [98,48], expected "
                                           "[137,48]"),
            std::string::npos)
      << loaded.status();
  EXPECT_NE(loaded.status().message().find("keep_rate"), std::string::npos);
}

TEST(ReducerLoading, MissingAndMisShapedParametersAreNamed) {
  auto checkpoint = LoadCheckpoint(ParityDir() + "/" + CaseName("dyvit") + ".pth");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto config = ResolveConfig(CaseConfig("dyvit"), &checkpoint->args);
  ASSERT_TRUE(config.ok()) << config.status();
  StateDict weights;
  for (auto& [name, t] : checkpoint->state_dict) {
    if (name == "score_predictor.1.out_conv.4.weight") continue;
    weights.push_back({name, name == "score_predictor.2.in_conv.1.bias" ? t.narrow(0, 0, 5) : t});
  }
  auto model = ClcaModel::Create(*config, weights);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("score_predictor.1.out_conv.4.weight"), std::string::npos)
      << model.status();
  EXPECT_NE(model.status().message().find("score_predictor.2.in_conv.1.bias has shape [5]"),
            std::string::npos)
      << model.status();
}

// --- Algorithm cores on hand-made tensors ---

TEST(DynamicVitCore, PolicyMeanSkipsMaskedTokens) {
  torch::Tensor features =
      torch::tensor({{1.0f, 2.0f}, {100.0f, 100.0f}, {3.0f, 6.0f}}).unsqueeze(0);
  torch::Tensor policy = torch::tensor({1.0f, 0.0f, 1.0f}).reshape({1, 3, 1});
  EXPECT_TRUE(torch::allclose(PolicyMean(features, policy), torch::tensor({{{2.0f, 4.0f}}})));
  // Nothing to average: zero rather than the reference's 0/0.
  EXPECT_TRUE(torch::equal(PolicyMean(features, torch::zeros({1, 3, 1})), torch::zeros({1, 1, 2})));
}

TEST(DynamicVitCore, BestScoredIsHighestFirst) {
  torch::Tensor score = torch::tensor({{0.1f, 0.9f, 0.5f, 0.7f}, {0.4f, 0.3f, 0.2f, 0.1f}});
  EXPECT_TRUE(torch::equal(BestScored(score, 2), torch::tensor({{1, 3}, {0, 1}})));
}

// Recovered cache tokens stay candidates but leave the predictor's global
// feature: the ranking of the other tokens does not depend on their values.
TEST(DynamicVitCore, RecoveredTokensDoNotSteerTheOthers) {
  auto config = ResolveConfig({{"model", "dyvit_vit_tiny_patch16_224"}, {"embed_dim", 8},
                               {"num_heads", 2}, {"depth", 2}, {"num_classes", 3},
                               {"reduction_loc", {0}}, {"clc", true}, {"num_clr", 1}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto reducer = RandomReducer(*config, 3);
  ASSERT_TRUE(reducer.ok()) << reducer.status();
  ASSERT_TRUE((*reducer)->tracks_recovered());

  // CLS, 4 tokens, then 5 recovered ones, all kept but one (kr 1 with CLC).
  constexpr int64_t kLength = 10, kFirstRecovered = 5;
  const ReductionStep step{0, 1.0, 4};
  // Which input row each output row is (inputs are distinct random rows).
  auto sources = [](const torch::Tensor& in, const torch::Tensor& out) {
    return (out[0].unsqueeze(1) - in[0].unsqueeze(0)).abs().sum(-1).argmin(1);
  };
  // The ranking of the non-recovered tokens after reduction.
  auto ranking = [&](const torch::Tensor& x, bool flagged) {
    Tokens tokens;
    tokens.x = x;
    tokens.recovered = torch::zeros({1, kLength, 1});
    if (flagged) tokens.recovered.narrow(1, kFirstRecovered, kLength - kFirstRecovered).fill_(1);
    (*reducer)->Reduce(step, AttentionSummary(), tokens);
    EXPECT_EQ(tokens.x.size(1), (*reducer)->TokensAfter(step, kLength));
    torch::Tensor from = sources(x, tokens.x);
    std::vector<int64_t> order;
    for (int64_t i = 0; i < from.size(0); ++i) {
      const int64_t source = from[i].item<int64_t>();
      // The flags travel with their tokens.
      EXPECT_EQ(tokens.recovered[0][i][0].item<float>(),
                flagged && source >= kFirstRecovered ? 1.0f : 0.0f);
      if (source < kFirstRecovered) order.push_back(source);
    }
    EXPECT_EQ(order.front(), 0);  // CLS first
    return order;
  };
  // The order of the tokens that both rankings hold.
  auto shared = [](const std::vector<int64_t>& v, const std::vector<int64_t>& other) {
    std::vector<int64_t> out;
    for (int64_t t : v) {
      if (std::find(other.begin(), other.end(), t) != other.end()) out.push_back(t);
    }
    return out;
  };
  bool unflagged_steer = false;
  for (int trial = 0; trial < 20; ++trial) {
    torch::Tensor a = torch::randn({1, kLength, 8});
    torch::Tensor b = a.clone();
    b.narrow(1, kFirstRecovered, kLength - kFirstRecovered).normal_().mul_(3);
    auto ra = ranking(a, true), rb = ranking(b, true);
    EXPECT_EQ(shared(ra, rb), shared(rb, ra)) << "trial " << trial;
    auto ua = ranking(a, false), ub = ranking(b, false);
    unflagged_steer = unflagged_steer || shared(ua, ub) != shared(ub, ua);
  }
  // The check means something: counted in, the same tokens do steer the others.
  EXPECT_TRUE(unflagged_steer);
}

TEST(PatchMergerCore, OutputIsTheSoftmaxWeightedMix) {
  torch::Tensor tokens = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {1.0f, 1.0f}}).unsqueeze(0);
  torch::Tensor queries = torch::tensor({{2.0f, 0.0f}, {0.0f, 0.0f}});
  TokenMix mix = QueryMerge(tokens, queries);
  ASSERT_EQ(mix.tokens.sizes(), (std::vector<int64_t>{1, 2, 2}));
  // Query 0: logits (2, 0, 2) -> weights (e^2, 1, e^2) / (2e^2 + 1).
  const double e2 = std::exp(2.0), z = 2 * e2 + 1;
  torch::Tensor want0 = torch::tensor({{static_cast<float>(e2 / z), static_cast<float>(1 / z),
                                        static_cast<float>(e2 / z)}});
  EXPECT_TRUE(torch::allclose(mix.weights[0][0], want0[0]));
  EXPECT_TRUE(torch::allclose(mix.tokens[0][0],
                              torch::tensor({static_cast<float>(2 * e2 / z),
                                             static_cast<float>((1 + e2) / z)})));
  // A zero query is the plain mean.
  EXPECT_TRUE(torch::allclose(mix.tokens[0][1], tokens[0].mean(0)));
  EXPECT_TRUE(torch::allclose(mix.weights.sum(-1), torch::ones({1, 2})));
}

TEST(SitCore, SlimmingWeightsSumToOneOverTheTokens) {
  torch::manual_seed(5);
  torch::Tensor tokens = torch::randn({2, 6, 4});
  torch::Tensor logits = torch::randn({2, 6, 3});
  TokenMix mix = Slim(tokens, logits, torch::full({1, 1, 1}, 2.0f));
  ASSERT_EQ(mix.weights.sizes(), (std::vector<int64_t>{2, 3, 6}));
  EXPECT_TRUE(torch::allclose(mix.weights.sum(-1), torch::ones({2, 3})));
  EXPECT_TRUE(torch::allclose(mix.weights, (logits * 2).softmax(1).transpose(1, 2)));
  EXPECT_TRUE(torch::allclose(mix.tokens, torch::bmm(mix.weights, tokens)));
  // Scale zero: every output is the mean of the tokens.
  TokenMix flat = Slim(tokens, logits, torch::zeros({1, 1, 1}));
  EXPECT_TRUE(torch::allclose(flat.tokens, tokens.mean(1, true).expand({2, 3, 4})));
}

TEST(DpcKnnCore, CentresAreTheDensityPeaks) {
  // Two blobs: a tight one around (10, 10) and a looser one around (0, 0);
  // each blob's middle point is its densest.
  std::vector<std::vector<float>> points = {
      {0.3f, 0.0f}, {0.0f, 0.0f}, {-0.3f, 0.0f}, {0.0f, 0.3f}, {0.0f, -0.3f},
      {10.1f, 10.0f}, {9.9f, 10.0f}, {10.0f, 10.1f}, {10.0f, 10.0f}, {10.0f, 9.9f}};
  std::vector<float> flat;
  for (const auto& point : points) flat.insert(flat.end(), point.begin(), point.end());
  torch::Tensor x = torch::tensor(flat).reshape({1, 10, 2});
  DpcKnnClusters clusters = ClusterDpcKnn(x, /*clusters=*/2, /*neighbours=*/3);
  // The global peak first (it scores its image's largest distance), then the other.
  EXPECT_TRUE(torch::equal(clusters.centers, torch::tensor({{8, 1}})));
  EXPECT_TRUE(torch::equal(clusters.assignment,
                           torch::tensor({{1, 1, 1, 1, 1, 0, 0, 0, 0, 0}})));
}

TEST(DpcKnnCore, MergeIsTheWeightedClusterAverage) {
  torch::Tensor x = torch::tensor({{1.0f, 0.0f}, {3.0f, 4.0f}, {5.0f, 5.0f}}).unsqueeze(0);
  torch::Tensor assignment = torch::tensor({{0, 0, 1}});
  torch::Tensor weight = torch::tensor({1.0f, 3.0f, 2.0f}).reshape({1, 3, 1});
  torch::Tensor merged = MergeClusters(x, assignment, 2, weight);
  EXPECT_TRUE(torch::allclose(merged, torch::tensor({{{2.5f, 3.0f}, {5.0f, 5.0f}}}), 1e-5, 1e-5));
}

// CLS stays first and the carriers and recovered tokens stay last, untouched.
TEST(DpcKnnCore, KeepsClsAndTheCacheTokensAside) {
  auto config = ResolveConfig({{"model", "dpcknn_vit_tiny_patch16_224"}, {"embed_dim", 8},
                               {"num_heads", 2}, {"num_classes", 3}, {"clc", true},
                               {"num_clr", 1}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto reducer = RandomReducer(*config, 11);
  ASSERT_TRUE(reducer.ok()) << reducer.status();
  // Second location, 16 patches at kr 0.5: the first left max(8, 5) = 8
  // patch tokens, this one makes max(4, 5) = 5 clusters; 3 cache tokens follow.
  const ReductionStep step{1, 0.5, 16};
  Tokens tokens;
  tokens.x = torch::randn({2, 12, 8});
  torch::Tensor before = tokens.x.clone();
  ASSERT_EQ((*reducer)->TokensAfter(step, 12), 9);
  (*reducer)->Reduce(step, AttentionSummary(), tokens);
  ASSERT_EQ(tokens.x.size(1), 9);
  EXPECT_TRUE(torch::equal(tokens.x.narrow(1, 0, 1), before.narrow(1, 0, 1)));
  EXPECT_TRUE(torch::equal(tokens.x.narrow(1, 6, 3), before.narrow(1, 9, 3)));
}

}  // namespace
}  // namespace clca
