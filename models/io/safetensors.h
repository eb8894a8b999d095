// Reading the safetensors format: an 8-byte little-endian header length, a
// JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
// then the raw little-endian tensor data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "models/io/checkpoint.h"

namespace clca {

struct SafetensorsFile {
  // In header order, with the stored dtype (F32, F16, BF16, F64, I64, I32,
  // I16, I8, U8 or BOOL), contiguous, CPU.
  StateDict tensors;
  // The header's "__metadata__" object (string values by convention), or an
  // empty object.
  nlohmann::json metadata = nlohmann::json::object();
};

// Whether a file of `file_size` bytes starting with `head` (its first 9 bytes
// or more) looks like safetensors: a plausible header length, then '{'.
bool LooksLikeSafetensors(std::string_view head, uint64_t file_size);

// Reads and validates the whole file. Errors name `path` and the problem.
absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

// Writes `tensors` (any of the dtypes above; stored as they are) with
// `metadata` (string values) as a safetensors file, atomically.
absl::Status WriteSafetensors(const std::string& path, const StateDict& tensors,
                              const nlohmann::json& metadata = nlohmann::json::object());

}  // namespace clca
