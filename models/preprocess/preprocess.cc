// Image decoding (header checks in image_header.cc, CMYK JPEGs in
// jpeg_cmyk.cc, the rest OpenCV) and the evaluation transform around the
// PIL-compatible resampler in resize.cc.

#include "models/preprocess/preprocess.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <utility>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "absl/strings/str_cat.h"
#include "models/preprocess/jpeg_cmyk.h"

namespace clca {
namespace {

// ImageNet statistics, as float32 like torchvision's Normalize.
constexpr double kMean[3] = {0.485, 0.456, 0.406};
constexpr double kStd[3] = {0.229, 0.224, 0.225};

// Largest resize side accepted (input_size / crop_fraction).
constexpr double kMaxResizeSide = 1 << 16;

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

// OpenCV decodes BMPs with the 12-byte OS/2 core header and more than 8
// bits per pixel as grayscale; PIL keeps their colour. The same file with a
// 40-byte info header, which OpenCV reads in colour. Empty if not such a BMP
// (InspectImage has checked the header).
std::vector<uint8_t> CoreBmpAsInfoBmp(const uint8_t* d, size_t n) {
  if (n < 26 || d[0] != 'B' || d[1] != 'M' || d[14] != 12 || d[15] != 0 || d[16] != 0 ||
      d[17] != 0 || (d[24] | (d[25] << 8)) <= 8) {
    return {};
  }
  std::vector<uint8_t> out(d, d + 14);
  out.resize(14 + 40, 0);
  auto put32 = [&out](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  const uint32_t offset = d[10] | (d[11] << 8) | (d[12] << 16) | (uint32_t{d[13]} << 24);
  put32(10, offset + 28);
  put32(14, 40);
  put32(18, d[18] | (d[19] << 8));  // Width.
  put32(22, d[20] | (d[21] << 8));  // Height.
  out[26] = 1;                      // Planes.
  out[28] = d[24];                  // Bits per pixel; compression 0.
  out.insert(out.end(), d + 26, d + n);
  return out;
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
  absl::StatusOr<ImageHeader> header = InspectImage(data, size, options);
  if (!header.ok()) return header.status();
  const char* format = ImageFormatName(header->format);
  if (size > static_cast<size_t>(std::numeric_limits<int>::max() - 28)) {
    return absl::InvalidArgumentError(absl::StrCat("encoded image is ", size, " bytes"));
  }

  try {
    if (header->cmyk) return DecodeCmykJpeg(data, size, *header, options);

    // OpenCV picks its decoder from the same magic bytes InspectImage read.
    // IMREAD_UNCHANGED keeps alpha and 16-bit depth, ignores EXIF
    // orientation (as PIL does), and never enables the GDAL reader or
    // reduced-size decoding.
    const std::vector<uint8_t> info_bmp = header->format == ImageFormat::kBmp
                                              ? CoreBmpAsInfoBmp(data, size)
                                              : std::vector<uint8_t>();
    const uint8_t* bytes = info_bmp.empty() ? data : info_bmp.data();
    const size_t length = info_bmp.empty() ? size : info_bmp.size();
    const cv::Mat buffer(1, static_cast<int>(length), CV_8UC1, const_cast<uint8_t*>(bytes));
    cv::Mat decoded;
    try {
      decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception&) {
      decoded.release();
    }
    if (decoded.empty() || decoded.dims != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "could not decode the ", format, " image (", size, " bytes): corrupt or truncated"));
    }
    if (decoded.cols != header->width || decoded.rows != header->height) {
      return absl::InvalidArgumentError(
          absl::StrCat("corrupt ", format, " image: its header declares ", header->width, "x",
                       header->height, " pixels, its data ", decoded.cols, "x", decoded.rows));
    }
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
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory decoding the image");
  }
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
