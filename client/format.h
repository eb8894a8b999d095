// Human-readable and JSON renderings of the service's responses.
#pragma once

#include <string>

#include "clca/v1/classifier.pb.h"

namespace clca {

// Predictions, keep rate, cost versus the full model, tokens per block, batch
// size and timings, over several lines.
std::string FormatClassifyResponse(const std::string& file, const v1::ClassifyResponse& response);

// One line per model version.
std::string FormatModelList(const v1::ListModelsResponse& response);

// One JSON object on one line: {"file": ..., "response": {...}}.
std::string ClassifyResponseJson(const std::string& file, const v1::ClassifyResponse& response);

// The message as one line of JSON (proto field names).
std::string MessageJson(const google::protobuf::Message& message);

}  // namespace clca
