// What the model repository directory holds right now: models, their
// version policy (config.json) and version directories, each with a
// fingerprint that changes whenever its files change.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/repository/version_policy.h"

namespace clca::server {

struct VersionOnDisk {
  int64_t version = 0;
  std::string path;
  // Names, sizes and modification times of the directory's files.
  std::string fingerprint;
};

struct ModelOnDisk {
  std::string name;
  std::string path;
  // From <model>/config.json; an error when it cannot be read or parsed
  // (the model's versions are then left as they are).
  absl::Status policy_status;
  VersionPolicy policy;
  // Ascending by version.
  std::vector<VersionOnDisk> versions;
};

// The models under `dir`, by name. Directories whose names start with '.'
// are skipped (the place to stage a copy before moving it into place), as
// are version directories whose names are not positive integers. NOT_FOUND
// when `dir` is not a directory.
absl::StatusOr<std::vector<ModelOnDisk>> ScanRepository(const std::string& dir);

// One model directory of the repository; NOT_FOUND when it does not exist.
absl::StatusOr<ModelOnDisk> ScanModel(const std::string& dir, const std::string& name);

// The fingerprint of a version directory ("" when it cannot be read).
std::string Fingerprint(const std::string& version_dir);

}  // namespace clca::server
