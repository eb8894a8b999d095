#include "server/repository/model_repository.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/cpu/threads.h"
#include "models/io/load_model.h"
#include "server/observability/log_fields.h"

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

absl::Status ValidateModelName(absl::string_view model) {
  if (model.size() > kMaxModelNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the model name is ", model.size(),
                                                   " bytes; names have at most ",
                                                   kMaxModelNameBytes));
  }
  return absl::OkStatus();
}

const char* VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kLoading: return "LOADING";
    case VersionState::kAvailable: return "AVAILABLE";
    case VersionState::kUnloading: return "UNLOADING";
    case VersionState::kFailed: return "FAILED";
    case VersionState::kUnloaded: return "UNLOADED";
  }
  return "UNKNOWN";
}

absl::StatusOr<std::shared_ptr<ServableModel>> LoadServable(
    const std::string& name, int64_t version, const std::string& dir,
    const RepositoryOptions& options, BatchScheduler* scheduler, Metrics* metrics,
    std::function<void()> on_destroyed) {
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
  model_options.precision = PrecisionFor(*serving, options.device);
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
  spec.pool = options.pool;
  spec.on_destroyed = std::move(on_destroyed);
  ModelMetrics* model_metrics = metrics ? metrics->AddModel(name, version) : nullptr;
  return ServableModel::Create(std::move(spec), scheduler, model_metrics);
}

// One version: on disk, loaded, or both.
struct ModelRepository::VersionEntry {
  int64_t version = 0;
  bool on_disk = false;
  std::string path;
  // Of the files on disk now.
  std::string fingerprint;
  // The copy taking calls, and the files it was loaded from.
  std::shared_ptr<ServableModel> serving;
  std::string serving_fingerprint;
  // Copies no longer taking calls, until their last call is answered.
  std::vector<std::weak_ptr<ServableModel>> retiring;
  bool loading = false;
  // The last load failure, and the files it failed with.
  std::string failure;
  std::string failed_fingerprint;
  // The operator's choice: unloaded (until loaded again, or until its files
  // change while polling), or loaded whatever the policy says.
  enum class Choice { kNone, kUnloaded, kPinned } choice = Choice::kNone;
  std::string unloaded_fingerprint;
  // Why the version stopped serving.
  std::string retired_because;

  bool Retiring() const {
    return std::any_of(retiring.begin(), retiring.end(),
                       [](const auto& copy) { return !copy.expired(); });
  }
};

struct ModelRepository::ModelEntry {
  std::string name;
  bool on_disk = false;
  absl::Status policy_status;
  VersionPolicy policy;
  std::map<int64_t, VersionEntry> versions;
  // The versions the policy and the operator want served.
  std::vector<int64_t> aspired;
};

struct ModelRepository::LoadJob {
  std::string model;
  int64_t version = 0;
  std::string path;
  std::string fingerprint;
};

ModelRepository::ModelRepository(std::string dir, const RepositoryOptions& options,
                                 BatchScheduler* scheduler, Metrics* metrics)
    : dir_(std::move(dir)), options_(options), scheduler_(scheduler), metrics_(metrics) {
  {
    absl::MutexLock lock(&gone_signal_->mu);
    gone_signal_->repository = this;
  }
  loader_ = std::thread([this] { LoaderLoop(); });
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(
    const std::string& dir, const RepositoryOptions& options, BatchScheduler* scheduler,
    Metrics* metrics) {
  absl::StatusOr<std::vector<ModelOnDisk>> scan = ScanRepository(dir);
  if (!scan.ok()) return scan.status();
  if (scan->empty()) {
    return absl::NotFoundError(absl::StrCat("model repository ", dir,
                                            " holds no models (expected ", dir,
                                            "/<model>/<version>/)"));
  }
  std::unique_ptr<ModelRepository> repository(
      new ModelRepository(dir, options, scheduler, metrics));
  {
    absl::MutexLock lock(&repository->mu_);
    for (const ModelOnDisk& model : *scan) repository->ApplyLocked(model, /*scanned=*/true);
  }
  repository->WaitUntilIdle();
  std::vector<std::string> problems;
  bool any_available = false;
  for (const VersionStatus& v : repository->List()) {
    if (v.state == VersionState::kAvailable) any_available = true;
    if (v.state == VersionState::kFailed) {
      problems.push_back(absl::StrCat("cannot load model ", v.model, " version ", v.version, ": ",
                                      v.reason));
    }
  }
  for (const ModelOnDisk& model : *scan) {
    if (model.versions.empty()) {
      problems.push_back(absl::StrCat(
          model.path, ": no version directories (expected ", model.path,
          "/<positive integer>/ holding a checkpoint and model.json)"));
    } else if (!model.policy_status.ok()) {
      problems.push_back(std::string(model.policy_status.message()));
    }
  }
  for (const std::string& problem : problems) {
    spdlog::error("event=model_problem detail={}", LogQuoted(problem, 1024));
  }
  if (!any_available) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no model version could be served: ",
        problems.empty() ? std::string("the version policies select none")
                         : absl::StrJoin(problems, "; ")));
  }
  if (options.poll_interval.count() > 0) {
    repository->poller_ = std::thread([raw = repository.get()] { raw->PollerLoop(); });
  }
  return repository;
}

