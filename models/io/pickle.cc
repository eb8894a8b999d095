// The pickle virtual machine. Every read is bounds-checked, every pop checked
// against the current mark, and work that copies data is budgeted, so that
// malformed or hostile input ends in an error rather than a crash or a hang.
#include "models/io/pickle.h"

#include <cstring>
#include <limits>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace clca {
namespace {

using Kind = PickleValue::Kind;

// Opcodes, named as in CPython's pickle.py.
namespace op {
constexpr uint8_t kMark = '(', kStop = '.', kPop = '0', kPopMark = '1', kDup = '2';
constexpr uint8_t kFloat = 'F', kInt = 'I', kBinInt = 'J', kBinInt1 = 'K', kLong = 'L';
constexpr uint8_t kBinInt2 = 'M', kNone = 'N', kPersId = 'P', kBinPersId = 'Q';
constexpr uint8_t kReduce = 'R', kBinString = 'T', kShortBinString = 'U';
constexpr uint8_t kBinUnicode = 'X', kAppend = 'a', kBuild = 'b', kGlobal = 'c', kDict = 'd';
constexpr uint8_t kEmptyDict = '}', kAppends = 'e', kGet = 'g', kBinGet = 'h', kInst = 'i';
constexpr uint8_t kLongBinGet = 'j', kList = 'l', kEmptyList = ']', kObj = 'o', kPut = 'p';
constexpr uint8_t kBinPut = 'q', kLongBinPut = 'r', kSetItem = 's', kTuple = 't';
constexpr uint8_t kEmptyTuple = ')', kSetItems = 'u', kBinFloat = 'G';
constexpr uint8_t kBinBytes = 'B', kShortBinBytes = 'C';
constexpr uint8_t kProto = 0x80, kNewObj = 0x81, kTuple1 = 0x85, kTuple2 = 0x86;
constexpr uint8_t kTuple3 = 0x87, kNewTrue = 0x88, kNewFalse = 0x89, kLong1 = 0x8a;
constexpr uint8_t kLong4 = 0x8b, kShortBinUnicode = 0x8c, kBinUnicode8 = 0x8d;
constexpr uint8_t kBinBytes8 = 0x8e, kEmptySet = 0x8f, kAddItems = 0x90, kFrozenSet = 0x91;
constexpr uint8_t kNewObjEx = 0x92, kStackGlobal = 0x93, kMemoize = 0x94, kFrame = 0x95;
constexpr uint8_t kByteArray8 = 0x96;
}  // namespace op

constexpr size_t kMaxValues = size_t{1} << 23;
constexpr size_t kMaxTensorDims = 64;
constexpr int kMaxCallDepth = 8;
// Longer ints are not converted to decimal (the conversion is quadratic).
constexpr size_t kMaxBigIntBytes = 1024;

// Decimal digits of a little-endian two's-complement integer.
std::string LittleEndianToDecimal(absl::string_view bytes) {
  if (bytes.size() > kMaxBigIntBytes) return absl::StrCat("<int of ", bytes.size(), " bytes>");
  std::vector<uint8_t> mag(bytes.begin(), bytes.end());
  const bool negative = !mag.empty() && (mag.back() & 0x80);
  if (negative) {  // Two's complement: invert and add one.
    int carry = 1;
    for (uint8_t& b : mag) {
      int v = static_cast<uint8_t>(~b) + carry;
      b = static_cast<uint8_t>(v);
      carry = v >> 8;
    }
  }
  std::string digits;
  while (!mag.empty()) {
    int rem = 0;  // Divide the base-256 number by 10.
    for (size_t i = mag.size(); i-- > 0;) {
      int cur = rem * 256 + mag[i];
      mag[i] = static_cast<uint8_t>(cur / 10);
      rem = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + rem));
    while (!mag.empty() && mag.back() == 0) mag.pop_back();
  }
  if (digits.empty()) digits = "0";
  if (negative) digits.push_back('-');
  return std::string(digits.rbegin(), digits.rend());
}

// Python 2 module names as Python 3 knows them.
std::string CanonicalModule(absl::string_view module) {
  if (module == "__builtin__") return "builtins";
  if (module == "copy_reg") return "copyreg";
  return std::string(module);
}

