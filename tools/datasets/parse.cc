// Parsers of the split lists: text in, rows out; no file access.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/datasets/dataset.h"
#include "tools/datasets/lines.h"

namespace clca::data {

std::vector<Line> SplitLines(absl::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
  std::vector<Line> lines;
  int number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back({line, ++number});
    if (end == absl::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

absl::StatusOr<std::vector<std::string>> SplitCsvLine(absl::string_view line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == ',') {
      fields.push_back(std::string(absl::StripAsciiWhitespace(field)));
      field.clear();
    } else if (c == '"' && absl::StripAsciiWhitespace(field).empty()) {
      quoted = true;
      field.clear();
    } else {
      field += c;
    }
  }
  if (quoted) return absl::InvalidArgumentError("unterminated quote");
  fields.push_back(std::string(absl::StripAsciiWhitespace(field)));
  return fields;
}

absl::StatusOr<int> ColumnIndex(const std::vector<std::string>& header, absl::string_view name,
                                absl::string_view source) {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(source, ":1: the header has no column '", name, "'"));
}

absl::StatusOr<std::vector<ListedImage>> ParseSplitCsv(absl::string_view text,
                                                       absl::string_view source) {
  const std::vector<Line> lines = SplitLines(text);
  size_t first = 0;
  while (first < lines.size() && absl::StripAsciiWhitespace(lines[first].text).empty()) ++first;
  if (first == lines.size()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty file"));
  auto header = SplitCsvLine(lines[first].text);
  if (!header.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", lines[first].number, ": ", header.status().message()));
  }
  auto id_col = ColumnIndex(*header, "class_id", source);
  if (!id_col.ok()) return id_col.status();
  auto dir_col = ColumnIndex(*header, "dir", source);
  if (!dir_col.ok()) return dir_col.status();
  const size_t needed = static_cast<size_t>(std::max(*id_col, *dir_col)) + 1;

  std::vector<ListedImage> rows;
  for (size_t i = first + 1; i < lines.size(); ++i) {
    const Line& line = lines[i];
    if (absl::StripAsciiWhitespace(line.text).empty()) continue;
    auto where = [&] { return absl::StrCat(source, ":", line.number, ": "); };
    auto fields = SplitCsvLine(line.text);
    if (!fields.ok()) return absl::InvalidArgumentError(where() + std::string(fields.status().message()));
    if (fields->size() < needed) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "expected at least ", needed,
                                                     " fields, got ", fields->size()));
    }
    ListedImage row;
    row.line = line.number;
    row.file = (*fields)[*dir_col];
    if (!absl::SimpleAtoi((*fields)[*id_col], &row.label)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "class_id '", (*fields)[*id_col], "' is not an integer"));
    }
    if (row.file.empty()) return absl::InvalidArgumentError(where() + "empty dir");
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no rows"));
  return rows;
}

absl::StatusOr<std::vector<ListedImage>> ParseAnnoList(absl::string_view text,
                                                       absl::string_view source) {
  std::vector<ListedImage> rows;
  for (const Line& line : SplitLines(text)) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(line.text);
    if (trimmed.empty()) continue;
    auto where = [&] { return absl::StrCat(source, ":", line.number, ": "); };
    const size_t space = trimmed.find_last_of(" \t");
    if (space == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "expected '<file> <label>', got '", trimmed, "'"));
    }
    ListedImage row;
    row.line = line.number;
    row.file = std::string(absl::StripAsciiWhitespace(trimmed.substr(0, space)));
    const absl::string_view label = trimmed.substr(space + 1);
    if (!absl::SimpleAtoi(label, &row.label)) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "label '", label, "' is not an integer"));
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no rows"));
  return rows;
}

absl::StatusOr<std::vector<std::string>> ParseClassNames(absl::string_view text,
                                                         absl::string_view source) {
  std::vector<std::string> names;
  int blank_line = 0;
  for (const Line& line : SplitLines(text)) {
    const absl::string_view name = absl::StripAsciiWhitespace(line.text);
    if (name.empty()) {
      if (blank_line == 0) blank_line = line.number;
      continue;
    }
    if (blank_line != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", blank_line, ": blank line between class names"));
    }
    names.emplace_back(name);
  }
  if (names.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no class names"));
  return names;
}

}  // namespace clca::data