ModelRepository::~ModelRepository() {
  {
    absl::MutexLock lock(&gone_signal_->mu);
    gone_signal_->repository = nullptr;
  }
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    jobs_.clear();
    work_cv_.SignalAll();
    poll_cv_.SignalAll();
  }
  loader_.join();
  if (poller_.joinable()) poller_.join();
  absl::MutexLock lock(&mu_);
  models_.clear();
}

void ModelRepository::ApplyLocked(const ModelOnDisk& disk, bool scanned) {
  std::unique_ptr<ModelEntry>& slot = models_[disk.name];
  if (slot == nullptr) {
    slot = std::make_unique<ModelEntry>();
    slot->name = disk.name;
  }
  ModelEntry& model = *slot;
  model.on_disk = true;
  model.policy_status = disk.policy_status;
  if (disk.policy_status.ok()) model.policy = disk.policy;
  for (auto& [number, entry] : model.versions) entry.on_disk = false;
  for (const VersionOnDisk& v : disk.versions) {
    VersionEntry& entry = model.versions[v.version];
    entry.version = v.version;
    entry.on_disk = true;
    entry.path = v.path;
    entry.fingerprint = v.fingerprint;
    if (scanned && entry.choice == VersionEntry::Choice::kUnloaded &&
        entry.fingerprint != entry.unloaded_fingerprint) {
      entry.choice = VersionEntry::Choice::kNone;
    }
  }
  ReconcileLocked(model);
}

void ModelRepository::ReconcileLocked(ModelEntry& model) {
  std::vector<int64_t> on_disk;
  for (const auto& [number, entry] : model.versions) {
    if (entry.on_disk && model.on_disk) on_disk.push_back(number);
  }
  std::vector<int64_t> aspired;
  if (model.policy_status.ok()) {
    aspired = SelectVersions(model.policy, on_disk);
  } else {
    // An unreadable config.json changes nothing: what serves keeps serving.
    for (const auto& [number, entry] : model.versions) {
      if (entry.serving != nullptr && entry.on_disk) aspired.push_back(number);
    }
  }
  for (const auto& [number, entry] : model.versions) {
    if (entry.on_disk && model.on_disk && entry.choice == VersionEntry::Choice::kPinned &&
        std::find(aspired.begin(), aspired.end(), number) == aspired.end()) {
      aspired.push_back(number);
    }
  }
  aspired.erase(std::remove_if(aspired.begin(), aspired.end(),
                               [&model](int64_t v) {
                                 return model.versions[v].choice ==
                                        VersionEntry::Choice::kUnloaded;
                               }),
                aspired.end());
  std::sort(aspired.begin(), aspired.end());
  model.aspired = aspired;

  bool aspired_available = false;
  for (int64_t v : aspired) {
    VersionEntry& entry = model.versions[v];
    if (entry.serving != nullptr) aspired_available = true;
    if (entry.loading) continue;
    if (entry.serving != nullptr && entry.serving_fingerprint == entry.fingerprint) continue;
    if (!entry.failure.empty() && entry.failed_fingerprint == entry.fingerprint) continue;
    entry.loading = true;
    jobs_.push_back({model.name, v, entry.path, entry.fingerprint});
    work_cv_.Signal();
  }
  for (auto& [number, entry] : model.versions) {
    if (entry.serving == nullptr) continue;
    if (std::find(aspired.begin(), aspired.end(), number) != aspired.end()) continue;
    // Availability first: a version the policy no longer wants serves until
    // one it wants is AVAILABLE, unless nothing is wanted any more.
    if (entry.choice == VersionEntry::Choice::kUnloaded) {
      RetireLocked(model, entry, "unloaded by ModelControl.Unload");
    } else if (!model.on_disk) {
      RetireLocked(model, entry, "its model directory was removed");
    } else if (aspired.empty()) {
      RetireLocked(model, entry, "no version of the model is selected any more");
    } else if (aspired_available) {
      RetireLocked(model, entry,
                   entry.on_disk ? absl::StrCat("replaced: the version policy (",
                                                model.policy.Describe(), ") selects others")
                                 : std::string("its directory was removed"));
    }
  }
  PublishLocked(model);
}

