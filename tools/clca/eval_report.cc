#include "tools/clca/eval_report.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clca::tool {

absl::StatusOr<TableFormat> ParseTableFormat(const std::string& name) {
  if (name == "text") return TableFormat::kText;
  if (name == "markdown") return TableFormat::kMarkdown;
  if (name == "json") return TableFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", name, "' (text, markdown or json)"));
}

std::string FormatKeepRate(double keep_rate) {
  std::string text = absl::StrFormat("%g", keep_rate);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string FormatResults(const std::vector<EvalResult>& rows, TableFormat format,
                          const std::string& caption) {
  if (format == TableFormat::kJson) {
    nlohmann::ordered_json results = nlohmann::ordered_json::array();
    for (const EvalResult& r : rows) {
      results.push_back({{"model", r.model}, {"keep_rate", r.keep_rate}, {"top1", r.top1},
                         {"top5", r.top5}, {"gmacs", r.gmacs}, {"images", r.images}});
    }
    return nlohmann::ordered_json{{"results", results}}.dump(1) + "\n";
  }
  std::string out;
  if (format == TableFormat::kMarkdown) {
    out = "| model | keep rate | top-1 (%) | top-5 (%) | GMACs | images |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: |\n";
    for (const EvalResult& r : rows) {
      absl::StrAppendFormat(&out, "| %s | %s | %.2f | %.2f | %.4g | %d |\n", r.model,
                            FormatKeepRate(r.keep_rate),
                            r.top1, r.top5, r.gmacs, r.images);
    }
    return out;
  }
  size_t width = 5;  // "model"
  for (const EvalResult& r : rows) width = std::max(width, r.model.size());
  const int w = static_cast<int>(width);
  if (!caption.empty()) out = caption + "\n";
  absl::StrAppendFormat(&out, "%-*s  %9s  %7s  %7s  %9s  %7s\n", w, "model", "keep rate", "top-1 %",
                        "top-5 %", "GMACs", "images");
  for (const EvalResult& r : rows) {
    absl::StrAppendFormat(&out, "%-*s  %9s  %7.2f  %7.2f  %9.4g  %7d\n", w, r.model,
                          FormatKeepRate(r.keep_rate),
                          r.top1, r.top5, r.gmacs, r.images);
  }
  return out;
}

}  // namespace clca::tool
