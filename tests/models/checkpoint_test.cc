#include "models/io/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include "models/io/pickle.h"
#include "models/io/safetensors.h"
#include "models/save/checkpoint_writer.h"
#include "models/save/pickle_writer.h"

namespace clca {
namespace {

namespace fs = std::filesystem;
using Kind = PickleValue::Kind;

std::string ParityPath(const std::string& file) {
  return std::string(CLCA_TEST_DATA) + "/parity/" + file;
}

// A fresh directory for one test's files.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::path(::testing::TempDir()) /
            ("ckpt_" + std::to_string(getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> Listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
    return names;
  }

 private:
  fs::path path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// A zip archive as torch.save lays it out, with the given records.
std::string MakeArchive(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, size_t n) {
    out.append(static_cast<const char*>(buf), n);
    return n;
  });
  for (const auto& [name, data] : records) writer.writeRecord(name, data.data(), data.size());
  writer.writeEndOfFile();
  return out;
}

const Checkpoint& Load(const std::string& file) {
  static auto* cache = new std::map<std::string, Checkpoint>();
  auto it = cache->find(file);
  if (it == cache->end()) {
    auto checkpoint = LoadCheckpoint(ParityPath(file));
    EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
    it = cache->emplace(file, checkpoint.ok() ? *std::move(checkpoint) : Checkpoint()).first;
  }
  return it->second;
}

torch::Tensor Find(const StateDict& state_dict, const std::string& name) {
  for (const auto& [key, t] : state_dict) {
    if (key == name) return t;
  }
  return torch::Tensor();
}

// ---------------------------------------------------------------------------
// The pickle reader.

// pickle.dumps({'args': argparse.Namespace(model='evit', keep_rate=[1.0],
// lr=1e-4, seed=2**64+1, neg=-5, big=2**40, flag=True, nothing=None,
// loc=(3,6,9), raw=b'\x00\xff', nested={'a': 1, 2: 'b'}), 'epoch': 3}, protocol=P)
const std::string kNamespaceProtocol2 = Bytes(
    "\x80\x02}q\x00(X\x04\x00\x00\x00" "argsq\x01" "cargparse\x0aNamespace\x0aq\x02)\x81q"
    "\x03}q\x04(X\x05\x00\x00\x00modelq\x05X\x04\x00\x00\x00" "evitq\x06X\x09\x00\x00\x00ke"
    "ep_rateq\x07]q\x08G\x3f\xf0\x00\x00\x00\x00\x00\x00" "aX\x02\x00\x00\x00lrq\x09G\x3f"
    "\x1a" "6\xe2\xeb\x1c" "C-X\x04\x00\x00\x00seedq\x0a\x8a\x09\x01\x00\x00\x00\x00\x00"
    "\x00\x00\x01X\x03\x00\x00\x00negq\x0bJ\xfb\xff\xff\xffX\x03\x00\x00\x00" "bigq\x0c\x8a"
    "\x06\x00\x00\x00\x00\x00\x01X\x04\x00\x00\x00" "flagq\x0d\x88X\x07\x00\x00\x00nothingq"
    "\x0eNX\x03\x00\x00\x00locq\x0fK\x03K\x06K\x09\x87q\x10X\x03\x00\x00\x00rawq\x11" "c_co"
    "decs\x0a" "encode\x0aq\x12X\x03\x00\x00\x00\x00\xc3\xbfq\x13X\x06\x00\x00\x00latin1q"
    "\x14\x86q\x15Rq\x16X\x06\x00\x00\x00nestedq\x17}q\x18(X\x01\x00\x00\x00" "aq\x19K\x01K"
    "\x02X\x01\x00\x00\x00" "bq\x1auubX\x05\x00\x00\x00" "epochq\x1bK\x03u.");
const std::string kNamespaceProtocol4 = Bytes(
    "\x80\x04\x95\xdc\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04" "args\x94\x8c\x08" "argpar"
    "se\x94\x8c\x09Namespace\x94\x93\x94)\x81\x94}\x94(\x8c\x05model\x94\x8c\x04" "evit\x94"
    "\x8c\x09keep_rate\x94]\x94G\x3f\xf0\x00\x00\x00\x00\x00\x00" "a\x8c\x02lr\x94G\x3f\x1a"
    "6\xe2\xeb\x1c" "C-\x8c\x04seed\x94\x8a\x09\x01\x00\x00\x00\x00\x00\x00\x00\x01\x8c\x03"
    "neg\x94J\xfb\xff\xff\xff\x8c\x03" "big\x94\x8a\x06\x00\x00\x00\x00\x00\x01\x8c\x04" "f"
    "lag\x94\x88\x8c\x07nothing\x94N\x8c\x03loc\x94K\x03K\x06K\x09\x87\x94\x8c\x03raw\x94"
    "C\x02\x00\xff\x94\x8c\x06nested\x94}\x94(\x8c\x01" "a\x94K\x01K\x02\x8c\x01" "b\x94uub"
    "\x8c\x05" "epoch\x94K\x03u.");

class PickleNamespaceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PickleNamespaceTest, KeepsTheNamespaceAndConvertsItsStateToJson) {
  PickleArena arena;
  auto root = Unpickle(GetParam(), &arena);
  ASSERT_TRUE(root.ok()) << root.status();
  ASSERT_TRUE((*root)->is(Kind::kDict));
  const PickleValue* args = PickleDictGet(**root, "args");
  ASSERT_NE(args, nullptr);
  ASSERT_TRUE(args->is(Kind::kObject));
  EXPECT_EQ(args->qualified_name(), "argparse.Namespace");
  ASSERT_NE(args->args, nullptr);
  EXPECT_TRUE(args->args->items.empty());
  ASSERT_NE(args->state, nullptr);
  const PickleValue* raw = PickleDictGet(*args->state, "raw");
  ASSERT_NE(raw, nullptr);
  EXPECT_TRUE(raw->is(Kind::kBytes));
  EXPECT_EQ(raw->str, std::string("\x00\xff", 2));