void ModelRepository::RetireLocked(ModelEntry& model, VersionEntry& entry,
                                   const std::string& reason) {
  spdlog::info("event=model_unloading model={} version={} reason={}", LogQuoted(model.name),
               entry.version, LogQuoted(reason));
  entry.retiring.push_back(entry.serving);
  entry.serving.reset();
  entry.retired_because = reason;
  if (metrics_ != nullptr) metrics_->CountUnload(model.name);
}

void ModelRepository::ForgetGoneLocked() {
  for (auto model = models_.begin(); model != models_.end();) {
    ModelEntry& m = *model->second;
    for (auto v = m.versions.begin(); v != m.versions.end();) {
      VersionEntry& e = v->second;
      e.retiring.erase(std::remove_if(e.retiring.begin(), e.retiring.end(),
                                      [](const auto& copy) { return copy.expired(); }),
                       e.retiring.end());
      const bool gone = !(e.on_disk && m.on_disk) && e.serving == nullptr && !e.loading &&
                        e.retiring.empty();
      if (gone && metrics_ != nullptr) metrics_->SetVersionState(m.name, e.version, "");
      v = gone ? m.versions.erase(v) : std::next(v);
    }
    model = !m.on_disk && m.versions.empty() ? models_.erase(model) : std::next(model);
  }
}

std::vector<VersionStatus> ModelRepository::StatusesLocked(const ModelEntry& model) const {
  std::vector<VersionStatus> out;
  for (const auto& [number, e] : model.versions) {
    // Gone from disk and from memory: forgotten at the next cleanup.
    if (!(e.on_disk && model.on_disk) && e.serving == nullptr && !e.loading && !e.Retiring()) {
      continue;
    }
    VersionStatus status;
    status.model = model.name;
    status.version = number;
    const bool aspired =
        std::find(model.aspired.begin(), model.aspired.end(), number) != model.aspired.end();
    const bool failed_now = !e.failure.empty() && e.failed_fingerprint == e.fingerprint;
    if (e.serving != nullptr) {
      status.state = VersionState::kAvailable;
      status.servable = e.serving;
      if (e.loading) {
        status.reason = "its files changed: the new copy is loading";
      } else if (failed_now) {
        status.reason = absl::StrCat("its changed files failed to load (", e.failure,
                                     "); the copy loaded before keeps serving");
      } else if (!aspired) {
        status.reason = "kept serving until a version the policy selects is AVAILABLE";
      }
    } else if (e.loading) {
      status.state = VersionState::kLoading;
    } else if (e.Retiring()) {
      status.state = VersionState::kUnloading;
      status.reason = absl::StrCat(e.retired_because, "; finishing the calls it accepted");
      for (const auto& copy : e.retiring) {
        if (auto live = copy.lock()) status.servable = live;
      }
    } else if (failed_now) {
      status.state = VersionState::kFailed;
      status.reason = e.failure;
    } else {
      status.state = VersionState::kUnloaded;
      if (e.choice == VersionEntry::Choice::kUnloaded) {
        status.reason = "unloaded by ModelControl.Unload";
      } else if (!model.policy_status.ok()) {
        status.reason = std::string(model.policy_status.message());
      } else if (!aspired) {
        status.reason = absl::StrCat("not selected by the version policy (",
                                     model.policy.Describe(), ")");
      } else if (!e.retired_because.empty()) {
        status.reason = e.retired_because;
      }
    }
    out.push_back(std::move(status));
  }
  return out;
}

