#include "server/repository/model_repository.h"
#include "models/io/load_model.h"

#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clca::server {
namespace {

namespace fs = std::filesystem;

absl::Status WithPath(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

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
  if (found.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir.string(), ": expected exactly one checkpoint (.pth or .safetensors), found ",
        found.empty() ? std::string("none") : absl::StrJoin(found, ", ")));
  }
  return found.front();
}

absl::StatusOr<nlohmann::json> ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot read"));
  nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a JSON object"));
  }
  return json;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServableModel>> LoadServable(const std::string& name,
                                                            int64_t version,
                                                            const std::string& dir,
                                                            const RepositoryOptions& options,
                                                            Metrics* metrics) {
  const fs::path path(dir);
  absl::StatusOr<std::string> checkpoint = FindCheckpoint(path);
  if (!checkpoint.ok()) return checkpoint.status();
  absl::StatusOr<nlohmann::json> config = ReadJson(path / "model.json");
  if (!config.ok()) return config.status();
  absl::StatusOr<ServingConfig> serving =
      ReadServingConfig((path / "serving.json").string(), options.serving_defaults);
  if (!serving.ok()) return serving.status();

  ModelOptions model_options;
  model_options.device = options.device;
  model_options.precision = serving->precision;
  absl::StatusOr<LoadedModel> loaded = LoadModel(*checkpoint, *config, model_options);
  if (!loaded.ok()) return WithPath(*checkpoint, loaded.status());

  ServableModel::Spec spec;
  spec.name = name;
  spec.version = version;
  spec.path = dir;
  spec.model = std::move(loaded->model);
  absl::StatusOr<std::vector<std::string>> labels =
      ReadLabels((path / "labels.txt").string(), spec.model->config().num_classes);
  if (!labels.ok()) return labels.status();
  spec.labels = *std::move(labels);
  spec.serving = *std::move(serving);
  spec.default_intra_op_threads = options.intra_op_threads;
  ModelMetrics* model_metrics = metrics ? metrics->AddModel(name, version) : nullptr;
  absl::StatusOr<std::unique_ptr<ServableModel>> servable =
      ServableModel::Create(std::move(spec), model_metrics);
  if (!servable.ok()) return servable.status();
  const ModelConfig& c = (*servable)->config();
  spdlog::info("event=model_loaded model={} version={} path={} architecture={} method={} "
               "classes={} input_size={} keep_rate={} device={}",
               name, version, dir, c.model, ReductionName(c.reduction), c.num_classes,
               c.input_size, (*servable)->default_keep_rate(), options.device);
  return servable;
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Load(
    const std::string& dir, const RepositoryOptions& options, Metrics* metrics) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("model repository ", dir, " is not a directory"));
  }
  std::unique_ptr<ModelRepository> repository(new ModelRepository());
  std::vector<fs::path> model_dirs;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') model_dirs.push_back(entry);
  }
  if (error) return absl::NotFoundError(absl::StrCat(dir, ": ", error.message()));
  std::sort(model_dirs.begin(), model_dirs.end());
  for (const fs::path& model_dir : model_dirs) {
    const std::string name = model_dir.filename().string();
    std::map<int64_t, std::unique_ptr<ServableModel>> versions;
    for (const fs::directory_entry& entry : fs::directory_iterator(model_dir, error)) {
      int64_t version = 0;
      const std::string base = entry.path().filename().string();
      if (!entry.is_directory()) continue;
      if (!absl::SimpleAtoi(base, &version) || version <= 0 ||
          base.find_first_not_of("0123456789") != std::string::npos) {
        spdlog::warn("event=skip_directory path={} reason=\"not a positive version number\"",
                     entry.path().string());
        continue;
      }
      absl::StatusOr<std::unique_ptr<ServableModel>> servable =
          LoadServable(name, version, entry.path().string(), options, metrics);
      if (!servable.ok()) {
        return absl::Status(servable.status().code(),
                            absl::StrCat("cannot load model ", name, " version ", version, " (",
                                         entry.path().string(),
                                         "): ", servable.status().message()));
      }
      versions[version] = *std::move(servable);
    }
    if (versions.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          model_dir.string(), ": no version directories (expected ", model_dir.string(),
          "/<positive integer>/ holding a checkpoint and model.json)"));
    }
    repository->models_[name] = std::move(versions);
  }
  if (repository->models_.empty()) {
    return absl::NotFoundError(absl::StrCat("model repository ", dir,
                                            " holds no models (expected ", dir,
                                            "/<model>/<version>/)"));
  }
  return repository;
}

std::string ModelRepository::Describe() const {
  std::vector<std::string> parts;
  for (const auto& [name, versions] : models_) {
    std::vector<int64_t> numbers;
    for (const auto& [version, servable] : versions) numbers.push_back(version);
    parts.push_back(absl::StrCat(name, " (version", numbers.size() > 1 ? "s " : " ",
                                 absl::StrJoin(numbers, ", "), ")"));
  }
  return absl::StrJoin(parts, ", ");
}

absl::StatusOr<const ServableModel*> ModelRepository::Find(const std::string& model,
                                                           std::optional<int64_t> version) const {
  auto it = models_.find(model);
  if (it == models_.end()) {
    return absl::NotFoundError(
        absl::StrCat("model \"", model, "\" not found; loaded models: ", Describe()));
  }
  const auto& versions = it->second;
  if (!version) return versions.rbegin()->second.get();
  auto v = versions.find(*version);
  if (v == versions.end()) {
    std::vector<int64_t> numbers;
    for (const auto& [number, servable] : versions) numbers.push_back(number);
    return absl::NotFoundError(absl::StrCat("model \"", model, "\" has no version ", *version,
                                            "; loaded versions: ", absl::StrJoin(numbers, ", ")));
  }
  return v->second.get();
}

std::vector<const ServableModel*> ModelRepository::All() const {
  std::vector<const ServableModel*> all;
  for (const auto& [name, versions] : models_) {
    for (const auto& [version, servable] : versions) all.push_back(servable.get());
  }
  return all;
}

std::vector<int64_t> ModelRepository::Versions(const std::string& model) const {
  std::vector<int64_t> numbers;
  auto it = models_.find(model);
  if (it == models_.end()) return numbers;
  for (const auto& [number, servable] : it->second) numbers.push_back(number);
  return numbers;
}

void ModelRepository::FlushAll() const {
  for (const ServableModel* servable : All()) servable->scheduler()->Flush();
}

}  // namespace clca::server