  const nlohmann::json json = PickleToJson(*args->state);
  EXPECT_EQ(json["model"], "evit");
  ASSERT_TRUE(json["keep_rate"].is_array());
  EXPECT_TRUE(json["keep_rate"][0].is_number_float());  // 1.0 stays a float.
  EXPECT_EQ(json["keep_rate"][0].get<double>(), 1.0);
  EXPECT_EQ(json["lr"].get<double>(), 1e-4);
  EXPECT_EQ(json["seed"], "18446744073709551617");  // 2**64 + 1 fits no JSON integer.
  EXPECT_EQ(json["neg"].get<int64_t>(), -5);
  EXPECT_EQ(json["big"].get<int64_t>(), int64_t{1} << 40);
  EXPECT_EQ(json["flag"], true);
  EXPECT_TRUE(json["nothing"].is_null());
  EXPECT_EQ(json["loc"], nlohmann::json({3, 6, 9}));
  EXPECT_EQ(json["raw"], "<bytes of length 2>");
  EXPECT_EQ(json["nested"], nlohmann::json({{"a", 1}, {"2", "b"}}));
  EXPECT_EQ(PickleToJson(*PickleDictGet(**root, "epoch")), 3);
}

INSTANTIATE_TEST_SUITE_P(Protocols, PickleNamespaceTest,
                         ::testing::Values(kNamespaceProtocol2, kNamespaceProtocol4));

TEST(PickleTest, IntegerTooLargeForInt64IsKeptAsDecimal) {
  PickleArena arena;
  auto root = Unpickle(kNamespaceProtocol2, &arena);
  ASSERT_TRUE(root.ok());
  const PickleValue* seed = PickleDictGet(*PickleDictGet(**root, "args")->state, "seed");
  ASSERT_TRUE(seed->is(Kind::kBigInt));
  EXPECT_EQ(seed->str, "18446744073709551617");
  EXPECT_EQ(PickleToJson(*seed), "18446744073709551617");
}

TEST(PickleTest, EveryTruncationIsAnError) {
  for (const std::string* data : {&kNamespaceProtocol2, &kNamespaceProtocol4}) {
    for (size_t n = 0; n < data->size(); ++n) {
      PickleArena arena;
      EXPECT_FALSE(Unpickle(std::string_view(*data).substr(0, n), &arena).ok()) << n;
    }
  }
}

TEST(PickleTest, RejectsMalformedPrograms) {
  const std::vector<std::string> bad = {
      "",
      Bytes("\x80\x09N."),                 // Unknown protocol.
      Bytes("\x80\x02."),                  // STOP on an empty stack.
      Bytes("\x80\x02Na."),                // APPEND without a list.
      Bytes("\x80\x02(]a."),               // APPEND cannot reach below a MARK.
      Bytes("\x80\x02h\x05."),             // BINGET of a missing memo entry.
      Bytes("\x80\x02X\xff\xff\xff\xff."),  // String longer than the data.
      Bytes("\x80\x02\x8e\xff\xff\xff\xff\xff\xff\xff\xff."),  // BINBYTES8 likewise.
      Bytes("\x80\x02\x8b\xff\xff\xff\xff."),                  // Negative LONG4 length.
      Bytes("\x80\x02t."),                 // TUPLE without a MARK.
      Bytes("\x80\x02}(Nu."),              // SETITEMS with an odd count.
      Bytes("\x80\x02K\x01K\x02R."),       // Calling an int.
      Bytes("\x80\x02\xfe."),              // Unknown opcode.
      Bytes("\x80\x02\x95\xff\x00\x00\x00\x00\x00\x00\x00N."),  // Frame past the end.
      Bytes("\x80\x02\x97."),              // Out-of-band buffers are not supported.
  };
  for (const std::string& data : bad) {
    PickleArena arena;
    auto result = Unpickle(data, &arena);
    EXPECT_FALSE(result.ok()) << ::testing::PrintToString(data);
    if (!result.ok()) {
      EXPECT_NE(result.status().message().find("pickle"), std::string::npos);
    }
  }
}

TEST(PickleTest, SurvivesRandomCorruption) {
  std::mt19937 rng(7);
  int accepted = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string data = round % 2 ? kNamespaceProtocol2 : kNamespaceProtocol4;
    for (int flips = 1 + round % 4; flips > 0; --flips) {
      data[rng() % data.size()] = static_cast<char>(rng());
    }
    PickleArena arena;
    auto result = Unpickle(data, &arena);
    if (result.ok()) {
      ++accepted;
      PickleToJson(**result).dump();  // Must not throw either.
    }
  }
  EXPECT_LT(accepted, 2000);
}