// Encodes UTF-8 text as Latin-1 bytes (what protocol 2 does to `bytes`).
bool Latin1Encode(absl::string_view utf8, std::string* out) {
  out->clear();
  for (size_t i = 0; i < utf8.size(); ++i) {
    uint8_t c = static_cast<uint8_t>(utf8[i]);
    if (c < 0x80) {
      out->push_back(static_cast<char>(c));
    } else if ((c & 0xfe) == 0xc2 && i + 1 < utf8.size() && (utf8[i + 1] & 0xc0) == 0x80) {
      // U+0080..U+00FF.
      out->push_back(static_cast<char>(((c & 0x03) << 6) | (utf8[++i] & 0x3f)));
    } else {
      return false;
    }
  }
  return true;
}

class Unpickler {
 public:
  Unpickler(absl::string_view data, PickleArena* arena)
      : data_(data), arena_(arena), budget_(4 * data.size() + (size_t{1} << 20)) {}

  absl::StatusOr<const PickleValue*> Run();

 private:
  absl::Status Step();
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("pickle: %s (opcode 0x%02x at offset %d)", what, opcode_, opcode_pos_));
  }
  absl::Status Truncated() const { return Error("data ends inside the opcode's argument"); }

  // Reading arguments; each returns false at the end of the data.
  bool Read(size_t n, absl::string_view* out) {
    if (n > data_.size() - pos_) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool ReadUint(size_t n, uint64_t* out) {
    absl::string_view b;
    if (!Read(n, &b)) return false;
    *out = 0;
    for (size_t i = n; i-- > 0;) *out = (*out << 8) | static_cast<uint8_t>(b[i]);
    return true;
  }
  bool ReadLine(absl::string_view* out) {
    size_t end = data_.find('\n', pos_);
    if (end == absl::string_view::npos) return false;
    *out = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }

  // Values.
  absl::StatusOr<PickleValue*> New(Kind kind) {
    if (arena_->size() >= kMaxValues) return Error("too many objects");
    return arena_->New(kind);
  }
  absl::Status Push(Kind kind, PickleValue** out = nullptr);
  absl::Status PushString(Kind kind, absl::string_view payload);
  absl::Status PushInt(absl::string_view little_endian);
  // Work beyond one step per opcode (copying containers, converting long
  // ints) is paid from a budget proportional to the input size.
  absl::Status Charge(size_t n) {
    if (n > budget_) return Error("too much work for the size of the pickle");
    budget_ -= n;
    return absl::OkStatus();
  }

  // The stack, with marks hiding what lies below them.
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  absl::StatusOr<PickleValue*> Pop();
  absl::StatusOr<PickleValue*> Top();
  absl::StatusOr<std::vector<PickleValue*>> PopMark();
  absl::StatusOr<PickleValue*> MakeSequence(Kind kind, std::vector<PickleValue*> items);
  absl::Status AddItems(PickleValue* target, const std::vector<PickleValue*>& items);
  absl::Status AddEntries(PickleValue* target, const std::vector<PickleValue*>& flat);
  absl::Status Put(uint64_t index);
  absl::Status Get(uint64_t index);

  // Calls.
  absl::StatusOr<PickleValue*> Call(const PickleValue& callable, const PickleValue& args,
                                    int depth = 0);
  absl::StatusOr<PickleValue*> CallKnown(const std::string& fn,
                                         const std::vector<const PickleValue*>& args, int depth,
                                         bool* known);
  absl::StatusOr<PickleValue*> NewObject(const PickleValue& cls);
  absl::StatusOr<PickleValue*> Collection(Kind kind, const std::vector<const PickleValue*>& args);
  absl::StatusOr<PickleValue*> RebuildTensor(const std::vector<const PickleValue*>& args);
  absl::StatusOr<PickleValue*> PersistentLoad(PickleValue* pid);

  absl::string_view data_;
  PickleArena* arena_;
  size_t budget_;
  size_t pos_ = 0;
  size_t opcode_pos_ = 0;
  uint8_t opcode_ = 0;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue*> memo_;
};

