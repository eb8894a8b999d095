#include "models/io/torch_storage.h"

#include <map>
#include <string>

#include "absl/strings/match.h"

namespace clca {

std::optional<torch::ScalarType> StorageDtype(const PickleValue& storage) {
  static const auto* dtypes = new std::map<std::string, torch::ScalarType>{
      {"FloatStorage", torch::kFloat32},  {"HalfStorage", torch::kFloat16},
      {"BFloat16Storage", torch::kBFloat16}, {"DoubleStorage", torch::kFloat64},
      {"LongStorage", torch::kInt64},     {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},    {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},     {"BoolStorage", torch::kBool},
      {"UntypedStorage", torch::kUInt8},  {"float32", torch::kFloat32},
      {"float", torch::kFloat32},         {"float16", torch::kFloat16},
      {"half", torch::kFloat16},          {"bfloat16", torch::kBFloat16},
      {"float64", torch::kFloat64},       {"double", torch::kFloat64},
      {"int64", torch::kInt64},           {"long", torch::kInt64},
      {"int32", torch::kInt32},           {"int", torch::kInt32},
      {"int16", torch::kInt16},           {"short", torch::kInt16},
      {"int8", torch::kInt8},             {"uint8", torch::kUInt8},
      {"bool", torch::kBool},
  };
  if (!absl::StartsWith(storage.module, "torch")) return std::nullopt;
  auto it = dtypes->find(storage.name);
  if (it == dtypes->end()) return std::nullopt;
  return it->second;
}

const char* StorageClass(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "FloatStorage";
    case torch::kFloat16: return "HalfStorage";
    case torch::kBFloat16: return "BFloat16Storage";
    case torch::kFloat64: return "DoubleStorage";
    case torch::kInt64: return "LongStorage";
    case torch::kInt32: return "IntStorage";
    case torch::kInt16: return "ShortStorage";
    case torch::kInt8: return "CharStorage";
    case torch::kUInt8: return "ByteStorage";
    case torch::kBool: return "BoolStorage";
    default: return nullptr;
  }
}

}  // namespace clca
