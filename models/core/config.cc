#include "models/core/config.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <regex>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clca {
namespace {

using json = nlohmann::json;

struct MethodPrefix {
  const char* prefix;
  Reduction reduction;
};

// Model-name prefixes of the reference code, one per reduction method.
constexpr MethodPrefix kMethodPrefixes[] = {
    {"evit_", Reduction::kEvit},         {"topk_", Reduction::kTopK},
    {"tome_", Reduction::kTome},         {"dyvit_", Reduction::kDynamicVit},
    {"ats_", Reduction::kAts},           {"patchmerger_", Reduction::kPatchMerger},
    {"sit_", Reduction::kSit},           {"dpcknn_", Reduction::kDpcKnn},
};

struct SizePreset {
  const char* word;
  int embed_dim;
  int depth;
  int num_heads;
};

// timm's size words.
constexpr SizePreset kSizePresets[] = {
    {"tiny", 192, 12, 3},   {"small", 384, 12, 6},  {"base", 768, 12, 12},
    {"large", 1024, 24, 16}, {"huge", 1280, 32, 16},
};

// Field lookup: the user's value, else the checkpoint's args, else null.
const json* Find(const json& given, const json* args, const char* key) {
  if (given.is_object() && given.contains(key) && !given[key].is_null()) return &given[key];
  if (args && args->is_object() && args->contains(key) && !(*args)[key].is_null()) {
    return &(*args)[key];
  }
  return nullptr;
}

absl::Status TypeError(const char* key, const json& v, const char* want) {
  return absl::InvalidArgumentError(
      absl::StrCat("configuration field '", key, "' must be ", want, ", got ", v.dump()));
}

// An integer, or a float with an integral value, that fits an int.
std::optional<int> AsInt(const json& v) {
  if (!v.is_number()) return std::nullopt;
  const double value = v.get<double>();
  if (std::floor(value) != value || value < std::numeric_limits<int>::min() ||
      value > std::numeric_limits<int>::max()) {
    return std::nullopt;
  }
  return static_cast<int>(value);
}

absl::Status ReadInt(const json& given, const json* args, const char* key, int* out) {
  const json* v = Find(given, args, key);
  if (!v) return absl::OkStatus();
  const std::optional<int> value = AsInt(*v);
  if (!value) return TypeError(key, *v, "an integer between -2147483648 and 2147483647");
  *out = *value;
  return absl::OkStatus();
}

absl::Status ReadBool(const json& given, const json* args, const char* key, bool* out) {
  const json* v = Find(given, args, key);
  if (!v) return absl::OkStatus();
  if (v->is_boolean()) {
    *out = v->get<bool>();
  } else if (v->is_number_integer()) {
    *out = v->get<int64_t>() != 0;
  } else {
    return TypeError(key, *v, "a boolean");
  }
  return absl::OkStatus();
}

// `ifa_dws_conv_groups` may be null/false in the reference (the linear head).
absl::Status ReadOptionalInt(const json& given, const json* args, const char* key, int* out) {
  const json* v = Find(given, args, key);
  if (v && v->is_boolean()) {
    *out = v->get<bool>() ? 1 : 0;
    return absl::OkStatus();
  }
  return ReadInt(given, args, key, out);
}

}  // namespace

const char* ReductionName(Reduction r) {
  switch (r) {
    case Reduction::kNone: return "none";
    case Reduction::kEvit: return "evit";
    case Reduction::kTopK: return "topk";
    case Reduction::kTome: return "tome";
    case Reduction::kDynamicVit: return "dyvit";
    case Reduction::kAts: return "ats";
    case Reduction::kPatchMerger: return "patchmerger";
    case Reduction::kSit: return "sit";
    case Reduction::kDpcKnn: return "dpcknn";
  }
  return "unknown";
}

const char* BackboneName(Backbone b) {
  switch (b) {
    case Backbone::kVit: return "vit";
    case Backbone::kDeit3: return "deit3";
    case Backbone::kClip: return "clip";
  }
  return "unknown";
}

std::vector<int> ModelConfig::recovery_layers() const {
  std::vector<int> layers = reduction_loc;
  if (clc_recover_at_last) layers.push_back(depth - 2);
  return layers;
}

