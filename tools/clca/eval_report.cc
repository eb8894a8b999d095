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
      nlohmann::ordered_json row = {{"model", r.model}, {"keep_rate", r.keep_rate},
                                    {"top1", r.top1},   {"top5", r.top5},
                                    {"gmacs", r.gmacs}, {"images", r.images}};
      if (r.agreement >= 0) {
        row["precision"] = r.precision;
        row["agreement_with_fp32"] = r.agreement;
        row["max_abs_logit_diff"] = r.max_logit_diff;
        row["mean_abs_logit_diff"] = r.mean_logit_diff;
      }
      results.push_back(row);
    }
    return nlohmann::ordered_json{{"results", results}}.dump(1) + "\n";
  }
  const bool compared = std::any_of(rows.begin(), rows.end(),
                                    [](const EvalResult& r) { return r.agreement >= 0; });
  // Agreement with float32 and the largest logit difference, when measured.
  auto extra = [&](const EvalResult& r, const char* pattern) {
    return compared ? absl::StrFormat(pattern, r.agreement, r.max_logit_diff) : std::string();
  };
  std::string out;
  if (format == TableFormat::kMarkdown) {
    out = compared ? "| model | keep rate | top-1 (%) | top-5 (%) | GMACs | images | "
                     "top-1 = fp32 (%) | max abs logit diff |\n"
                     "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
                   : "| model | keep rate | top-1 (%) | top-5 (%) | GMACs | images |\n"
                     "| --- | ---: | ---: | ---: | ---: | ---: |\n";
    for (const EvalResult& r : rows) {
      absl::StrAppendFormat(&out, "| %s | %s | %.2f | %.2f | %.4g | %d |%s\n", r.model,
                            FormatKeepRate(r.keep_rate), r.top1, r.top5, r.gmacs, r.images,
                            extra(r, " %.2f | %.3g |"));
    }
    return out;
  }
  size_t width = 5;  // "model"
  for (const EvalResult& r : rows) width = std::max(width, r.model.size());
  const int w = static_cast<int>(width);
  if (!caption.empty()) out = caption + "\n";
  absl::StrAppendFormat(&out, "%-*s  %9s  %7s  %7s  %9s  %7s%s\n", w, "model", "keep rate", "top-1 %",
                        "top-5 %", "GMACs", "images",
                        compared ? "  =fp32 %  max |dlogit|" : "");
  for (const EvalResult& r : rows) {
    absl::StrAppendFormat(&out, "%-*s  %9s  %7.2f  %7.2f  %9.4g  %7d%s\n", w, r.model,
                          FormatKeepRate(r.keep_rate), r.top1, r.top5, r.gmacs, r.images,
                          extra(r, "  %7.2f  %12.3g"));
  }
  return out;
}

}  // namespace clca::tool
