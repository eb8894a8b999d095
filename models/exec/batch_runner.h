// Runs batches of images through a ClcaModel on its device and hands back
// float32 logits on the CPU. One runner serves one thread at a time (a
// server worker); give each worker its own.
//
// On the CPU a batch is stacked and run with ClcaModel::ForwardMixed. On
// CUDA (when LibTorch has it) the runner owns a CUDA stream, pinned host
// buffers for the input and the logits, and CUDA graphs: a batch of one keep
// rate, for a method whose token counts depend only on the keep rate, is
// padded to its bucket (1, 2, 4, ... max_batch) and replayed from a graph
// captured for that (bucket, keep rate). Batches of several keep rates, and
// ATS and DPC-KNN (whose token counts depend on the image), run eagerly on
// the runner's stream.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/vit/model.h"

namespace clca {

struct BatchRunnerOptions {
  // The largest batch the runner takes (its buffers and largest bucket).
  int64_t max_batch = 64;
  // CUDA only: replay captured graphs where shapes are static; false: every
  // batch runs eagerly.
  bool cuda_graphs = true;
  // CUDA only: a (bucket, keep rate) seen this many times by Run is
  // captured while the runner holds fewer than max_graphs graphs; keys used
  // less, or met when it is full, run eagerly.
  int capture_after = 2;
  // CUDA only: graphs kept per runner. Prepare captures even when it is
  // full, releasing the least recently replayed graph. 0: none are captured.
  int max_graphs = 32;
};

struct BatchRunnerStats {
  int64_t graph_replays = 0;
  int64_t eager_batches = 0;
  int64_t captures = 0;
  int64_t evictions = 0;
  // Graphs held now.
  int64_t graphs = 0;
};

class BatchRunner {
 public:
  // A runner for `model` (which must outlive it), on the model's device.
  // INVALID_ARGUMENT for options out of range; UNIMPLEMENTED for a CUDA model
  // when this build's LibTorch has no CUDA.
  static absl::StatusOr<std::unique_ptr<BatchRunner>> Create(const ClcaModel& model,
                                                             const BatchRunnerOptions& options = {});
  virtual ~BatchRunner() = default;

  // Runs images[i] ([3, S, S] float32, any device) at keep_rates[i]. The
  // logits come back float32 on the CPU, in input order; tokens as in
  // MixedForwardResult. At most max_batch images.
  virtual absl::StatusOr<MixedForwardResult> Run(const std::vector<torch::Tensor>& images,
                                                 const std::vector<double>& keep_rates) = 0;

  // Readies batches of `batch_size` images at `keep_rate`: captures the
  // graph of their bucket where graphs apply, otherwise runs one forward
  // pass of blank images. For warm-up.
  absl::Status Prepare(int64_t batch_size, double keep_rate);

  // Whether batches of one keep rate replay graphs here (CUDA, graphs on, a
  // method with static token counts).
  virtual bool UsesGraphs() const { return false; }

  virtual BatchRunnerStats stats() const { return stats_; }

  const BatchRunnerOptions& options() const { return options_; }

 protected:
  BatchRunner(const ClcaModel& model, const BatchRunnerOptions& options)
      : model_(model), options_(options) {}
  // Captures the graph of (bucket, keep_rate) now, evicting one if full;
  // false where that key runs eagerly (its capture failed before). Called by
  // Prepare only where UsesGraphs().
  virtual absl::StatusOr<bool> CaptureGraph(int64_t bucket, double keep_rate) { return false; }

  const ClcaModel& model_;
  const BatchRunnerOptions options_;
  BatchRunnerStats stats_;
};

// The bucket a batch of `batch_size` is padded to: the smallest power of two
// not below it, at most `max_batch` (and max_batch itself when it is not a
// power of two and nothing smaller fits).
int64_t BatchBucket(int64_t batch_size, int64_t max_batch);

// Whether `reduction`'s token counts depend only on the keep rate, so that a
// forward pass has the same shapes for every image (false for ATS and
// DPC-KNN).
bool HasStaticTokenCounts(Reduction reduction);

namespace internal {
// Defined in cuda_runner.cc: the CUDA runner, or UNIMPLEMENTED in a build
// without CUDA.
absl::StatusOr<std::unique_ptr<BatchRunner>> CreateCudaRunner(const ClcaModel& model,
                                                              const BatchRunnerOptions& options);
// INVALID_ARGUMENT unless there are 1 to max_batch images, each a float
// [3, S, S] tensor with S = input_size, and one keep rate per image.
absl::Status CheckBatch(const std::vector<torch::Tensor>& images,
                        const std::vector<double>& keep_rates, int64_t input_size,
                        int64_t max_batch);
}  // namespace internal

}  // namespace clca
