#include "models/io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"

namespace clca {
namespace {

// The reference implementation refuses larger headers too.
constexpr uint64_t kMaxHeaderBytes = 100 << 20;
constexpr size_t kMaxDims = 64;

const std::map<std::string, torch::ScalarType>& Dtypes() {
  static const auto* dtypes = new std::map<std::string, torch::ScalarType>{
      {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"F64", torch::kFloat64}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
      {"I16", torch::kInt16},   {"I8", torch::kInt8},     {"U8", torch::kUInt8},
      {"BOOL", torch::kBool},
  };
  return *dtypes;
}

uint64_t ReadLittleEndian64(std::string_view b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

// One header entry, validated against the `data_size` bytes after the header.
struct Entry {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

absl::StatusOr<Entry> ParseEntry(const std::string& name, const nlohmann::ordered_json& info,
                                 uint64_t data_size) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ", what));
  };
  if (!info.is_object()) return bad("header entry is not an object");
  Entry e;
  e.name = name;
  auto dtype = info.find("dtype");
  if (dtype == info.end() || !dtype->is_string()) return bad("no dtype");
  auto known = Dtypes().find(dtype->get<std::string>());
  if (known == Dtypes().end()) return bad(absl::StrCat("unsupported dtype ", dtype->dump()));
  e.dtype = known->second;

  auto shape = info.find("shape");
  if (shape == info.end() || !shape->is_array() || shape->size() > kMaxDims) return bad("bad shape");
  uint64_t numel = 1;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t{1} << 62) return bad("bad shape");
    e.shape.push_back(d.get<int64_t>());
    if (__builtin_mul_overflow(numel, d.get<uint64_t>(), &numel)) return bad("shape overflows");
  }

  auto offsets = info.find("data_offsets");
  if (offsets == info.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    return bad("bad data_offsets");
  }
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, c10::elementSize(e.dtype), &nbytes)) {
    return bad("shape overflows");
  }
  if (e.begin > e.end || e.end > data_size) {
    return bad(absl::StrCat("data_offsets [", e.begin, ", ", e.end, "] outside the ", data_size,
                            " data bytes"));
  }
  if (e.end - e.begin != nbytes) {
    return bad(absl::StrCat("data_offsets span ", e.end - e.begin, " bytes but shape and dtype ",
                            "need ", nbytes));
  }
  return e;
}

absl::StatusOr<SafetensorsFile> Read(std::ifstream& in, uint64_t file_size) {
  char head[8];
  if (file_size < 8 || !in.read(head, 8)) return absl::InvalidArgumentError("shorter than 8 bytes");
  const uint64_t header_size = ReadLittleEndian64(std::string_view(head, 8));
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("header length ", header_size, " does not fit the file"));
  }
  std::string header(header_size, '\0');
  if (!in.read(header.data(), header_size)) return absl::InvalidArgumentError("cannot read header");
  const auto json = nlohmann::ordered_json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return absl::InvalidArgumentError("header is not a JSON object");

  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file_size - data_start;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [name, info] : json.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) return absl::InvalidArgumentError("__metadata__ is not an object");
      file.metadata = nlohmann::json::parse(info.dump());
      continue;
    }
    auto entry = ParseEntry(name, info, data_size);
    if (!entry.ok()) return entry.status();
    entries.push_back(*std::move(entry));
  }
  // Tensors may not share bytes (so the file cannot expand in memory).
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      return absl::InvalidArgumentError(absl::StrCat("tensors '", by_offset[i - 1]->name, "' and '",
                                                     by_offset[i]->name, "' overlap"));
    }
  }
  for (const Entry& e : entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    const uint64_t nbytes = e.end - e.begin;
    if (nbytes > 0 &&
        (!in.seekg(static_cast<std::streamoff>(data_start + e.begin)) ||
         !in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(nbytes)))) {
      return absl::InvalidArgumentError(absl::StrCat("cannot read the data of tensor '", e.name, "'"));
    }
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

}  // namespace

bool LooksLikeSafetensors(std::string_view head, uint64_t file_size) {
  if (head.size() < 9 || file_size < 10) return false;
  const uint64_t header_size = ReadLittleEndian64(head);
  return header_size >= 2 && header_size <= kMaxHeaderBytes && header_size <= file_size - 8 &&
         head[8] == '{';
}

absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  const auto size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  try {
    auto file = Read(in, size);
    if (!file.ok()) {
      return absl::Status(file.status().code(),
                          absl::StrCat(path, ": bad safetensors file: ", file.status().message()));
    }
    return file;
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": bad safetensors file: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {  // E.g. std::bad_alloc.
    return absl::InvalidArgumentError(absl::StrCat(path, ": bad safetensors file: ", e.what()));
  }
}

absl::Status WriteSafetensors(const std::string& path, const StateDict& tensors,
                              const nlohmann::json& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (metadata.is_object() && !metadata.empty()) header["__metadata__"] = metadata;
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    std::string dtype;
    for (const auto& [key, type] : Dtypes()) {
      if (type == tensor.scalar_type()) dtype = key;
    }
    if (dtype.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": dtype ", c10::toString(tensor.scalar_type()),
                                                     " has no safetensors equivalent"));
    }
    torch::Tensor t = tensor.detach().cpu().contiguous();
    const uint64_t begin = data.size();
    data.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
    header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {begin, data.size()}}};
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data, as the reference writer does
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << length << text << data;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", temp));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", temp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace clca
