// Turning unpickled values into descriptions and JSON.
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "models/io/pickle.h"

namespace clca {
namespace {

using Kind = PickleValue::Kind;

constexpr int kMaxJsonDepth = 64;
// Shared sub-objects are expanded each time they occur; these bound the work.
// Training arguments are a few hundred values, while a self-referencing dict
// of 170 bytes reached a million (2 s, 10 MB of JSON) at the old 2^20.
constexpr size_t kMaxJsonNodes = 4096;
constexpr size_t kMaxJsonStringBytes = size_t{1} << 20;
constexpr size_t kMaxQuotedChars = 40;
constexpr size_t kMaxNameChars = 200;

std::string Shortened(absl::string_view s, size_t max_chars) {
  if (s.size() <= max_chars) return std::string(s);
  return absl::StrCat(s.substr(0, max_chars), "...");
}

// module.name, with each part shortened.
std::string Name(const PickleValue& v) {
  return absl::StrCat(Shortened(v.module, kMaxNameChars), ".", Shortened(v.name, kMaxNameChars));
}

// Replaces invalid UTF-8 with U+FFFD, so the JSON can always be dumped.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<uint8_t>(s[i + k]) & 0xc0) == 0x80;
    if (ok && len > 1) {  // Reject overlong forms, surrogates and values past U+10FFFF.
      uint32_t cp = c & (0x7f >> len);
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3f);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.append("\xef\xbf\xbd");
      ++i;
    }
  }
  return out;
}

// The shortest text that reads back as `d`, like Python's repr.
std::string FloatRepr(double d) {
  std::string s;
  for (int precision = 1; precision <= 17; ++precision) {
    s = absl::StrFormat("%.*g", precision, d);
    double back;
    if (absl::SimpleAtod(s, &back) && back == d) break;
  }
  if (s.find_first_not_of("-0123456789") == std::string::npos) s += ".0";
  return s;
}

// A dict key as json.dumps writes it.
std::string JsonKey(const PickleValue& key) {
  switch (key.kind) {
    case Kind::kString:
      return ValidUtf8(key.str);
    case Kind::kInt:
      return absl::StrCat(key.int_value);
    case Kind::kBigInt:
      return key.str;
    case Kind::kFloat:
      return FloatRepr(key.float_value);
    case Kind::kBool:
      return key.bool_value ? "true" : "false";
    case Kind::kNone:
      return "null";
    default:
      return ValidUtf8(DescribePickleValue(key));
  }
}

class JsonConverter {
 public:
  nlohmann::json Convert(const PickleValue& v, int depth) {
    if (++nodes_ > kMaxJsonNodes || depth > kMaxJsonDepth) return "<...>";
    switch (v.kind) {
      case Kind::kNone:
        return nullptr;
      case Kind::kBool:
        return v.bool_value;
      case Kind::kInt:
        return v.int_value;
      case Kind::kBigInt:
        if (uint64_t u; !v.str.empty() && v.str[0] != '-' && absl::SimpleAtoi(v.str, &u)) return u;
        return Text(v.str);
      case Kind::kFloat:
        return v.float_value;
      case Kind::kString:
        return Text(v.str);
      case Kind::kTuple:
      case Kind::kList:
      case Kind::kSet: {
        nlohmann::json a = nlohmann::json::array();
        for (const PickleValue* item : v.items) a.push_back(Convert(*item, depth + 1));
        return a;
      }
      case Kind::kDict: {
        nlohmann::json o = nlohmann::json::object();
        for (const auto& [key, value] : v.entries) {
          // Keys other than strings have short descriptions.
          string_bytes_ += key->str.size();
          if (string_bytes_ > kMaxJsonStringBytes) break;
          o[JsonKey(*key)] = Convert(*value, depth + 1);
        }
        return o;
      }
      default:
        return Text(DescribePickleValue(v));
    }
  }

 private:
  nlohmann::json Text(const std::string& s) {
    string_bytes_ += s.size();
    if (string_bytes_ > kMaxJsonStringBytes) return "<...>";
    return ValidUtf8(s);
  }

  size_t nodes_ = 0;
  size_t string_bytes_ = 0;
};

}  // namespace

std::string DescribePickleValue(const PickleValue& v) {
  switch (v.kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return v.bool_value ? "True" : "False";
    case Kind::kInt:
      return absl::StrCat(v.int_value);
    case Kind::kBigInt:
      return v.str;
    case Kind::kFloat:
      return FloatRepr(v.float_value);
    case Kind::kString:
      return absl::StrCat("'", Shortened(v.str, kMaxQuotedChars), "'");
    case Kind::kBytes:
      return absl::StrCat("<bytes of length ", v.str.size(), ">");
    case Kind::kTuple:
      return absl::StrCat("<tuple of ", v.items.size(), " items>");
    case Kind::kList:
      return absl::StrCat("<list of ", v.items.size(), " items>");
    case Kind::kSet:
      return absl::StrCat("<set of ", v.items.size(), " items>");
    case Kind::kDict:
      return absl::StrCat("<dict of ", v.entries.size(), " items>");
    case Kind::kGlobal:
      return Name(v);
    case Kind::kObject:
      return absl::StrCat("<", Name(v), " object>");
    case Kind::kStorage:
      return absl::StrCat("<", Name(v), " of ", v.int_value,
                          " elements>");
    case Kind::kTensor: {
      const std::string type = v.items.empty() ? "?" : Shortened(v.items[0]->name, kMaxNameChars);
      return absl::StrCat("tensor(", type, ", [", absl::StrJoin(v.sizes, ", "), "])");
    }
  }
  return "<?>";
}

nlohmann::json PickleToJson(const PickleValue& value) { return JsonConverter().Convert(value, 0); }

}  // namespace clca
