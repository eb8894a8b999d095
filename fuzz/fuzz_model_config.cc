// model.json as the model repository reads it: parsed without exceptions,
// then ResolveConfig, with the same JSON also taken as a checkpoint's training
// arguments (the fields model.json leaves out come from there).
#include <cstdint>

#include <nlohmann/json.hpp>

#include "models/core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json json =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  for (absl::StatusOr<clca::ModelConfig> config :
       {clca::ResolveConfig(json), clca::ResolveConfig(nlohmann::json::object(), &json)}) {
    if (!config.ok()) continue;
    // What a resolved configuration promises the model builder.
    const clca::ModelConfig& c = *config;
    if (c.num_classes <= 0 || c.embed_dim <= 0 || c.depth <= 0 || c.num_heads <= 0 ||
        c.embed_dim % c.num_heads != 0 || c.patch_size <= 0 || c.input_size % c.patch_size != 0 ||
        c.grid_size() <= 0 || !(c.keep_rate > 0 && c.keep_rate <= 1) || c.num_clr < 0) {
      __builtin_trap();
    }
    c.ToJson().dump();
    c.recovery_layers();
  }
  return 0;
}
