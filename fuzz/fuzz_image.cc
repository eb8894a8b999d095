// Image decoding and preprocessing, as the server runs them on a request's
// image bytes: the two steps of PreprocessEncoded, DecodeImage then
// PreprocessRgb (resize, crop, normalise), with checks on what each returns.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <torch/torch.h>

#include "models/preprocess/preprocess.h"

namespace {

// A small model input keeps each run fast; the resize, crop and normalise
// code is the same at every size.
constexpr int kInputSize = 32;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_image: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clca::PreprocessOptions options;
  options.input_size = kInputSize;
  // 4 megapixels instead of the server's 64: a header may claim any size, and
  // decoding the largest images allowed would only slow the search down.
  options.max_pixels = int64_t{4} << 20;

  absl::StatusOr<clca::RgbImage> image = clca::DecodeImage(data, size, options);
  if (!image.ok()) return 0;
  const size_t expected = static_cast<size_t>(image->width) * image->height * 3;
  if (image->width <= 0 || image->height <= 0 || image->pixels.size() != expected) {
    Fail("DecodeImage returned an image whose size and pixels disagree");
  }
  if (static_cast<int64_t>(image->width) * image->height > options.max_pixels) {
    Fail("DecodeImage returned an image over the pixel limit");
  }

  absl::StatusOr<torch::Tensor> tensor = clca::PreprocessRgb(*image, options);
  if (!tensor.ok()) Fail("PreprocessRgb refused a decoded image");
  if (tensor->sizes() != torch::IntArrayRef({3, kInputSize, kInputSize}) ||
      tensor->scalar_type() != torch::kFloat32) {
    Fail("PreprocessRgb returned a tensor of the wrong shape or type");
  }
  // ImageNet normalisation of [0, 1] values stays within about [-2.2, 2.7].
  const float* values = tensor->data_ptr<float>();
  for (int64_t i = 0; i < tensor->numel(); ++i) {
    if (!(values[i] > -3.0f && values[i] < 3.0f)) Fail("a normalised value is out of range");
  }
  return 0;
}
