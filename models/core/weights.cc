#include "models/core/weights.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clca {
namespace {

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

}  // namespace

WeightStore::WeightStore(const StateDict& state_dict) {
  for (const auto& [name, tensor] : state_dict) tensors_[name] = tensor;
}

torch::Tensor WeightStore::TakeAnyShape(const std::string& name) {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    missing_.push_back(name);
    return {};
  }
  used_.insert(name);
  return it->second;
}

torch::Tensor WeightStore::Take(const std::string& name, const std::vector<int64_t>& shape) {
  torch::Tensor t = TakeAnyShape(name);
  if (!t.defined()) return t;
  if (t.sizes() != c10::IntArrayRef(shape)) {
    problems_.push_back(absl::StrCat(name, " has shape ", ShapeString(t.sizes()), ", expected ",
                                     ShapeString(shape)));
    return {};
  }
  return t;
}

void WeightStore::Ignore(const std::string& prefix) { ignored_prefixes_.push_back(prefix); }

absl::Status WeightStore::Finish() const {
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : tensors_) {
    if (used_.count(name)) continue;
    bool ignored = absl::EndsWith(name, "num_batches_tracked");
    for (const auto& p : ignored_prefixes_) ignored = ignored || absl::StartsWith(name, p);
    if (!ignored) unexpected.push_back(name);
  }
  if (missing_.empty() && problems_.empty() && unexpected.empty()) return absl::OkStatus();
  // Long lists are cut: the first few say what is wrong.
  auto list = [](const std::vector<std::string>& items, const char* sep) {
    constexpr size_t kShown = 8;
    std::vector<std::string> shown(items.begin(), items.begin() + std::min(items.size(), kShown));
    std::string out = absl::StrJoin(shown, sep);
    if (items.size() > kShown) absl::StrAppend(&out, sep, "... (", items.size() - kShown, " more)");
    return out;
  };
  std::vector<std::string> parts;
  if (!missing_.empty()) parts.push_back(absl::StrCat("missing keys: ", list(missing_, ", ")));
  if (!problems_.empty()) parts.push_back(absl::StrCat("mis-shaped: ", list(problems_, "; ")));
  if (!unexpected.empty()) parts.push_back(absl::StrCat("unexpected keys: ", list(unexpected, ", ")));
  return absl::InvalidArgumentError(
      absl::StrCat("checkpoint does not match the configuration: ", absl::StrJoin(parts, " | ")));
}

}  // namespace clca