absl::StatusOr<const PickleValue*> Unpickler::Run() {
  while (pos_ < data_.size()) {
    opcode_pos_ = pos_;
    opcode_ = static_cast<uint8_t>(data_[pos_++]);
    if (opcode_ == op::kStop) {
      auto top = Top();
      if (!top.ok()) return top.status();
      return *top;
    }
    if (absl::Status s = Step(); !s.ok()) return s;
  }
  return absl::InvalidArgumentError("pickle: data ends before the STOP opcode");
}

absl::Status Unpickler::Push(Kind kind, PickleValue** out) {
  auto v = New(kind);
  if (!v.ok()) return v.status();
  stack_.push_back(*v);
  if (out != nullptr) *out = *v;
  return absl::OkStatus();
}

absl::Status Unpickler::PushString(Kind kind, absl::string_view payload) {
  PickleValue* v;
  if (absl::Status s = Push(kind, &v); !s.ok()) return s;
  v->str = std::string(payload);
  return absl::OkStatus();
}

absl::Status Unpickler::PushInt(absl::string_view le) {
  const bool negative = !le.empty() && (le.back() & 0x80);
  // Drop sign-extension bytes beyond the eighth.
  size_t n = le.size();
  while (n > 8 && static_cast<uint8_t>(le[n - 1]) == (negative ? 0xff : 0x00)) --n;
  const bool fits = n < 8 || (n == 8 && ((le[7] & 0x80) != 0) == negative);
  PickleValue* v;
  if (!fits) {
    // The decimal conversion is quadratic in the length.
    if (absl::Status s = Charge(le.size() * le.size()); !s.ok()) return s;
    if (absl::Status s = Push(Kind::kBigInt, &v); !s.ok()) return s;
    v->str = LittleEndianToDecimal(le);
    return absl::OkStatus();
  }
  uint64_t u = negative ? ~uint64_t{0} : 0;
  for (size_t i = 0; i < n; ++i) {
    u &= ~(uint64_t{0xff} << (8 * i));
    u |= uint64_t{static_cast<uint8_t>(le[i])} << (8 * i);
  }
  if (absl::Status s = Push(Kind::kInt, &v); !s.ok()) return s;
  v->int_value = static_cast<int64_t>(u);
  return absl::OkStatus();
}

absl::StatusOr<PickleValue*> Unpickler::Pop() {
  if (stack_.size() <= Floor()) return Error("stack underflow");
  PickleValue* v = stack_.back();
  stack_.pop_back();
  return v;
}

absl::StatusOr<PickleValue*> Unpickler::Top() {
  if (stack_.size() <= Floor()) return Error("stack underflow");
  return stack_.back();
}

absl::StatusOr<std::vector<PickleValue*>> Unpickler::PopMark() {
  if (marks_.empty()) return Error("no MARK to pop to");
  std::vector<PickleValue*> items(stack_.begin() + marks_.back(), stack_.end());
  stack_.resize(marks_.back());
  marks_.pop_back();
  return items;
}

absl::StatusOr<PickleValue*> Unpickler::MakeSequence(Kind kind, std::vector<PickleValue*> items) {
  auto v = New(kind);
  if (!v.ok()) return v.status();
  (*v)->items.assign(items.begin(), items.end());
  return *v;
}

absl::Status Unpickler::AddItems(PickleValue* target, const std::vector<PickleValue*>& items) {
  if (!target->is(Kind::kList) && !target->is(Kind::kSet) && !target->is(Kind::kObject)) {
    return Error(absl::StrCat("cannot append to ", DescribePickleValue(*target)));
  }
  target->items.insert(target->items.end(), items.begin(), items.end());
  return absl::OkStatus();
}

absl::Status Unpickler::AddEntries(PickleValue* target, const std::vector<PickleValue*>& flat) {
  if (flat.size() % 2 != 0) return Error("odd number of items for a dict");
  if (!target->is(Kind::kDict) && !target->is(Kind::kObject)) {
    return Error(absl::StrCat("cannot set items of ", DescribePickleValue(*target)));
  }
  for (size_t i = 0; i < flat.size(); i += 2) target->entries.emplace_back(flat[i], flat[i + 1]);
  return absl::OkStatus();
}

absl::Status Unpickler::Put(uint64_t index) {
  auto top = Top();
  if (!top.ok()) return top.status();
  memo_[index] = *top;
  return absl::OkStatus();
}

