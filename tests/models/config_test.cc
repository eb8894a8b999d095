#include <gtest/gtest.h>

#include "models/core/config.h"

namespace clca {
namespace {

TEST(ConfigTest, PresetsFromTheModelName) {
  auto c = ResolveConfig({{"model", "evit_deit3_small_patch16_224"}, {"num_classes", 5}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->reduction, Reduction::kEvit);
  EXPECT_EQ(c->backbone, Backbone::kDeit3);
  EXPECT_EQ(c->embed_dim, 384);
  EXPECT_EQ(c->num_heads, 6);
  EXPECT_EQ(c->depth, 12);
  EXPECT_EQ(c->input_size, 224);

  auto clip = ResolveConfig({{"model", "vit_base_patch16_clip_224"}, {"num_classes", 5}});
  ASSERT_TRUE(clip.ok());
  EXPECT_EQ(clip->reduction, Reduction::kNone);
  EXPECT_EQ(clip->backbone, Backbone::kClip);
  EXPECT_DOUBLE_EQ(clip->layer_norm_eps(), 1e-5);

  auto tome = ResolveConfig({{"model", "tome_vit_tiny_patch16_384"}, {"num_classes", 5}});
  ASSERT_TRUE(tome.ok());
  EXPECT_EQ(tome->reduction, Reduction::kTome);
  EXPECT_EQ(tome->input_size, 384);
  EXPECT_EQ(tome->embed_dim, 192);
}

TEST(ConfigTest, GivenFieldsOverrideArgsWhichOverridePresets) {
  nlohmann::json args = {{"model", "topk_vit_base_patch16_224"}, {"num_classes", 80},
                         {"keep_rate", {0.25}}, {"input_size", 448}, {"clc", true},
                         {"num_clr", 1}};
  auto c = ResolveConfig({{"embed_dim", 48}, {"num_heads", 3}, {"input_size", 224}}, &args);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model, "topk_vit_base_patch16_224");
  EXPECT_EQ(c->embed_dim, 48);
  EXPECT_EQ(c->num_heads, 3);
  EXPECT_EQ(c->input_size, 224);
  EXPECT_EQ(c->num_classes, 80);
  EXPECT_DOUBLE_EQ(c->keep_rate, 0.25);
  EXPECT_TRUE(c->clc);
  EXPECT_EQ(c->recovery_layers(), (std::vector<int>{3, 6, 9, 10}));
}

TEST(ConfigTest, MissingFieldsAreNamed) {
  auto c = ResolveConfig({{"model", "evit_vit_base_patch16_224"}});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("num_classes"), std::string::npos) << c.status();

  auto no_model = ResolveConfig({{"num_classes", 3}});
  EXPECT_NE(no_model.status().message().find("'model'"), std::string::npos);

  auto no_size = ResolveConfig({{"model", "vit_patch16_224"}, {"num_classes", 3}});
  EXPECT_NE(no_size.status().message().find("embed_dim"), std::string::npos) << no_size.status();
}

TEST(ConfigTest, RejectsInconsistentValues) {
  const nlohmann::json base = {{"model", "evit_vit_tiny_patch16_224"}, {"num_classes", 3}};
  auto with = [&](nlohmann::json extra) {
    nlohmann::json j = base;
    j.update(extra);
    return ResolveConfig(j).status().code();
  };
  EXPECT_EQ(with({{"keep_rate", {1.5}}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"keep_rate", {0.0}}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"keep_rate", {0.5, 0.7, 0.5}}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"reduction_loc", {6, 3}}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"reduction_loc", {3, 11}}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"embed_dim", 100}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"input_size", 230}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"num_classes", "many"}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveConfig({{"model", "resnet50"}, {"num_classes", 3}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConfigTest, KeepRateValidation) {
  EXPECT_TRUE(ValidateKeepRate(1.0).ok());
  EXPECT_TRUE(ValidateKeepRate(0.1).ok());
  EXPECT_FALSE(ValidateKeepRate(0.0).ok());
  EXPECT_FALSE(ValidateKeepRate(1.5).ok());
  EXPECT_FALSE(ValidateKeepRate(std::nan("")).ok());
  EXPECT_FALSE(ValidateKeepRate(-INFINITY).ok());
}

// Found by fuzz_model_config: numbers beyond an int were wrapped around, cast
// with undefined behaviour, or (in the model name) threw std::out_of_range.
TEST(ConfigTest, NumbersBeyondAnIntAreErrors) {
  const nlohmann::json base = {{"model", "evit_vit_tiny_patch16_224"}, {"num_classes", 3}};
  auto with = [&](nlohmann::json extra) {
    nlohmann::json j = base;
    j.update(extra);
    return ResolveConfig(j).status().code();
  };
  EXPECT_EQ(with({{"num_classes", 4294967299LL}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"num_classes", 1e20}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"depth", -1e300}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"reduction_loc", {4294967296LL}}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"model", "vit_tiny_patch16_2429496729624"}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with({{"model", "vit_tiny_patch99999999999_224"}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ResolveConfig(base, nullptr).ok());
  const nlohmann::json args = {{"num_classes", 18446744073709551615ULL}};
  EXPECT_EQ(ResolveConfig({{"model", "vit_tiny_patch16_224"}}, &args).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clca
