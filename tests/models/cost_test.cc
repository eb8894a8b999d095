// The cost model against the figures the paper publishes (GMACs).
#include <gtest/gtest.h>

#include "models/vit/cost.h"

namespace clca {
namespace {

double Gmacs(nlohmann::json fields, double keep_rate) {
  fields["num_classes"] = 1000;
  auto config = ResolveConfig(fields);
  EXPECT_TRUE(config.ok()) << config.status();
  auto cost = EstimateCost(*config, keep_rate);
  EXPECT_TRUE(cost.ok()) << cost.status();
  return cost->gmacs();
}

struct Published {
  const char* what;
  nlohmann::json fields;
  double keep_rate;
  double gmacs;
};

TEST(CostTest, ReproducesPublishedFigures) {
  const nlohmann::json clca = {{"clc", true}, {"num_clr", 1}, {"ifa_head", true}};
  auto with = [](nlohmann::json a, const nlohmann::json& b) {
    a.update(b);
    return a;
  };
  const std::vector<Published> cases = {
      {"ViT-B/16 @224", {{"model", "vit_base_patch16_224"}}, 1.0, 17.56},
      {"ViT-B/16 @448", {{"model", "vit_base_patch16_224"}, {"input_size", 448}}, 1.0, 78.5},
      {"DeiT-S @224", {{"model", "deit_small_patch16_224"}}, 1.0, 4.6},
      {"EViT DeiT-S kr 0.7", {{"model", "evit_deit_small_patch16_224"}}, 0.7, 3.0},
      {"EViT DeiT-S kr 0.5", {{"model", "evit_deit_small_patch16_224"}}, 0.5, 2.3},
      {"ViT-B/16 @448 EViT+CLCA kr 0.1",
       with({{"model", "evit_vit_base_patch16_224"}, {"input_size", 448}}, clca), 0.1, 25.2},
      {"ViT-B/16 @448 EViT+CLCA kr 0.7",
       with({{"model", "evit_vit_base_patch16_224"}, {"input_size", 448}}, clca), 0.7, 50.9},
  };
  for (const auto& c : cases) {
    const double got = Gmacs(c.fields, c.keep_rate);
    // The paper prints one or two decimals; agree within 1%.
    EXPECT_NEAR(got, c.gmacs, 0.01 * c.gmacs) << c.what << ": " << got;
  }
}

TEST(CostTest, ExactBlockArithmetic) {
  // ViT-B/16 @224: 12 blocks of 197 tokens plus the patch embedding.
  const double c = 768, n = 197;
  const double block = 4 * n * c * c + 2 * n * n * c + 8 * n * c * c;
  const double expected = 12 * block + 196 * 3 * 256 * c;
  EXPECT_NEAR(Gmacs({{"model", "vit_base_patch16_224"}}, 1.0) * 1e9, expected, 1.0);
}

TEST(CostTest, TokensFollowTheReferenceSchedules) {
  // EViT: ceil(kr (N-1)) kept plus the fused token; CLC appends the cache.
  auto config = ResolveConfig({{"model", "evit_vit_base_patch16_224"}, {"input_size", 448},
                               {"num_classes", 10}, {"clc", true}, {"num_clr", 1}});
  ASSERT_TRUE(config.ok());
  auto cost = EstimateCost(*config, 0.1);
  ASSERT_TRUE(cost.ok());
  EXPECT_EQ(cost->tokens,
            (std::vector<int64_t>{786, 786, 786, 81, 87, 87, 11, 17, 17, 4, 10, 12}));
  // ToMe: removes prev - int(n kr^(p+1)) tokens at each location.
  auto tome = ResolveConfig({{"model", "tome_vit_tiny_patch16_224"}, {"num_classes", 10}});
  ASSERT_TRUE(tome.ok());
  auto tcost = EstimateCost(*tome, 0.5);
  ASSERT_TRUE(tcost.ok());
  EXPECT_EQ(tcost->tokens,
            (std::vector<int64_t>{197, 197, 197, 99, 99, 99, 50, 50, 50, 26, 26, 26}));
}

TEST(CostTest, CostFallsWithKeepRate) {
  nlohmann::json f = {{"model", "topk_vit_small_patch16_224"}};
  double previous = 0;
  for (double kr : {0.1, 0.25, 0.5, 0.7, 1.0}) {
    double g = Gmacs(f, kr);
    EXPECT_GT(g, previous);
    previous = g;
  }
}

TEST(CostTest, RejectsBadKeepRates) {
  auto config = ResolveConfig({{"model", "evit_vit_tiny_patch16_224"}, {"num_classes", 3}});
  ASSERT_TRUE(config.ok());
  for (double kr : std::vector<double>{0.0, -0.5, 1.5, std::nan(""), INFINITY}) {
    EXPECT_EQ(EstimateCost(*config, kr).status().code(), absl::StatusCode::kInvalidArgument) << kr;
  }
}

}  // namespace
}  // namespace clca