void ModelRepository::PublishLocked(const ModelEntry& model) {
  bool serving = false;
  for (const VersionStatus& status : StatusesLocked(model)) {
    if (status.state == VersionState::kAvailable) serving = true;
    if (metrics_ != nullptr) {
      metrics_->SetVersionState(model.name, status.version, VersionStateName(status.state));
    }
  }
  if (listener_) listener_(model.name, serving);
}

void ModelRepository::LoaderLoop() {
  // Loading builds no OpenMP team beside the batch workers' (see Server).
  if (options_.device == "cpu") SetIntraOpThreads(1);
  absl::MutexLock lock(&mu_);
  while (true) {
    while (!stopping_ && jobs_.empty() && !copy_gone_.load()) work_cv_.Wait(&mu_);
    if (stopping_) return;
    if (copy_gone_.exchange(false)) {
      ForgetGoneLocked();
      for (const auto& [name, model] : models_) PublishLocked(*model);
      done_cv_.SignalAll();
      continue;
    }
    LoadJob job = jobs_.front();
    jobs_.erase(jobs_.begin());
    ++loading_;
    mu_.Unlock();
    spdlog::info("event=model_loading model={} version={} path={}", LogQuoted(job.model),
                 job.version, LogQuoted(job.path));
    absl::StatusOr<std::shared_ptr<ServableModel>> servable = LoadVersion(job);
    mu_.Lock();
    --loading_;
    Loaded(job, std::move(servable));
    ForgetGoneLocked();
    done_cv_.SignalAll();
  }
}

absl::StatusOr<std::shared_ptr<ServableModel>> ModelRepository::LoadVersion(const LoadJob& job) {
  std::shared_ptr<GoneSignal> signal = gone_signal_;
  absl::StatusOr<std::shared_ptr<ServableModel>> servable = LoadServable(
      job.model, job.version, job.path, options_, scheduler_, metrics_, [signal] {
        absl::MutexLock lock(&signal->mu);
        if (signal->repository != nullptr) {
          signal->repository->copy_gone_.store(true);
          signal->repository->work_cv_.Signal();
        }
      });
  if (!servable.ok()) return servable.status();
  if (absl::Status warm = (*servable)->WarmUp(); !warm.ok()) return warm;
  return servable;
}

void ModelRepository::Loaded(const LoadJob& job,
                             absl::StatusOr<std::shared_ptr<ServableModel>> servable) {
  if (metrics_ != nullptr) metrics_->CountLoad(job.model, servable.ok());
  auto model_it = models_.find(job.model);
  if (model_it == models_.end()) return;
  ModelEntry& model = *model_it->second;
  auto version_it = model.versions.find(job.version);
  if (version_it == model.versions.end()) return;
  VersionEntry& entry = version_it->second;
  entry.loading = false;
  if (servable.ok()) {
    const ServableModel& s = **servable;
    spdlog::info("event=model_loaded model={} version={} path={} architecture={} method={} "
                 "classes={} input_size={} keep_rate={} device={}",
                 LogQuoted(job.model), job.version, LogQuoted(job.path), s.config().model,
                 ReductionName(s.config().reduction), s.config().num_classes,
                 s.config().input_size, s.default_keep_rate(), options_.device);
    if (entry.serving != nullptr) RetireLocked(model, entry, "replaced by a copy of its new files");
    entry.serving = *std::move(servable);
    entry.serving_fingerprint = job.fingerprint;
    entry.failure.clear();
    entry.retired_because.clear();
  } else {
    spdlog::error("event=model_load_failed model={} version={} path={} cause={}",
                  LogQuoted(job.model), job.version, LogQuoted(job.path),
                  LogQuoted(servable.status().message(), 1024));
    entry.failure = absl::StrCat(job.path, ": ", servable.status().message());
    entry.failed_fingerprint = job.fingerprint;
  }
  ReconcileLocked(model);
}

