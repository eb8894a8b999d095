// Which versions of a model are served: `<model>/config.json` in the model
// repository, as TF Serving's model_version_policy.
//
//   {"version_policy": {"latest": 2}}        the 2 highest versions
//   {"version_policy": {"specific": [1, 3]}}  exactly these
//   {"version_policy": "all"}                 every version on disk
//
// Without the file (or the key): the highest version only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace clca::server {

struct VersionPolicy {
  enum class Kind { kLatest, kSpecific, kAll };
  Kind kind = Kind::kLatest;
  // kLatest: how many of the highest versions.
  int latest = 1;
  // kSpecific: the versions, ascending.
  std::vector<int64_t> specific;

  std::string Describe() const;
};

// Parses the model-level config.json. Unknown keys and bad values are
// INVALID_ARGUMENT naming them.
absl::StatusOr<VersionPolicy> ParseModelConfig(const nlohmann::json& json);
// Reads `path`; a missing file gives the default policy.
absl::StatusOr<VersionPolicy> ReadModelConfig(const std::string& path);

// The versions of `on_disk` (ascending) that `policy` serves, ascending.
std::vector<int64_t> SelectVersions(const VersionPolicy& policy,
                                    const std::vector<int64_t>& on_disk);

}  // namespace clca::server
