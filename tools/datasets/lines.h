// Text helpers shared by the list parsers (internal to clca_data).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clca::data {

struct Line {
  absl::string_view text;  // without the line break
  int number = 0;         // from 1
};

// Lines of `text` ("\n" or "\r\n" breaks; a leading UTF-8 byte order mark is
// dropped). A final line break does not start another line.
std::vector<Line> SplitLines(absl::string_view text);

// Fields of one CSV line, RFC 4180 quoting, surrounding spaces removed.
absl::StatusOr<std::vector<std::string>> SplitCsvLine(absl::string_view line);

// Index of column `name` in a CSV header; INVALID_ARGUMENT naming `source`.
absl::StatusOr<int> ColumnIndex(const std::vector<std::string>& header, absl::string_view name,
                                absl::string_view source);

}  // namespace clca::data
