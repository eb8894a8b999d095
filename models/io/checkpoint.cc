#include "models/io/checkpoint.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <caffe2/serialize/inline_container.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/core/errors.h"
#include "models/io/pickle.h"
#include "models/io/safetensors.h"
#include "models/io/torch_storage.h"

namespace clca {
namespace {

using Kind = PickleValue::Kind;
using caffe2::serialize::PyTorchStreamReader;

// Top-level entries that may hold the weights, in order of preference: the
// trained weights ("model", as the reference train.py and DeiT write them),
// then "state_dict" (Lightning, timm), then the EMA copy ("model_ema").
constexpr const char* kWeightKeys[] = {"model", "state_dict", "model_ema"};

absl::Status Invalid(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status Prefixed(const std::string& path, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

// Builds the tensors an unpickled archive describes from its data/ records.
// Each record is read once. The first tensor to view a whole storage keeps the
// record's memory; every other tensor gets a copy of the elements it views.
class TensorReader {
 public:
  explicit TensorReader(PyTorchStreamReader* reader) : reader_(reader) {}

  absl::StatusOr<torch::Tensor> Read(const PickleValue& tensor) {
    const PickleValue& storage = *tensor.items.at(0);
    const auto dtype = StorageDtype(storage);
    if (!dtype) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported storage type ", DescribePickleValue(storage)));
    }
    const int64_t numel = storage.int_value;
    uint64_t nbytes;
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel), c10::elementSize(*dtype), &nbytes)) {
      return absl::InvalidArgumentError("storage is too large");
    }
    auto record = GetRecord(storage.str);
    if (!record.ok()) return record.status();
    Record& r = **record;
    if (r.size < nbytes) {
      return absl::InvalidArgumentError(absl::StrCat("record data/", storage.str, " has ", r.size,
                                                     " bytes, the storage needs ", nbytes));
    }
    const auto options = torch::TensorOptions().dtype(*dtype);
    torch::Tensor base = numel == 0 ? torch::empty({0}, options)
                                    : torch::from_blob(r.data->get(), {numel},
                                                       [owner = r.data](void*) {}, options);
    torch::Tensor view = base.as_strided(tensor.sizes, tensor.strides, tensor.int_value);
    if (!r.lent && tensor.int_value == 0 && view.numel() == numel && view.is_contiguous()) {
      r.lent = true;
      return view;
    }
    return view.clone(at::MemoryFormat::Contiguous);
  }

 private:
  struct Record {
    std::shared_ptr<at::DataPtr> data;
    size_t size = 0;
    bool lent = false;
  };

  absl::StatusOr<Record*> GetRecord(const std::string& key) {
    auto it = records_.find(key);
    if (it != records_.end()) return &it->second;
    const std::string name = absl::StrCat("data/", key);
    if (!reader_->hasRecord(name)) {
      return absl::InvalidArgumentError(absl::StrCat("archive has no record ", name));
    }
    auto [data, size] = reader_->getRecord(name);
    Record& r = records_[key];
    r.data = std::make_shared<at::DataPtr>(std::move(data));
    r.size = size;
    return &r;
  }

  PyTorchStreamReader* reader_;
  std::unordered_map<std::string, Record> records_;
};

// Whether `v` is a dict from strings to tensors.
bool IsTensorDict(const PickleValue& v) {
  if (!v.is(Kind::kDict)) return false;
  for (const auto& [key, value] : v.entries) {
    if (!key->is(Kind::kString) || !value->is(Kind::kTensor)) return false;
  }
  return true;
}

std::string TopLevelKeys(const PickleValue& root) {
  constexpr size_t kMaxKeys = 20;
  std::vector<std::string> keys;
  for (const auto& entry : root.entries) {
    if (keys.size() == kMaxKeys) {
      keys.push_back("...");
      break;
    }
    keys.push_back(DescribePickleValue(*entry.first));
  }
  return absl::StrJoin(keys, ", ");
}

// The dict holding the weights, and the top-level key it was found under.
absl::StatusOr<std::pair<const PickleValue*, std::string>> FindWeights(const PickleValue& root) {
  if (!root.is(Kind::kDict)) {
    return absl::InvalidArgumentError(
        absl::StrCat("holds ", DescribePickleValue(root), ", not a dict with a state dict"));
  }
  std::vector<std::string> problems;
  for (const char* key : kWeightKeys) {
    const PickleValue* v = PickleDictGet(root, key);
    if (v == nullptr) continue;
    if (IsTensorDict(*v)) return std::make_pair(v, std::string(key));
    problems.push_back(absl::StrCat("'", key, "' is ", DescribePickleValue(*v),
                                    ", not a dict of named tensors"));
  }
  if (!root.entries.empty() && IsTensorDict(root)) return std::make_pair(&root, std::string());
  return absl::InvalidArgumentError(absl::StrCat(
      "no state dict found (top-level keys: ", TopLevelKeys(root), ")",
      problems.empty() ? "" : absl::StrCat("; ", absl::StrJoin(problems, "; "))));
}

// The training arguments: a dict, or an object (argparse.Namespace) whose
// BUILD state is a dict. Anything else is ignored.
nlohmann::json ArgsToJson(const PickleValue* args) {
  if (args == nullptr) return nullptr;
  if (args->is(Kind::kDict)) return PickleToJson(*args);
  if (args->is(Kind::kObject) && args->state != nullptr) {
    const PickleValue* state = args->state;
    // BUILD may pass (instance dict, slots dict).
    if (state->is(Kind::kTuple) && !state->items.empty()) state = state->items[0];
    if (state->is(Kind::kDict)) return PickleToJson(*state);
  }
  return nullptr;
}

