// The CUDA batch runner: a stream of its own, pinned host buffers and CUDA
// graphs (see batch_runner.h). Compiled with CLCA_WITH_CUDA where LibTorch
// has CUDA; elsewhere CreateCudaRunner says so.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/core/errors.h"
#include "models/exec/batch_runner.h"

#ifdef CLCA_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/version.h>

#include "absl/synchronization/mutex.h"
#endif

namespace clca::internal {

#ifndef CLCA_WITH_CUDA

absl::StatusOr<std::unique_ptr<BatchRunner>> CreateCudaRunner(const ClcaModel& model,
                                                              const BatchRunnerOptions&) {
  return absl::UnimplementedError(absl::StrCat(
      "the model is on ", model.device().str(),
      " but this build's LibTorch has no CUDA; build against a LibTorch with CUDA"));
}

#else

namespace {

// Captures are rare (warm-up, or a key's first uses); one at a time in the
// process keeps them from seeing each other's allocations.
absl::Mutex capture_mu;

using Key = std::pair<int64_t, double>;  // (bucket, keep rate)

struct Graph {
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  torch::Tensor input;   // [bucket, 3, S, S] float32, on the device
  torch::Tensor logits;  // [bucket, classes] float32, written by replay()
  std::vector<int64_t> tokens;
  uint64_t last_used = 0;
};

class CudaRunner : public BatchRunner {
 public:
  CudaRunner(const ClcaModel& model, const BatchRunnerOptions& options,
             c10::cuda::CUDAStream stream)
      : BatchRunner(model, options), stream_(stream) {}

  absl::Status Init() {
    try {
      const int64_t s = model_.config().input_size;
      const torch::Device device = model_.device();
      pinned_input_ = torch::empty({options_.max_batch, 3, s, s},
                                   torch::dtype(torch::kFloat32).pinned_memory(true));
      pinned_logits_ = torch::empty({options_.max_batch, model_.config().num_classes},
                                    torch::dtype(torch::kFloat32).pinned_memory(true));
      c10::cuda::CUDAStreamGuard guard(stream_);
      device_input_ = torch::empty({options_.max_batch, 3, s, s},
                                   torch::dtype(torch::kFloat32).device(device));
      pool_ = at::cuda::graph_pool_handle();
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate the batch buffers: ", ExceptionMessage(e)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<MixedForwardResult> Run(const std::vector<torch::Tensor>& images,
                                         const std::vector<double>& keep_rates) override {
    if (absl::Status s =
            CheckBatch(images, keep_rates, model_.config().input_size, options_.max_batch);
        !s.ok()) {
      return s;
    }
    const auto n = static_cast<int64_t>(images.size());
    try {
      c10::InferenceMode inference;
      c10::cuda::CUDAStreamGuard guard(stream_);
      Graph* graph = nullptr;
      if (UsesGraphs() && std::all_of(keep_rates.begin(), keep_rates.end(),
                                      [&](double k) { return k == keep_rates.front(); })) {
        absl::StatusOr<Graph*> found =
            Find({BatchBucket(n, options_.max_batch), keep_rates.front()}, /*now=*/false);
        if (!found.ok()) return found.status();
        graph = *found;
      }
      // Straight into the graph's input where one replays.
      const torch::Tensor input =
          Upload(images, (graph != nullptr ? graph->input : device_input_).narrow(0, 0, n));
      MixedForwardResult result;
      torch::Tensor logits;
      if (graph != nullptr) {
        graph->graph->replay();
        logits = graph->logits.narrow(0, 0, n);
        result.tokens.assign(n, graph->tokens);
        ++stats_.graph_replays;
      } else {
        absl::StatusOr<MixedForwardResult> eager = model_.ForwardMixed(input, keep_rates);
        if (!eager.ok()) return eager.status();
        logits = eager->logits;
        result.tokens = std::move(eager->tokens);
        ++stats_.eager_batches;
      }
      torch::Tensor host = pinned_logits_.narrow(0, 0, n);
      host.copy_(logits, /*non_blocking=*/true);
      stream_.synchronize();
      result.logits = host.clone();
      return result;
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("batch failed on ", model_.device().str(), ": ",
                                              ExceptionMessage(e)));
    }
  }

  bool UsesGraphs() const override {
    return options_.cuda_graphs && options_.max_graphs > 0 &&
           HasStaticTokenCounts(model_.config().reduction);
  }

  BatchRunnerStats stats() const override {
    BatchRunnerStats out = stats_;
    out.graphs = static_cast<int64_t>(graphs_.size());
    return out;
  }

 private:
  absl::StatusOr<bool> CaptureGraph(int64_t bucket, double keep_rate) override {
    try {
      c10::InferenceMode inference;
      c10::cuda::CUDAStreamGuard guard(stream_);
      absl::StatusOr<Graph*> graph = Find({bucket, keep_rate}, /*now=*/true);
      if (!graph.ok()) return graph.status();
      return *graph != nullptr;
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("capture failed: ", ExceptionMessage(e)));
    }
  }

