// clca run: logits, token counts and cost of a checkpoint on tensors or images.
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "models/io/checkpoint.h"
#include "models/io/load_model.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "tools/clca/commands.h"
#include "tools/clca/util.h"
#ifdef CLCA_HAVE_PREPROCESS
#include "models/preprocess/preprocess.h"
#endif

namespace clca::tool {
namespace {

bool IsImageFile(const std::string& path) {
  std::string lower = absl::AsciiStrToLower(path);
  for (const char* ext : {".jpg", ".jpeg", ".png", ".bmp", ".webp"}) {
    if (lower.size() >= strlen(ext) && lower.compare(lower.size() - strlen(ext), strlen(ext), ext) == 0) {
      return true;
    }
  }
  return false;
}

// A torch.save'd tensor [B,3,H,W] (or [3,H,W]), or a dict holding one under "input".
absl::StatusOr<torch::Tensor> ReadTensorFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::Tensor t;
  try {
    c10::IValue value = torch::pickle_load(bytes);
    if (value.isTensor()) {
      t = value.toTensor();
    } else if (value.isGenericDict()) {
      for (const auto& entry : value.toGenericDict()) {
        if (entry.key().isString() && entry.key().toStringRef() == "input" && entry.value().isTensor()) {
          t = entry.value().toTensor();
        }
      }
      if (!t.defined()) {
        return absl::InvalidArgumentError(absl::StrCat(path, " is a dict without an 'input' tensor"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(path, " holds neither a tensor nor a dict"));
    }
  } catch (const std::exception& e) {
    // Dicts with Python classes (or other producers) go through our own reader.
    auto ck = LoadCheckpoint(path);
    if (!ck.ok()) return absl::InvalidArgumentError(absl::StrCat(path, " is not a readable tensor file"));
    for (const auto& [name, tensor] : ck->state_dict) {
      if (name == "input") t = tensor;
    }
    if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(path, " has no 'input' tensor"));
  }
  if (!t.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": input must be a floating-point tensor"));
  }
  if (t.dim() == 3) t = t.unsqueeze(0);
  return t.to(torch::kFloat32);
}

absl::StatusOr<torch::Tensor> ReadInput(const std::string& path, int input_size) {
  if (!IsImageFile(path)) return ReadTensorFile(path);
#ifdef CLCA_HAVE_PREPROCESS
  PreprocessOptions options;
  options.input_size = input_size;
  auto t = PreprocessFile(path, options);
  if (!t.ok()) return t.status();
  return t->unsqueeze(0);
#else
  return absl::UnimplementedError("this build has no image preprocessing (OpenCV not found)");
#endif
}

struct RunArgs {
  std::string checkpoint, config, input, output, device = "cpu";
  std::string keep_rate;  // empty: the model's default
};

int Run(const RunArgs& a) {
  auto given = ReadJsonFile(a.config);
  if (!given.ok()) return Fail(given.status());
  ModelOptions options;
  options.device = a.device;
  auto loaded = LoadModel(a.checkpoint, *given, options);
  if (!loaded.ok()) return Fail(loaded.status());
  const ClcaModel& model = *loaded->model;
  double keep_rate = model.config().keep_rate;
  if (!a.keep_rate.empty()) {
    char* end = nullptr;
    keep_rate = std::strtod(a.keep_rate.c_str(), &end);
    if (end == a.keep_rate.c_str() || *end != '\0') {
      return Fail(absl::InvalidArgumentError("--keep-rate must be a number in (0, 1]"));
    }
  }
  auto input = ReadInput(a.input, model.config().input_size);
  if (!input.ok()) return Fail(input.status());
  auto result = model.Forward(*input, keep_rate);
  if (!result.ok()) return Fail(result.status());
  auto cost = EstimateCost(model.config(), keep_rate);
  if (!cost.ok()) return Fail(cost.status());

  torch::Tensor logits = result->logits.cpu().contiguous();
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t b = 0; b < logits.size(0); ++b) {
    std::vector<float> row(logits[b].data_ptr<float>(), logits[b].data_ptr<float>() + logits.size(1));
    rows.push_back(row);
  }
  nlohmann::json out = {{"model", model.config().model},
                        {"keep_rate", keep_rate},
                        {"logits", rows},
                        {"predictions", nlohmann::json::array()},
                        {"tokens", result->tokens},
                        {"gmacs", cost->gmacs()}};
  torch::Tensor top = logits.argmax(1).contiguous();
  for (int64_t b = 0; b < top.size(0); ++b) out["predictions"].push_back(top[b].item<int64_t>());
  auto s = WriteOutput(a.output, out.dump(1) + "\n");
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a checkpoint on a tensor file or an image");
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint (.pth or .safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--config", args->config,
                  "configuration JSON (reference field names); missing fields come from the "
                  "checkpoint's args");
  cmd->add_option("--input", args->input,
                  "torch.save'd [B,3,H,W] tensor (or dict with 'input'), or a JPEG/PNG image")
      ->required();
  cmd->add_option("--keep-rate", args->keep_rate, "token keep rate in (0,1] (default: the model's)");
  cmd->add_option("--output", args->output, "output JSON file (default: stdout)");
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace clca::tool
