#include "models/save/pickle_writer.h"

#include <cstring>
#include <limits>


namespace clca {
namespace {

void AppendLittleEndian(uint64_t value, size_t bytes, std::string* out) {
  for (size_t i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace

PickleWriter::PickleWriter() { data_.append("\x80\x02", 2); }

void PickleWriter::None() { data_.push_back('N'); }

void PickleWriter::Bool(bool value) { data_.push_back(value ? '\x88' : '\x89'); }

void PickleWriter::Int(int64_t value) {
  if (value >= 0 && value < 0x100) {
    data_.push_back('K');  // BININT1
    AppendLittleEndian(value, 1, &data_);
  } else if (value >= 0 && value < 0x10000) {
    data_.push_back('M');  // BININT2
    AppendLittleEndian(value, 2, &data_);
  } else if (value >= std::numeric_limits<int32_t>::min() &&
             value <= std::numeric_limits<int32_t>::max()) {
    data_.push_back('J');  // BININT
    AppendLittleEndian(static_cast<uint64_t>(value), 4, &data_);
  } else {
    data_.append("\x8a\x08", 2);  // LONG1 with 8 bytes of two's complement.
    AppendLittleEndian(static_cast<uint64_t>(value), 8, &data_);
  }
}

void PickleWriter::Float(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  data_.push_back('G');  // BINFLOAT, big-endian.
  for (int i = 7; i >= 0; --i) data_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

void PickleWriter::String(std::string_view utf8) {
  if (utf8.size() <= std::numeric_limits<uint32_t>::max()) {
    data_.push_back('X');  // BINUNICODE
    AppendLittleEndian(utf8.size(), 4, &data_);
  } else {
    data_.push_back('\x8d');  // BINUNICODE8
    AppendLittleEndian(utf8.size(), 8, &data_);
  }
  data_.append(utf8);
}

void PickleWriter::Global(std::string_view module, std::string_view name) {
  data_.push_back('c');
  data_.append(module);
  data_.push_back('\n');
  data_.append(name);
  data_.push_back('\n');
}

void PickleWriter::Mark() { data_.push_back('('); }
void PickleWriter::EmptyTuple() { data_.push_back(')'); }
void PickleWriter::EmptyList() { data_.push_back(']'); }
void PickleWriter::EmptyDict() { data_.push_back('}'); }
void PickleWriter::Tuple() { data_.push_back('t'); }
void PickleWriter::Appends() { data_.push_back('e'); }
void PickleWriter::SetItems() { data_.push_back('u'); }
void PickleWriter::Reduce() { data_.push_back('R'); }
void PickleWriter::PersistentId() { data_.push_back('Q'); }
void PickleWriter::Stop() { data_.push_back('.'); }

}  // namespace clca
