// Helpers shared by the clca subcommands.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "models/core/config.h"

namespace clca::tool {

// Reads a JSON file (an empty path gives an empty object).
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);

// Writes `text` to `path`, or to stdout when `path` is empty.
absl::Status WriteOutput(const std::string& path, const std::string& text);

// A configuration given as --config JSON and/or field flags (the flags win).
struct ConfigFlags {
  std::string config, model;
  int input_size = 0, num_classes = 0, embed_dim = 0, depth = 0, num_heads = 0, num_clr = -1;
  std::vector<int> reduction_loc;
  std::string ifa_head, clc;  // "true"/"false", or empty
};
void AddConfigFlags(CLI::App* cmd, ConfigFlags* flags);
// The configuration fields given (the --config file with the flags applied).
absl::StatusOr<nlohmann::json> ConfigFlagsJson(const ConfigFlags& flags);
// Resolves the configuration; num_classes defaults to 1000 (the classifier
// is negligible in cost and timing).
absl::StatusOr<ModelConfig> ResolveConfigFlags(const ConfigFlags& flags);

// Prints "clca: <message>" to stderr and returns exit code 1.
int Fail(const absl::Status& status);

}  // namespace clca::tool
