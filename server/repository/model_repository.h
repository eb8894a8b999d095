// The model repository: DIR/<model>/<version>/ directories, each holding one
// checkpoint (.pth or .safetensors), model.json, and optionally labels.txt
// and serving.json; DIR/<model>/config.json chooses the versions served
// (version_policy.h). Versions are loaded, swapped and retired while the
// server runs, as TF Serving's aspired-versions manager does:
//
// - A version loads on the loader thread and is warmed up on the shared batch
//   scheduler before it takes calls (LOADING, then AVAILABLE).
// - Availability first: a version the policy no longer wants stops taking new
//   calls only once a version it wants of the same model is AVAILABLE, and
//   calls already accepted on it finish on it (UNLOADING, then UNLOADED).
// - A version that fails to load is FAILED with its reason, and is tried
//   again when its files change; what was serving keeps serving.
// - Changed files reload a version: the new copy takes over once AVAILABLE.
//
// Changes on disk are picked up by Poll (every RepositoryOptions::
// poll_interval) or by Load and Reload; Unload retires versions until they
// are loaded again or their files change.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/batching/batch_scheduler.h"
#include "server/observability/metrics.h"
#include "server/repository/repository_scan.h"
#include "server/repository/servable.h"

namespace clca::server {

// Longest model name a request may name.
inline constexpr size_t kMaxModelNameBytes = 128;

// INVALID_ARGUMENT for a name longer than kMaxModelNameBytes.
absl::Status ValidateModelName(absl::string_view model);

enum class VersionState { kLoading, kAvailable, kUnloading, kFailed, kUnloaded };
const char* VersionStateName(VersionState state);

// One version the repository holds or has loaded.
struct VersionStatus {
  std::string model;
  int64_t version = 0;
  VersionState state = VersionState::kUnloaded;
  // Why it is in its state (the load error of a FAILED version).
  std::string reason;
  // The loaded copy that takes calls (AVAILABLE), or finishes them
  // (UNLOADING); null otherwise.
  std::shared_ptr<const ServableModel> servable;
};

struct RepositoryOptions {
  // Passed to ModelOptions::device: "cpu", "cuda", "cuda:1".
  std::string device = "cpu";
  // Starting point of every serving.json.
  ServingConfig serving_defaults;
  // The worker pool versions compute on (for ModelInfo).
  PoolLayout pool;
  // How often Poll runs on its own thread; zero: only at start and on
  // Load/Reload.
  std::chrono::milliseconds poll_interval{0};
};

class ModelRepository {
 public:
  // Called with a model's name and whether it has an AVAILABLE version,
  // whenever that may have changed.
  using ServingListener = std::function<void(const std::string& model, bool serving)>;

  // Scans `dir` and loads the versions each model's policy selects, waiting
  // for them. NOT_FOUND when `dir` is not a directory or holds no model;
  // FAILED_PRECONDITION, listing every failure, when no version became
  // AVAILABLE. Versions compute on `scheduler`, which must outlive the
  // repository.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Open(const std::string& dir,
                                                               const RepositoryOptions& options,
                                                               BatchScheduler* scheduler,
                                                               Metrics* metrics);
  // Stops polling and loading; versions still held by calls in flight are
  // freed when those calls are answered.
  ~ModelRepository();
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // An AVAILABLE version (`version` absent: the highest). NOT_FOUND lists
  // what exists; INVALID_ARGUMENT for an over-long name.
  absl::StatusOr<std::shared_ptr<const ServableModel>> Find(absl::string_view model,
                                                            std::optional<int64_t> version) const;
  // Every version of every model, by name then version.
  std::vector<VersionStatus> List() const;
  // Every version of `model`; NOT_FOUND when the repository has no such
  // model.
  absl::StatusOr<std::vector<VersionStatus>> ListModel(absl::string_view model) const;
  // AVAILABLE versions of `model`, ascending.
  std::vector<int64_t> AvailableVersions(absl::string_view model) const;

  // Reads the model's directory, serves `version` (absent: the versions the
  // policy selects) even if it was unloaded, and waits until each is
  // AVAILABLE or FAILED. NOT_FOUND when the model or version is not on disk.
  absl::StatusOr<std::vector<VersionStatus>> Load(const std::string& model,
                                                  std::optional<int64_t> version);
  // Retires `version` (absent: every version) of `model` now: no new calls;
  // those accepted finish. It stays unloaded until Load, or until its files
  // change while polling.
  absl::StatusOr<std::vector<VersionStatus>> Unload(const std::string& model,
                                                    std::optional<int64_t> version);
  // Reads the model's directory again and applies what changed, waiting for
  // the loads it starts.
  absl::StatusOr<std::vector<VersionStatus>> Reload(const std::string& model);

  // Reads the whole repository and applies what changed, without waiting.
  void Poll();
  // Waits until no load is pending or running.
  void WaitUntilIdle() const;

  void SetServingListener(ServingListener listener);
  // Stops batching waits on every version (used while draining).
  void FlushAll() const;

 private:
  struct VersionEntry;
  struct ModelEntry;
  struct LoadJob;
  // Lets servables outliving the repository tell it they are gone.
  struct GoneSignal {
    absl::Mutex mu;
    ModelRepository* repository ABSL_GUARDED_BY(mu) = nullptr;
  };

  ModelRepository(std::string dir, const RepositoryOptions& options, BatchScheduler* scheduler,
                  Metrics* metrics);

  // Brings `model` in line with what is on disk and the operator's choices.
  void ApplyLocked(const ModelOnDisk& disk, bool scanned) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReconcileLocked(ModelEntry& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RetireLocked(ModelEntry& model, VersionEntry& entry, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetGoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoaderLoop();
  void PollerLoop();
  void Loaded(const LoadJob& job, absl::StatusOr<std::shared_ptr<ServableModel>> servable);
  absl::StatusOr<std::shared_ptr<ServableModel>> LoadVersion(const LoadJob& job);
  std::vector<VersionStatus> StatusesLocked(const ModelEntry& model) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishLocked(const ModelEntry& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string DescribeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WaitForModelLocked(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const RepositoryOptions options_;
  BatchScheduler* const scheduler_;
  Metrics* const metrics_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<ModelEntry>, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  std::vector<LoadJob> jobs_ ABSL_GUARDED_BY(mu_);
  int loading_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // A retired copy was freed: states and gauges to update.
  std::atomic<bool> copy_gone_{false};
  const std::shared_ptr<GoneSignal> gone_signal_ = std::make_shared<GoneSignal>();
  ServingListener listener_ ABSL_GUARDED_BY(mu_);
  // Wakes the loader: a job was queued, or a retired copy was freed.
  absl::CondVar work_cv_;
  // Wakes the poller early: stopping.
  absl::CondVar poll_cv_;
  // Signalled whenever a load ends.
  mutable absl::CondVar done_cv_;

  std::thread loader_;
  std::thread poller_;
};

// Loads one version directory into a servable on `scheduler` (not warmed
// up); `on_destroyed` runs when it is freed.
absl::StatusOr<std::shared_ptr<ServableModel>> LoadServable(
    const std::string& name, int64_t version, const std::string& dir,
    const RepositoryOptions& options, BatchScheduler* scheduler, Metrics* metrics,
    std::function<void()> on_destroyed = {});

}  // namespace clca::server
