// JPEG colour: CMYK and YCCK JPEGs convert to RGB exactly as PIL converts
// them, and gray and YCbCr JPEGs decode as libjpeg decodes them for PIL.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "models/preprocess/preprocess.h"
#include "tests/preprocess/test_images.h"

namespace clca {
namespace {

using ::testing::HasSubstr;
using test_images::Bytes;
using test_images::DecodeJpeg;
using test_images::EncodeJpeg;
using test_images::JpegSpec;

// PIL's conversion, from Pillow's sources: JpegImagePlugin reads every
// four-component JPEG with raw mode "CMYK;I" (each of libjpeg's samples
// inverted), then Convert.c's cmyk2rgb computes, per channel,
// CLIP8(nk - MULDIV255(c, nk)) with nk = 255 - k and
// MULDIV255(a, b) = (t = a * b + 128, ((t >> 8) + t) >> 8).
Bytes PilCmykToRgb(const Bytes& libjpeg_cmyk) {
  Bytes rgb;
  for (size_t i = 0; i < libjpeg_cmyk.size(); i += 4) {
    int inverted[4];
    for (int c = 0; c < 4; ++c) inverted[c] = 255 - libjpeg_cmyk[i + c];
    const int nk = 255 - inverted[3];
    for (int c = 0; c < 3; ++c) {
      const int t = inverted[c] * nk + 128;
      const int v = nk - (((t >> 8) + t) >> 8);
      rgb.push_back(static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v));
    }
  }
  return rgb;
}

// OpenCV 4.6's conversion of the same samples (icvCvt_CMYK2BGR_8u_C4C3R,
// in RGB order), which the server used before.
Bytes OpenCvCmykToRgb(const Bytes& libjpeg_cmyk) {
  Bytes rgb;
  for (size_t i = 0; i < libjpeg_cmyk.size(); i += 4) {
    const int k = libjpeg_cmyk[i + 3];
    for (int c = 0; c < 3; ++c) {
      rgb.push_back(static_cast<uint8_t>(k - ((255 - libjpeg_cmyk[i + c]) * k >> 8)));
    }
  }
  return rgb;
}

// 64 x 48 CMYK samples: eight flat patches above, gradients below.
Bytes CmykTestImage() {
  constexpr int kW = 64, kH = 48;
  const uint8_t patches[8][4] = {{0, 0, 0, 0},       {255, 255, 255, 255}, {255, 0, 0, 0},
                                 {0, 200, 30, 0},     {20, 40, 220, 10},    {0, 0, 0, 128},
                                 {128, 128, 128, 60}, {250, 10, 130, 200}};
  Bytes cmyk;
  for (int y = 0; y < kH; ++y) {
    for (int x = 0; x < kW; ++x) {
      if (y < 24) {
        const uint8_t* p = patches[(y / 12) * 4 + x / 16];
        cmyk.insert(cmyk.end(), p, p + 4);
      } else {
        cmyk.insert(cmyk.end(), {static_cast<uint8_t>(x * 4), static_cast<uint8_t>((y - 24) * 10),
                                 static_cast<uint8_t>(255 - x * 4),
                                 static_cast<uint8_t>((x + y) * 2)});
      }
    }
  }
  return cmyk;
}

struct CmykCase {
  std::string name;
  J_COLOR_SPACE stored;
  bool adobe_marker;
  bool progressive;
  bool subsample;
  int quality;
};

class CmykJpegTest : public ::testing::TestWithParam<CmykCase> {};

TEST_P(CmykJpegTest, ConvertsAsPil) {
  const CmykCase& c = GetParam();
  JpegSpec spec;
  spec.width = 64;
  spec.height = 48;
  spec.input = JCS_CMYK;
  spec.stored = c.stored;
  spec.adobe_marker = c.adobe_marker;
  spec.progressive = c.progressive;
  spec.subsample = c.subsample;
  spec.quality = c.quality;
  const Bytes jpeg = EncodeJpeg(CmykTestImage(), spec);

  absl::StatusOr<ImageHeader> header = InspectImage(jpeg.data(), jpeg.size(), {});
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_TRUE(header->cmyk);
  EXPECT_EQ(header->channels, 4);

  // What PIL gets: libjpeg's CMYK samples (YCCK converted by libjpeg, the
  // Adobe marker deciding), through PIL's formula.
  const test_images::Samples cmyk = DecodeJpeg(jpeg, JCS_CMYK);
  ASSERT_EQ(cmyk.components, 4);
  const Bytes want = PilCmykToRgb(cmyk.data);
  absl::StatusOr<RgbImage> got = DecodeImage(jpeg.data(), jpeg.size(), {});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->width, 64);
  ASSERT_EQ(got->height, 48);
  ASSERT_EQ(got->pixels.size(), want.size());
  int max_diff = 0, differing = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const int d = std::abs(int{got->pixels[i]} - int{want[i]});
    max_diff = std::max(max_diff, d);
    differing += d != 0;
  }
  EXPECT_LE(max_diff, 1);

  // OpenCV's rounding, used before, is off: up to a level or two darker.
  const Bytes before = OpenCvCmykToRgb(cmyk.data);
  double before_total = 0;
  for (size_t i = 0; i < want.size(); ++i) before_total += std::abs(int{before[i]} - int{want[i]});
  std::printf("%-26s differing %d, max %d; OpenCV's conversion off by %.3f levels on average\n",
              c.name.c_str(), differing, max_diff, before_total / want.size());
  EXPECT_GT(before_total / want.size(), 0.2);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, CmykJpegTest,
    ::testing::Values(CmykCase{"CMYK_Adobe", JCS_CMYK, true, false, false, 95},
                      CmykCase{"CMYK_NoAdobe", JCS_CMYK, false, false, false, 95},
                      CmykCase{"CMYK_Progressive", JCS_CMYK, true, true, true, 85},
                      CmykCase{"YCCK_Adobe", JCS_YCCK, true, false, true, 90},
                      CmykCase{"YCCK_NoAdobe", JCS_YCCK, false, false, false, 90},
                      CmykCase{"YCCK_Progressive", JCS_YCCK, true, true, false, 100}),
    [](const ::testing::TestParamInfo<CmykCase>& info) { return info.param.name; });