TEST(PickleTest, SelfReferenceDoesNotRecurseForever) {
  // l = []; l.append(l); {'x': l}
  PickleArena arena;
  auto root = Unpickle(Bytes("\x80\x02}q\x00X\x01\x00\x00\x00x]q\x01h\x01" "as."), &arena);
  ASSERT_TRUE(root.ok()) << root.status();
  const std::string dumped = PickleToJson(**root).dump();
  EXPECT_NE(dumped.find("<...>"), std::string::npos);
}

// Found by fuzz_pickle: a list holding itself twice doubles at every level,
// and a 170-byte pickle of the kind took 2 s to convert; the conversion now
// stops at 4096 values.
TEST(PickleTest, SelfReferenceTwiceStaysSmall) {
  // l = []; l.append(l); l.append(l)
  PickleArena arena;
  auto root = Unpickle(Bytes("\x80\x02]q\x00(h\x00h\x00" "e."), &arena);
  ASSERT_TRUE(root.ok()) << root.status();
  const std::string dumped = PickleToJson(**root).dump();
  EXPECT_NE(dumped.find("<...>"), std::string::npos);
  EXPECT_LT(dumped.size(), size_t{64} << 10);
}

// Found by fuzz_checkpoint: a 1446-byte archive whose record declared 4 GiB
// made LibTorch's reader allocate it; sizes are now checked first.
TEST(CheckpointTest, ARecordLargerThanTheFileIsRefusedBeforeItIsRead) {
  const std::string path =
      std::string(CLCA_TEST_DATA) + "/../../fuzz/corpus/fuzz_checkpoint/oom_record_size_4gib.pth";
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(path);
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(checkpoint.status().message().find("declares 4294967295 bytes"), std::string::npos)
      << checkpoint.status();
}

TEST(PickleTest, WriterOutputReadsBack) {
  PickleWriter w;
  const std::vector<int64_t> ints = {0,       255,     256,    65535,  65536, -1, -256,
                                     INT32_MIN, INT32_MAX, int64_t{1} << 40, INT64_MIN, INT64_MAX};
  w.EmptyList();
  w.Mark();
  for (int64_t i : ints) w.Int(i);
  w.Float(1.0);
  w.Float(-0.1);
  w.String("h\xc3\xa9llo");
  w.None();
  w.Bool(true);
  w.Mark();
  w.EmptyTuple();
  w.Tuple();
  w.EmptyDict();
  w.Mark();
  w.String("k");
  w.Int(1);
  w.SetItems();
  w.Appends();
  w.Stop();
  PickleArena arena;
  auto root = Unpickle(w.data(), &arena);
  ASSERT_TRUE(root.ok()) << root.status();
  const nlohmann::json json = PickleToJson(**root);
  ASSERT_EQ(json.size(), ints.size() + 7);
  for (size_t i = 0; i < ints.size(); ++i) EXPECT_EQ(json[i].get<int64_t>(), ints[i]) << i;
  EXPECT_TRUE(json[ints.size()].is_number_float());
  EXPECT_EQ(json[ints.size() + 1].get<double>(), -0.1);
  EXPECT_EQ(json[ints.size() + 2], "h\xc3\xa9llo");
  EXPECT_TRUE(json[ints.size() + 3].is_null());
  EXPECT_EQ(json[ints.size() + 4], true);
  EXPECT_EQ(json[ints.size() + 5], nlohmann::json::array({nlohmann::json::array()}));
  EXPECT_EQ(json[ints.size() + 6], nlohmann::json({{"k", 1}}));
}

// _rebuild_tensor_v2 of FloatStorage `key` of `numel` with the given view.
void WriteTensorRef(PickleWriter* w, const std::string& key, int64_t numel, int64_t offset,
                    std::vector<int64_t> size, std::vector<int64_t> stride) {
  w->Global("torch._utils", "_rebuild_tensor_v2");
  w->Mark();
  w->Mark();
  w->String("storage");
  w->Global("torch", "FloatStorage");
  w->String(key);
  w->String("cpu");
  w->Int(numel);
  w->Tuple();
  w->PersistentId();
  w->Int(offset);
  for (const auto* dims : {&size, &stride}) {
    w->Mark();
    for (int64_t d : *dims) w->Int(d);
    w->Tuple();
  }
  w->Bool(false);
  w->Global("collections", "OrderedDict");
  w->EmptyTuple();
  w->Reduce();
  w->Tuple();
  w->Reduce();
}

std::string TensorPickle(int64_t numel, int64_t offset, std::vector<int64_t> size,
                         std::vector<int64_t> stride) {
  PickleWriter w;
  WriteTensorRef(&w, "0", numel, offset, std::move(size), std::move(stride));
  w.Stop();
  return w.data();
}

