#include "models/exec/batch_runner.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/core/errors.h"

namespace clca {
namespace {

// Stacks the batch and runs it with ForwardMixed, on whatever device the
// model is on; for the CPU.
class EagerRunner : public BatchRunner {
 public:
  EagerRunner(const ClcaModel& model, const BatchRunnerOptions& options)
      : BatchRunner(model, options) {}

  absl::StatusOr<MixedForwardResult> Run(const std::vector<torch::Tensor>& images,
                                         const std::vector<double>& keep_rates) override {
    if (absl::Status s = internal::CheckBatch(images, keep_rates, model_.config().input_size,
                                              options_.max_batch);
        !s.ok()) {
      return s;
    }
    try {
      c10::InferenceMode guard;
      absl::StatusOr<MixedForwardResult> result =
          model_.ForwardMixed(images.size() == 1 ? images.front().unsqueeze(0)
                                                 : torch::stack(images),
                              keep_rates);
      if (!result.ok()) return result.status();
      result->logits = result->logits.to(torch::kCPU, torch::kFloat32).contiguous();
      ++stats_.eager_batches;
      return result;
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("batch failed: ", ExceptionMessage(e)));
    }
  }
};

}  // namespace

absl::Status BatchRunner::Prepare(int64_t batch_size, double keep_rate) {
  if (batch_size < 1 || batch_size > options_.max_batch) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", batch_size, " outside [1, ",
                                                   options_.max_batch, "]"));
  }
  if (UsesGraphs()) {
    absl::StatusOr<bool> captured =
        CaptureGraph(BatchBucket(batch_size, options_.max_batch), keep_rate);
    if (!captured.ok()) return captured.status();
    if (*captured) return absl::OkStatus();
  }
  const int64_t s = model_.config().input_size;
  std::vector<torch::Tensor> images(batch_size, torch::zeros({3, s, s}));
  return Run(images, std::vector<double>(batch_size, keep_rate)).status();
}

int64_t BatchBucket(int64_t batch_size, int64_t max_batch) {
  int64_t bucket = 1;
  while (bucket < batch_size) bucket *= 2;
  return std::min(bucket, max_batch);
}

bool HasStaticTokenCounts(Reduction reduction) {
  return reduction != Reduction::kAts && reduction != Reduction::kDpcKnn;
}

absl::StatusOr<std::unique_ptr<BatchRunner>> BatchRunner::Create(
    const ClcaModel& model, const BatchRunnerOptions& options) {
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch must be at least 1, got ", options.max_batch));
  }
  if (options.capture_after < 1 || options.max_graphs < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "capture_after must be at least 1 and max_graphs at least 0, got ",
        options.capture_after, " and ", options.max_graphs));
  }
  if (model.device().is_cuda()) return internal::CreateCudaRunner(model, options);
  return std::unique_ptr<BatchRunner>(new EagerRunner(model, options));
}

namespace internal {

absl::Status CheckBatch(const std::vector<torch::Tensor>& images,
                        const std::vector<double>& keep_rates, int64_t input_size,
                        int64_t max_batch) {
  const auto n = static_cast<int64_t>(images.size());
  if (n < 1 || n > max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("a batch holds 1 to ", max_batch, " images, got ", n));
  }
  if (keep_rates.size() != images.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", keep_rates.size(), " keep rates for ", n, " images"));
  }
  for (const torch::Tensor& image : images) {
    if (!image.defined() || image.dim() != 3 || image.size(0) != 3 ||
        image.size(1) != input_size || image.size(2) != input_size ||
        !image.is_floating_point()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "each image must be a float [3,", input_size, ",", input_size, "] tensor, got ",
          image.defined() ? absl::StrCat("[", absl::StrJoin(image.sizes(), ","), "] ",
                                         std::string(image.dtype().name()))
                          : std::string("an undefined tensor")));
    }
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace clca
