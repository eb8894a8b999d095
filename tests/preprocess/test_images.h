// Valid test images of every accepted format, made in the tests: PNG with a
// minimal writer, JPEG with libjpeg (including CMYK and YCCK), BMP by hand;
// WebP comes from tests/data/preprocess.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <jpeglib.h>

#include "tests/preprocess/hostile_images.h"

namespace clca::test_images {

inline const std::string kDataDir = std::string(CLCA_TEST_DATA) + "/preprocess/";

inline Bytes ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

inline Bytes RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// A smooth RGB test pattern with some texture, width x height x 3.
inline Bytes Pattern(int width, int height) {
  Bytes rgb(static_cast<size_t>(width) * height * 3);
  std::mt19937 rng(7);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / width);
      p[1] = static_cast<uint8_t>(y * 255 / height);
      p[2] = static_cast<uint8_t>(rng());
    }
  }
  return rgb;
}

// A PNG of stored (uncompressed) deflate blocks. `samples` holds height rows
// of width * channels samples, each `bit_depth` (8 or 16) bits, big-endian
// for 16. Colour types: 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA.
inline Bytes EncodePng(int width, int height, int bit_depth, int color_type, const Bytes& samples,
                       const Bytes& palette = {}, const Bytes& transparency = {}) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  AppendBe32(ihdr, static_cast<uint32_t>(width));
  AppendBe32(ihdr, static_cast<uint32_t>(height));
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type),
                           0, 0, 0});
  AppendPngChunk(png, "IHDR", ihdr);
  if (!palette.empty()) AppendPngChunk(png, "PLTE", palette);
  if (!transparency.empty()) AppendPngChunk(png, "tRNS", transparency);

  // Scanlines with filter type 0, in a zlib stream of stored blocks.
  const size_t row_bytes = samples.size() / height;
  Bytes raw;
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), samples.begin() + y * row_bytes, samples.begin() + (y + 1) * row_bytes);
  }
  Bytes z = {0x78, 0x01};
  for (size_t pos = 0; pos < raw.size();) {
    const size_t n = std::min<size_t>(raw.size() - pos, 65535);
    const bool last = pos + n == raw.size();
    z.insert(z.end(), {static_cast<uint8_t>(last), static_cast<uint8_t>(n),
                       static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(~n),
                       static_cast<uint8_t>(~n >> 8)});
    z.insert(z.end(), raw.begin() + pos, raw.begin() + pos + n);
    pos += n;
  }
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  AppendBe32(z, (b << 16) | a);
  AppendPngChunk(png, "IDAT", z);
  AppendPngChunk(png, "IEND", {});
  return png;
}

// ---------------------------------------------------------------------------
// JPEG through libjpeg. Test inputs are always valid, so libjpeg's default
// error handler (which exits) is acceptable here.

struct JpegSpec {
  int width = 0;
  int height = 0;
  // The samples given: JCS_GRAYSCALE, JCS_RGB or JCS_CMYK.
  J_COLOR_SPACE input = JCS_RGB;
  // The colour space stored (e.g. JCS_YCCK for CMYK input); JCS_UNKNOWN:
  // libjpeg's default for the input.
  J_COLOR_SPACE stored = JCS_UNKNOWN;
  // libjpeg writes an Adobe APP14 marker for CMYK and YCCK; false drops it.
  bool adobe_marker = true;
  bool progressive = false;
  // Chroma (and K) at half resolution both ways, else 4:4:4.
  bool subsample = true;
  int quality = 90;
};

inline Bytes EncodeJpeg(const Bytes& samples, const JpegSpec& spec) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(spec.width);
  cinfo.image_height = static_cast<JDIMENSION>(spec.height);
  cinfo.in_color_space = spec.input;
  cinfo.input_components = spec.input == JCS_GRAYSCALE ? 1 : spec.input == JCS_CMYK ? 4 : 3;
  jpeg_set_defaults(&cinfo);
  if (spec.stored != JCS_UNKNOWN) jpeg_set_colorspace(&cinfo, spec.stored);
  if (!spec.adobe_marker) cinfo.write_Adobe_marker = FALSE;
  if (!spec.subsample) {
    for (int c = 0; c < cinfo.num_components; ++c) {
      cinfo.comp_info[c].h_samp_factor = cinfo.comp_info[c].v_samp_factor = 1;
    }
  }
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  if (spec.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(spec.width) * cinfo.input_components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(&samples[cinfo.next_scanline * stride]);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes out(buffer, buffer + size);
  std::free(buffer);
  return out;
}