TEST(PickleTest, TensorViewsMustFitTheirStorage) {
  PickleArena arena;
  auto ok = Unpickle(TensorPickle(12, 2, {2, 5}, {5, 1}), &arena);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(DescribePickleValue(**ok), "tensor(FloatStorage, [2, 5])");
  EXPECT_TRUE(Unpickle(TensorPickle(12, 0, {0, 100}, {1, 1}), &arena).ok());
  EXPECT_FALSE(Unpickle(TensorPickle(12, 3, {2, 5}, {5, 1}), &arena).ok());
  EXPECT_FALSE(Unpickle(TensorPickle(12, 0, {2}, {1, 1}), &arena).ok());
  EXPECT_FALSE(Unpickle(TensorPickle(12, 0, {-1}, {1}), &arena).ok());
  EXPECT_FALSE(Unpickle(TensorPickle(12, 0, {int64_t{1} << 40, 1 << 30}, {1 << 30, 1}), &arena).ok());
}

// ---------------------------------------------------------------------------
// The reference checkpoints.

struct ParityCase {
  std::string file;
  std::string format;  // checkpoint_format in the case's .json
  size_t num_keys;
  int64_t pos_tokens;
};

const std::vector<ParityCase>& ParityCases() {
  static const auto* cases = new std::vector<ParityCase>{
      {"ats_kr0.25_clca.pth", "args", 165, 198},
      {"dpcknn_kr0.5_clca.pth", "args", 171, 198},
      {"dyvit_kr0.5_clca.pth", "args", 195, 198},
      {"evit_clip_kr0.1_clca.pth", "args", 166, 198},
      {"evit_deit3_kr0.25_clca.pth", "args", 189, 196},
      {"evit_kr0.1_base.pth", "args", 152, 197},
      {"evit_kr0.1_clca.pth", "train_script", 165, 198},
      {"evit_kr0.5_clca.pth", "args", 165, 198},
      {"patchmerger_kr0.5_clca.pth", "args", 174, 198},
      {"sit_kr0.5_clca.pth", "args", 186, 198},
      {"tome_kr0.5_clca.pth", "half", 165, 198},
      {"topk_kr0.25_clca.pth", "args", 165, 198},
      {"vit_base.pth", "bare", 152, 197},
      {"vit_clca.pth", "args", 165, 198},
  };
  return *cases;
}

TEST(ParityCheckpointTest, TableCoversEveryCheckpoint) {
  size_t found = 0;
  for (const auto& e : fs::directory_iterator(ParityPath(""))) {
    if (e.path().extension() == ".pth") ++found;
  }
  EXPECT_EQ(found, ParityCases().size());
}

TEST(ParityCheckpointTest, EveryCheckpointLoads) {
  for (const ParityCase& c : ParityCases()) {
    SCOPED_TRACE(c.file);
    std::ifstream info(ParityPath(c.file.substr(0, c.file.size() - 4) + ".json"));
    EXPECT_EQ(nlohmann::json::parse(info)["checkpoint_format"], c.format);

    const Checkpoint& ck = Load(c.file);
    EXPECT_EQ(ck.format, "torch_zip");
    EXPECT_EQ(ck.source_key, c.format == "bare" ? "" : "model");
    EXPECT_EQ(ck.state_dict.size(), c.num_keys);
    EXPECT_EQ(ck.args.is_object(), c.format == "args" || c.format == "train_script");
    EXPECT_EQ(ck.state_dict.at(0).first, "cls_token");
    EXPECT_EQ(Find(ck.state_dict, "pos_embed").sizes(), torch::IntArrayRef({1, c.pos_tokens, 48}));
    EXPECT_EQ(Find(ck.state_dict, "patch_embed.proj.weight").sizes(),
              torch::IntArrayRef({48, 3, 16, 16}));
    for (const auto& [name, t] : ck.state_dict) {
      EXPECT_TRUE(t.is_contiguous()) << name;
      EXPECT_EQ(t.device(), torch::kCPU) << name;
      const bool counter = name.find("num_batches_tracked") != std::string::npos;
      EXPECT_EQ(t.scalar_type(), counter ? torch::kInt64 : torch::kFloat32) << name;
    }
  }
}

TEST(ParityCheckpointTest, TrainScriptArgs) {
  const nlohmann::json& args = Load("evit_kr0.1_clca.pth").args;
  EXPECT_EQ(args["model"], "evit_vit_tiny_patch16_224");
  EXPECT_EQ(args["input_size"], 224);
  EXPECT_EQ(args["num_classes"], 7);
  EXPECT_EQ(args["lr"].get<double>(), 0.0001);
  EXPECT_EQ(args["seed"], 11);
  ASSERT_EQ(args["keep_rate"].size(), 1u);
  EXPECT_TRUE(args["keep_rate"][0].is_number_float());
  EXPECT_EQ(args["keep_rate"][0].get<double>(), 0.1);
  EXPECT_EQ(args["reduction_loc"], nlohmann::json({3, 6, 9}));
  EXPECT_EQ(args["clc"], true);
  EXPECT_EQ(args["clc_include_gap"], true);
  EXPECT_EQ(args["clc_pool_cls"], false);
  EXPECT_EQ(args["num_clr"], 1);
  EXPECT_EQ(args["ifa_head"], true);
  EXPECT_EQ(args["ifa_dws_conv_groups"], 2);
  EXPECT_EQ(args["debugging"], false);
  EXPECT_EQ(args.size(), 16u);

  const nlohmann::json& vit_args = Load("vit_clca.pth").args;
  EXPECT_EQ(vit_args["model"], "vit_tiny_patch16_224");
  EXPECT_EQ(vit_args["keep_rate"], nlohmann::json::array());
}

