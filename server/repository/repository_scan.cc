#include "server/repository/repository_scan.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace clca::server {
namespace {

namespace fs = std::filesystem;

bool IsVersionName(const std::string& name, int64_t* version) {
  return !name.empty() && name.size() <= 18 &&
         name.find_first_not_of("0123456789") == std::string::npos &&
         absl::SimpleAtoi(name, version) && *version > 0;
}

}  // namespace

std::string Fingerprint(const std::string& version_dir) {
  std::vector<std::string> entries;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(version_dir, error)) {
    std::error_code stat_error;
    // Follows symbolic links: a link to a new checkpoint is a change.
    const fs::file_status status = fs::status(entry.path(), stat_error);
    if (stat_error || !fs::is_regular_file(status)) continue;
    const auto size = fs::file_size(entry.path(), stat_error);
    const auto time = fs::last_write_time(entry.path(), stat_error);
    if (stat_error) continue;
    entries.push_back(absl::StrCat(entry.path().filename().string(), ":", size, ":",
                                   time.time_since_epoch().count()));
  }
  if (error) return "";
  std::sort(entries.begin(), entries.end());
  std::string fingerprint;
  for (const std::string& e : entries) absl::StrAppend(&fingerprint, e, ";");
  return fingerprint;
}

absl::StatusOr<ModelOnDisk> ScanModel(const std::string& dir, const std::string& name) {
  ModelOnDisk model;
  model.name = name;
  model.path = (fs::path(dir) / name).string();
  std::error_code error;
  if (!fs::is_directory(model.path, error)) {
    return absl::NotFoundError(absl::StrCat("no model directory ", model.path));
  }
  absl::StatusOr<VersionPolicy> policy = ReadModelConfig((fs::path(model.path) / "config.json").string());
  if (policy.ok()) {
    model.policy = *policy;
  } else {
    model.policy_status = policy.status();
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(model.path, error)) {
    int64_t version = 0;
    std::error_code type_error;
    if (!entry.is_directory(type_error) ||
        !IsVersionName(entry.path().filename().string(), &version)) {
      continue;
    }
    model.versions.push_back({version, entry.path().string(), Fingerprint(entry.path().string())});
  }
  std::sort(model.versions.begin(), model.versions.end(),
            [](const VersionOnDisk& a, const VersionOnDisk& b) { return a.version < b.version; });
  return model;
}

absl::StatusOr<std::vector<ModelOnDisk>> ScanRepository(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("model repository ", dir, " is not a directory"));
  }
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    std::error_code type_error;
    if (entry.is_directory(type_error) && !name.empty() && name[0] != '.') names.push_back(name);
  }
  if (error) return absl::NotFoundError(absl::StrCat(dir, ": ", error.message()));
  std::sort(names.begin(), names.end());
  std::vector<ModelOnDisk> models;
  for (const std::string& name : names) {
    absl::StatusOr<ModelOnDisk> model = ScanModel(dir, name);
    // Removed between listing and reading: it is gone.
    if (model.ok()) models.push_back(*std::move(model));
  }
  return models;
}

}  // namespace clca::server