// Decoded samples and their layout.
struct Samples {
  int width = 0;
  int height = 0;
  int components = 0;
  Bytes data;
};

// libjpeg's decode to `out` (JCS_RGB, JCS_CMYK, JCS_GRAYSCALE), with its
// defaults, as PIL decodes.
inline Samples DecodeJpeg(const Bytes& jpeg, J_COLOR_SPACE out) {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, jpeg.data(), static_cast<unsigned long>(jpeg.size()));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = out;
  jpeg_start_decompress(&cinfo);
  Samples s;
  s.width = static_cast<int>(cinfo.output_width);
  s.height = static_cast<int>(cinfo.output_height);
  s.components = cinfo.output_components;
  s.data.resize(static_cast<size_t>(s.width) * s.height * s.components);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = &s.data[static_cast<size_t>(cinfo.output_scanline) * s.width * s.components];
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return s;
}

// ---------------------------------------------------------------------------
// BMP written by hand.

// A bottom-up (or top-down) uncompressed 24-bit BMP of `rgb`, with a
// `header_size`-byte header (12: core, 40/108/124: info).
inline Bytes EncodeBmp24(int width, int height, const Bytes& rgb, uint32_t header_size = 40,
                         bool top_down = false) {
  const size_t stride = (static_cast<size_t>(width) * 3 + 3) / 4 * 4;
  Bytes bmp = BmpHeader(width, top_down ? -height : height, 24, 0, header_size, 0);
  for (int row = 0; row < height; ++row) {
    const int y = top_down ? row : height - 1 - row;
    Bytes line(stride, 0);
    for (int x = 0; x < width; ++x) {
      const uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
      line[3 * x] = p[2];
      line[3 * x + 1] = p[1];
      line[3 * x + 2] = p[0];
    }
    bmp.insert(bmp.end(), line.begin(), line.end());
  }
  const uint32_t file_size = static_cast<uint32_t>(bmp.size());
  for (int i = 0; i < 4; ++i) bmp[2 + i] = static_cast<uint8_t>(file_size >> (8 * i));
  return bmp;
}

// An 8-bit palette BMP, uncompressed or RLE8, of `indices` into `palette`
// (RGB triples, up to 256).
inline Bytes EncodeBmp8(int width, int height, const Bytes& indices, const Bytes& palette,
                        bool rle) {
  Bytes bmp = BmpHeader(width, height, 8, rle ? 1 : 0, 40, 0);
  // BmpHeader reserved a 256-entry palette (BGRX).
  const size_t palette_at = 14 + 40;
  for (size_t i = 0; i * 3 < palette.size(); ++i) {
    bmp[palette_at + 4 * i] = palette[3 * i + 2];
    bmp[palette_at + 4 * i + 1] = palette[3 * i + 1];
    bmp[palette_at + 4 * i + 2] = palette[3 * i];
  }
  for (int row = 0; row < height; ++row) {
    const uint8_t* line = &indices[static_cast<size_t>(height - 1 - row) * width];
    if (rle) {
      for (int x = 0; x < width;) {  // Runs of equal indices.
        int run = 1;
        while (x + run < width && run < 255 && line[x + run] == line[x]) ++run;
        bmp.insert(bmp.end(), {static_cast<uint8_t>(run), line[x]});
        x += run;
      }
      bmp.insert(bmp.end(), {0, 0});  // End of line.
    } else {
      bmp.insert(bmp.end(), line, line + width);
      bmp.insert(bmp.end(), (4 - width % 4) % 4, 0);
    }
  }
  if (rle) bmp.insert(bmp.end(), {0, 1});  // End of bitmap.
  const uint32_t file_size = static_cast<uint32_t>(bmp.size());
  for (int i = 0; i < 4; ++i) bmp[2 + i] = static_cast<uint8_t>(file_size >> (8 * i));
  return bmp;
}

}  // namespace clca::test_images