void ExpectSameKeysAndShapes(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.sizes(), b[i].second.sizes()) << a[i].first;
  }
}

TEST(ParityCheckpointTest, FormatsAgreeWhereTheyOverlap) {
  // tome_kr0.5_clca.pth is vit_clca.pth's weights in float16.
  const StateDict& half = Load("tome_kr0.5_clca.pth").state_dict;
  const StateDict& full = Load("vit_clca.pth").state_dict;
  ExpectSameKeysAndShapes(half, full);
  for (size_t i = 0; i < half.size() && i < full.size(); ++i) {
    torch::Tensor expected = full[i].second;
    if (expected.is_floating_point()) expected = expected.to(torch::kFloat16).to(torch::kFloat32);
    EXPECT_EQ(half[i].second.scalar_type(), expected.scalar_type()) << half[i].first;
    EXPECT_TRUE(torch::equal(half[i].second, expected)) << half[i].first;
  }
  // The bare state dict equals the same weights saved with args.
  const StateDict& bare = Load("vit_base.pth").state_dict;
  const StateDict& with_args = Load("evit_kr0.1_base.pth").state_dict;
  ExpectSameKeysAndShapes(bare, with_args);
  for (size_t i = 0; i < bare.size() && i < with_args.size(); ++i) {
    EXPECT_TRUE(torch::equal(bare[i].second, with_args[i].second)) << bare[i].first;
  }
  // The training-script checkpoint shares the head with vit_clca.pth.
  const StateDict& trained = Load("evit_kr0.1_clca.pth").state_dict;
  ExpectSameKeysAndShapes(trained, full);
  EXPECT_TRUE(torch::equal(Find(trained, "head.weight"), Find(full, "head.weight")));
}

TEST(ParityCheckpointTest, ExpectedOutputFilesLoad) {
  auto ck = LoadCheckpoint(ParityPath("vit_clca.expected.pt"));
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->source_key, "");
  ASSERT_EQ(ck->state_dict.size(), 3u);
  EXPECT_EQ(ck->state_dict[0].first, "input");
  EXPECT_EQ(ck->state_dict[0].second.sizes(), torch::IntArrayRef({2, 3, 224, 224}));
  EXPECT_EQ(ck->state_dict[0].second.scalar_type(), torch::kFloat32);  // Stored as float16.
  EXPECT_EQ(ck->state_dict[2].second.scalar_type(), torch::kInt64);
  EXPECT_TRUE(ck->args.is_null());
}

// ---------------------------------------------------------------------------
// safetensors.

std::string SafetensorsBytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename T>
std::string Raw(std::vector<T> values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TEST(SafetensorsTest, ReadsHandWrittenFile) {
  TempDir dir;
  const std::string data = Raw<float>({1, 2, 3, 4, 5, 6}) +            // F32 [2, 3] at 0
                           Raw<uint16_t>({0x3c00, 0xc000, 0x3800, 0x7bff}) +  // F16 [4] at 24
                           Raw<uint16_t>({0x3f80, 0xc000}) +             // BF16 [2] at 32
                           Raw<int64_t>({7, -8}) +                       // I64 [2] at 36
                           Raw<uint8_t>({1, 0, 1});                      // BOOL [3] at 52
  const std::string header =
      R"({"module.w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("module.h":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},)"
      R"("module.b":{"dtype":"BF16","shape":[2],"data_offsets":[32,36]},)"
      R"("__metadata__":{"format":"pt","args":"{\"model\": \"vit_tiny_patch16_224\", \"keep_rate\": [1.0]}"},)"
      R"("module.n":{"dtype":"I64","shape":[2],"data_offsets":[36,52]},)"
      R"("module.m":{"dtype":"BOOL","shape":[3],"data_offsets":[52,55]}})"
      "   ";  // Header padding is allowed.
  // Named .bin: recognised by content as well as by extension.
  for (const std::string name : {"weights.safetensors", "weights.bin"}) {
    WriteFile(dir.File(name), SafetensorsBytes(header, data));
    auto ck = LoadCheckpoint(dir.File(name));
    ASSERT_TRUE(ck.ok()) << ck.status();
    EXPECT_EQ(ck->format, "safetensors");
    EXPECT_EQ(ck->source_key, "");
    ASSERT_EQ(ck->state_dict.size(), 5u);
    const std::vector<std::string> names = {"w", "h", "b", "n", "m"};
    for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(ck->state_dict[i].first, names[i]);
    EXPECT_TRUE(torch::equal(ck->state_dict[0].second,
                             torch::arange(1, 7, torch::kFloat32).reshape({2, 3})));
    EXPECT_TRUE(torch::equal(ck->state_dict[1].second,
                             torch::tensor({1.0f, -2.0f, 0.5f, 65504.0f})));
    EXPECT_TRUE(torch::equal(ck->state_dict[2].second, torch::tensor({1.0f, -2.0f})));
    EXPECT_TRUE(torch::equal(ck->state_dict[3].second, torch::tensor({7, -8}, torch::kInt64)));
    EXPECT_TRUE(torch::equal(ck->state_dict[4].second, torch::tensor({true, false, true})));
    EXPECT_EQ(ck->args["model"], "vit_tiny_patch16_224");
    EXPECT_TRUE(ck->args["keep_rate"][0].is_number_float());
  }
  auto raw = ReadSafetensors(dir.File("weights.bin"));
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->tensors[1].second.scalar_type(), torch::kFloat16);
  EXPECT_EQ(raw->metadata["format"], "pt");
}