TEST(CmykJpegTest, FlatPatchesKeepTheirColour) {
  // At quality 100 without subsampling the flat patches survive the DCT, so
  // PIL's formula on the original samples predicts the result.
  JpegSpec spec;
  spec.width = 64;
  spec.height = 48;
  spec.input = JCS_CMYK;
  spec.subsample = false;
  spec.quality = 100;
  const Bytes cmyk = CmykTestImage();
  const Bytes jpeg = EncodeJpeg(cmyk, spec);
  absl::StatusOr<RgbImage> got = DecodeImage(jpeg.data(), jpeg.size(), {});
  ASSERT_TRUE(got.ok()) << got.status();
  const Bytes want = PilCmykToRgb(cmyk);
  // Patch centres, away from the edges' ringing.
  for (int patch = 0; patch < 8; ++patch) {
    const int x = (patch % 4) * 16 + 8, y = (patch / 4) * 12 + 6;
    for (int c = 0; c < 3; ++c) {
      const size_t i = (static_cast<size_t>(y) * 64 + x) * 3 + c;
      EXPECT_NEAR(got->pixels[i], want[i], 2) << "patch " << patch << " channel " << c;
    }
  }
  // Stored 0s are full ink in the Adobe convention PIL assumes: black;
  // stored 255s are no ink: white.
  EXPECT_NEAR(got->pixels[(6 * 64 + 8) * 3], 0, 2);
  EXPECT_NEAR(got->pixels[(6 * 64 + 24) * 3], 255, 2);
}

