// A model-repository version directory read from the command line: one
// checkpoint (.pth or .safetensors), model.json and an optional labels.txt,
// read as clca-server reads them (serving.json is not read).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace clca::tool {

struct VersionDir {
  // The directory as given.
  std::string dir;
  // Its only .pth or .safetensors file.
  std::string checkpoint;
  // model.json: configuration fields in the reference's names.
  nlohmann::json config;
  // labels.txt, one label per line (trailing blank lines dropped); absent
  // when the file is missing.
  std::optional<std::vector<std::string>> labels;
};

// NOT_FOUND for a missing directory or model.json; INVALID_ARGUMENT for no
// or several checkpoints, or a model.json that is not a JSON object.
absl::StatusOr<VersionDir> ReadVersionDir(const std::string& dir);

// "<model>/<version>": the directory's parent name and its own name, e.g.
// "clca-demo/1" for deploy/model-repository/clca-demo/1/.
std::string VersionDirName(const std::string& dir);

}  // namespace clca::tool
