// Image decoding (OpenCV) and the evaluation transform around the
// PIL-compatible resampler in preprocess_resize.cc.

#include "models/preprocess/preprocess.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <optional>
#include <utility>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "absl/strings/str_cat.h"

namespace clca {
namespace {

// ImageNet statistics, as float32 like torchvision's Normalize.
constexpr double kMean[3] = {0.485, 0.456, 0.406};
constexpr double kStd[3] = {0.229, 0.224, 0.225};

// Largest resize side accepted (input_size / crop_fraction).
constexpr double kMaxResizeSide = 1 << 16;

struct Dimensions {
  int64_t width = 0;
  int64_t height = 0;
};

uint32_t Be16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t Le16(const uint8_t* p) { return (uint32_t{p[1]} << 8) | p[0]; }
uint32_t Le24(const uint8_t* p) { return Le16(p) | (uint32_t{p[2]} << 16); }
uint32_t Be32(const uint8_t* p) { return (Be16(p) << 16) | Be16(p + 2); }
uint32_t Le32(const uint8_t* p) { return (Le16(p + 2) << 16) | Le16(p); }

std::optional<Dimensions> PngDimensions(const uint8_t* d, size_t n) {
  static constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n < 24 || std::memcmp(d, kSignature, 8) != 0 || std::memcmp(d + 12, "IHDR", 4) != 0) {
    return std::nullopt;
  }
  return Dimensions{Be32(d + 16), Be32(d + 20)};
}

std::optional<Dimensions> JpegDimensions(const uint8_t* d, size_t n) {
  if (n < 4 || d[0] != 0xFF || d[1] != 0xD8) return std::nullopt;
  size_t i = 2;
  while (i + 1 < n) {
    if (d[i] != 0xFF) return std::nullopt;
    const uint8_t marker = d[i + 1];
    if (marker == 0xFF) {  // Fill byte.
      ++i;
      continue;
    }
    i += 2;
    // Markers without a payload.
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;
    // End of image or start of scan before any frame header.
    if (marker == 0xD9 || marker == 0xDA || i + 2 > n) return std::nullopt;
    const uint32_t length = Be16(d + i);
    if (length < 2) return std::nullopt;
    const bool start_of_frame =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (start_of_frame) {
      if (i + 7 > n) return std::nullopt;
      return Dimensions{Be16(d + i + 5), Be16(d + i + 3)};
    }
    i += length;
  }
  return std::nullopt;
}

std::optional<Dimensions> WebpDimensions(const uint8_t* d, size_t n) {
  if (n < 30 || std::memcmp(d, "RIFF", 4) != 0 || std::memcmp(d + 8, "WEBP", 4) != 0) {
    return std::nullopt;
  }
  if (std::memcmp(d + 12, "VP8X", 4) == 0) {
    return Dimensions{int64_t{Le24(d + 24)} + 1, int64_t{Le24(d + 27)} + 1};
  }
  if (std::memcmp(d + 12, "VP8L", 4) == 0 && d[20] == 0x2F) {
    const uint32_t bits = Le32(d + 21);
    return Dimensions{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (std::memcmp(d + 12, "VP8 ", 4) == 0) {
    return Dimensions{Le16(d + 26) & 0x3FFF, Le16(d + 28) & 0x3FFF};
  }
  return std::nullopt;
}

std::optional<Dimensions> BmpDimensions(const uint8_t* d, size_t n) {
  if (n < 26 || d[0] != 'B' || d[1] != 'M') return std::nullopt;
  const uint32_t header_size = Le32(d + 14);
  if (header_size == 12) return Dimensions{Le16(d + 18), Le16(d + 20)};
  const int64_t width = static_cast<int32_t>(Le32(d + 18));
  const int64_t height = static_cast<int32_t>(Le32(d + 22));  // Negative: top-down.
  return Dimensions{std::abs(width), std::abs(height)};
}

std::optional<Dimensions> TiffDimensions(const uint8_t* d, size_t n) {
  if (n < 8) return std::nullopt;
  const bool little = std::memcmp(d, "II*\0", 4) == 0;
  if (!little && std::memcmp(d, "MM\0*", 4) != 0) return std::nullopt;
  auto u16 = [&](size_t at) { return little ? Le16(d + at) : Be16(d + at); };
  auto u32 = [&](size_t at) { return little ? Le32(d + at) : Be32(d + at); };
  const size_t ifd = u32(4);
  if (ifd > n || n - ifd < 2) return std::nullopt;
  const size_t entries = u16(ifd);
  std::optional<int64_t> width, height;
  for (size_t e = 0; e < entries; ++e) {
    const size_t at = ifd + 2 + 12 * e;
    if (at + 12 > n) break;
    const uint32_t tag = u16(at);
    const uint32_t type = u16(at + 2);
    if (tag != 256 && tag != 257) continue;
    int64_t value;
    if (type == 3) {
      value = u16(at + 8);  // SHORT
    } else if (type == 4) {
      value = u32(at + 8);  // LONG
    } else {
      continue;
    }
    (tag == 256 ? width : height) = value;
  }
  if (!width || !height) return std::nullopt;
  return Dimensions{*width, *height};
}

std::optional<Dimensions> PnmDimensions(const uint8_t* d, size_t n) {
  if (n < 3 || d[0] != 'P' || d[1] < '1' || d[1] > '6') return std::nullopt;
  size_t i = 2;
  int64_t values[2];
  for (int64_t& value : values) {
    // Skip whitespace and comments.
    while (i < n && (std::isspace(d[i]) || d[i] == '#')) {
      if (d[i] == '#') {
        while (i < n && d[i] != '\n') ++i;
      } else {
        ++i;
      }
    }
    if (i >= n || !std::isdigit(d[i])) return std::nullopt;
    value = 0;
    while (i < n && std::isdigit(d[i])) {
      value = value * 10 + (d[i++] - '0');
      if (value > (int64_t{1} << 40)) return std::nullopt;
    }
  }
  return Dimensions{values[0], values[1]};
}

// Dimensions declared by the header of the common formats, without decoding.
std::optional<Dimensions> PeekDimensions(const uint8_t* d, size_t n) {
  for (auto* peek : {PngDimensions, JpegDimensions, WebpDimensions, BmpDimensions,
                     TiffDimensions, PnmDimensions}) {
    if (auto dims = peek(d, n)) return dims;
  }
  return std::nullopt;
}

absl::Status CheckPixelCount(int64_t width, int64_t height, const PreprocessOptions& options) {
  int64_t pixels;
  if (__builtin_mul_overflow(width, height, &pixels) || pixels > options.max_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("image is ", width, "x", height,
                                                   " pixels; the limit is ", options.max_pixels,
                                                   " pixels"));
  }
  return absl::OkStatus();
}

// Copies a decoded 1-4 channel image (OpenCV's BGR(A) order) into RGB8,
// keeping the high byte of 16-bit samples.
template <typename T, int kShift>
void ToRgb(const cv::Mat& mat, RgbImage& image) {
  const int channels = mat.channels();
  uint8_t* dst = image.pixels.data();
  for (int y = 0; y < mat.rows; ++y) {
    const T* src = mat.ptr<T>(y);
    for (int x = 0; x < mat.cols; ++x, src += channels, dst += 3) {
      if (channels <= 2) {  // Gray, or gray + alpha.
        dst[0] = dst[1] = dst[2] = static_cast<uint8_t>(src[0] >> kShift);
      } else {  // BGR or BGRA.
        dst[0] = static_cast<uint8_t>(src[2] >> kShift);
        dst[1] = static_cast<uint8_t>(src[1] >> kShift);
        dst[2] = static_cast<uint8_t>(src[0] >> kShift);
      }
    }
  }
}

absl::Status ValidateOptions(const PreprocessOptions& options) {
  if (options.input_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("input_size must be positive, got ", options.input_size));
  }
  if (!(options.crop_fraction > 0.0 && options.crop_fraction <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("crop_fraction must be in (0, 1], got ", options.crop_fraction));
  }
  if (options.input_size / options.crop_fraction > kMaxResizeSide) {
    return absl::InvalidArgumentError(
        absl::StrCat("input_size / crop_fraction must be at most ", kMaxResizeSide, ", got ",
                     options.input_size / options.crop_fraction));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RgbImage> DecodeImage(const uint8_t* data, size_t size,
                                     const PreprocessOptions& options) {
  if (data == nullptr || size == 0) {
    return absl::InvalidArgumentError("image is empty (0 bytes); send an encoded JPEG or PNG");
  }
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(options.max_encoded_bytes) ||
      size > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("encoded image is ", size,
                                                   " bytes; the limit is ",
                                                   options.max_encoded_bytes, " bytes"));
  }
  if (auto dims = PeekDimensions(data, size)) {
    if (absl::Status s = CheckPixelCount(dims->width, dims->height, options); !s.ok()) return s;
  }

  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    // IMREAD_UNCHANGED keeps alpha and 16-bit depth and ignores EXIF
    // orientation, as PIL does.
    decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception&) {
    decoded.release();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory decoding the image");
  }
  if (decoded.empty() || decoded.dims != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("could not decode the image (", size,
                     " bytes): corrupt or unsupported format; send a JPEG, PNG, WebP, BMP or "
                     "TIFF image"));
  }
  if (absl::Status s = CheckPixelCount(decoded.cols, decoded.rows, options); !s.ok()) return s;
  const int depth = decoded.depth();
  if ((depth != CV_8U && depth != CV_16U) || decoded.channels() > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported pixel format (OpenCV type ", decoded.type(),
                     "); send an 8- or 16-bit grayscale, RGB or RGBA image"));
  }

  RgbImage image;
  image.width = decoded.cols;
  image.height = decoded.rows;
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  if (depth == CV_8U) {
    ToRgb<uint8_t, 0>(decoded, image);
  } else {
    ToRgb<uint16_t, 8>(decoded, image);
  }
  return image;
}

