#include "models/io/checkpoint.h"

#include <unistd.h>

#include <algorithm>
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

#include "absl/strings/escaping.h"
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

uint64_t LeBytes(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Reads the archive's central directory and checks the size each record
// declares before LibTorch's reader allocates it: a stored record (what
// torch.save writes) cannot be larger than the file, a compressed one not
// larger than `max_bytes`.
absl::Status CheckZipRecordSizes(const std::string& path, uint64_t file_size,
                                 uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  auto read_at = [&](uint64_t offset, uint64_t n, std::string* out) {
    if (offset > file_size || n > file_size - offset) return false;
    out->resize(n);
    in.clear();
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(out->data(), static_cast<std::streamsize>(n));
    return static_cast<uint64_t>(in.gcount()) == n;
  };
  const auto corrupt = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("corrupt zip archive: ", what));
  };
  std::string tail;
  const uint64_t tail_size = std::min<uint64_t>(file_size, 22 + 65535);
  if (tail_size < 22 || !read_at(file_size - tail_size, tail_size, &tail)) {
    return corrupt("no end of central directory");
  }
  size_t eocd = std::string::npos;
  for (size_t i = tail.size() - 22 + 1; i-- > 0;) {
    if (tail.compare(i, 4, "PK\x05\x06") == 0) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) return corrupt("no end of central directory");
  const char* e = tail.data() + eocd;
  uint64_t entries = LeBytes(e + 10, 2), cd_size = LeBytes(e + 12, 4),
           cd_offset = LeBytes(e + 16, 4);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    std::string record;
    if (eocd < 20 || tail.compare(eocd - 20, 4, "PK\x06\x07") != 0 ||
        !read_at(LeBytes(e - 20 + 8, 8), 56, &record) || record.compare(0, 4, "PK\x06\x06") != 0) {
      return corrupt("no zip64 end of central directory");
    }
    entries = LeBytes(record.data() + 32, 8);
    cd_size = LeBytes(record.data() + 40, 8);
    cd_offset = LeBytes(record.data() + 48, 8);
  }
  std::string cd;
  if (!read_at(cd_offset, cd_size, &cd)) return corrupt("central directory outside the file");
  size_t at = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (at + 46 > cd.size() || cd.compare(at, 4, "PK\x01\x02") != 0) {
      return corrupt("bad central directory entry");
    }
    const char* h = cd.data() + at;
    const uint64_t method = LeBytes(h + 10, 2);
    uint64_t compressed = LeBytes(h + 20, 4), size = LeBytes(h + 24, 4);
    const size_t name_length = LeBytes(h + 28, 2), extra_length = LeBytes(h + 30, 2),
                 comment_length = LeBytes(h + 32, 2);
    if (at + 46 + name_length + extra_length + comment_length > cd.size()) {
      return corrupt("bad central directory entry");
    }
    // Zip64: the 64-bit sizes in the extra field, in order, for those marked.
    for (size_t x = at + 46 + name_length; x + 4 <= at + 46 + name_length + extra_length;) {
      const uint64_t id = LeBytes(cd.data() + x, 2), length = LeBytes(cd.data() + x + 2, 2);
      size_t field = x + 4;
      if (id == 1) {
        for (uint64_t* value : {&size, &compressed}) {
          if (*value == 0xFFFFFFFF && field + 8 <= x + 4 + length) {
            *value = LeBytes(cd.data() + field, 8);
            field += 8;
          }
        }
      }
      x += 4 + length;
    }
    const uint64_t limit = method == 0 ? file_size : max_bytes;
    if (size > limit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "archive record '", absl::CHexEscape(cd.substr(at + 46, std::min<size_t>(name_length, 80))),
          "' declares ", size, " bytes, more than ", limit, " in a ", file_size, "-byte file"));
    }
    at += 46 + name_length + extra_length + comment_length;
  }
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> LoadTorchZip(const std::string& path, uint64_t file_size) {
  // Tensors may share storage, but a real checkpoint does not expand to many
  // times its size (float16 to float32 doubles it); this stops a small file
  // from naming one large storage over and over.
  const uint64_t max_bytes = 8 * file_size + (uint64_t{64} << 20);
  if (absl::Status sizes = CheckZipRecordSizes(path, file_size, max_bytes); !sizes.ok()) {
    return sizes;
  }
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
