// Hostile and malformed images: refused by InspectImage, before any decoder
// runs, with INVALID_ARGUMENT and a message saying why; and a fuzz-like loop
// of bit flips that must never crash.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "models/preprocess/preprocess.h"
#include "tests/preprocess/test_images.h"

namespace clca {
namespace {

using ::testing::HasSubstr;
using test_images::Bomb;
using test_images::Bytes;
using test_images::kDataDir;
using test_images::kOverLimit;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;
constexpr char kSendAccepted[] = "send JPEG, PNG, WebP or BMP";

absl::StatusOr<ImageHeader> Inspect(const Bytes& bytes, const PreprocessOptions& options = {}) {
  return InspectImage(bytes.data(), bytes.size(), options);
}

absl::StatusOr<RgbImage> Decode(const Bytes& bytes, const PreprocessOptions& options = {}) {
  return DecodeImage(bytes.data(), bytes.size(), options);
}

// Valid small images of every accepted format and most of their variants.
struct Sample {
  std::string name;
  Bytes bytes;
};

std::vector<Sample> ValidSamples() {
  using namespace test_images;
  std::vector<Sample> samples;
  const int w = 24, h = 16;
  const Bytes rgb = Pattern(w, h);
  JpegSpec spec;
  spec.width = w;
  spec.height = h;
  samples.push_back({"JPEG baseline", EncodeJpeg(rgb, spec)});
  spec.progressive = true;
  samples.push_back({"JPEG progressive", EncodeJpeg(rgb, spec)});
  JpegSpec gray = spec;
  gray.input = JCS_GRAYSCALE;
  gray.progressive = false;
  samples.push_back({"JPEG gray", EncodeJpeg(Bytes(rgb.begin(), rgb.begin() + w * h), gray)});
  JpegSpec cmyk = spec;
  cmyk.input = JCS_CMYK;
  cmyk.progressive = false;
  Bytes cmyk_samples;
  for (size_t i = 0; i < rgb.size(); i += 3) {
    cmyk_samples.insert(cmyk_samples.end(), {rgb[i], rgb[i + 1], rgb[i + 2], 200});
  }
  samples.push_back({"JPEG CMYK", EncodeJpeg(cmyk_samples, cmyk)});
  cmyk.stored = JCS_YCCK;
  samples.push_back({"JPEG YCCK", EncodeJpeg(cmyk_samples, cmyk)});
  samples.push_back({"JPEG photo", ReadBytes(kDataDir + "leaf_small_120x90.jpg")});

  samples.push_back({"PNG RGB", EncodePng(w, h, 8, 2, rgb)});
  Bytes rgb16;
  for (uint8_t v : rgb) rgb16.insert(rgb16.end(), {v, static_cast<uint8_t>(v ^ 0x5A)});
  samples.push_back({"PNG 16-bit RGB", EncodePng(w, h, 16, 2, rgb16)});
  Bytes palette, indices;
  for (int i = 0; i < 8; ++i) palette.insert(palette.end(), {uint8_t(i * 30), uint8_t(255 - i * 30), 90});
  for (int i = 0; i < w * h; ++i) indices.push_back(static_cast<uint8_t>(rgb[3 * i] % 8));
  samples.push_back({"PNG palette + tRNS", EncodePng(w, h, 8, 3, indices, palette, {0, 128})});
  Bytes gray_alpha;
  for (int i = 0; i < w * h; ++i) gray_alpha.insert(gray_alpha.end(), {rgb[3 * i], rgb[3 * i + 1]});
  samples.push_back({"PNG gray + alpha", EncodePng(w, h, 8, 4, gray_alpha)});
  samples.push_back({"PNG photo", ReadBytes(kDataDir + "leaf_300x300.png")});

  samples.push_back({"WebP lossy", ReadBytes(kDataDir + "pattern_lossy_48x32.webp")});
  samples.push_back({"WebP lossless", ReadBytes(kDataDir + "pattern_lossless_48x32.webp")});
  samples.push_back({"WebP lossy + alpha", ReadBytes(kDataDir + "pattern_alpha_48x32.webp")});

  samples.push_back({"BMP 24-bit", EncodeBmp24(w, h, rgb)});
  samples.push_back({"BMP 24-bit top-down", EncodeBmp24(w, h, rgb, 40, true)});
  samples.push_back({"BMP core header", EncodeBmp24(w, h, rgb, 12)});
  samples.push_back({"BMP V5 header", EncodeBmp24(w, h, rgb, 124)});
  samples.push_back({"BMP 8-bit", EncodeBmp8(w, h, indices, palette, false)});
  samples.push_back({"BMP RLE8", EncodeBmp8(w, h, indices, palette, true)});
  for (const Sample& s : samples) EXPECT_FALSE(s.bytes.empty()) << s.name;
  return samples;
}

// ---------------------------------------------------------------------------
// Bombs and refused formats.

TEST(HostileImagesTest, BombsAreRefusedBeforeDecoding) {
  const PreprocessOptions options;
  for (const Bomb& bomb : test_images::Bombs()) {
    SCOPED_TRACE(bomb.name);
    EXPECT_LT(bomb.bytes.size(), 2048u);
    const absl::Status inspected = Inspect(bomb.bytes, options).status();
    EXPECT_EQ(inspected.code(), kInvalid) << inspected;
    EXPECT_THAT(inspected.message(), HasSubstr(bomb.message));
    // The same status from the decoding entry points: they stopped at the
    // inspection, before any decoder.
    EXPECT_EQ(Decode(bomb.bytes, options).status(), inspected);
    EXPECT_EQ(PreprocessEncoded(bomb.bytes.data(), bomb.bytes.size(), options).status(),
              inspected);
  }
}

TEST(HostileImagesTest, KnownFormatsAreNamed) {
  using namespace std::string_literals;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\0\0\0\x0CjP  \r\n\x87\n"s, "JPEG 2000"},
      {"\xFF\x4F\xFF\x51\x00\x2F"s, "JPEG 2000"},
      {"\xFF\x0A\xFA\x7F"s, "JPEG XL"},
      {"\0\0\0\x0CJXL \r\n\x87\n"s, "JPEG XL"},
      {"II*\0\x08\0\0\0"s, "TIFF"},
      {"MM\0*\0\0\0\x08"s, "TIFF"},
      {"II+\0\x08\0\0\0"s, "TIFF"},
      {"GIF87a\x10\0\x10\0"s, "GIF"},
      {"#?RGBE\n"s, "Radiance HDR"},
      {"Pf\n4 4\n-1\n"s, "PFM"},
      {"P3\n4 4\n255\n"s, "PNM"},
      {"P1 4 4 "s, "PNM"},
      {"\0\0\0\x18" "ftypheic\0\0\0\0"s, "HEIF"},
      {"\0\0\0\x18" "ftypmif1\0\0\0\0"s, "HEIF"},
      {"\0\0\0\x18" "ftypavis\0\0\0\0"s, "AVIF"},
      {"\x8AMNG\r\n\x1A\n"s, "MNG"},
      {"8BPS\0\x01"s, "Photoshop"},
      {"qoif\0\0\0\x10"s, "QOI"},
      {"DDS \x7C\0\0\0"s, "DDS"},
      {"\0\0\1\0\1\0\x10\x10"s, "ICO"},
      {"%PDF-1.7\n"s, "PDF"},
      {"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"s, "SVG"},
  };
  for (const auto& [magic, name] : cases) {
    Bytes bytes(magic.begin(), magic.end());
    bytes.resize(std::max<size_t>(bytes.size(), 64), 0x42);
    const absl::Status status = Inspect(bytes).status();
    EXPECT_EQ(status.code(), kInvalid) << name;
    EXPECT_EQ(status.message(), test_images::RefusedFormat(name)) << status;
  }
}

TEST(HostileImagesTest, UnrecognisedBytesSaySo) {
  using namespace std::string_literals;
  for (const std::string& text :
       {"hello, world"s, "RIFF\x10\0\0\0AVI LIST"s, "\x89PNX\r\n\x1A\n"s, "BAD"s, "\xFF\xD8"s,
        "{\"image\": \"base64...\"}"s}) {
    const Bytes bytes(text.begin(), text.end());
    const absl::Status status = Inspect(bytes).status();
    EXPECT_EQ(status.code(), kInvalid) << text;
    EXPECT_THAT(status.message(), HasSubstr("not a recognised image format (starts with "));
    EXPECT_THAT(status.message(), HasSubstr(kSendAccepted));
  }
  const absl::Status status = Inspect(test_images::RandomBytes(4096, 11)).status();
  EXPECT_THAT(status.message(), HasSubstr("not a recognised image format"));
}

TEST(HostileImagesTest, WrongMagicWithAValidBodyIsRefused) {
  for (const Sample& sample : ValidSamples()) {
    SCOPED_TRACE(sample.name);
    Bytes bytes = sample.bytes;
    bytes[1] ^= 0x01;  // "BL", "\x89QNG", "RHFF", FF D9.
    const absl::Status status = Decode(bytes).status();
    EXPECT_EQ(status.code(), kInvalid);
    EXPECT_THAT(status.message(), HasSubstr(kSendAccepted));
    // A valid body behind another format's magic.
    Bytes gif = {'G', 'I', 'F', '8', '9', 'a'};
    gif.insert(gif.end(), sample.bytes.begin(), sample.bytes.end());
    EXPECT_EQ(Decode(gif).status().message(), test_images::RefusedFormat("GIF"));
  }
}

// ---------------------------------------------------------------------------
// Truncated headers, zero and oversized dimensions, the limits.

TEST(HostileImagesTest, TruncatedHeadersAreRefused) {
  // Every format needs some prefix of the file to be inspected: shorter
  // prefixes are refused, longer ones accepted.
  for (const Sample& sample : ValidSamples()) {
    SCOPED_TRACE(sample.name);
    size_t threshold = 0;
    for (size_t n = 0; n <= sample.bytes.size(); ++n) {
      const absl::Status status = InspectImage(sample.bytes.data(), n, {}).status();
      if (status.ok()) {
        if (threshold == 0) threshold = n;
      } else {
        ASSERT_EQ(status.code(), kInvalid) << n << ": " << status;
        ASSERT_EQ(threshold, 0u) << "refused at " << n << " bytes after accepting " << threshold
                                 << ": " << status;
      }
    }
    EXPECT_GT(threshold, 0u);
  }
}

TEST(HostileImagesTest, ZeroDimensionsAreRefused) {
  using namespace test_images;
  for (const Bytes& bytes :
       {PngHeader(0, 16), PngHeader(16, 0), JpegHeader(0, 16), JpegHeader(16, 0),
        WebpLossyHeader(0, 16), WebpLossyHeader(16, 0), BmpHeader(0, 16), BmpHeader(16, 0),
        BmpHeader(0, 16, 24, 0, 12)}) {
    const absl::Status status = Inspect(bytes).status();
    EXPECT_EQ(status.code(), kInvalid);
    EXPECT_THAT(status.message(), HasSubstr("width and height must be positive"));
  }
}

TEST(HostileImagesTest, LimitsHoldAtTheBoundary) {
  for (const Sample& sample : ValidSamples()) {
    SCOPED_TRACE(sample.name);
    absl::StatusOr<ImageHeader> header = Inspect(sample.bytes);
    ASSERT_TRUE(header.ok()) << header.status();
    const int64_t pixels = int64_t{header->width} * header->height;

    PreprocessOptions options;
    options.max_pixels = pixels;
    options.max_side = std::max(header->width, header->height);
    options.max_decode_bytes = header->decode_bytes;
    absl::StatusOr<RgbImage> image = Decode(sample.bytes, options);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->width, header->width);
    EXPECT_EQ(image->height, header->height);

    PreprocessOptions less = options;
    less.max_pixels = pixels - 1;
    EXPECT_THAT(Decode(sample.bytes, less).status().message(),
                HasSubstr(absl::StrCat("pixels; the limit is ", pixels - 1, " pixels")));
    less = options;
    less.max_side = options.max_side - 1;
    EXPECT_THAT(Decode(sample.bytes, less).status().message(), HasSubstr("pixels per side"));
    less = options;
    less.max_decode_bytes = header->decode_bytes - 1;
    EXPECT_THAT(Decode(sample.bytes, less).status().message(), HasSubstr("would take"));
    less = options;
    less.max_encoded_bytes = static_cast<int64_t>(sample.bytes.size()) - 1;
    EXPECT_THAT(Decode(sample.bytes, less).status().message(), HasSubstr("bytes; the limit is"));
  }
}