absl::Status Unpickler::Get(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) return Error(absl::StrCat("memo has no entry ", index));
  stack_.push_back(it->second);
  return absl::OkStatus();
}

absl::Status Unpickler::Step() {
  absl::string_view arg, arg2;
  uint64_t n = 0;
  switch (opcode_) {
    case op::kProto:
      if (!ReadUint(1, &n)) return Truncated();
      if (n > 5) return Error(absl::StrCat("unsupported protocol ", n));
      return absl::OkStatus();
    case op::kFrame:  // Framing only groups opcodes; the frame must fit.
      if (!ReadUint(8, &n)) return Truncated();
      if (n > data_.size() - pos_) return Error("frame extends past the end");
      return absl::OkStatus();
    case op::kMark:
      marks_.push_back(stack_.size());
      return absl::OkStatus();
    case op::kPop:
      if (stack_.size() > Floor()) {
        stack_.pop_back();
        return absl::OkStatus();
      }
      return PopMark().status();
    case op::kPopMark:
      return PopMark().status();
    case op::kDup: {
      auto top = Top();
      if (!top.ok()) return top.status();
      stack_.push_back(*top);
      return absl::OkStatus();
    }

    // Scalars.
    case op::kNone:
      return Push(Kind::kNone);
    case op::kNewTrue:
    case op::kNewFalse: {
      PickleValue* v;
      if (absl::Status s = Push(Kind::kBool, &v); !s.ok()) return s;
      v->bool_value = opcode_ == op::kNewTrue;
      return absl::OkStatus();
    }
    case op::kBinInt:
      if (!Read(4, &arg)) return Truncated();
      return PushInt(arg);
    case op::kBinInt1:
    case op::kBinInt2: {
      const size_t width = opcode_ == op::kBinInt1 ? 1 : 2;
      if (!Read(width, &arg)) return Truncated();
      std::string unsigned_le(arg);
      unsigned_le.push_back('\0');
      return PushInt(unsigned_le);
    }
    case op::kLong1:
    case op::kLong4: {
      if (!ReadUint(opcode_ == op::kLong1 ? 1 : 4, &n)) return Truncated();
      if (opcode_ == op::kLong4 && n > std::numeric_limits<int32_t>::max()) {
        return Error("negative length");
      }
      if (!Read(n, &arg)) return Truncated();
      return PushInt(arg);
    }
    case op::kInt:
    case op::kLong: {
      if (!ReadLine(&arg)) return Truncated();
      if (opcode_ == op::kInt && (arg == "00" || arg == "01")) {  // Protocol 0 booleans.
        PickleValue* v;
        if (absl::Status s = Push(Kind::kBool, &v); !s.ok()) return s;
        v->bool_value = arg == "01";
        return absl::OkStatus();
      }
      if (!arg.empty() && arg.back() == 'L') arg.remove_suffix(1);
      int64_t i;
      if (!absl::SimpleAtoi(arg, &i)) return Error("bad or too large integer literal");
      PickleValue* v;
      if (absl::Status s = Push(Kind::kInt, &v); !s.ok()) return s;
      v->int_value = i;
      return absl::OkStatus();
    }
    case op::kBinFloat:
    case op::kFloat: {
      double d;
      if (opcode_ == op::kBinFloat) {
        if (!Read(8, &arg)) return Truncated();
        uint64_t bits = 0;
        for (char c : arg) bits = (bits << 8) | static_cast<uint8_t>(c);  // Big-endian.
        std::memcpy(&d, &bits, sizeof(d));
      } else {
        if (!ReadLine(&arg)) return Truncated();
        if (!absl::SimpleAtod(arg, &d)) return Error("bad float literal");
      }
      PickleValue* v;
      if (absl::Status s = Push(Kind::kFloat, &v); !s.ok()) return s;
      v->float_value = d;
      return absl::OkStatus();
    }

    // Strings and bytes.
    case op::kShortBinUnicode:
    case op::kShortBinString:
    case op::kShortBinBytes:
    case op::kBinUnicode:
    case op::kBinString:
    case op::kBinBytes:
    case op::kBinUnicode8:
    case op::kBinBytes8:
    case op::kByteArray8: {
      size_t width = 8;
      if (opcode_ == op::kShortBinUnicode || opcode_ == op::kShortBinString ||
          opcode_ == op::kShortBinBytes) {
        width = 1;
      } else if (opcode_ == op::kBinUnicode || opcode_ == op::kBinString ||
                 opcode_ == op::kBinBytes) {
        width = 4;
      }
      if (!ReadUint(width, &n)) return Truncated();
      if (opcode_ == op::kBinString && n > std::numeric_limits<int32_t>::max()) {
        return Error("negative length");
      }
      if (!Read(n, &arg)) return Truncated();
      const bool text = opcode_ == op::kShortBinUnicode || opcode_ == op::kBinUnicode ||
                        opcode_ == op::kBinUnicode8 || opcode_ == op::kShortBinString ||
                        opcode_ == op::kBinString;
      return PushString(text ? Kind::kString : Kind::kBytes, arg);
    }

    // Containers.
    case op::kEmptyTuple:
      return Push(Kind::kTuple);
    case op::kEmptyList:
      return Push(Kind::kList);
    case op::kEmptyDict:
      return Push(Kind::kDict);
    case op::kEmptySet:
      return Push(Kind::kSet);
    case op::kTuple1:
    case op::kTuple2:
    case op::kTuple3: {
      const size_t count = opcode_ - op::kTuple1 + 1;
      if (stack_.size() < Floor() + count) return Error("stack underflow");
      std::vector<PickleValue*> items(stack_.end() - count, stack_.end());
      stack_.resize(stack_.size() - count);
      auto v = MakeSequence(Kind::kTuple, std::move(items));
      if (!v.ok()) return v.status();
      stack_.push_back(*v);
      return absl::OkStatus();
    }
    case op::kTuple:
    case op::kList:
    case op::kFrozenSet:
    case op::kDict: {
      auto items = PopMark();
      if (!items.ok()) return items.status();
      const Kind kind = opcode_ == op::kTuple  ? Kind::kTuple
                        : opcode_ == op::kList ? Kind::kList
                        : opcode_ == op::kDict ? Kind::kDict
                                               : Kind::kSet;
      PickleValue* v;
      if (absl::Status s = Push(kind, &v); !s.ok()) return s;
      if (kind == Kind::kDict) return AddEntries(v, *items);
      v->items.assign(items->begin(), items->end());
      return absl::OkStatus();
    }
    case op::kAppend:
    case op::kSetItem: {
      const size_t count = opcode_ == op::kAppend ? 1 : 2;
      if (stack_.size() < Floor() + count + 1) return Error("stack underflow");
      std::vector<PickleValue*> items(stack_.end() - count, stack_.end());
      stack_.resize(stack_.size() - count);
      return count == 1 ? AddItems(stack_.back(), items) : AddEntries(stack_.back(), items);
    }
    case op::kAppends:
    case op::kAddItems:
    case op::kSetItems: {
      auto items = PopMark();
      if (!items.ok()) return items.status();
      auto target = Top();
      if (!target.ok()) return target.status();
      return opcode_ == op::kSetItems ? AddEntries(*target, *items) : AddItems(*target, *items);
    }

    // Memo.
    case op::kBinPut:
    case op::kLongBinPut:
      if (!ReadUint(opcode_ == op::kBinPut ? 1 : 4, &n)) return Truncated();
      return Put(n);
    case op::kMemoize:
      return Put(memo_.size());
    case op::kBinGet:
    case op::kLongBinGet:
      if (!ReadUint(opcode_ == op::kBinGet ? 1 : 4, &n)) return Truncated();
      return Get(n);
    case op::kPut:
    case op::kGet:
      if (!ReadLine(&arg)) return Truncated();
      if (!absl::SimpleAtoi(arg, &n)) return Error("bad memo index");
      return opcode_ == op::kPut ? Put(n) : Get(n);

    // Classes, calls and objects.
    case op::kGlobal:
    case op::kStackGlobal: {
      std::string module, name;
      if (opcode_ == op::kGlobal) {
        if (!ReadLine(&arg) || !ReadLine(&arg2)) return Truncated();
        module = std::string(arg);
        name = std::string(arg2);
      } else {
        auto n_value = Pop();
        if (!n_value.ok()) return n_value.status();
        auto m_value = Pop();
        if (!m_value.ok()) return m_value.status();
        if (!(*n_value)->is(Kind::kString) || !(*m_value)->is(Kind::kString)) {
          return Error("STACK_GLOBAL needs two strings");
        }
        const size_t size = (*m_value)->str.size() + (*n_value)->str.size();
        if (absl::Status s = Charge(size); !s.ok()) return s;
        module = (*m_value)->str;
        name = (*n_value)->str;
      }
      PickleValue* v;
      if (absl::Status s = Push(Kind::kGlobal, &v); !s.ok()) return s;
      v->module = CanonicalModule(module);
      v->name = std::move(name);
      return absl::OkStatus();
    }
    case op::kReduce:
    case op::kNewObj:
    case op::kNewObjEx: {
      if (opcode_ == op::kNewObjEx) {  // Keyword arguments are dropped.
        if (absl::Status s = Pop().status(); !s.ok()) return s;
      }
      auto args = Pop();
      if (!args.ok()) return args.status();
      auto callable = Pop();
      if (!callable.ok()) return callable.status();
      auto v = Call(**callable, **args);
      if (!v.ok()) return v.status();
      stack_.push_back(*v);
      return absl::OkStatus();
    }
    case op::kObj:
    case op::kInst: {
      PickleValue* cls = nullptr;
      if (opcode_ == op::kInst) {
        if (!ReadLine(&arg) || !ReadLine(&arg2)) return Truncated();
        auto g = New(Kind::kGlobal);
        if (!g.ok()) return g.status();
        cls = *g;
        cls->module = CanonicalModule(arg);
        cls->name = std::string(arg2);
      }
      auto items = PopMark();
      if (!items.ok()) return items.status();
      if (cls == nullptr) {
        if (items->empty()) return Error("OBJ without a class");
        cls = items->front();
        items->erase(items->begin());
      }
      auto args = MakeSequence(Kind::kTuple, std::move(*items));
      if (!args.ok()) return args.status();
      auto v = Call(*cls, **args);
      if (!v.ok()) return v.status();
      stack_.push_back(*v);
      return absl::OkStatus();
    }
    case op::kBuild: {
      auto state = Pop();
      if (!state.ok()) return state.status();
      auto target = Top();
      if (!target.ok()) return target.status();
      // Only opaque objects keep their state; the attributes Python would set
      // on dicts and tensors (e.g. a state dict's _metadata) are not needed.
      if ((*target)->is(Kind::kObject)) (*target)->state = *state;
      return absl::OkStatus();
    }
    case op::kBinPersId:
    case op::kPersId: {
      PickleValue* pid;
      if (opcode_ == op::kPersId) {
        if (!ReadLine(&arg)) return Truncated();
        auto s = New(Kind::kString);
        if (!s.ok()) return s.status();
        pid = *s;
        pid->str = std::string(arg);
      } else {
        auto p = Pop();
        if (!p.ok()) return p.status();
        pid = *p;
      }
      auto v = PersistentLoad(pid);
      if (!v.ok()) return v.status();
      stack_.push_back(*v);
      return absl::OkStatus();
    }
    default:
      return Error("unsupported opcode");
  }
}

