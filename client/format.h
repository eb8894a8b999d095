// Human-readable and JSON renderings of the service's responses.
#pragma once

#include <string>

#include "clca/v1/classifier.pb.h"

namespace clca {

// Predictions, keep rate, cost versus the full model, tokens per block, batch
// size and timings, over several lines.
std::string FormatClassifyResponse(const std::string& file, const v1::ClassifyResponse& response);

// One line per model version: its details, then its state ("AVAILABLE", or
// "FAILED (reason)" when there is a reason). A version the server describes
// by name and state only (nothing loaded) gets a short line.
std::string FormatModelList(const v1::ListModelsResponse& response);

// "AVAILABLE", "FAILED", ... (the enum name without MODEL_STATE_); the
// number for a state this client does not know.
std::string ModelStateName(v1::ModelState state);
// The state, and the reason in parentheses when there is one.
std::string ModelStateText(const v1::ModelInfo& info);

// One line per version after a Load, Unload or Reload:
// "clca-demo 2 AVAILABLE", "clca-demo 3 FAILED (reason)".
std::string FormatModelControlResponse(const v1::ModelControlResponse& response);

// One JSON object on one line: {"file": ..., "response": {...}}.
std::string ClassifyResponseJson(const std::string& file, const v1::ClassifyResponse& response);

// The message as one line of JSON (proto field names).
std::string MessageJson(const google::protobuf::Message& message);

}  // namespace clca