void ModelRepository::Poll() {
  absl::StatusOr<std::vector<ModelOnDisk>> scan = ScanRepository(dir_);
  if (!scan.ok()) {
    spdlog::error("event=repository_poll_failed cause={}", LogQuoted(scan.status().message()));
    return;
  }
  absl::MutexLock lock(&mu_);
  std::vector<std::string> seen;
  for (const ModelOnDisk& model : *scan) {
    ApplyLocked(model, /*scanned=*/true);
    seen.push_back(model.name);
  }
  std::vector<ModelEntry*> gone;
  for (auto& [name, model] : models_) {
    if (std::find(seen.begin(), seen.end(), name) == seen.end()) gone.push_back(model.get());
  }
  for (ModelEntry* model : gone) {
    model->on_disk = false;
    for (auto& [number, entry] : model->versions) entry.on_disk = false;
    ReconcileLocked(*model);
  }
  ForgetGoneLocked();
  done_cv_.SignalAll();
}

void ModelRepository::PollerLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    poll_cv_.WaitWithTimeout(&mu_, absl::FromChrono(options_.poll_interval));
    if (stopping_) return;
    mu_.Unlock();
    Poll();
    mu_.Lock();
  }
}

bool ModelRepository::IdleLocked() const { return jobs_.empty() && loading_ == 0; }

void ModelRepository::WaitUntilIdle() const {
  absl::MutexLock lock(&mu_);
  while (!stopping_ && !IdleLocked()) done_cv_.Wait(&mu_);
}

void ModelRepository::WaitForModelLocked(const std::string& name) {
  while (!stopping_) {
    auto it = models_.find(name);
    if (it == models_.end()) return;
    bool loading = false;
    for (const auto& [number, entry] : it->second->versions) loading |= entry.loading;
    if (!loading) return;
    done_cv_.Wait(&mu_);
  }
}

absl::StatusOr<std::vector<VersionStatus>> ModelRepository::Load(const std::string& name,
                                                                 std::optional<int64_t> version) {
  if (absl::Status valid = ValidateModelName(name); !valid.ok()) return valid;
  absl::StatusOr<ModelOnDisk> disk = ScanModel(dir_, name);
  if (!disk.ok()) {
    return absl::NotFoundError(absl::StrCat("model \"", ClientText(name),
                                            "\" is not in the model repository"));
  }
  absl::MutexLock lock(&mu_);
  ApplyLocked(*disk, /*scanned=*/false);
  ModelEntry& model = *models_[name];
  if (version) {
    auto it = model.versions.find(*version);
    if (it == model.versions.end() || !it->second.on_disk) {
      return absl::NotFoundError(absl::StrCat("model \"", ClientText(name), "\" has no version ",
                                              *version, " on disk"));
    }
    VersionEntry& entry = it->second;
    std::vector<int64_t> on_disk;
    for (const auto& [number, e] : model.versions) {
      if (e.on_disk) on_disk.push_back(number);
    }
    const std::vector<int64_t> selected = SelectVersions(model.policy, on_disk);
    const bool by_policy = std::find(selected.begin(), selected.end(), *version) != selected.end();
    entry.choice = by_policy ? VersionEntry::Choice::kNone : VersionEntry::Choice::kPinned;
    // An explicit load tries a failed version again.
    entry.failure.clear();
  } else {
    for (auto& [number, entry] : model.versions) {
      if (entry.choice == VersionEntry::Choice::kUnloaded) {
        entry.choice = VersionEntry::Choice::kNone;
      }
      entry.failure.clear();
    }
  }
  ReconcileLocked(model);
  WaitForModelLocked(name);
  auto it = models_.find(name);
  if (it == models_.end()) return std::vector<VersionStatus>();
  return StatusesLocked(*it->second);
}