TEST(SafetensorsTest, RejectsInconsistentFiles) {
  TempDir dir;
  const std::string data = Raw<float>({1, 2, 3, 4});
  auto entry = [](const std::string& body) { return "{\"t\":{" + body + "}}"; };
  const std::vector<std::string> files = {
      SafetensorsBytes(entry(R"("dtype":"F32","shape":[4],"data_offsets":[0,20])"), data),
      SafetensorsBytes(entry(R"("dtype":"F32","shape":[3],"data_offsets":[0,16])"), data),
      SafetensorsBytes(entry(R"("dtype":"F32","shape":[2],"data_offsets":[8,0])"), data),
      SafetensorsBytes(entry(R"("dtype":"C64","shape":[2],"data_offsets":[0,16])"), data),
      SafetensorsBytes(entry(R"("dtype":"F32","shape":[-4],"data_offsets":[0,16])"), data),
      SafetensorsBytes(entry(R"("dtype":"F32","shape":[4],"data_offsets":[0])"), data),
      SafetensorsBytes(entry(R"("dtype":"F32","shape":[4],"data_offsets":[0,16])"), data)
          .substr(0, 40),
      SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                       data),  // Overlapping tensors.
      SafetensorsBytes("{\"t\": [1, 2", data),
      SafetensorsBytes("[]", data),
      std::string("\xff\xff\xff\xff\x00\x00\x00\x00{}", 10),
  };
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string path = dir.File("bad" + std::to_string(i) + ".safetensors");
    WriteFile(path, files[i]);
    auto ck = LoadCheckpoint(path);
    EXPECT_FALSE(ck.ok()) << i;
    if (!ck.ok()) {
      EXPECT_NE(ck.status().message().find(path), std::string::npos) << ck.status();
    }
  }
}

// ---------------------------------------------------------------------------
// Saving.

TEST(SaveCheckpointTest, RoundTrip) {
  TempDir dir;
  StateDict sd = {
      {"w", torch::arange(12, torch::kFloat32).reshape({3, 4}).t()},  // Not contiguous.
      {"h", torch::tensor({0.5f, -1.25f, 3.0f}).to(torch::kFloat16)},
      {"count", torch::tensor(5, torch::kInt64)},
      {"mask", torch::tensor({true, false})},
      {"empty", torch::zeros({0, 3})},
      {"d", torch::tensor({0.1, 0.2}, torch::kFloat64)},
  };
  const nlohmann::json args = {
      {"model", "evit_vit_tiny_patch16_224"}, {"keep_rate", {1.0}}, {"lr", 0.0001},
      {"reduction_loc", {3, 6, 9}},           {"clc", true},        {"none", nullptr},
      {"nested", {{"a", "b"}, {"c", {1.5}}}}, {"big", int64_t{1} << 40}, {"neg", -7},
  };
  const std::string path = dir.File("out.pth");
  ASSERT_TRUE(SaveCheckpoint(path, sd, args).ok());
  EXPECT_EQ(dir.Listing(), std::vector<std::string>{"out.pth"});  // No temporary left.

  auto ck = LoadCheckpoint(path);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->format, "torch_zip");
  EXPECT_EQ(ck->source_key, "model");
  ASSERT_EQ(ck->state_dict.size(), sd.size());
  for (size_t i = 0; i < sd.size(); ++i) {
    const auto& [name, t] = ck->state_dict[i];
    EXPECT_EQ(name, sd[i].first);
    torch::Tensor expected = sd[i].second;
    if (expected.is_floating_point()) expected = expected.to(torch::kFloat32);
    EXPECT_EQ(t.scalar_type(), expected.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(t, expected)) << name;
  }
  EXPECT_EQ(ck->args, args);
  EXPECT_EQ(ck->args.dump(), args.dump());  // Same types too: 1.0 stays 1.0.

  // LibTorch's own reader agrees.
  const std::string bytes = ReadFile(path);
  const c10::IValue loaded = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  const auto model = loaded.toGenericDict().at("model").toGenericDict();
  ASSERT_EQ(model.size(), sd.size());
  for (const auto& [name, t] : sd) {
    EXPECT_TRUE(torch::equal(model.at(name).toTensor(), t.contiguous())) << name;
  }
  EXPECT_EQ(loaded.toGenericDict().at("args").toGenericDict().at("model").toStringRef(),
            "evit_vit_tiny_patch16_224");
}