  // Copies the images into `out` ([n, 3, S, S] float32 on the device) on the
  // runner's stream, through the pinned buffer for host images; returns out.
  torch::Tensor Upload(const std::vector<torch::Tensor>& images, torch::Tensor out) {
    const auto n = static_cast<int64_t>(images.size());
    // The model's device may name no index ("cuda": the current one).
    const torch::Device device = model_.device();
    const bool on_device = std::all_of(images.begin(), images.end(), [&](const torch::Tensor& t) {
      return t.device().type() == device.type() &&
             (!device.has_index() || t.device().index() == device.index());
    });
    if (on_device) {
      out.copy_(torch::stack(images));
      return out;
    }
    for (int64_t i = 0; i < n; ++i) pinned_input_[i].copy_(images[i]);
    out.copy_(pinned_input_.narrow(0, 0, n), /*non_blocking=*/true);
    return out;
  }

  // The graph for `key`, capturing it when it is due (now, or after
  // capture_after uses); nullptr where the key runs eagerly.
  absl::StatusOr<Graph*> Find(const Key& key, bool now) {
    ++clock_;
    if (auto it = graphs_.find(key); it != graphs_.end()) {
      it->second.last_used = clock_;
      return &it->second;
    }
    if (failed_.count(key) != 0) return nullptr;
    const bool full = static_cast<int>(graphs_.size()) >= options_.max_graphs;
    // Keys met in serving fill free places only, so that a workload of more
    // keys than places runs them eagerly instead of capturing in turn.
    if (!now && (full || ++seen_[key] < options_.capture_after)) return nullptr;
    seen_.erase(key);
    if (full) Evict();
    absl::StatusOr<Graph> graph = Capture(key);
    if (!graph.ok()) {
      // Not capturable here (the forward pass synchronises, for example):
      // that key stays eager.
      failed_.insert(key);
      if (now) return graph.status();
      return nullptr;
    }
    graph->last_used = clock_;
    ++stats_.captures;
    return &graphs_.emplace(key, *std::move(graph)).first->second;
  }

  void Evict() {
    auto oldest = graphs_.begin();
    for (auto it = graphs_.begin(); it != graphs_.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    if (oldest == graphs_.end()) return;
    graphs_.erase(oldest);
    ++stats_.evictions;
  }

  // Runs the forward pass of `key` three times on the stream (so that its
  // kernels, workspaces and allocations exist), then captures it.
  absl::StatusOr<Graph> Capture(const Key& key) {
    const auto [bucket, keep_rate] = key;
    const int64_t s = model_.config().input_size;
    Graph g;
    g.input = torch::zeros({bucket, 3, s, s}, torch::dtype(torch::kFloat32).device(model_.device()));
    absl::MutexLock lock(&capture_mu);
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<ForwardResult> warm = model_.Forward(g.input, keep_rate);
      if (!warm.ok()) return warm.status();
    }
    stream_.synchronize();
    g.graph = std::make_unique<at::cuda::CUDAGraph>();
    absl::StatusOr<ForwardResult> captured;
    try {
#if TORCH_VERSION_MAJOR >= 2
      g.graph->capture_begin(pool_, cudaStreamCaptureModeThreadLocal);
#else
      g.graph->capture_begin(pool_);
#endif
      captured = model_.Forward(g.input, keep_rate);
      g.graph->capture_end();
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("capturing batch ", bucket, " at keep rate ",
                                              keep_rate, " failed: ", ExceptionMessage(e)));
    }
    if (!captured.ok()) {
      return absl::Status(captured.status().code(),
                          absl::StrCat("capturing batch ", bucket, " at keep rate ", keep_rate,
                                       " failed: ", captured.status().message()));
    }
    g.logits = captured->logits;
    g.tokens = captured->tokens;
    return g;
  }

  c10::cuda::CUDAStream stream_;
  torch::Tensor pinned_input_;
  torch::Tensor pinned_logits_;
  torch::Tensor device_input_;
  decltype(at::cuda::graph_pool_handle()) pool_{0, 0};
  std::map<Key, Graph> graphs_;
  std::map<Key, int> seen_;
  std::set<Key> failed_;
  uint64_t clock_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BatchRunner>> CreateCudaRunner(const ClcaModel& model,
                                                              const BatchRunnerOptions& options) {
  try {
    auto runner = std::make_unique<CudaRunner>(
        model, options,
        c10::cuda::getStreamFromPool(/*isHighPriority=*/false, model.device().index()));
    if (absl::Status s = runner->Init(); !s.ok()) return s;
    return std::unique_ptr<BatchRunner>(std::move(runner));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot set up ", model.device().str(), ": ", ExceptionMessage(e)));
  }
}

#endif  // CLCA_WITH_CUDA

}  // namespace clca::internal
