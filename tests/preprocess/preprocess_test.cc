#include "models/preprocess/preprocess.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "absl/status/status.h"
#include "tests/preprocess/test_images.h"

namespace clca {
namespace {

using test_images::EncodePng;
using test_images::kDataDir;
using test_images::Pattern;
using test_images::RandomBytes;
using test_images::ReadBytes;

torch::Tensor PreprocessOrDie(const std::vector<uint8_t>& bytes, const PreprocessOptions& options) {
  absl::StatusOr<torch::Tensor> out = PreprocessEncoded(bytes.data(), bytes.size(), options);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : torch::Tensor();
}

// ---------------------------------------------------------------------------
// Parity with the reference transform.

TEST(PreprocessTest, MatchesReference) {
  const std::vector<uint8_t> file = ReadBytes(kDataDir + "expected_preprocess.pt");
  ASSERT_FALSE(file.empty());
  const torch::IValue loaded = torch::pickle_load(std::vector<char>(file.begin(), file.end()));
  ASSERT_TRUE(loaded.isGenericDict());
  int cases = 0;
  for (const auto& entry : loaded.toGenericDict()) {
    const std::string key = entry.key().toStringRef();
    const size_t at = key.find('@');
    ASSERT_NE(at, std::string::npos) << key;
    PreprocessOptions options;
    options.input_size = std::stoi(key.substr(at + 1));
    absl::StatusOr<torch::Tensor> got = PreprocessFile(kDataDir + key.substr(0, at), options);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status();
    const torch::Tensor expected = entry.value().toTensor().to(torch::kFloat32);
    ASSERT_EQ(got->sizes(), expected.sizes()) << key;
    const torch::Tensor diff = (*got - expected).abs();
    const double max_err = diff.max().item<double>();
    const double mean_err = diff.mean().item<double>();
    // The 8-bit values behind both tensors (float16 keeps them recoverable).
    const torch::Tensor mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({3, 1, 1});
    const torch::Tensor std = torch::tensor({0.229f, 0.224f, 0.225f}).view({3, 1, 1});
    const auto to_u8 = [&](const torch::Tensor& t) { return ((t * std + mean) * 255).round(); };
    const int64_t differing = (to_u8(*got) != to_u8(expected)).sum().item<int64_t>();
    std::printf("%-28s max abs %.5f  mean abs %.6f  differing 8-bit values %lld\n", key.c_str(),
                max_err, mean_err, static_cast<long long>(differing));
    EXPECT_LE(max_err, 0.05) << key;
    EXPECT_LE(mean_err, 0.002) << key;
    // PNG decoding is lossless, so the resampler alone decides: exact match.
    if (key.find(".png@") != std::string::npos) {
      EXPECT_EQ(differing, 0) << key;
    }
    ++cases;
  }
  EXPECT_EQ(cases, 6);
}

TEST(PreprocessTest, OutputShapeAndRange) {
  PreprocessOptions options;
  options.input_size = 32;
  const torch::Tensor out = PreprocessOrDie(ReadBytes(kDataDir + "leaf_300x300.png"), options);
  ASSERT_TRUE(out.defined());
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  EXPECT_GE(out.min().item<float>(), -0.485f / 0.229f - 1e-5f);
  EXPECT_LE(out.max().item<float>(), (1.0f - 0.406f) / 0.225f + 1e-5f);
}

// ---------------------------------------------------------------------------
// The resampler on hand-made images.

TEST(ResizeBicubicPilTest, SameSizeIsIdentity) {
  const std::vector<uint8_t> rgb = RandomBytes(7 * 5 * 3, 1);
  EXPECT_EQ(ResizeBicubicPil(rgb.data(), 7, 5, 7, 5), rgb);
}

TEST(ResizeBicubicPilTest, ConstantStaysConstant) {
  std::vector<uint8_t> rgb(13 * 11 * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = 0;
    rgb[i + 1] = 128;
    rgb[i + 2] = 255;
  }
  for (auto [w, h] : {std::pair{5, 4}, std::pair{29, 31}, std::pair{13, 3}, std::pair{1, 1}}) {
    const std::vector<uint8_t> out = ResizeBicubicPil(rgb.data(), 13, 11, w, h);
    ASSERT_EQ(out.size(), static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < out.size(); i += 3) {
      ASSERT_EQ(out[i], 0);
      ASSERT_EQ(out[i + 1], 128);
      ASSERT_EQ(out[i + 2], 255);
    }
  }
}

TEST(ResizeBicubicPilTest, TwoColourDownscale) {
  // 16x4: left half black, right half white; shrink to 4x2.
  std::vector<uint8_t> rgb(16 * 4 * 3, 0);
  for (int y = 0; y < 4; ++y) {
    for (int x = 8; x < 16; ++x) {
      for (int c = 0; c < 3; ++c) rgb[(y * 16 + x) * 3 + c] = 255;
    }
  }
  const std::vector<uint8_t> out = ResizeBicubicPil(rgb.data(), 16, 4, 4, 2);
  ASSERT_EQ(out.size(), 4u * 2 * 3);
  for (int y = 0; y < 2; ++y) {
    const uint8_t* row = &out[y * 4 * 3];
    EXPECT_EQ(row[0], 0);       // Far from the edge: pure black.
    EXPECT_EQ(row[3 * 3], 255);  // Pure white.
    EXPECT_LT(row[1 * 3], 64);   // Near the edge, on the dark side.
    EXPECT_GT(row[2 * 3], 191);  // Near the edge, on the bright side.
    for (int x = 0; x < 4; ++x) {
      EXPECT_EQ(row[x * 3], row[x * 3 + 1]);
      EXPECT_EQ(row[x * 3], row[x * 3 + 2]);
    }
    // Symmetric about the edge.
    EXPECT_EQ(row[1 * 3], 255 - row[2 * 3]);
  }
}

TEST(ResizeBicubicPilTest, CropWindowMatchesFullResize) {
  const std::vector<uint8_t> rgb = RandomBytes(37 * 23 * 3, 2);
  for (auto [ow, oh] : {std::pair{16, 12}, std::pair{64, 50}, std::pair{37, 10}, std::pair{9, 23}}) {
    const std::vector<uint8_t> full = ResizeBicubicPil(rgb.data(), 37, 23, ow, oh);
    const int left = ow / 4, top = oh / 3, cw = ow / 2, ch = oh / 2;
    const std::vector<uint8_t> window =
        ResizeCropBicubicPil(rgb.data(), 37, 23, ow, oh, left, top, cw, ch);
    ASSERT_EQ(window.size(), static_cast<size_t>(cw) * ch * 3);
    for (int y = 0; y < ch; ++y) {
      for (int x = 0; x < cw * 3; ++x) {
        ASSERT_EQ(window[(y * cw) * 3 + x], full[((top + y) * ow + left) * 3 + x])
            << ow << "x" << oh << " at " << x << "," << y;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Colour conversion: every PNG flavour matches its 8-bit RGB equivalent.

class ColorTypeTest : public ::testing::Test {
 protected:
  static constexpr int kW = 41, kH = 29;
  PreprocessOptions options_ = [] {
    PreprocessOptions o;
    o.input_size = 24;
    return o;
  }();
};

TEST_F(ColorTypeTest, RgbaDropsAlpha) {
  const std::vector<uint8_t> rgb = Pattern(kW, kH);
  const std::vector<uint8_t> alpha = RandomBytes(kW * kH, 3);
  std::vector<uint8_t> rgba;
  for (int i = 0; i < kW * kH; ++i) {
    rgba.insert(rgba.end(), {rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], alpha[i]});
  }
  const torch::Tensor want = PreprocessOrDie(EncodePng(kW, kH, 8, 2, rgb), options_);
  const torch::Tensor got = PreprocessOrDie(EncodePng(kW, kH, 8, 6, rgba), options_);
  ASSERT_TRUE(want.defined() && got.defined());
  EXPECT_TRUE(torch::equal(want, got));
}

TEST_F(ColorTypeTest, GrayIsReplicated) {
  const std::vector<uint8_t> gray = RandomBytes(kW * kH, 4);
  std::vector<uint8_t> rgb, gray_alpha;
  for (uint8_t v : gray) {
    rgb.insert(rgb.end(), {v, v, v});
    gray_alpha.insert(gray_alpha.end(), {v, static_cast<uint8_t>(255 - v)});
  }
  const torch::Tensor want = PreprocessOrDie(EncodePng(kW, kH, 8, 2, rgb), options_);
  ASSERT_TRUE(want.defined());
  EXPECT_TRUE(torch::equal(want, PreprocessOrDie(EncodePng(kW, kH, 8, 0, gray), options_)));
  EXPECT_TRUE(torch::equal(want, PreprocessOrDie(EncodePng(kW, kH, 8, 4, gray_alpha), options_)));
  // The three channels of a gray image differ only by the normalisation.
  EXPECT_TRUE(torch::allclose(want[0] * 0.229f + 0.485f, want[1] * 0.224f + 0.456f, 0, 1e-5));
}

TEST_F(ColorTypeTest, PaletteIsExpanded) {
  std::vector<uint8_t> palette, indices, rgb;
  for (int i = 0; i < 16; ++i) {
    palette.insert(palette.end(), {static_cast<uint8_t>(i * 16), static_cast<uint8_t>(255 - i * 9),
                                   static_cast<uint8_t>(i * i)});
  }
  for (uint8_t v : RandomBytes(kW * kH, 5)) {
    const int i = v % 16;
    indices.push_back(static_cast<uint8_t>(i));
    rgb.insert(rgb.end(), palette.begin() + 3 * i, palette.begin() + 3 * i + 3);
  }
  const torch::Tensor want = PreprocessOrDie(EncodePng(kW, kH, 8, 2, rgb), options_);
  ASSERT_TRUE(want.defined());
  EXPECT_TRUE(torch::equal(want, PreprocessOrDie(EncodePng(kW, kH, 8, 3, indices, palette),
                                                 options_)));
}

TEST_F(ColorTypeTest, SixteenBitKeepsHighByte) {
  const std::vector<uint8_t> rgb = Pattern(kW, kH);
  const std::vector<uint8_t> low = RandomBytes(rgb.size(), 6);
  std::vector<uint8_t> rgb16;  // Big-endian samples: high byte from rgb.
  for (size_t i = 0; i < rgb.size(); ++i) rgb16.insert(rgb16.end(), {rgb[i], low[i]});
  const torch::Tensor want = PreprocessOrDie(EncodePng(kW, kH, 8, 2, rgb), options_);
  ASSERT_TRUE(want.defined());
  EXPECT_TRUE(torch::equal(want, PreprocessOrDie(EncodePng(kW, kH, 16, 2, rgb16), options_)));
}

TEST(DecodeImageTest, DecodesToRgb) {
  const std::vector<uint8_t> rgb = Pattern(5, 3);
  const std::vector<uint8_t> png = EncodePng(5, 3, 8, 2, rgb);
  absl::StatusOr<RgbImage> image = DecodeImage(png.data(), png.size(), PreprocessOptions());
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, 5);
  EXPECT_EQ(image->height, 3);
  EXPECT_EQ(image->pixels, rgb);
}

TEST(DecodeImageTest, IgnoresExifOrientation) {
  // An APP1 Exif segment with Orientation = 6 (rotate 90) after SOI.
  const std::vector<uint8_t> jpeg = ReadBytes(kDataDir + "leaf_600x400.jpg");
  ASSERT_GT(jpeg.size(), 2u);
  const std::vector<uint8_t> exif = {
      0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,            // APP1, length 34.
      'M', 'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08,                // TIFF header.
      0x00, 0x01,                                                  // One IFD entry:
      0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06,  // Orientation=6
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00};                         // Next IFD: none.
  std::vector<uint8_t> rotated(jpeg.begin(), jpeg.begin() + 2);
  rotated.insert(rotated.end(), exif.begin(), exif.end());
  rotated.insert(rotated.end(), jpeg.begin() + 2, jpeg.end());

  absl::StatusOr<RgbImage> plain = DecodeImage(jpeg.data(), jpeg.size(), PreprocessOptions());
  absl::StatusOr<RgbImage> tagged = DecodeImage(rotated.data(), rotated.size(), PreprocessOptions());
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(tagged.ok()) << tagged.status();
  EXPECT_EQ(tagged->width, 600);
  EXPECT_EQ(tagged->height, 400);
  EXPECT_EQ(tagged->pixels, plain->pixels);
}

// ---------------------------------------------------------------------------
// Refused inputs.

absl::StatusCode CodeOf(const std::vector<uint8_t>& bytes, const PreprocessOptions& options) {
  return PreprocessEncoded(bytes.data(), bytes.size(), options).status().code();
}

TEST(PreprocessErrorsTest, EmptyBuffer) {
  EXPECT_EQ(PreprocessEncoded(nullptr, 0, PreprocessOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf({}, PreprocessOptions()), absl::StatusCode::kInvalidArgument);
}

TEST(PreprocessErrorsTest, RandomBytes) {
  EXPECT_EQ(CodeOf(RandomBytes(4096, 8), PreprocessOptions()),
            absl::StatusCode::kInvalidArgument);
}

TEST(PreprocessErrorsTest, TruncatedPng) {
  std::vector<uint8_t> png = ReadBytes(kDataDir + "leaf_300x300.png");
  ASSERT_GT(png.size(), 1000u);
  png.resize(png.size() / 2);
  EXPECT_EQ(CodeOf(png, PreprocessOptions()), absl::StatusCode::kInvalidArgument);
}

TEST(PreprocessErrorsTest, TooManyPixels) {
  PreprocessOptions options;
  options.max_pixels = 300 * 300 - 1;
  const std::vector<uint8_t> png = ReadBytes(kDataDir + "leaf_300x300.png");
  const absl::Status status = PreprocessEncoded(png.data(), png.size(), options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("300x300"), std::string::npos) << status;
  options.max_pixels = 600 * 400 - 1;
  EXPECT_EQ(CodeOf(ReadBytes(kDataDir + "leaf_600x400.jpg"), options),
            absl::StatusCode::kInvalidArgument);
  options.max_pixels = 600 * 400;
  EXPECT_EQ(CodeOf(ReadBytes(kDataDir + "leaf_600x400.jpg"), options), absl::StatusCode::kOk);
}

TEST(PreprocessErrorsTest, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  // A PNG header declaring 100000 x 100000 pixels, with a tiny body.
  const std::vector<uint8_t> png = test_images::PngHeader(100000, 100000);
  const absl::Status status = PreprocessEncoded(png.data(), png.size(), PreprocessOptions()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("100000x100000"), std::string::npos) << status;
}

TEST(PreprocessErrorsTest, TooManyEncodedBytes) {
  PreprocessOptions options;
  options.max_encoded_bytes = 1000;
  const std::vector<uint8_t> png = ReadBytes(kDataDir + "leaf_300x300.png");
  EXPECT_EQ(CodeOf(png, options), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PreprocessFile(kDataDir + "leaf_300x300.png", options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PreprocessErrorsTest, MissingFile) {
  EXPECT_EQ(PreprocessFile(kDataDir + "no_such_image.png", PreprocessOptions()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(PreprocessFile(kDataDir, PreprocessOptions()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PreprocessErrorsTest, BadOptions) {
  const std::vector<uint8_t> png = ReadBytes(kDataDir + "leaf_300x300.png");
  PreprocessOptions options;
  options.input_size = 0;
  EXPECT_EQ(CodeOf(png, options), absl::StatusCode::kInvalidArgument);
  options.input_size = 32;
  options.crop_fraction = 0.0;
  EXPECT_EQ(CodeOf(png, options), absl::StatusCode::kInvalidArgument);
  options.crop_fraction = 1.5;
  EXPECT_EQ(CodeOf(png, options), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clca
