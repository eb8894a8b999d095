// A writer of pickle programs for plain data and torch.save archives.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace clca {

// Emits protocol-2 pickle opcodes. The caller is responsible for producing a
// well-formed program (balanced marks, a final Stop()).
class PickleWriter {
 public:
  PickleWriter();  // Emits PROTO 2.

  void None();
  void Bool(bool value);
  void Int(int64_t value);
  void Float(double value);
  void String(std::string_view utf8);
  void Global(std::string_view module, std::string_view name);
  void Mark();
  void EmptyTuple();
  void EmptyList();
  void EmptyDict();
  void Tuple();     // Items since the last mark.
  void Appends();   // Items since the last mark, into the list below it.
  void SetItems();  // Key/value pairs since the last mark, into the dict below it.
  void Reduce();
  void PersistentId();  // BINPERSID
  void Stop();

  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

}  // namespace clca
