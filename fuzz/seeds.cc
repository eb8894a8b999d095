// Writes the generated seeds of the fuzz targets into DIR/<target>/: tiny
// images of every format the server decodes, torch.save archives and
// safetensors files from the project's own writers, the pickles inside those
// archives beside hand-assembled pickle programs, and classification requests.
// The JSON seeds of the configuration targets are written by hand.
//
//   fuzz_seeds fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include <caffe2/serialize/inline_container.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "clca/v1/classifier.pb.h"
#include "models/io/safetensors.h"
#include "models/save/checkpoint_writer.h"

namespace {

namespace fs = std::filesystem;

fs::path root;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_seeds: %s\n", what.c_str());
  std::exit(1);
}

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(root / target);
  std::ofstream out(root / target / name, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Fail("cannot write " + (root / target / name).string());
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// ---------------------------------------------------------------- images

// A deterministic gradient of `channels` channels (8 or 16 bits).
cv::Mat Pattern(int width, int height, int channels, int depth = CV_8U) {
  cv::Mat mat(height, width, CV_MAKETYPE(depth, channels));
  const int scale = depth == CV_16U ? 257 : 1;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        const int v = ((x * 53 + y * 97 + c * 71) % 256) * scale;
        if (depth == CV_16U) {
          mat.ptr<uint16_t>(y)[x * channels + c] = static_cast<uint16_t>(v);
        } else {
          mat.ptr<uint8_t>(y)[x * channels + c] = static_cast<uint8_t>(v);
        }
      }
    }
  }
  return mat;
}

std::string Encode(const char* ext, const cv::Mat& mat, const std::vector<int>& params = {}) {
  std::vector<uint8_t> buffer;
  if (!cv::imencode(ext, mat, buffer, params)) Fail(std::string("cannot encode ") + ext);
  return std::string(buffer.begin(), buffer.end());
}

