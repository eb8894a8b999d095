// Reading model weights as users have them: `torch.save` archives (including the
// reference train.py's dict with a pickled argparse.Namespace) and safetensors.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/core/state_dict.h"

namespace clca {

struct Checkpoint {
  // float32 tensors (float16/bfloat16/float64 are converted; integer buffers
  // such as BatchNorm's num_batches_tracked keep their dtype), contiguous, CPU.
  StateDict state_dict;
  // The training script's `args` (an argparse.Namespace) as a JSON object, or
  // null when the file has none.
  nlohmann::json args;
  // Which top-level entry held the weights: "model", "state_dict", "model_ema",
  // or "" for a bare state dict / safetensors file.
  std::string source_key;
  // "torch_zip" or "safetensors".
  std::string format;
};

// Reads a checkpoint. A missing, truncated or corrupt file, or one holding no
// state dict, is an error (never a crash).
absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& path);


}  // namespace clca
