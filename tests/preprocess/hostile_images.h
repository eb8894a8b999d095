// Small files declaring huge images ("decompression bombs"), one or more for
// every format OpenCV can decode on Debian 12, built byte by byte. Shared by
// the preprocessing unit tests and the server test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clca::test_images {

using Bytes = std::vector<uint8_t>;

inline void Append(Bytes& out, const std::string& text) { out.insert(out.end(), text.begin(), text.end()); }
inline void AppendBe16(Bytes& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
inline void AppendBe32(Bytes& out, uint32_t v) {
  AppendBe16(out, v >> 16);
  AppendBe16(out, v & 0xFFFF);
}
inline void AppendLe16(Bytes& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}
inline void AppendLe32(Bytes& out, uint32_t v) {
  AppendLe16(out, v & 0xFFFF);
  AppendLe16(out, v >> 16);
}
inline void AppendZeros(Bytes& out, size_t n) { out.insert(out.end(), n, 0); }

inline uint32_t PngCrc32(const uint8_t* data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline void AppendPngChunk(Bytes& png, const char* type, const Bytes& data) {
  AppendBe32(png, static_cast<uint32_t>(data.size()));
  Bytes body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  png.insert(png.end(), body.begin(), body.end());
  AppendBe32(png, PngCrc32(body.data(), body.size()));
}

// A PNG header (valid checksums) declaring width x height pixels, with a few
// bytes of image data.
inline Bytes PngHeader(uint32_t width, uint32_t height, int bit_depth = 8, int color_type = 2) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  AppendBe32(ihdr, width);
  AppendBe32(ihdr, height);
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type),
                           0, 0, 0});
  AppendPngChunk(png, "IHDR", ihdr);
  AppendPngChunk(png, "IDAT", {0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01});
  AppendPngChunk(png, "IEND", {});
  return png;
}

// A JPEG whose frame header (SOF`sof`: 0 baseline, 2 progressive, 3
// lossless...) declares width x height pixels of `components` components,
// followed by a scan of a few bytes.
inline Bytes JpegHeader(uint32_t width, uint32_t height, int sof = 0, int components = 3,
                        int precision = 8) {
  Bytes jpeg = {0xFF, 0xD8};
  jpeg.insert(jpeg.end(), {0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1,
                           0, 0});
  jpeg.insert(jpeg.end(), {0xFF, 0xDB, 0x00, 0x43, 0x00});
  AppendZeros(jpeg, 64);
  jpeg.push_back(0xFF);
  jpeg.push_back(static_cast<uint8_t>(0xC0 + sof));
  AppendBe16(jpeg, 8 + 3 * components);
  jpeg.push_back(static_cast<uint8_t>(precision));
  AppendBe16(jpeg, height);
  AppendBe16(jpeg, width);
  jpeg.push_back(static_cast<uint8_t>(components));
  for (int c = 0; c < components; ++c) {
    jpeg.insert(jpeg.end(), {static_cast<uint8_t>(c + 1), 0x11, 0x00});
  }
  jpeg.insert(jpeg.end(), {0xFF, 0xDA});
  AppendBe16(jpeg, 6 + 2 * components);
  jpeg.push_back(static_cast<uint8_t>(components));
  for (int c = 0; c < components; ++c) jpeg.insert(jpeg.end(), {static_cast<uint8_t>(c + 1), 0});
  jpeg.insert(jpeg.end(), {0, 63, 0});
  jpeg.insert(jpeg.end(), {0x12, 0x34, 0x56, 0x78, 0xFF, 0xD9});
  return jpeg;
}

// A lossless WebP declaring width x height (at most 16384 each).
inline Bytes WebpLosslessHeader(uint32_t width, uint32_t height) {
  Bytes chunk = {0x2F};
  AppendLe32(chunk, (width - 1) | ((height - 1) << 14));
  chunk.insert(chunk.end(), {0x00, 0x00, 0x00});
  Bytes webp;
  Append(webp, "RIFF");
  AppendLe32(webp, static_cast<uint32_t>(4 + 8 + chunk.size()));
  Append(webp, "WEBPVP8L");
  AppendLe32(webp, static_cast<uint32_t>(chunk.size()));
  webp.insert(webp.end(), chunk.begin(), chunk.end());
  return webp;
}

