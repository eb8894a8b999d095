// Building a model from a checkpoint file.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "models/io/checkpoint.h"
#include "models/vit/model.h"

namespace clca {

// Loads a checkpoint and builds the model: configuration fields not in
// `given_config` are taken from the checkpoint's `args`.
struct LoadedModel {
  std::unique_ptr<ClcaModel> model;
  Checkpoint checkpoint_info;  // state_dict emptied after loading
};
absl::StatusOr<LoadedModel> LoadModel(const std::string& checkpoint_path,
                                      const nlohmann::json& given_config,
                                      const ModelOptions& options = {});

}  // namespace clca