absl::StatusOr<PickleValue*> Unpickler::Call(const PickleValue& callable, const PickleValue& args,
                                             int depth) {
  if (!args.is(Kind::kTuple) && !args.is(Kind::kList)) {
    return Error(absl::StrCat("call arguments are ", DescribePickleValue(args), ", not a tuple"));
  }
  if (!callable.is(Kind::kGlobal) && !callable.is(Kind::kObject)) {
    return Error(absl::StrCat("cannot call ", DescribePickleValue(callable)));
  }
  if (callable.is(Kind::kGlobal) && callable.module.size() + callable.name.size() < 100) {
    bool known = false;
    auto v = CallKnown(callable.qualified_name(), args.items, depth, &known);
    if (known) return v;
  }
  auto v = NewObject(callable);
  if (!v.ok()) return v.status();
  (*v)->args = &args;
  return *v;
}

absl::StatusOr<PickleValue*> Unpickler::CallKnown(const std::string& fn,
                                                  const std::vector<const PickleValue*>& args,
                                                  int depth, bool* known) {
  *known = true;
  if (fn == "collections.OrderedDict" || fn == "builtins.dict") {
    return Collection(Kind::kDict, args);
  }
  if (fn == "builtins.list") return Collection(Kind::kList, args);
  if (fn == "builtins.tuple" || fn == "torch.Size") return Collection(Kind::kTuple, args);
  if (fn == "builtins.set" || fn == "builtins.frozenset") return Collection(Kind::kSet, args);
  if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
    return RebuildTensor(args);
  }
  // Functions whose result is their first argument, as far as we care: the
  // parameter rebuilders (a Parameter is its tensor) and TorchScript's
  // container type tags.
  if (fn == "torch._utils._rebuild_parameter" ||
      fn == "torch._utils._rebuild_parameter_with_state" ||
      fn == "torch.jit._pickle.restore_type_tag" || fn == "torch.jit._pickle.build_intlist" ||
      fn == "torch.jit._pickle.build_tensorlist" || fn == "torch.jit._pickle.build_doublelist" ||
      fn == "torch.jit._pickle.build_boollist") {
    if (args.empty()) return Error(absl::StrCat(fn, " without arguments"));
    return const_cast<PickleValue*>(args[0]);
  }
  // _rebuild_from_type_v2(func, new_type, args, state) calls func(*args).
  if (fn == "torch._tensor._rebuild_from_type_v2") {
    if (args.size() < 3 || depth >= kMaxCallDepth) return Error(absl::StrCat("bad ", fn));
    return Call(*args[0], *args[2], depth + 1);
  }
  // Protocol 2 pickles `bytes` as _codecs.encode(text, "latin1").
  if (fn == "_codecs.encode" && args.size() == 2 && args[0]->is(Kind::kString) &&
      args[1]->is(Kind::kString) && (args[1]->str == "latin1" || args[1]->str == "latin-1")) {
    if (absl::Status s = Charge(args[0]->str.size()); !s.ok()) return s;
    std::string bytes;
    if (Latin1Encode(args[0]->str, &bytes)) {
      auto v = New(Kind::kBytes);
      if (!v.ok()) return v.status();
      (*v)->str = std::move(bytes);
      return *v;
    }
  }
  // copyreg._reconstructor(cls, base, state) makes an instance of cls, to
  // which BUILD may give state later.
  if (fn == "copyreg._reconstructor" && !args.empty() && args[0]->is(Kind::kGlobal)) {
    return NewObject(*args[0]);
  }
  *known = false;
  return nullptr;
}

