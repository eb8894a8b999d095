// Values written into the server's key=value log lines. Anything a client
// sent (model names, request ids, messages quoting them) goes through
// LogQuoted, so it can neither end a line nor forge a field.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace clca::server {

// `value` in double quotes, with '"' and '\' escaped, control and non-ASCII
// bytes as \xNN (\n, \r and \t by name), cut to `max_bytes` of input with
// "..." marking the cut.
std::string LogQuoted(absl::string_view value, size_t max_bytes = 256);

// At most `max_bytes` of what a client sent, for an error message: printable
// ASCII kept, other bytes as \xNN, "..." marking a cut.
std::string ClientText(absl::string_view value, size_t max_bytes = 64);

}  // namespace clca::server