absl::StatusOr<RgbImage> ResizeAndCrop(const RgbImage& image, const PreprocessOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RGB image of ", image.width, "x", image.height, " pixels must be non-empty and hold ",
        "width*height*3 bytes, got ", image.pixels.size()));
  }
  const int crop = options.input_size;
  // torchvision: Resize((r, r)) then CenterCrop(crop), with Python's int()
  // and round-half-to-even round().
  const int resized = static_cast<int>(crop / options.crop_fraction);
  const int offset = static_cast<int>(std::nearbyint((resized - crop) / 2.0));
  RgbImage out;
  out.width = out.height = crop;
  out.pixels = ResizeCropBicubicPil(image.pixels.data(), image.width, image.height, resized,
                                    resized, offset, offset, crop, crop);
  return out;
}

absl::Status PreprocessRgbInto(const RgbImage& image, const PreprocessOptions& options,
                               float* out) {
  absl::StatusOr<RgbImage> input = ResizeAndCrop(image, options);
  if (!input.ok()) return input.status();
  NormalizeCropInto(input->pixels.data(), input->width, 0, 0, input->width, /*flip=*/false, out);
  return absl::OkStatus();
}

void NormalizeCropInto(const uint8_t* rgb, int width, int left, int top, int crop, bool flip,
                       float* out) {
  // ToTensor (v / 255) and Normalize ((x - mean) / std) in float32.
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(kMean[c]);
    const float std = static_cast<float>(kStd[c]);
    for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) / 255.0f - mean) / std;
  }
  const size_t plane = static_cast<size_t>(crop) * crop;
  for (int y = 0; y < crop; ++y) {
    const uint8_t* row = rgb + (static_cast<size_t>(top + y) * width + left) * 3;
    for (int x = 0; x < crop; ++x) {
      const uint8_t* px = row + 3 * (flip ? crop - 1 - x : x);
      const size_t i = static_cast<size_t>(y) * crop + x;
      out[i] = lut[0][px[0]];
      out[plane + i] = lut[1][px[1]];
      out[2 * plane + i] = lut[2][px[2]];
    }
  }
}