// An opaque instance of the class (or callable) `cls`.
absl::StatusOr<PickleValue*> Unpickler::NewObject(const PickleValue& cls) {
  if (absl::Status s = Charge(cls.module.size() + cls.name.size()); !s.ok()) return s;
  auto v = New(Kind::kObject);
  if (!v.ok()) return v.status();
  (*v)->module = cls.module;
  (*v)->name = cls.name;
  return *v;
}

// dict(x), list(x), tuple(x), set(x) of another container (or of nothing).
absl::StatusOr<PickleValue*> Unpickler::Collection(Kind kind,
                                                   const std::vector<const PickleValue*>& args) {
  auto v = New(kind);
  if (!v.ok()) return v.status();
  if (args.empty()) return *v;
  const PickleValue& source = *args[0];
  if (kind == Kind::kDict && source.is(Kind::kDict)) {
    if (absl::Status s = Charge(source.entries.size()); !s.ok()) return s;
    (*v)->entries = source.entries;
    return *v;
  }
  if (!source.is(Kind::kTuple) && !source.is(Kind::kList) && !source.is(Kind::kSet)) {
    return Error(absl::StrCat("cannot make a container from ", DescribePickleValue(source)));
  }
  if (absl::Status s = Charge(source.items.size()); !s.ok()) return s;
  if (kind != Kind::kDict) {
    (*v)->items = source.items;
    return *v;
  }
  for (const PickleValue* pair : source.items) {  // A sequence of (key, value).
    if (!(pair->is(Kind::kTuple) || pair->is(Kind::kList)) || pair->items.size() != 2) {
      return Error("dict item is not a pair");
    }
    (*v)->entries.emplace_back(pair->items[0], pair->items[1]);
  }
  return *v;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]); the old _rebuild_tensor has the first four.
