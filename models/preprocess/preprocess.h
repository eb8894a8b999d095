// Evaluation-time image preprocessing, matching the reference (PIL) pipeline:
// decode -> RGB -> bicubic resize to int(size/0.875) square (antialiased when
// shrinking, as PIL does) -> center crop `size` -> [0,1] -> ImageNet normalise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace clca {

struct PreprocessOptions {
  // Square side of the model input, in pixels.
  int input_size = 224;
  // Resize to int(input_size / crop_fraction) before the center crop; in
  // (0, 1].
  double crop_fraction = 0.875;
  // Refuse encoded inputs larger than this (bytes).
  int64_t max_encoded_bytes = 32 << 20;
  // Refuse images whose declared width * height exceeds this. Checked on the
  // header, before anything is decoded. 25 megapixels takes a 24 MP camera
  // photo (6000 x 4000) and a 12 MP phone photo; the model sees input_size
  // pixels square of it anyway.
  int64_t max_pixels = 25'000'000;
  // Refuse images wider or taller than this (pixels), which keeps the
  // resampler's buffers small for long strips (its intermediate image is
  // about max_side * input_size * 3 bytes). 65535 is JPEG's own limit.
  int64_t max_side = 65535;
  // Refuse images whose decoding would hold more than this many bytes at
  // once: the decoder's output (width * height * channels * bytes per
  // sample), the whole-image buffers some decoders keep (a progressive or
  // multi-scan JPEG's coefficients, a lossless WebP's ARGB plane) and the
  // 8-bit RGB copy. 320 MiB lets every accepted kind of image of up to
  // 25 megapixels through (the most demanding, a progressive 4:4:4 JPEG,
  // holds 12 bytes per pixel); raise it together with max_pixels.
  int64_t max_decode_bytes = 320LL << 20;
};

// The encoded formats DecodeImage accepts.
enum class ImageFormat { kJpeg, kPng, kWebp, kBmp };

// "JPEG", "PNG", "WebP" or "BMP".
const char* ImageFormatName(ImageFormat format);

// What an accepted image's header declares, read without decoding it.
struct ImageHeader {
  ImageFormat format = ImageFormat::kJpeg;
  int width = 0;
  int height = 0;
  // Samples per pixel and bytes per sample of the decoder's output, before
  // the conversion to 8-bit RGB.
  int channels = 0;
  int bytes_per_sample = 1;
  // The memory decoding holds at once, as max_decode_bytes counts it.
  int64_t decode_bytes = 0;
  // A four-component (CMYK or YCCK) JPEG, converted to RGB as PIL does.
  bool cmyk = false;
};

// Recognises the format from the magic bytes and reads the header of a
// JPEG, PNG, WebP or BMP image, checking it against the limits in `options`.
// Decodes nothing and allocates nothing in proportion to the declared size.
// INVALID_ARGUMENT, with a message saying why, for empty or oversized input,
// any other format (named when known, e.g. JPEG 2000, TIFF, GIF), a
// truncated or inconsistent header, a zero or oversized width or height, too
// many pixels or too much decoding memory, and kinds of the accepted formats
// no decoder here reads (lossless or hierarchical JPEG, animated WebP, BMP
// compressions other than RLE and bit fields).
absl::StatusOr<ImageHeader> InspectImage(const uint8_t* data, size_t size,
                                         const PreprocessOptions& options);

// An 8-bit RGB image, interleaved and row-major (height x width x 3).
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a JPEG, PNG, WebP or BMP image to RGB as PIL's convert('RGB')
// does: alpha is dropped (no compositing), grayscale is replicated, palettes
// are expanded, CMYK and YCCK JPEGs use PIL's CMYK conversion; EXIF
// orientation is not applied. 16-bit samples keep their high byte (as PIL
// reads 16-bit RGB(A) and gray+alpha PNGs; PIL clips plain 16-bit grayscale
// at 255 instead). InspectImage runs first, so nothing reaches a decoder
// unless its format and declared size are accepted. INVALID_ARGUMENT for
// empty, refused, undecodable or truncated input.
absl::StatusOr<RgbImage> DecodeImage(const uint8_t* data, size_t size,
                                     const PreprocessOptions& options);

// Resizes, center-crops and normalises a decoded image into `out`, which must
// hold 3 * input_size * input_size floats (CHW). INVALID_ARGUMENT for bad
// options or an empty image.
absl::Status PreprocessRgbInto(const RgbImage& image, const PreprocessOptions& options,
                               float* out);

// The resize and center crop of PreprocessRgbInto without the normalisation:
// the model input as 8-bit RGB, input_size x input_size. What a client that
// preprocesses on its side sends as raw pixels. INVALID_ARGUMENT as above.
absl::StatusOr<RgbImage> ResizeAndCrop(const RgbImage& image, const PreprocessOptions& options);

// Same, returning a new float32 tensor [3, input_size, input_size].
absl::StatusOr<torch::Tensor> PreprocessRgb(const RgbImage& image,
                                            const PreprocessOptions& options);

// DecodeImage followed by PreprocessRgb: the normalised float32 tensor
// [3, input_size, input_size]. INVALID_ARGUMENT for empty, undecodable or
// over-limit images.
absl::StatusOr<torch::Tensor> PreprocessEncoded(const uint8_t* data, size_t size,
                                                const PreprocessOptions& options);

// DecodeImage of the file at `path`: NOT_FOUND if it cannot be read,
// INVALID_ARGUMENT if it is larger than options.max_encoded_bytes.
absl::StatusOr<RgbImage> DecodeImageFile(const std::string& path,
                                         const PreprocessOptions& options);

// PreprocessEncoded, reading the file at `path` first (NOT_FOUND if it cannot
// be read).
absl::StatusOr<torch::Tensor> PreprocessFile(const std::string& path,
                                             const PreprocessOptions& options);

// PIL-compatible resampling of an 8-bit interleaved RGB image
// (height x width x 3, row-major) to out_w x out_h with the bicubic filter
// (a = -0.5), antialiased when shrinking; the horizontal pass runs first and
// each pass rounds and clamps to 8 bits as PIL does. All sizes must be
// positive.
std::vector<uint8_t> ResizeBicubicPil(const uint8_t* rgb, int width, int height, int out_w,
                                      int out_h);

// The crop_w x crop_h window at (left, top) of ResizeBicubicPil's result,
// computed without resampling the rest. The window must lie inside
// out_w x out_h.
std::vector<uint8_t> ResizeCropBicubicPil(const uint8_t* rgb, int width, int height, int out_w,
                                          int out_h, int left, int top, int crop_w, int crop_h);

// ToTensor + ImageNet normalisation of the crop x crop window at (left, top)
// of an interleaved RGB image `width` pixels wide, into `out` (CHW, 3 * crop *
// crop floats), mirrored left-right when `flip` (training augmentation). The
// window must lie inside the image.
void NormalizeCropInto(const uint8_t* rgb, int width, int left, int top, int crop, bool flip,
                       float* out);

}  // namespace clca
