// Model configuration in the vocabulary of the CLCA reference training script.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace clca {

// Token-reduction method, taken from the model name's prefix
// (`evit_vit_base_patch16_224` -> kEvit).
enum class Reduction { kNone, kEvit, kTopK, kTome, kDynamicVit, kAts, kPatchMerger, kSit, kDpcKnn };

// Backbone family, taken from the model name.
//  kVit:  timm ViT / DeiT (pos_embed covers CLS, LayerNorm eps 1e-6).
//  kDeit3: layer scale on both branches, pos_embed added to patches only.
//  kClip: pre-norm after the embedding, no patch-embedding bias, eps 1e-5.
enum class Backbone { kVit, kDeit3, kClip };

const char* ReductionName(Reduction r);
const char* BackboneName(Backbone b);

struct ModelConfig {
  // Reference model name, e.g. `evit_deit3_small_patch16_224`.
  std::string model;
  int input_size = 224;
  int patch_size = 16;
  int num_classes = 0;
  int embed_dim = 0;
  int depth = 0;
  int num_heads = 0;
  double mlp_ratio = 4.0;
  // 0-based indices of the blocks where tokens are reduced.
  std::vector<int> reduction_loc = {3, 6, 9};
  // Default keep rate (the reference stores a one-element list).
  double keep_rate = 1.0;
  // Cross-Layer Aggregation head (`ifa_head.*`) instead of norm + head.
  bool ifa_head = false;
  // Cross-layer cache and the number of carrier (CLR) tokens.
  bool clc = false;
  int num_clr = 0;
  // Cache details; the defaults are the published CLCA configuration.
  bool clc_include_gap = true;
  bool clc_pool_cls = false;
  bool clc_pool_clr = false;
  bool clc_recover_at_last = true;
  int ifa_dws_conv_groups = 2;

  // Derived from `model` by ResolveConfig.
  Reduction reduction = Reduction::kNone;
  Backbone backbone = Backbone::kVit;

  int grid_size() const { return input_size / patch_size; }
  int num_patches() const { return grid_size() * grid_size(); }
  bool has_clr() const { return clc && num_clr > 0; }
  // Rows of pos_embed around the patch grid: CLS before and the carrier
  // tokens after it (DeiT-3 has position rows for the patches only).
  int pos_embed_prefix() const { return backbone == Backbone::kDeit3 ? 0 : 1; }
  int pos_embed_suffix() const { return backbone == Backbone::kDeit3 ? 0 : num_clr; }
  // Blocks after which the cross-layer cache is appended back.
  std::vector<int> recovery_layers() const;
  double layer_norm_eps() const { return backbone == Backbone::kClip ? 1e-5 : 1e-6; }

  nlohmann::json ToJson() const;
};

// Builds a configuration from the user's fields (`given`), falling back on the
// checkpoint's pickled training arguments (`checkpoint_args`, may be null) for
// any field not given, then on the presets implied by the model name
// (tiny/small/base sizes, depth 12, patch 16, input size). A field that is still
// missing, or a value out of range, is an INVALID_ARGUMENT naming it.
absl::StatusOr<ModelConfig> ResolveConfig(const nlohmann::json& given,
                                          const nlohmann::json* checkpoint_args = nullptr);

// Validates a keep rate: finite and in (0, 1].
absl::Status ValidateKeepRate(double keep_rate);

}  // namespace clca