TEST(SaveCheckpointTest, WithoutArgsAndOverwriting) {
  TempDir dir;
  const std::string path = dir.File("out.pth");
  WriteFile(path, "old contents");
  ASSERT_TRUE(SaveCheckpoint(path, {{"module.a", torch::ones({2})}, {"module.b", torch::ones({1})}})
                  .ok());
  auto ck = LoadCheckpoint(path);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_TRUE(ck->args.is_null());
  ASSERT_EQ(ck->state_dict.size(), 2u);
  EXPECT_EQ(ck->state_dict[0].first, "a");  // DataParallel prefix stripped.
  EXPECT_EQ(ck->state_dict[1].first, "b");

  ASSERT_TRUE(SaveCheckpoint(path, {{"module.a", torch::ones({2})}, {"b", torch::ones({1})}}).ok());
  ck = LoadCheckpoint(path);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->state_dict[0].first, "module.a");  // Not every name has it.
}

TEST(SaveCheckpointTest, ResavedReferenceCheckpointIsIdentical) {
  TempDir dir;
  const Checkpoint& original = Load("evit_kr0.1_clca.pth");
  ASSERT_TRUE(SaveCheckpoint(dir.File("r.pth"), original.state_dict, original.args).ok());
  auto ck = LoadCheckpoint(dir.File("r.pth"));
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->args.dump(), original.args.dump());
  ASSERT_EQ(ck->state_dict.size(), original.state_dict.size());
  for (size_t i = 0; i < original.state_dict.size(); ++i) {
    EXPECT_EQ(ck->state_dict[i].first, original.state_dict[i].first);
    EXPECT_TRUE(torch::equal(ck->state_dict[i].second, original.state_dict[i].second));
  }
}

TEST(SaveCheckpointTest, RejectsBadInput) {
  TempDir dir;
  const std::string path = dir.File("x.pth");
  EXPECT_FALSE(SaveCheckpoint(path, {{"a", torch::ones(1)}, {"a", torch::ones(1)}}).ok());
  EXPECT_FALSE(SaveCheckpoint(path, {{"a", torch::Tensor()}}).ok());
  EXPECT_FALSE(SaveCheckpoint(path, {{"a", torch::ones(1, torch::kComplexFloat)}}).ok());
  EXPECT_FALSE(SaveCheckpoint(path, {{"a", torch::ones(1)}}, nlohmann::json::array()).ok());
  EXPECT_FALSE(SaveCheckpoint(dir.File("no/such/dir/x.pth"), {{"a", torch::ones(1)}}).ok());
  EXPECT_TRUE(dir.Listing().empty());
}

// ---------------------------------------------------------------------------
// Corrupt input: always an error, never a crash.

void ExpectError(const std::string& path, const std::string& what) {
  auto ck = LoadCheckpoint(path);
  EXPECT_FALSE(ck.ok()) << what;
  if (!ck.ok()) {
    EXPECT_NE(ck.status().message().find(path), std::string::npos) << ck.status();
  }
}

