// Taking named parameters out of a state dict, with the bookkeeping needed to
// report every missing, unexpected or mis-shaped key at once.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "models/core/state_dict.h"

namespace clca {

class WeightStore {
 public:
  explicit WeightStore(const StateDict& state_dict);

  // The tensor named `name`, which must have `shape`. Records a problem and
  // returns an empty tensor when absent or mis-shaped.
  torch::Tensor Take(const std::string& name, const std::vector<int64_t>& shape);
  // Like Take but the shape is checked by the caller (e.g. a resizable grid).
  torch::Tensor TakeAnyShape(const std::string& name);
  // Marks keys starting with `prefix` as known but unused.
  void Ignore(const std::string& prefix);
  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  void AddProblem(std::string problem) { problems_.push_back(std::move(problem)); }

  // OK, or INVALID_ARGUMENT listing missing, mis-shaped and unexpected keys.
  absl::Status Finish() const;

 private:
  std::map<std::string, torch::Tensor> tensors_;
  std::set<std::string> used_;
  std::vector<std::string> ignored_prefixes_;
  std::vector<std::string> missing_;
  std::vector<std::string> problems_;
};

}  // namespace clca