TEST(HostileImagesTest, AnImageAtTheDefaultPixelLimitDecodes) {
  // 5000 x 5000 = 25,000,000 pixels, exactly the default limit.
  const int side = 5000;
  Bytes rgb(static_cast<size_t>(side) * side * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>((i / 3 % side) / 20);
  test_images::JpegSpec spec;
  spec.width = spec.height = side;
  spec.quality = 50;
  Bytes jpeg = test_images::EncodeJpeg(rgb, spec);
  rgb = Bytes();
  absl::StatusOr<RgbImage> image = Decode(jpeg);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, side);
  EXPECT_EQ(image->height, side);
  // One more row is over the limit (the SOF's height follows its precision).
  const Bytes sof = {0xFF, 0xC0};
  auto at = std::search(jpeg.begin(), jpeg.end(), sof.begin(), sof.end()) - jpeg.begin() + 5;
  ASSERT_EQ(jpeg[at] * 256 + jpeg[at + 1], side);
  jpeg[at + 1] += 1;
  EXPECT_THAT(Decode(jpeg).status().message(),
              HasSubstr("JPEG image is 5000x5001 pixels; the limit is 25000000 pixels"));
}

TEST(HostileImagesTest, LongStripsAreRefusedBySide) {
  // Under the pixel limit, but the resampler would need huge tables.
  const absl::Status status = Inspect(test_images::PngHeader(1, 20000000)).status();
  EXPECT_THAT(status.message(),
              HasSubstr("PNG image is 1x20000000 pixels; the limit is 65535 pixels per side"));
  EXPECT_THAT(Inspect(test_images::BmpHeader(70000, 1, 8, 1)).status().message(),
              HasSubstr("pixels per side"));
  // The longest side accepted decodes and preprocesses.
  const Bytes strip = test_images::EncodePng(65535, 1, 8, 0, Bytes(65535, 77));
  PreprocessOptions options;
  options.input_size = 16;
  absl::StatusOr<torch::Tensor> tensor = PreprocessEncoded(strip.data(), strip.size(), options);
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_EQ(tensor->size(1), 16);
}

