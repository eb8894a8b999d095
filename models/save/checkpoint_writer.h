// Writing checkpoints that Python's torch.load, and LoadCheckpoint, read.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "models/core/state_dict.h"

namespace clca {

// Writes `state_dict` (and, if not null, `args` as a plain dict) as a
// `torch.save`-compatible archive that Python's torch.load reads.
absl::Status SaveCheckpoint(const std::string& path, const StateDict& state_dict,
                            const nlohmann::json& args = nullptr);

}  // namespace clca
