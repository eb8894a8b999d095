// clca preprocess: the model input tensor for an image, as torch.load reads it.
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "tools/clca/commands.h"
#include "tools/clca/util.h"
#ifdef CLCA_HAVE_PREPROCESS
#include "models/preprocess/preprocess.h"
#endif

namespace clca::tool {
namespace {

struct PreprocessArgs {
  std::string image, output;
  int input_size = 224;
};

int Preprocess(const PreprocessArgs& a) {
#ifdef CLCA_HAVE_PREPROCESS
  PreprocessOptions options;
  options.input_size = a.input_size;
  auto t = PreprocessFile(a.image, options);
  if (!t.ok()) return Fail(t.status());
  try {
    std::vector<char> bytes = torch::pickle_save(*t);
    auto s = WriteOutput(a.output, std::string(bytes.begin(), bytes.end()));
    return s.ok() ? 0 : Fail(s);
  } catch (const std::exception& e) {
    return Fail(absl::InternalError(absl::StrCat("cannot serialise tensor: ", e.what())));
  }
#else
  return Fail(absl::UnimplementedError("this build has no image preprocessing (OpenCV not found)"));
#endif
}

}  // namespace

void AddPreprocessCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<PreprocessArgs>();
  CLI::App* cmd = app.add_subcommand("preprocess", "Write the preprocessed [3,S,S] tensor of an image");
  cmd->add_option("image", a->image, "image file")->required();
  cmd->add_option("--input-size", a->input_size, "model input size S");
  cmd->add_option("--output", a->output, "output .pt file")->required();
  cmd->callback([a, exit_code] { *exit_code = Preprocess(*a); });
}

}  // namespace clca::tool
