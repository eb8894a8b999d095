#include "models/save/checkpoint_writer.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <limits>
#include <unordered_set>
#include <vector>

#include <caffe2/serialize/inline_container.h>

#include "absl/strings/str_cat.h"
#include "models/core/errors.h"
#include "models/io/torch_storage.h"
#include "models/save/pickle_writer.h"

namespace clca {
namespace {

using caffe2::serialize::PyTorchStreamWriter;

constexpr int kMaxArgsDepth = 256;

absl::Status Invalid(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status Prefixed(const std::string& path, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

// Writes `value` as plain Python data.
absl::Status WriteJson(const nlohmann::json& value, int depth, PickleWriter* w) {
  if (depth > kMaxArgsDepth) return absl::InvalidArgumentError("args are nested too deeply");
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      w->None();
      return absl::OkStatus();
    case nlohmann::json::value_t::boolean:
      w->Bool(value.get<bool>());
      return absl::OkStatus();
    case nlohmann::json::value_t::number_integer:
      w->Int(value.get<int64_t>());
      return absl::OkStatus();
    case nlohmann::json::value_t::number_unsigned:
      if (value.get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()}) {
        w->Float(value.get<double>());
      } else {
        w->Int(value.get<int64_t>());
      }
      return absl::OkStatus();
    case nlohmann::json::value_t::number_float:
      w->Float(value.get<double>());
      return absl::OkStatus();
    case nlohmann::json::value_t::string:
      w->String(value.get_ref<const std::string&>());
      return absl::OkStatus();
    case nlohmann::json::value_t::array:
      w->EmptyList();
      w->Mark();
      for (const auto& item : value) {
        if (absl::Status s = WriteJson(item, depth + 1, w); !s.ok()) return s;
      }
      w->Appends();
      return absl::OkStatus();
    case nlohmann::json::value_t::object:
      w->EmptyDict();
      w->Mark();
      for (const auto& [key, item] : value.items()) {
        w->String(key);
        if (absl::Status s = WriteJson(item, depth + 1, w); !s.ok()) return s;
      }
      w->SetItems();
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("args hold binary data");
  }
}

// _rebuild_tensor_v2(('storage', torch.XStorage, key, 'cpu', numel), 0, size,
// stride, False, OrderedDict()) for a contiguous CPU tensor.
void WriteTensor(const torch::Tensor& t, const std::string& key, PickleWriter* w) {
  w->Global("torch._utils", "_rebuild_tensor_v2");
  w->Mark();
  w->Mark();
  w->String("storage");
  w->Global("torch", StorageClass(t.scalar_type()));
  w->String(key);
  w->String("cpu");
  w->Int(t.numel());
  w->Tuple();
  w->PersistentId();
  w->Int(0);
  for (auto dims : {t.sizes(), t.strides()}) {
    w->Mark();
    for (int64_t d : dims) w->Int(d);
    w->Tuple();
  }
  w->Bool(false);
  w->Global("collections", "OrderedDict");
  w->EmptyTuple();
  w->Reduce();
  w->Tuple();
  w->Reduce();
}

std::string TempPath(const std::string& path) {
  static std::atomic<int> counter{0};
  return absl::StrCat(path, ".tmp-", getpid(), "-", counter++);
}

}  // namespace

absl::Status SaveCheckpoint(const std::string& path, const StateDict& state_dict,
                            const nlohmann::json& args) {
  if (!args.is_null() && !args.is_object()) return Invalid(path, "args must be a JSON object");
  std::vector<torch::Tensor> tensors;
  std::unordered_set<std::string> names;
  PickleWriter w;
  w.EmptyDict();
  w.Mark();
  w.String("model");
  w.EmptyDict();
  w.Mark();
  try {
    for (const auto& [name, tensor] : state_dict) {
      if (!names.insert(name).second) return Invalid(path, absl::StrCat("duplicate name ", name));
      if (!tensor.defined()) return Invalid(path, absl::StrCat("tensor '", name, "' is undefined"));
      if (StorageClass(tensor.scalar_type()) == nullptr) {
        return Invalid(path, absl::StrCat("tensor '", name, "' has unsupported dtype ",
                                          c10::toString(tensor.scalar_type())));
      }
      tensors.push_back(tensor.detach().to(torch::kCPU).contiguous());
      w.String(name);
      WriteTensor(tensors.back(), absl::StrCat(tensors.size() - 1), &w);
    }
  } catch (const std::exception& e) {
    return Invalid(path, absl::StrCat("cannot prepare tensors: ", ExceptionMessage(e)));
  }
  w.SetItems();
  if (!args.is_null()) {
    w.String("args");
    if (absl::Status s = WriteJson(args, 0, &w); !s.ok()) return Prefixed(path, s);
  }
  w.SetItems();
  w.Stop();

  // Written to a temporary file, then renamed over `path`.
  const std::string tmp = TempPath(path);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return Invalid(path, absl::StrCat("cannot create ", tmp));
  bool write_failed = false;
  try {
    // The writer must not see a failed write: it would throw again from its
    // destructor. Failures are checked once the archive is complete.
    PyTorchStreamWriter writer([&](const void* buf, size_t n) -> size_t {
      if (!out.write(static_cast<const char*>(buf), static_cast<std::streamsize>(n))) {
        write_failed = true;
      }
      return n;
    });
    writer.writeRecord("data.pkl", w.data().data(), w.data().size());
    writer.writeRecord("byteorder", "little", 6);
    static const char kEmpty = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const size_t nbytes = tensors[i].nbytes();
      writer.writeRecord(absl::StrCat("data/", i), nbytes ? tensors[i].data_ptr() : &kEmpty,
                         nbytes);
    }
    writer.writeEndOfFile();
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    return Invalid(path, absl::StrCat("cannot write archive: ", ExceptionMessage(e)));
  }
  out.close();
  if (write_failed || !out) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": write to ", tmp, " failed"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot rename ", tmp, " to it"));
  }
  return absl::OkStatus();
}

}  // namespace clca
