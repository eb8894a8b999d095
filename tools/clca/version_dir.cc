#include "tools/clca/version_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clca::tool {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> FindCheckpoint(const fs::path& dir) {
  std::vector<std::string> found;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".pth" || ext == ".safetensors")) {
      found.push_back(entry.path().string());
    }
  }
  if (error) return absl::NotFoundError(absl::StrCat(dir.string(), ": ", error.message()));
  std::sort(found.begin(), found.end());
  if (found.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir.string(), ": expected exactly one checkpoint (.pth or .safetensors), found ",
        found.empty() ? std::string("none") : absl::StrJoin(found, ", ")));
  }
  return found.front();
}

}  // namespace

absl::StatusOr<VersionDir> ReadVersionDir(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("model directory ", dir, " does not exist"));
  }
  VersionDir v;
  v.dir = dir;
  absl::StatusOr<std::string> checkpoint = FindCheckpoint(dir);
  if (!checkpoint.ok()) return checkpoint.status();
  v.checkpoint = *checkpoint;

  const fs::path config_path = fs::path(dir) / "model.json";
  std::ifstream config_in(config_path);
  if (!config_in) {
    return absl::NotFoundError(absl::StrCat(config_path.string(), ": cannot read"));
  }
  v.config = nlohmann::json::parse(config_in, nullptr, /*allow_exceptions=*/false);
  if (v.config.is_discarded() || !v.config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(config_path.string(), ": not a JSON object"));
  }

  const fs::path labels_path = fs::path(dir) / "labels.txt";
  if (fs::exists(labels_path, error)) {
    std::ifstream in(labels_path);
    if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot read ", labels_path.string()));
    std::vector<std::string> labels;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      labels.push_back(line);
    }
    while (!labels.empty() && absl::StripAsciiWhitespace(labels.back()).empty()) labels.pop_back();
    v.labels = std::move(labels);
  }
  return v;
}

std::string VersionDirName(const std::string& dir) {
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // a trailing separator
  const std::string version = p.filename().string();
  const std::string model = p.parent_path().filename().string();
  return model.empty() ? version : absl::StrCat(model, "/", version);
}

}  // namespace clca::tool