TEST(HostileImagesTest, DecodingMemoryIsBounded) {
  // 16-bit RGBA: 8 bytes a pixel, plus the 3-byte RGB copy.
  const Bytes png16 = test_images::PngHeader(1000, 1000, 16, 6);
  absl::StatusOr<ImageHeader> header = Inspect(png16);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->channels, 4);
  EXPECT_EQ(header->bytes_per_sample, 2);
  EXPECT_EQ(header->decode_bytes, 1000 * 1000 * (8 + 3));
  PreprocessOptions options;
  options.max_decode_bytes = 10'000'000;
  EXPECT_THAT(Inspect(png16, options).status().message(),
              HasSubstr("decoding this 1000x1000 PNG image would take 11000000 bytes; the limit "
                        "is 10000000 bytes"));
  // Progressive JPEG: the coefficient buffer, 128 bytes per 8x8 block and
  // component, comes on top.
  absl::StatusOr<ImageHeader> baseline = Inspect(test_images::JpegHeader(800, 800, 0));
  absl::StatusOr<ImageHeader> progressive = Inspect(test_images::JpegHeader(800, 800, 2));
  ASSERT_TRUE(baseline.ok() && progressive.ok());
  EXPECT_EQ(baseline->decode_bytes, 800 * 800 * (3 + 3));
  EXPECT_EQ(progressive->decode_bytes - baseline->decode_bytes, 3 * 100 * 100 * 128);
  // Lossless WebP keeps an ARGB plane.
  absl::StatusOr<ImageHeader> webp = Inspect(test_images::WebpLosslessHeader(1000, 1000));
  ASSERT_TRUE(webp.ok());
  EXPECT_EQ(webp->decode_bytes, 1000 * 1000 * (3 + 4 + 3));
  // With the defaults, the most demanding 25-megapixel image still fits.
  absl::StatusOr<ImageHeader> worst = Inspect(test_images::JpegHeader(5000, 5000, 2));
  ASSERT_TRUE(worst.ok()) << worst.status();
}