TEST(CorruptCheckpointTest, MissingEmptyAndDirectory) {
  TempDir dir;
  auto missing = LoadCheckpoint(dir.File("missing.pth"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  WriteFile(dir.File("empty.pth"), "");
  ExpectError(dir.File("empty.pth"), "empty");
  ExpectError(dir.File(""), "directory");
}

TEST(CorruptCheckpointTest, RandomBytes) {
  TempDir dir;
  std::mt19937 rng(3);
  for (size_t size : {1, 7, 8, 100, 5000}) {
    for (const std::string prefix : {"", "PK\x03\x04", "\x80\x02"}) {
      std::string bytes = prefix;
      while (bytes.size() < size) bytes.push_back(static_cast<char>(rng()));
      const std::string path = dir.File("random.pth");
      WriteFile(path, bytes);
      ExpectError(path, "random " + std::to_string(size));
    }
  }
}

TEST(CorruptCheckpointTest, TruncatedCopies) {
  TempDir dir;
  const std::string bytes = ReadFile(ParityPath("vit_clca.pth"));
  ASSERT_GT(bytes.size(), 100000u);
  const size_t n = bytes.size();
  for (size_t cut : {size_t{1}, size_t{4}, size_t{30}, size_t{100}, size_t{1000}, n / 4, n / 2,
                     3 * n / 4, n - 1000, n - 100, n - 22, n - 1}) {
    const std::string path = dir.File("cut.pth");
    WriteFile(path, bytes.substr(0, cut));
    ExpectError(path, "cut at " + std::to_string(cut));
  }
}

TEST(CorruptCheckpointTest, FlippedBytesNeverCrash) {
  TempDir dir;
  const std::string bytes = ReadFile(ParityPath("vit_clca.expected.pt"));
  std::mt19937 rng(5);
  for (int round = 0; round < 40; ++round) {
    std::string copy = bytes;
    // Half of the rounds hit the zip directory and data.pkl near the ends.
    const size_t pos = round % 2 ? rng() % copy.size() : copy.size() - 1 - rng() % 600;
    copy[pos] = static_cast<char>(copy[pos] ^ (1 + rng() % 255));
    const std::string path = dir.File("flipped.pt");
    WriteFile(path, copy);
    auto ck = LoadCheckpoint(path);  // Either outcome is fine; crashing is not.
    if (!ck.ok()) {
      EXPECT_NE(ck.status().message().find(path), std::string::npos);
    }
  }
}

TEST(CorruptCheckpointTest, BadArchiveContents) {
  TempDir dir;
  std::mt19937 rng(11);
  std::string garbage(4000, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  const std::string real_pickle = TensorPickle(4, 0, {4}, {1});
  const std::string dict_pickle = Bytes("\x80\x02}(X\x01\x00\x00\x00w") +
                                  real_pickle.substr(2, real_pickle.size() - 3) + "u.";
  const std::string floats = Raw<float>({1, 2, 3, 4});
  const std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>>
      archives = {
          {"garbage pickle", {{"data.pkl", garbage}}},
          {"truncated pickle", {{"data.pkl", dict_pickle.substr(0, dict_pickle.size() / 2)}}},
          {"missing storage record", {{"data.pkl", dict_pickle}}},
          {"short storage record", {{"data.pkl", dict_pickle}, {"data/0", floats.substr(0, 12)}}},
          {"no data.pkl", {{"constants.pkl", Bytes("\x80\x02N.")}, {"data/0", floats}}},
          {"not a dict", {{"data.pkl", real_pickle}, {"data/0", floats}}},
          {"a list", {{"data.pkl", Bytes("\x80\x02]q\x00.")}}},
          {"empty dict", {{"data.pkl", Bytes("\x80\x02}q\x00.")}}},
          {"model not a dict", {{"data.pkl", Bytes("\x80\x02}(X\x05\x00\x00\x00modelK\x01u.")}}},
          {"big-endian", {{"data.pkl", dict_pickle}, {"data/0", floats}, {"byteorder", "big"}}},
      };
  for (const auto& [what, records] : archives) {
    const std::string path = dir.File("archive.pth");
    WriteFile(path, MakeArchive(records));
    ExpectError(path, what);
  }
  // The same archive with the storage record present is fine.
  const std::string path = dir.File("good.pth");
  WriteFile(path, MakeArchive({{"data.pkl", dict_pickle}, {"data/0", floats}}));
  auto ck = LoadCheckpoint(path);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_TRUE(torch::equal(ck->state_dict.at(0).second, torch::tensor({1.0f, 2.0f, 3.0f, 4.0f})));
}

TEST(CheckpointTest, TensorsSharingAStorageAreIndependent) {
  TempDir dir;
  PickleWriter w;
  w.EmptyDict();
  w.Mark();
  w.String("full");
  WriteTensorRef(&w, "0", 4, 0, {4}, {1});
  w.String("tail");
  WriteTensorRef(&w, "0", 4, 2, {2}, {1});
  w.String("again");
  WriteTensorRef(&w, "0", 4, 0, {4}, {1});
  w.String("strided");
  WriteTensorRef(&w, "0", 4, 1, {2, 2}, {0, 2});
  w.SetItems();
  w.Stop();
  const std::string path = dir.File("shared.pth");
  WriteFile(path, MakeArchive({{"data.pkl", w.data()}, {"data/0", Raw<float>({1, 2, 3, 4})}}));
  auto ck = LoadCheckpoint(path);
  ASSERT_TRUE(ck.ok()) << ck.status();
  ASSERT_EQ(ck->state_dict.size(), 4u);
  ck->state_dict[0].second.fill_(0);
  EXPECT_TRUE(torch::equal(ck->state_dict[1].second, torch::tensor({3.0f, 4.0f})));
  EXPECT_TRUE(torch::equal(ck->state_dict[2].second, torch::tensor({1.0f, 2.0f, 3.0f, 4.0f})));
  EXPECT_TRUE(torch::equal(ck->state_dict[3].second, torch::tensor({{2.0f, 4.0f}, {2.0f, 4.0f}})));
  EXPECT_TRUE(ck->state_dict[3].second.is_contiguous());
}

TEST(CorruptCheckpointTest, OneStorageNamedOverAndOverIsRefused) {
  TempDir dir;
  constexpr int64_t kNumel = 1 << 18;  // 1 MiB of float32.
  PickleWriter w;
  w.EmptyDict();
  w.Mark();
  for (int i = 0; i < 200; ++i) {
    w.String("t" + std::to_string(i));
    WriteTensorRef(&w, "0", kNumel, 0, {kNumel}, {1});
  }
  w.SetItems();
  w.Stop();
  const std::string path = dir.File("repeated.pth");
  WriteFile(path, MakeArchive({{"data.pkl", w.data()},
                               {"data/0", std::string(kNumel * sizeof(float), '\0')}}));
  ExpectError(path, "repeated storage");
}

TEST(CorruptCheckpointTest, LegacyAndUnknownFormats) {
  TempDir dir;
  WriteFile(dir.File("legacy.pth"), Bytes("\x80\x02\x8a\x0alZ\xfc\x9c" "F\xf9 j\xa8P\x19."));
  auto legacy = LoadCheckpoint(dir.File("legacy.pth"));
  ASSERT_FALSE(legacy.ok());
  EXPECT_NE(legacy.status().message().find("legacy"), std::string::npos);
  WriteFile(dir.File("text.pth"), "hello world, this is not a checkpoint");
  ExpectError(dir.File("text.pth"), "text");
}

}  // namespace
}  // namespace clca
