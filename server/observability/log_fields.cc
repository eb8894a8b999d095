#include "server/observability/log_fields.h"

#include "absl/strings/str_format.h"

namespace clca::server {
namespace {

void AppendEscaped(char c, bool quote_escapes, std::string* out) {
  const auto byte = static_cast<unsigned char>(c);
  switch (c) {
    case '\n': *out += "\\n"; return;
    case '\r': *out += "\\r"; return;
    case '\t': *out += "\\t"; return;
    case '"':
    case '\\':
      if (quote_escapes) {
        out->push_back('\\');
        out->push_back(c);
        return;
      }
      break;
    default:
      break;
  }
  if (byte < 0x20 || byte >= 0x7f) {
    absl::StrAppendFormat(out, "\\x%02x", byte);
  } else {
    out->push_back(c);
  }
}

}  // namespace

std::string LogQuoted(absl::string_view value, size_t max_bytes) {
  std::string out = "\"";
  const size_t n = value.size() < max_bytes ? value.size() : max_bytes;
  for (size_t i = 0; i < n; ++i) AppendEscaped(value[i], /*quote_escapes=*/true, &out);
  if (n < value.size()) out += "...";
  out.push_back('"');
  return out;
}

std::string ClientText(absl::string_view value, size_t max_bytes) {
  std::string out;
  const size_t n = value.size() < max_bytes ? value.size() : max_bytes;
  for (size_t i = 0; i < n; ++i) AppendEscaped(value[i], /*quote_escapes=*/false, &out);
  if (n < value.size()) out += "...";
  return out;
}

}  // namespace clca::server