// A lossy WebP key frame declaring width x height (at most 16383 each).
inline Bytes WebpLossyHeader(uint32_t width, uint32_t height) {
  Bytes frame = {0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A};  // Key frame, shown.
  AppendLe16(frame, width);
  AppendLe16(frame, height);
  AppendZeros(frame, 10);
  Bytes webp;
  Append(webp, "RIFF");
  AppendLe32(webp, static_cast<uint32_t>(4 + 8 + frame.size()));
  Append(webp, "WEBPVP8 ");
  AppendLe32(webp, static_cast<uint32_t>(frame.size()));
  webp.insert(webp.end(), frame.begin(), frame.end());
  return webp;
}

// An extended WebP: a canvas_w x canvas_h canvas holding a lossless frame
// of frame_w x frame_h; `flags` as in the VP8X chunk (0x02: animation).
inline Bytes WebpExtendedHeader(uint32_t canvas_w, uint32_t canvas_h, uint32_t frame_w,
                                uint32_t frame_h, uint8_t flags = 0) {
  const Bytes inner = WebpLosslessHeader(frame_w, frame_h);
  Bytes webp;
  Append(webp, "RIFF");
  AppendLe32(webp, static_cast<uint32_t>(4 + 18 + inner.size() - 12));
  Append(webp, "WEBPVP8X");
  AppendLe32(webp, 10);
  webp.insert(webp.end(), {flags, 0, 0, 0});
  for (uint32_t v : {canvas_w - 1, canvas_h - 1}) {
    webp.insert(webp.end(), {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                             static_cast<uint8_t>(v >> 16)});
  }
  webp.insert(webp.end(), inner.begin() + 12, inner.end());
  return webp;
}

// A BMP with a `header_size`-byte info header (or the 12-byte core header)
// declaring width x height (negative: top-down) at `bpp` bits per pixel and
// `compression`, and `body` bytes of pixel data.
inline Bytes BmpHeader(int32_t width, int32_t height, int bpp = 24, int compression = 0,
                       uint32_t header_size = 40, size_t body = 16) {
  Bytes bmp;
  Append(bmp, "BM");
  const uint32_t offset = 14 + header_size + (bpp <= 8 ? 4u << bpp : 0u);
  AppendLe32(bmp, static_cast<uint32_t>(offset + body));
  AppendLe32(bmp, 0);
  AppendLe32(bmp, offset);
  AppendLe32(bmp, header_size);
  if (header_size == 12) {
    AppendLe16(bmp, static_cast<uint32_t>(width));
    AppendLe16(bmp, static_cast<uint32_t>(height));
    AppendLe16(bmp, 1);
    AppendLe16(bmp, static_cast<uint32_t>(bpp));
  } else {
    AppendLe32(bmp, static_cast<uint32_t>(width));
    AppendLe32(bmp, static_cast<uint32_t>(height));
    AppendLe16(bmp, 1);
    AppendLe16(bmp, static_cast<uint32_t>(bpp));
    AppendLe32(bmp, static_cast<uint32_t>(compression));
    AppendZeros(bmp, header_size - 20);
  }
  AppendZeros(bmp, offset - bmp.size());
  AppendZeros(bmp, body);
  return bmp;
}

// One hostile input, and what its refusal message must contain.
struct Bomb {
  std::string name;
  Bytes bytes;
  std::string message;
};

inline std::string RefusedFormat(const std::string& name) {
  return "unsupported image format (" + name + "); send JPEG, PNG, WebP or BMP";
}
// Any of the size limits: pixels, pixels per side.
inline constexpr char kOverLimit[] = "pixels; the limit is ";