absl::StatusOr<PickleValue*> Unpickler::RebuildTensor(const std::vector<const PickleValue*>& args) {
  if (args.size() < 4) return Error("tensor rebuild with fewer than 4 arguments");
  const PickleValue& storage = *args[0];
  if (!storage.is(Kind::kStorage)) {
    return Error(absl::StrCat("tensor storage is ", DescribePickleValue(storage)));
  }
  if (!args[1]->is(Kind::kInt) || args[1]->int_value < 0) return Error("bad storage offset");
  auto v = New(Kind::kTensor);
  if (!v.ok()) return v.status();
  PickleValue& t = **v;
  t.items = {&storage};
  t.int_value = args[1]->int_value;
  for (int i = 0; i < 2; ++i) {
    const PickleValue& dims = *args[2 + i];
    if ((!dims.is(Kind::kTuple) && !dims.is(Kind::kList)) || dims.items.size() > kMaxTensorDims) {
      return Error("tensor size or stride is not a short tuple");
    }
    std::vector<int64_t>& out = i == 0 ? t.sizes : t.strides;
    for (const PickleValue* d : dims.items) {
      if (!d->is(Kind::kInt) || d->int_value < 0) return Error("bad tensor size or stride");
      out.push_back(d->int_value);
    }
  }
  if (t.sizes.size() != t.strides.size()) return Error("tensor size and stride differ in length");
  // The elements the view reaches must lie inside the storage.
  int64_t end = t.int_value;
  bool empty = false;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    int64_t span;
    if (t.sizes[d] == 0) empty = true;
    if (t.sizes[d] > 0 && (__builtin_mul_overflow(t.sizes[d] - 1, t.strides[d], &span) ||
                           __builtin_add_overflow(end, span, &end))) {
      return Error("tensor extent overflows");
    }
  }
  if (!empty && (end == std::numeric_limits<int64_t>::max() || end + 1 > storage.int_value)) {
    return Error(absl::StrCat("tensor reaches element ", end, " of a storage of ",
                              storage.int_value));
  }
  if (empty && t.int_value > storage.int_value) return Error("storage offset past the end");
  return *v;
}