absl::StatusOr<std::vector<VersionStatus>> ModelRepository::Unload(
    const std::string& name, std::optional<int64_t> version) {
  if (absl::Status valid = ValidateModelName(name); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model \"", ClientText(name), "\" not found"));
  }
  ModelEntry& model = *it->second;
  bool found = false;
  for (auto& [number, entry] : model.versions) {
    if (version && number != *version) continue;
    found = true;
    entry.choice = VersionEntry::Choice::kUnloaded;
    entry.unloaded_fingerprint = entry.fingerprint;
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("model \"", ClientText(name), "\" has no version ",
                                            *version));
  }
  ReconcileLocked(model);
  std::vector<VersionStatus> statuses = StatusesLocked(model);
  ForgetGoneLocked();
  return statuses;
}

absl::StatusOr<std::vector<VersionStatus>> ModelRepository::Reload(const std::string& name) {
  if (absl::Status valid = ValidateModelName(name); !valid.ok()) return valid;
  absl::StatusOr<ModelOnDisk> disk = ScanModel(dir_, name);
  absl::MutexLock lock(&mu_);
  if (!disk.ok()) {
    auto it = models_.find(name);
    if (it == models_.end()) {
      return absl::NotFoundError(absl::StrCat("model \"", ClientText(name),
                                              "\" is not in the model repository"));
    }
    it->second->on_disk = false;
    for (auto& [number, entry] : it->second->versions) entry.on_disk = false;
    ReconcileLocked(*it->second);
  } else {
    ApplyLocked(*disk, /*scanned=*/false);
  }
  WaitForModelLocked(name);
  std::vector<VersionStatus> statuses;
  if (auto it = models_.find(name); it != models_.end()) statuses = StatusesLocked(*it->second);
  ForgetGoneLocked();
  return statuses;
}

absl::StatusOr<std::shared_ptr<const ServableModel>> ModelRepository::Find(
    absl::string_view name, std::optional<int64_t> version) const {
  if (absl::Status valid = ValidateModelName(name); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model \"", ClientText(name),
                                            "\" not found; available models: ",
                                            DescribeLocked()));
  }
  const ModelEntry& model = *it->second;
  std::vector<int64_t> available;
  for (const auto& [number, entry] : model.versions) {
    if (entry.serving != nullptr) available.push_back(number);
  }
  if (!version) {
    if (available.empty()) {
      return absl::NotFoundError(
          absl::StrCat("model \"", ClientText(name), "\" has no AVAILABLE version"));
    }
    return std::shared_ptr<const ServableModel>(model.versions.at(available.back()).serving);
  }
  auto v = model.versions.find(*version);
  if (v == model.versions.end() || v->second.serving == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "model \"", ClientText(name), "\" has no AVAILABLE version ", *version,
        "; available versions: ", available.empty() ? "none" : absl::StrJoin(available, ", ")));
  }
  return std::shared_ptr<const ServableModel>(v->second.serving);
}

std::string ModelRepository::DescribeLocked() const {
  std::vector<std::string> parts;
  for (const auto& [name, model] : models_) {
    std::vector<int64_t> numbers;
    for (const auto& [number, entry] : model->versions) {
      if (entry.serving != nullptr) numbers.push_back(number);
    }
    if (numbers.empty()) continue;
    parts.push_back(absl::StrCat(name, " (version", numbers.size() > 1 ? "s " : " ",
                                 absl::StrJoin(numbers, ", "), ")"));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

std::vector<VersionStatus> ModelRepository::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<VersionStatus> all;
  for (const auto& [name, model] : models_) {
    for (VersionStatus& status : StatusesLocked(*model)) all.push_back(std::move(status));
  }
  return all;
}

absl::StatusOr<std::vector<VersionStatus>> ModelRepository::ListModel(
    absl::string_view name) const {
  if (absl::Status valid = ValidateModelName(name); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model \"", ClientText(name), "\" not found"));
  }
  return StatusesLocked(*it->second);
}

std::vector<int64_t> ModelRepository::AvailableVersions(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> numbers;
  auto it = models_.find(name);
  if (it == models_.end()) return numbers;
  for (const auto& [number, entry] : it->second->versions) {
    if (entry.serving != nullptr) numbers.push_back(number);
  }
  return numbers;
}

void ModelRepository::SetServingListener(ServingListener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
  for (const auto& [name, model] : models_) PublishLocked(*model);
}

void ModelRepository::FlushAll() const { scheduler_->FlushAll(); }

}  // namespace clca::server