// ---------------------------------------------------------------------------
// Format details.

TEST(HostileImagesTest, ReportsFormatSizeAndChannels) {
  struct Expected {
    std::string name;
    ImageFormat format;
    int width, height, channels, bytes_per_sample;
    bool cmyk;
  };
  const std::vector<Expected> expected = {
      {"JPEG baseline", ImageFormat::kJpeg, 24, 16, 3, 1, false},
      {"JPEG gray", ImageFormat::kJpeg, 24, 16, 1, 1, false},
      {"JPEG CMYK", ImageFormat::kJpeg, 24, 16, 4, 1, true},
      {"JPEG YCCK", ImageFormat::kJpeg, 24, 16, 4, 1, true},
      {"PNG RGB", ImageFormat::kPng, 24, 16, 3, 1, false},
      {"PNG 16-bit RGB", ImageFormat::kPng, 24, 16, 3, 2, false},
      {"PNG palette + tRNS", ImageFormat::kPng, 24, 16, 4, 1, false},
      {"PNG gray + alpha", ImageFormat::kPng, 24, 16, 4, 1, false},
      {"WebP lossy", ImageFormat::kWebp, 48, 32, 3, 1, false},
      {"WebP lossless", ImageFormat::kWebp, 48, 32, 3, 1, false},
      {"WebP lossy + alpha", ImageFormat::kWebp, 48, 32, 4, 1, false},
      {"BMP 24-bit top-down", ImageFormat::kBmp, 24, 16, 3, 1, false},
      {"BMP core header", ImageFormat::kBmp, 24, 16, 3, 1, false},
      {"BMP RLE8", ImageFormat::kBmp, 24, 16, 3, 1, false},
  };
  const std::vector<Sample> samples = ValidSamples();
  for (const Expected& e : expected) {
    SCOPED_TRACE(e.name);
    auto sample = std::find_if(samples.begin(), samples.end(),
                               [&](const Sample& s) { return s.name == e.name; });
    ASSERT_NE(sample, samples.end());
    absl::StatusOr<ImageHeader> header = Inspect(sample->bytes);
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_EQ(header->format, e.format);
    EXPECT_EQ(header->width, e.width);
    EXPECT_EQ(header->height, e.height);
    EXPECT_EQ(header->channels, e.channels);
    EXPECT_EQ(header->bytes_per_sample, e.bytes_per_sample);
    EXPECT_EQ(header->cmyk, e.cmyk);
  }
}

