#include "models/io/load_model.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace clca {

absl::StatusOr<LoadedModel> LoadModel(const std::string& checkpoint_path,
                                      const nlohmann::json& given_config,
                                      const ModelOptions& options) {
  auto checkpoint = LoadCheckpoint(checkpoint_path);
  if (!checkpoint.ok()) return checkpoint.status();
  const nlohmann::json* args = checkpoint->args.is_object() ? &checkpoint->args : nullptr;
  auto config = ResolveConfig(given_config, args);
  if (!config.ok()) return config.status();
  auto model = ClcaModel::Create(*config, checkpoint->state_dict, options);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat(checkpoint_path, ": ", model.status().message()));
  }
  LoadedModel loaded;
  loaded.model = std::move(*model);
  loaded.checkpoint_info = std::move(*checkpoint);
  loaded.checkpoint_info.state_dict.clear();
  return loaded;
}

}  // namespace clca
