// Reader of class-folder trees: DIR/<class name>/**/<image>.
#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "tools/datasets/dataset.h"

namespace clca::data {
namespace {

namespace fs = std::filesystem;

bool IsHidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

bool IsImageFile(const fs::path& path) {
  static const char* const kExtensions[] = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff",
                                            ".webp", ".ppm", ".pgm", ".pbm", ".pnm"};
  const std::string ext = absl::AsciiStrToLower(path.extension().string());
  return std::find(std::begin(kExtensions), std::end(kExtensions), ext) != std::end(kExtensions);
}

// Image files under `dir`, recursively (hidden entries skipped), sorted.
absl::StatusOr<std::vector<std::string>> ListImages(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (IsHidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && IsImageFile(it->path())) files.push_back(it->path().string());
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir.string(), ": ", ec.message()));
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

absl::StatusOr<Dataset> ReadImageFolder(const std::string& dir, const ReadOptions& options) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return absl::NotFoundError(absl::StrCat(dir, " is not a directory"));
  std::vector<std::string> classes;
  for (fs::directory_iterator it(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (!IsHidden(it->path()) && it->is_directory(ec)) classes.push_back(it->path().filename().string());
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  if (classes.empty()) return absl::InvalidArgumentError(absl::StrCat("no class folders in ", dir));
  std::sort(classes.begin(), classes.end());

  Dataset dataset;
  dataset.root = dir;
  dataset.layout = DatasetLayout::kImageFolder;
  dataset.class_names = classes;
  for (size_t id = 0; id < classes.size(); ++id) {
    auto files = ListImages(root / classes[id]);
    if (!files.ok()) return files.status();
    if (files->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("class folder ", (root / classes[id]).string(), " has no images"));
    }
    for (std::string& file : *files) dataset.examples.push_back({std::move(file), static_cast<int>(id)});
  }
  return dataset;
}

}  // namespace clca::data