absl::StatusOr<torch::Tensor> PreprocessRgb(const RgbImage& image,
                                            const PreprocessOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  torch::Tensor out = torch::empty({3, options.input_size, options.input_size}, torch::kFloat32);
  if (absl::Status s = PreprocessRgbInto(image, options, out.data_ptr<float>()); !s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<torch::Tensor> PreprocessEncoded(const uint8_t* data, size_t size,
                                                const PreprocessOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  absl::StatusOr<RgbImage> image = DecodeImage(data, size, options);
  if (!image.ok()) return image.status();
  return PreprocessRgb(*image, options);
}

absl::StatusOr<RgbImage> DecodeImageFile(const std::string& path,
                                         const PreprocessOptions& options) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("image file ", path, " does not exist"));
  }
  const uintmax_t file_size = std::filesystem::file_size(path, error);
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot read image file ", path, ": ", error.message()));
  }
  if (file_size > static_cast<uint64_t>(options.max_encoded_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("image file ", path, " is ", file_size,
                                                   " bytes; the limit is ",
                                                   options.max_encoded_bytes, " bytes"));
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes(static_cast<size_t>(file_size));
  if (!in || !in.read(reinterpret_cast<char*>(bytes.data()),
                      static_cast<std::streamsize>(bytes.size()))) {
    return absl::NotFoundError(absl::StrCat("cannot read image file ", path));
  }
  return DecodeImage(bytes.data(), bytes.size(), options);
}

absl::StatusOr<torch::Tensor> PreprocessFile(const std::string& path,
                                             const PreprocessOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  absl::StatusOr<RgbImage> image = DecodeImageFile(path, options);
  if (!image.ok()) return image.status();
  return PreprocessRgb(*image, options);
}

}  // namespace clca
