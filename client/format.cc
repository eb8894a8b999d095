#include "client/format.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace clca {

std::string FormatClassifyResponse(const std::string& file, const v1::ClassifyResponse& response) {
  const v1::Cost& cost = response.cost();
  std::string out = absl::StrFormat("%s: model %s v%d, keep rate %.2f\n", file, response.model(),
                                    response.version(), response.keep_rate());
  int rank = 1;
  for (const v1::Prediction& p : response.predictions()) {
    absl::StrAppendFormat(&out, "  %d. %-28s (class %d)  %.4f\n", rank++, p.label(), p.class_id(),
                          p.score());
  }
  double percent = cost.gmacs_full() > 0 ? 100.0 * cost.gmacs() / cost.gmacs_full() : 0.0;
  absl::StrAppendFormat(&out, "  cost: %.3f GMACs (full model %.3f, %.0f%%), batch size %d\n",
                        cost.gmacs(), cost.gmacs_full(), percent, cost.batch_size());
  absl::StrAppend(&out, "  tokens per block: ", absl::StrJoin(cost.tokens(), " "), "\n");
  absl::StrAppendFormat(&out,
                        "  time: total %.2f ms (queue %.2f, preprocess %.2f, compute %.2f)\n",
                        cost.total_us() / 1e3, cost.queue_us() / 1e3,
                        cost.preprocess_us() / 1e3, cost.compute_us() / 1e3);
  return out;
}

std::string ModelStateName(v1::ModelState state) {
  constexpr absl::string_view kPrefix = "MODEL_STATE_";
  const std::string& name = v1::ModelState_Name(state);
  if (name.empty()) return absl::StrCat(static_cast<int>(state));
  return absl::StartsWith(name, kPrefix) ? name.substr(kPrefix.size()) : name;
}

std::string ModelStateText(const v1::ModelInfo& info) {
  std::string out = ModelStateName(info.state());
  if (!info.state_reason().empty()) absl::StrAppend(&out, " (", info.state_reason(), ")");
  return out;
}

std::string FormatModelControlResponse(const v1::ModelControlResponse& response) {
  std::string out;
  for (const v1::ModelInfo& m : response.models()) {
    absl::StrAppend(&out, m.name(), " ", m.version(), " ", ModelStateText(m), "\n");
  }
  return out;
}

std::string FormatModelList(const v1::ListModelsResponse& response) {
  std::string out;
  for (const v1::ModelInfo& m : response.models()) {
    // A server older than model states leaves the state unset: no state shown.
    const bool has_state = m.state() != v1::MODEL_STATE_UNSPECIFIED;
    if (m.architecture().empty() && has_state) {
      absl::StrAppendFormat(&out, "%s v%d: %s\n", m.name(), m.version(), ModelStateText(m));
      continue;
    }
    double gmacs_default = 0;
    double gmacs_full = 0;
    for (const v1::KeepRateCost& c : m.costs()) {
      if (c.keep_rate() == m.keep_rate().default_value()) gmacs_default = c.gmacs();
      if (c.keep_rate() == 1.0f) gmacs_full = c.gmacs();
    }
    absl::StrAppendFormat(&out,
                          "%s v%d: %s (%s%s), %d classes, %d px, keep rate %.2f in [%.2f, %.2f], "
                          "%.3f GMACs (full %.3f), %s%s\n",
                          m.name(), m.version(), m.architecture(), m.method(),
                          m.clca() ? "+clca" : "", m.num_classes(), m.input_size(),
                          m.keep_rate().default_value(), m.keep_rate().min(), m.keep_rate().max(),
                          gmacs_default, gmacs_full, m.device(),
                          has_state ? ", " + ModelStateText(m) : "");
  }
  return out;
}

std::string MessageJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) return "{}";
  return json;
}

std::string ClassifyResponseJson(const std::string& file, const v1::ClassifyResponse& response) {
  // JSON-quote the file name via a protobuf string value.
  std::string quoted;
  google::protobuf::Value value;
  value.set_string_value(file);
  if (!google::protobuf::util::MessageToJsonString(value, &quoted).ok()) quoted = "\"\"";
  return absl::StrCat("{\"file\":", quoted, ",\"response\":", MessageJson(response), "}");
}

}  // namespace clca
