// The model repository: DIR/<model>/<version>/ holding one checkpoint (.pth
// or .safetensors), model.json, and optionally labels.txt and serving.json.
// Every version found is loaded at start; requests look models up here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/observability/metrics.h"
#include "server/repository/servable.h"

namespace clca::server {

struct RepositoryOptions {
  // Passed to ModelOptions::device: "cpu", "cuda", "cuda:1".
  std::string device = "cpu";
  // LibTorch intra-op threads per worker when serving.json gives none;
  // 0: the hardware threads divided among the model's workers.
  int intra_op_threads = 0;
  // Starting point of every serving.json.
  ServingConfig serving_defaults;
};

class ModelRepository {
 public:
  // Loads every model version under `dir`. An empty repository, or any
  // version that fails to load, is an error naming the path and the cause.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Load(const std::string& dir,
                                                               const RepositoryOptions& options,
                                                               Metrics* metrics);

  // `version` absent: the highest. NOT_FOUND lists what exists.
  absl::StatusOr<const ServableModel*> Find(const std::string& model,
                                            std::optional<int64_t> version) const;

  // Every model version, by name then version.
  std::vector<const ServableModel*> All() const;
  // Loaded versions of `model`, ascending.
  std::vector<int64_t> Versions(const std::string& model) const;

  // Stops batching waits on every model (used while draining).
  void FlushAll() const;

 private:
  ModelRepository() = default;
  std::string Describe() const;

  std::map<std::string, std::map<int64_t, std::unique_ptr<ServableModel>>> models_;
};

// Loads one version directory.
absl::StatusOr<std::unique_ptr<ServableModel>> LoadServable(const std::string& name,
                                                            int64_t version,
                                                            const std::string& dir,
                                                            const RepositoryOptions& options,
                                                            Metrics* metrics);

}  // namespace clca::server
