// Model weights by name, as checkpoints hold them.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace clca {

// Parameter name -> tensor, in the order the file lists them.
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

}  // namespace clca
