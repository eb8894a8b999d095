// Checkpoint files as the model repository reads them: LoadCheckpoint on a
// path (torch.save zip archives with their pickle and tensor records, and
// safetensors), then the training arguments it found fill in a configuration.
#include <cstdint>

#include <torch/torch.h>

#include "fuzz/util.h"
#include "models/core/config.h"
#include "models/io/checkpoint.h"

namespace {
clca::fuzz::MemoryFile* file = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  torch::set_num_threads(1);
  file = new clca::fuzz::MemoryFile();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  file->Write(data, size);
  absl::StatusOr<clca::Checkpoint> checkpoint = clca::LoadCheckpoint(file->path());
  if (!checkpoint.ok()) return 0;
  for (const auto& [name, tensor] : checkpoint->state_dict) {
    // Contiguous CPU tensors whose every element can be read.
    if (!tensor.is_contiguous() || !tensor.device().is_cpu()) __builtin_trap();
    clca::fuzz::TouchBytes(tensor.data_ptr(), tensor.nbytes());
  }
  checkpoint->args.dump();
  // model.json may leave every field to the checkpoint's arguments.
  clca::ResolveConfig(nlohmann::json::object(), &checkpoint->args).status().IgnoreError();
  return 0;
}
