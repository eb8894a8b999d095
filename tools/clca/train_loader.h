// Training batches from a dataset list: images decoded once and resized to
// the square the evaluation pipeline uses (int(size / 0.875)), then per
// sample a random input_size crop and a random horizontal flip, normalised.
// Worker threads build whole batches ahead of the consumer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/datasets/dataset.h"

namespace clca::tool {

struct LoaderOptions {
  int input_size = 224;
  int batch_size = 32;
  // Threads that decode images and build batches.
  int threads = 2;
  // Shuffling and augmentation depend on this and the epoch only.
  uint64_t seed = 1;
  // Random crop and flip (off: the evaluation center crop).
  bool augment = true;
};

struct Batch {
  torch::Tensor images;  // [B, 3, S, S] float32
  torch::Tensor labels;  // [B] int64
};

class TrainLoader {
 public:
  // Decodes and resizes every image of `examples` (in parallel). An image
  // that cannot be read is an error naming it.
  static absl::StatusOr<std::unique_ptr<TrainLoader>> Create(
      std::vector<data::Example> examples, const LoaderOptions& options);
  ~TrainLoader();

  // Full batches per epoch (the last partial one is dropped).
  int64_t batches_per_epoch() const;
  // Starts producing epoch `epoch` from batch `first_batch`.
  void StartEpoch(int epoch, int64_t first_batch = 0);
  // The next batch of the current epoch, in order.
  Batch Next();

 private:
  TrainLoader(std::vector<data::Example> examples, const LoaderOptions& options);
  void Build(const std::vector<int64_t>& order, int epoch, int64_t index, Batch* out) const;
  void Work();
  void StopWorkers();

  std::vector<data::Example> examples_;
  LoaderOptions options_;
  int resized_ = 0;
  std::vector<std::vector<uint8_t>> pixels_;  // resized squares, RGB

  std::mutex mu_;
  std::condition_variable cv_;
  int epoch_ = 0;
  uint64_t generation_ = 0;  // StartEpoch calls so far
  std::shared_ptr<const std::vector<int64_t>> order_;
  int64_t next_to_build_ = 0, next_to_take_ = 0;
  std::map<int64_t, Batch> ready_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace clca::tool