json ModelConfig::ToJson() const {
  return json{{"model", model},
              {"input_size", input_size},
              {"patch_size", patch_size},
              {"num_classes", num_classes},
              {"embed_dim", embed_dim},
              {"depth", depth},
              {"num_heads", num_heads},
              {"mlp_ratio", mlp_ratio},
              {"reduction_loc", reduction_loc},
              {"keep_rate", json::array({keep_rate})},
              {"ifa_head", ifa_head},
              {"clc", clc},
              {"num_clr", num_clr},
              {"clc_include_gap", clc_include_gap},
              {"clc_pool_cls", clc_pool_cls},
              {"clc_pool_clr", clc_pool_clr},
              {"clc_recover_at_last", clc_recover_at_last},
              {"ifa_dws_conv_groups", ifa_dws_conv_groups},
              {"method", ReductionName(reduction)},
              {"backbone", BackboneName(backbone)}};
}

absl::Status ValidateKeepRate(double keep_rate) {
  if (!std::isfinite(keep_rate)) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep rate must be a finite number in (0, 1], got ", keep_rate));
  }
  if (keep_rate <= 0.0 || keep_rate > 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep rate must be in (0, 1], got ", keep_rate));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ResolveConfig(const json& given, const json* checkpoint_args) {
  if (!given.is_null() && !given.is_object()) {
    return absl::InvalidArgumentError("configuration must be a JSON object");
  }
  ModelConfig c;
  const json* model = Find(given, checkpoint_args, "model");
  if (!model) {
    return absl::InvalidArgumentError(
        "configuration field 'model' is missing (e.g. \"evit_vit_base_patch16_224\") and the "
        "checkpoint has no training arguments to take it from");
  }
  if (!model->is_string()) return TypeError("model", *model, "a string");
  c.model = model->get<std::string>();

  // Method prefix, then backbone family and size presets from the rest.
  std::string backbone = c.model;
  for (const auto& m : kMethodPrefixes) {
    if (absl::StartsWith(c.model, m.prefix)) {
      c.reduction = m.reduction;
      backbone = c.model.substr(std::string(m.prefix).size());
      break;
    }
  }
  if (!absl::StartsWith(backbone, "vit") && !absl::StartsWith(backbone, "deit")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown model '", c.model,
        "': expected [method_]{vit,deit,deit3}_<size>_patch<P>[_clip]_<input> with method one of "
        "evit, topk, tome, dyvit, ats, patchmerger, sit, dpcknn"));
  }
  if (absl::StrContains(backbone, "clip")) {
    c.backbone = Backbone::kClip;
  } else if (absl::StartsWith(backbone, "deit3")) {
    c.backbone = Backbone::kDeit3;
  }
  for (const auto& s : kSizePresets) {
    if (absl::StrContains(backbone, absl::StrCat("_", s.word))) {
      c.embed_dim = s.embed_dim;
      c.depth = s.depth;
      c.num_heads = s.num_heads;
    }
  }
  std::smatch match;
  if (std::regex_search(backbone, match, std::regex("patch(\\d+)")) &&
      !absl::SimpleAtoi(match[1].str(), &c.patch_size)) {
    return absl::InvalidArgumentError(absl::StrCat("model '", c.model, "': patch size ",
                                                   match[1].str(), " is too large"));
  }
  if (std::regex_search(backbone, match, std::regex("_(\\d+)$")) &&
      !absl::SimpleAtoi(match[1].str(), &c.input_size)) {
    return absl::InvalidArgumentError(absl::StrCat("model '", c.model, "': input size ",
                                                   match[1].str(), " is too large"));
  }

  int input_size = 0;
  if (auto s = ReadInt(given, checkpoint_args, "input_size", &input_size); !s.ok()) return s;
  if (input_size) c.input_size = input_size;
  for (auto [key, field] : {std::pair{"num_classes", &c.num_classes},
                            std::pair{"embed_dim", &c.embed_dim}, std::pair{"depth", &c.depth},
                            std::pair{"num_heads", &c.num_heads},
                            std::pair{"patch_size", &c.patch_size},
                            std::pair{"num_clr", &c.num_clr}}) {
    if (auto s = ReadInt(given, checkpoint_args, key, field); !s.ok()) return s;
  }
  if (auto s = ReadOptionalInt(given, checkpoint_args, "ifa_dws_conv_groups",
                               &c.ifa_dws_conv_groups);
      !s.ok()) {
    return s;
  }
  for (auto [key, field] : {std::pair{"ifa_head", &c.ifa_head}, std::pair{"clc", &c.clc},
                            std::pair{"clc_include_gap", &c.clc_include_gap},
                            std::pair{"clc_pool_cls", &c.clc_pool_cls},
                            std::pair{"clc_pool_clr", &c.clc_pool_clr},
                            std::pair{"clc_recover_at_last", &c.clc_recover_at_last}}) {
    if (auto s = ReadBool(given, checkpoint_args, key, field); !s.ok()) return s;
  }
  if (const json* v = Find(given, checkpoint_args, "mlp_ratio")) {
    if (!v->is_number()) return TypeError("mlp_ratio", *v, "a number");
    c.mlp_ratio = v->get<double>();
  }
  if (const json* v = Find(given, checkpoint_args, "reduction_loc")) {
    if (!v->is_array()) return TypeError("reduction_loc", *v, "a list of block indices");
    c.reduction_loc.clear();
    for (const auto& e : *v) {
      const std::optional<int> loc = e.is_number_integer() ? AsInt(e) : std::nullopt;
      if (!loc) return TypeError("reduction_loc", *v, "a list of block indices");
      c.reduction_loc.push_back(*loc);
    }
  }
  if (const json* v = Find(given, checkpoint_args, "keep_rate")) {
    // The reference takes a list (one rate for every location).
    std::vector<double> rates;
    if (v->is_number()) {
      rates.push_back(v->get<double>());
    } else if (v->is_array()) {
      for (const auto& e : *v) {
        if (!e.is_number()) return TypeError("keep_rate", *v, "a number or a list of numbers");
        rates.push_back(e.get<double>());
      }
    } else {
      return TypeError("keep_rate", *v, "a number or a list of numbers");
    }
    // An empty list (the reference's value for models without reduction)
    // means every token is kept.
    if (rates.empty()) rates.push_back(1.0);
    for (double r : rates) {
      if (r != rates[0]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "keep_rate ", v->dump(), ": per-location keep rates are not supported; give one rate"));
      }
    }
    c.keep_rate = rates[0];
  }

  // Everything must now be known and consistent.
  std::vector<std::string> missing;
  if (c.num_classes <= 0) missing.push_back("num_classes");
  if (c.embed_dim <= 0) missing.push_back("embed_dim");
  if (c.depth <= 0) missing.push_back("depth");
  if (c.num_heads <= 0) missing.push_back("num_heads");
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "configuration of '", c.model, "' lacks ", absl::StrJoin(missing, ", "),
        " (not given, not in the checkpoint's args, not implied by the model name)"));
  }
  if (c.embed_dim % c.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("embed_dim ", c.embed_dim,
                                                   " is not divisible by num_heads ", c.num_heads));
  }
  if (c.patch_size <= 0 || c.input_size < c.patch_size || c.input_size % c.patch_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("input_size ", c.input_size,
                                                   " must be a positive multiple of the patch size ",
                                                   c.patch_size));
  }
  if (c.mlp_ratio <= 0) return absl::InvalidArgumentError("mlp_ratio must be positive");
  if (auto s = ValidateKeepRate(c.keep_rate); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("configuration: ", s.message()));
  }
  std::set<int> seen;
  for (size_t i = 0; i < c.reduction_loc.size(); ++i) {
    int loc = c.reduction_loc[i];
    if (loc < 0 || loc >= c.depth - 1 || (i > 0 && loc <= c.reduction_loc[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reduction_loc [", absl::StrJoin(c.reduction_loc, ","),
          "] must be increasing block indices in [0, ", c.depth - 2, "]"));
    }
  }
  if (c.num_clr < 0) return absl::InvalidArgumentError("num_clr must be >= 0");
  if (c.clc && c.num_clr == 0 && !c.clc_include_gap) {
    return absl::InvalidArgumentError("clc needs num_clr > 0 or clc_include_gap");
  }
  if (c.clc && c.clc_recover_at_last && c.depth < 2) {
    return absl::InvalidArgumentError("clc_recover_at_last needs depth >= 2");
  }
  if (!c.clc) c.num_clr = 0;
  if (c.ifa_dws_conv_groups < 0) return absl::InvalidArgumentError("ifa_dws_conv_groups < 0");
  return c;
}

}  // namespace clca