TEST(HostileImagesTest, MalformedJpegHeaders) {
  using test_images::JpegHeader;
  auto message = [](const Bytes& bytes) { return std::string(Inspect(bytes).status().message()); };
  EXPECT_THAT(message(JpegHeader(64, 64, 0, 3, 12)), HasSubstr("12-bit JPEG samples"));
  EXPECT_THAT(message(JpegHeader(64, 64, 3)), HasSubstr("lossless and hierarchical JPEG (SOF3)"));
  EXPECT_THAT(message(JpegHeader(64, 64, 5)), HasSubstr("(SOF5)"));
  EXPECT_THAT(message(JpegHeader(64, 64, 0, 2)), HasSubstr("JPEG with 2 components"));
  // JpegHeader: SOI, APP0 (18 bytes), DQT (69), SOF (19), SOS.
  Bytes twice = JpegHeader(64, 64);
  const Bytes sof(twice.begin() + 2 + 18 + 69, twice.begin() + 2 + 18 + 69 + 19);
  ASSERT_EQ(sof[1], 0xC0);
  twice.insert(twice.begin() + 2 + 18 + 69, sof.begin(), sof.end());
  EXPECT_THAT(message(twice), HasSubstr("two frame headers"));
  Bytes unknown = JpegHeader(64, 64);
  unknown[2 + 18 + 1] = 0xF3;  // DQT becomes JPG3.
  EXPECT_THAT(message(unknown), HasSubstr("unknown marker 0xFFF3"));
  Bytes no_frame = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00};
  EXPECT_THAT(message(no_frame), HasSubstr("a scan before the frame header"));
  Bytes ends = {0xFF, 0xD8, 0xFF, 0xD9};
  EXPECT_THAT(message(ends), HasSubstr("ends before its image data"));
  Bytes short_segment = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01};
  EXPECT_THAT(message(short_segment), HasSubstr("marker segment of length 1"));
  // Fill bytes and junk before a marker are skipped, as libjpeg does.
  Bytes padded = JpegHeader(64, 48);
  padded.insert(padded.begin() + 2 + 18, {0x00, 0x13, 0xFF, 0xFF});
  absl::StatusOr<ImageHeader> header = Inspect(padded);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->width, 64);
  EXPECT_EQ(header->height, 48);
}