uint32_t Crc32(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void PutBe32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

void Images() {
  const std::string png = Encode(".png", Pattern(5, 4, 3));
  Write("fuzz_image", "rgb_5x4.png", png);
  Write("fuzz_image", "rgba_4x4.png", Encode(".png", Pattern(4, 4, 4)));
  Write("fuzz_image", "gray_6x3.png", Encode(".png", Pattern(6, 3, 1)));
  Write("fuzz_image", "rgb16_3x3.png", Encode(".png", Pattern(3, 3, 3, CV_16U)));
  Write("fuzz_image", "gray16_3x2.png", Encode(".png", Pattern(3, 2, 1, CV_16U)));
  Write("fuzz_image", "rgb_8x8.jpg", Encode(".jpg", Pattern(8, 8, 3), {cv::IMWRITE_JPEG_QUALITY, 50}));
  Write("fuzz_image", "gray_8x8.jpg", Encode(".jpg", Pattern(8, 8, 1), {cv::IMWRITE_JPEG_QUALITY, 50}));
  Write("fuzz_image", "progressive_16x8.jpg",
        Encode(".jpg", Pattern(16, 8, 3),
               {cv::IMWRITE_JPEG_QUALITY, 40, cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  Write("fuzz_image", "rgb_4x4.webp", Encode(".webp", Pattern(4, 4, 3), {cv::IMWRITE_WEBP_QUALITY, 50}));
  Write("fuzz_image", "lossless_4x4.webp",
        Encode(".webp", Pattern(4, 4, 4), {cv::IMWRITE_WEBP_QUALITY, 101}));
  Write("fuzz_image", "rgb_5x3.bmp", Encode(".bmp", Pattern(5, 3, 3)));
  Write("fuzz_image", "gray_4x4.bmp", Encode(".bmp", Pattern(4, 4, 1)));
  Write("fuzz_image", "rgb_3x3.tiff", Encode(".tiff", Pattern(3, 3, 3)));
  Write("fuzz_image", "rgb_3x3.ppm", Encode(".ppm", Pattern(3, 3, 3)));
  Write("fuzz_image", "gray_3x3.pgm", Encode(".pgm", Pattern(3, 3, 1)));

  // Invalid: cut short, and a header that claims far more pixels than allowed.
  Write("fuzz_image", "truncated.png", png.substr(0, 40));
  std::string huge = png;
  PutBe32(&huge, 16, 100000);
  PutBe32(&huge, 20, 100000);
  PutBe32(&huge, 29, Crc32(huge.substr(12, 17)));
  Write("fuzz_image", "huge_header.png", huge);
  std::string jpeg = Encode(".jpg", Pattern(8, 8, 3), {cv::IMWRITE_JPEG_QUALITY, 50});
  const size_t sof = jpeg.find("\xff\xc0");
  if (sof == std::string::npos) Fail("no SOF0 marker in the JPEG seed");
  jpeg[sof + 5] = jpeg[sof + 6] = jpeg[sof + 7] = jpeg[sof + 8] = '\xff';
  Write("fuzz_image", "huge_sof.jpg", jpeg);
}

// ---------------------------------------------------------------- pickles

// Assembles pickle programs opcode by opcode.
class Pickle {
 public:
  Pickle& Op(uint8_t op) {
    data_.push_back(static_cast<char>(op));
    return *this;
  }
  Pickle& Raw(const std::string& bytes) {
    data_ += bytes;
    return *this;
  }
  Pickle& Le(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) data_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Pickle& Proto(int protocol) { return Op(0x80).Le(protocol, 1); }
  Pickle& ShortUnicode(const std::string& s) { return Op(0x8c).Le(s.size(), 1).Raw(s); }
  Pickle& Unicode(const std::string& s) { return Op('X').Le(s.size(), 4).Raw(s); }
  Pickle& Global(const std::string& module, const std::string& name) {
    return Op('c').Raw(module + "\n" + name + "\n");
  }
  Pickle& StackGlobal(const std::string& module, const std::string& name) {
    return ShortUnicode(module).ShortUnicode(name).Op(0x93);
  }
  Pickle& Int1(int v) { return Op('K').Le(v, 1); }
  Pickle& Stop() { return Op('.'); }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

void Pickles() {
  // Plain data in protocol 2: a dict of a list of every integer and float
  // form, booleans and None, a tuple, with memo puts and gets.
  Pickle plain;
  plain.Proto(2).Op('}').Op('q').Le(0, 1).Op('(');
  plain.Unicode("numbers").Op(']').Op('q').Le(1, 1).Op('(');
  plain.Int1(7).Op('M').Le(300, 2).Op('J').Le(0xfffffff6u, 4).Op(0x8a).Le(9, 1).Le(0, 8).Le(1, 1);
  plain.Op('G').Raw(std::string("\x3f\xf8\x00\x00\x00\x00\x00\x00", 8));
  plain.Op(0x88).Op(0x89).Op('N').Op('e');
  plain.Unicode("pair").Int1(1).Int1(2).Op(0x86);
  plain.Unicode("again").Op('h').Le(1, 1);
  plain.Op('u').Stop();
  Write("fuzz_pickle", "plain_p2.pkl", plain.data());

  // Protocol 4 with a frame: the training script's argparse.Namespace,
  // rebuilt with NEWOBJ and given its state with BUILD.
  Pickle ns;
  Pickle body;
  body.StackGlobal("argparse", "Namespace").Op(0x94).Op(')').Op(0x81).Op(0x94).Op('}').Op(0x94);
  body.Op('(').ShortUnicode("model").ShortUnicode("evit_vit_tiny_patch16_224");
  body.ShortUnicode("input_size").Op('M').Le(224, 2);
  body.ShortUnicode("keep_rate").Op(']').Op('G').Raw(std::string("\x3f\xe0\0\0\0\0\0\0", 8)).Op('a');
  body.ShortUnicode("clc").Op(0x88).Op('u').Op('b').Stop();
  ns.Proto(4).Op(0x95).Le(body.data().size(), 8).Raw(body.data());
  Write("fuzz_pickle", "namespace_p4.pkl", ns.data());

  // Python 2 strings, sets, frozensets, LONG4, bytes and bytearrays (protocol 5).
  Pickle mixed;
  mixed.Proto(5).Op(']').Op('(');
  mixed.Op('U').Le(3, 1).Raw("abc").Op('T').Le(2, 4).Raw("\xc3\xa9");
  mixed.Op(0x8f).Op('(').Int1(1).Int1(2).Op(0x90);
  mixed.Op('(').Int1(3).Op(0x91);
  mixed.Op(0x8b).Le(10, 4).Raw(std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x80", 10));
  mixed.Op('C').Le(2, 1).Raw(std::string("\x00\xff", 2)).Op('B').Le(1, 4).Raw("z");
  mixed.Op(0x8e).Le(1, 8).Raw("y").Op(0x96).Le(1, 8).Raw("x");
  mixed.Op(0x8d).Le(2, 8).Raw("hi").Op(0x85).Op('e').Stop();
  Write("fuzz_pickle", "mixed_p5.pkl", mixed.data());

  // Protocol 0 and 1 text opcodes: INT, LONG, FLOAT, PUT and GET, MARK
  // with TUPLE, DICT and LIST, and an OrderedDict by GLOBAL and REDUCE.
  Pickle text;
  text.Global("collections", "OrderedDict").Op(')').Op('R').Raw("p0\n").Op('(');
  text.Raw("I42\n").Raw("L1234567890123L\n").Raw("F0.25\n").Op('t');
  text.Raw("p1\n").Op('(').Raw("g1\n").Raw("I01\n").Op('l').Op('(').Op('d').Op(0x85);
  text.Op('0').Op('(').Op('1').Raw("g0\n").Op('2').Op('0').Stop();
  Write("fuzz_pickle", "text_p0.pkl", text.data());

  // A tensor the way torch.save writes one: _rebuild_tensor_v2 over a
  // storage named by a persistent id.
  Pickle tensor;
  tensor.Proto(2).Global("torch._utils", "_rebuild_tensor_v2").Op('(').Op('(');
  tensor.Unicode("storage").Global("torch", "HalfStorage").Unicode("0").Unicode("cpu").Int1(6);
  tensor.Op('t').Op('Q').Int1(0).Int1(2).Int1(3).Op(0x86).Int1(3).Int1(1).Op(0x86).Op(0x89);
  tensor.Global("collections", "OrderedDict").Op(')').Op('R').Op('t').Op('R').Stop();
  Write("fuzz_pickle", "tensor_p2.pkl", tensor.data());

  // Invalid: no STOP, an unknown opcode, a GET of nothing, an empty stack.
  Write("fuzz_pickle", "truncated.pkl", plain.data().substr(0, plain.data().size() / 2));
  Write("fuzz_pickle", "unknown_opcode.pkl", std::string("\x80\x02\xff.", 4));
  Write("fuzz_pickle", "bad_get.pkl", std::string("\x80\x02h\x07.", 5));
  Write("fuzz_pickle", "empty_stack.pkl", std::string("\x80\x02.", 3));
}

// ---------------------------------------------------------------- checkpoints

std::string DataPkl(const fs::path& archive) {
  caffe2::serialize::PyTorchStreamReader reader(archive.string());
  auto [data, size] = reader.getRecord("data.pkl");
  return std::string(static_cast<const char*>(data.get()), size);
}

void Checkpoints(const fs::path& scratch) {
  const nlohmann::json args = {{"model", "evit_vit_tiny_patch16_224"},
                               {"input_size", 32},
                               {"num_classes", 3},
                               {"keep_rate", {0.5}},
                               {"reduction_loc", {0}},
                               {"clc", true},
                               {"num_clr", 1}};
  struct Variant {
    const char* name;
    clca::StateDict weights;
    nlohmann::json args;
  };
  const torch::Tensor w = torch::arange(6, torch::kFloat32).reshape({2, 3});
  const std::vector<Variant> variants = {
      {"float32_args", {{"head.weight", w}, {"head.bias", torch::zeros({2})}}, args},
      {"float16", {{"head.weight", w.to(torch::kFloat16)}}, nullptr},
      {"bfloat16_int64",
       {{"norm.weight", torch::ones({3}, torch::kBFloat16)},
        {"num_batches_tracked", torch::tensor(int64_t{5})}},
       {{"model", "vit_small_patch16_224"}}},
      {"empty_tensor", {{"pos_embed", torch::zeros({1, 0, 4})}}, nullptr},
  };
  for (const Variant& v : variants) {
    const fs::path zip = scratch / (std::string(v.name) + ".pth");
    absl::Status saved = clca::SaveCheckpoint(zip.string(), v.weights, v.args);
    if (!saved.ok()) Fail(saved.ToString());
    Write("fuzz_checkpoint", std::string(v.name) + ".pth", ReadFile(zip));
    Write("fuzz_pickle", std::string(v.name) + "_data.pkl", DataPkl(zip));

    const fs::path st = scratch / (std::string(v.name) + ".safetensors");
    nlohmann::json metadata = nlohmann::json::object();
    if (!v.args.is_null()) metadata["args"] = v.args.dump();
    absl::Status written = clca::WriteSafetensors(st.string(), v.weights, metadata);
    if (!written.ok()) Fail(written.ToString());
    Write("fuzz_safetensors", std::string(v.name) + ".safetensors", ReadFile(st));
    Write("fuzz_checkpoint", std::string(v.name) + ".safetensors", ReadFile(st));
  }
  const fs::path all = scratch / "dtypes.safetensors";
  absl::Status written = clca::WriteSafetensors(
      all.string(), {{"f64", torch::ones({2}, torch::kFloat64)},
                     {"i32", torch::ones({1, 2}, torch::kInt32)},
                     {"i16", torch::ones({2}, torch::kInt16)},
                     {"i8", torch::ones({3}, torch::kInt8)},
                     {"u8", torch::ones({2, 1}, torch::kUInt8)},
                     {"bool", torch::ones({2}, torch::kBool)},
                     {"scalar", torch::tensor(1.5f)}});
  if (!written.ok()) Fail(written.ToString());
  Write("fuzz_safetensors", "dtypes.safetensors", ReadFile(all));

  // Invalid: a bare pickle (the legacy format), and a header length past the end.
  Write("fuzz_checkpoint", "bare_pickle.pkl", std::string("\x80\x02}q\x00.", 6));
  std::string bad_length = ReadFile(all);
  bad_length[6] = '\x01';
  Write("fuzz_safetensors", "header_too_long.safetensors", bad_length);
}

// ---------------------------------------------------------------- requests

void Requests() {
  const std::string png = Encode(".png", Pattern(8, 8, 3));
  std::string raw(3 * 32 * 32, '\0');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(i * 31);

  auto write = [](const char* name, const clca::v1::ClassifyRequest& request) {
    std::string bytes;
    if (!request.SerializeToString(&bytes)) Fail("cannot serialise a request");
    Write("fuzz_request", name, bytes);
  };
  clca::v1::ClassifyRequest r;
  r.set_model("leafnet");
  r.set_image(png);
  write("image.pb", r);
  r.set_keep_rate(0.25f);
  r.set_top_k(2);
  r.set_version(1);
  write("image_keep_rate_top_k.pb", r);
  r.set_min_keep_rate(0.1f);
  r.clear_keep_rate();
  write("min_keep_rate.pb", r);

  clca::v1::ClassifyRequest raw_request;
  raw_request.set_model("leafnet");
  raw_request.mutable_raw()->set_width(32);
  raw_request.mutable_raw()->set_height(32);
  raw_request.mutable_raw()->set_rgb(raw);
  write("raw.pb", raw_request);

  // Refused: wrong raw size, keep rate, version, model, top_k, image.
  clca::v1::ClassifyRequest bad = raw_request;
  bad.mutable_raw()->set_width(31);
  write("raw_wrong_size.pb", bad);
  bad = r;
  bad.set_keep_rate(5.0f);
  write("keep_rate_too_high.pb", bad);
  bad = r;
  bad.set_version(7);
  write("unknown_version.pb", bad);
  bad = r;
  bad.set_version(-1);
  write("negative_version.pb", bad);
  bad = r;
  bad.set_model("no-such-model");
  write("unknown_model.pb", bad);
  bad = r;
  bad.set_top_k(-3);
  write("negative_top_k.pb", bad);
  bad = r;
  bad.set_image("not an image");
  write("undecodable_image.pb", bad);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds CORPUS_DIR\n");
    return 2;
  }
  root = argv[1];
  const fs::path scratch = fs::temp_directory_path() / "clca-fuzz-seeds";
  fs::create_directories(scratch);
  Images();
  Pickles();
  Checkpoints(scratch);
  Requests();
  fs::remove_all(scratch);
  return 0;
}
