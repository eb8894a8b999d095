// Helpers shared by the clca subcommands.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace clca::tool {

// Reads a JSON file (an empty path gives an empty object).
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);

// Writes `text` to `path`, or to stdout when `path` is empty.
absl::Status WriteOutput(const std::string& path, const std::string& text);

// Prints "clca: <message>" to stderr and returns exit code 1.
int Fail(const absl::Status& status);

}  // namespace clca::tool