// Every bomb, each a few hundred bytes at most.
inline std::vector<Bomb> Bombs() {
  std::vector<Bomb> bombs;
  auto text = [](const std::string& header, size_t body) {
    Bytes out(header.begin(), header.end());
    AppendZeros(out, body);
    return out;
  };

  // JPEG 2000: a complete codestream of one 16000 x 16000 tile of three
  // components whose packets are all empty (a flat gray image, 90 bytes),
  // and the same in a JP2 file. OpenJPEG would allocate gigabytes for it.
  Bytes j2k = {0xFF, 0x4F, 0xFF, 0x51};  // SOC, SIZ.
  AppendBe16(j2k, 47);
  AppendBe16(j2k, 0);
  for (uint32_t v : {16000u, 16000u, 0u, 0u, 16000u, 16000u, 0u, 0u}) AppendBe32(j2k, v);
  AppendBe16(j2k, 3);
  for (int c = 0; c < 3; ++c) j2k.insert(j2k.end(), {7, 1, 1});  // 8-bit, unsampled.
  // COD: LRCP, one layer, no transform of components, no decomposition,
  // 64 x 64 code-blocks, reversible filter. QCD: no quantisation.
  j2k.insert(j2k.end(), {0xFF, 0x52, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0x04,
                         0x00, 0x01});
  j2k.insert(j2k.end(), {0xFF, 0x5C, 0x00, 0x04, 0x40, 0x40});
  // SOT for tile 0 (17 bytes with its data), SOD, three empty packets, EOC.
  j2k.insert(j2k.end(), {0xFF, 0x90, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x00, 0x01});
  j2k.insert(j2k.end(), {0xFF, 0x93, 0x00, 0x00, 0x00, 0xFF, 0xD9});
  bombs.push_back({"JPEG 2000 codestream", j2k, RefusedFormat("JPEG 2000")});
  Bytes jp2 = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', '\r', '\n', 0x87, '\n'};
  jp2.insert(jp2.end(), {0, 0, 0, 0x14});
  Append(jp2, "ftypjp2 ");
  AppendBe32(jp2, 0);
  Append(jp2, "jp2 ");
  AppendBe32(jp2, 8 + 22 + 15);
  Append(jp2, "jp2h");
  AppendBe32(jp2, 22);
  Append(jp2, "ihdr");
  AppendBe32(jp2, 16000);
  AppendBe32(jp2, 16000);
  jp2.insert(jp2.end(), {0, 3, 7, 7, 0, 0});
  AppendBe32(jp2, 15);
  Append(jp2, "colr");
  jp2.insert(jp2.end(), {1, 0, 0, 0, 0, 0, 16});
  AppendBe32(jp2, static_cast<uint32_t>(8 + j2k.size()));
  Append(jp2, "jp2c");
  jp2.insert(jp2.end(), j2k.begin(), j2k.end());
  bombs.push_back({"JPEG 2000 (JP2)", jp2, RefusedFormat("JPEG 2000")});

  // TIFF: one 8-bit gray strip of 65535 x 65535.
  Bytes tiff = {'I', 'I', 42, 0};
  AppendLe32(tiff, 8);
  const uint32_t entries[][3] = {{256, 4, 65535}, {257, 4, 65535}, {258, 3, 8}, {259, 3, 1},
                                 {262, 3, 1},     {273, 4, 128},   {277, 3, 1}, {278, 4, 65535},
                                 {279, 4, 0xFFFFFFFFu}};
  AppendLe16(tiff, 9);
  for (const auto& e : entries) {
    AppendLe16(tiff, e[0]);
    AppendLe16(tiff, e[1]);
    AppendLe32(tiff, 1);
    if (e[1] == 3) {
      AppendLe16(tiff, e[2]);
      AppendLe16(tiff, 0);
    } else {
      AppendLe32(tiff, e[2]);
    }
  }
  AppendLe32(tiff, 0);
  AppendZeros(tiff, 64);
  bombs.push_back({"TIFF", tiff, RefusedFormat("TIFF")});

  bombs.push_back({"PPM", text("P6\n16000 16000\n255\n", 64), RefusedFormat("PNM")});
  bombs.push_back({"PGM", text("P5\n65535 65535\n255\n", 64), RefusedFormat("PNM")});
  bombs.push_back({"PBM", text("P4\n65535 65535\n", 64), RefusedFormat("PNM")});
  bombs.push_back({"PAM", text("P7\nWIDTH 16000\nHEIGHT 16000\nDEPTH 3\nMAXVAL 255\n"
                               "TUPLTYPE RGB\nENDHDR\n", 64), RefusedFormat("PAM")});
  bombs.push_back({"PFM", text("PF\n16000 16000\n-1.0\n", 64), RefusedFormat("PFM")});
  bombs.push_back({"Radiance HDR", text("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n"
                                        "-Y 16000 +X 16000\n", 64), RefusedFormat("Radiance HDR")});

  Bytes sun = {0x59, 0xA6, 0x6A, 0x95};
  for (uint32_t v : {16000u, 16000u, 24u, 0u, 1u, 0u, 0u}) AppendBe32(sun, v);
  AppendZeros(sun, 64);
  bombs.push_back({"Sun raster", sun, RefusedFormat("Sun raster")});

  Bytes gif;
  Append(gif, "GIF89a");
  AppendLe16(gif, 65535);
  AppendLe16(gif, 65535);
  gif.insert(gif.end(), {0x00, 0x00, 0x00, 0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x00,
                         0x02, 0x02, 0x44, 0x01, 0x00, 0x3B});
  bombs.push_back({"GIF", gif, RefusedFormat("GIF")});

  // OpenEXR: a scan-line header with a 16000 x 16000 data window.
  Bytes exr = {0x76, 0x2F, 0x31, 0x01, 0x02, 0x00, 0x00, 0x00};
  auto attribute = [&exr](const std::string& name, const std::string& type, const Bytes& value) {
    Append(exr, name);
    exr.push_back(0);
    Append(exr, type);
    exr.push_back(0);
    AppendLe32(exr, static_cast<uint32_t>(value.size()));
    exr.insert(exr.end(), value.begin(), value.end());
  };
  Bytes channels = {'Y', 0};
  AppendLe32(channels, 1);  // HALF
  AppendLe32(channels, 0);
  AppendLe32(channels, 1);
  AppendLe32(channels, 1);
  channels.push_back(0);
  Bytes window;
  for (uint32_t v : {0u, 0u, 15999u, 15999u}) AppendLe32(window, v);
  attribute("channels", "chlist", channels);
  attribute("compression", "compression", {0});
  attribute("dataWindow", "box2i", window);
  attribute("displayWindow", "box2i", window);
  attribute("lineOrder", "lineOrder", {0});
  attribute("pixelAspectRatio", "float", {0, 0, 0x80, 0x3F});
  attribute("screenWindowCenter", "v2f", Bytes(8, 0));
  attribute("screenWindowWidth", "float", {0, 0, 0x80, 0x3F});
  exr.push_back(0);
  AppendZeros(exr, 64);
  bombs.push_back({"OpenEXR", exr, RefusedFormat("OpenEXR")});

  // DICOM (OpenCV reads it through GDCM): preamble, "DICM", nothing more.
  Bytes dicom(128, 0);
  Append(dicom, "DICM");
  AppendZeros(dicom, 64);
  bombs.push_back({"DICOM", dicom, RefusedFormat("DICOM")});

  Bytes avif = {0, 0, 0, 0x1C};
  Append(avif, "ftypavif");
  AppendBe32(avif, 0);
  Append(avif, "avifmif1miaf");
  AppendZeros(avif, 64);
  bombs.push_back({"AVIF", avif, RefusedFormat("AVIF")});

  // The accepted formats, refused by the pixel limit.
  bombs.push_back({"PNG 65535x65535", PngHeader(65535, 65535), kOverLimit});
  bombs.push_back({"PNG 16-bit RGBA 16000x16000", PngHeader(16000, 16000, 16, 6), kOverLimit});
  bombs.push_back({"PNG 1x40000000 strip", PngHeader(1, 40000000), kOverLimit});
  bombs.push_back({"JPEG baseline 65535x65535", JpegHeader(65535, 65535, 0), kOverLimit});
  bombs.push_back({"JPEG progressive 16000x16000", JpegHeader(16000, 16000, 2), kOverLimit});
  bombs.push_back({"JPEG CMYK 65535x65535", JpegHeader(65535, 65535, 0, 4), kOverLimit});
  bombs.push_back({"JPEG arithmetic 16000x16000", JpegHeader(16000, 16000, 9), kOverLimit});
  bombs.push_back({"WebP lossless 16384x16384", WebpLosslessHeader(16384, 16384), kOverLimit});
  bombs.push_back({"WebP lossy 16383x16383", WebpLossyHeader(16383, 16383), kOverLimit});
  bombs.push_back(
      {"WebP extended 16000x16000", WebpExtendedHeader(16000, 16000, 16000, 16000), kOverLimit});
  bombs.push_back({"BMP 65535x65535", BmpHeader(65535, 65535), kOverLimit});
  bombs.push_back({"BMP top-down 65535x65535", BmpHeader(65535, -65535), kOverLimit});
  bombs.push_back({"BMP core header 65535x65535", BmpHeader(65535, 65535, 24, 0, 12), kOverLimit});
  bombs.push_back({"BMP RLE8 16000x16000", BmpHeader(16000, 16000, 8, 1), kOverLimit});
  bombs.push_back({"BMP V5 header 16000x16000", BmpHeader(16000, 16000, 32, 3, 124), kOverLimit});
  return bombs;
}

}  // namespace clca::test_images