// torch.save's persistent ids: ('storage', storage_type, key, location, numel).
// Anything else becomes an opaque object.
absl::StatusOr<PickleValue*> Unpickler::PersistentLoad(PickleValue* pid) {
  const auto& f = pid->items;
  if (pid->is(Kind::kTuple) && f.size() == 5 && f[0]->is(Kind::kString) &&
      f[0]->str == "storage") {
    if (!f[1]->is(Kind::kGlobal) || !(f[2]->is(Kind::kString) || f[2]->is(Kind::kInt)) ||
        !f[4]->is(Kind::kInt) || f[4]->int_value < 0) {
      return Error("malformed storage persistent id");
    }
    const size_t size = f[1]->module.size() + f[1]->name.size() + f[2]->str.size();
    if (absl::Status s = Charge(size); !s.ok()) return s;
    auto v = New(Kind::kStorage);
    if (!v.ok()) return v.status();
    (*v)->module = f[1]->module;
    (*v)->name = f[1]->name;
    (*v)->str = f[2]->is(Kind::kString) ? f[2]->str : absl::StrCat(f[2]->int_value);
    (*v)->int_value = f[4]->int_value;
    return *v;
  }
  auto v = New(Kind::kObject);
  if (!v.ok()) return v.status();
  (*v)->name = "persistent_id";
  (*v)->args = pid;
  return *v;
}

}  // namespace

std::string PickleValue::qualified_name() const { return absl::StrCat(module, ".", name); }

PickleValue* PickleArena::New(PickleValue::Kind kind) {
  values_.emplace_back();
  values_.back().kind = kind;
  return &values_.back();
}

absl::StatusOr<const PickleValue*> Unpickle(std::string_view data, PickleArena* arena) {
  return Unpickler(absl::string_view(data.data(), data.size()), arena).Run();
}

const PickleValue* PickleDictGet(const PickleValue& dict, std::string_view key) {
  if (!dict.is(Kind::kDict)) return nullptr;
  for (auto it = dict.entries.rbegin(); it != dict.entries.rend(); ++it) {
    if (it->first->is(Kind::kString) && it->first->str == key) return it->second;
  }
  return nullptr;
}

}  // namespace clca
