// The pickle reader on its own, in memory: the data.pkl of a torch.save
// archive, which LoadCheckpoint passes to Unpickle before looking for the
// weights and the training arguments.
#include <cstdint>
#include <string>
#include <string_view>

#include "models/io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clca::PickleArena arena;
  absl::StatusOr<const clca::PickleValue*> root =
      clca::Unpickle(std::string_view(reinterpret_cast<const char*>(data), size), &arena);
  if (!root.ok()) return 0;
  // What LoadCheckpoint does with the result: look up the entries, describe
  // values in its errors, and convert `args` to JSON, which must always dump
  // (invalid UTF-8 is replaced). Without `args`, the whole value is
  // converted.
  const clca::PickleValue& value = **root;
  clca::DescribePickleValue(value);
  for (const char* key : {"model", "state_dict", "model_ema", "args"}) {
    if (const clca::PickleValue* entry = clca::PickleDictGet(value, key)) {
      clca::DescribePickleValue(*entry);
    }
  }
  const clca::PickleValue* args = clca::PickleDictGet(value, "args");
  clca::PickleToJson(args != nullptr ? *args : value).dump();
  return 0;
}
