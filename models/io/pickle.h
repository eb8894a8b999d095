// A small pickle reader that tolerates classes it does not know (such as the
// argparse.Namespace in training checkpoints).
//
// The reader executes no code: a GLOBAL becomes a name, and calling it builds
// a PickleValue. The few callables `torch.save` archives need (OrderedDict,
// the tensor and parameter rebuilders, storage persistent ids) are understood;
// any other call is kept as an opaque object with its arguments and state.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace clca {

struct PickleValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,  // str, and Python 2 str (BINSTRING) decoded as text
    kBytes,
    kTuple,
    kList,
    kSet,
    kDict,     // dict and collections.OrderedDict
    kBigInt,   // an int outside int64; `str` holds its decimal digits
    kGlobal,   // a class or function named by GLOBAL / STACK_GLOBAL
    kObject,   // the result of calling a callable this reader does not know
    kStorage,  // a torch storage, from a ('storage', ...) persistent id
    kTensor,   // torch._utils._rebuild_tensor_v2(...)
  };

  Kind kind = Kind::kNone;
  bool bool_value = false;
  // kInt; kStorage: number of elements; kTensor: storage offset in elements.
  int64_t int_value = 0;
  double float_value = 0;
  // kString (UTF-8) and kBytes payload; kBigInt: decimal digits (or a
  // description when very long); kStorage: the record key in data/.
  std::string str;
  // kGlobal, kObject: the class or function. kStorage: module and class of its
  // storage type (e.g. "torch", "HalfStorage").
  std::string module;
  std::string name;
  // kTuple, kList, kSet: elements. kObject: items APPENDed to it. kTensor: one
  // element, the storage.
  std::vector<const PickleValue*> items;
  // kDict: entries in insertion order; for a repeated key the last one counts.
  // kObject: items SETITEMed into it.
  std::vector<std::pair<const PickleValue*, const PickleValue*>> entries;
  // kObject: the arguments it was called with (a tuple, or null), and the
  // state BUILD gave it (or null).
  const PickleValue* args = nullptr;
  const PickleValue* state = nullptr;
  // kTensor: shape and strides in elements.
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;

  bool is(Kind k) const { return kind == k; }
  // "module.name" for kGlobal, kObject and kStorage.
  std::string qualified_name() const;
};

// Owns the values of one or more unpickled objects. Values refer to each other
// by plain pointers (pickles share objects and may even form cycles), so they
// live exactly as long as the arena.
class PickleArena {
 public:
  PickleValue* New(PickleValue::Kind kind);
  size_t size() const { return values_.size(); }

 private:
  std::deque<PickleValue> values_;
};

// Runs the pickle program in `data` and returns the object it builds.
// Protocols 0-5 are read, except protocol 0's quoted STRING and UNICODE,
// out-of-band buffers and the copyreg extension registry. Malformed input
// gives an error naming the opcode and its offset.
absl::StatusOr<const PickleValue*> Unpickle(std::string_view data, PickleArena* arena);

// The value stored under the string key `key` of a kDict, or null.
const PickleValue* PickleDictGet(const PickleValue& dict, std::string_view key);

// A short human-readable description, e.g. "tensor(HalfStorage, [2, 3])" or
// "<argparse.Namespace object>".
std::string DescribePickleValue(const PickleValue& value);

// Converts plain data to JSON: None, bool, int, float (kept a float even when
// integer-valued), str, list/tuple/set (arrays) and dicts (objects; non-string
// keys are written as json.dumps would). Anything else, and anything nested
// too deeply, becomes its description string.
nlohmann::json PickleToJson(const PickleValue& value);


}  // namespace clca