TEST(HostileImagesTest, MalformedPngHeaders) {
  Bytes crc = test_images::PngHeader(64, 64);
  crc[19] ^= 1;  // Width changed, checksum not.
  EXPECT_THAT(Inspect(crc).status().message(), HasSubstr("IHDR checksum mismatch"));
  EXPECT_THAT(Inspect(test_images::PngHeader(64, 64, 4, 2)).status().message(),
              HasSubstr("colour type 2, bit depth 4"));
  EXPECT_THAT(Inspect(test_images::PngHeader(0x80000000u, 1)).status().message(),
              HasSubstr("corrupt PNG"));
  Bytes no_data = test_images::PngHeader(64, 64);
  no_data.erase(no_data.begin() + 33, no_data.begin() + 33 + 21);  // Drop IDAT.
  EXPECT_THAT(Inspect(no_data).status().message(), HasSubstr("no image data (IDAT)"));
}

TEST(HostileImagesTest, MalformedWebpHeaders) {
  using test_images::WebpExtendedHeader;
  EXPECT_THAT(Inspect(WebpExtendedHeader(16000, 16000, 1, 1)).status().message(),
              HasSubstr("a 1x1 frame on a canvas of 16000x16000"));
  EXPECT_THAT(Inspect(WebpExtendedHeader(64, 64, 64, 64, 0x02)).status().message(),
              HasSubstr("animated WebP is not supported"));
  absl::StatusOr<ImageHeader> ok = Inspect(WebpExtendedHeader(64, 32, 64, 32, 0x10));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->channels, 4);
  Bytes lossy = test_images::ReadBytes(kDataDir + "pattern_lossy_48x32.webp");
  ASSERT_GT(lossy.size(), 40u);
  lossy.resize(lossy.size() - 1);  // Shorter than its RIFF size says.
  EXPECT_THAT(Inspect(lossy).status().message(), HasSubstr("truncated WebP"));
  Bytes not_key = test_images::WebpLossyHeader(64, 64);
  not_key[20] |= 1;
  EXPECT_THAT(Inspect(not_key).status().message(), HasSubstr("not a key frame"));
}