TEST(CmykJpegTest, IgnoresExifOrientation) {
  JpegSpec spec;
  spec.width = 64;
  spec.height = 48;
  spec.input = JCS_CMYK;
  const Bytes jpeg = EncodeJpeg(CmykTestImage(), spec);
  const Bytes exif = {0xFF, 0xE1, 0x00, 0x22, 'E',  'x',  'i',  'f',  0,    0,    'M',  'M',
                      0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, 0x00, 0x01, 0x01, 0x12, 0x00, 0x03,
                      0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  Bytes rotated(jpeg.begin(), jpeg.begin() + 2);
  rotated.insert(rotated.end(), exif.begin(), exif.end());
  rotated.insert(rotated.end(), jpeg.begin() + 2, jpeg.end());
  absl::StatusOr<RgbImage> plain = DecodeImage(jpeg.data(), jpeg.size(), {});
  absl::StatusOr<RgbImage> tagged = DecodeImage(rotated.data(), rotated.size(), {});
  ASSERT_TRUE(plain.ok() && tagged.ok());
  EXPECT_EQ(tagged->width, 64);
  EXPECT_EQ(tagged->pixels, plain->pixels);
}

TEST(CmykJpegTest, TruncatedOrCorruptIsInvalidArgument) {
  JpegSpec spec;
  spec.width = 64;
  spec.height = 48;
  spec.input = JCS_CMYK;
  const Bytes jpeg = EncodeJpeg(CmykTestImage(), spec);
  Bytes cut(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() * 2 / 3));
  absl::Status status = DecodeImage(cut.data(), cut.size(), {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("could not decode the CMYK JPEG"));
  // A Huffman table index out of range is a libjpeg error, not an exit.
  Bytes bad = jpeg;
  const Bytes sos = {0xFF, 0xDA};
  auto at = std::search(bad.begin(), bad.end(), sos.begin(), sos.end());
  ASSERT_NE(at, bad.end());
  at[6] = 0x77;  // First component's DC/AC tables: 7 and 7.
  status = DecodeImage(bad.data(), bad.size(), {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("could not decode the CMYK JPEG"));
}

TEST(CmykJpegTest, ProgressiveCoefficientsCountAgainstTheBudget) {
  JpegSpec spec;
  spec.width = 64;
  spec.height = 48;
  spec.input = JCS_CMYK;
  spec.subsample = false;
  spec.progressive = true;
  const Bytes jpeg = EncodeJpeg(CmykTestImage(), spec);
  absl::StatusOr<ImageHeader> header = InspectImage(jpeg.data(), jpeg.size(), {});
  ASSERT_TRUE(header.ok()) << header.status();
  // RGB output plus four components of 8 x 6 blocks of 128 bytes.
  EXPECT_EQ(header->decode_bytes, 64 * 48 * 3 + 4 * 8 * 6 * 128);
}

// ---------------------------------------------------------------------------
// Gray and YCbCr JPEGs: exactly libjpeg's RGB, as PIL decodes them.

TEST(JpegParityTest, MatchesLibjpegRgb) {
  const Bytes rgb = test_images::Pattern(57, 41);
  std::vector<std::pair<std::string, Bytes>> cases;
  JpegSpec spec;
  spec.width = 57;
  spec.height = 41;
  cases.push_back({"baseline 4:2:0", EncodeJpeg(rgb, spec)});
  spec.subsample = false;
  spec.quality = 97;
  cases.push_back({"baseline 4:4:4", EncodeJpeg(rgb, spec)});
  spec.progressive = true;
  cases.push_back({"progressive 4:4:4", EncodeJpeg(rgb, spec)});
  spec.subsample = true;
  cases.push_back({"progressive 4:2:0", EncodeJpeg(rgb, spec)});
  JpegSpec gray = spec;
  gray.input = JCS_GRAYSCALE;
  cases.push_back({"gray progressive", EncodeJpeg(Bytes(rgb.begin(), rgb.begin() + 57 * 41), gray)});
  gray.progressive = false;
  cases.push_back({"gray", EncodeJpeg(Bytes(rgb.begin(), rgb.begin() + 57 * 41), gray)});
  JpegSpec stored_rgb = spec;
  stored_rgb.stored = JCS_RGB;  // Adobe transform 0: no YCbCr.
  cases.push_back({"RGB (Adobe)", EncodeJpeg(rgb, stored_rgb)});
  cases.push_back({"photo", test_images::ReadBytes(test_images::kDataDir + "leaf_600x400.jpg")});
  cases.push_back(
      {"photo small", test_images::ReadBytes(test_images::kDataDir + "leaf_small_120x90.jpg")});
  for (const auto& [name, jpeg] : cases) {
    SCOPED_TRACE(name);
    const test_images::Samples want = DecodeJpeg(jpeg, JCS_RGB);
    absl::StatusOr<RgbImage> got = DecodeImage(jpeg.data(), jpeg.size(), {});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->width, want.width);
    EXPECT_EQ(got->height, want.height);
    EXPECT_TRUE(got->pixels == want.data);
  }
}

}  // namespace
}  // namespace clca
