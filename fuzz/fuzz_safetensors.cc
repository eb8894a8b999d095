// The safetensors reader on a path, as LoadCheckpoint calls it: header
// length, JSON header, dtypes, shapes and data offsets.
#include <cstdint>
#include <string_view>

#include <torch/torch.h>

#include "fuzz/util.h"
#include "models/io/safetensors.h"

namespace {
clca::fuzz::MemoryFile* file = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  torch::set_num_threads(1);
  file = new clca::fuzz::MemoryFile();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clca::LooksLikeSafetensors(std::string_view(reinterpret_cast<const char*>(data), size), size);
  file->Write(data, size);
  absl::StatusOr<clca::SafetensorsFile> read = clca::ReadSafetensors(file->path());
  if (!read.ok()) return 0;
  for (const auto& [name, tensor] : read->tensors) {
    if (!tensor.is_contiguous() || !tensor.device().is_cpu()) __builtin_trap();
    // Every byte of every tensor lies inside the file.
    if (tensor.nbytes() > size) __builtin_trap();
    clca::fuzz::TouchBytes(tensor.data_ptr(), tensor.nbytes());
  }
  read->metadata.dump();
  return 0;
}