TEST(HostileImagesTest, MalformedBmpHeaders) {
  using test_images::BmpHeader;
  auto message = [](const Bytes& bytes) { return std::string(Inspect(bytes).status().message()); };
  EXPECT_THAT(message(BmpHeader(16, 16, 64)), HasSubstr("64 bits per pixel and compression 0"));
  EXPECT_THAT(message(BmpHeader(16, 16, 24, 4)), HasSubstr("compression 4 is not supported"));
  EXPECT_THAT(message(BmpHeader(16, 16, 8, 2)), HasSubstr("compression 2 is not supported"));
  EXPECT_THAT(message(BmpHeader(16, 16, 16, 0, 12)), HasSubstr("16 bits per pixel"));
  EXPECT_THAT(message(BmpHeader(16, 16, 24, 0, 20)), HasSubstr("20-byte header"));
  EXPECT_THAT(message(BmpHeader(-16, 16)), HasSubstr("corrupt BMP: width -16"));
  EXPECT_THAT(message(BmpHeader(100, 100, 24, 0, 40, 100)),
              HasSubstr("truncated BMP: 100x100 pixels need 30054 bytes"));
  Bytes far = BmpHeader(4, 4, 24, 0, 40, 64);
  far[10] = 0xFF;  // Pixels would start past the end.
  EXPECT_THAT(message(far), HasSubstr("its pixels would start at byte"));
}

TEST(HostileImagesTest, BmpVariantsDecodeAlike) {
  const int w = 13, h = 7;
  const Bytes rgb = test_images::Pattern(w, h);
  for (uint32_t header_size : {12u, 40u, 108u, 124u}) {
    for (bool top_down : {false, true}) {
      if (header_size == 12 && top_down) continue;
      const Bytes bmp = test_images::EncodeBmp24(w, h, rgb, header_size, top_down);
      absl::StatusOr<RgbImage> image = Decode(bmp);
      ASSERT_TRUE(image.ok()) << header_size << " " << top_down << ": " << image.status();
      EXPECT_EQ(image->pixels, rgb) << header_size << " " << top_down;
    }
  }
}

// ---------------------------------------------------------------------------
// Bit flips of valid images: any outcome but a crash, a hang or another
// status code.

// Silences the decoders' own warnings on stderr while alive.
class QuietStderr {
 public:
  QuietStderr() : saved_(dup(STDERR_FILENO)) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDERR_FILENO);
    close(null);
  }
  ~QuietStderr() {
    dup2(saved_, STDERR_FILENO);
    close(saved_);
  }

 private:
  int saved_;
};

TEST(HostileImagesTest, BitFlipsNeverCrash) {
  const std::vector<Sample> samples = ValidSamples();
  PreprocessOptions options;
  options.input_size = 16;
  options.max_pixels = 1 << 18;  // Keeps flipped sizes cheap to decode.
  std::mt19937 rng(2024);
  int ok = 0, refused = 0;
  {
    QuietStderr quiet;
    for (int iteration = 0; iteration < 4000; ++iteration) {
      const Sample& sample = samples[iteration % samples.size()];
      Bytes bytes = sample.bytes;
      // Mostly in the first bytes, where the headers are.
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        const size_t span = rng() % 2 == 0 ? std::min<size_t>(bytes.size(), 64) : bytes.size();
        bytes[rng() % span] ^= static_cast<uint8_t>(1u << (rng() % 8));
      }
      if (rng() % 8 == 0) bytes.resize(rng() % bytes.size() + 1);
      absl::StatusOr<torch::Tensor> out = PreprocessEncoded(bytes.data(), bytes.size(), options);
      ASSERT_TRUE(out.ok() || out.status().code() == kInvalid)
          << sample.name << " iteration " << iteration << ": " << out.status();
      (out.ok() ? ok : refused) += 1;
    }
  }
  std::printf("bit flips: %d decoded, %d refused\n", ok, refused);
  EXPECT_GT(ok, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace clca