// Float32 for floating-point tensors, contiguous; integer tensors unchanged.
torch::Tensor Normalize(torch::Tensor t) {
  const auto dtype = t.scalar_type();
  if (dtype == torch::kFloat16 || dtype == torch::kBFloat16 || dtype == torch::kFloat64) {
    t = t.to(torch::kFloat32);
  }
  return t.contiguous();
}

// Drops DataParallel's "module." prefix when every name has it.
void StripModulePrefix(StateDict* state_dict) {
  constexpr absl::string_view kPrefix = "module.";
  if (state_dict->empty()) return;
  for (const auto& entry : *state_dict) {
    if (!absl::StartsWith(entry.first, kPrefix)) return;
  }
  for (auto& entry : *state_dict) entry.first.erase(0, kPrefix.size());
}

absl::StatusOr<Checkpoint> LoadTorchZip(const std::string& path, uint64_t file_size) {
  PyTorchStreamReader reader(path);
  if (reader.hasRecord("byteorder")) {
    auto [data, size] = reader.getRecord("byteorder");
    absl::string_view order(static_cast<const char*>(data.get()), size);
    if (order != "little") {
      return absl::UnimplementedError(absl::StrCat("byte order '", order, "' is not supported"));
    }
  }
  if (!reader.hasRecord("data.pkl")) {
    return absl::InvalidArgumentError(
        "archive has no data.pkl (a TorchScript module rather than a torch.save file?)");
  }
  auto [pickle, pickle_size] = reader.getRecord("data.pkl");
  PickleArena arena;
  auto root = Unpickle(std::string_view(static_cast<const char*>(pickle.get()), pickle_size),
                       &arena);
  if (!root.ok()) return root.status();
  auto weights = FindWeights(**root);
  if (!weights.ok()) return weights.status();

  Checkpoint checkpoint;
  checkpoint.format = "torch_zip";
  checkpoint.source_key = weights->second;
  if (!checkpoint.source_key.empty()) {
    checkpoint.args = ArgsToJson(PickleDictGet(**root, "args"));
  }
  TensorReader tensors(&reader);
  std::unordered_map<std::string, size_t> index;  // A repeated name replaces the earlier value.
  // Tensors may share storage, but a real checkpoint does not expand to many
  // times its size (float16 to float32 doubles it); this stops a small file
  // from naming one large storage over and over.
  const uint64_t max_bytes = 8 * file_size + (uint64_t{64} << 20);
  uint64_t total_bytes = 0;
  for (const auto& [key, value] : weights->first->entries) {
    auto t = tensors.Read(*value);
    if (!t.ok()) {
      return absl::Status(t.status().code(),
                          absl::StrCat("tensor '", key->str, "': ", t.status().message()));
    }
    total_bytes += t->nbytes() * (t->element_size() < 4 && t->is_floating_point() ? 2 : 1);
    if (total_bytes > max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "its tensors expand to more than ", max_bytes, " bytes (shared storage repeated?)"));
    }
    auto [it, added] = index.emplace(key->str, checkpoint.state_dict.size());
    if (added) {
      checkpoint.state_dict.emplace_back(key->str, Normalize(*t));
    } else {
      checkpoint.state_dict[it->second].second = Normalize(*t);
    }
  }
  StripModulePrefix(&checkpoint.state_dict);
  return checkpoint;
}

absl::StatusOr<Checkpoint> LoadSafetensors(const std::string& path) {
  auto file = ReadSafetensors(path);
  if (!file.ok()) return file.status();
  Checkpoint checkpoint;
  checkpoint.format = "safetensors";
  for (auto& [name, t] : file->tensors) checkpoint.state_dict.emplace_back(name, Normalize(t));
  StripModulePrefix(&checkpoint.state_dict);
  auto args = file->metadata.find("args");
  if (args != file->metadata.end()) {
    if (args->is_object()) {
      checkpoint.args = *args;
    } else if (args->is_string()) {
      auto parsed = nlohmann::json::parse(args->get<std::string>(), nullptr, false);
      if (parsed.is_object()) checkpoint.args = std::move(parsed);
    }
  }
  return checkpoint;
}

}  // namespace

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (!std::filesystem::is_regular_file(status)) return Invalid(path, "not a regular file");
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return Invalid(path, absl::StrCat("cannot stat: ", ec.message()));
  if (size == 0) return Invalid(path, "empty file");

  char head[16] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Invalid(path, "cannot open");
  in.read(head, sizeof(head));
  const absl::string_view magic(head, static_cast<size_t>(in.gcount()));
  in.close();

  if (absl::StartsWith(magic, "PK\x03\x04") || absl::StartsWith(magic, "PK\x05\x06")) {
    try {
      auto checkpoint = LoadTorchZip(path, size);
      if (!checkpoint.ok()) return Prefixed(path, checkpoint.status());
      return checkpoint;
    } catch (const std::exception& e) {
      return Invalid(path, absl::StrCat("bad torch.save archive: ", ExceptionMessage(e)));
    }
  }
  if (absl::EndsWith(path, ".safetensors") || LooksLikeSafetensors(std::string_view(magic.data(), magic.size()), size)) {
    try {
      return LoadSafetensors(path);  // Errors already name the file.
    } catch (const std::exception& e) {
      return Invalid(path, absl::StrCat("bad safetensors file: ", ExceptionMessage(e)));
    }
  }
  if (magic.size() >= 2 && magic[0] == '\x80' && static_cast<uint8_t>(magic[1]) <= 5) {
    return Invalid(path, "a bare pickle, or the legacy torch.save format (PyTorch < 1.6), "
                         "which is not supported; re-save it with a newer torch.save");
  }
  return Invalid(path, "neither a torch.save zip archive nor a safetensors file");
}

}  // namespace clca
